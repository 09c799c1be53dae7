package store

import (
	"fmt"

	"github.com/kerbkit/kerbkit/principal"
	bolt "go.etcd.io/bbolt"
)

// The alias index of a bbolt database: bucketAliases maps each alias's name key
// to its principal's name key. Records carry their aliases; the index follows
// them in the transaction that writes the record, so the two never disagree.

// resolveAlias returns the stored record that key is an alias of, or nil.
func resolveAlias(tx *bolt.Tx, key string) []byte {
	ab := tx.Bucket(bucketAliases)
	if ab == nil {
		return nil
	}
	canon := ab.Get([]byte(key))
	if canon == nil {
		return nil
	}
	return tx.Bucket(bucketPrincipals).Get(canon)
}

// recordAliases reads the aliases of a stored record without opening its keys.
func recordAliases(v []byte) ([]string, error) {
	d, err := parseStored(v)
	if err != nil {
		return nil, err
	}
	return d.Aliases, nil
}

// putAliases updates the index for rec, whose previous stored form is old (nil
// for a new record): aliases dropped from rec leave the index, new ones enter
// it unless another principal or alias holds the name (ErrAliasConflict).
func putAliases(tx *bolt.Tx, rec *principal.Record, old []byte) error {
	var before []string
	if old != nil {
		var err error
		if before, err = recordAliases(old); err != nil {
			return err
		}
	}
	after := nameKeys(rec.Aliases)
	if len(before) == 0 && len(after) == 0 {
		return nil
	}
	ab, err := tx.CreateBucketIfNotExists(bucketAliases)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, a := range after {
		keep[a] = true
	}
	for _, a := range before {
		if !keep[a] {
			if err := ab.Delete([]byte(a)); err != nil {
				return err
			}
		}
	}
	self := []byte(rec.Name.Key())
	pb := tx.Bucket(bucketPrincipals)
	for _, a := range after {
		if pb.Get([]byte(a)) != nil {
			return fmt.Errorf("%w: %s is a principal", principal.ErrAliasConflict, a)
		}
		if c := ab.Get([]byte(a)); c != nil && string(c) != string(self) {
			return fmt.Errorf("%w: %s is an alias of %s", principal.ErrAliasConflict, a, c)
		}
		if err := ab.Put([]byte(a), self); err != nil {
			return err
		}
	}
	return nil
}

// dropAliases removes the aliases of the stored record v from the index.
func dropAliases(tx *bolt.Tx, v []byte) error {
	aliases, err := recordAliases(v)
	if err != nil || len(aliases) == 0 {
		return err
	}
	ab := tx.Bucket(bucketAliases)
	if ab == nil {
		return nil
	}
	for _, a := range aliases {
		if err := ab.Delete([]byte(a)); err != nil {
			return err
		}
	}
	return nil
}

// rebuildAliases derives the index from the records, replacing what is there
// (after a load, whose source may be an etcd database that keeps no index).
func rebuildAliases(tx *bolt.Tx) error {
	if tx.Bucket(bucketAliases) != nil {
		if err := tx.DeleteBucket(bucketAliases); err != nil {
			return err
		}
	}
	var ab *bolt.Bucket
	return tx.Bucket(bucketPrincipals).ForEach(func(k, v []byte) error {
		aliases, err := recordAliases(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		for _, a := range aliases {
			if ab == nil {
				if ab, err = tx.CreateBucket(bucketAliases); err != nil {
					return err
				}
			}
			if ab.Get([]byte(a)) != nil || tx.Bucket(bucketPrincipals).Get([]byte(a)) != nil {
				return fmt.Errorf("%w: alias %s of %s", principal.ErrAliasConflict, a, k)
			}
			if err := ab.Put([]byte(a), append([]byte(nil), k...)); err != nil {
				return err
			}
		}
		return nil
	})
}
