package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/spf13/cobra"
)

// `kdc trust`: cross-realm trust through shared inter-realm keys (RFC 4120
// §1.2). The keys come from a password both realms' administrators type, with
// the default salt, so an MIT realm that runs `kadmin.local addprinc
// krbtgt/B@A` with the same password holds the same keys.

var trustDirections = []string{kdc.TrustBoth, kdc.TrustIn, kdc.TrustOut}

func newTrustCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "trust",
		Short: "Trust another realm: add, list and delete inter-realm keys",
		Example: `  kdc trust add OTHER.EXAMPLE --db kdc.db          # the shared password is prompted for
  kdc trust list --db kdc.db
  kdc trust delete OTHER.EXAMPLE --db kdc.db`,
	}
	c.AddCommand(newTrustAddCmd(e), newTrustListCmd(e), newTrustDeleteCmd(e))
	return c
}

func directionFlag(c *cobra.Command, dst *string) {
	c.Flags().StringVar(dst, "direction", kdc.TrustBoth,
		"out: our clients may use the other realm's services (krbtgt/OTHER@OURS); in: the other realm's clients may use ours (krbtgt/OURS@OTHER); both")
	c.RegisterFlagCompletionFunc("direction", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return trustDirections, cobra.ShellCompDirectiveNoFileComp
	})
}

func checkDirection(d string) error {
	for _, ok := range trustDirections {
		if d == ok {
			return nil
		}
	}
	return cli.Usagef("kdc: --direction %q: want in, out or both", d)
}

func newTrustAddCmd(e *env) *cobra.Command {
	var direction, passwordFile, enctypes string
	var kvno uint32
	c := &cobra.Command{
		Use:   "add OTHER-REALM [--direction in|out|both] [--password-file FILE]",
		Short: "Trust a realm: inter-realm keys from a shared password (prompted for, or one line of stdin or a file)",
		Args:  cobra.ExactArgs(1),
		Example: `  # Both ways (the default); type the same password in the other realm:
  kdc trust add OTHER.EXAMPLE --db kdc.db
  # Only let our users reach OTHER.EXAMPLE's services, the password from a file (mode 0600):
  kdc trust add OTHER.EXAMPLE --direction out --password-file trust.pw --db kdc.db
  # The MIT side of the same trust, in realm OTHER.EXAMPLE:
  #   kadmin.local -q "addprinc krbtgt/OTHER.EXAMPLE@EXAMPLE.COM"  and  "addprinc krbtgt/EXAMPLE.COM@OTHER.EXAMPLE"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDirection(direction); err != nil {
				return err
			}
			req := kdc.TrustRequest{Realm: args[0], Direction: direction, KVNO: kvno}
			if enctypes != "" {
				var err error
				if req.Enctypes, err = principal.ParseEnctypes(enctypes); err != nil {
					return cli.Usagef("kdc: --enctypes: %v", err)
				}
			}
			pw, err := trustPassword(e, passwordFile)
			if err != nil {
				return err
			}
			req.Password = pw
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				ta, ok := a.(kdc.TrustAdmin)
				if !ok {
					return errors.New("kdc: this database cannot hold trusts")
				}
				infos, err := ta.TrustAdd(cmd.Context(), req)
				if err != nil {
					return err
				}
				for _, info := range infos {
					fmt.Fprintf(e.stdout, "added %s (kvno %d, %s)\n", info.Name, info.KVNO, strings.Join(info.Enctypes, ", "))
				}
				return nil
			})
		},
	}
	directionFlag(c, &direction)
	c.Flags().StringVar(&passwordFile, "password-file", "", "read the shared password from the first line of this file")
	c.Flags().StringVar(&enctypes, "enctypes", "", "comma-separated enctypes of the keys (default: "+defaultEnctypeNames()+"); a realm seals cross-realm TGTs in the first enctype it holds, which the other realm must hold too")
	c.Flags().Uint32Var(&kvno, "kvno", 1, "key version number; the other realm's must be the same (MIT addprinc: 1)")
	c.RegisterFlagCompletionFunc("enctypes", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return principal.EnctypeNames(), cobra.ShellCompDirectiveNoFileComp
	})
	return c
}

// trustPassword reads the shared password: from --password-file, else the
// terminal (twice), else one line of stdin. Never from argv.
func trustPassword(e *env, file string) (string, error) {
	if file == "" {
		return readSecret(e, "Shared inter-realm password", true)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("kdc: --password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	clear(b)
	if line == "" {
		return "", fmt.Errorf("kdc: --password-file %s: the first line is empty", file)
	}
	return line, nil
}

func newTrustListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the realms this realm holds inter-realm keys with",
		Args:    cobra.NoArgs,
		Example: `  kdc trust list --db kdc.db`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				ta, ok := a.(kdc.TrustAdmin)
				if !ok {
					return errors.New("kdc: this database cannot hold trusts")
				}
				trusts, err := ta.TrustList(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "REALM\tDIRECTION\tKEYS")
				for _, t := range trusts {
					var keys []string
					for _, p := range []*kdc.PrincipalInfo{t.Out, t.In} {
						if p != nil {
							keys = append(keys, fmt.Sprintf("%s kvno %d %s", p.Name, p.KVNO, strings.Join(p.Enctypes, ",")))
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", t.Realm, t.Direction(), strings.Join(keys, "; "))
				}
				return w.Flush()
			})
		},
	}
}

func newTrustDeleteCmd(e *env) *cobra.Command {
	var direction string
	c := &cobra.Command{
		Use:   "delete OTHER-REALM [--direction in|out|both]",
		Short: "Stop trusting a realm: delete its inter-realm keys",
		Args:  cobra.ExactArgs(1),
		Example: `  kdc trust delete OTHER.EXAMPLE --db kdc.db
  kdc trust delete OTHER.EXAMPLE --direction in --db kdc.db   # its users lose access to ours`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDirection(direction); err != nil {
				return err
			}
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				ta, ok := a.(kdc.TrustAdmin)
				if !ok {
					return errors.New("kdc: this database cannot hold trusts")
				}
				deleted, err := ta.TrustDelete(cmd.Context(), args[0], direction)
				for _, n := range deleted {
					fmt.Fprintf(e.stdout, "deleted %s\n", n)
				}
				return err
			})
		},
	}
	directionFlag(c, &direction)
	return c
}
