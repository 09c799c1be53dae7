package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdRealm initialises a realm on the cluster under a fresh prefix and returns
// its URL and master key file.
func etcdRealm(t *testing.T, c *etcdtest.Cluster) (url, mkPath string) {
	t.Helper()
	url = c.URL("kerbkit-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	mkPath = filepath.Join(t.TempDir(), "realm.mkey")
	if err := InitEtcd(context.Background(), url, mkPath, "ETCD.TEST", principal.RealmPolicy{}, EtcdOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return url, mkPath
}

func openEtcd(t *testing.T, url, mkPath string) *EtcdStore {
	t.Helper()
	s, err := OpenEtcd(context.Background(), url, mkPath, EtcdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newUser(t *testing.T, name string) *principal.Record {
	t.Helper()
	n, err := principal.Parse(name, "ETCD.TEST")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
	if err != nil {
		t.Fatal(err)
	}
	return principal.NewRecord(n, keys, time.Now())
}

func TestParseEtcdURL(t *testing.T) {
	for _, tc := range []struct {
		in        string
		endpoints string
		prefix    string
		err       string
	}{
		{in: "etcd://127.0.0.1:2379/kerbkit", endpoints: "127.0.0.1:2379", prefix: "/kerbkit/"},
		{in: "etcd://a:1,b:2,c:3/realms/EXAMPLE/", endpoints: "a:1,b:2,c:3", prefix: "/realms/EXAMPLE/"},
		{in: "etcd://a:1", err: "prefix is required"},
		{in: "etcd://a:1/", err: "prefix is required"},
		{in: "etcd://a/p", err: "want HOST:PORT"},
		{in: "etcd://user:pw@a:1/p", err: "credentials"},
		{in: "/var/lib/kdc.db", err: "not an etcd"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			eps, prefix, err := ParseEtcdURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Fatalf("the error echoes the credentials: %v", err)
				}
				return
			}
			if err != nil || strings.Join(eps, ",") != tc.endpoints || prefix != tc.prefix {
				t.Fatalf("got %v %q %v", eps, prefix, err)
			}
		})
	}
}

// TestEtcdReplicas: a realm on a three-member cluster, two stores on it as two
// KDCs would hold them: a change through one reaches the other's memory; the
// schema version and master key are checked at open; init refuses a prefix
// that holds a realm.
func TestEtcdReplicas(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url, mk := etcdRealm(t, c)
	a, b := openEtcd(t, url, mk), openEtcd(t, url, mk)
	ctx := context.Background()
	if a.Realm() != "ETCD.TEST" || b.Policy() != principal.DefaultPolicy {
		t.Fatalf("realm %q policy %+v", a.Realm(), b.Policy())
	}
	if _, err := b.Get(ctx, principal.Krbtgt("ETCD.TEST")); err != nil {
		t.Fatal(err)
	}
	alice := newUser(t, "alice")
	if err := a.Create(ctx, alice); err != nil {
		t.Fatal(err)
	}
	// The writer sees its own change at once.
	if _, err := a.Get(ctx, alice.Name); err != nil {
		t.Fatalf("writer: %v", err)
	}
	eventually(t, "alice on replica b", func() bool { _, err := b.Get(ctx, alice.Name); return err == nil })
	got, _ := b.Get(ctx, alice.Name)
	if got.KVNO() != 1 || len(got.Keys) != len(alice.Keys) || string(got.Keys[0].Value) != string(alice.Keys[0].Value) {
		t.Fatalf("replica b has %+v", got)
	}
	if err := b.Create(ctx, alice); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	shared, err := a.GetShared(ctx, alice.Name)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := a.GetShared(ctx, alice.Name); again != shared {
		t.Error("GetShared did not return the replica's record")
	}
	if err := b.Update(ctx, alice.Name, func(r *principal.Record) error { r.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "disable on replica a", func() bool { r, _ := a.GetShared(ctx, alice.Name); return r != nil && r.Disabled })
	if shared.Disabled {
		t.Error("a watched change modified a record GetShared handed out before it")
	}
	if err := a.Delete(ctx, alice.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delete on replica b", func() bool { _, err := b.Get(ctx, alice.Name); return errors.Is(err, principal.ErrNotFound) })
	if err := a.Delete(ctx, alice.Name); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := a.Delete(ctx, principal.Krbtgt("ETCD.TEST")); err == nil {
		t.Fatal("deleted krbtgt")
	}
	names, _ := b.List(ctx)
	if len(names) != 2 { // krbtgt and kadmin/changepw
		t.Fatalf("list: %v", names)
	}

	// Open checks: another master key, no realm, another schema version.
	otherMK := filepath.Join(t.TempDir(), "other.mkey")
	if _, err := CreateMasterKeyFile(otherMK); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEtcd(ctx, url, otherMK, EtcdOptions{}); !errors.Is(err, ErrMasterKey) {
		t.Fatalf("wrong master key: %v", err)
	}
	if _, err := OpenEtcd(ctx, c.URL("nothing-here"), mk, EtcdOptions{}); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("empty prefix: %v", err)
	}
	if err := InitEtcd(ctx, url, filepath.Join(t.TempDir(), "x.mkey"), "ETCD.TEST", principal.RealmPolicy{}, EtcdOptions{}, time.Now()); err == nil || !strings.Contains(err.Error(), "already holds a realm") {
		t.Fatalf("init over a realm: %v", err)
	}
	_, prefix, _ := ParseEtcdURL(url)
	cl := c.Client()
	if _, err := cl.Put(ctx, prefix+etcdMetaDir+string(metaSchema), "99"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEtcd(ctx, url, mk, EtcdOptions{}); !errors.Is(err, ErrSchema) {
		t.Fatalf("schema 99: %v", err)
	}
}

// TestEtcdConcurrentUpdatesLoseNothing: two stores (two KDCs, two admins)
// change the same record at once; every change survives.
func TestEtcdConcurrentUpdatesLoseNothing(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url, mk := etcdRealm(t, c)
	a, b := openEtcd(t, url, mk), openEtcd(t, url, mk)
	ctx := context.Background()
	bob := newUser(t, "bob")
	bob.MaxLife = 0
	if err := a.Create(ctx, bob); err != nil {
		t.Fatal(err)
	}
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, s := range []*EtcdStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- s.Update(ctx, bob.Name, func(r *principal.Record) error { r.MaxLife += time.Second; return nil })
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both replicas at 50 changes", func() bool {
		ra, _ := a.Get(ctx, bob.Name)
		rb, _ := b.Get(ctx, bob.Name)
		return ra.MaxLife == 2*each*time.Second && rb.MaxLife == 2*each*time.Second
	})
}

// TestEtcdLeaderLossAndOutage: killing the leader leaves reads untouched and
// writes resume after the election; with every member down reads go on from
// memory, a write fails with one clear error, and the health says so; when
// the members come back the store catches up without a restart.
func TestEtcdLeaderLossAndOutage(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url, mk := etcdRealm(t, c)
	a, b := openEtcd(t, url, mk), openEtcd(t, url, mk)
	b.reloadAfter.Store(0) // b reloads after any outage, a only resumes its watch
	ctx := context.Background()
	carol := newUser(t, "carol")
	if err := a.Create(ctx, carol); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol on b", func() bool { _, err := b.Get(ctx, carol.Name); return err == nil })

	leader, err := c.Leader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	if _, err := b.Get(ctx, carol.Name); err != nil {
		t.Fatalf("read right after the leader died: %v", err)
	}
	// Writes resume after the election (bounded retries: an election takes
	// about a second with the test cluster's timings).
	dave := newUser(t, "dave")
	var werr error
	for range 10 {
		if werr = a.Create(ctx, dave); werr == nil {
			break
		}
	}
	if werr != nil {
		t.Fatalf("write after re-election: %v", werr)
	}
	eventually(t, "dave on b", func() bool { _, err := b.Get(ctx, dave.Name); return err == nil })
	c.Restart(leader)

	// Every member down.
	for _, m := range c.Members {
		m.Kill()
	}
	if _, err := b.Get(ctx, dave.Name); err != nil {
		t.Fatalf("read with etcd down: %v", err)
	}
	err = a.Create(ctx, newUser(t, "erin"))
	if !errors.Is(err, ErrUnreachable) || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("write with etcd down: %v", err)
	}
	t.Logf("write with etcd down: %v", err)
	eventually(t, "health says unreachable", func() bool { return !b.Health().Reachable })
	// Once the store knows etcd is down, a change fails at once.
	start := time.Now()
	err = b.Update(ctx, dave.Name, func(r *principal.Record) error { r.Disabled = true; return nil })
	if !errors.Is(err, ErrUnreachable) || time.Since(start) > EtcdWriteTimeout/2 {
		t.Fatalf("update with etcd known down: %v after %v", err, time.Since(start))
	}
	t.Logf("update with etcd known down: %v", err)
	if h := b.Health(); h.LastError == "" {
		t.Fatalf("health without the error: %+v", h)
	}
	for _, m := range c.Members {
		c.Restart(m)
	}
	if err := c.WaitHealthy(etcdtest.StartTimeout); err != nil {
		t.Fatal(err)
	}
	// A change made directly in etcd (by another KDC, here a fresh store) reaches both.
	fresh := openEtcd(t, url, mk)
	erin := newUser(t, "erin")
	if err := fresh.Create(ctx, erin); err != nil {
		t.Fatal(err)
	}
	eventually(t, "erin on a and b after the outage", func() bool {
		_, ea := a.Get(ctx, erin.Name)
		_, eb := b.Get(ctx, erin.Name)
		return ea == nil && eb == nil
	})
	eventually(t, "health reachable again", func() bool { return a.Health().Reachable && b.Health().Reachable })
	eventually(t, "b reloaded after the outage", func() bool { return b.Health().Reloads >= 2 })
	if a.Health().Reloads != 1 {
		t.Errorf("a reloaded after a short outage: %+v", a.Health())
	}
}

// TestEtcdCatchUpAfterCompaction: a store cut off from its only member misses
// changes that etcd then compacts away; back in touch, it reloads every record.
func TestEtcdCatchUpAfterCompaction(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url, mk := etcdRealm(t, c)
	// a talks only to member 0.
	_, prefix, _ := ParseEtcdURL(url)
	aURL := "etcd://" + c.Endpoints()[0] + prefix[:len(prefix)-1]
	a := openEtcd(t, aURL, mk)
	b := openEtcd(t, url, mk)
	ctx := context.Background()
	frank := newUser(t, "frank")
	if err := b.Create(ctx, frank); err != nil {
		t.Fatal(err)
	}
	eventually(t, "frank on a", func() bool { _, err := a.Get(ctx, frank.Name); return err == nil })
	reloads := a.Health().Reloads

	c.Members[0].Kill()
	for i := range 5 {
		start := time.Now()
		var err error
		for range 5 { // member 0 may have led: writes wait for the election
			if err = b.Create(ctx, newUser(t, fmt.Sprintf("u%d", i))); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("write %d took %v", i, time.Since(start))
	}
	if err := b.Delete(ctx, frank.Name); err != nil {
		t.Fatal(err)
	}
	cl := c.Client()
	resp, err := cl.Get(ctx, "any")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	c.Restart(c.Members[0])
	eventually(t, "a reloads and sees the changes", func() bool {
		_, e1 := a.Get(ctx, frank.Name)
		names, _ := a.List(ctx)
		return errors.Is(e1, principal.ErrNotFound) && len(names) == 7
	})
	if a.Health().Reloads <= reloads {
		t.Fatalf("caught up without a reload? %+v", a.Health())
	}
}

// TestEtcdPoliciesInMemory: a policy added through one store reaches the
// memory of another, which then answers GetPolicy and ListPolicies with every
// etcd member down (the KDC reads policies on its request path).
func TestEtcdPoliciesInMemory(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url, mk := etcdRealm(t, c)
	a, b := openEtcd(t, url, mk), openEtcd(t, url, mk)
	ctx := context.Background()
	if err := a.CreatePolicy(ctx, &principal.Policy{Name: "strict", MinLength: 12, MaxFailures: 3}); err != nil {
		t.Fatal(err)
	}
	if p, err := a.GetPolicy(ctx, "strict"); err != nil || p.MinLength != 12 {
		t.Fatalf("writer: %+v %v", p, err)
	}
	eventually(t, "policy on b", func() bool { p, err := b.GetPolicy(ctx, "strict"); return err == nil && p.MaxFailures == 3 })
	if err := a.UpdatePolicy(ctx, "strict", func(p *principal.Policy) error { p.MaxFailures = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "changed policy on b", func() bool { p, _ := b.GetPolicy(ctx, "strict"); return p != nil && p.MaxFailures == 5 })
	for _, m := range c.Members {
		m.Kill()
	}
	if p, err := b.GetPolicy(ctx, "strict"); err != nil || p.MaxFailures != 5 {
		t.Fatalf("policy with etcd down: %+v %v", p, err)
	}
	names, err := b.ListPolicies(ctx)
	if err != nil || len(names) < 1 {
		t.Fatalf("policies with etcd down: %v %v", names, err)
	}
}

// TestEtcdRecordsHeldCompact: a replica holds each record in the binary form
// and decodes a record once, into its bounded record cache; a lookup through
// an alias finds the record cached under its own name; a watched change
// replaces the cached record.
func TestEtcdRecordsHeldCompact(t *testing.T) {
	c := etcdtest.Start(t, 1)
	url, mk := etcdRealm(t, c)
	s := openEtcd(t, url, mk)
	ctx := context.Background()
	alice := newUser(t, "alice")
	alias := principal.MustParse("al@ETCD.TEST")
	alice.Aliases = []principal.Name{alias}
	if err := s.Create(ctx, alice); err != nil {
		t.Fatal(err)
	}
	v, ok := s.recs.Load(alice.Name.Key())
	if !ok || len(v.([]byte)) == 0 || v.([]byte)[0] != recordBinary {
		t.Fatalf("alice is held as %v", v)
	}
	first, err := s.GetShared(ctx, alice.Name)
	if err != nil {
		t.Fatal(err)
	}
	viaAlias, err := s.GetShared(ctx, alias)
	if err != nil || viaAlias != first {
		t.Fatalf("through the alias: %p %v, want the cached %p", viaAlias, err, first)
	}
	if n := s.cached.Load(); n < 1 || n > MaxCachedRecords {
		t.Fatalf("%d records cached", n)
	}
	other := openEtcd(t, url, mk)
	if err := other.Update(ctx, alice.Name, func(r *principal.Record) error { r.MaxLife = time.Hour; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the change on the replica", func() bool {
		r, err := s.GetShared(ctx, alias)
		return err == nil && r.MaxLife == time.Hour
	})
	if first.MaxLife == time.Hour {
		t.Fatal("the change modified the record handed out before it")
	}
}
