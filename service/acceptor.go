// Package service is the acceptor side of Kerberos: AP-REQ verification with a
// keytab (RFC 4120 §3.2.3), a replay cache, the AP-REP for mutual
// authentication (§3.2.4), the GSS-API krb5 mechanism (RFC 4121) and SPNEGO
// (RFC 4178) context acceptance with per-message tokens, HTTP Negotiate
// (RFC 4559), and MIT's GSS sample protocol, which kservice serves.
package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// APError is a refused AP-REQ: the KRB-ERROR code (RFC 4120 §7.5.9) and the
// reason, for logs and callers. The reason never holds key material; it may
// name the keytab file, so it is not sent to the client: the KRB-ERROR's
// e-text is the code's standard name only.
type APError struct {
	Code   int32
	Reason string

	// What was known of the request when it failed, for the KRB-ERROR and the
	// log line. Realm/SName come from the ticket, CRealm/CName from the
	// authenticator.
	Realm  string
	SName  types.PrincipalName
	CRealm string
	CName  types.PrincipalName
}

func (e *APError) Error() string {
	return fmt.Sprintf("service: %s [%s]", e.Reason, codeName(e.Code))
}

// codeName is the symbolic name of a KRB-ERROR code, e.g. KRB_AP_ERR_REPEAT.
func codeName(code int32) string {
	s := errorcode.Lookup(code) // "(34) KRB_AP_ERR_REPEAT Request is a replay"
	f := strings.Fields(s)
	if len(f) >= 2 && strings.HasPrefix(f[0], "(") {
		return f[1]
	}
	return fmt.Sprintf("error %d", code)
}

func apErr(code int32, format string, args ...any) *APError {
	return &APError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// KRBError encodes e as a KRB-ERROR (RFC 4120 §5.9.1) stamped with now. sname
// and realm are mandatory on the wire: when the ticket never decoded they fall
// back to fallback (the service's own name), or to "unknown".
func (e *APError) KRBError(now time.Time, fallback principal.Name) ([]byte, error) {
	realm, sname := e.Realm, e.SName
	if len(sname.NameString) == 0 {
		realm, sname = fallback.Realm, fallback.PrincipalName()
	}
	if len(sname.NameString) == 0 {
		sname = types.PrincipalName{NameType: 0, NameString: []string{"unknown"}}
	}
	if realm == "" {
		realm = "UNKNOWN"
	}
	return ticket.ErrorReply{
		Code: e.Code, Now: now, Realm: realm, SName: sname,
		CRealm: e.CRealm, CName: e.CName, EText: codeName(e.Code),
	}.Marshal()
}

// AsAPError finds the *APError in err; anything else becomes KRB_ERR_GENERIC
// with err's text as the reason.
func AsAPError(err error) *APError {
	var ae *APError
	if errors.As(err, &ae) {
		return ae
	}
	return &APError{Code: errorcode.KRB_ERR_GENERIC, Reason: err.Error()}
}

// Options configure an Acceptor. The zero value of each field means its
// default.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Skew is the allowed clock difference (default DefaultSkew).
	Skew time.Duration
	// ReplayCache is shared by all acceptors of the same principals (default:
	// a new one with this Skew and Now).
	ReplayCache *ReplayCache
	// Logger gets one line per authentication (default slog.Default()).
	Logger *slog.Logger
	// Service, when set, is the only principal accepted ("host@localhost" as
	// GSS host-based service, "host/localhost", or with "@REALM"); tickets
	// for other keytab principals get KRB_AP_ERR_NOT_US. Empty accepts every
	// principal in the keytab.
	Service string
}

// Acceptor verifies AP-REQs for the principals of a keytab. It is safe for
// concurrent use.
type Acceptor struct {
	kt      *Keytab
	now     func() time.Time
	skew    time.Duration
	rc      *ReplayCache
	log     *slog.Logger
	service []string // components of Options.Service, nil for any
	realm   string   // realm of Options.Service, "" for any
}

// NewAcceptor returns an acceptor for the keys in kt.
func NewAcceptor(kt *Keytab, o Options) (*Acceptor, error) {
	if kt == nil {
		return nil, errors.New("service: NewAcceptor without a keytab")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Skew <= 0 {
		o.Skew = DefaultSkew
	}
	if o.ReplayCache == nil {
		o.ReplayCache = NewReplayCache(ReplayCacheOptions{Skew: o.Skew, Now: o.Now})
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Acceptor{kt: kt, now: o.Now, skew: o.Skew, rc: o.ReplayCache, log: o.Logger}
	if o.Service != "" {
		comps, realm, err := ParseServiceName(o.Service)
		if err != nil {
			return nil, err
		}
		a.service, a.realm = comps, realm
		found := false
		for _, p := range kt.Principals() {
			if a.accepts(p) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("service: keytab %s has no key for %s", kt.Path(), o.Service)
		}
	}
	return a, nil
}

// Keytab returns the acceptor's keytab.
func (a *Acceptor) Keytab() *Keytab { return a.kt }

// ParseServiceName reads a service name: "service@host" (GSS host-based form,
// RFC 2743 §4.1) gives service/host; "a/b" or "a/b@REALM" is a principal
// name. The realm is "" when not given (any realm).
func ParseServiceName(s string) (comps []string, realm string, err error) {
	if s == "" || strings.HasPrefix(s, "@") || strings.HasSuffix(s, "@") || strings.Count(s, "@") > 1 {
		return nil, "", fmt.Errorf("service: bad service name %q", s)
	}
	name, rest, hasAt := strings.Cut(s, "@")
	if hasAt && !strings.Contains(name, "/") {
		return []string{name, rest}, "", nil // host-based: service@host
	}
	comps = strings.Split(name, "/")
	for _, c := range comps {
		if c == "" {
			return nil, "", fmt.Errorf("service: bad service name %q", s)
		}
	}
	return comps, rest, nil
}

// accepts reports whether the acceptor serves the principal p.
func (a *Acceptor) accepts(p principal.Name) bool {
	if a.service == nil {
		return true
	}
	if a.realm != "" && p.Realm != a.realm {
		return false
	}
	if len(p.Components) != len(a.service) {
		return false
	}
	for i, c := range a.service {
		if p.Components[i] != c {
			return false
		}
	}
	return true
}

// Context is an accepted AP-REQ: who the client is, what the ticket says, and
// for GSS contexts the state of per-message protection. Key material is only
// reachable through methods, so printing a Context never shows keys.
type Context struct {
	Client  principal.Name // from the ticket (equal to the authenticator's)
	Service principal.Name // the ticket's server principal, as the client named it
	Mutual  bool           // the client asked for mutual authentication: an AP-REP was made
	Etype   int32          // enctype of the session key
	KVNO    int            // kvno of the service key that decrypted the ticket

	AuthTime, StartTime, EndTime time.Time
	TicketFlags                  asn1.BitString
	CTime                        time.Time // the authenticator's ctime and cusec (echoed in the AP-REP)
	Cusec                        int

	// GSS only: the mechanism OID the token used, whether SPNEGO carried
	// it, the initiator's 0x8003 flags, and whether it sent delegation data
	// (which is ignored).
	Mech      asn1.ObjectIdentifier
	SPNEGO    bool
	GSSFlags  uint32
	Delegated bool

	keys  contextKeys
	cksum types.Checksum

	mu      sync.Mutex
	sendSeq uint64 // the acceptor's next sequence number
	recvSeq uint64 // the next sequence number expected from the initiator
}

// contextKeys holds a context's keys; its String and GoString hide them, so
// even %#v of a Context prints no key.
type contextKeys struct {
	session, initiatorSubkey, acceptorSubkey types.EncryptionKey
}

func (contextKeys) String() string   { return "[keys hidden]" }
func (contextKeys) GoString() string { return "[keys hidden]" }

// String names the context: "client -> service".
func (c *Context) String() string { return c.Client.String() + " -> " + c.Service.String() }

// SessionKey returns the ticket session key.
func (c *Context) SessionKey() types.EncryptionKey { return c.keys.session }

// InitiatorSubkey returns the authenticator's subkey (KeyType 0 if none).
func (c *Context) InitiatorSubkey() types.EncryptionKey { return c.keys.initiatorSubkey }

// AcceptorSubkey returns the subkey sent in the AP-REP (KeyType 0 if none).
func (c *Context) AcceptorSubkey() types.EncryptionKey { return c.keys.acceptorSubkey }

// ProtocolKey is the key of per-message tokens (RFC 4121 §2): the acceptor
// subkey when one was sent, else the initiator subkey, else the session key.
func (c *Context) ProtocolKey() ticket.GSSKey {
	switch {
	case c.keys.acceptorSubkey.KeyType != 0:
		return ticket.GSSKey{Key: c.keys.acceptorSubkey, AcceptorSubkey: true}
	case c.keys.initiatorSubkey.KeyType != 0:
		return ticket.GSSKey{Key: c.keys.initiatorSubkey}
	default:
		return ticket.GSSKey{Key: c.keys.session}
	}
}

// Accept verifies a raw AP-REQ (RFC 4120 §5.5.1) in the order of RFC 4120
// §3.2.3 and returns the context and, when the client asked for mutual
// authentication, the AP-REP to send back. On failure the error is an
// *APError: msg-type (40), pvno (39), user-to-user (45), not our principal
// (35), key by sname/realm/kvno/etype (44, 45), ticket and authenticator
// decryption (31), cname/crealm match (36), skew (37), replay (34), ticket not
// yet valid or invalid (33), expired (32). Client addresses are not checked:
// tickets without addresses are the norm and NATs make them meaningless.
// One log line records the outcome.
func (a *Acceptor) Accept(ctx context.Context, apreq []byte) (*Context, []byte, error) {
	c, rep, aerr := a.accept(apreq)
	a.logResult(ctx, "krb5-ap", c, aerr)
	if aerr != nil {
		return nil, nil, aerr
	}
	return c, rep, nil
}

// accept is Accept without the log line.
func (a *Acceptor) accept(b []byte) (c *Context, rep []byte, aerr *APError) {
	defer func() {
		if r := recover(); r != nil {
			c, rep, aerr = nil, nil, apErr(errorcode.KRB_ERR_GENERIC, "malformed AP-REQ: %v", r)
		}
	}()
	now := a.now()
	if t := ticket.MessageType(b); t != msgtype.KRB_AP_REQ {
		return nil, nil, apErr(errorcode.KRB_AP_ERR_MSG_TYPE, "message is not an AP-REQ (APPLICATION %d)", t)
	}
	var ap messages.APReq
	if err := ap.Unmarshal(b); err != nil {
		var ke messages.KRBError
		if errors.As(err, &ke) {
			return nil, nil, apErr(errorcode.KRB_AP_ERR_MSG_TYPE, "AP-REQ with a wrong msg-type")
		}
		return nil, nil, apErr(errorcode.KRB_ERR_GENERIC, "malformed AP-REQ: %v", err)
	}
	tkt := ap.Ticket
	if ap.PVNO != iana.PVNO || tkt.TktVNO != iana.PVNO {
		return nil, nil, apErr(errorcode.KRB_AP_ERR_BADVERSION, "AP-REQ pvno %d, ticket tkt-vno %d; want 5", ap.PVNO, tkt.TktVNO)
	}
	if len(tkt.SName.NameString) == 0 {
		return nil, nil, apErr(errorcode.KRB_ERR_GENERIC, "ticket has an empty server name")
	}
	server := principal.FromPrincipalName(tkt.SName, tkt.Realm)
	fail := func(e *APError) *APError {
		e.Realm, e.SName = tkt.Realm, tkt.SName
		return e
	}
	if types.IsFlagSet(&ap.APOptions, flags.APOptionUseSessionKey) {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_NOKEY, "user-to-user ticket (use-session-key) for %s: not supported", server))
	}
	if !a.accepts(server) {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_NOT_US, "ticket is for %s, this service accepts only %s", server, a.serviceString()))
	}
	key, kvno, kerr := a.kt.keyFor(server, tkt.EncPart.KVNO, tkt.EncPart.EType)
	if kerr != nil {
		return nil, nil, fail(kerr)
	}
	plain, err := ticket.Decrypt(key, tkt.EncPart.Cipher, keyusage.KDC_REP_TICKET)
	if err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "cannot decrypt the ticket for %s with keytab %s kvno %d enctype %d (wrong key?): %v", server, a.kt.Path(), kvno, key.KeyType, err))
	}
	var etp messages.EncTicketPart
	if err := etp.Unmarshal(plain); err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "malformed EncTicketPart: %v", err))
	}
	session := etp.Key
	client := principal.FromPrincipalName(etp.CName, etp.CRealm)
	fail = func(e *APError) *APError {
		e.Realm, e.SName, e.CRealm, e.CName = tkt.Realm, tkt.SName, etp.CRealm, etp.CName
		return e
	}
	if ap.EncryptedAuthenticator.EType != session.KeyType {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "authenticator from %s sealed with enctype %d, the session key is enctype %d", client, ap.EncryptedAuthenticator.EType, session.KeyType))
	}
	plain, err = ticket.Decrypt(session, ap.EncryptedAuthenticator.Cipher, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "cannot decrypt the authenticator from %s: %v", client, err))
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "malformed authenticator from %s: %v", client, err))
	}
	if auth.AVNO != iana.PVNO {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_BADVERSION, "authenticator-vno %d from %s, want 5", auth.AVNO, client))
	}
	authClient := principal.FromPrincipalName(auth.CName, auth.CRealm)
	if !authClient.Equal(client) {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_BADMATCH, "authenticator names %s, the ticket %s", authClient, client))
	}
	if auth.Cusec < 0 || auth.Cusec > 999999 {
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "authenticator cusec %d out of range", auth.Cusec))
	}
	ctime := auth.CTime.UTC().Add(time.Duration(auth.Cusec) * time.Microsecond)
	if d := now.Sub(ctime); d > a.skew || d < -a.skew {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_SKEW, "authenticator from %s is %v off our clock (max %v)", client, d.Round(time.Second), a.skew))
	}
	switch err := a.rc.Check(server.String(), client.String(), auth.CTime, auth.Cusec); {
	case errors.Is(err, ErrReplay):
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_REPEAT, "replayed authenticator from %s (ctime %s.%06d)", client, auth.CTime.UTC().Format(time.RFC3339), auth.Cusec))
	case errors.Is(err, ErrBeforeCache):
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_REPEAT, "authenticator from %s was made before this service started (%s), when another instance may have seen it; retry",
			client, a.rc.Start().UTC().Format(time.RFC3339)))
	case err != nil:
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "%v", err))
	}
	start := etp.StartTime
	if start.IsZero() {
		start = etp.AuthTime
	}
	if start.Sub(now) > a.skew {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_TKT_NYV, "ticket for %s from %s is not valid until %s", server, client, start.UTC().Format(time.RFC3339)))
	}
	if types.IsFlagSet(&etp.Flags, flags.Invalid) {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_TKT_NYV, "ticket for %s from %s has the INVALID flag (postdated, not yet validated)", server, client))
	}
	if now.Sub(etp.EndTime) > a.skew {
		return nil, nil, fail(apErr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "ticket for %s from %s expired at %s", server, client, etp.EndTime.UTC().Format(time.RFC3339)))
	}

	c = &Context{
		Client: client, Service: server, Etype: session.KeyType, KVNO: kvno,
		AuthTime: etp.AuthTime, StartTime: start, EndTime: etp.EndTime, TicketFlags: etp.Flags,
		CTime: auth.CTime.UTC(), Cusec: auth.Cusec,
		keys:    contextKeys{session: session, initiatorSubkey: auth.SubKey},
		cksum:   auth.Cksum,
		recvSeq: uint64(uint32(auth.SeqNumber)),
	}
	c.Mutual = types.IsFlagSet(&ap.APOptions, flags.APOptionMutualRequired)
	if !c.Mutual {
		// No AP-REP, so no acceptor sequence number: both directions start
		// from the initiator's (RFC 4121 §4.1, as MIT does).
		c.sendSeq = c.recvSeq
		return c, nil, nil
	}
	sub, err := ticket.RandomKey(session.KeyType)
	if err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "acceptor subkey: %v", err))
	}
	var sb [4]byte
	if _, err := rand.Read(sb[:]); err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "sequence number: %v", err))
	}
	// 30 random bits, as MIT and gokrb5 do, so that no peer's signed-INTEGER
	// decoding can stumble on it.
	seq := int64(binary.BigEndian.Uint32(sb[:]) & 0x3fffffff)
	rep, err = ticket.BuildAPRep(ticket.APRepPart{CTime: auth.CTime, Cusec: auth.Cusec, SubKey: sub, SeqNumber: seq, HasSeq: true}, session)
	if err != nil {
		return nil, nil, fail(apErr(errorcode.KRB_ERR_GENERIC, "building the AP-REP: %v", err))
	}
	c.keys.acceptorSubkey = sub
	c.sendSeq = uint64(seq)
	return c, rep, nil
}

func (a *Acceptor) serviceString() string {
	s := strings.Join(a.service, "/")
	if a.realm != "" {
		s += "@" + a.realm
	}
	return s
}

// fallbackName is the principal named in KRB-ERRORs for requests whose ticket
// never decoded: the configured service, else the keytab's first principal.
func (a *Acceptor) fallbackName() principal.Name {
	if a.service != nil {
		return principal.Name{Components: a.service, Realm: a.realm, Type: nametype.KRB_NT_SRV_HST}
	}
	if ps := a.kt.Principals(); len(ps) > 0 {
		return ps[0]
	}
	return principal.Name{}
}

// ErrorReply encodes err (an *APError or anything else, as KRB_ERR_GENERIC)
// as a KRB-ERROR message stamped with the acceptor's clock.
func (a *Acceptor) ErrorReply(err error) ([]byte, error) {
	return AsAPError(err).KRBError(a.now(), a.fallbackName())
}

// remoteKey carries the peer address for log lines.
type remoteKey struct{}

// WithRemote returns ctx annotated with the peer's address, which the
// acceptor's log line then includes.
func WithRemote(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

// logResult writes the one line per authentication: mechanism, result,
// client, service, and on failure the code and reason. Never keys.
func (a *Acceptor) logResult(ctx context.Context, mech string, c *Context, aerr *APError) {
	attrs := []any{"mech", mech}
	if r, ok := ctx.Value(remoteKey{}).(string); ok && r != "" {
		attrs = append(attrs, "remote", r)
	}
	if aerr == nil {
		attrs = append(attrs, "result", "ok", "client", c.Client.String(), "service", c.Service.String(), "mutual", c.Mutual)
		if c.GSSFlags != 0 {
			attrs = append(attrs, "gss_flags", fmt.Sprintf("0x%x", c.GSSFlags))
		}
		a.log.InfoContext(ctx, "authentication", attrs...)
		return
	}
	client, service := "-", "-"
	if len(aerr.CName.NameString) > 0 {
		client = principal.FromPrincipalName(aerr.CName, aerr.CRealm).String()
	}
	if len(aerr.SName.NameString) > 0 {
		service = principal.FromPrincipalName(aerr.SName, aerr.Realm).String()
	}
	attrs = append(attrs, "result", "failed", "client", client, "service", service,
		"code", aerr.Code, "error", codeName(aerr.Code), "reason", aerr.Reason)
	a.log.WarnContext(ctx, "authentication", attrs...)
}
