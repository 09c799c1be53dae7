package main

import (
	"fmt"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/spf13/cobra"
)

func newKeytabCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keytab NAME... -o FILE",
		Short: "Export principals' keys (every kvno still kept) as an MIT keytab, mode 0600",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return cli.Usagef("kdc: -o FILE is required")
			}
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				entries, err := a.Keytab(cmd.Context(), args)
				if err != nil {
					return err
				}
				if err := ticket.WriteKeytabFile(out, entries); err != nil {
					return err
				}
				for _, en := range entries {
					fmt.Fprintf(e.stdout, "%s kvno %d %s\n", en.Principal, en.KVNO, principal.EnctypeName(en.Key.KeyType))
				}
				fmt.Fprintf(e.stdout, "wrote %d keys to %s\n", len(entries), out)
				return nil
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "keytab file to write")
	return c
}
