package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/kdc/metrics"
	"github.com/kerbkit/kerbkit/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

type serveOptions struct {
	listen        string
	logLevel      string
	logFormat     string
	metricsListen string
	adminListen   string
	pprof         bool
	transit       []string          // --transit-realm: kdc.Config.TransitRealms
	requireFAST   bool              // --require-fast: kdc.Config.RequireFAST
	domainRealms  map[string]string // --domain-realm: kdc.Config.DomainRealms
	kpasswdListen string            // --kpasswd-listen: "" derives it from listen, "none" turns it off
	kpasswdAdmins []string          // --kpasswd-admin: kdc.KpasswdOptions.Admins

	boundAdmin   string // set by serve: the bound --admin-listen address
	boundKpasswd string // set by serve: the bound kpasswd address ("" when off)
}

func newServeCmd(e *env) *cobra.Command {
	o := &serveOptions{}
	c := &cobra.Command{
		Use:   "serve [--db FILE|etcd://HOST:PORT,.../PREFIX] [--listen HOST:PORT]",
		Short: "Serve the realm over UDP and TCP until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serve(ctx, e, o, nil)
		},
	}
	c.Flags().StringVar(&o.listen, "listen", "127.0.0.1:88", "address for both UDP and TCP (port 0 picks a free port)")
	c.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(&o.logFormat, "log-format", "text", "text (key=value) or json: one object per line")
	c.Flags().StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus metrics on http://HOST:PORT/metrics (apart from the Kerberos ports)")
	c.Flags().StringVar(&o.adminListen, "admin-listen", os.Getenv("KERBKIT_ADMIN_LISTEN"), "serve the health report on http://HOST:PORT/healthz (JSON: store reachable, cache revision and lag, uptime) (env KERBKIT_ADMIN_LISTEN)")
	c.Flags().BoolVar(&o.requireFAST, "require-fast", false, "refuse unarmored AS requests: clients must log in inside FAST (RFC 6113, kinit -T)")
	c.Flags().StringSliceVar(&o.transit, "transit-realm", nil, "a realm clients of other realms may come through (cross-realm transit, RFC 4120 §3.3.3.2); repeat or comma-separate; default: direct trust only")
	c.Flags().StringToStringVar(&o.domainRealms, "domain-realm", nil, "HOST=REALM or .DOMAIN=REALM: refer host-based services of that host or domain to a trusted realm (as MIT's [domain_realm]); repeat or comma-separate; default: a host's domain, upper-cased")
	c.Flags().StringVar(&o.kpasswdListen, "kpasswd-listen", os.Getenv("KERBKIT_KPASSWD_LISTEN"), "address of the password-change service (kpasswd, RFC 3244), UDP and TCP; default: the --listen host on port 464 (port 0 when --listen has port 0); none turns it off (env KERBKIT_KPASSWD_LISTEN)")
	c.Flags().StringSliceVar(&o.kpasswdAdmins, "kpasswd-admin", nil, "a principal (NAME@REALM) that may set other principals' passwords with kpasswd set-password requests; repeat or comma-separate")
	c.Flags().BoolVar(&o.pprof, "pprof", false, "also serve Go's pprof under /debug/pprof/ on --metrics-listen")
	return c
}

// newLogger makes the request log for --log-level and --log-format.
func newLogger(e *env, o *serveOptions) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("kdc: --log-level %q: want debug, info, warn or error", o.logLevel)
	}
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.logFormat {
	case "", "text":
		h = kdc.NewTextHandler(e.stderr, ho) // slog's text format, the request line written faster
	case "json":
		h = slog.NewJSONHandler(e.stderr, ho)
	default:
		return nil, fmt.Errorf("kdc: --log-format %q: want text or json", o.logFormat)
	}
	if level > slog.LevelDebug {
		h = quietProbes{h} // health checks stay out of the log unless debugging
	}
	return slog.New(h), nil
}

// serve opens the database, serves Kerberos and the admin socket, and returns
// when ctx is done. ready, if set, is called with the bound address once
// requests can be answered.
func serve(ctx context.Context, e *env, o *serveOptions, ready func(addr, realm string)) error {
	log, err := newLogger(e, o)
	if err != nil {
		return err
	}
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	go tuneGC(gcCtx)
	if o.pprof && o.metricsListen == "" {
		return errors.New("kdc: --pprof needs --metrics-listen")
	}

	started := time.Now()
	db, err := e.openDB(ctx, log, false)
	if err != nil {
		if errors.Is(err, store.ErrInUse) {
			return fmt.Errorf("kdc: %w; only one kdc serve may use a bbolt database (share an etcd database between replicas)", err)
		}
		return err
	}
	defer db.Close()
	// Opening read every page of the file to check it (and an etcd store
	// decoded every record): what that left behind is garbage, not the KDC's
	// memory, and with the collector's headroom it would stay in the heap
	// until a few thousand requests had come.
	debug.FreeOSMemory()
	etcd := store.IsEtcdURL(e.db)

	for d, r := range o.domainRealms {
		if d == "" || r == "" {
			return cli.Usagef("kdc: --domain-realm %q=%q: want HOST=REALM or .DOMAIN=REALM", d, r)
		}
	}
	audit, auditCloser, err := e.openAudit()
	if err != nil {
		return err
	}
	defer auditCloser.Close()
	k, err := kdc.New(kdc.Config{Store: db, Logger: log, TransitRealms: o.transit, RequireFAST: o.requireFAST, DomainRealms: o.domainRealms, Audit: audit})
	if err != nil {
		return err
	}
	srv := kdc.NewServer(k, log)
	if err := srv.Listen(o.listen); err != nil {
		return err
	}
	kpSrv, err := listenKpasswd(e, o, k, log)
	if err != nil {
		return err
	}
	health := healthHandler(db, srv.Addr(), started)
	var mln *metrics.Listener
	if o.metricsListen != "" {
		mo := metrics.Options{Pprof: o.pprof, Logger: log, Health: health, Collectors: []prometheus.Collector{newStoreCollector(db)}}
		if mln, err = metrics.Listen(o.metricsListen, k, srv, mo); err != nil {
			return fmt.Errorf("kdc: --metrics-listen: %w", err)
		}
	}
	var hln *adminListener
	if o.adminListen != "" {
		if hln, err = listenAdminHTTP(o.adminListen, health, log); err != nil {
			return err
		}
	}
	// A bbolt database is this process's alone: admin commands reach it
	// through a socket beside it. An etcd database is shared: admin commands
	// change it directly.
	var adm *kdc.AdminServer
	if !etcd {
		if adm, err = kdc.ListenAdmin(kdc.AdminSocketPath(e.db)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if hln != nil {
		go func() {
			if err := hln.Serve(ctx); err != nil {
				log.Error("admin listener", "err", err)
			}
		}()
		o.boundAdmin = hln.Addr()
		fmt.Fprintf(e.stderr, "kdc: health on http://%s/healthz\n", hln.Addr())
	}
	if mln != nil {
		go func() {
			if err := mln.Serve(ctx); err != nil {
				log.Error("metrics listener", "err", err)
			}
		}()
		fmt.Fprintf(e.stderr, "kdc: metrics on http://%s/metrics\n", mln.Addr())
	}
	admDone := make(chan struct{})
	if adm != nil {
		go func() {
			adm.Audit = audit
			adm.Serve(ctx, &kdc.LocalAdmin{Store: db, PolicyChanged: k.ForgetPolicies}, log)
			close(admDone)
		}()
		fmt.Fprintf(e.stderr, "kdc: realm %s, listening on %s (udp, tcp); admin socket %s\n", db.Realm(), srv.Addr(), kdc.AdminSocketPath(e.db))
	} else {
		close(admDone)
		h := db.Health()
		fmt.Fprintf(e.stderr, "kdc: realm %s, listening on %s (udp, tcp); database %s (%d records in memory, revision %d)\n", db.Realm(), srv.Addr(), db.Location(), h.Records, h.CacheRevision)
	}
	if p := e.auditPath(); p != "" {
		fmt.Fprintf(e.stderr, "kdc: audit log %s\n", p)
	}
	kpDone := make(chan struct{})
	if kpSrv != nil {
		o.boundKpasswd = kpSrv.Addr()
		go func() {
			defer close(kpDone)
			if err := kpSrv.Serve(ctx); err != nil {
				log.Error("kpasswd server", "err", err)
			}
		}()
		fmt.Fprintf(e.stderr, "kdc: password changes (kpasswd) on %s (udp, tcp)\n", kpSrv.Addr())
	} else {
		close(kpDone)
	}
	if ready != nil {
		ready(srv.Addr(), db.Realm())
	}
	err = srv.Serve(ctx)
	cancel()
	<-admDone
	<-kpDone
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "kdc: stopped")
	return nil
}

// DefaultKpasswdPort is the kpasswd service's port (RFC 3244 §2).
const DefaultKpasswdPort = "464"

// listenKpasswd binds the kpasswd service: --kpasswd-listen, or the KDC's
// host on port 464 (0 when the KDC's port is 0). A default address that
// cannot be bound (464 taken, or no privilege) is a warning, not an error;
// an address asked for must bind. nil means no service.
func listenKpasswd(e *env, o *serveOptions, k *kdc.KDC, log *slog.Logger) (*kdc.Server, error) {
	addr, explicit := o.kpasswdListen, o.kpasswdListen != ""
	if addr == "none" {
		return nil, nil
	}
	if !explicit {
		host, port, err := net.SplitHostPort(o.listen)
		if err != nil {
			return nil, fmt.Errorf("kdc: --listen %q: %w", o.listen, err)
		}
		if port != "0" {
			port = DefaultKpasswdPort
		}
		addr = net.JoinHostPort(host, port)
	}
	srv := kdc.NewKpasswdServer(kdc.NewKpasswd(k, kdc.KpasswdOptions{Admins: o.kpasswdAdmins, Logger: log}), log)
	if err := srv.Listen(addr); err != nil {
		if explicit {
			return nil, fmt.Errorf("kdc: --kpasswd-listen: %w", err)
		}
		fmt.Fprintf(e.stderr, "kdc: warning: no password-change service: %v (set --kpasswd-listen, or none)\n", err)
		return nil, nil
	}
	return srv, nil
}
