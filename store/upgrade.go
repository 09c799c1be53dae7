package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Schema upgrades, run at open. Schema 2 (policies) adds to schema 1: the
// bucket or directory "policies" holding the "default" policy, and
// kadmin/changepw@REALM. Records are unchanged (their new fields are
// optional), so nothing is rewritten and nothing is lost.

func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }

// unsafeInitV2 adds what schema 2 has and schema 1 lacks, inside tx: the
// policies bucket with the default policy and kadmin/changepw, each only
// if missing, and the version.
func (s *BoltStore) unsafeInitV2(tx *bolt.Tx, now time.Time) error {
	b, err := tx.CreateBucketIfNotExists(bucketPolicies)
	if err != nil {
		return err
	}
	def := principal.DefaultPasswordPolicy()
	if b.Get([]byte(def.Name)) == nil {
		v, err := encodePolicy(def)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(def.Name), v); err != nil {
			return err
		}
	}
	cp, err := newChangepw(s.realm, now)
	if err != nil {
		return err
	}
	if tx.Bucket(bucketPrincipals).Get([]byte(cp.Name.Key())) == nil {
		if err := s.unsafePut(tx, cp, true); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, []byte(schemaVersion))
}

// upgrade brings a schema-1 file to schemaVersion in one transaction.
func (s *BoltStore) upgrade() error {
	var v string
	if err := s.view(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(metaSchema)); return nil }); err != nil {
		return err
	}
	if v != schemaV1 {
		return nil // an empty write transaction would still write the file
	}
	err := s.update(func(tx *bolt.Tx) error {
		if string(tx.Bucket(bucketMeta).Get(metaSchema)) != schemaV1 {
			return nil
		}
		return s.unsafeInitV2(tx, time.Now())
	})
	if err != nil {
		return fmt.Errorf("store: upgrading %s to schema %s: %w", s.path, schemaVersion, err)
	}
	return nil
}

// etcdV2Ops are the operations that make a schema-1 realm a schema-2 one
// (the caller compares the version first); existing keys are kept.
func etcdV2Puts(prefix, realm string, mk *MasterKey, now time.Time) (policy, changepw clientv3.Op, pkey, ckey string, err error) {
	def := principal.DefaultPasswordPolicy()
	pv, err := encodePolicy(def)
	if err != nil {
		return
	}
	cp, err := newChangepw(realm, now)
	if err != nil {
		return
	}
	cv, err := encodeRecord(cp, mk)
	if err != nil {
		return
	}
	pkey = prefix + etcdPoliciesDir + def.Name
	ckey = prefix + etcdPrincipalsDir + cp.Name.Key()
	return clientv3.OpPut(pkey, string(pv)), clientv3.OpPut(ckey, string(cv)), pkey, ckey, nil
}

// upgradeEtcd brings a schema-1 realm to schemaVersion: one transaction
// that succeeds only while the version is still 1 (another KDC may be
// upgrading at the same time), and adds the default policy and
// kadmin/changepw where missing.
func (s *EtcdStore) upgradeEtcd(ctx context.Context) error {
	pol, cp, pkey, ckey, err := etcdV2Puts(s.prefix, s.realm, s.mk, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	vkey := s.prefix + etcdMetaDir + string(metaSchema)
	_, err = s.cl.Txn(ctx).If(clientv3.Compare(clientv3.Value(vkey), "=", schemaV1)).Then(
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(pkey), "=", 0)}, []clientv3.Op{pol}, nil),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(ckey), "=", 0)}, []clientv3.Op{cp}, nil),
		clientv3.OpPut(vkey, schemaVersion),
	).Commit()
	if err != nil {
		return s.unreachable("upgrade to schema "+schemaVersion, err)
	}
	return nil
}
