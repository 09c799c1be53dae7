package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/spf13/cobra"
)

// `kdc principal alias` and `kdc principal modify`: other names of a principal
// (RFC 6806) and its delegation settings (MS-SFU).

func withNames(cmd *cobra.Command, e *env, fn func(kdc.NamesAdmin) error) error {
	return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
		na, ok := a.(kdc.NamesAdmin)
		if !ok {
			return errors.New("kdc: the server on this database does not manage aliases (an older kdc serve?)")
		}
		return fn(na)
	})
}

func newPrincipalAliasCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "alias",
		Short: "Add, delete and list other names of a principal (kinit -C and kinit -E find them)",
		Example: `  kdc principal alias add alice al --db kdc.db                    # kinit -C al logs in as alice
  kdc principal alias add alice 'alice\@example.com' --db kdc.db  # kinit -E alice@example.com
  kdc principal alias list --db kdc.db
  kdc principal alias delete al --db kdc.db`,
	}
	c.AddCommand(&cobra.Command{
		Use:   "add NAME ALIAS",
		Short: "Make ALIAS another name of principal NAME (same realm)",
		Example: `  kdc principal alias add alice al --db kdc.db
  kdc principal alias add HTTP/www.example.com HTTP/web.example.com --db kdc.db`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNames(cmd, e, func(a kdc.NamesAdmin) error {
				info, err := a.AliasAdd(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s is now an alias of %s (aliases: %s)\n", args[1], info.Name, strings.Join(info.Aliases, ", "))
				return nil
			})
		},
	}, &cobra.Command{
		Use:     "delete ALIAS",
		Short:   "Remove an alias (the principal stays)",
		Example: `  kdc principal alias delete al --db kdc.db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNames(cmd, e, func(a kdc.NamesAdmin) error {
				canon, err := a.AliasDelete(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted alias %s of %s\n", args[0], canon)
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "list [NAME]",
		Short: "List the aliases of NAME, or of every principal",
		Example: `  kdc principal alias list --db kdc.db
  kdc principal alias list alice --db kdc.db`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return withNames(cmd, e, func(a kdc.NamesAdmin) error {
				list, err := a.AliasList(cmd.Context(), name)
				for _, al := range list {
					fmt.Fprintf(e.stdout, "%s\t%s\n", al.Alias, al.Principal)
				}
				return err
			})
		},
	})
	return c
}

func newPrincipalModifyCmd(e *env) *cobra.Command {
	var okAs, okAuth, clear, reqFAST bool
	var add, del []string
	var pwExpires, policy string
	var noPolicy bool
	c := &cobra.Command{
		Use:   "modify NAME [--ok-as-delegate] [--ok-to-auth-as-delegate] [--add-delegate-to SVC]...",
		Short: "Change a principal's delegation settings (S4U2Self, S4U2Proxy, ok-as-delegate)",
		Long: `modify changes what a service may do on behalf of users (MS-SFU, as MIT does it):

  --ok-as-delegate           tickets for this service carry ok-as-delegate: clients
                             may forward their TGT to it (MIT ok_as_delegate)
  --ok-to-auth-as-delegate   its S4U2Self tickets are forwardable, so it may use them
                             for S4U2Proxy without the user's own ticket (MIT
                             ok_to_auth_as_delegate, "protocol transition")
  --add-delegate-to SVC      it may get tickets for SVC on behalf of users with
                             S4U2Proxy (constrained delegation; MIT's
                             allowed_to_delegate_to string attribute)
  --requires-fast            as a client it must log in inside FAST (RFC 6113,
                             kinit -T): an unarmored AS-REQ is refused

Pass --ok-as-delegate=false to clear a flag.

  --pw-expires WHEN          the password expires then: now, never, a time
                             (2027-01-31T00:00:00Z) or a duration from now (90d).
                             An expired password must be changed at the next
                             login (kinit, kclient login) before a TGT is issued.`,
		Example: `  # HTTP/web may impersonate users to postgres/db:
  kdc principal modify HTTP/web.example.com --ok-to-auth-as-delegate --add-delegate-to postgres/db.example.com --db kdc.db
  kdc principal modify HTTP/web.example.com --delete-delegate-to postgres/db.example.com --db kdc.db
  kdc principal modify HTTP/web.example.com --ok-to-auth-as-delegate=false --clear-delegate-to --db kdc.db
  # alice must change her password at her next login:
  kdc principal modify alice --pw-expires now --db kdc.db
  # alice must log in armored (kinit -T):
  kdc principal modify alice --requires-fast --db kdc.db
  # alice's password and lockout rules are those of policy strict:
  kdc principal modify alice --policy strict --db kdc.db
  kdc principal modify alice --no-policy --db kdc.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m := kdc.ModifyRequest{AddDelegateTo: add, DeleteDelegateTo: del, ClearDelegateTo: clear}
			if cmd.Flags().Changed("ok-as-delegate") {
				m.OKAsDelegate = &okAs
			}
			if cmd.Flags().Changed("ok-to-auth-as-delegate") {
				m.OKToAuthAsDelegate = &okAuth
			}
			if cmd.Flags().Changed("pw-expires") {
				t, err := parseWhen(pwExpires, time.Now())
				if err != nil {
					return cli.Usagef("kdc: principal modify: --pw-expires: %v", err)
				}
				m.PasswordExpires = &t
			}
			if cmd.Flags().Changed("requires-fast") {
				m.RequiresFAST = &reqFAST
			}
			switch {
			case cmd.Flags().Changed("policy") && noPolicy:
				return cli.Usagef("kdc: principal modify: --policy and --no-policy exclude each other")
			case cmd.Flags().Changed("policy"):
				m.Policy = &policy
			case noPolicy:
				m.Policy = new(string)
			}
			if m.OKAsDelegate == nil && m.OKToAuthAsDelegate == nil && m.RequiresFAST == nil && len(add)+len(del) == 0 && !clear && m.PasswordExpires == nil && m.Policy == nil {
				return cli.Usagef("kdc: principal modify: nothing to change")
			}
			return withNames(cmd, e, func(a kdc.NamesAdmin) error {
				info, err := a.Modify(cmd.Context(), args[0], m)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "modified %s: ok-as-delegate %v, ok-to-auth-as-delegate %v, allowed to delegate to: %s, requires FAST %v\n",
					info.Name, info.OKAsDelegate, info.OKToAuthAsDelegate, orNone(info.DelegateTo), info.RequiresFAST)
				if m.PasswordExpires != nil {
					when := "never"
					if !m.PasswordExpires.IsZero() {
						when = m.PasswordExpires.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(e.stdout, "password expires: %s\n", when)
				}
				if m.Policy != nil {
					fmt.Fprintf(e.stdout, "policy: %s\n", orNoneS(info.Policy))
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.BoolVar(&okAs, "ok-as-delegate", false, "tickets for this service carry ok-as-delegate")
	f.BoolVar(&okAuth, "ok-to-auth-as-delegate", false, "S4U2Self tickets of this service are forwardable (protocol transition)")
	f.StringArrayVar(&add, "add-delegate-to", nil, "a service this one may delegate to with S4U2Proxy (repeatable)")
	f.StringArrayVar(&del, "delete-delegate-to", nil, "remove a service from the allowed-to-delegate-to list (repeatable)")
	f.BoolVar(&clear, "clear-delegate-to", false, "empty the allowed-to-delegate-to list first")
	f.StringVar(&policy, "policy", "", "give the principal this password and lockout policy (kdc policy list)")
	f.BoolVar(&noPolicy, "no-policy", false, "take the principal's policy away")
	c.RegisterFlagCompletionFunc("policy", completePolicies(e))
	f.StringVar(&pwExpires, "pw-expires", "", "when the password expires: now, never, an RFC 3339 time or a duration from now (90d)")
	f.BoolVar(&reqFAST, "requires-fast", false, "the principal must log in inside FAST (kinit -T); =false clears it")
	return c
}

// parseWhen reads --pw-expires: now, never (the zero time), an RFC 3339
// time, or a duration from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	switch s {
	case "now":
		return now.UTC(), nil
	case "never":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := client.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not now, never, an RFC 3339 time or a duration", s)
	}
	return now.Add(d).UTC(), nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
