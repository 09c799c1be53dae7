package store

import (
	"context"
	"fmt"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Schema upgrades, run at open. Schema 2 (policies) adds to schema 1: the
// bucket or directory "policies" holding the "default" policy, and
// kadmin/changepw@REALM. Records are unchanged (their new fields are
// optional), so nothing is rewritten and nothing is lost. Schema 3 (bbolt
// only) writes records in the binary form (recordbin.go) and reads both.

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

// upgrade brings a schema-1 or schema-2 file to schemaVersion in one
// transaction. Schema 3 changes only the form of the records written from
// now on, so a schema-2 file needs only its version: old records stay
// readable, and an older kdc refuses the file rather than misreading a
// record written in the binary form.
func (s *BoltStore) upgrade() error {
	var v string
	if err := s.view(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(metaSchema)); return nil }); err != nil {
		return err
	}
	if v == schemaVersion {
		return nil // an empty write transaction would still write the file
	}
	err := s.update(func(tx *bolt.Tx) error {
		switch string(tx.Bucket(bucketMeta).Get(metaSchema)) {
		case schemaV1:
			return s.unsafeInitV2(tx, time.Now())
		case schemaV2:
			return tx.Bucket(bucketMeta).Put(metaSchema, []byte(schemaVersion))
		}
		return nil
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
	cv, err := encodeRecord(cp, mk, formJSON)
	if err != nil {
		return
	}
	pkey = prefix + etcdPoliciesDir + def.Name
	ckey = prefix + etcdPrincipalsDir + cp.Name.Key()
	return clientv3.OpPut(pkey, string(pv)), clientv3.OpPut(ckey, string(cv)), pkey, ckey, nil
}

// upgradeEtcd brings a schema-1 realm to schemaEtcd: one transaction
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
		clientv3.OpPut(vkey, schemaEtcd),
	).Commit()
	if err != nil {
		return s.unreachable("upgrade to schema "+schemaEtcd, err)
	}
	return nil
}
