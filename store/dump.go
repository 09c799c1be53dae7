package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The dump format: one JSON object per line. The first line is the header
// (format version, realm and the meta values, exactly as stored); every other
// line is one stored value: its kind (the bbolt bucket or etcd directory,
// "principals" for records, and any kind a later schema adds, such as
// policies), its key, and the stored value itself (records are JSON; their
// long-term keys stay sealed under the master key). A dump holds no clear key
// and loads only where the same master key is given.
const dumpFormat = 1

// maxDumpLine bounds one line of a dump (a record is at most maxRecordSize).
const maxDumpLine = 2*maxRecordSize + 4096

// dumpHeader is the first line of a dump.
type dumpHeader struct {
	Format int               `json:"kerbkit_dump"`
	Realm  string            `json:"realm"`
	Meta   map[string][]byte `json:"meta"`
}

// dumpLine is every other line of a dump. Value holds a JSON value as stored;
// Bytes holds a value that is not JSON.
type dumpLine struct {
	Kind  string          `json:"kind"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
	Bytes []byte          `json:"bytes,omitempty"`
}

// rawStore is the stored form of a realm, for dump: the meta values, and
// every other value by kind and key, in order.
type rawStore interface {
	rawMeta(ctx context.Context) (map[string][]byte, error)
	rawEach(ctx context.Context, fn func(kind, key string, v []byte) error) error
}

// Dump writes the realm in db to w, one JSON object per line, in kind and key
// order, so two dumps of the same content are byte-identical.
func Dump(ctx context.Context, db DB, w io.Writer) error {
	raw, ok := db.(rawStore)
	if !ok {
		return fmt.Errorf("store: dump: %T cannot be dumped", db)
	}
	meta, err := raw.rawMeta(ctx)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(dumpHeader{Format: dumpFormat, Realm: string(meta[string(metaRealm)]), Meta: meta}); err != nil {
		return fmt.Errorf("store: dump: %w", err)
	}
	err = raw.rawEach(ctx, func(kind, key string, v []byte) error {
		l := dumpLine{Kind: kind, Key: key}
		if kind == string(bucketPrincipals) {
			// A dump holds records in their JSON form, whatever the store
			// keeps (the sealed keys inside stay as they are).
			j, err := transcode(v, formJSON)
			if err != nil {
				return fmt.Errorf("record %s: %w", key, err)
			}
			v = j
		}
		if json.Valid(v) {
			l.Value = v
		} else {
			l.Bytes = v
		}
		return enc.Encode(l)
	})
	if err != nil {
		return fmt.Errorf("store: dump: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: dump: %w", err)
	}
	return nil
}

func (s *BoltStore) rawMeta(context.Context) (map[string][]byte, error) {
	meta := map[string][]byte{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
			meta[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return meta, err
}

func (s *BoltStore) rawEach(ctx context.Context, fn func(kind, key string, v []byte) error) error {
	return s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == string(bucketMeta) || string(name) == string(bucketAliases) {
				return nil // the alias index is derived from the records
			}
			// bbolt iterates buckets and keys in byte order, as etcd ranges do.
			return b.ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				return fn(string(name), string(k), append([]byte(nil), v...))
			})
		})
	})
}

func (s *EtcdStore) rawMeta(ctx context.Context) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := s.cl.Get(ctx, s.prefix+etcdMetaDir, clientv3.WithPrefix())
	if err != nil {
		return nil, s.unreachable("dump", err)
	}
	meta := map[string][]byte{}
	for _, kv := range resp.Kvs {
		meta[strings.TrimPrefix(string(kv.Key), s.prefix+etcdMetaDir)] = kv.Value
	}
	return meta, nil
}

// rawEach reads every key under the prefix but the meta ones, at one
// revision, a page at a time; the first path element is the kind.
func (s *EtcdStore) rawEach(ctx context.Context, fn func(kind, key string, v []byte) error) error {
	start := s.prefix
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(etcdPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		pctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
		resp, err := s.cl.Get(pctx, start, opts...)
		cancel()
		if err != nil {
			return s.unreachable("dump", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			rel := strings.TrimPrefix(string(kv.Key), s.prefix)
			kind, key, ok := strings.Cut(rel, "/")
			if !ok || kind+"/" == etcdMetaDir || kind+"/" == etcdAliasesDir {
				continue // the alias index is derived from the records
			}
			if err := fn(kind, key, kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Load creates the database named by arg (see OpenDB; it must not exist, or
// for etcd its prefix must be empty) from a dump read from r. The master key
// at opts.MasterKeyPath (for bbolt by default next to the file) must be the
// one the dump's records are sealed under: Load checks it against the dump
// and opens every record before it writes it. On any failure it removes what
// it wrote. It returns the number of values loaded.
func Load(ctx context.Context, arg string, opts OpenOptions, r io.Reader) (n int, err error) {
	mkPath := opts.MasterKeyPath
	if mkPath == "" && !IsEtcdURL(arg) {
		mkPath = MasterKeyPath(arg)
	}
	if mkPath == "" {
		return 0, fmt.Errorf("%w: loading into etcd needs --master-key FILE (the key the dump is sealed under)", ErrMasterKey)
	}
	mk, err := LoadMasterKeyFile(mkPath)
	if err != nil {
		return 0, fmt.Errorf("store: load: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxDumpLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return 0, fmt.Errorf("store: load: %w", err)
		}
		return 0, errors.New("store: load: empty dump")
	}
	var h dumpHeader
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Format == 0 {
		return 0, errors.New("store: load: line 1 is not a kerbkit dump header")
	}
	if h.Format != dumpFormat {
		return 0, fmt.Errorf("store: load: dump format %d, this kdc reads %d", h.Format, dumpFormat)
	}
	// A dump of schema 2 (etcd, or a bbolt file of an earlier release) and one
	// of schema 3 (bbolt) hold the same JSON records; the new database gets
	// its own store's version.
	if v := string(h.Meta[string(metaSchema)]); v != schemaV2 && v != schemaVersion {
		return 0, fmt.Errorf("%w: the dump has version %q, this kdc reads %q or %q", ErrSchema, v, schemaV2, schemaVersion)
	}
	form, version := formBinary, schemaVersion
	if IsEtcdURL(arg) {
		form, version = formJSON, schemaEtcd
	}
	h.Meta[string(metaSchema)] = []byte(version)
	if _, err := mk.Open(h.Meta[string(metaKeyCheck)], keyCheckAD); err != nil {
		return 0, fmt.Errorf("%w: %s is not the master key this dump is sealed under", ErrMasterKey, mkPath)
	}
	var w loadWriter
	if IsEtcdURL(arg) {
		w, err = newEtcdLoader(ctx, arg, opts.Etcd)
	} else {
		w, err = newBoltLoader(arg)
	}
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	line := 1
	for sc.Scan() {
		line++
		var l dumpLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Kind == "" || l.Key == "" {
			return n, fmt.Errorf("store: load: line %d is not a dump line", line)
		}
		v := []byte(l.Value)
		if l.Value == nil {
			v = l.Bytes
		}
		if l.Kind == string(bucketAliases) {
			continue // derived from the records; rebuilt by finish
		}
		if l.Kind == string(bucketPrincipals) {
			d, err := parseStored(v)
			var rec *principal.Record
			if err == nil {
				rec, err = d.record(mk)
			}
			resealed := false
			if err == nil && form == formJSON {
				resealed, err = d.resealJSON(rec, mk)
			}
			if err == nil && (resealed || !inForm(v, form)) {
				v, err = encodeStored(d, form)
			}
			if err != nil {
				return n, fmt.Errorf("store: load: line %d (%s): %w", line, l.Key, err)
			}
			if rec.Name.Key() != l.Key {
				return n, fmt.Errorf("store: load: line %d: the record of %s is filed under %q", line, rec.Name, l.Key)
			}
		}
		if err := w.put(ctx, l.Kind, l.Key, v); err != nil {
			return n, fmt.Errorf("store: load: line %d: %w", line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("store: load: line %d: %w", line+1, err)
	}
	// The meta values go last: until they are there, nothing opens the
	// half-loaded database.
	if err := w.finish(ctx, h.Meta); err != nil {
		return n, fmt.Errorf("store: load: %w", err)
	}
	return n, nil
}

// loadWriter writes a dump into a new database.
type loadWriter interface {
	put(ctx context.Context, kind, key string, v []byte) error
	finish(ctx context.Context, meta map[string][]byte) error
	abort()
}

type boltLoader struct {
	path  string
	db    *bolt.DB
	batch []dumpLine
}

func newBoltLoader(path string) (*boltLoader, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("store: load: %s already exists (load makes a new database)", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	f.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultLockTimeout})
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("store: load: %w", err)
	}
	return &boltLoader{path: path, db: db}, nil
}

func (b *boltLoader) put(ctx context.Context, kind, key string, v []byte) error {
	b.batch = append(b.batch, dumpLine{Kind: kind, Key: key, Bytes: v})
	if len(b.batch) >= BulkBatch {
		return b.flush()
	}
	return nil
}

func (b *boltLoader) flush() error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, l := range b.batch {
			bk, err := tx.CreateBucketIfNotExists([]byte(l.Kind))
			if err != nil {
				return err
			}
			if bk.Get([]byte(l.Key)) != nil {
				return fmt.Errorf("%s %q twice in the dump", l.Kind, l.Key)
			}
			if err := bk.Put([]byte(l.Key), l.Bytes); err != nil {
				return err
			}
		}
		return nil
	})
	b.batch = b.batch[:0]
	return err
}

func (b *boltLoader) finish(ctx context.Context, meta map[string][]byte) error {
	if err := b.flush(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketPrincipals); err != nil {
			return err
		}
		if err := rebuildAliases(tx); err != nil {
			return err
		}
		mb, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		for k, v := range meta {
			if err := mb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return b.db.Close()
}

func (b *boltLoader) abort() {
	b.db.Close()
	os.Remove(b.path)
}

type etcdLoader struct {
	cl     *clientv3.Client
	s      *EtcdStore // for messages
	prefix string
	ops    []clientv3.Op
	keys   []string
}

func newEtcdLoader(ctx context.Context, arg string, o EtcdOptions) (*etcdLoader, error) {
	cl, prefix, url, err := newEtcdClient(arg, o)
	if err != nil {
		return nil, err
	}
	l := &etcdLoader{cl: cl, s: &EtcdStore{url: url}, prefix: prefix}
	cctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := cl.Get(cctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		cl.Close()
		return nil, l.s.unreachable("load", err)
	}
	if resp.Count != 0 {
		cl.Close()
		return nil, fmt.Errorf("store: load: %s is not empty (%d keys; load makes a new realm)", url, resp.Count)
	}
	return l, nil
}

func (l *etcdLoader) put(ctx context.Context, kind, key string, v []byte) error {
	keys, vals := []string{l.prefix + kind + "/" + key}, []string{string(v)}
	if kind == string(bucketPrincipals) {
		// The alias index, rebuilt from the records as bbolt's load does.
		aliases, err := recordAliases(v)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			keys, vals = append(keys, l.prefix+etcdAliasesDir+a), append(vals, key)
		}
	}
	if len(l.ops)+len(keys) > etcdTxnOps {
		if err := l.flush(ctx); err != nil {
			return err
		}
	}
	for i, k := range keys {
		l.ops = append(l.ops, clientv3.OpPut(k, vals[i]))
		l.keys = append(l.keys, k)
	}
	return nil
}

func (l *etcdLoader) flush(ctx context.Context) error {
	if len(l.ops) == 0 {
		return nil
	}
	var cmps []clientv3.Cmp
	for _, k := range l.keys {
		// A key twice in the dump, across batches.
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	}
	sort.Strings(l.keys)
	for i := 1; i < len(l.keys); i++ {
		if l.keys[i] == l.keys[i-1] {
			return fmt.Errorf("%q twice in the dump", strings.TrimPrefix(l.keys[i], l.prefix))
		}
	}
	cctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := l.cl.Txn(cctx).If(cmps...).Then(l.ops...).Commit()
	l.ops, l.keys = l.ops[:0], l.keys[:0]
	if err != nil {
		return l.s.unreachable("load", err)
	}
	if !resp.Succeeded {
		return errors.New("a key is twice in the dump")
	}
	return nil
}

func (l *etcdLoader) finish(ctx context.Context, meta map[string][]byte) error {
	if err := l.flush(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := l.cl.Txn(cctx).If(clientv3.Compare(clientv3.CreateRevision(l.prefix+etcdMetaDir+string(metaSchema)), "=", 0)).
		Then(metaOps(l.prefix, meta)...).Commit()
	if err != nil {
		return l.s.unreachable("load", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s got a realm while loading", l.s.url)
	}
	return l.cl.Close()
}

func (l *etcdLoader) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), EtcdWriteTimeout)
	defer cancel()
	_, _ = l.cl.Delete(ctx, l.prefix, clientv3.WithPrefix())
	l.cl.Close()
}
