package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/spf13/cobra"
)

// withAdmin runs fn against the realm: through the admin socket when a server
// holds the database, else on the database directly.
//
// An etcd database is shared: the command changes it directly, in its own
// transactions, and every KDC on it sees the change within a second.
func withAdmin(ctx context.Context, e *env, fn func(kdc.Admin) error) error {
	if store.IsEtcdURL(e.db) {
		db, err := e.openDB(ctx, nil, true)
		if err != nil {
			return err
		}
		defer db.Close()
		return e.withLocalAdmin(db, fn)
	}
	if c, ok := kdc.DialAdmin(kdc.AdminSocketPath(e.db)); ok {
		return fn(c)
	}
	o, err := e.openOptions(nil)
	if err != nil {
		return err
	}
	db, err := store.Open(e.db, o)
	if err != nil {
		if errors.Is(err, store.ErrInUse) {
			return fmt.Errorf("kdc: %w, and its admin socket %s does not answer", err, kdc.AdminSocketPath(e.db))
		}
		return err
	}
	defer db.Close()
	return e.withLocalAdmin(db, fn)
}

type addOptions struct {
	password  string
	randomKey bool
	noPreauth bool
	maxLife   time.Duration
	maxRenew  time.Duration
	enctypes  string
	policy    string
	noPolicy  bool
	ignorePol bool
}

func newPrincipalCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "principal",
		Short: "Add, list, show, change and remove principals",
	}
	c.AddCommand(newPrincipalAddCmd(e), newPrincipalListCmd(e), newPrincipalShowCmd(e),
		newPrincipalDeleteCmd(e), newPrincipalPasswdCmd(e),
		newPrincipalDisableCmd(e, "disable", true), newPrincipalDisableCmd(e, "enable", false),
		newPrincipalPurgeKeysCmd(e), newPrincipalAliasCmd(e), newPrincipalModifyCmd(e), newPrincipalUnlockCmd(e))
	return c
}

func newPrincipalAddCmd(e *env) *cobra.Command {
	o := &addOptions{}
	c := &cobra.Command{
		Use:   "add NAME [--password P | --random-key]",
		Short: "Add a principal (password from the terminal or one line of stdin unless --random-key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := kdc.AddRequest{Name: args[0], RandomKey: o.randomKey, NoPreauth: o.noPreauth, MaxLife: o.maxLife, MaxRenew: o.maxRenew,
				Policy: o.policy, NoPolicy: o.noPolicy, IgnorePolicy: o.ignorePol}
			if o.policy != "" && o.noPolicy {
				return cli.Usagef("kdc: --policy and --no-policy exclude each other")
			}
			if o.enctypes != "" {
				var err error
				if req.Enctypes, err = principal.ParseEnctypes(o.enctypes); err != nil {
					return err
				}
			}
			if err := fillPassword(e, cmd, o.password, o.randomKey, &req.Password); err != nil {
				return err
			}
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				info, err := a.Add(cmd.Context(), req)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "added %s (kvno %d, %s, policy %s)\n", info.Name, info.KVNO, strings.Join(info.Enctypes, ", "), orNoneS(info.Policy))
				return nil
			})
		},
	}
	c.Flags().StringVar(&o.password, "password", "", "password (visible in the process list: prefer the prompt or stdin)")
	c.Flags().BoolVar(&o.randomKey, "random-key", false, "random keys, for services")
	c.Flags().BoolVar(&o.noPreauth, "no-preauth", false, "do not require pre-authentication (not recommended)")
	durationFlag(c.Flags(), &o.maxLife, "max-life", 0, "longest ticket lifetime for this principal (0: realm limit)")
	durationFlag(c.Flags(), &o.maxRenew, "max-renew", 0, "longest renewable lifetime for this principal (0: realm limit)")
	c.Flags().StringVar(&o.enctypes, "enctypes", "", "comma-separated enctypes (default: "+defaultEnctypeNames()+")")
	c.Flags().StringVar(&o.policy, "policy", "", `password and lockout policy (default: the policy "default" when the realm has one)`)
	c.Flags().BoolVar(&o.noPolicy, "no-policy", false, `no policy, not even "default"`)
	c.Flags().BoolVar(&o.ignorePol, "ignore-policy", false, "accept a password the policy's rules refuse (administrator's override)")
	c.RegisterFlagCompletionFunc("policy", completePolicies(e))
	c.RegisterFlagCompletionFunc("enctypes", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return principal.EnctypeNames(), cobra.ShellCompDirectiveNoFileComp
	})
	return c
}

func defaultEnctypeNames() string {
	var n []string
	for _, e := range principal.DefaultEnctypes {
		n = append(n, principal.EnctypeName(e))
	}
	return strings.Join(n, ",")
}

// fillPassword sets *dst from --password, or reads it unless random keys were asked for.
func fillPassword(e *env, cmd *cobra.Command, flagPW string, random bool, dst *string) error {
	if random {
		if cmd.Flags().Changed("password") {
			return cli.Usagef("kdc: --password and --random-key exclude each other")
		}
		return nil
	}
	if cmd.Flags().Changed("password") {
		if flagPW == "" {
			return errors.New("kdc: empty --password")
		}
		*dst = flagPW
		return nil
	}
	pw, err := readSecret(e, "Password", true)
	if err != nil {
		return err
	}
	*dst = pw
	return nil
}

func newPrincipalListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List principals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				names, err := a.List(cmd.Context())
				for _, n := range names {
					fmt.Fprintln(e.stdout, n)
				}
				return err
			})
		},
	}
}

func newPrincipalShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a principal (never its keys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				info, err := a.Show(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				printInfo(e, info)
				return nil
			})
		},
	}
}

func printInfo(e *env, info kdc.PrincipalInfo) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	limit := func(d time.Duration) string {
		if d == 0 {
			return "realm default"
		}
		return d.String()
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "Principal:\t%s\n", info.Name)
	fmt.Fprintf(tw, "Key version:\t%d\n", info.KVNO)
	fmt.Fprintf(tw, "Enctypes:\t%s\n", strings.Join(info.Enctypes, ", "))
	if len(info.OldKVNOs) > 0 {
		fmt.Fprintf(tw, "Old kvnos kept:\t%v\n", info.OldKVNOs)
	}
	fmt.Fprintf(tw, "Requires preauth:\t%v\n", info.RequiresPreauth)
	if info.RequiresFAST {
		fmt.Fprintf(tw, "Requires FAST:\t%v\n", info.RequiresFAST)
	}
	fmt.Fprintf(tw, "Disabled:\t%v\n", info.Disabled)
	fmt.Fprintf(tw, "Max life:\t%s\n", limit(info.MaxLife))
	fmt.Fprintf(tw, "Max renew:\t%s\n", limit(info.MaxRenew))
	fmt.Fprintf(tw, "Expires:\t%s\n", when(info.Expires))
	fmt.Fprintf(tw, "Policy:\t%s\n", orNoneS(info.Policy))
	fmt.Fprintf(tw, "Password changed:\t%s\n", when(info.LastPasswordChange))
	fmt.Fprintf(tw, "Password expires:\t%s\n", when(info.PasswordExpires))
	fmt.Fprintf(tw, "Failed logins:\t%d\n", info.FailCount)
	fmt.Fprintf(tw, "Last failure:\t%s\n", when(info.LastFailure))
	fmt.Fprintf(tw, "Lockout:\t%s\n", lockText(info))
	if len(info.Aliases) > 0 {
		fmt.Fprintf(tw, "Aliases:\t%s\n", strings.Join(info.Aliases, ", "))
	}
	if info.OKAsDelegate || info.OKToAuthAsDelegate || len(info.DelegateTo) > 0 {
		fmt.Fprintf(tw, "OK as delegate:\t%v\n", info.OKAsDelegate)
		fmt.Fprintf(tw, "OK to auth as delegate:\t%v\n", info.OKToAuthAsDelegate)
		fmt.Fprintf(tw, "Allowed to delegate to:\t%s\n", orNone(info.DelegateTo))
	}
	fmt.Fprintf(tw, "Created:\t%s\n", when(info.Created))
	fmt.Fprintf(tw, "Modified:\t%s\n", when(info.Modified))
	tw.Flush()
}

func newPrincipalDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a principal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				if err := a.Delete(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted %s\n", args[0])
				return nil
			})
		},
	}
}

func newPrincipalPasswdCmd(e *env) *cobra.Command {
	var password string
	var random, ignorePolicy bool
	c := &cobra.Command{
		Use:   "passwd NAME [--password P | --random-key]",
		Short: "Give a principal new keys (next kvno; the two kvnos before it are kept for tickets already issued)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pw string
			if err := fillPassword(e, cmd, password, random, &pw); err != nil {
				return err
			}
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				var info kdc.PrincipalInfo
				var err error
				if pa, ok := a.(kdc.PolicyAdmin); ok {
					info, err = pa.SetPassword(cmd.Context(), args[0], pw, random, ignorePolicy)
				} else {
					info, err = a.ChangeKeys(cmd.Context(), args[0], pw, random)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "changed keys of %s: kvno %d\n", info.Name, info.KVNO)
				return nil
			})
		},
	}
	c.Flags().StringVar(&password, "password", "", "new password (visible in the process list: prefer the prompt or stdin)")
	c.Flags().BoolVar(&random, "random-key", false, "new random keys")
	c.Flags().BoolVar(&ignorePolicy, "ignore-policy", false, "accept a password the principal's policy refuses (administrator's override)")
	return c
}

func newPrincipalDisableCmd(e *env, verb string, disabled bool) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a principal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				info, err := a.SetDisabled(cmd.Context(), args[0], disabled)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%sd %s\n", verb, info.Name)
				return nil
			})
		},
	}
}

func newPrincipalPurgeKeysCmd(e *env) *cobra.Command {
	var keep int
	c := &cobra.Command{
		Use:   "purgekeys NAME [--keep N]",
		Short: "Drop the keys of old kvnos, keeping the current one and the N newest older ones (MIT purgekeys)",
		Long: `purgekeys drops the keys a principal keeps from before its last key changes. passwd keeps
the two kvnos before the current one, so that tickets issued under them stay readable
until they expire; once those tickets have expired (or to cut off a leaked key now),
purge them. --keep 0 (the default) keeps only the current kvno.`,
		Example: `  kdc principal purgekeys HTTP/www.example.com           # only the current kvno is left
  kdc principal purgekeys HTTP/www.example.com --keep 1  # and the one before it`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
				info, err := a.PurgeKeys(cmd.Context(), args[0], keep)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "purged old keys of %s: kvno %d kept", info.Name, info.KVNO)
				if len(info.OldKVNOs) > 0 {
					fmt.Fprintf(e.stdout, ", and old kvnos %v", info.OldKVNOs)
				}
				fmt.Fprintln(e.stdout)
				return nil
			})
		},
	}
	c.Flags().IntVar(&keep, "keep", 0, "older kvnos to keep besides the current one")
	return c
}

// orNoneS is s, or "none".
func orNoneS(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
