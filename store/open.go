package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kerbkit/kerbkit/principal"
)

// DB is a Store opened by OpenDB: a bbolt file or an etcd prefix.
type DB interface {
	principal.Store
	// PolicyStore keeps the named password and lockout policies (policy.go).
	principal.PolicyStore
	// Check looks for damage: bbolt's page check, or every etcd record decoding.
	Check() error
	// Health reports whether the store answers and how current memory is.
	Health() Health
	// Location is the database argument it was opened from (no credentials).
	Location() string
}

var (
	_ DB = (*BoltStore)(nil)
	_ DB = (*EtcdStore)(nil)
)

// OpenDB opens the database named by arg: etcd://HOST:PORT[,...]/PREFIX is an
// etcd database (opts.MasterKeyPath is then required, opts.Etcd applies),
// anything else a bbolt file.
func OpenDB(ctx context.Context, arg string, opts OpenOptions) (DB, error) {
	if IsEtcdURL(arg) {
		return OpenEtcd(ctx, arg, opts.MasterKeyPath, opts.Etcd)
	}
	return Open(arg, opts)
}

// InitDB creates a realm in the database named by arg (see OpenDB) and
// returns the master key file it created.
func InitDB(ctx context.Context, arg, realm string, policy principal.RealmPolicy, opts OpenOptions, now time.Time) (mkPath string, err error) {
	if IsEtcdURL(arg) {
		return opts.MasterKeyPath, InitEtcd(ctx, arg, opts.MasterKeyPath, realm, policy, opts.Etcd, now)
	}
	if opts.MasterKeyPath != "" && opts.MasterKeyPath != MasterKeyPath(arg) {
		return "", errors.New("store: init: a bbolt database keeps its master key next to it (FILE.mkey); --master-key is for etcd")
	}
	s, err := Init(ctx, arg, realm, policy, now)
	if err != nil {
		return "", err
	}
	return MasterKeyPath(arg), s.Close()
}

// Health implements DB: a bbolt file is always reachable.
func (s *BoltStore) Health() Health {
	return Health{Backend: "bbolt", Reachable: true}
}

// Location implements DB.
func (s *BoltStore) Location() string { return s.path }

// Location implements DB.
func (s *EtcdStore) Location() string { return s.url }

// ReadPasswordFile reads a secret from the first line of a file, refusing a
// file that others can read.
func ReadPasswordFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("store: password file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("store: password file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("store: password file: %w", err)
	}
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b = b[:i]
			break
		}
	}
	if len(b) == 0 {
		return "", fmt.Errorf("store: password file %s is empty", path)
	}
	return string(b), nil
}
