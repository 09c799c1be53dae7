package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/store"
	"github.com/spf13/cobra"
)

type serveOptions struct {
	listen   string
	logLevel string
}

func newServeCmd(e *env) *cobra.Command {
	o := &serveOptions{}
	c := &cobra.Command{
		Use:   "serve [--db FILE] [--listen HOST:PORT]",
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
	return c
}

// serve opens the database, serves Kerberos and the admin socket, and returns
// when ctx is done. ready, if set, is called with the bound address once
// requests can be answered.
func serve(ctx context.Context, e *env, o *serveOptions, ready func(addr, realm string)) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("kdc: --log-level %q: want debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	db, err := store.Open(e.db, store.OpenOptions{})
	if err != nil {
		if errors.Is(err, store.ErrInUse) {
			return fmt.Errorf("kdc: %w; only one kdc serve may use a database", err)
		}
		return err
	}
	defer db.Close()

	k, err := kdc.New(kdc.Config{Store: db, Logger: log})
	if err != nil {
		return err
	}
	srv := kdc.NewServer(k, log)
	if err := srv.Listen(o.listen); err != nil {
		return err
	}
	adm, err := kdc.ListenAdmin(kdc.AdminSocketPath(e.db))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	admDone := make(chan struct{})
	go func() {
		adm.Serve(ctx, &kdc.LocalAdmin{Store: db}, log)
		close(admDone)
	}()

	fmt.Fprintf(e.stderr, "kdc: realm %s, listening on %s (udp, tcp); admin socket %s\n", db.Realm(), srv.Addr(), kdc.AdminSocketPath(e.db))
	if ready != nil {
		ready(srv.Addr(), db.Realm())
	}
	err = srv.Serve(ctx)
	cancel()
	<-admDone
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "kdc: stopped")
	return nil
}
