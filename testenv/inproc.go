package testenv

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/internal/inproc"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// Clock is a settable clock for an in-process KDC: real time plus an offset the
// test moves forward. Peers are moved by the same amount with faketime, so a
// test can act "ten minutes later" without sleeping. It is safe for concurrent
// use.
type Clock = clock.Offset

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
	Name string // realm name
	Dir  string // temp dir holding everything
	DB   string // principal database
	Addr string // 127.0.0.1:PORT (UDP and TCP)
	// KpasswdAddr is 127.0.0.1:PORT of the password-change service (kpasswd).
	KpasswdAddr string
	Keytab      string // service keytab, "" if none exported
	Clock       *Clock // the KDC's clock

	Store *store.BoltStore
	Admin *kdc.LocalAdmin
	KDC   *kdc.KDC

	srv    *inproc.Server
	log    *logBuffer
	client *clientSide
}

// NewInProcRealm initialises a database in t.TempDir() and serves the KDC in a
// goroutine (internal/inproc, as kerbkittest does), adds the principals with
// kdc.LocalAdmin and exports the service keytab. Everything uses r.Clock. The
// server is stopped and the store closed in t.Cleanup; on failure the KDC log
// (one line per request) and the client traces are written to the test log.
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
	r.client = &clientSide{realm: r.Name, addr: func() string { return r.Addr }, kpasswd: func() string { return r.KpasswdAddr }, dir: dir}
	ctx := context.Background()

	logger := slog.New(kdc.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := inproc.Start(inproc.Config{DB: r.DB, Realm: r.Name, Policy: o.Policy, Now: r.Clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	r.srv, r.Addr, r.KpasswdAddr, r.Store, r.Admin, r.KDC = srv, srv.Addr, srv.KpasswdAddr, srv.Store, srv.Admin, srv.KDC
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("%v", err)
		}
		if t.Failed() {
			r.dump(t)
		}
	})
	for _, p := range o.Principals {
		if len(p.Args) > 0 {
			t.Fatalf("NewInProcRealm: Principal.Args %q are not supported in process", p.Args)
		}
		if _, err := r.Admin.Add(ctx, kdc.AddRequest{Name: p.Name, Password: p.Password, RandomKey: p.RandomKey}); err != nil {
			t.Fatalf("add %s: %v", p.Name, err)
		}
	}
	kt := keytabPrincipals(o.KeytabPrincipals, o.Principals)
	if len(kt) > 0 {
		r.Keytab = filepath.Join(dir, "service.keytab")
		if err := r.ExportKeytab(r.Keytab, kt...); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("in-process KDC for %s serving on %s", r.Name, r.Addr)
	return r
}

// ExportKeytab writes every kept key of the named principals to file, as
// `kdc keytab` does.
func (r *InProcRealm) ExportKeytab(file string, names ...string) error {
	return r.srv.ExportKeytab(context.Background(), file, names...)
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
