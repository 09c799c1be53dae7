package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// `kdc policy`: password and lockout policies (MIT kadmin add_policy,
// modify_policy, get_policy, list_policies, delete_policy, with the same
// option names), and `kdc principal unlock`.

func withPolicies(cmd *cobra.Command, e *env, fn func(kdc.PolicyAdmin) error) error {
	return withAdmin(cmd.Context(), e, func(a kdc.Admin) error {
		pa, ok := a.(kdc.PolicyAdmin)
		if !ok {
			return errors.New("kdc: the server on this database does not manage policies (an older kdc serve?)")
		}
		return fn(pa)
	})
}

// policyFlags are the flags of policy add and modify.
type policyFlags struct {
	minLength, minClasses, history, maxFailures int
	maxLife, failureInterval, lockoutDuration   time.Duration
}

func (p *policyFlags) register(f *pflag.FlagSet) {
	f.IntVar(&p.minLength, "min-length", 0, "least number of characters of a password (MIT minlength)")
	f.IntVar(&p.minClasses, "min-classes", 0, "least number of character classes of a password, 1-5: lower, upper, digits, punctuation, other (MIT minclasses)")
	f.IntVar(&p.history, "history", 0, "passwords remembered, counting the current one, that may not be reused (MIT history; 0 or 1: no check)")
	durationFlag(f, &p.maxLife, "max-life", 0, "how long a password lasts before it must be changed, e.g. 90d (MIT maxlife; 0: forever)")
	f.IntVar(&p.maxFailures, "max-failures", 0, "failed pre-authentications that lock the principal (MIT maxfailure; 0: no lockout)")
	durationFlag(f, &p.failureInterval, "failure-interval", 0, "how long a failure counts, e.g. 10m (MIT failurecountinterval; 0: forever)")
	durationFlag(f, &p.lockoutDuration, "lockout-duration", 0, "how long a locked principal stays locked, e.g. 10m (MIT lockoutduration; 0: until kdc principal unlock)")
}

// change is the set flags as a PolicyChange.
func (p *policyFlags) change(f *pflag.FlagSet) kdc.PolicyChange {
	var c kdc.PolicyChange
	if f.Changed("min-length") {
		c.MinLength = &p.minLength
	}
	if f.Changed("min-classes") {
		c.MinClasses = &p.minClasses
	}
	if f.Changed("history") {
		c.History = &p.history
	}
	if f.Changed("max-life") {
		c.MaxLife = &p.maxLife
	}
	if f.Changed("max-failures") {
		c.MaxFailures = &p.maxFailures
	}
	if f.Changed("failure-interval") {
		c.FailureInterval = &p.failureInterval
	}
	if f.Changed("lockout-duration") {
		c.LockoutDuration = &p.lockoutDuration
	}
	return c
}

func newPolicyCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Add, modify, show, list and delete password and lockout policies",
		Long: `A policy holds password rules (length, character classes, history, maximum
life) and the lockout rule (max failures within an interval lock a principal
for a duration). Principals name one: kdc principal add|modify --policy NAME.
kdc init creates "default", which new principals get unless told otherwise:
10 failures within 10 minutes lock for 10 minutes, no password rules.`,
		Example: `  kdc policy add strict --min-length 12 --min-classes 3 --history 5 --max-life 90d --max-failures 5 --failure-interval 15m --lockout-duration 0 --db kdc.db
  kdc policy modify default --min-length 8 --min-classes 2 --history 3 --db kdc.db
  kdc policy show default --db kdc.db
  kdc policy list --db kdc.db
  kdc policy delete strict --db kdc.db`,
	}
	c.AddCommand(newPolicyAddCmd(e), newPolicyModifyCmd(e), newPolicyShowCmd(e), newPolicyListCmd(e), newPolicyDeleteCmd(e))
	return c
}

func newPolicyAddCmd(e *env) *cobra.Command {
	p := &policyFlags{}
	c := &cobra.Command{
		Use:   "add NAME [--min-length N] [--min-classes N] [--history N] [--max-life D] [--max-failures N] [--failure-interval D] [--lockout-duration D]",
		Short: "Add a policy (unset flags: no such rule)",
		Example: `  kdc policy add strict --min-length 12 --min-classes 3 --history 5 --db kdc.db
  # Five failures within 15 minutes lock until an admin runs kdc principal unlock:
  kdc policy add locked-hard --max-failures 5 --failure-interval 15m --lockout-duration 0 --db kdc.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pol := principal.Policy{Name: args[0]}
			p.change(cmd.Flags()).Apply(&pol)
			if err := pol.Validate(); err != nil {
				return cli.Usagef("kdc: policy add: %v", err)
			}
			return withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
				got, err := a.PolicyAdd(cmd.Context(), pol)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "added policy %s\n", got.Name)
				printPolicy(e, got)
				return nil
			})
		},
	}
	p.register(c.Flags())
	return c
}

func newPolicyModifyCmd(e *env) *cobra.Command {
	p := &policyFlags{}
	c := &cobra.Command{
		Use:   "modify NAME [--min-length N] [--min-classes N] [--history N] [--max-life D] [--max-failures N] [--failure-interval D] [--lockout-duration D]",
		Short: "Change the given fields of a policy (it applies to every principal that names it)",
		Example: `  kdc policy modify default --min-length 8 --min-classes 2 --history 3 --db kdc.db
  kdc policy modify default --max-failures 0 --db kdc.db   # no lockout`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePolicies(e),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch := p.change(cmd.Flags())
			if ch == (kdc.PolicyChange{}) {
				return cli.Usagef("kdc: policy modify: nothing to change")
			}
			return withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
				got, err := a.PolicyModify(cmd.Context(), args[0], ch)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "modified policy %s\n", got.Name)
				printPolicy(e, got)
				return nil
			})
		},
	}
	p.register(c.Flags())
	return c
}

func newPolicyShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:               "show NAME",
		Short:             "Show a policy",
		Example:           `  kdc policy show default --db kdc.db`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePolicies(e),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
				got, err := a.PolicyShow(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				printPolicy(e, got)
				return nil
			})
		},
	}
}

func newPolicyListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List policies",
		Example: `  kdc policy list --db kdc.db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
				names, err := a.PolicyList(cmd.Context())
				for _, n := range names {
					fmt.Fprintln(e.stdout, n)
				}
				return err
			})
		},
	}
}

func newPolicyDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:               "delete NAME",
		Short:             "Delete a policy no principal names",
		Example:           `  kdc policy delete strict --db kdc.db`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePolicies(e),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
				if err := a.PolicyDelete(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted policy %s\n", args[0])
				return nil
			})
		},
	}
}

// completePolicies completes policy names from the database, when it opens.
func completePolicies(e *env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
			var err error
			names, err = a.PolicyList(cmd.Context())
			return err
		})
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func printPolicy(e *env, p principal.Policy) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	dur := func(d time.Duration, zero string) string {
		if d == 0 {
			return zero
		}
		return d.String()
	}
	rule := func(n int) string {
		if n == 0 {
			return "none"
		}
		return fmt.Sprint(n)
	}
	fmt.Fprintf(tw, "Policy:\t%s\n", p.Name)
	fmt.Fprintf(tw, "Min length:\t%s\n", rule(p.MinLength))
	fmt.Fprintf(tw, "Min classes:\t%s\n", rule(p.MinClasses))
	fmt.Fprintf(tw, "History:\t%s\n", rule(p.History))
	fmt.Fprintf(tw, "Max password life:\t%s\n", dur(p.MaxLife, "never expires"))
	fmt.Fprintf(tw, "Max failures:\t%s\n", rule(p.MaxFailures))
	fmt.Fprintf(tw, "Failure interval:\t%s\n", dur(p.FailureInterval, "forever"))
	lock := dur(p.LockoutDuration, "until unlocked")
	if p.MaxFailures == 0 {
		lock = "no lockout"
	}
	fmt.Fprintf(tw, "Lockout duration:\t%s\n", lock)
	tw.Flush()
}

func newPrincipalUnlockCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock NAME",
		Short: "Clear a principal's failed pre-authentication count and lockout",
		Example: `  kdc principal unlock alice --db kdc.db
  # While kdc serve runs the change goes through its admin socket:
  kdc principal show alice --db kdc.db | grep -i lock`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicies(cmd, e, func(a kdc.PolicyAdmin) error {
				info, err := a.Unlock(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "unlocked %s\n", info.Name)
				return nil
			})
		},
	}
}

// lockText is how show prints the lockout state.
func lockText(info kdc.PrincipalInfo) string {
	switch {
	case info.LockedUntil.IsZero():
		return "not locked"
	case info.LockedUntil.Equal(principal.Forever):
		return "locked until unlocked (kdc principal unlock)"
	case time.Now().After(info.LockedUntil):
		return "not locked (a lockout ended " + info.LockedUntil.Local().Format(time.RFC3339) + ")"
	}
	return "locked until " + info.LockedUntil.Local().Format(time.RFC3339)
}
