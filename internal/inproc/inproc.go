// Package inproc runs a kerbkit KDC inside the current process: a fresh bbolt
// database, the KDC of package kdc, and its UDP and TCP listeners on a loopback
// port. It is what the public test API (package kerbkittest) and the interop
// harness (package testenv) share; neither duplicates it.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

// DefaultListen is where a realm serves unless Config.Listen says otherwise:
// loopback, with a port the kernel picks.
const DefaultListen = "127.0.0.1:0"

// stopGrace is how long Stop waits beyond the KDC's own shutdown grace.
const stopGrace = 5 * time.Second

// Config describes the realm to start.
type Config struct {
	// DB is the path of the new database; its master key goes next to it
	// (store.MasterKeyPath). Neither may exist.
	DB string
	// Realm is the realm name.
	Realm string
	// Policy is the realm policy; the zero value means principal.DefaultPolicy.
	Policy principal.RealmPolicy
	// Now is the clock of the database, the administration and the KDC; nil
	// means time.Now.
	Now func() time.Time
	// Logger gets the KDC's one line per request; nil discards.
	Logger *slog.Logger
	// Listen is the UDP and TCP address; "" means DefaultListen.
	Listen string
}

// Server is a running in-process realm.
type Server struct {
	// Addr is the bound address, 127.0.0.1:PORT, for UDP and TCP.
	Addr string
	// KpasswdAddr is the password-change service's address (kpasswd, RFC
	// 3244), UDP and TCP, on the same host.
	KpasswdAddr string
	// Store is the realm's open database.
	Store *store.BoltStore
	// Admin administers the realm (add principals, change keys, export keytabs).
	Admin *kdc.LocalAdmin
	// KDC is the KDC answering on Addr.
	KDC *kdc.KDC

	cancel   context.CancelFunc
	served   chan error
	kpServed chan error
}

// Start creates the database, starts the KDC and serves it in a goroutine until
// Stop. On failure nothing is left running or open.
func Start(cfg Config) (_ *Server, err error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	ctx := context.Background()
	db, err := store.Init(ctx, cfg.DB, cfg.Realm, cfg.Policy, now())
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	k, err := kdc.New(kdc.Config{Store: db, Now: now, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := kdc.NewServer(k, logger)
	if err := srv.Listen(listen); err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	host, _, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	kp := kdc.NewKpasswdServer(kdc.NewKpasswd(k, kdc.KpasswdOptions{Logger: logger}), logger)
	if err := kp.Listen(net.JoinHostPort(host, "0")); err != nil {
		return nil, fmt.Errorf("inproc: kpasswd: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Server{
		Addr:        srv.Addr(),
		KpasswdAddr: kp.Addr(),
		Store:       db,
		Admin:       &kdc.LocalAdmin{Store: db, Now: now},
		KDC:         k,
		cancel:      cancel,
		served:      make(chan error, 1),
		kpServed:    make(chan error, 1),
	}
	go func() { s.served <- srv.Serve(sctx) }()
	go func() { s.kpServed <- kp.Serve(sctx) }()
	return s, nil
}

// Stop stops serving, waits for requests in flight (bounded by the KDC's
// shutdown grace) and closes the database. It is safe to call more than once;
// later calls return nil.
func (s *Server) Stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	var errs []error
	select {
	case err := <-s.served:
		if err != nil {
			errs = append(errs, fmt.Errorf("inproc: KDC on %s: %w", s.Addr, err))
		}
	case <-time.After(kdc.ShutdownGrace + stopGrace):
		errs = append(errs, fmt.Errorf("inproc: KDC on %s did not stop within %v", s.Addr, kdc.ShutdownGrace+stopGrace))
	}
	select {
	case err := <-s.kpServed:
		if err != nil {
			errs = append(errs, fmt.Errorf("inproc: kpasswd on %s: %w", s.KpasswdAddr, err))
		}
	case <-time.After(kdc.ShutdownGrace + stopGrace):
		errs = append(errs, fmt.Errorf("inproc: kpasswd on %s did not stop within %v", s.KpasswdAddr, kdc.ShutdownGrace+stopGrace))
	}
	if err := s.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("inproc: closing %s: %w", s.Store.Path(), err))
	}
	return errors.Join(errs...)
}

// ExportKeytab writes every kept key of the named principals to file (mode
// 0600, replaced atomically), as `kdc keytab` does.
func (s *Server) ExportKeytab(ctx context.Context, file string, names ...string) error {
	entries, err := s.Admin.Keytab(ctx, names)
	if err != nil {
		return fmt.Errorf("inproc: keytab %v: %w", names, err)
	}
	if err := ticket.WriteKeytabFile(file, entries); err != nil {
		return fmt.Errorf("inproc: %w", err)
	}
	return nil
}
