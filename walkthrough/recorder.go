package walkthrough

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// Wire is one Kerberos message as it crossed the wire, as a Recorder takes it.
type Wire struct {
	// Data is the Kerberos message (DER), without transport or GSS framing.
	Data []byte
	// Sent is true for a message the client sent (to the KDC or the service), false for one it received.
	Sent bool
	// Service is true for messages exchanged with the application service rather than the KDC.
	Service bool
	// Addr is the peer's address and Network the transport ("udp", "tcp"); for a request they may be empty and
	// are then taken from the reply.
	Addr    string
	Network string
	// Framing describes what wrapped Data on the wire, and WireSize how many bytes went on the wire; empty and 0
	// mean the plain KDC transport framing.
	Framing  string
	WireSize int
	// Round numbers the AS-REQs of one exchange (2 after PREAUTH_REQUIRED).
	Round int
	// Time is when the message was seen.
	Time time.Time
	// Actor is who is on the client's side of this message when it is not the client (ActorAttacker replaying
	// a captured message); "" means ActorClient.
	Actor string
}

// Options configure a Recorder: its view and the keys it knows.
type Options struct {
	// View is ViewRealm (every key known through RealmKey) or ViewClient.
	View string
	// RealmKey returns a long-term key of the realm: principal p's key of enctype etype and version kvno (0: the
	// current one), with its kvno. Only ViewRealm uses it.
	RealmKey func(p principal.Name, etype int32, kvno int) (types.EncryptionKey, int, bool)
	// Password is the client's password, when known: it derives the client key (string-to-key).
	Password string
	// HasPassword says Password is set (an empty password is still a password).
	HasPassword bool
	// ShowPassword prints the password in the string-to-key step (the walkthrough's throw-away password only).
	ShowPassword bool
	// Keytab holds the client's keys when it logs in with a keytab.
	Keytab *keytab.Keytab
	// Credentials are tickets the client already holds (its credential cache): their session keys open the
	// authenticators and replies of TGS and AP exchanges made with them.
	Credentials []ticket.Credential
	// ShowKeys prints key values in hex. The walkthrough's keys are throw-away; --explain never sets it.
	ShowKeys bool
	// Clockskew is the tolerated clock difference; 0 means 5 minutes.
	Clockskew time.Duration
	// OnStep is called with each step as soon as it is complete.
	OnStep func(Step)
}

// Recorder turns raw messages and known keys into Steps. It is safe for concurrent use; messages must be added
// in the order they crossed the wire.
type Recorder struct {
	mu      sync.Mutex
	o       Options
	steps   []Step
	pending *Step // a KDC request waiting for its reply (which tells the transport and the outcome)
	pendReq pendingKind
	st      state
	// pendTGSInfo keeps what the pending TGS-REQ revealed, for its checks.
	pendTGSInfo *tgsPending
	// pendAPInfo keeps what the pending AP-REQ revealed, for its checks.
	pendAPInfo *apPending
	// observed are the checks the receivers reported for the pending request (see Observe).
	observed []Observed
	// actor is who sends and receives on the client's side for the message being added (Wire.Actor).
	actor string
	// at is when the message being added was seen: the time the checks compare with ("now" of a capture).
	at time.Time
}

// pendingKind says which request is pending.
type pendingKind int

const (
	pendNone pendingKind = iota
	pendAS
	pendTGS
	pendAP
)

// state is what the recorder learned so far.
type state struct {
	// AS exchange.
	client, asServer principal.Name
	asNonce          int
	asTill, asRTime  time.Time
	asEtypes         []int32
	asRound          int
	asPreauth        bool      // the pending AS-REQ carries PA-ENC-TIMESTAMP (or, armored, PA-ENCRYPTED-CHALLENGE)
	asArmored        bool      // the pending AS-REQ carries PA-FX-FAST [RFC 6113]: its armor key is fastArmor
	asRaw            []byte    // the pending AS-REQ as sent: what PA-REQ-ENC-PA-REP's checksum covers [RFC 6806 §11]
	asEncPARep       bool      // it asked for that checksum (an empty PA-REQ-ENC-PA-REP)
	fastCookie       []byte    // PA-FX-COOKIE of the KDC's last armored error, to be echoed
	asPATime         time.Time // its patimestamp+pausec, when opened
	hint             *types.ETypeInfo2Entry
	s2kSalt          string
	s2kEtype         int32
	s2kDone          bool
	clientKey        types.EncryptionKey
	haveClientKey    bool
	clientKeytab     bool // a capture's client logged in with a keytab: its key came from the keytab given
	kdcOffset        time.Duration
	errors           int

	// TGT (from A, or from the credential cache).
	tgt sessionSlot

	// TGS exchange.
	tgsNonce      int
	tgsServer     principal.Name
	tgsTill       time.Time
	tgsSubkey     types.EncryptionKey
	haveTGSSubkey bool
	tgsTicket     []byte // the ticket of the pending TGS-REQ
	tgsClient     principal.Name
	// FAST [RFC 6113]: the armor key of the pending request (an AS-REQ's explicit armor; MIT clients armor
	// TGS-REQs with the TGT).
	fastArmor     types.EncryptionKey
	haveFastArmor bool

	// known are tickets earlier replies brought, with their session keys (FAST armor tickets: fastas.go).
	known []sessionSlot

	// Service ticket (from F, or from the cache).
	svc       sessionSlot
	svcServer principal.Name

	// AP exchange.
	apCTime        time.Time
	apCusec        int
	apSubkey       types.EncryptionKey
	acceptorSubkey types.EncryptionKey
	apMutual       bool
	apOpened       bool
}

// NewRecorder returns a Recorder with options o.
func NewRecorder(o Options) *Recorder {
	if o.View == "" {
		o.View = ViewClient
	}
	if o.Clockskew <= 0 {
		o.Clockskew = 5 * time.Minute
	}
	return &Recorder{o: o}
}

// Steps returns the completed steps so far (a request still waiting for its reply is not among them: see Flush).
func (r *Recorder) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

// Flush completes a request still waiting for its reply (the exchange failed before a reply came).
func (r *Recorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending != nil {
		p := r.pending
		r.pending, r.pendReq = nil, pendNone
		p.Checks = append(p.Checks, Check{By: p.To, Text: "no reply was received", Result: CheckFail})
		r.emit(*p)
	}
	r.observed = nil
}

// emit completes a step: its ID made unique in the story, and the client's side played by the current actor.
func (r *Recorder) emit(s Step) {
	if a := r.actor; a != "" && a != ActorClient {
		if s.From == ActorClient {
			s.From = a
		}
		if s.To == ActorClient {
			s.To = a
		}
	}
	base, n := s.ID, 1
	for r.hasStep(s.ID) {
		n++
		s.ID = base + "-" + strconv.Itoa(n)
	}
	r.steps = append(r.steps, s)
	if r.o.OnStep != nil {
		r.o.OnStep(s)
	}
}

// hasStep reports whether a completed step has the ID.
func (r *Recorder) hasStep(id string) bool {
	for i := range r.steps {
		if r.steps[i].ID == id {
			return true
		}
	}
	return false
}

// AddStep records a step that is not a message on the wire (an attacker's offline work, a change made in transit).
func (r *Recorder) AddStep(s Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	r.actor = ""
	r.emit(s)
}

// realm reports whether the recorder knows every key of the realm.
func (r *Recorder) realm() bool {
	return (r.o.View == ViewRealm || r.o.View == ViewCapture) && r.o.RealmKey != nil
}

// Add records one message.
func (r *Recorder) Add(w Wire) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w.Time.IsZero() {
		w.Time = time.Now()
	}
	r.actor, r.at = w.Actor, w.Time
	defer func() { r.actor = "" }()
	switch ticket.MessageType(w.Data) {
	case msgtype.KRB_AS_REQ:
		r.asReq(w)
	case msgtype.KRB_TGS_REQ:
		r.tgsReq(w)
	case msgtype.KRB_AP_REQ:
		r.apReq(w)
	case msgtype.KRB_AS_REP:
		r.asRep(w)
	case msgtype.KRB_TGS_REP:
		r.tgsRep(w)
	case msgtype.KRB_AP_REP:
		r.apRep(w)
	case msgtype.KRB_ERROR:
		r.krbError(w)
	default:
		r.unknown(w)
	}
}

// setTransport fills a step's transport fields from a wire message.
func setTransport(s *Step, w Wire) {
	if w.Addr != "" {
		s.Addr = w.Addr
	}
	if w.Network != "" {
		s.Transport = w.Network
	}
	s.Size = len(w.Data)
	s.Framing, s.WireSize = w.Framing, w.WireSize
	if s.Framing == "" {
		switch s.Transport {
		case "udp":
			s.Framing, s.WireSize = "one UDP datagram, nothing around the message", len(w.Data)
		case "tcp":
			s.Framing, s.WireSize = "4-byte big-endian length prefix on a TCP connection [RFC 4120 §7.2.2]", len(w.Data)+4
		}
	}
}

// takePending returns the pending request if it is of kind k, after giving it the reply's transport.
func (r *Recorder) takePending(k pendingKind, reply Wire) *Step {
	if r.pending == nil || r.pendReq != k {
		return nil
	}
	p := r.pending
	r.pending, r.pendReq = nil, pendNone
	if p.Transport == "" || p.Transport == "local" {
		p.Transport = reply.Network
	}
	if p.Addr == "" {
		p.Addr = reply.Addr
	}
	if p.Framing == "" {
		w := Wire{Network: p.Transport, Data: make([]byte, p.Size)}
		size := p.Size
		setTransport(p, w)
		p.Size = size
	}
	return p
}

// hold makes s the pending request; a previous pending request is flushed first.
func (r *Recorder) hold(s Step, k pendingKind) {
	if r.pending != nil {
		p := r.pending
		p.Checks = append(p.Checks, Check{By: p.To, Text: "no reply was recorded", Result: CheckFail})
		r.emit(*p)
	}
	r.pending, r.pendReq = &s, k
}

// owner describes whose long-term key protects something.
func (r *Recorder) owner(p principal.Name) string {
	switch {
	case isCrossRealmTGS(p):
		return interRealmOwner(p)
	case len(p.Components) == 2 && p.Components[0] == "krbtgt":
		return p.String() + "'s long-term key (the TGS's secret key)"
	case r.st.client.Equal(p) && r.st.clientKeytab:
		return p.String() + "'s long-term key (kept in its keytab; no password)"
	case r.st.client.Equal(p):
		return p.String() + "'s long-term key (derived from the password)"
	}
	return p.String() + "'s long-term key (the service's secret key, kept in its keytab)"
}

// keyInfo builds a KeyInfo.
func keyInfo(owner string, k types.EncryptionKey, etype int32, kvno, usage int, show bool) KeyInfo {
	ki := KeyInfo{Owner: owner, Etype: etype, EtypeName: etypeName(etype), KVNO: kvno, Usage: usage, UsageName: usageName(usage)}
	if show && len(k.KeyValue) > 0 {
		ki.Value = hexKey(k.KeyValue)
	}
	return ki
}

// longTermKey finds a long-term key in the realm's database (ViewRealm only).
func (r *Recorder) longTermKey(p principal.Name, etype int32, kvno int) (types.EncryptionKey, int, bool) {
	if !r.realm() {
		return types.EncryptionKey{}, 0, false
	}
	return r.o.RealmKey(p, etype, kvno)
}

// clientKeyFor returns the client's long-term key of enctype etype: from the realm database, the keytab, or
// the password with the salt the KDC announced.
func (r *Recorder) clientKeyFor(etype int32, kvno int) (types.EncryptionKey, string, bool) {
	if r.st.haveClientKey && r.st.clientKey.KeyType == etype {
		if r.o.Keytab != nil && !r.o.HasPassword || r.st.clientKeytab {
			return r.st.clientKey, "from the keytab", true
		}
		return r.st.clientKey, "derived from the password", true
	}
	if k, _, ok := r.longTermKey(r.st.client, etype, kvno); ok {
		return k, "from the realm's database", true
	}
	if r.o.Keytab != nil {
		if k, ok := keytabKey(r.o.Keytab, r.st.client, etype, kvno); ok {
			return k, "from the keytab", true
		}
	}
	if r.o.HasPassword {
		salt := r.st.client.Salt()
		var params []byte
		if h := r.st.hint; h != nil && h.EType == etype {
			if h.Salt != "" {
				salt = h.Salt
			}
			params = h.S2KParams
		}
		if k, err := stringToKey(r.o.Password, etype, salt, params); err == nil {
			return k, "from the password", true
		}
	}
	return types.EncryptionKey{}, "", false
}

// capturedKeytabClient reports whether a capture's client has its key of etype in the keytab given (a host
// logging in with kinit -k, as for a FAST armor ticket).
func (r *Recorder) capturedKeytabClient(etype int32) bool {
	if r.o.View != ViewCapture {
		return false
	}
	_, _, ok := r.longTermKey(r.st.client, etype, 0)
	return ok
}

// canMakeClientKey reports whether the client's key of etype can be had once the KDC says how: from a password,
// the client's keytab, or (a capture) the keytab given.
func (r *Recorder) canMakeClientKey(etype int32) bool {
	return r.o.HasPassword || r.o.Keytab != nil || r.capturedKeytabClient(etype)
}

// keytabKey finds p's key of etype in a keytab (kvno 0: the highest).
func keytabKey(kt *keytab.Keytab, p principal.Name, etype int32, kvno int) (types.EncryptionKey, bool) {
	var best types.EncryptionKey
	var bestV uint32
	found := false
	for _, e := range kt.Entries {
		if e.Key.KeyType != etype || e.Principal.Realm != p.Realm || !slices.Equal(e.Principal.Components, p.Components) {
			continue
		}
		if kvno != 0 && int(e.KVNO) != kvno {
			continue
		}
		if !found || e.KVNO > bestV {
			best, bestV, found = e.Key, e.KVNO, true
		}
	}
	return best, found
}

// stringToKey derives a key from a password [RFC 3961 §3].
func stringToKey(password string, etype int32, salt string, params []byte) (types.EncryptionKey, error) {
	et, err := crypto.GetEtype(etype)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	p := et.GetDefaultStringToKeyParams()
	if len(params) > 0 {
		p = hex.EncodeToString(params)
	}
	kv, err := et.StringToKey(password, salt, p)
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("string-to-key failed")
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: kv}, nil
}

// StringToKey records the local password-to-key step for client p with the enctype, salt and s2kparams given
// (what the realm stores, or what the KDC announced in ETYPE-INFO2). source says where they came from.
func (r *Recorder) StringToKey(p principal.Name, etype int32, salt string, params []byte, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st.client.Realm == "" {
		r.st.client = p
	}
	r.stringToKey(etype, salt, params, source, time.Now())
}

func (r *Recorder) stringToKey(etype int32, salt string, params []byte, source string, at time.Time) {
	if r.st.s2kDone {
		return
	}
	p := r.st.client
	if salt == "" {
		salt = p.Salt()
	}
	s := Step{
		ID: "s2k", Title: "Password to key: the client turns the password into its long-term key",
		Letters: []string{"pre"}, From: ActorClient, To: ActorClient, Transport: "local", Time: at,
		Summary: "The user types a password; the client turns it into the key of a symmetric cipher with the " +
			"enctype's string-to-key function. Neither the password nor the key is ever sent: the key only " +
			"encrypts (the timestamp) and decrypts (message A).",
	}
	iter, _ := s2kIterations(etype, params)
	pw := "(not shown)"
	if r.o.ShowPassword && r.o.HasPassword {
		pw = fmt.Sprintf("%q (the walkthrough's throw-away password)", r.o.Password)
	}
	s.Fields = []Field{
		field("principal", p.String()),
		field("password", pw),
		field("enctype", etypeName(etype)),
		field("salt", fmt.Sprintf("%q", salt), field("where from", source)),
	}
	if iter > 0 {
		s.Fields = append(s.Fields, field("iterations", strconv.Itoa(iter)))
	}
	s.Fields = append(s.Fields, field("function", s2kFunction(etype, iter)))
	switch {
	case r.o.Keytab != nil && !r.o.HasPassword:
		s.Title = "Key from a keytab: no password involved"
		s.Summary = "With a keytab the client's long-term key is read from a file, already derived: there is no " +
			"password to type and no string-to-key."
		if k, ok := keytabKey(r.o.Keytab, p, etype, 0); ok {
			r.st.clientKey, r.st.haveClientKey = k, true
			s.Fields = []Field{field("principal", p.String()), keyField("key", k, r.o.ShowKeys)}
		}
	case r.capturedKeytabClient(etype):
		// A capture's client whose key is in the keytab given logged in with a keytab (kinit -k): no password.
		k, _, _ := r.longTermKey(p, etype, 0)
		s.Title = "Key from a keytab: no password involved"
		s.Summary = "This client's long-term key is in the keytab given, so it logged in with a keytab (kinit -k): the " +
			"key is read from a file, already derived; there is no password to type and no string-to-key."
		r.st.clientKey, r.st.haveClientKey, r.st.clientKeytab = k, true, true
		s.Fields = []Field{field("principal", p.String()), keyField("key", k, r.o.ShowKeys),
			field("where from", "the keytab given here, which holds the key the client read from its own keytab")}
	case r.o.HasPassword:
		k, err := stringToKey(r.o.Password, etype, salt, params)
		if err != nil {
			s.Checks = append(s.Checks, Check{By: ActorClient, Text: "string-to-key failed for " + etypeName(etype), Result: CheckFail})
			break
		}
		r.st.clientKey, r.st.haveClientKey = k, true
		s.Fields = append(s.Fields, keyField("derived key", k, r.o.ShowKeys))
		if stored, kvno, ok := r.longTermKey(p, etype, 0); ok {
			res := CheckPass
			if !bytes.Equal(stored.KeyValue, k.KeyValue) {
				res = CheckFail
			}
			s.Checks = append(s.Checks, Check{By: ActorWalkthrough, Result: res, Text: fmt.Sprintf(
				"the key equals the one the KDC keeps for %s (kvno %d): it was derived from the same password when "+
					"the principal was created, and only the key is stored", p, kvno)})
		} else {
			s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckInfo, Text: "nothing tells the client yet " +
				"whether the password was right: only message A will (a wrong password makes A fail to decrypt, " +
				"which kinit reports as \"Password incorrect\")"})
		}
	default:
		s.Fields = append(s.Fields, field("derived key", "unknown here: no password was given to the explainer"))
	}
	s.Notes = []Note{
		{NoteClassic, "\"The client transforms the password into the key of a symmetric cipher\", with a one-way hash."},
		{NoteModern, "Modern Kerberos salts the password with the realm and principal name (so equal passwords give different keys), " +
			"iterates PBKDF2 thousands of times to slow down guessing, and derives one key per enctype. The KDC says which " +
			"enctype, salt and iteration count to use in PA-ETYPE-INFO2, so the client can compute exactly the key the KDC stored."},
	}
	r.st.s2kDone, r.st.s2kSalt, r.st.s2kEtype = true, salt, etype
	r.emit(s)
}

// ---------------------------------------------------------------------------------------------------------
// AS exchange.

// asReq records an AS-REQ (the "pre" round of the story). An armored AS-REQ [RFC 6113 §5.4] is explained with
// its armor, and the request inside the armor is the one the state follows.
func (r *Recorder) asReq(w Wire) {
	req, err := ticket.ParseKDCRequest(w.Data)
	if err != nil {
		r.unknown(w)
		return
	}
	b := req.Body
	r.switchClient(principal.FromPrincipalName(b.CName, b.Realm))
	r.st.asArmored, r.st.haveFastArmor = false, false
	var fa *fastASReq
	pas := req.PAData
	if v, ok := req.PA(paFXFast); ok && len(v) > 0 {
		r.st.asArmored = true
		if fa = r.fastASRequest(req, v); fa.inner != nil {
			pas, b = fa.inner.PAData, fa.inner.Body
		}
	}
	r.st.client = principal.FromPrincipalName(b.CName, b.Realm)
	r.st.asServer = principal.FromPrincipalName(b.SName, b.Realm)
	r.st.asNonce, r.st.asTill, r.st.asRTime, r.st.asEtypes = b.Nonce, b.Till, b.RTime, b.EType
	r.st.asRound++
	r.st.asPATime = time.Time{}
	r.st.asRaw = bytes.Clone(w.Data)
	_, r.st.asEncPARep = ticket.PAValue(pas, paReqEncPARep)
	_, r.st.asPreauth = ticket.PAValue(pas, 2)
	_, challenge := ticket.PAValue(pas, paEncChallenge)
	challenge = challenge && r.st.asArmored

	s := Step{
		ID: "as-req-" + strconv.Itoa(r.st.asRound), Letters: []string{"pre"}, Message: "AS-REQ",
		From: ActorClient, To: ActorAS, Time: w.Time, Transport: w.Network, Addr: w.Addr,
	}
	setTransport(&s, w)
	switch {
	case r.st.asArmored:
		s.Title = "AS-REQ armored with FAST: the real request travels inside PA-FX-FAST, sealed in the armor key"
		switch {
		case challenge:
			s.Title = "AS-REQ armored with FAST, with PA-ENCRYPTED-CHALLENGE: the client proves it knows the key, inside the armor"
		case r.st.asPreauth:
			s.Title = "AS-REQ armored with FAST, with PA-ENC-TIMESTAMP inside the armor"
		}
		s.Summary = "The client wraps its request in FAST armor [RFC 6113]: an AP-REQ with a ticket it already holds (the " +
			"armor ticket, here a TGT from a host's keytab login) gives the client and the KDC a shared armor key; the real " +
			"padata and req-body travel inside, encrypted in it, and a checksum in it covers the req-body sent in clear."
	case r.st.asPreauth:
		s.Title = "AS-REQ with PA-ENC-TIMESTAMP: the client proves it knows the key"
		s.Summary = "The same request again, with a fresh nonce and the current time encrypted in the client's " +
			"long-term key. Only someone who knows the password can produce it."
	default:
		s.Title = "AS-REQ: the client asks for a ticket-granting ticket, its name in clear"
		s.Summary = "The client sends its user ID in clear and asks the Authentication Service for a ticket to the " +
			"ticket-granting service, krbtgt/" + b.Realm + ". Nothing in it is secret or encrypted."
	}
	s.Fields = []Field{
		field("pvno", strconv.Itoa(req.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_AS_REQ)", req.MsgType)),
	}
	if len(req.PAData) == 0 {
		s.Fields = append(s.Fields, field("padata", "none"))
	} else {
		s.Fields = append(s.Fields, field("padata", "", padataFields(req.PAData)...))
	}
	s.Fields = append(s.Fields, field("req-body", "", reqBodyFields(req.Body)...))
	if fa != nil {
		s.Fields = append(s.Fields, fa.fields...)
		s.Parts = append(s.Parts, fa.parts...)
		s.Checks = append(s.Checks, fa.checks...)
	}

	switch v, ok := ticket.PAValue(pas, 2); {
	case ok:
		var ed types.EncryptedData
		if err := decodeSafe(func() error { return ed.Unmarshal(v) }); err == nil {
			s.Parts = append(s.Parts, r.encTimestampPart(ed))
		}
	case challenge:
		v, _ := ticket.PAValue(pas, paEncChallenge)
		var ed types.EncryptedData
		if err := decodeSafe(func() error { return ed.Unmarshal(v) }); err == nil {
			p, checks := r.encChallengePart(ed)
			s.Parts, s.Checks = append(s.Parts, p), append(s.Checks, checks...)
		}
	case !r.st.asArmored:
		s.Notes = append(s.Notes, Note{NoteWhy, "Nothing here is encrypted: the AS cannot tell who is asking. In the " +
			"classic description the AS would now answer with A and B at once, to anyone."})
	}
	if fa != nil && fa.inner != nil && r.st.fastCookie != nil {
		v, ok := ticket.PAValue(pas, paFXCookie)
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: map[bool]string{true: CheckPass, false: CheckFail}[ok && bytes.Equal(v, r.st.fastCookie)],
			Text: fmt.Sprintf("the cookie of the KDC's armored error, %q, is echoed inside the armor (PA-FX-COOKIE) [RFC 6113 §5.2]", r.st.fastCookie)})
	}
	if r.st.asArmored {
		s.Notes = append(s.Notes, fastASReqNotes(challenge)...)
	}
	r.hold(s, pendAS)
}

// encTimestampPart opens PA-ENC-TIMESTAMP (key usage 1).
func (r *Recorder) encTimestampPart(ed types.EncryptedData) Part {
	p := Part{
		Letter: "pre", Name: "padata PA-ENC-TIMESTAMP (PA-ENC-TS-ENC)",
		What:       "the client's current time, proving it knows the client's key",
		CipherSize: len(ed.Cipher),
	}
	key, src, ok := r.clientKeyFor(ed.EType, ed.KVNO)
	p.Key = keyInfo(r.owner(r.st.client), key, ed.EType, ed.KVNO, int(keyusage.AS_REQ_PA_ENC_TIMESTAMP), r.o.ShowKeys)
	if !ok {
		p.SealedFor, p.Reason = r.st.client.String(), "the client's key is not known to this view"
		return p
	}
	if at, ok := r.openPAEncTS(&p, ed, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, "the key "+src, r.st.client.String()); ok {
		r.st.asPATime = at
	}
	return p
}

// krbError records a KRB-ERROR from the KDC or the service.
func (r *Recorder) krbError(w Wire) {
	re, err := ticket.ParseKRBError(w.Data)
	if err != nil {
		r.unknown(w)
		return
	}
	e := re.KRBError
	var reqKind pendingKind = r.pendReq
	from := ActorAS
	switch {
	case w.Service:
		from = ActorService
	case reqKind == pendTGS:
		from = ActorTGS
	}
	req := r.takePending(reqKind, w)
	preauth := e.ErrorCode == 25 && reqKind == pendAS
	r.st.errors++
	s := Step{
		ID: "error-" + strconv.Itoa(r.st.errors), Message: "KRB-ERROR", From: from, To: ActorClient, Time: w.Time,
		Transport: w.Network, Addr: w.Addr, Title: "KRB-ERROR: " + errorName(e.ErrorCode),
		Summary: "The " + from + " refuses the request and says why.",
	}
	if preauth {
		s.ID, s.Letters = "preauth-required", []string{"pre"}
		s.Title = "KRB-ERROR PREAUTH_REQUIRED: \"prove you know the password first\""
		s.Summary = "The AS knows the client, but will not answer with A and B until the client proves it knows " +
			"the key. The error says how: with an encrypted timestamp (PA-ENC-TIMESTAMP), using the key that " +
			"PA-ETYPE-INFO2 describes."
	}
	setTransport(&s, w)
	s.Fields = krbErrorFields(e)
	var md types.PADataSequence
	if len(e.EData) > 0 {
		if err := decodeSafe(func() error { return md.Unmarshal(e.EData) }); err == nil {
			s.Fields = append(s.Fields, field("e-data", "METHOD-DATA: the pre-authentication methods on offer", padataFields(md)...))
		} else {
			s.Fields = append(s.Fields, field("e-data", bytesText(len(e.EData))))
		}
	}
	// An armored request's error carries the real one inside the armor [RFC 6113 §5.4.3].
	var fe *fastErr
	if v, ok := ticket.PAValue(md, paFXFast); ok && len(v) > 0 && reqKind == pendAS && r.st.asArmored {
		fe = r.fastErrorPart(v)
		s.Parts = append(s.Parts, fe.part)
		s.Title = "KRB-ERROR, the real one inside the FAST armor: " + errorName(e.ErrorCode)
		s.Summary = "The outer KRB-ERROR says only " + codeName(e.ErrorCode) + "; the real error, with the methods on offer and a " +
			"cookie, travels inside PA-FX-FAST, sealed in the armor key: nobody on the path can read or forge these hints."
		if preauth {
			s.Title = "KRB-ERROR PREAUTH_REQUIRED inside the FAST armor: \"prove you know the password, with an encrypted challenge\""
		}
	}

	r.finishRequest(req, reqKind, &e.ErrorCode)
	stime := e.STime.Add(time.Duration(e.Susec) * time.Microsecond)
	if reqKind == pendAS {
		r.st.fastCookie = nil // only the last armored error's cookie is to be echoed
	}
	if fe != nil {
		r.fastErrorChecks(&s, fe, e.ErrorCode)
		md = fe.md
		if fe.inner != nil {
			stime = fe.inner.STime.Add(time.Duration(fe.inner.Susec) * time.Microsecond)
		}
		r.st.fastCookie = fe.cookie
	}
	switch {
	case preauth && fe != nil && !fe.opened:
	case preauth:
		r.preauthChecks(&s, stime, w.Time, md, fe != nil)
	default:
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckFail, Text: "the request was refused: " + errorName(e.ErrorCode)})
	}
	if fe != nil {
		s.Notes = append(s.Notes, Note{NoteWhy, "The outer KRB-ERROR is still neither encrypted nor signed, but an armored client " +
			"takes the error inside PA-FX-FAST: it is sealed in the armor key, which only the KDC and the client hold, so a " +
			"forged or altered error (another enctype, another salt, another clock) does not open [RFC 6113 §5.4.3]."})
	} else {
		s.Notes = append(s.Notes, Note{NoteWhy, "A KRB-ERROR is neither encrypted nor signed: anyone on the path could " +
			"forge one. A client therefore treats it as a hint (which key, what time it is) and never as proof of anything; " +
			"FAST armor (RFC 6113) exists to protect these hints too."})
	}
	r.emit(s)
	// The client derives its key once the KDC said how (client view); the walkthrough did it up front.
	if preauth && r.st.hint != nil && !r.st.s2kDone && r.canMakeClientKey(r.st.hint.EType) {
		r.stringToKey(r.st.hint.EType, r.st.hint.Salt, r.st.hint.S2KParams, "PA-ETYPE-INFO2 in the KDC's PREAUTH_REQUIRED answer", w.Time)
	}
}

// krbErrorFields shows a KRB-ERROR's fields but its e-data [RFC 4120 §5.9.1].
func krbErrorFields(e messages.KRBError) []Field {
	fs := []Field{
		field("pvno", strconv.Itoa(e.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_ERROR)", e.MsgType)),
		field("stime", kTimeUsec(e.STime, e.Susec)+" (the KDC's clock)"),
		field("susec", strconv.Itoa(e.Susec)),
		field("error-code", errorName(e.ErrorCode)),
	}
	if e.CRealm != "" || len(e.CName.NameString) > 0 {
		fs = append(fs, field("crealm", e.CRealm), field("cname", princName(e.CName, "")))
	}
	fs = append(fs, field("realm", e.Realm), field("sname", princName(e.SName, "")))
	if e.EText != "" {
		fs = append(fs, field("e-text", fmt.Sprintf("%q", e.EText)))
	}
	return fs
}

// preauthChecks adds what the client checks in a PREAUTH_REQUIRED answer, and learns the KDC's hint. armored
// says the answer came inside FAST armor, where the method on offer is the encrypted challenge.
func (r *Recorder) preauthChecks(s *Step, kdcNow, received time.Time, md types.PADataSequence, armored bool) {
	if len(md) == 0 {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckFail, Text: "no METHOD-DATA in e-data: the client cannot retry (MIT: \"Additional pre-authentication required\")"})
		return
	}
	s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckPass, Text: "error-code 25 with METHOD-DATA in e-data: the client may retry with pre-authentication"})
	method, text := int32(2), "METHOD-DATA offers PA-ENC-TIMESTAMP (2), the method this client speaks"
	if armored {
		method, text = paEncChallenge, "METHOD-DATA inside the armor offers PA-ENCRYPTED-CHALLENGE (138), the pre-authentication of an armored login [RFC 6113 §5.4.6]"
	}
	res := CheckFail
	if md.Contains(method) {
		res = CheckPass
	}
	s.Checks = append(s.Checks, Check{By: ActorClient, Result: res, Text: text})
	for _, pa := range md {
		if pa.PADataType != 19 {
			continue
		}
		var info types.ETypeInfo2
		if decodeSafe(func() error { return info.Unmarshal(pa.PADataValue) }) != nil {
			continue
		}
		for _, e := range info {
			if slices.Contains(r.st.asEtypes, e.EType) {
				h := e
				r.st.hint = &h
				break
			}
		}
	}
	if h := r.st.hint; h != nil {
		salt := h.Salt
		if salt == "" {
			salt = r.st.client.Salt()
		}
		text := fmt.Sprintf("PA-ETYPE-INFO2 names %s, an enctype the client asked for, with salt %q", etypeName(h.EType), salt)
		if r.st.s2kDone {
			res := CheckPass
			if salt != r.st.s2kSalt || h.EType != r.st.s2kEtype {
				res = CheckFail
			}
			text += ": the same the string-to-key step used"
			s.Checks = append(s.Checks, Check{By: ActorClient, Result: res, Text: text})
		} else {
			s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckPass, Text: text + ": the client derives its key with it"})
		}
	} else {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckInfo, Text: "no usable PA-ETYPE-INFO2: the client falls back to its first enctype and the default salt"})
	}
	if !kdcNow.IsZero() {
		r.st.kdcOffset = kdcNow.Sub(received)
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckInfo, Text: "stime/susec tell the KDC's clock; the client " +
			"stamps its encrypted timestamp on that clock (MIT and Heimdal do), here off from the local clock by " + skewText(r.st.kdcOffset)})
	}
}

// finishRequest settles a pending request once its answer (a reply, or the
// KRB-ERROR code) is known, and emits it. A nil req (no request pending) is a
// no-op.
func (r *Recorder) finishRequest(req *Step, k pendingKind, code *int32) {
	if req == nil {
		return
	}
	cross := k == pendTGS && r.pendTGSInfo != nil && r.pendTGSInfo.crossTGT
	r.requestOutcome(req, k, code)
	r.receiverChecks(req, k, code)
	if cross {
		crossRealmStageTexts(req)
	}
	r.emit(*req)
}

// requestOutcome adds the receiver's checks to a request once its reply is known: code is the KRB-ERROR code,
// or nil when the request was answered with success.
func (r *Recorder) requestOutcome(req *Step, k pendingKind, code *int32) {
	switch k {
	case pendTGS:
		r.tgsChecks(req, code)
	case pendAP:
		r.apChecks(req, code)
	}
}

// asRep records the AS-REP: messages A (enc-part) and B (the TGT).
func (r *Recorder) asRep(w Wire) {
	var rep ticket.KDCRepWire
	if err := unmarshalApp(w.Data, &rep, 11); err != nil {
		r.unknown(w)
		return
	}
	req := r.takePending(pendAS, w)
	s := Step{
		ID: "as-rep", Title: "AS-REP: message A (the session key, for the client) and message B (the ticket-granting ticket)",
		Letters: []string{"A", "B"}, Message: "AS-REP", From: ActorAS, To: ActorClient, Time: w.Time,
		Transport: w.Network, Addr: w.Addr,
		Summary: "The AS makes a fresh client/TGS session key and sends it twice: once in A, encrypted in the " +
			"client's key, and once inside the ticket-granting ticket B, encrypted in the TGS's key. The client can " +
			"open A but not B; it keeps B to show to the TGS.",
	}
	setTransport(&s, w)
	tkt, terr := decodeTicket(rep.Ticket.Bytes)
	s.Fields = []Field{
		field("pvno", strconv.Itoa(rep.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_AS_REP)", rep.MsgType)),
	}
	if len(rep.PAData) > 0 {
		s.Fields = append(s.Fields, field("padata", "", padataFields(rep.PAData)...))
	}
	s.Fields = append(s.Fields, field("crealm", rep.CRealm), field("cname", princName(rep.CName, "")))
	if terr == nil {
		s.Fields = append(s.Fields, field("ticket", "message B, "+bytesText(len(rep.Ticket.Bytes)), ticketFields(tkt, "B")...))
	}
	s.Fields = append(s.Fields, field("enc-part", "message A: EncASRepPart, sealed: see part A", encDataFields(rep.EncPart)...))

	// B: the TGT, sealed in the krbtgt key.
	var etp *ticketPart
	if terr == nil {
		var pb Part
		pb, etp = r.ticketPartOf("B", tkt, "the ticket-granting ticket: the client's name, the validity period and the "+
			"client/TGS session key, for the TGS", "the TGS")
		s.Parts = append(s.Parts, pb)
		r.st.tgt.raw = slices.Clone(rep.Ticket.Bytes)
	}

	// A: the enc-part, sealed in the client key.
	pa := Part{
		Letter: "A", Name: "enc-part (EncASRepPart)", What: "the client/TGS session key, the nonce and the ticket's times, for the client",
		CipherSize: len(rep.EncPart.Cipher),
	}
	// An armored reply carries its padata inside the armor [RFC 6113 §5.4.3].
	var fx *fastReply
	hintPAs := rep.PAData
	if r.st.asArmored {
		if fx = r.openFastReplyPart(rep.PAData, "A", armorKeyOwner); fx != nil && fx.resp != nil {
			hintPAs = fx.resp.PAData
		}
	}
	for _, e := range padataHints(hintPAs) {
		if e.EType == rep.EncPart.EType {
			h := e
			if r.st.hint == nil || r.st.hint.EType != e.EType {
				r.st.hint = &h
			}
		}
	}
	if !r.st.s2kDone && r.st.hint != nil && r.canMakeClientKey(r.st.hint.EType) {
		r.stringToKey(r.st.hint.EType, r.st.hint.Salt, r.st.hint.S2KParams, "PA-ETYPE-INFO2 in the AS-REP", w.Time)
	}
	if fx != nil {
		r.fastReplyChecks(&s, fx, rep.Ticket.Bytes, "B", r.st.asNonce, r.st.client)
		r.kdcChallengePart(&s, fx)
	}
	key, src, haveKey := r.clientKeyFor(rep.EncPart.EType, rep.EncPart.KVNO)
	owner := r.owner(r.st.client)
	if haveKey && fx != nil && fx.strengthen != nil {
		// The strengthened reply key: KRB-FX-CF2(strengthen-key, client key, "strengthenkey", "replykey").
		if k, err := cf2(*fx.strengthen, key, "strengthenkey", "replykey"); err == nil {
			key, src = k, src+", strengthened by FAST: KRB-FX-CF2(the strengthen-key, that key)"
			owner = "the strengthened reply key: KRB-FX-CF2(the strengthen-key from the armor, " + owner + ", \"strengthenkey\", \"replykey\")"
		}
	}
	pa.Key = keyInfo(owner, key, rep.EncPart.EType, rep.EncPart.KVNO, int(keyusage.AS_REP_ENCPART), r.o.ShowKeys)
	var enc *encPartResult
	switch {
	case haveKey:
		part, err := ticket.DecryptReplyPart(rep.EncPart, key, keyusage.AS_REP_ENCPART)
		if err == nil {
			pa.Opened, pa.Fields = true, encKDCRepPartFields(part, r.o.ShowKeys)
			enc = &encPartResult{part: part, key: key}
			r.st.tgt.key, r.st.tgt.have = part.Key, true
			r.rememberSession(rep.Ticket.Bytes, part.Key)
		} else {
			pa.SealedFor, pa.Reason = r.st.client.String(), "does not decrypt with the key "+src+" (wrong password?)"
			if fx != nil && fx.resp == nil {
				pa.Reason = "does not decrypt with the key " + src + ": an armored reply may be sealed in a strengthened key, " +
					"whose strengthen-key travels inside the armor, which is not open here"
			}
		}
	default:
		pa.SealedFor, pa.Reason = r.st.client.String(), "the client's key is not known to this view"
	}
	s.Parts = append(s.Parts, pa)

	r.finishRequest(req, pendAS, nil)
	r.st.fastCookie = nil
	r.asRepChecks(&s, rep, tkt, terr == nil, enc, etp, src)
	if fx != nil {
		s.Title = "AS-REP, armored: message A (sealed in the strengthened reply key) and message B (the ticket-granting ticket)"
		if fx.resp != nil && fx.strengthen == nil {
			s.Title = "AS-REP, armored: message A and message B (the ticket-granting ticket), the KDC's answer inside PA-FX-FAST"
		}
		s.Summary += " Inside the armor (PA-FX-FAST) the KDC adds its own encrypted challenge, a strengthen-key that changes " +
			"the key A is sealed in, and a checksum that binds ticket B to the armor."
	}
	s.Notes = []Note{
		{NoteClassic, "\"Message A: Client/TGS Session Key encrypted using the secret key of the client. " +
			"Message B: Ticket-Granting-Ticket (client ID, client network address, validity period, and the client/TGS " +
			"session key) encrypted using the secret key of the TGS.\""},
		{NoteModern, "In RFC 4120 A and B travel together in one AS-REP. Modern clients ask for no addresses, so the ticket's " +
			"caddr is empty and the ticket works from any address. A also carries the request's nonce, so the client knows the " +
			"answer is fresh and meant for its request."},
	}
	if r.o.View == ViewClient {
		s.Notes = append(s.Notes, Note{NoteWhy, "B is sealed for the TGS: the client cannot read it, and does not need to. " +
			"It stores the ticket as is and shows it to the TGS in message C."})
	}
	if fx != nil {
		s.Notes = append(s.Notes, fastASRepNotes(fx.strengthen != nil)...)
	}
	r.emit(s)
}

// encPartResult holds a decrypted reply part.
type encPartResult struct {
	part messages.EncKDCRepPart
	key  types.EncryptionKey // the key A opened with
}

// ticketPart holds a decrypted ticket.
type ticketPart struct {
	part messages.EncTicketPart
	kvno int
}

// padataHints returns the ETYPE-INFO2 entries of a padata sequence.
func padataHints(pas types.PADataSequence) []types.ETypeInfo2Entry {
	var out []types.ETypeInfo2Entry
	for _, pa := range pas {
		if pa.PADataType != 19 {
			continue
		}
		var info types.ETypeInfo2
		if decodeSafe(func() error { return info.Unmarshal(pa.PADataValue) }) == nil {
			out = append(out, info...)
		}
	}
	return out
}

// ticketPartOf describes a ticket's sealed part and, when the realm's keys are known, opens it.
func (r *Recorder) ticketPartOf(letter string, t messages.Ticket, what, holder string) (Part, *ticketPart) {
	server := principal.FromPrincipalName(t.SName, t.Realm)
	p := Part{Letter: letter, Name: "ticket enc-part (EncTicketPart)", What: what, CipherSize: len(t.EncPart.Cipher)}
	key, kvno, ok := r.longTermKey(server, t.EncPart.EType, t.EncPart.KVNO)
	if !ok {
		kvno = t.EncPart.KVNO
	}
	p.Key = keyInfo(r.owner(server), key, t.EncPart.EType, kvno, int(keyusage.KDC_REP_TICKET), r.o.ShowKeys)
	if !ok {
		p.SealedFor = server.String()
		p.Reason = "sealed for " + server.String() + ": the client cannot read this. Only " + holder +
			" has the key; the client passes the ticket on unopened."
		if r.o.View == ViewCapture {
			p.Reason = fmt.Sprintf("sealed for %s: no key of %s (%s, kvno %d) was given; a keytab with it (--keytab) opens it",
				server, server, etypeName(t.EncPart.EType), t.EncPart.KVNO)
		}
		return p, nil
	}
	part, err := ticket.OpenTicket(t, key)
	if err != nil {
		p.SealedFor, p.Reason = server.String(), "does not decrypt with "+server.String()+"'s key: "+err.Error()
		return p, nil
	}
	p.Opened, p.Fields = true, encTicketPartFields(part, r.o.ShowKeys)
	return p, &ticketPart{part: part, kvno: kvno}
}

// asRepChecks adds what the client checks before it believes the AS-REP [RFC 4120 §3.1.5].
func (r *Recorder) asRepChecks(s *Step, rep ticket.KDCRepWire, tkt messages.Ticket, haveTkt bool, enc *encPartResult, etp *ticketPart, src string) {
	add := func(res, text string) { s.Checks = append(s.Checks, Check{By: ActorClient, Result: res, Text: text}) }
	pass := func(ok bool) string {
		if ok {
			return CheckPass
		}
		return CheckFail
	}
	add(pass(slices.Contains(r.st.asEtypes, rep.EncPart.EType)), "the enc-part's enctype "+etypeName(rep.EncPart.EType)+" is one the client asked for")
	cl := principal.FromPrincipalName(rep.CName, rep.CRealm)
	add(pass(cl.Equal(r.st.client)), "crealm/cname are the client's: "+cl.String())
	if enc == nil {
		add(CheckFail, "A does not decrypt here, so nothing else can be checked")
		return
	}
	p := enc.part
	add(CheckPass, "A decrypts with the client's key "+src+" (key usage 3): the KDC knew the same key, so the reply is genuine")
	add(pass(p.Nonce == r.st.asNonce), fmt.Sprintf("the nonce in A is the nonce of the AS-REQ, %d: the answer is fresh", r.st.asNonce))
	r.encPARepCheck(add, p, enc.key)
	srv := principal.FromPrincipalName(p.SName, p.SRealm)
	ok := srv.Equal(r.st.asServer) && haveTkt && principal.FromPrincipalName(tkt.SName, tkt.Realm).Equal(r.st.asServer)
	add(pass(ok), "the server in A and in ticket B are both "+r.st.asServer.String()+", the server asked for")
	add(pass(!p.EndTime.After(r.st.asTill)), "endtime "+kTime(p.EndTime)+" is no later than the requested till "+kTime(r.st.asTill))
	d := p.AuthTime.Sub(r.at.Add(r.st.kdcOffset))
	add(pass(d < r.o.Clockskew && d > -r.o.Clockskew), "authtime is within "+shortDuration(r.o.Clockskew)+" of the client's clock (off by "+skewText(d)+")")
	if etp != nil {
		s.Checks = append(s.Checks, Check{By: ActorWalkthrough, Result: pass(bytes.Equal(etp.part.Key.KeyValue, p.Key.KeyValue) && etp.part.Key.KeyType == p.Key.KeyType),
			Text: "the session key in A is the very key sealed in B: the TGS will find it there"})
	}
}

// paReqEncPARep is PA-REQ-ENC-PA-REP [RFC 6806 §11]: empty in an AS-REQ, the KDC's checksum over that request in
// the encrypted-pa-data of A.
const paReqEncPARep = 149

// encPARepCheck adds the client's check of PA-REQ-ENC-PA-REP [RFC 6806 §11]: a client that asked for it and finds
// the flag enc-pa-rep in A wants the checksum in A's encrypted-pa-data (key usage 56, in the key that opened A)
// to cover the AS-REQ exactly as it sent it, so that nothing sent in the clear (the enctypes offered, the padata)
// was changed on the way. (MIT's KDC sets the flag on every ticket, also for a client that did not ask.)
func (r *Recorder) encPARepCheck(add func(res, text string), p messages.EncKDCRepPart, key types.EncryptionKey) {
	v, have := ticket.PAValue(p.EncPAData, paReqEncPARep)
	switch {
	case !have && !(r.st.asEncPARep && types.IsFlagSet(&p.Flags, flags.EncPARep)):
		return
	case !have:
		add(CheckFail, "A has the flag enc-pa-rep but no PA-REQ-ENC-PA-REP in its encrypted-pa-data, which the client asked for: "+
			"it refuses such a reply")
		return
	}
	var ck types.Checksum
	ok := len(r.st.asRaw) > 0 && der.DecodeChecksum(v, &ck) == nil
	if ok {
		et, err := crypto.GetChksumEtype(ck.CksumType)
		ok = err == nil && et.VerifyChecksum(key.KeyValue, r.st.asRaw, ck.Checksum, keyusage.KEY_USAGE_AS_REQ)
	}
	res, text := CheckPass, "PA-REQ-ENC-PA-REP in A is the KDC's checksum over the AS-REQ exactly as the client sent it (key usage 56, "+
		"the key of A): nothing the request carried in the clear was changed on the way [RFC 6806 §11]"
	if !ok {
		res, text = CheckFail, "PA-REQ-ENC-PA-REP in A does not verify over the AS-REQ as the client sent it (key usage 56): the request "+
			"was changed on the way, or the KDC checksummed something else"
	}
	add(res, text)
}

// ---------------------------------------------------------------------------------------------------------
// TGS exchange.

// tgsReq records a TGS-REQ: messages C (the TGT and the service asked for) and D (the authenticator).
func (r *Recorder) tgsReq(w Wire) {
	req, err := ticket.ParseKDCRequest(w.Data)
	if err != nil {
		r.unknown(w)
		return
	}
	b := req.Body
	r.st.tgsNonce, r.st.tgsTill = b.Nonce, b.Till
	r.st.tgsServer = principal.FromPrincipalName(b.SName, b.Realm)
	r.st.haveTGSSubkey = false
	s := Step{
		ID: "tgs-req", Title: "TGS-REQ: message C (the TGT and the service wanted) and message D (an authenticator)",
		Letters: []string{"C", "D"}, Message: "TGS-REQ", From: ActorClient, To: ActorTGS, Time: w.Time,
		Transport: w.Network, Addr: w.Addr,
		Summary: "The client shows the TGS its ticket-granting ticket (B, unchanged) and names the service it wants. " +
			"To prove the ticket is its own, it adds an authenticator: its name and the time, encrypted in the " +
			"client/TGS session key it found in A.",
	}
	setTransport(&s, w)
	s.Fields = []Field{
		field("pvno", strconv.Itoa(req.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_TGS_REQ)", req.MsgType)),
	}
	var ap ticket.APReqWire
	var tgt messages.Ticket
	haveAP := false
	if v, ok := req.PA(1); ok && unmarshalApp(v, &ap, 14) == nil {
		if t, err := decodeTicket(ap.Ticket.Bytes); err == nil {
			tgt, haveAP = t, true
		}
	}
	var pas []Field
	for _, pa := range req.PAData {
		if pa.PADataType == 1 && haveAP {
			pas = append(pas, field(paName(1), "AP-REQ: messages C and D", apReqFields(ap, tgt, "C", "D")...))
			continue
		}
		pas = append(pas, padataField(pa))
	}
	s.Fields = append(s.Fields, field("padata", "", pas...))
	s.Fields = append(s.Fields, field("req-body", "the service asked for (part of message C)", reqBodyFields(b)...))
	if !haveAP {
		s.Checks = append(s.Checks, Check{By: ActorTGS, Result: CheckFail, Text: "no decodable PA-TGS-REQ"})
		r.hold(s, pendTGS)
		return
	}
	r.st.tgsTicket = slices.Clone(ap.Ticket.Bytes)
	// A cross-realm TGT (E of the previous TGS-REP) is the TGT in hand from now on.
	cross := r.presentsCrossRealmTGT(tgt, ap.Ticket.Bytes)
	slot, whatC, sessOwner := &r.st.tgt, "message B again: the TGT, with the client/TGS session key inside", "the client/TGS session key (from A; also inside the TGT)"
	if cross {
		slot = &r.st.svc
		whatC = "message E of the previous TGS-REP: the cross-realm TGT, with its session key inside"
		sessOwner = "the session key of the cross-realm TGT (from F of the previous TGS-REP; also inside the ticket)"
		crossRealmTGSReq(&s, principal.FromPrincipalName(tgt.SName, tgt.Realm))
	}

	// C: the TGT again.
	pc, etp := r.ticketPartOf("C", tgt, whatC, "the TGS")
	if etp != nil {
		r.st.tgsClient = principal.FromPrincipalName(etp.part.CName, etp.part.CRealm)
	}
	s.Parts = append(s.Parts, pc)

	// D: the authenticator, in the TGT session key.
	pd := Part{Letter: "D", Name: "authenticator (Authenticator)", What: "the client's name and the time, proving the client holds the session key from A",
		CipherSize: len(ap.Authenticator.Cipher)}
	skey, haveKey := r.sessionKey(slot, ap.Ticket.Bytes, etp)
	pd.Key = keyInfo(sessOwner, skey, ap.Authenticator.EType, ap.Authenticator.KVNO,
		int(keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR), r.o.ShowKeys)
	pd.Key.ChecksumUsage = int(keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	var auth *types.Authenticator
	if haveKey {
		if plain, err := crypto.DecryptEncPart(ap.Authenticator, skey, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR); err == nil {
			var a types.Authenticator
			if decodeSafe(func() error { return a.Unmarshal(plain) }) == nil {
				auth = &a
			}
		}
	}
	if auth != nil {
		ck := field("cksum", checksumName(auth.Cksum.CksumType)+": "+hexKey(auth.Cksum.Checksum),
			field("covers", "the req-body as sent, keyed with the session key, key usage 6"))
		if et, err := crypto.GetEtype(skey.KeyType); err == nil {
			ok := et.VerifyChecksum(skey.KeyValue, req.RawBody, auth.Cksum.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
			ck.Fields = append(ck.Fields, field("verified here", map[bool]string{true: "yes: it matches the req-body bytes above",
				false: "no: it does not match the req-body bytes above"}[ok]))
		}
		pd.Opened, pd.Fields = true, authenticatorFields(*auth, ck, r.o.ShowKeys)
		if auth.SubKey.KeyType != 0 {
			r.st.tgsSubkey, r.st.haveTGSSubkey = auth.SubKey, true
		}
	} else {
		pd.SealedFor, pd.Reason = "the TGS", "the client/TGS session key is not known to this view"
	}
	s.Parts = append(s.Parts, pd)
	r.st.haveFastArmor = false
	if v, ok := req.PA(paFXFast); ok && len(v) > 0 && auth != nil && auth.SubKey.KeyType != 0 {
		s.Parts = append(s.Parts, r.fastRequestPart(v, auth.SubKey, skey))
	}
	r.pendTGSInfo = &tgsPending{sameTicket: r.st.tgt.raw != nil && bytes.Equal(r.st.tgt.raw, ap.Ticket.Bytes), crossTGT: cross}
	if cross && haveKey {
		r.st.tgt = sessionSlot{key: skey, have: true, raw: slices.Clone(ap.Ticket.Bytes)}
	}
	s.Notes = append([]Note{
		{NoteClassic, "\"Message C: composed of the TGT from message B and the ID of the requested service. " +
			"Message D: Authenticator (client ID and timestamp), encrypted using the Client/TGS Session Key.\""},
		{NoteModern, "In RFC 4120 C and D travel in one TGS-REQ: the TGT and the authenticator form an AP-REQ inside the " +
			"PA-TGS-REQ padata, and the service's name is in the req-body. The authenticator also carries a keyed checksum " +
			"over the req-body (key usage 6), so nobody can staple a captured authenticator to a different request, and " +
			"usually a fresh subkey for the reply."},
	}, s.Notes...)
	r.hold(s, pendTGS)
}

// fastRequestPart opens a TGS-REQ's PA-FX-FAST: the armor key is KRB-FX-CF2 of the authenticator's subkey and
// the TGT's session key [RFC 6113 §5.4.1.1], which the recorder keeps for the reply.
func (r *Recorder) fastRequestPart(v []byte, subkey, session types.EncryptionKey) Part {
	p := Part{Name: "padata PA-FX-FAST (KrbFastReq in enc-fast-req)",
		What: "FAST armor [RFC 6113]: the request's body and padata again, encrypted so that nobody on the path can read or change them"}
	armor, err := cf2(subkey, session, "subkeyarmor", "ticketarmor")
	p.Key = keyInfo("the FAST armor key: KRB-FX-CF2(the subkey from D, the session key from A, \"subkeyarmor\", \"ticketarmor\")",
		armor, subkey.KeyType, 0, usageFastEnc, r.o.ShowKeys)
	if err != nil {
		p.SealedFor, p.Reason = "the TGS", "the armor key cannot be derived here: "+err.Error()
		return p
	}
	r.st.fastArmor, r.st.haveFastArmor = armor, true
	fr, ar, err := openFastRequest(v, armor)
	if ar != nil {
		p.CipherSize = len(ar.EncFastReq.Cipher)
	}
	if err != nil {
		p.SealedFor, p.Reason = "the TGS", "does not open with the armor key: "+err.Error()
		return p
	}
	p.Opened, p.Fields = true, fastReqFields(fr)
	return p
}

// tgsPending keeps what the TGS-REQ step learned for the checks made when the reply arrives.
type tgsPending struct {
	sameTicket bool // the TGT presented is the one A came with
	crossTGT   bool // the TGT presented is the cross-realm TGT of the previous TGS-REP
}

// sessionSlot is what the recorder knows of one ticket the client holds: the
// ticket's bytes and its session key.
type sessionSlot struct {
	key  types.EncryptionKey
	have bool
	raw  []byte
}

// sessionKey finds the session key that goes with a ticket: from the opened
// ticket, from the reply that brought it (A or F, already in slot), or from the
// credential cache.
func (r *Recorder) sessionKey(slot *sessionSlot, raw []byte, etp *ticketPart) (types.EncryptionKey, bool) {
	if etp != nil {
		return etp.part.Key, true
	}
	if slot.have && (slot.raw == nil || bytes.Equal(slot.raw, raw)) {
		return slot.key, true
	}
	for _, c := range r.o.Credentials {
		if bytes.Equal(c.Ticket, raw) {
			slot.key, slot.have, slot.raw = c.Key, true, slices.Clone(c.Ticket)
			if r.st.client.Realm == "" {
				r.st.client = c.Client
			}
			return c.Key, true
		}
	}
	return types.EncryptionKey{}, false
}

// apReqFields shows the cleartext of an AP-REQ whose ticket and authenticator are the classic messages
// ticketLetter and authLetter.
func apReqFields(ap ticket.APReqWire, t messages.Ticket, ticketLetter, authLetter string) []Field {
	return apReqFieldsNamed(ap, t, "message "+ticketLetter, ticketLetter, "message "+authLetter, authLetter)
}

// apReqFieldsNamed shows the cleartext of an AP-REQ: its ticket and its authenticator are called ticketName and
// authName, and their parts ticketPart and authPart.
func apReqFieldsNamed(ap ticket.APReqWire, t messages.Ticket, ticketName, ticketPart, authName, authPart string) []Field {
	return []Field{
		field("pvno", strconv.Itoa(ap.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_AP_REQ)", ap.MsgType)),
		field("ap-options", flagNames(ap.APOptions, apOptionNames)),
		field("ticket", ticketName+", "+bytesText(len(ap.Ticket.Bytes)), ticketFields(t, ticketPart)...),
		field("authenticator", authName+", sealed: see part "+authPart, encDataFields(ap.Authenticator)...),
	}
}

// tgsChecks adds what the client knows of the TGS-REQ once it is answered; what the TGS itself checked comes
// from the TGS's own list (receiverChecks).
func (r *Recorder) tgsChecks(s *Step, _ *int32) {
	info := r.pendTGSInfo
	r.pendTGSInfo = nil
	if info != nil && info.sameTicket {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckPass, Text: "the ticket is B byte for byte: the client never changes a ticket, it cannot"})
	}
	if info != nil && info.crossTGT {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckPass, Text: "the ticket is E of the previous TGS-REP byte for byte: the cross-realm TGT, unopened"})
	}
}

// tgsRep records the TGS-REP: messages E (the service ticket) and F (the client/server session key).
func (r *Recorder) tgsRep(w Wire) {
	var rep ticket.KDCRepWire
	if err := unmarshalApp(w.Data, &rep, 13); err != nil {
		r.unknown(w)
		return
	}
	r.finishRequest(r.takePending(pendTGS, w), pendTGS, nil)
	s := Step{
		ID: "tgs-rep", Title: "TGS-REP: message E (the service ticket) and message F (the client/server session key)",
		Letters: []string{"E", "F"}, Message: "TGS-REP", From: ActorTGS, To: ActorClient, Time: w.Time,
		Transport: w.Network, Addr: w.Addr,
		Summary: "The TGS makes a fresh client/server session key and, as the AS did, sends it twice: inside the " +
			"service ticket E, sealed in the service's key, and in F, sealed in a key only the client has.",
	}
	setTransport(&s, w)
	tkt, terr := decodeTicket(rep.Ticket.Bytes)
	s.Fields = []Field{
		field("pvno", strconv.Itoa(rep.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_TGS_REP)", rep.MsgType)),
	}
	if len(rep.PAData) > 0 {
		s.Fields = append(s.Fields, field("padata", "", padataFields(rep.PAData)...))
	}
	s.Fields = append(s.Fields, field("crealm", rep.CRealm), field("cname", princName(rep.CName, "")))
	if terr == nil {
		s.Fields = append(s.Fields, field("ticket", "message E, "+bytesText(len(rep.Ticket.Bytes)), ticketFields(tkt, "E")...))
	}
	s.Fields = append(s.Fields, field("enc-part", "message F: EncTGSRepPart, sealed: see part F", encDataFields(rep.EncPart)...))

	var etp *ticketPart
	tktServer := principal.FromPrincipalName(tkt.SName, tkt.Realm)
	crossTGT := terr == nil && isCrossRealmTGS(tktServer)
	if terr == nil {
		var pe Part
		whatE, holder := "the client-to-server ticket: the client's name, the validity period and the "+
			"client/server session key, for the service", "the service"
		if crossTGT {
			whatE, holder = "a cross-realm TGT for realm "+tktServer.Components[1]+": the client's name, the validity period and "+
				"a fresh session key, for "+tktServer.Components[1]+"'s TGS", tktServer.Components[1]+"'s TGS (and this one)"
		}
		pe, etp = r.ticketPartOf("E", tkt, whatE, holder)
		s.Parts = append(s.Parts, pe)
		r.st.svc.raw = slices.Clone(rep.Ticket.Bytes)
		r.st.svcServer = principal.FromPrincipalName(tkt.SName, tkt.Realm)
	}

	pf := Part{Letter: "F", Name: "enc-part (EncTGSRepPart)", What: "the client/server session key, the nonce and the ticket's times, for the client",
		CipherSize: len(rep.EncPart.Cipher)}
	var enc *messages.EncKDCRepPart
	usage := keyusage.TGS_REP_ENCPART_SESSION_KEY
	keyOwner := "the client/TGS session key (from A)"
	var key types.EncryptionKey
	tried := false
	// With FAST the reply key may be strengthened: KRB-FX-CF2(strengthen-key, reply key) [RFC 6113 §5.4.3].
	var strengthen *types.EncryptionKey
	if r.st.haveFastArmor {
		if fx := r.openFastReplyPart(rep.PAData, "F", "the FAST armor key of the TGS-REQ"); fx != nil {
			client := r.st.tgsClient
			if client.Realm == "" {
				client = r.st.client
			}
			r.fastReplyChecks(&s, fx, rep.Ticket.Bytes, "E", r.st.tgsNonce, client)
			strengthen = fx.strengthen
		}
	}
	replyKey := func(k types.EncryptionKey, owner string) (types.EncryptionKey, string) {
		if strengthen == nil {
			return k, owner
		}
		sk, err := cf2(*strengthen, k, "strengthenkey", "replykey")
		if err != nil {
			return k, owner
		}
		return sk, owner + ", strengthened by FAST: KRB-FX-CF2(strengthen-key, that key)"
	}
	if r.st.haveTGSSubkey {
		tried = true
		k, owner := replyKey(r.st.tgsSubkey, "the subkey the client chose in authenticator D")
		if p, err := ticket.DecryptReplyPart(rep.EncPart, k, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY); err == nil {
			enc, usage, key, keyOwner = &p, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY, k, owner
		}
	}
	if enc == nil && r.st.tgt.have {
		tried = true
		k, owner := replyKey(r.st.tgt.key, keyOwner)
		key = k
		if p, err := ticket.DecryptReplyPart(rep.EncPart, k, keyusage.TGS_REP_ENCPART_SESSION_KEY); err == nil {
			enc, keyOwner = &p, owner
		}
	}
	pf.Key = keyInfo(keyOwner, key, rep.EncPart.EType, rep.EncPart.KVNO, int(usage), r.o.ShowKeys)
	switch {
	case enc != nil:
		pf.Opened, pf.Fields = true, encKDCRepPartFields(*enc, r.o.ShowKeys)
		r.st.svc.key, r.st.svc.have = enc.Key, true
		r.rememberSession(rep.Ticket.Bytes, enc.Key)
	case tried:
		pf.SealedFor, pf.Reason = "the client", "decrypts neither with the subkey (usage 9) nor with the session key (usage 8)"
	default:
		pf.SealedFor, pf.Reason = "the client", "the client/TGS session key is not known to this view"
	}
	s.Parts = append(s.Parts, pf)

	add := func(res, text string) { s.Checks = append(s.Checks, Check{By: ActorClient, Result: res, Text: text}) }
	pass := func(ok bool) string { return map[bool]string{true: CheckPass, false: CheckFail}[ok] }
	cl := principal.FromPrincipalName(rep.CName, rep.CRealm)
	want := r.st.tgsClient
	if want.Realm == "" {
		want = r.st.client
	}
	add(pass(want.Realm == "" || cl.Equal(want)), "crealm/cname are the TGT's client: "+cl.String())
	if enc != nil {
		how := "the session key from A (key usage 8)"
		if usage == keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY {
			how = "the subkey from D (key usage 9)"
		}
		add(CheckPass, "F decrypts with "+how+": only the TGS, which read D, could have sealed it")
		add(pass(enc.Nonce == r.st.tgsNonce), fmt.Sprintf("the nonce in F is the nonce of the TGS-REQ, %d", r.st.tgsNonce))
		srv := principal.FromPrincipalName(enc.SName, enc.SRealm)
		ok := srv.Equal(r.st.tgsServer) && terr == nil && tktServer.Equal(r.st.tgsServer)
		if crossTGT && srv.Equal(tktServer) {
			s.Checks = append(s.Checks, crossRealmTGSRep(&s, tktServer, r.st.tgsServer))
		} else {
			add(pass(ok), "the server in F and in ticket E are both "+r.st.tgsServer.String()+", the service asked for")
		}
		st := startOr(enc.StartTime, enc.AuthTime)
		d := st.Sub(r.at.Add(r.st.kdcOffset))
		add(pass(d < r.o.Clockskew && d > -r.o.Clockskew), "starttime is within "+shortDuration(r.o.Clockskew)+" of the client's clock (off by "+skewText(d)+")")
		add(pass(!enc.EndTime.After(r.st.tgsTill)), "endtime "+kTime(enc.EndTime)+" is no later than the requested till "+kTime(r.st.tgsTill))
		if etp != nil {
			s.Checks = append(s.Checks, Check{By: ActorWalkthrough, Result: pass(bytes.Equal(etp.part.Key.KeyValue, enc.Key.KeyValue)),
				Text: "the session key in F is the very key sealed in E: " + map[bool]string{true: "the other realm's TGS", false: "the service"}[crossTGT] + " will find it there"})
		}
	} else {
		add(CheckFail, "F does not decrypt here, so nothing else can be checked")
	}
	s.Notes = append([]Note{
		{NoteClassic, "\"Message E: Client-to-server ticket (client ID, client network address, validity period " +
			"and Client/Server Session Key) encrypted using the service's secret key. Message F: Client/Server Session Key encrypted " +
			"with the Client/TGS Session Key.\""},
		{NoteModern, "When the authenticator D carried a subkey, the TGS seals F in that subkey with key usage 9, not in the " +
			"client/TGS session key (usage 8): a key used for one reply only. E and F travel together in one TGS-REP."},
	}, s.Notes...)
	if r.o.View == ViewClient && !crossTGT {
		s.Notes = append(s.Notes, Note{NoteWhy, "E is sealed for the service: the client cannot read it. It stores it with the " +
			"session key from F, and hands it to the service in the AP-REQ."})
	}
	r.emit(s)
}

// unknown records a message that could not be decoded.
func (r *Recorder) unknown(w Wire) {
	r.st.errors++
	from, to := ActorClient, ActorAS
	if !w.Sent {
		from, to = to, from
	}
	if w.Service {
		if w.Sent {
			to = ActorService
		} else {
			from = ActorService
		}
	}
	s := Step{ID: "error-" + strconv.Itoa(r.st.errors), Title: "A message that does not decode", From: from, To: to,
		Time: w.Time, Transport: w.Network, Addr: w.Addr, Summary: fmt.Sprintf("%s that this explainer cannot decode.", bytesText(len(w.Data)))}
	setTransport(&s, w)
	r.emit(s)
}
