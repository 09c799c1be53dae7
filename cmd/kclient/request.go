package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// RequestOptions are the flags and arguments of kclient request.
type RequestOptions struct {
	Env *Env

	Service    string        // SERVICE argument: host/localhost[@R] or host@localhost; optional with --http
	Addr       string        // --addr HOST:PORT of a GSS sample server
	HTTP       string        // --http URL
	SPNEGO     bool          // --spnego (GSS sample only; HTTP always uses SPNEGO)
	Message    string        // --message
	NoMessage  bool          // --no-message
	Preemptive bool          // --preemptive (HTTP)
	Timeout    time.Duration // --timeout
	CCache     string        // -c
	Realm      string        // --realm
	KDCs       []string      // --kdc
	Explain    bool          // --explain: explain every message (walkthrough.Explainer)
	explainer  *walkthrough.Explainer
	// Now replaces the clock in tests; nil means time.Now.
	Now func() time.Time
}

// NewCmdRequest returns "kclient request". runF replaces the run function in tests; nil means requestRun.
func NewCmdRequest(env *Env, runF func(context.Context, *RequestOptions) error) *cobra.Command {
	opts := &RequestOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "request [SERVICE] (--addr HOST:PORT | --http URL)",
		Short: "Authenticate to a service with a service ticket, with mutual authentication (AP-REQ/AP-REP)",
		Long: `Authenticate to a service with the service ticket from the credential cache (messages G and H: the AP-REQ
and the server's AP-REP), and check that the server proved it holds the service key.

With --addr, talk the MIT GSS sample protocol (gss-server, kservice): send the AP-REQ in a GSS krb5 context token
(a SPNEGO NegTokenInit with --spnego), verify the AP-REP, send --message sealed in a wrap token and verify the
server's MIC over it. SERVICE is a principal (host/localhost, host/localhost@REALM) or a GSS host-based name
(host@localhost).

With --http URL, use HTTP Negotiate (RFC 4559): the service is HTTP/<host of the URL> unless SERVICE is given; the
final "WWW-Authenticate: Negotiate" token of the 2xx response must hold a valid AP-REP, or the command fails even
though the server said 200.

The service ticket comes from the cache; when the cache has none (or only an expired one), it is fetched with the
ticket-granting ticket and added to the cache, as kclient ticket does.
The cache is -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Service = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return requestRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", "", "HOST:PORT of a GSS sample server (MIT gss-server protocol)")
	f.StringVar(&opts.HTTP, "http", "", "URL of an HTTP server using Negotiate authentication")
	f.BoolVar(&opts.SPNEGO, "spnego", false, "wrap the AP-REQ in SPNEGO (GSS sample protocol; HTTP always does)")
	f.StringVar(&opts.Message, "message", "hello", "message sent sealed after authentication (GSS sample protocol)")
	f.BoolVar(&opts.NoMessage, "no-message", false, "send no message after authentication (GSS sample protocol)")
	f.BoolVar(&opts.Preemptive, "preemptive", false, "send the Authorization header at once instead of waiting for a 401 (HTTP)")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "bound on the whole exchange with the service")
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.StringVar(&opts.Realm, "realm", "", "realm of the service (default krb5.conf default_realm, else the cache principal's realm)")
	f.StringArrayVar(&opts.KDCs, "kdc", nil, "KDC address HOST:PORT for the ticket-granting ticket's realm (repeatable; overrides krb5.conf)")
	f.BoolVar(&opts.Explain, "explain", false, "explain every message, limited to what the client can decrypt")
	return cmd
}

// requestRun finds or fetches the service ticket and runs the exchange.
func requestRun(ctx context.Context, o *RequestOptions) error {
	switch {
	case o.Addr == "" && o.HTTP == "":
		return &usageError{err: errors.New("give --addr HOST:PORT (GSS sample server) or --http URL")}
	case o.Addr != "" && o.HTTP != "":
		return &usageError{err: errors.New("--addr and --http exclude each other")}
	case o.Addr != "" && o.Service == "":
		return &usageError{err: errors.New("SERVICE is required with --addr (e.g. host/localhost or host@localhost)")}
	case o.Timeout <= 0:
		return &usageError{err: fmt.Errorf("--timeout must be positive, not %v", o.Timeout)}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	cfg, err := loadConfig(o.Env)
	if err != nil {
		return err
	}
	if o.Realm != "" {
		cfg.Realm = o.Realm
	}
	path, cc, err := readCCache(o.Env, o.CCache, "(run kclient login)")
	if err != nil {
		return err
	}
	if o.Explain {
		o.explainer = newExplainer(o.Env, walkthrough.ExplainOptions{Credentials: cc.Credentials})
		defer o.explainer.Close()
	}
	realm := cfg.Realm
	if realm == "" {
		realm = cc.DefaultPrincipal.Realm
	}
	var service principal.Name
	if o.Service != "" {
		service, err = parseServiceName(o.Service, realm)
	} else {
		service, err = client.HTTPServicePrincipal(o.HTTP, realm)
	}
	if err != nil {
		return exchangeError(err)
	}

	cred, source, err := serviceCredential(ctx, o, cfg, path, cc, service, now())
	if err != nil {
		return err
	}
	ap, err := client.NewAPRequest(cred, client.APOptions{Now: now, TimeOffset: cc.KDCOffset})
	if err != nil {
		return exchangeError(err)
	}

	var b strings.Builder
	if o.Addr != "" {
		so := client.GSSSampleOptions{SPNEGO: o.SPNEGO, Timeout: o.Timeout}
		if !o.NoMessage {
			so.Message = []byte(o.Message)
		}
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		res, err := dialGSSSample(ctx, o.Addr, ap, so, o.explainer)
		if err != nil {
			return exchangeError(err)
		}
		writeProven(&b, ap, source)
		if res.Response.SPNEGO {
			fmt.Fprintf(&b, "  SPNEGO: negState accept-completed, mechanism %s\n", mechName(res.Response.SupportedMech))
		}
		if res.MessageSent {
			fmt.Fprintf(&b, "  sent wrapped message %q (sealed); server MIC verified (seq %d)\n", o.Message, res.MICSeq)
		}
	} else {
		res, err := client.Negotiate(ctx, o.HTTP, ap, client.NegotiateOptions{Timeout: o.Timeout, Preemptive: o.Preemptive, HTTPClient: explainHTTPClient(o.explainer)})
		if err != nil {
			return exchangeError(err)
		}
		writeProven(&b, ap, source)
		kind := "raw krb5 AP-REP token"
		if res.Response.SPNEGO {
			kind = "SPNEGO NegTokenResp accept-completed (" + mechName(res.Response.SupportedMech) + ")"
		}
		flow := "after a 401 Negotiate challenge"
		if !res.Challenged {
			flow = "on the first request"
		}
		fmt.Fprintf(&b, "  HTTP %d from %s (Authorization sent %s); final token: %s\n", res.Status, o.HTTP, flow, kind)
		more := ""
		if res.Truncated {
			more = " (truncated)"
		}
		fmt.Fprintf(&b, "  response body: %d bytes%s\n", len(res.Body), more)
	}
	_, err = io.WriteString(o.Env.Out, b.String())
	return err
}

// writeProven prints the first lines: who authenticated to whom, and what the AP-REP proved.
func writeProven(b *strings.Builder, ap *client.APContext, source string) {
	fmt.Fprintf(b, "authenticated as %s to %s (mutual: server proved it holds the service key)\n", ap.Client, ap.Server)
	fmt.Fprintf(b, "  service ticket: %s; session key %s\n", source, principal.EnctypeName(ap.SessionKey.KeyType))
	sub := "no acceptor subkey (our subkey protects messages)"
	if ap.HasAcceptorSubkey() {
		sub = "acceptor subkey " + principal.EnctypeName(ap.AcceptorSubkey.KeyType)
	}
	seq := "no seq-number"
	if ap.HasAcceptorSeq {
		seq = fmt.Sprintf("seq %d", ap.AcceptorSeq)
	}
	fmt.Fprintf(b, "  AP-REP ctime %s.%06d matches our authenticator; %s; %s\n",
		ap.Reply.CTime.UTC().Format("2006-01-02T15:04:05"), ap.Reply.Cusec, sub, seq)
}

// mechName names a GSS mechanism OID.
func mechName(oid asn1.ObjectIdentifier) string {
	switch {
	case ticket.OIDKRB5.Equal(oid):
		return "krb5 " + ticket.OIDKRB5.String()
	case ticket.OIDKRB5Legacy.Equal(oid):
		return "krb5 (legacy OID " + ticket.OIDKRB5Legacy.String() + ")"
	}
	return oid.String()
}

// parseServiceName reads SERVICE: a principal name when it has a '/', else a GSS host-based service name
// "service@host" (GSS_C_NT_HOSTBASED_SERVICE), which becomes service/host@realm with the host lowercased.
func parseServiceName(s, realm string) (principal.Name, error) {
	if strings.Contains(s, "/") {
		return client.ParsePrincipal(s, realm)
	}
	svc, host, ok := strings.Cut(s, "@")
	if !ok || svc == "" || host == "" || strings.Contains(host, "@") {
		return principal.Name{}, fmt.Errorf("service %q: give a principal (host/localhost[@REALM]) or a host-based name (host@localhost)", s)
	}
	if realm == "" {
		return principal.Name{}, fmt.Errorf("service %q: no realm (give --realm or set default_realm): %w", s, client.ErrNoRealm)
	}
	return principal.Name{Components: []string{svc, strings.ToLower(host)}, Realm: realm, Type: nametype.KRB_NT_SRV_HST}, nil
}

// serviceCredential returns a usable ticket for service: the cache's, or a new one from the KDC (which is then
// added to the cache). source says which, for the output.
func serviceCredential(ctx context.Context, o *RequestOptions, cfg *client.Config, path string, cc *ticket.CCache, service principal.Name, now time.Time) (ticket.Credential, string, error) {
	kdcNow := now.Add(cc.KDCOffset)
	var best *ticket.Credential
	for i := range cc.Credentials {
		c := &cc.Credentials[i]
		if c.IsConfig() || !c.Server.Equal(service) || !c.Client.Equal(cc.DefaultPrincipal) || len(c.Ticket) == 0 || len(c.Key.KeyValue) == 0 {
			continue
		}
		if !c.EndTime.IsZero() && !c.EndTime.After(kdcNow) {
			continue // expired: fetch a new one
		}
		if best == nil || c.EndTime.After(best.EndTime) {
			best = c
		}
	}
	if best != nil {
		return *best, "from FILE:" + path, nil
	}
	during := "while getting credentials for " + service.String()
	tgt, err := client.FindTGT(cc, "")
	if err != nil {
		return ticket.Credential{}, "", &userError{msg: fmt.Sprintf("kclient: No ticket-granting ticket for %s in FILE:%s %s (run kclient login)", cc.DefaultPrincipal, path, during), err: err}
	}
	tgsRealm := cc.DefaultPrincipal.Realm
	if len(o.KDCs) > 0 {
		cfg.KDCs[tgsRealm] = append([]string(nil), o.KDCs...)
	}
	if len(cfg.KDCs[tgsRealm]) == 0 {
		return ticket.Credential{}, "", fmt.Errorf("kclient: no KDC known for realm '%s' %s (give --kdc HOST:PORT or a [realms] entry in krb5.conf)", tgsRealm, during)
	}
	if cfg.Realm == "" {
		cfg.Realm = tgsRealm
	}
	c, err := client.New(cfg)
	if err != nil {
		return ticket.Credential{}, "", fmt.Errorf("kclient: %w", err)
	}
	if o.explainer != nil {
		c.Trace = o.explainer.Trace
	}
	// A service of another realm is reached with cross-realm TGTs (cached too).
	res, err := c.ServiceTicket(ctx, client.ServiceTicketRequest{TGT: tgt, Server: service, KDCOffset: cc.KDCOffset,
		CachedTGT: func(realm string) (ticket.Credential, bool) { return client.FindCrossRealmTGT(cc, realm, kdcNow) }})
	if err != nil {
		return ticket.Credential{}, "", tgsError(err, during)
	}
	for _, x := range res.CrossRealmTGTs {
		cc.Add(x)
	}
	cc.Add(res.Credential)
	if err := ticket.WriteCCacheFile(path, cc); err != nil {
		return ticket.Credential{}, "", fmt.Errorf("kclient: storing credentials in FILE:%s: %w", path, err)
	}
	return res.Credential, "fetched from the KDC (TGS exchange) and added to FILE:" + path, nil
}

// exchangeError turns a failure of the AP exchange into one line without the library's "client: " prefix.
func exchangeError(err error) error {
	if errors.Is(err, context.Canceled) {
		return &userError{msg: "kclient: interrupted", err: err}
	}
	return &userError{msg: "kclient: " + strings.TrimPrefix(err.Error(), "client: "), err: err}
}
