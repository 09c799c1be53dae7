package kdc

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"

	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// newEtcdTestRealm is newTestRealm on a store.EtcdStore over a real
// three-member etcd cluster: the request path reads the store's memory.
func newEtcdTestRealm(b *testing.B, mutate ...func(*Config)) *testRealmEnv {
	b.Helper()
	c := etcdtest.Start(b, 3)
	url := c.URL("kdc-bench")
	mk := filepath.Join(b.TempDir(), "realm.mkey")
	ctx := context.Background()
	if err := store.InitEtcd(ctx, url, mk, testRealm, principal.RealmPolicy{MaxLife: 10 * time.Hour, MaxRenew: 7 * 24 * time.Hour}, store.EtcdOptions{}, time.Now()); err != nil {
		b.Fatal(err)
	}
	s, err := store.OpenEtcd(ctx, url, mk, store.EtcdOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	clk := &clock.Offset{}
	cfg := Config{Store: s, Now: clk.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	k, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r := &testRealmEnv{t: b, store: s, kdc: k, clock: clk, admin: &LocalAdmin{Store: s}}
	r.add(AddRequest{Name: "alice", Password: testPassword})
	r.add(AddRequest{Name: "host/localhost", RandomKey: true})
	return r
}

// BenchmarkASPreauthEtcd is BenchmarkASPreauth with the KDC on etcd: the
// allocations match and so does the work, since lookups read memory either
// way. On a small machine the time per exchange is higher by what the three
// etcd members running beside it take (their heartbeats): BenchmarkASPreauth
// with an idle cluster on the same cores shows the same difference.
func BenchmarkASPreauthEtcd(b *testing.B) {
	r := newEtcdTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	req, _ := r.preauthASReq("alice", 18, 18)
	pkt := marshalAS(b, req)
	benchHandle(b, r.kdc, pkt)
}

// BenchmarkTGSEtcd is BenchmarkTGS with the KDC on etcd.
func BenchmarkTGSEtcd(b *testing.B) {
	r := newEtcdTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	tgt, tpart := r.login(nil)
	pkt := newTGS(r, tgt, tpart).marshal()
	tgsRep(b, r.exchange(pkt), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	benchHandle(b, r.kdc, pkt)
}
