package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

// Clock is a settable clock for an in-process KDC: real time plus an offset the
// test moves forward. Peers are moved by the same amount with faketime, so a
// test can act "ten minutes later" without sleeping. It is safe for concurrent
// use.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is time.Now() plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Set puts the clock offset at d, e.g. back to what Offset returned earlier.
func (c *Clock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// Offset is how far the clock is ahead of real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// InProcOptions configure [NewInProcRealm].
type InProcOptions struct {
	Name string // default DefaultRealmName
	// Policy is the realm policy; the zero value means principal.DefaultPolicy.
	Policy principal.RealmPolicy
	// Principals to add; nil means DefaultPrincipals. Principal.Args (flags of
	// `kdc principal add`) are not supported here.
	Principals []Principal
	// KeytabPrincipals are written to InProcRealm.Keytab; nil means
	// DefaultKeytabPrincipals (those that exist).
	KeytabPrincipals []string
}

// InProcRealm is a realm served by our KDC (package kdc) inside the test
// process, on 127.0.0.1 with an ephemeral port, with an injectable [Clock].
// Use it where a test must move the KDC's time; [NewRealm] tests the real
// `kdc serve` binary.
type InProcRealm struct {
	Name   string // realm name
	Dir    string // temp dir holding everything
	DB     string // principal database
	Addr   string // 127.0.0.1:PORT (UDP and TCP)
	Keytab string // service keytab, "" if none exported
	Clock  *Clock // the KDC's clock

	Store *store.BoltStore
	Admin *kdc.LocalAdmin
	KDC   *kdc.KDC

	log    *logBuffer
	client *clientSide
}

// NewInProcRealm initialises a database in t.TempDir() with store.Init,
// adds the principals with kdc.LocalAdmin, exports the service keytab and serves
// the KDC in a goroutine. Everything uses r.Clock. The server is stopped and
// the store closed in t.Cleanup; on failure the KDC log (one line per request)
// and the client traces are written to the test log.
func NewInProcRealm(t testing.TB, o InProcOptions) *InProcRealm {
	t.Helper()
	if o.Name == "" {
		o.Name = DefaultRealmName
	}
	if o.Principals == nil {
		o.Principals = DefaultPrincipals()
	}
	dir := t.TempDir()
	r := &InProcRealm{
		Name:  o.Name,
		Dir:   dir,
		DB:    filepath.Join(dir, "kdc.db"),
		Clock: &Clock{},
		log:   newLogBuffer(),
	}
	r.client = &clientSide{realm: r.Name, addr: func() string { return r.Addr }, dir: dir}
	ctx := context.Background()

	db, err := store.Init(ctx, r.DB, r.Name, o.Policy, r.Clock.Now())
	if err != nil {
		t.Fatalf("store.Init: %v", err)
	}
	r.Store = db
	r.Admin = &kdc.LocalAdmin{Store: db, Now: r.Clock.Now}
	for _, p := range o.Principals {
		if len(p.Args) > 0 {
			db.Close()
			t.Fatalf("NewInProcRealm: Principal.Args %q are not supported in process", p.Args)
		}
		if _, err := r.Admin.Add(ctx, kdc.AddRequest{Name: p.Name, Password: p.Password, RandomKey: p.RandomKey}); err != nil {
			db.Close()
			t.Fatalf("add %s: %v", p.Name, err)
		}
	}
	kt := keytabPrincipals(o.KeytabPrincipals, o.Principals)
	if len(kt) > 0 {
		r.Keytab = filepath.Join(dir, "service.keytab")
		if err := r.ExportKeytab(r.Keytab, kt...); err != nil {
			db.Close()
			t.Fatal(err)
		}
	}

	logger := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k, err := kdc.New(kdc.Config{Store: db, Now: r.Clock.Now, Logger: logger})
	if err != nil {
		db.Close()
		t.Fatalf("kdc.New: %v", err)
	}
	r.KDC = k
	srv := kdc.NewServer(k, logger)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		db.Close()
		t.Fatalf("kdc listen: %v", err)
	}
	r.Addr = srv.Addr()
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Logf("in-process KDC %s: %v", r.Addr, err)
			}
		case <-time.After(kdc.ShutdownGrace + StopGrace):
			t.Errorf("in-process KDC on %s did not stop within %v", r.Addr, kdc.ShutdownGrace+StopGrace)
		}
		if err := db.Close(); err != nil {
			t.Logf("closing %s: %v", r.DB, err)
		}
		if t.Failed() {
			r.dump(t)
		}
	})
	t.Logf("in-process KDC for %s serving on %s", r.Name, r.Addr)
	return r
}

// ExportKeytab writes every kept key of the named principals to file, as
// `kdc keytab` does.
func (r *InProcRealm) ExportKeytab(file string, names ...string) error {
	entries, err := r.Admin.Keytab(context.Background(), names)
	if err != nil {
		return fmt.Errorf("keytab %v: %w", names, err)
	}
	if err := ticket.WriteKeytabFile(file, entries); err != nil {
		return err
	}
	return nil
}

// Principal returns name@REALM.
func (r *InProcRealm) Principal(name string) string { return name + "@" + r.Name }

// Env returns a child environment for client commands against this realm (see
// [Realm.Env]).
func (r *InProcRealm) Env(o EnvOptions) []string { return r.client.env(o) }

// Log returns the KDC's log so far: one slog line per request.
func (r *InProcRealm) Log() string { return r.log.String() }

func (r *InProcRealm) dump(t testing.TB) {
	t.Logf("---- in-process KDC log (%s on %s, clock %+v) ----\n%s", r.Name, r.Addr, r.Clock.Offset(), tail(r.Log(), 16000))
	r.client.dump(t)
}
