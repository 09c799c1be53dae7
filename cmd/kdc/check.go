package main

import (
	"fmt"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/spf13/cobra"
)

func newCheckCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check [--db FILE]",
		Short: "Check the database file for damage (bbolt's page check); through the server when one runs",
		Long: `check runs bbolt's consistency check over the whole database file: every page is
reachable exactly once and none is both used and free. kdc serve runs the same check
when it opens the database and refuses a damaged one. A damaged database should be
restored from a backup: a copy of the file taken while no kdc serve ran on it.`,
		Example: `  kdc check --db /var/lib/kerbkit/kdc.db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				if err := a.Check(cmd.Context()); err != nil {
					return err
				}
				names, err := a.List(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s: no damage found (%d principals)\n", e.db, len(names))
				return nil
			})
		},
	}
}
