package store

import (
	"context"
	"fmt"
	"sort"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
)

// BulkBatch is how many records BulkCreate writes per transaction.
const BulkBatch = 10000

// BulkCreate adds many new records at once, for loading a large database
// (benchmarks at a million principals, imports): the records are written in
// key order, BulkBatch to a transaction, with bbolt's pages filled for
// appends. Like Create it refuses a name that exists (ErrExists) or is not in
// the realm; a batch with such a record writes nothing, and earlier batches
// stay written. It returns how many records were written.
func (s *BoltStore) BulkCreate(ctx context.Context, recs []*principal.Record) (int, error) {
	type keyed struct {
		key string
		rec *principal.Record
	}
	sorted := make([]keyed, len(recs))
	for i, r := range recs {
		if r.Name.Realm != s.realm && !r.Name.IsIncomingTrust(s.realm) {
			return 0, fmt.Errorf("store: %s is not in realm %s", r.Name, s.realm)
		}
		sorted[i] = keyed{r.Name.Key(), r}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
	written := 0
	for start := 0; start < len(sorted); start += BulkBatch {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		batch := sorted[start:min(start+BulkBatch, len(sorted))]
		err := s.update(func(tx *bolt.Tx) error {
			// Keys arrive in order: full pages, as for an append-only load.
			tx.Bucket(bucketPrincipals).FillPercent = 0.95
			for _, k := range batch {
				if err := s.unsafePut(tx, k.rec, true); err != nil {
					return err
				}
			}
			return nil
		})
		for _, k := range batch {
			s.invalidate(k.key)
		}
		if err != nil {
			return written, fmt.Errorf("store: bulk create: %w", err)
		}
		written += len(batch)
	}
	return written, nil
}
