package kdc

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// lockoutRealm is a test realm whose alice has a policy of max failures 3
// within a minute, locked for lockFor (0: until unlocked).
func lockoutRealm(t testing.TB, lockFor time.Duration) *testRealmEnv {
	t.Helper()
	r := newTestRealm(t)
	ctx := context.Background()
	if _, err := r.admin.PolicyAdd(ctx, principal.Policy{Name: "strict", MaxFailures: 3, FailureInterval: time.Minute, LockoutDuration: lockFor}); err != nil {
		t.Fatal(err)
	}
	pol := "strict"
	if _, err := r.admin.Modify(ctx, "alice", ModifyRequest{Policy: &pol}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.kdc.lock.waitIdle)
	return r
}

// wrongPassword is alice's AS-REQ with PA-ENC-TIMESTAMP in a key that is not hers.
func (r *testRealmEnv) wrongPassword(name string) []byte {
	r.t.Helper()
	n := principal.MustParse(name + "@" + testRealm)
	keys, err := principal.KeysFromPassword(n, "not-the-password", []int32{18}, 1)
	if err != nil {
		r.t.Fatal(err)
	}
	req := asReq(name, 18)
	req.PAData = types.PADataSequence{encTimestamp(r.t, keys[0].EncryptionKey(), r.clock.Now())}
	return marshalAS(r.t, req)
}

func (r *testRealmEnv) rightPassword(name string) []byte {
	r.t.Helper()
	req, _ := r.preauthASReq(name, 18, 18)
	return marshalAS(r.t, req)
}

func (r *testRealmEnv) show(name string) PrincipalInfo {
	r.t.Helper()
	r.kdc.lock.waitIdle()
	info, err := r.admin.Show(context.Background(), name)
	if err != nil {
		r.t.Fatal(err)
	}
	return info
}

func TestLockoutAfterMaxFailures(t *testing.T) {
	r := lockoutRealm(t, 10*time.Minute)
	for i := range 3 {
		expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_PREAUTH_FAILED)
		if got := r.show("alice").FailCount; got != i+1 {
			t.Fatalf("after %d failures the count is %d", i+1, got)
		}
	}
	info := r.show("alice")
	if want := r.clock.Now().Add(10 * time.Minute).Truncate(time.Second); !info.LockedUntil.Equal(want.UTC()) {
		t.Fatalf("locked until %v, want %v", info.LockedUntil, want)
	}
	// Locked: the right password, a wrong one and none at all get
	// CLIENT_REVOKED, and nothing more is counted.
	e := expectError(t, r.exchange(r.rightPassword("alice")), errorcode.KDC_ERR_CLIENT_REVOKED)
	if e.EText != "LOCKED_OUT" {
		t.Fatalf("e-text %q", e.EText)
	}
	expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_CLIENT_REVOKED)
	expectError(t, r.exchange(marshalAS(t, asReq("alice"))), errorcode.KDC_ERR_CLIENT_REVOKED)
	if got := r.show("alice").FailCount; got != 3 {
		t.Fatalf("failures counted while locked: %d", got)
	}
	if r.kdc.Stats().Lockouts != 1 {
		t.Fatalf("lockouts %d", r.kdc.Stats().Lockouts)
	}
	// Others are not affected.
	r.add(AddRequest{Name: "bob", Password: "bobpw"})
	req, key := r.preauthASReq("bob", 18, 18)
	asRep(t, r.exchange(marshalAS(t, req)), key)
	// The lockout passes; the next success resets the count.
	r.clock.Advance(11 * time.Minute)
	req, key = r.preauthASReq("alice", 18, 18)
	asRep(t, r.exchange(marshalAS(t, req)), key)
	if info := r.show("alice"); info.FailCount != 0 || !info.LockedUntil.IsZero() {
		t.Fatalf("after a success: %+v", info)
	}
}

// TestLockoutAtTheFailureThatReachesMax: the failures not yet written count,
// so the right password right after the third failure is refused.
func TestLockoutAtTheFailureThatReachesMax(t *testing.T) {
	r := lockoutRealm(t, 0)
	for range 3 {
		expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_PREAUTH_FAILED)
	}
	expectError(t, r.exchange(r.rightPassword("alice")), errorcode.KDC_ERR_CLIENT_REVOKED)
}

func TestLockoutUntilUnlocked(t *testing.T) {
	r := lockoutRealm(t, 0)
	for range 3 {
		expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_PREAUTH_FAILED)
	}
	if info := r.show("alice"); !info.LockedUntil.Equal(principal.Forever) {
		t.Fatalf("locked until %v", info.LockedUntil)
	}
	r.clock.Advance(20 * time.Hour) // the request's till is a day from now
	expectError(t, r.exchange(r.rightPassword("alice")), errorcode.KDC_ERR_CLIENT_REVOKED)
	info, err := r.admin.Unlock(context.Background(), "alice")
	if err != nil || info.FailCount != 0 || !info.LockedUntil.IsZero() {
		t.Fatalf("unlock: %+v %v", info, err)
	}
	req, key := r.preauthASReq("alice", 18, 18)
	asRep(t, r.exchange(marshalAS(t, req)), key)
}

// TestLockoutFailureInterval: failures further apart than the interval start
// the count again.
func TestLockoutFailureInterval(t *testing.T) {
	r := lockoutRealm(t, 0)
	for range 5 {
		expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_PREAUTH_FAILED)
		expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_PREAUTH_FAILED)
		r.kdc.lock.waitIdle()
		r.clock.Advance(2 * time.Minute)
	}
	req, key := r.preauthASReq("alice", 18, 18)
	asRep(t, r.exchange(marshalAS(t, req)), key)
}

// TestLockoutNotWithoutPolicyOrPreauth: no policy (or a policy without max
// failures), or no pre-authentication required: failures are not counted.
func TestLockoutNotWithoutPolicyOrPreauth(t *testing.T) {
	r := newTestRealm(t)
	r.add(AddRequest{Name: "carol", Password: "carolpw", NoPolicy: true})
	for range 20 {
		expectError(t, r.exchange(r.wrongPassword("carol")), errorcode.KDC_ERR_PREAUTH_FAILED)
	}
	if got := r.show("carol"); got.FailCount != 0 || got.Policy != "" {
		t.Fatalf("carol: %+v", got)
	}
	req, key := r.preauthASReq("carol", 18, 18)
	asRep(t, r.exchange(marshalAS(t, req)), key)
}

// boltTxID is the last committed transaction of the realm's bbolt file.
func boltTxID(t testing.TB, r *testRealmEnv) int {
	t.Helper()
	id, err := r.store.(*store.BoltStore).TxID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSuccessfulLoginsWriteNothing: logins of a principal with a lockout
// policy and no failures do not write the database (bbolt transaction id,
// file size and mtime unchanged); a success after failures resets the count
// with one write, and the next successes write nothing again.
func TestSuccessfulLoginsWriteNothing(t *testing.T) {
	r := lockoutRealm(t, 0)
	path := r.store.(*store.BoltStore).Path()
	tx0 := boltTxID(t, r)
	fi0, _ := os.Stat(path)
	for range 50 {
		req, key := r.preauthASReq("alice", 18, 18)
		asRep(t, r.exchange(marshalAS(t, req)), key)
	}
	r.kdc.lock.waitIdle()
	fi1, _ := os.Stat(path)
	if tx1 := boltTxID(t, r); tx1 != tx0 || fi1.Size() != fi0.Size() || !fi1.ModTime().Equal(fi0.ModTime()) {
		t.Fatalf("logins wrote the database: tx %d -> %d, size %d -> %d, mtime %v -> %v", tx0, tx1, fi0.Size(), fi1.Size(), fi0.ModTime(), fi1.ModTime())
	}
	expectError(t, r.exchange(r.wrongPassword("alice")), errorcode.KDC_ERR_PREAUTH_FAILED)
	r.kdc.lock.waitIdle()
	tx2 := boltTxID(t, r)
	for range 20 {
		req, key := r.preauthASReq("alice", 18, 18)
		asRep(t, r.exchange(marshalAS(t, req)), key)
	}
	r.kdc.lock.waitIdle()
	if tx3 := boltTxID(t, r); tx3 > tx2+2 {
		t.Fatalf("a success after a failure wrote %d times", tx3-tx2)
	}
	tx4 := boltTxID(t, r)
	for range 20 {
		req, key := r.preauthASReq("alice", 18, 18)
		asRep(t, r.exchange(marshalAS(t, req)), key)
	}
	r.kdc.lock.waitIdle()
	if tx5 := boltTxID(t, r); tx5 != tx4 {
		t.Fatalf("logins after the reset wrote %d times", tx5-tx4)
	}
	if got := r.show("alice").FailCount; got != 0 {
		t.Fatalf("count after success %d", got)
	}
}

// TestLockoutBurstCoalesced: a concurrent burst of wrong passwords writes
// far fewer times than it fails, and counts every failure up to the lockout.
func TestLockoutBurstCoalesced(t *testing.T) {
	r := newTestRealm(t, func(c *Config) { c.LookasideTTL = -1 }) // the same packet every time
	ctx := context.Background()
	if _, err := r.admin.PolicyAdd(ctx, principal.Policy{Name: "many", MaxFailures: 1000}); err != nil {
		t.Fatal(err)
	}
	r.add(AddRequest{Name: "mallory", Password: "mallorypw", Policy: "many"})
	t.Cleanup(r.kdc.lock.waitIdle)
	pkt := r.wrongPassword("mallory")
	tx0 := boltTxID(t, r)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				reply, _ := r.kdc.Handle(ctx, pkt, TCP, nil)
				if len(reply) == 0 {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r.kdc.lock.waitIdle()
	writes := boltTxID(t, r) - tx0
	if got := r.show("mallory").FailCount; got != 400 {
		t.Fatalf("counted %d of 400 failures", got)
	}
	if writes >= 400 {
		t.Fatalf("%d writes for 400 failures", writes)
	}
	t.Logf("400 failures, %d writes", writes)
}

// BenchmarkASDuringWrongPasswordBurst measures alice's AS exchange while
// one goroutine sends wrong passwords for mallory without pause: "none" is
// no burst, "no-lockout" a burst for a principal without a lockout policy
// (the CPU the burst itself takes), "lockout" a burst counted toward a
// lockout (max failures high enough that it never locks: the worst case, a
// write for every coalesced batch), "locked" a burst against a policy that
// locks after 10 failures, as the default one does (after which each guess
// is refused from memory). The difference of "lockout" and "no-lockout" is
// what counting the failures costs others.
func BenchmarkASDuringWrongPasswordBurst(b *testing.B) {
	for _, mode := range []string{"none", "no-lockout", "lockout", "locked"} {
		b.Run(mode, func(b *testing.B) {
			r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
			ctx := context.Background()
			if _, err := r.admin.PolicyAdd(ctx, principal.Policy{Name: "many", MaxFailures: 1 << 20}); err != nil {
				b.Fatal(err)
			}
			if _, err := r.admin.PolicyAdd(ctx, principal.Policy{Name: "ten", MaxFailures: 10}); err != nil {
				b.Fatal(err)
			}
			switch mode {
			case "lockout":
				r.add(AddRequest{Name: "mallory", Password: "mallorypw", Policy: "many"})
			case "locked":
				r.add(AddRequest{Name: "mallory", Password: "mallorypw", Policy: "ten"})
			default:
				r.add(AddRequest{Name: "mallory", Password: "mallorypw", NoPolicy: true})
			}
			bad := r.wrongPassword("mallory")
			good := r.rightPassword("alice")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var burst atomic.Int64
			if mode != "none" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						r.kdc.Handle(ctx, bad, UDP, nil)
						burst.Add(1)
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, ok := r.kdc.Handle(ctx, good, UDP, nil); !ok {
					b.Fatal("no reply")
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			r.kdc.lock.waitIdle()
			b.ReportMetric(float64(burst.Load())/b.Elapsed().Seconds(), "burst/s")
		})
	}
}

// TestLockoutAudited: the KDC writes one audit line when it locks a
// principal, and none for the failures before.
func TestLockoutAudited(t *testing.T) {
	var buf syncBuffer
	r := newTestRealm(t, func(c *Config) { c.Audit = NewAuditLog(&buf, nil) })
	ctx := context.Background()
	if _, err := r.admin.PolicyAdd(ctx, principal.Policy{Name: "strict", MaxFailures: 2}); err != nil {
		t.Fatal(err)
	}
	r.add(AddRequest{Name: "erin", Password: "erinpw", Policy: "strict"})
	t.Cleanup(r.kdc.lock.waitIdle)
	for range 2 {
		expectError(t, r.exchange(r.wrongPassword("erin")), errorcode.KDC_ERR_PREAUTH_FAILED)
		r.kdc.lock.waitIdle()
	}
	log := buf.String()
	if strings.Count(log, "\n") != 1 || !strings.Contains(log, `"who":"kdc","what":"lockout","target":"erin@KRB.TEST","details":{"failures":2,"locked_until":"until unlocked"}`) {
		t.Fatalf("audit:\n%s", log)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLockoutCountsEncryptedChallenge: a wrong FAST encrypted challenge
// (RFC 6113 §5.4.6) counts as a failure as a wrong PA-ENC-TIMESTAMP does,
// and a locked principal is refused inside the armor too.
func TestLockoutCountsEncryptedChallenge(t *testing.T) {
	r := lockoutRealm(t, 0)
	c := newFastClient(t, r)
	for range 3 {
		req := asReq("alice", 18)
		req.PAData = types.PADataSequence{c.challenge(randomKey(t, 18), r.clock.Now())}
		c.fastErr(r.exchange(c.request(req)), errorcode.KDC_ERR_PREAUTH_FAILED)
	}
	if got := r.show("alice").FailCount; got != 3 {
		t.Fatalf("counted %d encrypted-challenge failures", got)
	}
	req := asReq("alice", 18)
	req.PAData = types.PADataSequence{c.challenge(r.key("alice@"+testRealm, 18), r.clock.Now())}
	c.fastErr(r.exchange(c.request(req)), errorcode.KDC_ERR_CLIENT_REVOKED)
}
