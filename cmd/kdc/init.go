package main

import (
	"fmt"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/spf13/cobra"
)

type initOptions struct {
	realm             string
	maxLife, maxRenew time.Duration
}

func newInitCmd(e *env) *cobra.Command {
	o := &initOptions{}
	c := &cobra.Command{
		Use:   "init --realm REALM [--db FILE]",
		Short: "Create a realm: the database, its master key and krbtgt/REALM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.realm == "" {
				return cli.Usagef("kdc: --realm is required")
			}
			opts, err := e.openOptions(nil)
			if err != nil {
				return err
			}
			mk, err := store.InitDB(cmd.Context(), e.db, o.realm,
				principal.RealmPolicy{MaxLife: o.maxLife, MaxRenew: o.maxRenew}, opts, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created realm %s in %s (master key %s)\n", o.realm, e.db, mk)
			if store.IsEtcdURL(e.db) {
				fmt.Fprintf(e.stdout, "copy %s (mode 0600) to every KDC of the realm: each gives it as --master-key\n", mk)
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.realm, "realm", "", "realm name, e.g. EXAMPLE.COM")
	durationFlag(c.Flags(), &o.maxLife, "max-life", principal.DefaultPolicy.MaxLife, "longest ticket lifetime in the realm, e.g. 24h")
	durationFlag(c.Flags(), &o.maxRenew, "max-renew", principal.DefaultPolicy.MaxRenew, "longest renewable lifetime, e.g. 7d")
	return c
}
