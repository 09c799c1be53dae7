package kdc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/internal/replay"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// KpasswdOptions configure a Kpasswd service. The zero value is a service
// where every principal may change its own password and nobody may set
// another's.
type KpasswdOptions struct {
	// Admins may set the password of other principals of the realm with
	// RFC 3244 set-password requests (full names, e.g. "root/admin@REALM").
	Admins []string
	// Logger gets one line per request (never a password); nil means the
	// KDC's logger.
	Logger *slog.Logger
	// CheckPassword, when set, vets each new password (a policy).
	CheckPassword PasswordChecker
}

// Kpasswd is the password-changing service of RFC 3244 (kadmin/changepw),
// served on its own port by NewKpasswdServer. A retransmitted request (MIT
// kpasswd resends over UDP while a change runs) is answered with the same
// reply, from a lookaside cache or by joining the identical request in
// flight, so a password is never changed twice by one request; another
// request reusing an authenticator gets KRB_AP_ERR_REPEAT.
type Kpasswd struct {
	k      *KDC
	log    *slog.Logger
	admins map[string]bool
	check  PasswordChecker
	look   *lookaside
	replay *replay.Cache

	mu       sync.Mutex
	inflight map[requestHash]*kpCall
}

// kpCall is a request being answered; identical requests wait for its reply.
type kpCall struct {
	done  chan struct{}
	reply []byte
}

// NewKpasswd returns the kpasswd service of k's realm.
func NewKpasswd(k *KDC, o KpasswdOptions) *Kpasswd {
	p := &Kpasswd{k: k, log: o.Logger, admins: map[string]bool{}, check: o.CheckPassword, inflight: map[requestHash]*kpCall{},
		look:   newLookaside(DefaultLookasideTTL, DefaultLookasideEntries, DefaultLookasideBytes, k.now),
		replay: replay.New(replay.Options{Skew: k.skew, Now: k.now})}
	if p.log == nil {
		p.log = k.log
	}
	for _, a := range o.Admins {
		p.admins[a] = true
	}
	return p
}

// NewKpasswdServer serves p over UDP and TCP with the KDC's transport limits
// (a TCP frame over MaxKpasswdMessage gets KRB_ERR_FIELD_TOOLONG).
func NewKpasswdServer(p *Kpasswd, log *slog.Logger) *Server {
	return newServer(p.k, p, MaxKpasswdMessage, log)
}

// Handle answers one kpasswd request; ok is false for garbage, which gets no
// reply.
func (p *Kpasswd) Handle(ctx context.Context, pkt []byte, tr Transport, from net.Addr) (reply []byte, ok bool) {
	if len(pkt) > MaxKpasswdMessage {
		return nil, false
	}
	h := hashRequest(pkt)
	if r, hit := p.look.get(h); hit {
		p.log.Info("kpasswd", "transport", tr, "from", addrString(from), "result", "LOOKASIDE")
		return r, true
	}
	p.mu.Lock()
	if c, busy := p.inflight[h]; busy {
		p.mu.Unlock()
		select {
		case <-c.done:
			p.log.Info("kpasswd", "transport", tr, "from", addrString(from), "result", "RETRANSMIT")
			return c.reply, c.reply != nil
		case <-ctx.Done():
			return nil, false
		}
	}
	c := &kpCall{done: make(chan struct{})}
	p.inflight[h] = c
	p.mu.Unlock()

	c.reply = p.answer(ctx, pkt, tr, from)
	if c.reply != nil {
		p.look.put(h, c.reply)
	}
	p.mu.Lock()
	delete(p.inflight, h)
	p.mu.Unlock()
	close(c.done)
	return c.reply, c.reply != nil
}

// fieldTooLong answers an over-long TCP frame.
func (p *Kpasswd) fieldTooLong() []byte {
	b, _ := p.errorReply(kpFail(KpasswdMalformed, errorcode.KRB_ERR_FIELD_TOOLONG, "Request is too long", nil))
	return b
}

// kpExchange is one request's state.
type kpExchange struct {
	req    *kpasswdRequest
	now    time.Time
	ap     messages.APReq
	tkt    messages.EncTicketPart
	auth   types.Authenticator
	client principal.Name
	target principal.Name
	keys   ticket.SessionKeys
}

// answer runs one request and logs it; a panic becomes no reply.
func (p *Kpasswd) answer(ctx context.Context, pkt []byte, tr Transport, from net.Addr) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			p.k.panics.Add(1)
			p.log.Error("kpasswd panic", "from", addrString(from), "panic", fmt.Sprint(r))
			reply = nil
		}
	}()
	req, err := parseKpasswdRequest(pkt)
	if errors.Is(err, errKpasswdGarbage) {
		p.log.Debug("kpasswd: dropped undecodable packet", "transport", tr, "from", addrString(from), "bytes", len(pkt))
		return nil
	}
	x := &kpExchange{req: req, now: p.k.now()}
	var f *kpasswdFail
	if err != nil {
		f = err.(*kpasswdFail)
	} else {
		f = p.authenticate(ctx, x)
	}
	if f != nil {
		p.logResult(ctx, x, tr, from, f)
		b, err := p.errorReply(f)
		if err != nil {
			p.log.Error("kpasswd: error reply", "err", err)
			return nil
		}
		return b
	}
	f = p.change(ctx, x)
	p.logResult(ctx, x, tr, from, f)
	p.audit(x, from, f)
	b, err := p.privReply(x, f)
	if err != nil {
		p.log.Error("kpasswd: reply", "err", err)
		return nil
	}
	return b
}

func (p *Kpasswd) logResult(ctx context.Context, x *kpExchange, tr Transport, from net.Addr, f *kpasswdFail) {
	attrs := []any{"transport", tr, "from", addrString(from), "version", fmt.Sprintf("%#04x", x.req.versionOr0())}
	if len(x.client.Components) > 0 {
		attrs = append(attrs, "client", logString(x.client.String()))
	}
	if len(x.target.Components) > 0 {
		attrs = append(attrs, "target", logString(x.target.String()))
	}
	if f == nil {
		attrs = append(attrs, "result", "CHANGED", "code", 0)
	} else {
		attrs = append(attrs, "result", logString(f.text), "code", int(f.result))
		if f.cause != nil {
			attrs = append(attrs, "reason", logString(f.cause.Error()))
		}
	}
	p.log.InfoContext(ctx, "kpasswd", attrs...)
}

// audit writes the audit line of a password change an authenticated
// requester attempted (who asked, for whom, from where, and the outcome;
// never the password).
func (p *Kpasswd) audit(x *kpExchange, from net.Addr, f *kpasswdFail) {
	what := "kpasswd-change"
	if !x.target.Equal(x.client) {
		what = "kpasswd-set"
	}
	result := "ok"
	if f != nil {
		result = logString(f.text)
	}
	p.k.audit.Log(AuditEvent{Who: "principal " + logString(x.client.String()), From: "kpasswd " + addrString(from),
		What: what, Target: logString(x.target.String()), Result: result})
}

func (r *kpasswdRequest) versionOr0() uint16 {
	if r == nil {
		return 0
	}
	return r.version
}

// authenticate verifies the AP-REQ for kadmin/changepw (RFC 4120 §3.2.3):
// ticket sealed in our kadmin/changepw key, authenticator in its session
// key, names, times, replay.
func (p *Kpasswd) authenticate(ctx context.Context, x *kpExchange) *kpasswdFail {
	const failed = "Failed reading application request"
	if err := der.DecodeAPReq(x.req.apReq, &x.ap); err != nil {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_MSG_TYPE, failed, err)
	}
	t := x.ap.Ticket
	sname := wireName(t.SName, t.Realm)
	if !isChangePW(sname) || sname.Realm != p.k.realm {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_NOT_US, failed, fmt.Errorf("ticket for %s", sname))
	}
	rec, err := p.k.store.Get(ctx, sname)
	if err != nil {
		if errors.Is(err, principal.ErrNotFound) {
			return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_NOT_US, failed, err)
		}
		return kpFail(KpasswdHardError, errorcode.KRB_ERR_GENERIC, "Server error", err)
	}
	key, ok := rec.FindKey(t.EncPart.EType, uint32(t.EncPart.KVNO))
	if !ok {
		code := int32(errorcode.KRB_AP_ERR_NOKEY)
		if !rec.HasKVNO(uint32(t.EncPart.KVNO)) {
			code = errorcode.KRB_AP_ERR_BADKEYVER
		}
		return kpFail(KpasswdAuthError, code, failed, fmt.Errorf("no %s key of kvno %d", principal.EnctypeName(t.EncPart.EType), t.EncPart.KVNO))
	}
	if x.tkt, err = p.k.keys.OpenTicket(t, key.EncryptionKey()); err != nil {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_BAD_INTEGRITY, failed, err)
	}
	x.client = wireName(x.tkt.CName, x.tkt.CRealm)
	plain, err := x.keys.Decrypt(x.ap.EncryptedAuthenticator, x.tkt.Key, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_BAD_INTEGRITY, failed, err)
	}
	if err := der.DecodeAuthenticator(plain, &x.auth); err != nil {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_BAD_INTEGRITY, failed, err)
	}
	a := x.auth
	if a.CRealm != x.tkt.CRealm || !wireName(a.CName, a.CRealm).Equal(x.client) {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_BADMATCH, failed, errors.New("authenticator client is not the ticket's"))
	}
	ctime := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if d := ctime.Sub(x.now); d > p.k.skew || d < -p.k.skew {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_SKEW, failed, fmt.Errorf("authenticator off by %s", d.Round(time.Second)))
	}
	start := x.tkt.StartTime
	if start.IsZero() {
		start = x.tkt.AuthTime
	}
	if start.After(x.now.Add(p.k.skew)) {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_TKT_NYV, failed, errors.New("ticket not yet valid"))
	}
	if x.now.After(x.tkt.EndTime.Add(p.k.skew)) {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_TKT_EXPIRED, failed, errors.New("ticket expired"))
	}
	if err := p.replay.Check(sname.String(), x.client.String(), a.CTime, a.Cusec); err != nil {
		return kpFail(KpasswdAuthError, errorcode.KRB_AP_ERR_REPEAT, failed, err)
	}
	return nil
}

// privKey is the key of both KRB-PRIVs: the authenticator's subkey, or the
// ticket session key without one.
func (x *kpExchange) privKey() types.EncryptionKey {
	if x.auth.SubKey.KeyType != 0 {
		return x.auth.SubKey
	}
	return x.tkt.Key
}

// change reads the new password and applies it; nil means changed.
func (p *Kpasswd) change(ctx context.Context, x *kpExchange) *kpasswdFail {
	data, err := openKpasswdPriv(&x.keys, x.privKey(), x.req.priv, &x.auth)
	if err != nil {
		return kpFail(KpasswdHardError, 0, "Failed decrypting request", err)
	}
	defer clear(data)
	pw := data
	x.target = x.client
	if x.req.version == KpasswdVersionSet {
		d, err := decodeChangePasswdData(data)
		if err != nil {
			return kpFail(KpasswdMalformed, 0, "Failed decoding ChangePasswdData", err)
		}
		defer clear(d.NewPasswd)
		pw = d.NewPasswd
		if len(d.TargName.NameString) > 0 {
			realm := d.TargRealm
			if realm == "" {
				realm = x.client.Realm
			}
			x.target = wireName(d.TargName, realm)
		}
	}
	if x.client.Realm != p.k.realm {
		return kpFail(KpasswdAccessDenied, 0, "Only principals of "+p.k.realm+" may change passwords here", nil)
	}
	if !x.target.Equal(x.client) {
		// RFC 3244 §2: setting another principal's password is for
		// administrators (MIT: the changepw ACL); it needs no initial ticket.
		if !p.admins[x.client.String()] {
			return kpFail(KpasswdAccessDenied, 0, "Not authorized to set the password of another principal", nil)
		}
		if x.target.Realm != p.k.realm {
			return kpFail(KpasswdAccessDenied, 0, "Cannot set passwords of principals of other realms", nil)
		}
	} else if !isSet(x.tkt.Flags, flags.Initial) {
		// RFC 3244 §2: a change of one's own password needs a ticket from
		// the AS exchange, got with the old password, not one from a TGT.
		return kpFail(KpasswdInitialNeeded, 0, "Password changes need an initial ticket (get it with your password, not a TGT)", nil)
	}
	switch {
	case len(pw) == 0:
		return kpFail(KpasswdSoftError, 0, "Password is empty", nil)
	case len(pw) > MaxNewPassword:
		return kpFail(KpasswdSoftError, 0, fmt.Sprintf("Password is longer than %d bytes", MaxNewPassword), nil)
	case !utf8.Valid(pw):
		return kpFail(KpasswdSoftError, 0, "Password is not valid UTF-8", nil)
	}
	err = p.changePassword(ctx, x.target, string(pw), x.now)
	var pe interface{ PasswordRejected() string }
	var qe *principal.PasswordError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &qe):
		// MIT's texts ("Password is too short", ...), which kpasswd prints.
		return kpFail(KpasswdSoftError, 0, qe.Reason, nil)
	case errors.As(err, &pe):
		return kpFail(KpasswdSoftError, 0, pe.PasswordRejected(), nil)
	case errors.Is(err, principal.ErrNotFound):
		return kpFail(KpasswdHardError, 0, "Principal does not exist", nil)
	}
	return kpFail(KpasswdHardError, 0, "Password change failed", err)
}

// errorReply is a framed KRB-ERROR whose e-data is the result (RFC 3244 §2).
func (p *Kpasswd) errorReply(f *kpasswdFail) ([]byte, error) {
	code := f.krbCode
	if code == 0 {
		code = errorcode.KRB_ERR_GENERIC
	}
	e, err := ticket.ErrorReply{Code: code, Now: p.k.now(), Realm: p.k.realm, SName: changepwSName,
		EData: kpasswdResult(f.result, f.text)}.Marshal()
	if err != nil {
		return nil, err
	}
	return frameKpasswdReply(nil, e)
}

// privReply is AP-REP + KRB-PRIV carrying the result.
func (p *Kpasswd) privReply(x *kpExchange, f *kpasswdFail) ([]byte, error) {
	code, text := uint16(KpasswdSuccess), "Password changed"
	if f != nil {
		code, text = f.result, f.text
	}
	var sb [4]byte
	if _, err := rand.Read(sb[:]); err != nil {
		return nil, fmt.Errorf("kdc: sequence number: %w", err)
	}
	seq := int64(binary.BigEndian.Uint32(sb[:]) & 0x3fffffff)
	apRep, err := ticket.BuildAPRep(ticket.APRepPart{CTime: x.auth.CTime, Cusec: x.auth.Cusec, SeqNumber: seq, HasSeq: true}, x.tkt.Key)
	if err != nil {
		return nil, err
	}
	priv, err := buildKpasswdPriv(&x.keys, x.privKey(), kpasswdResult(code, text), seq, time.Now())
	if err != nil {
		return nil, err
	}
	return frameKpasswdReply(apRep, priv)
}

// PasswordChecker vets a new password for rec before it is applied; its
// error's text is sent to the client (KRB5_KPASSWD_SOFTERROR). It is the hook
// for password policies.
type PasswordChecker func(rec *principal.Record, password string) error

// rejection marks a checker's error as a policy rejection.
type rejection struct{ reason string }

func (r *rejection) Error() string            { return "kdc: password rejected: " + r.reason }
func (r *rejection) PasswordRejected() string { return r.reason }

// changePassword gives target a new password the way `kdc principal passwd`
// does, under the principal's policy (principal.Record.SetPassword: checked,
// keys of the next kvno for its enctypes, the old key remembered, password
// expiry moved by the policy's maximum life or cleared).
func (p *Kpasswd) changePassword(ctx context.Context, target principal.Name, password string, now time.Time) error {
	rec, err := p.k.store.Get(ctx, target)
	if err != nil {
		return err
	}
	pol, err := p.policyOf(ctx, rec)
	if err != nil {
		return err
	}
	return p.k.store.Update(ctx, target, func(r *principal.Record) error {
		if p.check != nil {
			if err := p.check(r, password); err != nil {
				return &rejection{reason: err.Error()}
			}
		}
		return r.SetPassword(pol, password, now, false)
	})
}

// policyOf is rec's policy; nil when it names none, or when the store keeps
// no policies.
func (p *Kpasswd) policyOf(ctx context.Context, rec *principal.Record) (*principal.Policy, error) {
	ps, ok := p.k.store.(principal.PolicyStore)
	if !ok || rec.Policy == "" {
		return nil, nil
	}
	pol, err := ps.GetPolicy(ctx, rec.Policy)
	if errors.Is(err, principal.ErrNotFound) {
		p.log.Warn("kpasswd: principal names a missing policy; no password rules applied", "principal", rec.Name.String(), "policy", rec.Policy)
		return nil, nil
	}
	return pol, err
}
