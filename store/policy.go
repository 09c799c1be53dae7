package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Named password and lockout policies (principal.PolicyStore): in bbolt the
// bucket "policies", in etcd PREFIX/policies/NAME, one JSON value each (no
// secrets), carried by dump and load like every other kind.

const etcdPoliciesDir = "policies/"

var (
	_ principal.PolicyStore = (*BoltStore)(nil)
	_ principal.PolicyStore = (*EtcdStore)(nil)
)

func policyNotFound(name string) error {
	return fmt.Errorf("%w: policy %q", principal.ErrNotFound, name)
}

// GetPolicy implements principal.PolicyStore.
func (s *BoltStore) GetPolicy(ctx context.Context, name string) (*principal.Policy, error) {
	var p *principal.Policy
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		var v []byte
		if b != nil {
			v = b.Get([]byte(name))
		}
		if v == nil {
			return policyNotFound(name)
		}
		var err error
		p, err = decodePolicy(v)
		return err
	})
	return p, err
}

// CreatePolicy implements principal.PolicyStore.
func (s *BoltStore) CreatePolicy(ctx context.Context, p *principal.Policy) error {
	v, err := encodePolicy(p)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPolicies)
		if err != nil {
			return err
		}
		if b.Get([]byte(p.Name)) != nil {
			return fmt.Errorf("%w: policy %q", principal.ErrExists, p.Name)
		}
		return b.Put([]byte(p.Name), v)
	})
}

// UpdatePolicy implements principal.PolicyStore.
func (s *BoltStore) UpdatePolicy(ctx context.Context, name string, fn func(*principal.Policy) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		var v []byte
		if b != nil {
			v = b.Get([]byte(name))
		}
		if v == nil {
			return policyNotFound(name)
		}
		p, err := decodePolicy(v)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.Name != name {
			return fmt.Errorf("store: update may not rename policy %q", name)
		}
		if v, err = encodePolicy(p); err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
}

// DeletePolicy implements principal.PolicyStore. It refuses a policy a
// principal names (MIT's "Policy is in use").
func (s *BoltStore) DeletePolicy(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		if b == nil || b.Get([]byte(name)) == nil {
			return policyNotFound(name)
		}
		var user string
		err := tx.Bucket(bucketPrincipals).ForEach(func(k, v []byte) error {
			if policyOf(v) == name {
				user = string(k)
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			return err
		}
		if user != "" {
			return fmt.Errorf("%w: policy %q is the policy of %s (and perhaps others)", principal.ErrPolicyInUse, name, user)
		}
		return b.Delete([]byte(name))
	})
}

var errStop = fmt.Errorf("store: stop")

// policyOf reads the policy name of a stored record without unsealing it.
func policyOf(v []byte) string {
	d, err := parseStored(v)
	if err != nil {
		return ""
	}
	return d.Policy
}

// ListPolicies implements principal.PolicyStore.
func (s *BoltStore) ListPolicies(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

func (s *EtcdStore) policyKey(name string) string { return s.prefix + etcdPoliciesDir + name }

// GetPolicy implements principal.PolicyStore. A serving store reads its
// memory (policies are loaded and watched like records); a one-shot store
// (NoWatch) reads etcd.
func (s *EtcdStore) GetPolicy(ctx context.Context, name string) (*principal.Policy, error) {
	if s.watching {
		v, ok := s.pols.Load(name)
		if !ok {
			return nil, policyNotFound(name)
		}
		p := *v.(*principal.Policy)
		return &p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := s.cl.Get(ctx, s.policyKey(name))
	if err != nil {
		return nil, s.unreachable("read policy "+name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, policyNotFound(name)
	}
	return decodePolicy(resp.Kvs[0].Value)
}

// CreatePolicy implements principal.PolicyStore.
func (s *EtcdStore) CreatePolicy(ctx context.Context, p *principal.Policy) error {
	v, err := encodePolicy(p)
	if err != nil {
		return err
	}
	if err := s.down("add policy " + p.Name); err != nil {
		return err
	}
	k := s.policyKey(p.Name)
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := s.cl.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, string(v))).Commit()
	if err != nil {
		return s.unreachable("add policy "+p.Name, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: policy %q", principal.ErrExists, p.Name)
	}
	s.settle(ctx, resp.Header.Revision)
	return nil
}

// UpdatePolicy implements principal.PolicyStore, with a revision compare as
// Update does.
func (s *EtcdStore) UpdatePolicy(ctx context.Context, name string, fn func(*principal.Policy) error) error {
	if err := s.down("change policy " + name); err != nil {
		return err
	}
	k := s.policyKey(name)
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	for range etcdUpdateRetries {
		resp, err := s.cl.Get(ctx, k)
		if err != nil {
			return s.unreachable("change policy "+name, err)
		}
		if len(resp.Kvs) == 0 {
			return policyNotFound(name)
		}
		p, err := decodePolicy(resp.Kvs[0].Value)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.Name != name {
			return fmt.Errorf("store: update may not rename policy %q", name)
		}
		v, err := encodePolicy(p)
		if err != nil {
			return err
		}
		tr, err := s.cl.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", resp.Kvs[0].ModRevision)).Then(clientv3.OpPut(k, string(v))).Commit()
		if err != nil {
			return s.unreachable("change policy "+name, err)
		}
		if tr.Succeeded {
			s.settle(ctx, tr.Header.Revision)
			return nil
		}
	}
	return fmt.Errorf("store: change of policy %q: it kept changing under it (%d tries)", name, etcdUpdateRetries)
}

// DeletePolicy implements principal.PolicyStore; it refuses a policy a
// principal of this KDC's memory names.
func (s *EtcdStore) DeletePolicy(ctx context.Context, name string) error {
	if err := s.down("delete policy " + name); err != nil {
		return err
	}
	var user string
	s.recs.Range(func(_, v any) bool {
		if d, err := parseStored(v.([]byte)); err == nil && d.Policy == name {
			user = d.Name
			return false
		}
		return true
	})
	if user != "" {
		return fmt.Errorf("%w: policy %q is the policy of %s (and perhaps others)", principal.ErrPolicyInUse, name, user)
	}
	k := s.policyKey(name)
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := s.cl.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "!=", 0)).Then(clientv3.OpDelete(k)).Commit()
	if err != nil {
		return s.unreachable("delete policy "+name, err)
	}
	if !resp.Succeeded {
		return policyNotFound(name)
	}
	s.settle(ctx, resp.Header.Revision)
	return nil
}

// ListPolicies implements principal.PolicyStore.
func (s *EtcdStore) ListPolicies(ctx context.Context) ([]string, error) {
	if s.watching {
		var out []string
		s.pols.Range(func(k, _ any) bool {
			out = append(out, k.(string))
			return true
		})
		sort.Strings(out)
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	dir := s.prefix + etcdPoliciesDir
	resp, err := s.cl.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, s.unreachable("list policies", err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), dir))
	}
	sort.Strings(out)
	return out, nil
}

// newChangepw is kadmin/changepw@realm, the service of password changes
// (RFC 3244), with random keys.
func newChangepw(realm string, now time.Time) (*principal.Record, error) {
	keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
	if err != nil {
		return nil, err
	}
	return principal.NewRecord(principal.ChangepwName(realm), keys, now), nil
}

// TxID is the id of the last committed write transaction: it changes with
// every write to the file (tests check that logins write nothing).
func (s *BoltStore) TxID() (int, error) {
	var id int
	err := s.view(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id, err
}
