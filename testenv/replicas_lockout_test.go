package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// TestReplicasLockout: failure counts live in etcd, so wrong passwords spread
// over three replicas lock the principal after the policy's number of
// failures, as against one KDC (MIT's iprop does not replicate lockout); the
// right password is then refused through every replica ("credentials have
// been revoked") until an admin unlocks it.
func TestReplicasLockout(t *testing.T) {
	RequireTool(t, "kinit")
	rs := newReplicaSet(t, 3)
	ctx := context.Background()
	// The administration, in process, straight against etcd as `kdc` does
	// (a watching store: it sees the failures the replicas write).
	db, err := store.OpenEtcd(ctx, rs.url, rs.mk, store.EtcdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	admin := &kdc.LocalAdmin{Store: db}
	if _, err := admin.PolicyAdd(ctx, principal.Policy{Name: "lock3", MaxFailures: 3, FailureInterval: time.Hour, LockoutDuration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Add(ctx, kdc.AddRequest{Name: "dana", Password: "dana-pw-1", Policy: "lock3"}); err != nil {
		t.Fatal(err)
	}
	var envs [][]string
	for _, r := range rs.replicas {
		env := rs.clientEnv("lock-"+r.name, r)
		kinitUntil(t, env, "dana-pw-1", "dana") // every replica knows dana
		envs = append(envs, env)
	}
	// One wrong password through each replica: three failures in all.
	for i, env := range envs {
		_, stderr, code := mitKinit(t, env, "wrong-pw", "dana")
		if code == 0 {
			t.Fatalf("kinit with a wrong password through %s succeeded", rs.replicas[i].name)
		}
		if strings.Contains(stderr, "revoked") {
			t.Fatalf("locked after %d failures, want 3: %s", i+1, stderr)
		}
		// Let the count reach etcd and the next replica's memory (the
		// KDC writes failures off the request path).
		deadline, counted := time.Now().Add(10*time.Second), time.Now()
		for {
			info, err := admin.Show(ctx, "dana")
			if err == nil && info.FailCount >= i+1 {
				t.Logf("failure %d through %s in etcd and back after %v", i+1, rs.replicas[i].name, time.Since(counted).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("failure %d not counted in etcd: %+v %v", i+1, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Locked through every replica, even with the right password.
	for i, env := range envs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, stderr, code := mitKinit(t, env, "dana-pw-1", "dana")
			if code != 0 && strings.Contains(stderr, "revoked") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s after 3 failures spread over 3 replicas: exit %d %s", rs.replicas[i].name, code, stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := admin.Unlock(ctx, "dana"); err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		kinitUntil(t, env, "dana-pw-1", "dana")
	}
}
