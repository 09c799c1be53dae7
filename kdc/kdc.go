// Package kdc is the Key Distribution Center: the AS and TGS exchanges of RFC 4120
// over a principal.Store, served over UDP and TCP.
package kdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// Defaults for Config fields left zero.
const (
	// DefaultClockSkew is the allowed clock difference (RFC 4120 §8.2: 5 minutes).
	DefaultClockSkew = 5 * time.Minute
	// DefaultMinLife is the shortest ticket the KDC issues; shorter requests get
	// KDC_ERR_NEVER_VALID.
	DefaultMinLife = time.Minute
	// DefaultLookasideTTL is how long a reply is kept for retransmissions of the
	// identical request (RFC 4120 §3.1.2; MIT keeps 2 minutes).
	DefaultLookasideTTL = 2 * time.Minute
	// DefaultLookasideEntries caps the number of replies in the lookaside cache.
	DefaultLookasideEntries = 10000
	// DefaultLookasideBytes caps the bytes of the replies in the lookaside cache.
	DefaultLookasideBytes = 16 << 20
)

// Bounds on what the KDC copies into log lines: names and causes of failures can
// carry what a client sent. (Names themselves are bounded by principal.InBounds:
// a request over those bounds is refused like one for an unknown principal,
// and the oversized field is neither echoed in the KRB-ERROR nor logged.)
const (
	// maxLogString bounds any string the KDC copies into a log line.
	maxLogString = 256
	// maxLogEtypes bounds the enctype list copied into a log line.
	maxLogEtypes = 16
)

// Config configures a KDC. Only Store is required.
type Config struct {
	Store principal.Store
	// Logger gets one line per request; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject one to move time.
	Now func() time.Time
	// ClockSkew is the allowed clock difference; 0 means DefaultClockSkew.
	ClockSkew time.Duration
	// MinLife is the shortest ticket issued; 0 means DefaultMinLife.
	MinLife time.Duration
	// MaxUDPReply is the largest reply sent over UDP; larger replies become
	// KRB_ERR_RESPONSE_TOO_BIG so the client retries over TCP (RFC 4120 §7.2.1).
	// 0 means MaxUDPPayload.
	MaxUDPReply int
	// LookasideTTL is how long replies are kept for retransmissions; 0 means
	// DefaultLookasideTTL, negative disables the cache.
	LookasideTTL time.Duration
	// Observer, when set, is told how each stage of every AS and TGS request ended (ASStages, TGSStages),
	// synchronously, before the reply is sent. It is for message recorders (the walkthrough); nil costs nothing.
	Observer func(StageResult)
	// TransitRealms are the realms a client of another realm may have come
	// through on its way here (besides its own realm and the realm that
	// issued the cross-realm TGT when that is the client's): RFC 4120
	// §3.3.3.2's transit policy, as MIT's [capaths]. Empty allows direct trust
	// only; "*" allows any path.
	TransitRealms []string
	// RequireFAST refuses every unarmored AS exchange (RFC 6113): clients
	// must log in inside FAST (kinit -T). Principal.RequiresFAST does the
	// same for one client. TGS exchanges are not affected.
	RequireFAST bool
	// DomainRealms maps host names and DNS domains (".example.net") to the
	// realms that serve them, for referrals of host-based services that are
	// not in this realm [RFC 6806 §8], as MIT's KDC reads its krb5.conf
	// [domain_realm]. Without an entry the host's own domain, upper-cased,
	// names the realm (svc.b.example: B.EXAMPLE). A referral is only given to a
	// realm this one holds an inter-realm key for.
	DomainRealms map[string]string
	// Audit, when set, gets a line for every principal the KDC locks
	// (audit.go); the admin socket writes its changes to the same log.
	Audit *AuditLog
}

// KDC answers Kerberos requests. It is safe for concurrent use.
type KDC struct {
	store     principal.Store
	shared    principal.SharedGetter // store's, when it has one (lookup)
	realm     string
	log       *slog.Logger
	now       func() time.Time
	skew      time.Duration
	minLife   time.Duration
	maxUDP    int
	lookaside *shardedLookaside
	// keys caches keys derived from long-term keys (krbtgt, services,
	// clients) per usage; session keys and subkeys are never put in it.
	keys *ticket.KeyCache

	observer      func(StageResult) // Config.Observer
	transitRealms []string          // Config.TransitRealms
	requireFAST   bool              // Config.RequireFAST
	domainRealms  map[string]string // Config.DomainRealms, keys lower-cased

	// Panics counts requests that panicked and were answered with KRB_ERR_GENERIC.
	panics atomic.Int64
	stats  stats
	// lock holds the pending lockout writes and the policy cache (lockout.go).
	lock  lockouts
	audit *AuditLog
}

// New checks cfg, fills defaults and returns a KDC.
func New(cfg Config) (*KDC, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("kdc: no principal store")
	}
	k := &KDC{
		store:   cfg.Store,
		realm:   cfg.Store.Realm(),
		log:     cfg.Logger,
		now:     cfg.Now,
		skew:    cfg.ClockSkew,
		minLife: cfg.MinLife,
		maxUDP:  cfg.MaxUDPReply,
		keys:    ticket.NewKeyCache(0),

		observer:      cfg.Observer,
		transitRealms: append([]string(nil), cfg.TransitRealms...),
		requireFAST:   cfg.RequireFAST,
		domainRealms:  lowerKeys(cfg.DomainRealms),
		audit:         cfg.Audit,
	}
	k.shared, _ = cfg.Store.(principal.SharedGetter)
	if k.log == nil {
		k.log = slog.New(NewTextHandler(io.Discard, nil))
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.skew <= 0 {
		k.skew = DefaultClockSkew
	}
	if k.minLife <= 0 {
		k.minLife = DefaultMinLife
	}
	if k.maxUDP <= 0 || k.maxUDP > MaxUDPPayload {
		k.maxUDP = MaxUDPPayload
	}
	ttl := cfg.LookasideTTL
	if ttl == 0 {
		ttl = DefaultLookasideTTL
	}
	if ttl > 0 {
		k.lookaside = newShardedLookaside(ttl, DefaultLookasideEntries, DefaultLookasideBytes, k.now)
	}
	return k, nil
}

// lookup reads a principal for the request path, which never modifies the
// record: from the store's cache itself where it can (principal.SharedGetter),
// saving a copy of the record per lookup, else with Get.
func (k *KDC) lookup(ctx context.Context, name principal.Name) (*principal.Record, error) {
	if k.shared != nil {
		return k.shared.GetShared(ctx, name)
	}
	return k.store.Get(ctx, name)
}

// Realm is the realm this KDC serves.
func (k *KDC) Realm() string { return k.realm }

// Panics returns how many requests panicked (and were answered with an error).
func (k *KDC) Panics() int64 { return k.panics.Load() }

// Transport names how a request arrived.
type Transport string

// Transports.
const (
	UDP Transport = "udp"
	TCP Transport = "tcp"
)

// outcome is what the per-request log line reports.
type outcome struct {
	client, service string
	// cname and crealm name the client for a KRB-ERROR when the request body
	// does not (TGS-REQs carry the client only inside the TGT).
	cname  types.PrincipalName
	crealm string
	etypes []int32
	issued issue // what was issued, formatted only for the log
	// armored: the request came inside FAST armor (RFC 6113), logged as fast=true.
	armored bool
	// pkt is the request as it arrived, which PA-REQ-ENC-PA-REP's checksum
	// covers (RFC 6806 §11); valid only while the request is processed.
	pkt []byte
}

// Handle answers one request. ok is false when pkt does not decode as a KDC
// request: garbage gets no reply. Anything that decodes gets a reply, a KRB-ERROR
// if need be, never a crash.
func (k *KDC) Handle(ctx context.Context, pkt []byte, tr Transport, from net.Addr) (reply []byte, ok bool) {
	var h requestHash
	if k.lookaside != nil {
		h = hashRequest(pkt)
		if r, hit := k.lookaside.get(h); hit {
			k.stats.lookasideHits.Add(1)
			k.log.Info("request", "transport", tr, "from", addrString(from), "result", "LOOKASIDE")
			r = k.fitTransport(pkt, r, tr)
			return r, r != nil
		}
	}
	req, err := ticket.ParseKDCRequest(pkt)
	if err != nil {
		k.stats.dropped.Add(1)
		k.log.Debug("dropped undecodable packet", "transport", tr, "from", addrString(from), "bytes", len(pkt), "err", logString(err.Error()))
		return nil, false
	}
	start := time.Now()
	out := outcome{pkt: pkt}
	reply, err = k.process(ctx, req, &out)
	var ke *Error
	if err != nil {
		ke = asError(err)
		reply = k.errorReply(req, ke, &out)
	}
	took := time.Since(start)
	k.stats.observe(req.MsgType, ke, took)
	k.logRequest(ctx, req, ke, &out, tr, from, took)
	if reply == nil {
		return nil, false
	}
	if k.lookaside != nil {
		// The full reply is kept, so the client's retry over TCP is answered
		// from the cache.
		k.lookaside.put(h, reply)
	}
	reply = k.fitTransport(pkt, reply, tr)
	return reply, reply != nil
}

// issue is what an exchange issued, for the log line.
type issue struct {
	what                                  string // "reply" (AS), "ticket", "renewed", "validated" (TGS)
	replyEtype, ticketEtype, sessionEtype int32
	kvno                                  uint32
}

// appendAttrs appends what was issued to a log line as attributes whose
// values never need quoting (a quoted value costs the text handler a pass of
// rune escaping): "reply=aes256-cts-hmac-sha1-96 session=…" for AS,
// "issued=ticket ticket=aes256-cts-hmac-sha1-96 kvno=2 session=…" for TGS
// (issued is ticket, renewed or validated).
func (i issue) appendAttrs(a []slog.Attr) []slog.Attr {
	if i.what == "reply" {
		return append(a, slog.String("reply", principal.EnctypeName(i.replyEtype)),
			slog.String("session", principal.EnctypeName(i.sessionEtype)))
	}
	return append(a, slog.String("issued", i.what), slog.String("ticket", principal.EnctypeName(i.ticketEtype)),
		slog.Uint64("kvno", uint64(i.kvno)), slog.String("session", principal.EnctypeName(i.sessionEtype)))
}

// logRequest writes the one line per request, as MIT does. It uses typed
// attributes and formats nothing when the level is off: the line is part of
// every request's cost. A handler that is a LineWriter (TextHandler, the
// handler of kdc serve) takes the attributes as they are; any other gets them
// through slog.
func (k *KDC) logRequest(ctx context.Context, req *ticket.KDCRequest, ke *Error, out *outcome, tr Transport, from net.Addr, took time.Duration) {
	if !k.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// The attributes go to an interface method (LineWriter), so they would
	// be moved to the heap: they come from a pool instead.
	buf := logAttrPool.Get().(*[12]slog.Attr)
	defer func() { clear(buf[:]); logAttrPool.Put(buf) }()
	attrs := append(buf[:0],
		slog.String("transport", string(tr)),
		slog.String("from", addrString(from)),
		slog.String("client", logString(out.client)),
		slog.String("service", logString(out.service)),
		slog.String("etypes", logEtypes(out.etypes)),
	)
	if ke == nil {
		attrs = out.issued.appendAttrs(append(attrs, slog.String("result", "ISSUE")))
	} else {
		attrs = append(attrs, slog.String("result", ke.Status), slog.Int("code", int(ke.Code)))
		if ke.Cause != nil {
			attrs = append(attrs, slog.String("reason", logString(ke.Cause.Error())))
		}
	}
	if out.armored {
		attrs = append(attrs, slog.Bool("fast", true))
	}
	attrs = append(attrs, slog.Duration("took", took))
	if lw, ok := k.log.Handler().(LineWriter); ok && lw.WriteLine(ctx, time.Now(), slog.LevelInfo, msgName(req.MsgType), attrs) {
		return
	}
	k.log.LogAttrs(ctx, slog.LevelInfo, msgName(req.MsgType), attrs...)
}

// logAttrPool holds the attributes of request lines being written.
var logAttrPool = sync.Pool{New: func() any { return new([12]slog.Attr) }}

// fitTransport replaces a reply too big for one UDP datagram by
// KRB_ERR_RESPONSE_TOO_BIG, so the client retries over TCP (RFC 4120 §7.2.1).
func (k *KDC) fitTransport(pkt, reply []byte, tr Transport) []byte {
	if tr != UDP || len(reply) <= k.maxUDP {
		return reply
	}
	req, err := ticket.ParseKDCRequest(pkt)
	if err != nil {
		return nil
	}
	return k.errorReply(req, kerr(errorcode.KRB_ERR_RESPONSE_TOO_BIG, "RESPONSE_TOO_BIG", nil), nil)
}

// fieldTooLong is the KRB-ERROR for a TCP length with the high bit set or over
// MaxTCPMessage (RFC 4120 §7.2.2); there is no request to take names from.
func (k *KDC) fieldTooLong() []byte {
	return k.errorReply(&ticket.KDCRequest{}, kerr(errorcode.KRB_ERR_FIELD_TOOLONG, "FIELD_TOOLONG", nil), nil)
}

// process runs one exchange, turning a panic into KRB_ERR_GENERIC.
func (k *KDC) process(ctx context.Context, req *ticket.KDCRequest, out *outcome) (reply []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			k.panics.Add(1)
			reply, err = nil, kerr(errorcode.KRB_ERR_GENERIC, "INTERNAL_ERROR", fmt.Errorf("panic: %v", r))
		}
	}()
	if req.PVNO != 5 {
		return nil, kerr(errorcode.KDC_ERR_BAD_PVNO, "BAD_PVNO", fmt.Errorf("pvno %d", req.PVNO))
	}
	out.etypes = req.Body.EType
	if err := checkNameBounds(req); err != nil {
		return nil, err
	}
	switch req.MsgType {
	case msgtype.KRB_AS_REQ:
		return k.handleAS(ctx, req, out)
	case msgtype.KRB_TGS_REQ:
		return k.handleTGS(ctx, req, out)
	}
	return nil, kerr(errorcode.KRB_AP_ERR_MSG_TYPE, "BAD_MSG_TYPE", nil)
}

// errorReply encodes a KRB-ERROR for a request that decoded (RFC 4120 §5.9.1),
// with the KDC's real time in stime so clients can correct their clocks.
func (k *KDC) errorReply(req *ticket.KDCRequest, ke *Error, out *outcome) []byte {
	e := ticket.ErrorReply{
		Code:  ke.Code,
		Now:   k.now(),
		Realm: k.realm,
		SName: req.Body.SName,
		EText: ke.Status,
		EData: ke.EData,
	}
	// Echo only names within bounds: an attacker's oversized field would
	// otherwise come back in every error (and sit in the lookaside cache).
	switch {
	case len(req.Body.CName.NameString) > 0 && principal.InBounds(req.Body.CName, req.Body.Realm):
		e.CName, e.CRealm = req.Body.CName, req.Body.Realm
	case out != nil && len(out.cname.NameString) > 0:
		e.CName, e.CRealm = out.cname, out.crealm
	}
	if len(e.SName.NameString) == 0 || !principal.InBounds(e.SName, "") {
		e.SName = principal.Krbtgt(k.realm).PrincipalName()
	}
	b, err := e.Marshal()
	if err != nil {
		k.log.Error("encoding KRB-ERROR failed", "err", err)
		return nil
	}
	return b
}

// checkNameBounds refuses a request whose realm or names exceed the bounds
// above, as an unknown client or server (nothing that long is in the database).
func checkNameBounds(req *ticket.KDCRequest) error {
	b := &req.Body
	if !principal.InBounds(b.CName, b.Realm) {
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "NAME_TOO_LONG", errors.New("client name or realm over the length bounds"))
	}
	if !principal.InBounds(b.SName, "") {
		return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "NAME_TOO_LONG", errors.New("server name over the length bounds"))
	}
	return nil
}

// logString bounds a string copied into a log line: the request's names and
// the causes of failures can carry what a client sent.
func logString(s string) string {
	if len(s) <= maxLogString {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", strings.ToValidUTF8(s[:maxLogString], ""), len(s))
}

// logEtypes bounds the enctype list copied into a log line: "18,17,20",
// without fmt's reflection (a fifth of the line's cost) and without a space,
// which would make the text handler quote the value.
func logEtypes(e []int32) string {
	var buf [8 + maxLogEtypes*12]byte
	b := buf[:0]
	for i, et := range e[:min(len(e), maxLogEtypes)] {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(et), 10)
	}
	if len(e) == 0 {
		b = append(b, '-')
	}
	if len(e) > maxLogEtypes {
		b = fmt.Appendf(b, "…(%d enctypes)", len(e))
	}
	return string(b)
}

func msgName(t int) string {
	switch t {
	case msgtype.KRB_AS_REQ:
		return "AS_REQ"
	case msgtype.KRB_TGS_REQ:
		return "TGS_REQ"
	}
	return fmt.Sprintf("MSG_%d", t)
}

func addrString(a net.Addr) string {
	if a == nil {
		return "-"
	}
	return a.String()
}
