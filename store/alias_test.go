package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kerbkit/kerbkit/principal"
)

func TestAliases(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	alice, bob := principal.MustParse("alice@KRB.TEST"), principal.MustParse("bob@KRB.TEST")
	al, al2 := principal.MustParse("al@KRB.TEST"), principal.MustParse(`alice\@example.com@KRB.TEST`)
	for _, n := range []principal.Name{alice, bob} {
		if err := s.Create(ctx, principal.NewRecord(n, nil, testNow)); err != nil {
			t.Fatal(err)
		}
	}
	// Cache alice first, so the alias must not be answered from a stale entry.
	if _, err := s.Get(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, al); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("alias before it exists: %v", err)
	}
	add := func(owner, alias principal.Name) error {
		return s.Update(ctx, owner, func(r *principal.Record) error { return r.AddAlias(alias) })
	}
	if err := add(alice, al); err != nil {
		t.Fatal(err)
	}
	if err := add(alice, al2); err != nil {
		t.Fatal(err)
	}
	for _, n := range []principal.Name{al, al2, alice} {
		r, err := s.Get(ctx, n)
		if err != nil || !r.Name.Equal(alice) || len(r.Aliases) != 2 {
			t.Fatalf("Get(%s) = %v, %v", n, r, err)
		}
	}
	// Clashes: bob may not take alice's alias, nor alice's name; no principal
	// may be created under an alias; nothing changes on refusal.
	for _, bad := range []principal.Name{al, alice} {
		if err := add(bob, bad); !errors.Is(err, principal.ErrExists) {
			t.Fatalf("bob takes %s: %v", bad, err)
		}
	}
	if err := s.Create(ctx, principal.NewRecord(al, nil, testNow)); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("create under an alias: %v", err)
	}
	if r, _ := s.Get(ctx, bob); len(r.Aliases) != 0 {
		t.Fatalf("bob got aliases: %v", r.Aliases)
	}

	// Dump and load keep the aliases (the index is rebuilt, not dumped).
	var d bytes.Buffer
	if err := Dump(ctx, s, &d); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(d.Bytes(), []byte(`"kind":"aliases"`)) {
		t.Fatalf("the dump carries the derived index:\n%s", d.String())
	}
	dst := filepath.Join(t.TempDir(), "loaded.db")
	if _, err := Load(ctx, dst, OpenOptions{MasterKeyPath: MasterKeyPath(s.Path())}, bytes.NewReader(d.Bytes())); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dst, OpenOptions{MasterKeyPath: MasterKeyPath(s.Path())})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := l.Get(ctx, al2); err != nil || !r.Name.Equal(alice) {
		t.Fatalf("loaded alias: %v %v", r, err)
	}
	l.Close()

	// Removing an alias frees the name; deleting the principal frees the rest.
	if err := s.Update(ctx, alice, func(r *principal.Record) error { return r.RemoveAlias(al) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, al); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("removed alias still found: %v", err)
	}
	if err := add(bob, al); err != nil {
		t.Fatalf("bob takes the freed alias: %v", err)
	}
	if err := s.Delete(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, al2); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("alias of a deleted principal: %v", err)
	}
	if err := s.Create(ctx, principal.NewRecord(al2, nil, testNow)); err != nil {
		t.Fatalf("create under a freed alias: %v", err)
	}
}

func TestDelegationRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	svc := principal.NewRecord(principal.MustParse("HTTP/web@KRB.TEST"), nil, testNow)
	svc.Delegation = principal.Delegation{OKAsDelegate: true, OKToAuthAsDelegate: true,
		AllowedTo: []principal.Name{principal.MustParse("postgres/db@KRB.TEST")}}
	if err := s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	s.invalidate(svc.Name.Key())
	r, err := s.Get(ctx, svc.Name)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Delegation
	if !d.OKAsDelegate || !d.OKToAuthAsDelegate || !r.MayDelegateTo(principal.MustParse("postgres/db@KRB.TEST")) || r.MayDelegateTo(principal.MustParse("HTTP/web@KRB.TEST")) {
		t.Fatalf("delegation after a round trip: %+v", d)
	}
}
