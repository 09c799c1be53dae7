package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestStore(t testing.TB) (*BoltStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kdc.db")
	s, err := Init(context.Background(), path, "KRB.TEST", principal.RealmPolicy{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestInitCreatesRealm(t *testing.T) {
	s, path := newTestStore(t)
	for _, p := range []string{path, MasterKeyPath(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	tgs, err := s.Get(context.Background(), principal.Krbtgt("KRB.TEST"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs.Keys) != len(principal.DefaultEnctypes) || tgs.KVNO() != 1 {
		t.Fatalf("krbtgt keys = %d kvno %d", len(tgs.Keys), tgs.KVNO())
	}
	if s.Policy() != principal.DefaultPolicy {
		t.Fatalf("policy = %+v", s.Policy())
	}
	if _, err := Init(context.Background(), path, "KRB.TEST", principal.RealmPolicy{}, testNow); err == nil {
		t.Fatal("Init over an existing database must fail")
	}
}

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	alice := principal.MustParse("alice@KRB.TEST")
	keys, err := principal.KeysFromPassword(alice, "alicepw", principal.DefaultEnctypes, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, principal.NewRecord(alice, keys, testNow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, principal.NewRecord(alice, keys, testNow)); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := s.Create(ctx, principal.NewRecord(principal.MustParse("bob@OTHER"), keys, testNow)); err == nil {
		t.Fatal("foreign realm accepted")
	}
	typed := alice
	typed.Type = 0
	got, err := s.Get(ctx, typed)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RequiresPreauth || got.Disabled || !bytes.Equal(got.Keys[0].Value, keys[0].Value) || got.Keys[0].Salt != "KRB.TESTalice" {
		t.Fatalf("record = %+v", got)
	}

	boom := errors.New("boom")
	err = s.Update(ctx, alice, func(r *principal.Record) error { r.Disabled = true; return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("update error = %v", err)
	}
	if got, _ := s.Get(ctx, alice); got.Disabled {
		t.Fatal("failed update was written")
	}
	if err := s.Update(ctx, alice, func(r *principal.Record) error { r.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, alice); !got.Disabled {
		t.Fatal("update lost")
	}

	names, err := s.List(ctx)
	if err != nil || len(names) != 3 || names[0].String() != "alice@KRB.TEST" { // with kadmin/changepw, krbtgt
		t.Fatalf("List = %v, %v", names, err)
	}
	if err := s.Delete(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, alice); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.Delete(ctx, principal.Krbtgt("KRB.TEST")); err == nil {
		t.Fatal("deleting krbtgt must be refused")
	}
}

func TestKeysSealedAtRest(t *testing.T) {
	ctx := context.Background()
	s, path := newTestStore(t)
	alice := principal.MustParse("alice@KRB.TEST")
	keys, _ := principal.KeysFromPassword(alice, "alicepw", principal.DefaultEnctypes, 1)
	if err := s.Create(ctx, principal.NewRecord(alice, keys, testNow)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if bytes.Contains(raw, k.Value) {
			t.Fatalf("%s key found in the clear in the database file", principal.EnctypeName(k.Etype))
		}
	}
	// A sealed blob moved to another principal does not open (name is the AD).
	s2, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	err = s2.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrincipals)
		v := b.Get([]byte("alice@KRB.TEST"))
		if len(v) == 0 || v[0] != recordBinary {
			t.Fatalf("alice is not stored in the binary form: %q", v)
		}
		d, err := parseStored(v)
		if err != nil {
			return err
		}
		d.Name = "mallory@KRB.TEST"
		return b.Put([]byte("mallory@KRB.TEST"), marshalRecordBinary(d))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, principal.MustParse("mallory@KRB.TEST")); !errors.Is(err, ErrMasterKey) {
		t.Fatalf("moved key blob: %v, want ErrMasterKey", err)
	}
}

func TestOpenErrors(t *testing.T) {
	s, path := newTestStore(t)

	if _, err := Open(path, OpenOptions{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open while held: %v, want ErrInUse", err)
	}
	s.Close()

	other := filepath.Join(t.TempDir(), "other.db")
	o, err := Init(context.Background(), other, "OTHER.TEST", principal.RealmPolicy{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if _, err := Open(path, OpenOptions{MasterKeyPath: MasterKeyPath(other)}); !errors.Is(err, ErrMasterKey) {
		t.Fatalf("wrong master key: %v", err)
	}

	if err := os.Chmod(MasterKeyPath(path), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, OpenOptions{}); !errors.Is(err, ErrMasterKey) {
		t.Fatalf("world-readable master key accepted: %v", err)
	}
	os.Chmod(MasterKeyPath(path), 0o600)

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, []byte("99")) })
	db.Close()
	if _, err := Open(path, OpenOptions{}); !errors.Is(err, ErrSchema) {
		t.Fatalf("future schema: %v", err)
	}

	if _, err := Open(filepath.Join(t.TempDir(), "missing.db"), OpenOptions{}); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("missing db: %v", err)
	}
}

func TestRekeyKeepsOldKeys(t *testing.T) {
	n := principal.MustParse("host/localhost@KRB.TEST")
	k1, _ := principal.RandomKeys(principal.DefaultEnctypes, 1)
	r := principal.NewRecord(n, k1, testNow)
	for v := uint32(2); v <= 5; v++ {
		kn, _ := principal.RandomKeys(principal.DefaultEnctypes[:1], v)
		r.Rekey(kn, testNow)
	}
	if r.KVNO() != 5 {
		t.Fatalf("kvno = %d", r.KVNO())
	}
	for v := uint32(1); v <= 5; v++ {
		want := v >= 5-principal.KeepOldKeys
		if r.HasKVNO(v) != want {
			t.Errorf("kvno %d kept = %v, want %v", v, r.HasKVNO(v), want)
		}
	}
	if len(r.CurrentKeys()) != 1 || r.CurrentKeys()[0].KVNO != 5 {
		t.Fatalf("current keys = %+v", r.CurrentKeys())
	}
	if _, ok := r.FindKey(18, 0); !ok {
		t.Fatal("current aes256 key not found")
	}
}

func TestRecordCacheCoherent(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	bob, keys := createBob(t, s)
	first, err := s.Get(ctx, bob) // fills the cache
	if err != nil {
		t.Fatal(err)
	}
	first.Disabled = true // the caller's copy: must not leak into the cache
	if again, _ := s.Get(ctx, bob); again.Disabled {
		t.Fatal("a caller's change reached the cache")
	}
	if err := s.Update(ctx, bob, func(r *principal.Record) error { r.MaxLife = time.Hour; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, bob); got.MaxLife != time.Hour {
		t.Fatal("Get served a record from before the update")
	}
	if err := s.Delete(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, bob); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}

	// Readers racing a writer must end up seeing the last write.
	if err := s.Create(ctx, principal.NewRecord(bob, keys, testNow)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
					if _, err := s.Get(ctx, bob); err != nil {
						t.Error(err)
						return
					}
					// The shared record is read while writes go on: under -race
					// any write into a cached record would show.
					if r, err := s.GetShared(ctx, bob); err != nil || r.MaxLife < 0 {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		life := time.Duration(i) * time.Minute
		if err := s.Update(ctx, bob, func(r *principal.Record) error { r.MaxLife = life; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if got, _ := s.Get(ctx, bob); got.MaxLife != 50*time.Minute {
		t.Fatalf("after racing reads, Get sees MaxLife %v, want the last write's 50m", got.MaxLife)
	}
}

// createBob adds bob@KRB.TEST with one random key, and returns his name and keys.
func createBob(t *testing.T, s *BoltStore) (principal.Name, []principal.Key) {
	t.Helper()
	bob := principal.MustParse("bob@KRB.TEST")
	keys, _ := principal.RandomKeys(principal.DefaultEnctypes[:1], 1)
	if err := s.Create(context.Background(), principal.NewRecord(bob, keys, testNow)); err != nil {
		t.Fatal(err)
	}
	return bob, keys
}

// TestGetShared: GetShared hands out the cached record itself, which a later
// write replaces and never changes; Get hands out a copy.
func TestGetShared(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	bob, _ := createBob(t, s)
	a, err := s.GetShared(ctx, bob) // read from bbolt, cached
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.GetShared(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("GetShared did not return the cached record")
	}
	if c, _ := s.Get(ctx, bob); c == b {
		t.Error("Get returned the cached record, not a copy")
	}
	before := a.MaxLife
	if err := s.Update(ctx, bob, func(r *principal.Record) error { r.MaxLife = before + time.Hour; return nil }); err != nil {
		t.Fatal(err)
	}
	if a.MaxLife != before {
		t.Error("an update changed a record handed out before it")
	}
	if now, _ := s.GetShared(ctx, bob); now.MaxLife != before+time.Hour {
		t.Errorf("GetShared after the update: MaxLife %v, want %v", now.MaxLife, before+time.Hour)
	}
	if _, err := s.GetShared(ctx, principal.MustParse("nobody@KRB.TEST")); !errors.Is(err, principal.ErrNotFound) {
		t.Errorf("GetShared of an unknown name: %v", err)
	}
}

func TestIncomingTrustRecord(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The inter-realm key by which KRB.TEST accepts OTHER's clients is named in
	// OTHER, and is the one foreign name a store keeps; krbtgt/THIRD@OTHER is not ours.
	if err := s.Create(ctx, principal.NewRecord(principal.CrossRealmKrbtgt("KRB.TEST", "OTHER"), keys, testNow)); err != nil {
		t.Fatalf("incoming trust key refused: %v", err)
	}
	if err := s.Create(ctx, principal.NewRecord(principal.CrossRealmKrbtgt("THIRD", "OTHER"), keys, testNow)); err == nil {
		t.Fatal("krbtgt/THIRD@OTHER accepted")
	}
	if _, err := s.Get(ctx, principal.CrossRealmKrbtgt("KRB.TEST", "OTHER")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, principal.CrossRealmKrbtgt("KRB.TEST", "OTHER")); err != nil {
		t.Fatal(err)
	}
}
