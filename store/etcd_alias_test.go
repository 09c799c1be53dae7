package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"
)

// TestEtcdAliases: an alias added through one store resolves to the canonical
// record on another; a name can be an alias of only one principal, even when
// two stores give it at the same moment; dropping an alias or deleting the
// principal frees the name.
func TestEtcdAliases(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url, mk := etcdRealm(t, c)
	a, b := openEtcd(t, url, mk), openEtcd(t, url, mk)
	ctx := context.Background()
	web, db := newUser(t, "host/web"), newUser(t, "host/db")
	for _, r := range []*principal.Record{web, db} {
		if err := a.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	www := principal.MustParse("host/www@ETCD.TEST")
	if err := a.Update(ctx, web.Name, func(r *principal.Record) error { return r.AddAlias(www) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alias on b", func() bool { r, err := b.Get(ctx, www); return err == nil && r.Name.Equal(web.Name) })

	// The alias is taken: not as another principal's alias, not as a new principal.
	err := b.Update(ctx, db.Name, func(r *principal.Record) error { return r.AddAlias(www) })
	if !errors.Is(err, principal.ErrAliasConflict) {
		t.Fatalf("second owner of an alias: %v", err)
	}
	if err := b.Create(ctx, newUser(t, "host/www")); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("principal named like an alias: %v", err)
	}
	// A principal's name cannot become an alias.
	if err := b.Update(ctx, db.Name, func(r *principal.Record) error { return r.AddAlias(web.Name) }); !errors.Is(err, principal.ErrAliasConflict) {
		t.Fatalf("a principal's name as an alias: %v", err)
	}

	// Two stores give one new name to two principals at once: one wins.
	shared := principal.MustParse("host/shared@ETCD.TEST")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*EtcdStore{a, b} {
		target := []principal.Name{web.Name, db.Name}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, target, func(r *principal.Record) error { return r.AddAlias(shared) })
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent aliases: %v, %v", errs[0], errs[1])
	}

	// Dropping the alias frees it; deleting the principal frees its aliases.
	if err := a.Update(ctx, web.Name, func(r *principal.Record) error { return r.RemoveAlias(www) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dropped alias gone on b", func() bool { _, err := b.Get(ctx, www); return errors.Is(err, principal.ErrNotFound) })
	if err := b.Update(ctx, db.Name, func(r *principal.Record) error { return r.AddAlias(www) }); err != nil {
		t.Fatalf("a freed alias: %v", err)
	}
	if err := a.Delete(ctx, db.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "aliases of a deleted principal gone", func() bool { _, err := b.Get(ctx, www); return errors.Is(err, principal.ErrNotFound) })
	if err := a.Create(ctx, newUser(t, "host/www")); err != nil {
		t.Fatalf("a principal under a freed alias: %v", err)
	}
	// A dump carries the aliases in the records; a load into bbolt rebuilds
	// its index, and the two dumps match.
	alias := principal.MustParse("host/web2@ETCD.TEST")
	if err := a.Update(ctx, web.Name, func(r *principal.Record) error { return r.AddAlias(alias) }); err != nil {
		t.Fatal(err)
	}
	var d1, d2 bytes.Buffer
	if err := Dump(ctx, a, &d1); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, mk, MasterKeyPath(dst))
	if _, err := Load(ctx, dst, OpenOptions{}, bytes.NewReader(d1.Bytes())); err != nil {
		t.Fatal(err)
	}
	bs, err := Open(dst, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if r, err := bs.Get(ctx, alias); err != nil || !r.Name.Equal(web.Name) {
		t.Fatalf("alias in the bbolt copy: %+v %v", r, err)
	}
	if err := Dump(ctx, bs, &d2); err != nil || sansSchema(t, d1.String()) != sansSchema(t, d2.String()) {
		t.Fatalf("dumps differ (%v):\n%s\n%s", err, d1.String(), d2.String())
	}

	// A fresh store (a KDC started now) builds the same index.
	fresh := openEtcd(t, url, mk)
	if r, err := fresh.Get(ctx, www); err != nil || !r.Name.Equal(www) {
		t.Fatalf("fresh store: %+v %v", r, err)
	}
}
