package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
)

// RenewOptions are the flags of kclient renew (and of kclient login -R).
type RenewOptions struct {
	Env *Env

	Principal string   // optional: must be the cache's principal (kinit -R PRINCIPAL)
	CCache    string   // -c
	Realm     string   // --realm
	KDCs      []string // --kdc HOST:PORT, repeatable
	Validate  bool     // validate a postdated ticket instead of renewing (kinit -v)

	// verbose, when set, gets kinit -V's lines (login -R -V, login -v -V).
	verbose func(format string, args ...any)
}

// NewCmdRenew returns "kclient renew". runF replaces the run function in tests; nil means renewRun.
func NewCmdRenew(env *Env, runF func(context.Context, *RenewOptions) error) *cobra.Command {
	opts := &RenewOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Renew the ticket-granting ticket in the cache (like kinit -R)",
		Long: `Renew the ticket-granting ticket in the credential cache (a TGS exchange with the renew option) and replace
it in the cache: the new ticket starts now, keeps its lifetime and its renew-till. Other tickets in the cache are
kept. The ticket must be renewable (kclient login -r) and its renew-till must not have passed.
The cache is -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>. "kclient login -R" does the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return renewRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.StringVar(&opts.Realm, "realm", "", "default realm (overrides krb5.conf)")
	f.StringArrayVar(&opts.KDCs, "kdc", nil, "KDC address HOST:PORT for the ticket's realm (repeatable; overrides krb5.conf)")
	return cmd
}

// renewRun renews (or validates) the cache's TGT and replaces it in the cache.
func renewRun(ctx context.Context, o *RenewOptions) error {
	during := "while renewing credentials"
	if o.Validate {
		during = "while validating credentials"
	}
	verbose := o.verbose
	if verbose == nil {
		verbose = func(string, ...any) {}
	}
	if o.CCache != "" {
		verbose("Using specified cache: %s", o.CCache)
	}
	s, err := openTGSSession(o.Env, o.CCache, o.Realm, o.KDCs, during)
	if err != nil {
		return err
	}
	if o.Principal != "" {
		p, err := client.ParsePrincipal(o.Principal, s.cfg.Realm)
		if err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
		if !p.Equal(s.cc.DefaultPrincipal) {
			return fmt.Errorf("kclient: the cache %s holds tickets for %s, not %s", s.name, s.cc.DefaultPrincipal, p)
		}
		if o.CCache == "" {
			verbose("Using default cache: %s", s.name.Residual)
		}
	}
	verbose("Using principal: %s", s.cc.DefaultPrincipal)
	res, err := s.client.TGS(ctx, client.TGSRequest{TGT: s.tgt, Renew: !o.Validate, Validate: o.Validate, KDCOffset: s.cc.KDCOffset})
	switch {
	case errors.Is(err, client.ErrNotRenewable):
		return &userError{msg: fmt.Sprintf("kclient: Ticket %s is not renewable (log in with -r to get a renewable ticket) %s",
			s.tgt.Server, during), err: err}
	case errors.Is(err, client.ErrRenewExpired):
		return &userError{msg: fmt.Sprintf("kclient: Ticket %s could be renewed only until %s (log in again) %s",
			s.tgt.Server, s.tgt.RenewTill.In(time.Local).Format(listTimeLayout), during), err: err}
	case err != nil:
		return tgsError(err, during)
	}
	verbose("Initialized cache")
	s.cc.Add(res.Credential)
	if err := s.save(); err != nil {
		return err
	}
	verbose("Stored credentials")
	return nil
}
