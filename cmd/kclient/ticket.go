package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// TicketOptions are the flags and arguments of kclient ticket.
type TicketOptions struct {
	Env *Env

	Services []string // SERVICE arguments (host names with -S)
	CCache   string   // -c
	Realm    string   // --realm
	KDCs     []string // --kdc HOST:PORT, repeatable
	Explain  bool     // --explain: explain every message (walkthrough.Explainer)
	Keytab   string   // -k: verify each ticket with this keytab
	Etype    string   // -e: the session key enctype to ask for
	SName    string   // -S: the arguments are hosts of this service (kvno -S sname host...)
	Quiet    bool     // -q: print no kvno lines
}

// NewCmdTicket returns "kclient ticket". runF replaces the run function in tests; nil means ticketRun.
func NewCmdTicket(env *Env, runF func(context.Context, *TicketOptions) error) *cobra.Command {
	opts := &TicketOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "ticket SERVICE... | -S SNAME HOST...",
		Short: "Get service tickets with the ticket-granting ticket in the cache (like kvno)",
		Long: `Get a service ticket for each SERVICE (the TGS exchange) with the ticket-granting ticket in the credential
cache, add it to the same cache, and print the key version number of the service key, as kvno does:

    host/localhost@KRB.TEST: kvno = 2

SERVICE is a principal name such as host/localhost or HTTP/www.example.com@REALM; without a realm it gets the
default realm (--realm, else krb5.conf default_realm, else the realm of the cache's principal). With -S SNAME
the arguments are host names and each service is SNAME/host (host in lower case, as kvno -S builds it), in the
realm krb5.conf's [domain_realm] gives the host; with none, in the client's realm under the name
"SNAME/host@" (MIT's referral realm), the way kvno shows and stores it.
With -k KEYTAB each ticket is also decrypted with the keytab, as the service would: "keytab entry valid", or
"keytab entry invalid" and exit status 3. -e asks for a session key of that enctype. -q prints no kvno lines.
The ticket is forwardable when the ticket-granting ticket is, and renewable when it is. The first failure stops;
tickets obtained before it are kept in the cache.
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
	f.StringVarP(&opts.Keytab, "keytab", "k", "", "verify each ticket by decrypting it with this keytab")
	f.StringVarP(&opts.Etype, "etype", "e", "", "ask for a session key of this enctype, e.g. aes128-cts-hmac-sha1-96")
	f.StringVarP(&opts.SName, "service", "S", "", "the arguments are host names of this service, e.g. -S host www.example.com")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "print no kvno lines (errors still go to standard error)")
	_ = cmd.MarkFlagFilename("keytab")
	_ = cmd.RegisterFlagCompletionFunc("etype", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return principal.EnctypeNames(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// tgsSession is what the ticket and renew commands share: the configuration, the cache read from its file, and
// the ticket-granting ticket found in it.
type tgsSession struct {
	cfg    *client.Config
	client *client.Client
	name   ticket.CCacheName // resolved cache
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
	name, cc, err := readCCacheName(env, ccFlag, what)
	if err != nil {
		return nil, err
	}
	tgt, err := client.FindTGT(cc, "")
	if err != nil {
		return nil, &userError{msg: fmt.Sprintf("kclient: No ticket-granting ticket for %s in %s %s (run kclient login)",
			cc.DefaultPrincipal, name, what), err: err}
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
	return &tgsSession{cfg: cfg, client: c, name: name, cc: cc, tgt: tgt}, nil
}

// save writes the cache back, atomically and with mode 0600.
func (s *tgsSession) save() error {
	if err := ticket.WriteCCacheFile(s.name.Path, s.cc); err != nil {
		return fmt.Errorf("kclient: storing credentials in %s: %w", s.name, err)
	}
	return nil
}

// ticketRun gets a service ticket for each service and stores them in the cache.
func ticketRun(ctx context.Context, o *TicketOptions) error {
	var etypes []int32
	if o.Etype != "" {
		var err error
		if etypes, err = principal.ParseEnctypes(o.Etype); err != nil || len(etypes) != 1 {
			return cli.Usagef("kclient: Invalid argument while converting etype %q (supported: %s)", o.Etype, strings.Join(principal.EnctypeNames(), ", "))
		}
	}
	s, err := openTGSSession(o.Env, o.CCache, o.Realm, o.KDCs, "while getting credentials")
	if err != nil {
		return err
	}
	if etypes != nil {
		// kvno -e: the TGS-REQ lists only that enctype, so the session key has it.
		cfg := s.cfg.Clone()
		cfg.Etypes = etypes
		if s.client, err = client.New(cfg); err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
	}
	// An expired TGT can get nothing (RFC 4120 §3.3.3): say so before asking the
	// KDC, on the KDC's clock as the cache records the offset.
	if now := time.Now().Add(s.cc.KDCOffset); !now.Before(s.tgt.EndTime) {
		return &userError{msg: fmt.Sprintf("kclient: Ticket expired while getting credentials: the ticket-granting ticket of %s in %s expired at %s; log in again (kclient login)",
			s.cc.DefaultPrincipal, s.name, s.tgt.EndTime.Local().Format(time.DateTime))}
	}
	if o.Explain {
		ex := newExplainer(o.Env, walkthrough.ExplainOptions{Credentials: s.cc.Credentials})
		defer ex.Close()
		s.client.Trace = ex.Trace
	}
	services := make([]principal.Name, 0, len(o.Services))
	for _, name := range o.Services {
		p, err := serviceName(s.cfg, o.SName, name)
		if err != nil {
			return err
		}
		services = append(services, p)
	}
	changed := false
	save := func() error {
		if changed {
			return s.save()
		}
		return nil
	}
	for _, p := range services {
		// A name in the referral realm (kvno -S for a host with no [domain_realm] entry) is asked of the
		// ticket-granting ticket's realm, which may refer it to another realm, and cached under the name as
		// given. A service of another realm is reached with cross-realm TGTs, which are cached too.
		res, err := s.client.ServiceTicket(ctx, client.ServiceTicketRequest{TGT: s.tgt, Server: p, Forwardable: true,
			KDCOffset: s.cc.KDCOffset, CachedTGT: func(realm string) (ticket.Credential, bool) {
				return client.FindCrossRealmTGT(s.cc, realm, time.Now().Add(s.cc.KDCOffset))
			}})
		if err != nil {
			if serr := save(); serr != nil {
				return serr
			}
			return tgsError(err, "while getting credentials for "+p.String())
		}
		for _, x := range res.CrossRealmTGTs {
			s.cc.Add(x)
		}
		if p.Realm != "" || len(res.CrossRealmTGTs) == 0 {
			res.Credential.Server = p
		}
		s.cc.Add(res.Credential)
		changed = true
		if o.Keytab != "" {
			if err := verifyWithKeytab(o.Keytab, res.Credential.Ticket); err != nil {
				if !o.Quiet {
					fmt.Fprintf(o.Env.ErrOut, "%s: kvno = %d, keytab entry invalid\n", p, res.KVNO)
				}
				if serr := save(); serr != nil {
					return serr
				}
				return &userError{msg: fmt.Sprintf("kclient: %s while decrypting ticket for %s", err.msg, p), err: err}
			}
			if !o.Quiet {
				fmt.Fprintf(o.Env.Out, "%s: kvno = %d, keytab entry valid\n", p, res.KVNO)
			}
			continue
		}
		if !o.Quiet {
			fmt.Fprintf(o.Env.Out, "%s: kvno = %d\n", p, res.KVNO)
		}
	}
	return save()
}

// serviceName is the service principal of one argument: a principal name, or with -S sname a host name.
func serviceName(cfg *client.Config, sname, arg string) (principal.Name, error) {
	if sname == "" {
		p, err := client.ParsePrincipal(arg, cfg.Realm)
		if err != nil {
			return p, fmt.Errorf("kclient: %w", err)
		}
		return p, nil
	}
	// kvno -S: krb5_sname_to_principal with KRB5_NT_SRV_HST, no DNS (kclient never canonicalizes host names).
	host := strings.ToLower(strings.TrimSuffix(arg, "."))
	if host == "" {
		return principal.Name{}, cli.Usagef("kclient: empty host name for -S %s", sname)
	}
	realm, _ := cfg.HostRealm(host)
	return principal.Name{Type: nametype.KRB_NT_SRV_HST, Components: []string{sname, host}, Realm: realm}, nil
}

// keytabError is why a ticket did not verify with a keytab, in kvno's words.
type keytabError struct {
	msg string
	err error
}

func (e *keytabError) Error() string { return e.msg }
func (e *keytabError) Unwrap() error { return e.err }

// verifyWithKeytab decrypts a ticket's enc-part (key usage 2, RFC 4120 §5.3) with the keytab entries of the
// ticket's enctype, as kvno -k does (krb5_server_decrypt_ticket_keytab): any entry of that enctype may open
// it, whatever its principal or kvno. A ticket still marked INVALID (postdated, not yet validated) does not
// verify.
func verifyWithKeytab(path string, der []byte) *keytabError {
	kt, err := client.LoadKeytab(keytabPath(path, ""))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &keytabError{msg: fmt.Sprintf("Key table file '%s' not found", keytabPath(path, "")), err: err}
		}
		return &keytabError{msg: strings.TrimPrefix(err.Error(), "client: "), err: err}
	}
	tkt, ok := decodeTicket(der)
	if !ok {
		return &keytabError{msg: "Ticket does not decode"}
	}
	for _, e := range kt.Entries {
		if e.Key.KeyType != tkt.EncPart.EType {
			continue
		}
		plain, err := crypto.DecryptEncPart(tkt.EncPart, e.Key, keyusage.KDC_REP_TICKET)
		if err != nil {
			continue
		}
		var enc messages.EncTicketPart
		if err := enc.Unmarshal(plain); err != nil {
			return &keytabError{msg: "Ticket does not decode"}
		}
		if ticket.FlagsFromBitString(enc.Flags)&ticket.FlagInvalid != 0 {
			return &keytabError{msg: "Ticket has invalid flag set", err: &client.KDCError{Code: errorcode.KRB_AP_ERR_TKT_NYV, Local: true}}
		}
		return nil
	}
	return &keytabError{msg: "Wrong principal in request", err: &client.KDCError{Code: errorcode.KRB_AP_ERR_NOT_US, Local: true}}
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
