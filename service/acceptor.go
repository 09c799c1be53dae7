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
	// Observer, when set, is told how each stage of every AP-REQ's
	// verification ended (see Stages), synchronously and in order, before
	// Accept returns. It is meant for message recorders (the walkthrough);
	// nil costs nothing.
	Observer func(StageResult)
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
	observe func(StageResult)
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
	a := &Acceptor{kt: kt, now: o.Now, skew: o.Skew, rc: o.ReplayCache, log: o.Logger, observe: o.Observer}
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

// Accept verifies a raw AP-REQ (RFC 4120 §5.5.1) and returns the context and,
// when the client asked for mutual authentication, the AP-REP to send back.
// It runs the stages of Stages in order (RFC 4120 §3.2.3): decode (msg-type
// 40, pvno 39, user-to-user 45), find-key (not our principal 35, key by
// sname/realm/kvno/etype 44, 45), decrypt-ticket and decrypt-authenticator
// (31), check-names (36), check-times (skew 37, not yet valid or invalid 33,
// expired 32), replay (34) and reply. The replay cache is consulted only for
// an authenticator that passed every other check, so a refused AP-REQ never
// takes a place in it. On failure the error is an *APError. Client addresses
// are not checked: tickets without addresses are the norm and NATs make them
// meaningless. One log line records the outcome.
func (a *Acceptor) Accept(ctx context.Context, apreq []byte) (*Context, []byte, error) {
	c, rep, aerr := a.accept(apreq, nil)
	a.logResult(ctx, "krb5-ap", c, aerr)
	if aerr != nil {
		return nil, nil, aerr
	}
	return c, rep, nil
}

// Stage is one named step of the acceptor's verification.
type Stage struct {
	// Name identifies the stage in StageResult ("decode", "find-key", ...).
	Name string
	// Doc says what the stage checks and why, for people (the walkthrough shows it).
	Doc string
}

// Stages are the acceptor's checks in the order Accept runs them [RFC 4120
// §3.2.3]; Options.Observer is told how each one ended.
var Stages = []Stage{
	{"decode", "the message is an AP-REQ of protocol version 5 whose ticket names a server, without user-to-user " +
		"(use-session-key), which a keytab-based service cannot accept"},
	{"find-key", "the ticket's server is a principal this service accepts, and the keytab holds its key of the ticket's " +
		"kvno and enctype"},
	{"decrypt-ticket", "the ticket decrypts with that key (key usage 2): only the KDC, which shares the key, could have made it"},
	{"decrypt-authenticator", "the authenticator decrypts with the session key found inside the ticket (key usage 11): " +
		"the sender holds that key"},
	{"check-names", "the authenticator's cname/crealm equal the ticket's: the ticket is the sender's own"},
	{"check-times", "the authenticator's ctime is within the clock skew of the service's clock, and the ticket is valid " +
		"now (starttime ≤ now ≤ endtime, not INVALID): a captured authenticator soon goes stale"},
	{"gss-checksum", "(GSS-API contexts only) the authenticator's checksum is the GSS checksum 0x8003 with Lgth 16, " +
		"which carries the context flags: mutual authentication, replay and sequence detection, confidentiality"},
	{"replay", "the authenticator was not seen before: (server, client, ctime, cusec) goes into the replay cache for " +
		"the skew window, so a captured AP-REQ cannot be replayed; only an authenticator that passed every other check " +
		"is entered"},
	{"reply", "with mutual authentication asked, the AP-REP (message H) is made: ctime and cusec echoed, a fresh subkey " +
		"and sequence number, sealed in the session key (key usage 12)"},
}

// StageResult is how one stage of an AP-REQ's verification ended, as told to
// Options.Observer. Err is nil when the stage passed.
type StageResult struct {
	Stage string
	Err   *APError
}

// apRequest is the state of one AP-REQ, filled stage by stage.
type apRequest struct {
	raw []byte
	now time.Time

	ap     messages.APReq         // decode
	server principal.Name         // decode: the ticket's server
	key    types.EncryptionKey    // find-key: the service key
	kvno   int                    // find-key
	etp    messages.EncTicketPart // decrypt-ticket
	client principal.Name         // decrypt-ticket: the ticket's client
	auth   types.Authenticator    // decrypt-authenticator
	start  time.Time              // check-times: the ticket's starttime (authtime when absent)

	gssFlags  uint32 // gss-checksum: the initiator's 0x8003 flags
	delegated bool   // gss-checksum: delegation data was sent (and is ignored)

	c   *Context // reply
	rep []byte   // reply: the AP-REP, when mutual authentication was asked
}

// fail fills what is known of the request into e, for the KRB-ERROR and the log.
func (r *apRequest) fail(e *APError) *APError {
	if len(r.server.Components) > 0 {
		e.Realm, e.SName = r.server.Realm, r.server.PrincipalName()
	}
	if len(r.client.Components) > 0 {
		e.CRealm, e.CName = r.client.Realm, r.client.PrincipalName()
	}
	return e
}

// apStage is a stage with the function that runs it.
type apStage struct {
	name string
	run  func(*Acceptor, *apRequest) *APError
}

// apStages run Stages; extra checks of a mechanism (the GSS checksum) run
// after check-times, before replay.
var apStages = []apStage{
	{"decode", (*Acceptor).decodeAP},
	{"find-key", (*Acceptor).findKey},
	{"decrypt-ticket", (*Acceptor).decryptTicket},
	{"decrypt-authenticator", (*Acceptor).decryptAuthenticator},
	{"check-names", (*Acceptor).checkNames},
	{"check-times", (*Acceptor).checkTimes},
	{"replay", (*Acceptor).checkReplay},
	{"reply", (*Acceptor).makeReply},
}

// accept is Accept without the log line. extra, when not nil, is a further
// check of the mechanism (reported under its own name) run after check-times
// and before replay.
func (a *Acceptor) accept(b []byte, extra *apStage) (c *Context, rep []byte, aerr *APError) {
	defer func() {
		if r := recover(); r != nil {
			c, rep, aerr = nil, nil, apErr(errorcode.KRB_ERR_GENERIC, "malformed AP-REQ: %v", r)
		}
	}()
	r := &apRequest{raw: b, now: a.now()}
	for _, st := range apStages {
		if st.name == "replay" && extra != nil {
			if err := a.runStage(*extra, r); err != nil {
				return nil, nil, err
			}
		}
		if err := a.runStage(st, r); err != nil {
			return nil, nil, err
		}
	}
	return r.c, r.rep, nil
}

// runStage runs one stage and tells the observer, if there is one, how it ended.
func (a *Acceptor) runStage(st apStage, r *apRequest) *APError {
	err := st.run(a, r)
	if err != nil {
		err = r.fail(err)
	}
	if a.observe != nil {
		a.observe(StageResult{Stage: st.name, Err: err})
	}
	return err
}

// decodeAP decodes the AP-REQ and refuses what no keytab can accept (RFC 4120
// §3.2.3: msg-type, pvno; user-to-user needs the TGT's session key).
func (a *Acceptor) decodeAP(r *apRequest) *APError {
	if t := ticket.MessageType(r.raw); t != msgtype.KRB_AP_REQ {
		return apErr(errorcode.KRB_AP_ERR_MSG_TYPE, "message is not an AP-REQ (APPLICATION %d)", t)
	}
	if err := r.ap.Unmarshal(r.raw); err != nil {
		var ke messages.KRBError
		if errors.As(err, &ke) {
			return apErr(errorcode.KRB_AP_ERR_MSG_TYPE, "AP-REQ with a wrong msg-type")
		}
		return apErr(errorcode.KRB_ERR_GENERIC, "malformed AP-REQ: %v", err)
	}
	tkt := r.ap.Ticket
	if r.ap.PVNO != iana.PVNO || tkt.TktVNO != iana.PVNO {
		return apErr(errorcode.KRB_AP_ERR_BADVERSION, "AP-REQ pvno %d, ticket tkt-vno %d; want 5", r.ap.PVNO, tkt.TktVNO)
	}
	if len(tkt.SName.NameString) == 0 {
		return apErr(errorcode.KRB_ERR_GENERIC, "ticket has an empty server name")
	}
	r.server = principal.FromPrincipalName(tkt.SName, tkt.Realm)
	if types.IsFlagSet(&r.ap.APOptions, flags.APOptionUseSessionKey) {
		return apErr(errorcode.KRB_AP_ERR_NOKEY, "user-to-user ticket (use-session-key) for %s: not supported", r.server)
	}
	return nil
}

// findKey picks the service key by the ticket's sname, realm, kvno and etype.
func (a *Acceptor) findKey(r *apRequest) *APError {
	if !a.accepts(r.server) {
		return apErr(errorcode.KRB_AP_ERR_NOT_US, "ticket is for %s, this service accepts only %s", r.server, a.serviceString())
	}
	ep := r.ap.Ticket.EncPart
	var aerr *APError
	r.key, r.kvno, aerr = a.kt.keyFor(r.server, ep.KVNO, ep.EType)
	return aerr
}

// decryptTicket opens the ticket with the service key (key usage 2).
func (a *Acceptor) decryptTicket(r *apRequest) *APError {
	plain, err := ticket.Decrypt(r.key, r.ap.Ticket.EncPart.Cipher, keyusage.KDC_REP_TICKET)
	if err != nil {
		return apErr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "cannot decrypt the ticket for %s with keytab %s kvno %d enctype %d (wrong key?): %v",
			r.server, a.kt.Path(), r.kvno, r.key.KeyType, err)
	}
	if err := r.etp.Unmarshal(plain); err != nil {
		return apErr(errorcode.KRB_ERR_GENERIC, "malformed EncTicketPart: %v", err)
	}
	r.client = principal.FromPrincipalName(r.etp.CName, r.etp.CRealm)
	return nil
}

// decryptAuthenticator opens the authenticator with the ticket's session key
// (key usage 11).
func (a *Acceptor) decryptAuthenticator(r *apRequest) *APError {
	session, ea := r.etp.Key, r.ap.EncryptedAuthenticator
	if ea.EType != session.KeyType {
		return apErr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "authenticator from %s sealed with enctype %d, the session key is enctype %d", r.client, ea.EType, session.KeyType)
	}
	plain, err := ticket.Decrypt(session, ea.Cipher, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return apErr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "cannot decrypt the authenticator from %s: %v", r.client, err)
	}
	if err := r.auth.Unmarshal(plain); err != nil {
		return apErr(errorcode.KRB_ERR_GENERIC, "malformed authenticator from %s: %v", r.client, err)
	}
	if r.auth.AVNO != iana.PVNO {
		return apErr(errorcode.KRB_AP_ERR_BADVERSION, "authenticator-vno %d from %s, want 5", r.auth.AVNO, r.client)
	}
	return nil
}

// checkNames: the authenticator names the ticket's client.
func (a *Acceptor) checkNames(r *apRequest) *APError {
	if ac := (principal.FromPrincipalName(r.auth.CName, r.auth.CRealm)); !ac.Equal(r.client) {
		return apErr(errorcode.KRB_AP_ERR_BADMATCH, "authenticator names %s, the ticket %s", ac, r.client)
	}
	return nil
}

// checkTimes: the authenticator is fresh and the ticket valid now, both within
// the clock skew.
func (a *Acceptor) checkTimes(r *apRequest) *APError {
	auth, etp, now := r.auth, r.etp, r.now
	if auth.Cusec < 0 || auth.Cusec > 999999 {
		return apErr(errorcode.KRB_ERR_GENERIC, "authenticator cusec %d out of range", auth.Cusec)
	}
	ctime := auth.CTime.UTC().Add(time.Duration(auth.Cusec) * time.Microsecond)
	if d := now.Sub(ctime); d > a.skew || d < -a.skew {
		return apErr(errorcode.KRB_AP_ERR_SKEW, "authenticator from %s is %v off our clock (max %v)", r.client, d.Round(time.Second), a.skew)
	}
	r.start = etp.StartTime
	if r.start.IsZero() {
		r.start = etp.AuthTime
	}
	if r.start.Sub(now) > a.skew {
		return apErr(errorcode.KRB_AP_ERR_TKT_NYV, "ticket for %s from %s is not valid until %s", r.server, r.client, r.start.UTC().Format(time.RFC3339))
	}
	if types.IsFlagSet(&etp.Flags, flags.Invalid) {
		return apErr(errorcode.KRB_AP_ERR_TKT_NYV, "ticket for %s from %s has the INVALID flag (postdated, not yet validated)", r.server, r.client)
	}
	if now.Sub(etp.EndTime) > a.skew {
		return apErr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "ticket for %s from %s expired at %s", r.server, r.client, etp.EndTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkReplay enters the authenticator in the replay cache, or finds it there.
func (a *Acceptor) checkReplay(r *apRequest) *APError {
	auth := r.auth
	switch err := a.rc.Check(r.server.String(), r.client.String(), auth.CTime, auth.Cusec); {
	case errors.Is(err, ErrReplay):
		return apErr(errorcode.KRB_AP_ERR_REPEAT, "replayed authenticator from %s (ctime %s)", r.client, auth.CTime.UTC().Add(time.Duration(auth.Cusec)*time.Microsecond).Format("2006-01-02T15:04:05.000000Z"))
	case errors.Is(err, ErrBeforeCache):
		return apErr(errorcode.KRB_AP_ERR_REPEAT, "authenticator from %s was made before this service started (%s), when another instance may have seen it; retry",
			r.client, a.rc.Start().UTC().Format(time.RFC3339))
	case err != nil:
		return apErr(errorcode.KRB_ERR_GENERIC, "%v", err)
	}
	return nil
}

// makeReply builds the Context and, for mutual authentication, the AP-REP
// (RFC 4120 §3.2.4).
func (a *Acceptor) makeReply(r *apRequest) *APError {
	session, auth, etp := r.etp.Key, r.auth, r.etp
	c := &Context{
		Client: r.client, Service: r.server, Etype: session.KeyType, KVNO: r.kvno,
		AuthTime: etp.AuthTime, StartTime: r.start, EndTime: etp.EndTime, TicketFlags: etp.Flags,
		CTime: auth.CTime.UTC(), Cusec: auth.Cusec,
		keys:     contextKeys{session: session, initiatorSubkey: auth.SubKey},
		cksum:    auth.Cksum,
		recvSeq:  uint64(uint32(auth.SeqNumber)),
		GSSFlags: r.gssFlags, Delegated: r.delegated,
	}
	c.Mutual = types.IsFlagSet(&r.ap.APOptions, flags.APOptionMutualRequired)
	if !c.Mutual {
		// No AP-REP, so no acceptor sequence number: both directions start
		// from the initiator's (RFC 4121 §4.1, as MIT does).
		c.sendSeq = c.recvSeq
		r.c = c
		return nil
	}
	sub, err := ticket.RandomKey(session.KeyType)
	if err != nil {
		return apErr(errorcode.KRB_ERR_GENERIC, "acceptor subkey: %v", err)
	}
	var sb [4]byte
	if _, err := rand.Read(sb[:]); err != nil {
		return apErr(errorcode.KRB_ERR_GENERIC, "sequence number: %v", err)
	}
	// 30 random bits, as MIT and gokrb5 do, so that no peer's signed-INTEGER
	// decoding can stumble on it.
	seq := int64(binary.BigEndian.Uint32(sb[:]) & 0x3fffffff)
	rep, err := ticket.BuildAPRep(ticket.APRepPart{CTime: auth.CTime, Cusec: auth.Cusec, SubKey: sub, SeqNumber: seq, HasSeq: true}, session)
	if err != nil {
		return apErr(errorcode.KRB_ERR_GENERIC, "building the AP-REP: %v", err)
	}
	c.keys.acceptorSubkey = sub
	c.sendSeq = uint64(seq)
	r.c, r.rep = c, rep
	return nil
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
