package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// TestFill: the principals are there afterwards, each with the realm's default
// enctypes and requiring pre-authentication; a second fill of the same names
// is refused and bad flags are errors.
func TestFill(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "kdc.db")
	s, err := store.Init(ctx, db, "FILL.TEST", principal.RealmPolicy{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if err := run(ctx, db, 2500, "f"); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(db, store.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+2500 {
		t.Fatalf("%d principals after filling 2500 into %d", len(after), len(before))
	}
	for _, n := range []string{"f0", "f1234", "f2499"} {
		r, err := s.Get(ctx, principal.Name{Components: []string{n}, Realm: "FILL.TEST", Type: 1})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		var etypes []int32
		for _, k := range r.Keys {
			etypes = append(etypes, k.Etype)
		}
		if !r.RequiresPreauth || !slices.Equal(etypes, principal.DefaultEnctypes) {
			t.Errorf("%s: preauth %v, enctypes %v; want %v", n, r.RequiresPreauth, etypes, principal.DefaultEnctypes)
		}
	}
	s.Close()

	if err := run(ctx, db, 10, "f"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("filling the same names again: %v", err)
	}
	for _, c := range []struct {
		db     string
		count  int
		prefix string
	}{{"", 1, "f"}, {db, 0, "g"}, {db, 1, ""}, {db, 10_000_001, "g"}} {
		if err := run(ctx, c.db, c.count, c.prefix); err == nil {
			t.Errorf("run(%q, %d, %q) accepted", c.db, c.count, c.prefix)
		}
	}
}
