package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kerbkit/kerbkit/principal"
)

func bulkRecords(t *testing.T, n int, realm string) []*principal.Record {
	t.Helper()
	keys, err := principal.RandomKeys([]int32{18}, 1)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*principal.Record, n)
	for i := range recs {
		// Out of key order on purpose: BulkCreate sorts.
		name := principal.Name{Components: []string{fmt.Sprintf("bulk%d", (i*7919)%n)}, Realm: realm, Type: 1}
		recs[i] = principal.NewRecord(name, keys, testNow)
	}
	return recs
}

func TestBulkCreate(t *testing.T) {
	s, path := newTestStore(t)
	ctx := context.Background()
	n := 2*BulkBatch + 123 // three transactions
	if got, err := s.BulkCreate(ctx, bulkRecords(t, n, "KRB.TEST")); err != nil || got != n {
		t.Fatalf("BulkCreate = %d, %v", got, err)
	}
	for _, i := range []int{0, 1, BulkBatch, n - 1} {
		rec, err := s.Get(ctx, principal.MustParse(fmt.Sprintf("bulk%d@KRB.TEST", i)))
		if err != nil || len(rec.Keys) != 1 || !rec.RequiresPreauth {
			t.Fatalf("bulk%d: %+v, %v", i, rec, err)
		}
	}
	names, err := s.List(ctx)
	if err != nil || len(names) != n+2 { // and krbtgt, kadmin/changepw
		t.Fatalf("List: %d names, %v", len(names), err)
	}
	// The records are sealed like any other: the file reopens and checks.
	s.Close()
	s2, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, principal.MustParse("bulk77@KRB.TEST")); err != nil {
		t.Fatal(err)
	}
}

func TestBulkCreateRefuses(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if _, err := s.BulkCreate(ctx, bulkRecords(t, 10, "OTHER.TEST")); err == nil {
		t.Fatal("records of another realm accepted")
	}
	recs := bulkRecords(t, 10, "KRB.TEST")
	if _, err := s.BulkCreate(ctx, recs[:5]); err != nil {
		t.Fatal(err)
	}
	// A batch with one existing name writes nothing of that batch.
	_, err := s.BulkCreate(ctx, recs)
	if !errors.Is(err, principal.ErrExists) {
		t.Fatalf("existing name: %v", err)
	}
	names, _ := s.List(ctx)
	if len(names) != 5+2 { // krbtgt and kadmin/changepw
		t.Fatalf("%d names after a refused batch, want 7", len(names))
	}
}

// TestRecordCacheBounded: looking up more principals than MaxCachedRecords
// keeps the cache at its bound, and every lookup still answers.
func TestRecordCacheBounded(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	n := MaxCachedRecords + 500
	if _, err := s.BulkCreate(ctx, bulkRecords(t, n, "KRB.TEST")); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		for i := 0; i < n; i++ {
			if _, err := s.Get(ctx, principal.MustParse(fmt.Sprintf("bulk%d@KRB.TEST", i))); err != nil {
				t.Fatal(err)
			}
		}
		if c := s.cached.Load(); c != MaxCachedRecords {
			t.Fatalf("round %d: %d records cached, want %d", round, c, MaxCachedRecords)
		}
	}
}
