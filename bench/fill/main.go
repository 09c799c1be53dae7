// Command fill adds many principals with random keys to a bbolt realm, for
// measuring a KDC with a large database (bench/kdcbench.sh PRINCIPALS=N):
//
//	go run ./bench/fill --db kdc.db --count 100000 --prefix filler
//
// makes filler0 … filler99999 in the realm of kdc.db (made by `kdc init`; its
// master key beside it), each with the realm's default enctypes and requiring
// pre-authentication, written in key order BulkBatch to a transaction
// (store.BulkCreate). The realm must not be served while it runs: bbolt allows
// one process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

func main() {
	db := flag.String("db", "", "the bbolt database (made by kdc init)")
	count := flag.Int("count", 0, "how many principals to add")
	prefix := flag.String("prefix", "filler", "their names: PREFIX0 … PREFIX<count-1>")
	flag.Parse()
	if err := run(context.Background(), *db, *count, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "fill:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, db string, count int, prefix string) error {
	switch {
	case db == "":
		return errors.New("--db is required")
	case count < 1 || count > 10_000_000:
		return fmt.Errorf("--count %d: want 1-10000000", count)
	case prefix == "":
		return errors.New("--prefix must not be empty")
	}
	s, err := store.Open(db, store.OpenOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	recs := make([]*principal.Record, 0, min(count, 100_000)) // BulkCreate sorts each call's records
	added := 0
	for i := 0; i < count; i++ {
		keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
		if err != nil {
			return err
		}
		name := principal.Name{Components: []string{prefix + strconv.Itoa(i)}, Realm: s.Realm(), Type: 1}
		recs = append(recs, principal.NewRecord(name, keys, start))
		if len(recs) == cap(recs) || i == count-1 {
			n, err := s.BulkCreate(ctx, recs)
			added += n
			if err != nil {
				return fmt.Errorf("after %d principals: %w", added, err)
			}
			recs = recs[:0]
		}
	}
	fmt.Printf("fill: added %d principals to %s in %.1fs\n", added, db, time.Since(start).Seconds())
	return nil
}
