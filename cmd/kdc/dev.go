package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/spf13/cobra"
)

type devOptions struct {
	dir      string
	realm    string
	listen   string
	user     string
	password string
}

// devServices get random keys and land in the dev keytab.
var devServices = []string{"host/localhost", "HTTP/localhost"}

func newDevCmd(e *env) *cobra.Command {
	o := &devOptions{}
	c := &cobra.Command{
		Use:   "dev [--dir DIR]",
		Short: "A working realm on loopback in one command: user, services, keytab, krb5.conf",
		Long: `dev creates a realm in DIR (a new temporary directory, removed on exit, unless
--dir is given; an existing realm in DIR is reused), adds a user with a known
password and the services host/localhost and HTTP/localhost, exports their keys
to DIR/service.keytab, writes DIR/krb5.conf, and serves until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, e, o, cmd.Flags().Changed("dir"))
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "directory for the realm (default: a temporary one, removed on exit)")
	c.Flags().StringVar(&o.realm, "realm", "KERBKIT.TEST", "realm name")
	c.Flags().StringVar(&o.listen, "listen", "127.0.0.1:0", "address for UDP and TCP (port 0 picks a free port)")
	c.Flags().StringVar(&o.user, "user", "alice", "the user to create")
	c.Flags().StringVar(&o.password, "password", "kerbkit-dev", "the user's password (a throwaway dev realm: it is printed)")
	return c
}

func runDev(ctx context.Context, e *env, o *devOptions, keepDir bool) error {
	if !keepDir {
		d, err := os.MkdirTemp("", "kerbkit-dev-")
		if err != nil {
			return fmt.Errorf("kdc: %w", err)
		}
		o.dir = d
		defer os.RemoveAll(d)
	} else if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	e.db = filepath.Join(dir, "kdc.db")
	keytab := filepath.Join(dir, "service.keytab")
	if err := setupDevRealm(ctx, e, o, keytab); err != nil {
		return err
	}
	conf := filepath.Join(dir, "krb5.conf")
	ready := func(addr, realm string) {
		if err := writeDevKrb5Conf(conf, realm, addr); err != nil {
			fmt.Fprintf(e.stderr, "kdc: writing %s: %v\n", conf, err)
			return
		}
		fmt.Fprintf(e.stdout, `Realm %s is up on %s (UDP and TCP).
  database   %s
  user       %s@%s  password: %s
  services   %s and %s, keys in %s

In another terminal:
  export KRB5_CONFIG=%s
  export KRB5CCNAME=FILE:%s
  kclient login %s        # or MIT: kinit %s
  kclient list            # or MIT: klist -f -e

Press Ctrl-C to stop.
`, realm, addr, e.db, o.user, realm, o.password, devServices[0], devServices[1], keytab,
			conf, filepath.Join(dir, "ccache"), o.user, o.user)
	}
	return serve(ctx, e, &serveOptions{listen: o.listen, logLevel: "info"}, ready)
}

// setupDevRealm creates the realm, or reuses the one in the directory, and makes
// sure the user, the services and the keytab exist.
func setupDevRealm(ctx context.Context, e *env, o *devOptions, keytab string) error {
	var db *store.BoltStore
	var err error
	if _, statErr := os.Stat(e.db); statErr == nil {
		db, err = store.Open(e.db, store.OpenOptions{})
	} else {
		db, err = store.Init(ctx, e.db, o.realm, principal.RealmPolicy{}, time.Now())
	}
	if err != nil {
		return err
	}
	defer db.Close()
	a := &kdc.LocalAdmin{Store: db}
	adds := []kdc.AddRequest{{Name: o.user, Password: o.password}}
	for _, s := range devServices {
		adds = append(adds, kdc.AddRequest{Name: s, RandomKey: true})
	}
	for _, req := range adds {
		if _, err := a.Add(ctx, req); err != nil && !errors.Is(err, principal.ErrExists) {
			return err
		}
	}
	entries, err := a.Keytab(ctx, devServices)
	if err != nil {
		return err
	}
	return ticket.WriteKeytabFile(keytab, entries)
}

// writeDevKrb5Conf writes a krb5.conf that MIT, Heimdal, Java and kclient all read
// (interop-peers.md §1.1): no DNS, no reverse lookups, localhost in the realm.
func writeDevKrb5Conf(path, realm, addr string) error {
	conf := fmt.Sprintf(`# written by kdc dev
[libdefaults]
    default_realm = %[1]s
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1465
    forwardable = true

[realms]
    %[1]s = {
        kdc = %[2]s
    }

[domain_realm]
    localhost = %[1]s
`, realm, addr)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
