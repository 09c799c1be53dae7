package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// TicketOptions are the flags and arguments of kclient ticket.
type TicketOptions struct {
	Env *Env

	Services []string // SERVICE arguments
	CCache   string   // -c
	Realm    string   // --realm
	KDCs     []string // --kdc HOST:PORT, repeatable
	Explain  bool     // --explain: explain every message (walkthrough.Explainer)
}

// NewCmdTicket returns "kclient ticket". runF replaces the run function in tests; nil means ticketRun.
func NewCmdTicket(env *Env, runF func(context.Context, *TicketOptions) error) *cobra.Command {
	opts := &TicketOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "ticket SERVICE...",
		Short: "Get service tickets with the ticket-granting ticket in the cache (like kvno)",
		Long: `Get a service ticket for each SERVICE (the TGS exchange) with the ticket-granting ticket in the credential
cache, add it to the same cache, and print the key version number of the service key, as kvno does:

    host/localhost@KRB.TEST: kvno = 2

SERVICE is a principal name such as host/localhost or HTTP/www.example.com@REALM; without a realm it gets the
default realm (--realm, else krb5.conf default_realm, else the realm of the cache's principal). The ticket is
forwardable when the ticket-granting ticket is, and renewable when it is. The first failure stops with exit
status 1; tickets obtained before it are kept in the cache.
The cache is -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return ticketRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.StringVar(&opts.Realm, "realm", "", "default realm for service names (overrides krb5.conf)")
	f.StringArrayVar(&opts.KDCs, "kdc", nil, "KDC address HOST:PORT for the ticket-granting ticket's realm (repeatable; overrides krb5.conf)")
	f.BoolVar(&opts.Explain, "explain", false, "explain every message, limited to what the client can decrypt")
	return cmd
}

// tgsSession is what the ticket and renew commands share: the configuration, the cache read from its file, and
// the ticket-granting ticket found in it.
type tgsSession struct {
	cfg    *client.Config
	client *client.Client
	path   string // resolved cache file
	cc     *ticket.CCache
	tgt    ticket.Credential
}

// openTGSSession loads krb5.conf, applies --realm and --kdc, reads the cache and finds the TGT of the cache's
// principal for its own realm. what names the operation for error messages ("while ...").
func openTGSSession(env *Env, ccFlag, realm string, kdcs []string, what string) (*tgsSession, error) {
	cfg, err := loadConfig(env)
	if err != nil {
		return nil, err
	}
	if realm != "" {
		cfg.Realm = realm
	}
	path, cc, err := readCCache(env, ccFlag, what)
	if err != nil {
		return nil, err
	}
	tgt, err := client.FindTGT(cc, "")
	if err != nil {
		return nil, &userError{msg: fmt.Sprintf("kclient: No ticket-granting ticket for %s in FILE:%s %s (run kclient login)",
			cc.DefaultPrincipal, path, what), err: err}
	}
	tgsRealm := cc.DefaultPrincipal.Realm
	if len(kdcs) > 0 {
		cfg.KDCs[tgsRealm] = append([]string(nil), kdcs...)
	}
	if len(cfg.KDCs[tgsRealm]) == 0 {
		return nil, fmt.Errorf("kclient: no KDC known for realm '%s' (give --kdc HOST:PORT or a [realms] entry in krb5.conf)", tgsRealm)
	}
	if cfg.Realm == "" {
		cfg.Realm = tgsRealm
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("kclient: %w", err)
	}
	return &tgsSession{cfg: cfg, client: c, path: path, cc: cc, tgt: tgt}, nil
}

// save writes the cache back, atomically and with mode 0600.
func (s *tgsSession) save() error {
	if err := ticket.WriteCCacheFile(s.path, s.cc); err != nil {
		return fmt.Errorf("kclient: storing credentials in FILE:%s: %w", s.path, err)
	}
	return nil
}

// ticketRun gets a service ticket for each service and stores them in the cache.
func ticketRun(ctx context.Context, o *TicketOptions) error {
	s, err := openTGSSession(o.Env, o.CCache, o.Realm, o.KDCs, "while getting credentials")
	if err != nil {
		return err
	}
	// An expired TGT can get nothing (RFC 4120 §3.3.3): say so before asking the
	// KDC, on the KDC's clock as the cache records the offset.
	if now := time.Now().Add(s.cc.KDCOffset); !now.Before(s.tgt.EndTime) {
		return &userError{msg: fmt.Sprintf("kclient: Ticket expired while getting credentials: the ticket-granting ticket of %s in FILE:%s expired at %s; log in again (kclient login)",
			s.cc.DefaultPrincipal, s.path, s.tgt.EndTime.Local().Format(time.DateTime))}
	}
	if o.Explain {
		ex := newExplainer(o.Env, walkthrough.ExplainOptions{Credentials: s.cc.Credentials})
		defer ex.Close()
		s.client.Trace = ex.Trace
	}
	services := make([]principal.Name, 0, len(o.Services))
	for _, name := range o.Services {
		p, err := client.ParsePrincipal(name, s.cfg.Realm)
		if err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
		services = append(services, p)
	}
	changed := false
	for _, p := range services {
		res, err := s.client.TGS(ctx, client.TGSRequest{TGT: s.tgt, Server: p, Forwardable: true, KDCOffset: s.cc.KDCOffset})
		if err != nil {
			if changed {
				if serr := s.save(); serr != nil {
					return serr
				}
			}
			return tgsError(err, "while getting credentials for "+p.String())
		}
		s.cc.Add(res.Credential)
		changed = true
		fmt.Fprintf(o.Env.Out, "%s: kvno = %d\n", p, res.KVNO)
	}
	return s.save()
}

// tgsError turns a TGS failure into kvno/kinit wording: "kclient: <reason> <during>", during being for example
// "while getting credentials for host/x@R".
func tgsError(err error, during string) error {
	var ke *client.KDCError
	var ue *client.UnreachableError
	switch {
	case errors.As(err, &ke):
		return &userError{msg: "kclient: " + ke.Text() + " " + during, err: err}
	case errors.As(err, &ue):
		return &userError{msg: fmt.Sprintf("kclient: Cannot contact any KDC for realm '%s' %s (%s)", ue.Realm, during, ue.Detail()), err: err}
	case errors.Is(err, client.ErrReplyMismatch):
		return &userError{msg: fmt.Sprintf("kclient: KDC reply did not match expectations %s (%v)", during, err), err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &userError{msg: "kclient: interrupted " + during, err: err}
	}
	return fmt.Errorf("kclient: %w", err)
}
