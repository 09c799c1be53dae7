package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/service"
)

// HTTP server limits.
const (
	httpMaxConns          = 128
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = 30 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = service.MaxNegotiateHeader + 16<<10
	shutdownGrace         = 5 * time.Second
)

type options struct {
	keytab   string
	listen   string
	http     string
	service  string
	logLevel string
}

// run builds the command, executes it and maps the outcome to an exit code: 0
// on a clean shutdown; otherwise one line on stderr and 2 for a usage error
// (cli.ExitUsage), 1 for any other failure.
func run(args []string, stderr io.Writer) int {
	return runOut(args, stderr, stderr)
}

// runOut is run with a separate standard output (help, completion scripts).
func runOut(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stderr, nil)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "kservice: "+strings.TrimPrefix(strings.TrimPrefix(err.Error(), "kservice: "), "service: ")+cli.HelpHint(err, "kservice"))
		if cli.IsUsage(err) {
			return cli.ExitUsage
		}
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// example is kservice's Example section.
const example = `# With kdc dev running and its two export lines pasted:
kservice --keytab "$(dirname "$KRB5_CONFIG")/service.keytab" --listen 127.0.0.1:4444 --http 127.0.0.1:8080
# The keytab from KRB5_KTNAME, only host/localhost accepted, one line per authentication at debug level:
KRB5_KTNAME=FILE:/etc/krb5.keytab kservice --listen 127.0.0.1:4444 --service host@localhost --log-level debug
# Clients:
#   gss-client -port 4444 localhost host@localhost hello
#   kclient request host/localhost --addr 127.0.0.1:4444
#   curl --negotiate -u : http://localhost:8080/

# Shell completion (bash; also zsh, fish, powershell):
source <(kservice completion bash)`

// newRootCmd returns the command; ready, if set, is called with the bound
// addresses once both listeners accept (tests use it).
func newRootCmd(stderr io.Writer, ready func(gss, http string)) *cobra.Command {
	o := &options{}
	c := &cobra.Command{
		Use:   "kservice --keytab FILE --listen HOST:PORT [--http HOST:PORT] [--service host@localhost]",
		Short: "A sample Kerberos service: MIT's GSS sample protocol and HTTP Negotiate",
		Long: `kservice verifies Kerberos tickets with a keytab and serves:
  --listen  MIT's GSS sample protocol (gss-client; krb5 or SPNEGO), answering
            mutual authentication with an AP-REP and wrapped messages with a MIC;
  --http    HTTP Negotiate (SPNEGO, RFC 4559): "hello CLIENT" for authenticated
            requests, 401 otherwise.
Port 0 picks a free port; the bound addresses are printed on stderr.
SIGINT or SIGTERM stops it.

Exit status: 0 after a clean stop, 1 failure (keytab unreadable, address in use),
2 usage error (unknown flag, nothing to serve, no keytab named).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serve(ctx, o, stderr, ready)
		},
	}
	c.Flags().StringVar(&o.keytab, "keytab", "", "service keytab (default $KRB5_KTNAME; FILE: prefix allowed)")
	c.Flags().StringVar(&o.listen, "listen", "", "address for the GSS sample protocol, e.g. 127.0.0.1:4444")
	c.Flags().StringVar(&o.http, "http", "", "address for HTTP Negotiate, e.g. 127.0.0.1:8080")
	c.Flags().StringVar(&o.service, "service", "", "accept only this principal on --listen (service@host or a/b[@REALM]); default any in the keytab")
	c.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	_ = c.MarkFlagFilename("keytab")
	_ = c.RegisterFlagCompletionFunc("log-level", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp
	})
	// Flag and argument errors are usage errors (exit 2); the example; shell completion.
	cli.Prepare(c, map[string]string{"kservice": example})
	return c
}

// serve loads the keytab, binds the listeners, prints their addresses and
// serves until ctx is done.
func serve(ctx context.Context, o *options, stderr io.Writer, ready func(gss, http string)) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return cli.Usagef("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.listen == "" && o.http == "" {
		return cli.Usagef("nothing to serve: give --listen HOST:PORT and/or --http HOST:PORT")
	}
	if o.keytab == "" && os.Getenv("KRB5_KTNAME") == "" {
		return cli.Usagef("no keytab: use --keytab FILE or set KRB5_KTNAME")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	path, err := service.ResolveKeytabPath(o.keytab)
	if err != nil {
		return err
	}
	kt, err := service.LoadKeytab(path)
	if err != nil {
		return err
	}
	// One replay cache for every acceptor: they share the keytab's principals.
	rc := service.NewReplayCache(service.ReplayCacheOptions{})
	gssAcc, err := service.NewAcceptor(kt, service.Options{ReplayCache: rc, Logger: log, Service: o.service})
	if err != nil {
		return err
	}
	httpAcc, err := service.NewAcceptor(kt, service.Options{ReplayCache: rc, Logger: log})
	if err != nil {
		return err
	}

	var gssLn, httpLn net.Listener
	if o.listen != "" {
		if gssLn, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		defer gssLn.Close()
	}
	if o.http != "" {
		if httpLn, err = net.Listen("tcp", o.http); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer httpLn.Close()
	}

	var names []string
	for _, p := range kt.Principals() {
		names = append(names, p.String())
	}
	fmt.Fprintf(stderr, "kservice: keytab %s (%s)\n", path, strings.Join(names, ", "))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	running := 0
	var gssAddr, httpAddr string
	if gssLn != nil {
		gssAddr = gssLn.Addr().String()
		fmt.Fprintf(stderr, "kservice: gss listening on %s\n", gssAddr)
		srv := &service.SampleServer{Acceptor: gssAcc, Logger: log}
		running++
		go func() { errs <- srv.Serve(ctx, gssLn) }()
	}
	if httpLn != nil {
		httpAddr = httpLn.Addr().String()
		fmt.Fprintf(stderr, "kservice: http listening on %s\n", httpAddr)
		hs := &http.Server{
			Handler:           service.Negotiate(httpAcc, service.HelloHandler()),
			ReadHeaderTimeout: httpReadHeaderTimeout,
			ReadTimeout:       httpReadTimeout,
			WriteTimeout:      httpWriteTimeout,
			IdleTimeout:       httpIdleTimeout,
			MaxHeaderBytes:    httpMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		running++
		go func() {
			err := hs.Serve(service.LimitListener(httpLn, httpMaxConns))
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errs <- err
		}()
		go func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer scancel()
			if err := hs.Shutdown(sctx); err != nil {
				hs.Close()
			}
		}()
	}
	if ready != nil {
		ready(gssAddr, httpAddr)
	}
	var first error
	for i := 0; i < running; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel() // one listener failed: stop the other too
		}
	}
	if first != nil {
		return first
	}
	fmt.Fprintln(stderr, "kservice: stopped")
	return nil
}
