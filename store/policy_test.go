package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
)

// copyV1 copies testdata/schema1 (made by the schema-1 code, at 99ef8e7:
// alice with alias al, bob disabled, host/www.v1.test; passwords NAME-pw)
// to a temporary directory.
func copyV1(t *testing.T) string { return copyFixture(t, "schema1") }

// copyFixture copies the database testdata/NAME/kdc.db and its master key to
// a temporary directory and returns the copy's path.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"kdc.db", "kdc.db.mkey"} {
		b, err := os.ReadFile(filepath.Join("testdata", name, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "kdc.db")
}

// TestUpgradeSchema1: a schema-1 file opens, is upgraded to schema 2 (the
// policies bucket with the default policy, kadmin/changepw) and loses
// nothing: every record, alias and key reads as before.
func TestUpgradeSchema1(t *testing.T) {
	path := copyV1(t)
	ctx := context.Background()
	s, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice@V1.TEST", "bob@V1.TEST", "host/www.v1.test@V1.TEST", "kadmin/changepw@V1.TEST", "krbtgt/V1.TEST@V1.TEST"}
	if len(names) != len(want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	for i := range want {
		if names[i].String() != want[i] {
			t.Fatalf("names %v, want %v", names, want)
		}
	}
	al, _ := principal.Parse("al", "V1.TEST")
	alice, err := s.Get(ctx, al)
	if err != nil || alice.Name.String() != "alice@V1.TEST" {
		t.Fatalf("alias after upgrade: %v %v", alice, err)
	}
	keys, _ := principal.KeysFromPassword(alice.Name, "alice-pw", principal.DefaultEnctypes, 1)
	if k, ok := alice.FindKey(keys[0].Etype, 1); !ok || string(k.Value) != string(keys[0].Value) {
		t.Fatal("alice's key changed in the upgrade")
	}
	bob, _ := principal.Parse("bob", "V1.TEST")
	if r, err := s.Get(ctx, bob); err != nil || !r.Disabled || r.Policy != "" {
		t.Fatalf("bob after upgrade: %+v %v", r, err)
	}
	if s.Policy().MaxLife != 10*time.Hour {
		t.Fatalf("realm policy lost: %+v", s.Policy())
	}
	def, err := s.GetPolicy(ctx, "default")
	if err != nil || *def != *principal.DefaultPasswordPolicy() {
		t.Fatalf("default policy: %+v %v", def, err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Upgraded once: a second open finds schema 2 and changes nothing.
	fi1, _ := os.Stat(path)
	s, err = Open(path, OpenOptions{SkipCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	s.view(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(metaSchema)); return nil })
	s.Close()
	fi2, _ := os.Stat(path)
	if v != schemaVersion || !fi2.ModTime().Equal(fi1.ModTime()) {
		t.Fatalf("schema %q after reopen, mtime %v -> %v", v, fi1.ModTime(), fi2.ModTime())
	}
}

func TestPolicyCRUD(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	testPolicyCRUD(t, ctx, s, s, "KRB.TEST")
}

// testPolicyCRUD runs the PolicyStore contract against a store of realm.
func testPolicyCRUD(t *testing.T, ctx context.Context, ps principal.PolicyStore, st principal.Store, realm string) {
	t.Helper()
	if names, err := ps.ListPolicies(ctx); err != nil || len(names) != 1 || names[0] != "default" {
		t.Fatalf("policies of a new realm: %v %v", names, err)
	}
	p := &principal.Policy{Name: "strict", MinLength: 12, MinClasses: 3, History: 5, MaxLife: 90 * 24 * time.Hour,
		MaxFailures: 3, FailureInterval: time.Minute, LockoutDuration: 0}
	if err := ps.CreatePolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := ps.CreatePolicy(ctx, p); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := ps.CreatePolicy(ctx, &principal.Policy{Name: "bad", MinClasses: 9}); err == nil {
		t.Fatal("invalid policy stored")
	}
	got, err := ps.GetPolicy(ctx, "strict")
	if err != nil || *got != *p {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := ps.UpdatePolicy(ctx, "strict", func(p *principal.Policy) error { p.MinLength = 14; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := ps.GetPolicy(ctx, "strict"); got.MinLength != 14 {
		t.Fatalf("update lost: %+v", got)
	}
	if err := ps.UpdatePolicy(ctx, "nope", func(*principal.Policy) error { return nil }); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("update of a missing policy: %v", err)
	}
	if _, err := ps.GetPolicy(ctx, "nope"); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("get of a missing policy: %v", err)
	}
	// A policy in use is not deleted.
	n, _ := principal.Parse("carol", realm)
	keys, _ := principal.RandomKeys(principal.DefaultEnctypes, 1)
	r := principal.NewRecord(n, keys, time.Now())
	r.Policy = "strict"
	if err := st.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := ps.DeletePolicy(ctx, "strict"); !errors.Is(err, principal.ErrPolicyInUse) {
		t.Fatalf("delete of a policy in use: %v", err)
	}
	if err := st.Delete(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := ps.DeletePolicy(ctx, "strict"); err != nil {
		t.Fatal(err)
	}
	if err := ps.DeletePolicy(ctx, "strict"); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestRecordPolicyFieldsRoundTrip: the lockout state and the key history
// (sealed) survive the store.
func TestRecordPolicyFieldsRoundTrip(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	n, _ := principal.Parse("dave", "KRB.TEST")
	keys, _ := principal.KeysFromPassword(n, "first-Pw1", principal.DefaultEnctypes, 1)
	r := principal.NewRecord(n, keys, testNow)
	r.Policy = "default"
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	pol := &principal.Policy{Name: "default", History: 3, MaxFailures: 10}
	err := s.Update(ctx, n, func(r *principal.Record) error {
		if err := r.SetPassword(pol, "second-Pw2", testNow, false); err != nil {
			return err
		}
		r.RecordFailure(pol, testNow, 2)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if got.FailCount != 2 || !got.LastFailure.Equal(testNow.Truncate(time.Second)) || len(got.KeyHistory) != 1 ||
		got.Policy != "default" || !got.LastPasswordChange.Equal(testNow.Truncate(time.Second)) {
		t.Fatalf("round trip: fail count %d, last failure %v, %d history keys, policy %q, last change %v",
			got.FailCount, got.LastFailure, len(got.KeyHistory), got.Policy, got.LastPasswordChange)
	}
	if err := principal.CheckPassword(pol, got, "first-Pw1"); !errors.Is(err, principal.ErrPasswordQuality) {
		t.Fatalf("the old password after a round trip: %v", err)
	}
	var raw []byte
	s.view(func(tx *bolt.Tx) error {
		raw = append(raw, tx.Bucket(bucketPrincipals).Get([]byte(n.Key()))...)
		return nil
	})
	if len(raw) == 0 || bytes.Contains(raw, keys[0].Value) || bytes.Contains(raw, got.KeyHistory[0].Value) {
		t.Fatal("a key in the clear in the stored record")
	}
}

func TestEtcdPolicies(t *testing.T) {
	c := etcdtest.Start(t, 1)
	url, mk := etcdRealm(t, c)
	s := openEtcd(t, url, mk)
	ctx := context.Background()
	testPolicyCRUD(t, ctx, s, s, "ETCD.TEST")
	if _, err := s.Get(ctx, principal.ChangepwName("ETCD.TEST")); err != nil {
		t.Fatalf("kadmin/changepw in a new etcd realm: %v", err)
	}
}

// TestEtcdUpgradeSchema1: an etcd realm of schema 1 (no policies, no
// kadmin/changepw) is upgraded at open, keeping its records.
func TestEtcdUpgradeSchema1(t *testing.T) {
	c := etcdtest.Start(t, 1)
	url, mk := etcdRealm(t, c)
	_, prefix, _ := ParseEtcdURL(url)
	s := openEtcd(t, url, mk)
	ctx := context.Background()
	alice := newUser(t, "alice")
	if err := s.Create(ctx, alice); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it what schema-1 code left behind.
	cl := c.Client()
	for _, k := range []string{prefix + etcdPoliciesDir + "default", prefix + etcdPrincipalsDir + principal.ChangepwName("ETCD.TEST").Key()} {
		if _, err := cl.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Put(ctx, prefix+etcdMetaDir+string(metaSchema), schemaV1); err != nil {
		t.Fatal(err)
	}
	s = openEtcd(t, url, mk)
	if _, err := s.Get(ctx, principal.ChangepwName("ETCD.TEST")); err != nil {
		t.Fatalf("kadmin/changepw after the upgrade: %v", err)
	}
	if got, err := s.Get(ctx, alice.Name); err != nil || string(got.Keys[0].Value) != string(alice.Keys[0].Value) {
		t.Fatalf("alice after the upgrade: %v", err)
	}
	if p, err := s.GetPolicy(ctx, "default"); err != nil || p.MaxFailures != principal.DefaultPasswordPolicy().MaxFailures {
		t.Fatalf("default policy after the upgrade: %+v %v", p, err)
	}
	resp, err := cl.Get(ctx, prefix+etcdMetaDir+string(metaSchema))
	if err != nil || string(resp.Kvs[0].Value) != schemaEtcd {
		t.Fatalf("schema after the upgrade: %v %v", resp, err)
	}
}
