// Package store holds the implementations of principal.Store: the embedded bbolt
// database, with long-term keys sealed at rest under a master key kept in a file of
// its own.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors of opening a database; test with errors.Is.
var (
	// ErrNoDatabase is returned by Open when there is no database file.
	ErrNoDatabase = errors.New("store: no database")
	// ErrInUse is returned by Open when another process holds the database.
	ErrInUse = errors.New("store: database in use by another process")
	// ErrSchema is returned by Open for a file of another layout or version.
	ErrSchema = errors.New("store: unsupported database schema")
	// ErrDamaged reports a database file that fails bbolt's consistency check
	// or makes bbolt fail (it panics on damaged pages; the store turns that
	// into this error).
	ErrDamaged = errors.New("store: database damaged")
)

// restoreHint is what to do about a damaged database.
const restoreHint = "restore it from a backup (a copy of the file taken while no kdc serve ran on it)"

// guard runs fn, an access to the bbolt file, turning a panic or a memory fault
// (bbolt panics on damaged pages and reads its file through mmap, so a
// truncated file faults) into ErrDamaged, so a damaged file gives one clear
// error instead of killing the process. bbolt rolls back the transaction of a
// panicking View or Update itself.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v; %s", ErrDamaged, path, r, restoreHint)
		}
	}()
	return fn()
}

// view is db.View under guard.
func (s *BoltStore) view(fn func(*bolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.View(fn) })
}

// update is db.Update under guard.
func (s *BoltStore) update(fn func(*bolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.Update(fn) })
}

// maxCheckErrors bounds the problems Check reports.
const maxCheckErrors = 10

// Check runs bbolt's consistency check over the whole file (every page
// reachable once, no page both used and free) and returns ErrDamaged with what
// it found. It reports page numbers and key names, never values.
func (s *BoltStore) Check() error {
	var problems []string
	err := s.view(func(tx *bolt.Tx) error {
		for err := range tx.Check(bolt.WithKVStringer(keysOnly{})) {
			if len(problems) < maxCheckErrors {
				problems = append(problems, err.Error())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %s; %s", ErrDamaged, s.path, strings.Join(problems, "; "), restoreHint)
	}
	return nil
}

// keysOnly prints keys (principal names) in check reports, and only the
// length of values, which hold sealed keys.
type keysOnly struct{}

func (keysOnly) KeyToString(k []byte) string   { return strconv.Quote(string(k)) }
func (keysOnly) ValueToString(v []byte) string { return fmt.Sprintf("(%d bytes)", len(v)) }

// DefaultLockTimeout is how long Open waits for another process to release the
// database before failing with ErrInUse.
const DefaultLockTimeout = time.Second

// MasterKeyPath is where the master key of the database at dbPath lives by default:
// a separate file next to it.
func MasterKeyPath(dbPath string) string { return dbPath + ".mkey" }

// MaxCachedRecords bounds the decoded-record cache of a BoltStore: about 3 MB
// of records, whatever the size of the database. A full cache makes room by
// dropping its oldest entry, so the principals in use (krbtgt, the services,
// the clients of the last minutes) stay cached. A miss costs a read of the
// binary record (about 1.5 µs): at 100k principals drawn at random an AS took
// the same 14 µs with 16,384 entries as with 4,096, which hold 18 MB less
// (BenchmarkScale/100k/AS-random).
const MaxCachedRecords = 4096

// BoltStore is the embedded Store: one bbolt file, one transaction per change.
//
// Decoded records are cached: a KDC reads the same few principals (krbtgt, the
// services) on every request, and unsealing and decoding a record costs more
// than the rest of a lookup. The cache is coherent because bbolt's file lock
// makes this process the only writer, and every write goes through the methods
// below, which drop the entry after they commit.
type BoltStore struct {
	db     *bolt.DB
	path   string
	mk     *MasterKey
	realm  string
	policy principal.RealmPolicy

	recordCache // decoded records (reccache.go)
}

var _ principal.Store = (*BoltStore)(nil)

// OpenOptions tune Open; the zero value is the default.
type OpenOptions struct {
	// MasterKeyPath overrides MasterKeyPath(dbPath).
	MasterKeyPath string
	// LockTimeout overrides DefaultLockTimeout.
	LockTimeout time.Duration
	// SkipCheck skips the consistency check Open runs over the whole file.
	SkipCheck bool
	// Etcd holds the connection settings of an etcd database (OpenDB).
	Etcd EtcdOptions
}

// Init creates a new database at path for realm, with its master key in a new 0600
// file next to it and krbtgt/REALM@REALM with random keys. It refuses to touch
// existing files. On any failure it removes what it created.
func Init(ctx context.Context, path, realm string, policy principal.RealmPolicy, now time.Time) (_ *BoltStore, err error) {
	if realm == "" {
		return nil, fmt.Errorf("store: init: empty realm")
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("store: init: %s already exists", path)
	}
	mkPath := MasterKeyPath(path)
	mk, err := CreateMasterKeyFile(mkPath)
	if err != nil {
		return nil, fmt.Errorf("store: init: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(mkPath)
			os.Remove(path)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultLockTimeout})
	if err != nil {
		return nil, fmt.Errorf("store: init: %w", err)
	}
	policy = policy.WithDefaults()
	s := &BoltStore{db: db, mk: mk, realm: realm, policy: policy, path: path}
	keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
	if err != nil {
		db.Close()
		return nil, err
	}
	tgs := principal.NewRecord(principal.Krbtgt(realm), keys, now)
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketPrincipals); err != nil {
			return err
		}
		check, err := mk.Seal([]byte(keyCheckText), keyCheckAD)
		if err != nil {
			return err
		}
		pol, err := json.Marshal(dbPolicy{MaxLife: int64(policy.MaxLife / time.Second), MaxRenew: int64(policy.MaxRenew / time.Second)})
		if err != nil {
			return err
		}
		for k, v := range map[string][]byte{
			string(metaSchema): []byte(schemaVersion), string(metaRealm): []byte(realm),
			string(metaPolicy): pol, string(metaKeyCheck): check,
		} {
			if err := meta.Put([]byte(k), v); err != nil {
				return err
			}
		}
		if err := s.unsafePut(tx, tgs, true); err != nil {
			return err
		}
		return s.unsafeInitV2(tx, now)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init: %w", err)
	}
	return s, nil
}

// Open opens an existing database. A second process gets ErrInUse after the lock
// timeout; a database of another schema version gets ErrSchema; a master key that
// does not match gets ErrMasterKey.
func Open(path string, opts OpenOptions) (*BoltStore, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s (create one with `kdc init`)", ErrNoDatabase, path)
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	if opts.MasterKeyPath == "" {
		opts.MasterKeyPath = MasterKeyPath(path)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	mk, err := LoadMasterKeyFile(opts.MasterKeyPath)
	if err != nil {
		return nil, err
	}
	if err := precheckFile(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	var file *os.File
	err = guard(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout,
			OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, mode)
				file = f
				return f, err
			}})
		return err
	})
	if errors.Is(err, ErrDamaged) && file != nil {
		// bbolt panicked inside Open despite precheckFile. It holds the file
		// mapped (and so locked) where we cannot unmap it; close what we can.
		file.Close()
	}
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%w: %s is locked (is `kdc serve` running on it?)", ErrInUse, path)
		case errors.Is(err, ErrDamaged):
			return nil, err
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return nil, fmt.Errorf("%w: %s: %v; %s", ErrDamaged, path, err, restoreHint)
		}
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	s := &BoltStore{db: db, mk: mk, path: path}
	if err := s.view(s.unsafeLoadMeta); err != nil {
		db.Close()
		return nil, err
	}
	if !opts.SkipCheck {
		if err := s.Check(); err != nil {
			db.Close()
			return nil, err
		}
		if err := s.remap(opts.LockTimeout); err != nil {
			return nil, err
		}
	}
	if err := s.upgrade(); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// remap closes and reopens the database after Check, which read every page of
// the file: the pages stay mapped and resident otherwise, and the KDC's RSS
// would be the size of the file (77 MB at 100,000 principals, 690 MB at a
// million) instead of what it uses. Another process may take the lock in
// between; Open then waits for it as it would have at first.
func (s *BoltStore) remap(lockTimeout time.Duration) error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: closing %s after its check: %w", s.path, err)
	}
	err := guard(s.path, func() (err error) {
		s.db, err = bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("%w: %s is locked (is `kdc serve` running on it?)", ErrInUse, s.path)
	}
	if err != nil {
		return fmt.Errorf("store: reopening %s after its check: %w", s.path, err)
	}
	return nil
}

func (s *BoltStore) unsafeLoadMeta(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || tx.Bucket(bucketPrincipals) == nil {
		return fmt.Errorf("%w: not a kerbkit database (no meta bucket)", ErrSchema)
	}
	if v := string(meta.Get(metaSchema)); !schemaReadable(v) {
		return fmt.Errorf("%w: version %q, this kdc reads %q", ErrSchema, v, schemaVersion)
	}
	if _, err := s.mk.Open(meta.Get(metaKeyCheck), keyCheckAD); err != nil {
		return fmt.Errorf("%w: the master key does not belong to this database", ErrMasterKey)
	}
	s.realm = string(meta.Get(metaRealm))
	var p dbPolicy
	if err := json.Unmarshal(meta.Get(metaPolicy), &p); err != nil {
		return fmt.Errorf("%w: realm policy: %w", principal.ErrCorrupt, err)
	}
	s.policy = principal.RealmPolicy{MaxLife: time.Duration(p.MaxLife) * time.Second, MaxRenew: time.Duration(p.MaxRenew) * time.Second}.WithDefaults()
	return nil
}

// Realm implements Store.
func (s *BoltStore) Realm() string { return s.realm }

// Policy implements Store.
func (s *BoltStore) Policy() principal.RealmPolicy { return s.policy }

// Path is the database file.
func (s *BoltStore) Path() string { return s.path }

// Get implements Store. The record returned is the caller's to modify, but
// its Keys slice is shared with the cache and must not be written to.
func (s *BoltStore) Get(ctx context.Context, name principal.Name) (*principal.Record, error) {
	rec, err := s.GetShared(ctx, name)
	if err != nil {
		return nil, err
	}
	r := *rec
	return &r, nil
}

// GetShared implements principal.SharedGetter: the record returned is the
// cache's and must not be modified (cached records are never modified: a
// write replaces them).
func (s *BoltStore) GetShared(ctx context.Context, name principal.Name) (*principal.Record, error) {
	key := name.Key()
	if rec, ok := s.load(key); ok {
		return rec, nil
	}
	gen := s.generation()
	var rec *principal.Record
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPrincipals).Get([]byte(key))
		if v == nil {
			// Not a principal: perhaps one of its aliases.
			if v = resolveAlias(tx, key); v == nil {
				return fmt.Errorf("%w: %s", principal.ErrNotFound, name)
			}
		}
		// decodeRecord copies out of v, which is only valid inside the transaction.
		r, err := decodeRecord(v, s.mk)
		rec = r
		return err
	})
	if err != nil {
		return nil, err
	}
	// A record found through an alias is cached under its own name only:
	// writes invalidate that key, not the alias's.
	s.fill(rec.Name.Key(), gen, rec)
	return rec, nil
}

// Create implements Store.
func (s *BoltStore) Create(ctx context.Context, rec *principal.Record) error {
	if rec.Name.Realm != s.realm && !rec.Name.IsIncomingTrust(s.realm) {
		return fmt.Errorf("store: %s is not in realm %s", rec.Name, s.realm)
	}
	err := s.update(func(tx *bolt.Tx) error { return s.unsafePut(tx, rec, true) })
	s.invalidate(rec.Name.Key())
	return err
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, name principal.Name, fn func(*principal.Record) error) error {
	defer s.invalidate(name.Key())
	return s.update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPrincipals).Get([]byte(name.Key()))
		if v == nil {
			return fmt.Errorf("%w: %s", principal.ErrNotFound, name)
		}
		rec, err := decodeRecord(v, s.mk)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		if !rec.Name.Equal(name) {
			return fmt.Errorf("store: update may not rename %s", name)
		}
		return s.unsafePut(tx, rec, false)
	})
}

// Delete implements Store.
func (s *BoltStore) Delete(ctx context.Context, name principal.Name) error {
	if name.Equal(principal.Krbtgt(s.realm)) {
		return fmt.Errorf("store: refusing to delete %s: the realm cannot issue tickets without it", name)
	}
	defer s.invalidate(name.Key())
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrincipals)
		v := b.Get([]byte(name.Key()))
		if v == nil {
			return fmt.Errorf("%w: %s", principal.ErrNotFound, name)
		}
		if err := dropAliases(tx, v); err != nil {
			return err
		}
		return b.Delete([]byte(name.Key()))
	})
}

// List implements Store.
func (s *BoltStore) List(ctx context.Context) ([]principal.Name, error) {
	var names []principal.Name
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrincipals).ForEach(func(k, _ []byte) error {
			if len(k) > principal.MaxNameText {
				// Only a damaged page gives such a key; do not copy it.
				return fmt.Errorf("%w: %s: a key of %d bytes; %s", ErrDamaged, s.path, len(k), restoreHint)
			}
			n, err := principal.Parse(string(k), "")
			if err != nil {
				return fmt.Errorf("%w: key %q: %w", principal.ErrCorrupt, k, principal.ErrBadName)
			}
			names = append(names, n)
			return nil
		})
	})
	sort.Slice(names, func(i, j int) bool { return names[i].String() < names[j].String() })
	return names, err
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

// unsafePut writes rec inside tx; create refuses to replace an existing record.
func (s *BoltStore) unsafePut(tx *bolt.Tx, rec *principal.Record, create bool) error {
	b := tx.Bucket(bucketPrincipals)
	key := []byte(rec.Name.Key())
	old := b.Get(key)
	if create && old != nil {
		return fmt.Errorf("%w: %s", principal.ErrExists, rec.Name)
	}
	if create && resolveAlias(tx, string(key)) != nil {
		return fmt.Errorf("%w: %s is an alias of another principal", principal.ErrExists, rec.Name)
	}
	if err := putAliases(tx, rec, old); err != nil {
		return err
	}
	v, err := encodeRecord(rec, s.mk, formBinary)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}
