package kdc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// tgsCopiedFlags are always carried from the TGT to tickets issued with it (RFC
// 4120 §2.1, §2.6; MIT TGS_COPIED_FLAGS_MASK).
var tgsCopiedFlags = []int{flags.Forwarded, flags.Proxy, flags.PreAuthent, flags.HWAuthent}

// tgsRequest is the state of one TGS exchange, filled stage by stage.
type tgsRequest struct {
	req *ticket.KDCRequest
	now time.Time

	apreq  messages.APReq         // PA-TGS-REQ (decodeTGS)
	tgt    messages.EncTicketPart // the decrypted TGT (openTGT)
	auth   types.Authenticator    // the decrypted authenticator (checkAuthenticator)
	client principal.Name         // the TGT's client

	sname  principal.Name // requested service (lookupServer)
	server *principal.Record

	// canonSName is the service's stored name when it was asked for under an
	// alias with the canonicalize option (names.go), else empty.
	canonSName types.PrincipalName
	renew      bool // RENEW or VALIDATE: reissue the presented ticket

	// deleg is the S4U and user-to-user state (s4u.go, u2u.go), nil for a
	// plain request.
	deleg *delegState

	// fast is the armor of a FAST TGS-REQ (fast.go), nil for a plain one;
	// req is then the inner request.
	fast *fastState

	// xr is the cross-realm state (crossrealm.go), nil for a request that
	// stays in the realm.
	xr *crossRealmState

	// keys does the cryptography of the TGT session key and the subkey, which
	// serve this request only and are never put in the KDC's key cache (they
	// would only evict the long-term keys of KDC.keys).
	keys ticket.SessionKeys
}

// tgsRequests recycles the state of TGS exchanges: 1.4 KB (the decoded AP-REQ
// alone is 656 bytes), a quarter of what a TGS exchange allocated. Nothing
// refers to a tgsRequest once handleTGS returns: what the log line and the
// error reply need is copied into the outcome (strings, numbers, and names
// whose components the decoder allocated apart, which the zeroing leaves
// alone), and the reply and errors are allocated apart (TestTGSConcurrentClients).
var tgsRequests = sync.Pool{New: func() any { return new(tgsRequest) }}

// handleTGS runs the TGS exchange (RFC 4120 §3.3): find PA-TGS-REQ → open the TGT
// → check the authenticator and its checksum over the raw req-body → check
// options against the TGT → look up the service → issue.
func (k *KDC) handleTGS(ctx context.Context, req *ticket.KDCRequest, out *outcome) ([]byte, error) {
	tr := tgsRequests.Get().(*tgsRequest)
	*tr = tgsRequest{req: req, now: k.now().UTC()}
	defer func() {
		out.armored = tr.fast != nil
		*tr = tgsRequest{} // let go of the request, its keys and records before tr waits in the pool
		tgsRequests.Put(tr)
	}()
	if len(req.Body.SName.NameString) > 0 {
		out.service = wireName(req.Body.SName, req.Body.Realm).String()
	}
	if err := k.observe("TGS", "decode", k.decodeTGS(ctx, tr)); err != nil {
		return nil, err
	}
	if err := k.observe("TGS", "open-tgt", k.openTGT(ctx, tr)); err != nil {
		return nil, err
	}
	out.client = tr.client.String()
	out.cname, out.crealm = tr.tgt.CName, tr.tgt.CRealm
	for _, step := range tgsSteps {
		if err := k.observe("TGS", step.name, step.run(k, ctx, tr)); err != nil {
			return nil, k.fastError(tr.fast, tr.req, asError(err))
		}
	}
	// out.service already names tr.sname: both come from the request body.
	reply, err := k.issueTGS(tr, &out.issued)
	if err = k.observe("TGS", "issue", err); err != nil {
		return nil, k.fastError(tr.fast, tr.req, asError(err))
	}
	return reply, nil
}

// decodeTGS finds PA-TGS-REQ (RFC 4120 §5.4.1, §7.5.2); PA-FX-FAST (136), sent by
// every MIT 1.20 client, is opened after the authenticator (tgsFAST).
func (k *KDC) decodeTGS(_ context.Context, tr *tgsRequest) error {
	v, ok := tr.req.PA(patype.PA_TGS_REQ)
	if !ok {
		return kerr(errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, "NO_PA_TGS_REQ", nil)
	}
	if err := der.DecodeAPReq(v, &tr.apreq); err != nil {
		return kerr(errorcode.KRB_AP_ERR_MSG_TYPE, "BAD_AP_REQ", err)
	}
	// MIT refuses user-to-user and mutual authentication inside PA-TGS-REQ.
	if isSet(tr.apreq.APOptions, flags.APOptionUseSessionKey) || isSet(tr.apreq.APOptions, flags.APOptionMutualRequired) {
		return kerr(errorcode.KDC_ERR_POLICY, "BAD_AP_OPTIONS", nil)
	}
	if len(tr.req.Body.SName.NameString) == 0 {
		return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "NO_SERVER_NAME", nil)
	}
	return nil
}

// openTGT decrypts the presented ticket with the krbtgt key of its kvno and enctype
// (key usage 2).
func (k *KDC) openTGT(ctx context.Context, tr *tgsRequest) error {
	t := tr.apreq.Ticket
	tname := wireName(t.SName, t.Realm)
	// krbtgt/OURS@OURS, or krbtgt/OURS@OTHER: a cross-realm TGT sealed in
	// the inter-realm key of a realm that trusts us (crossrealm.go).
	if !isTGSName(tname) || tname.Components[1] != k.realm {
		return kerr(errorcode.KRB_AP_ERR_NOT_US, "NOT_A_TGT", fmt.Errorf("ticket for %s", tname))
	}
	rec, err := k.lookup(ctx, tname)
	if err != nil {
		if tr.foreignTGT(k) && errors.Is(err, principal.ErrNotFound) {
			return k.noTrust(tr)
		}
		return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	if !rec.HasKVNO(uint32(t.EncPart.KVNO)) && t.EncPart.KVNO != 0 {
		return k.tgtError(tr, errorcode.KRB_AP_ERR_BADKEYVER, "TGT_KVNO_UNKNOWN", fmt.Errorf("kvno %d", t.EncPart.KVNO))
	}
	key, ok := rec.FindKey(t.EncPart.EType, uint32(t.EncPart.KVNO))
	if !ok {
		return k.tgtError(tr, errorcode.KRB_AP_ERR_NOKEY, "TGT_ETYPE_UNKNOWN", fmt.Errorf("no %s key", principal.EnctypeName(t.EncPart.EType)))
	}
	if tr.tgt, err = k.keys.OpenTicket(t, key.EncryptionKey()); err != nil {
		return k.tgtError(tr, errorcode.KRB_AP_ERR_BAD_INTEGRITY, "TGT_DECRYPT_FAILED", err)
	}
	tr.client = wireName(tr.tgt.CName, tr.tgt.CRealm)
	return nil
}

// checkAuthenticator decrypts the authenticator with the TGT session key (usage 7)
// and applies RFC 4120 §3.2.3 / §3.3.2: names, skew, ticket times, and the keyed
// checksum over the req-body bytes as received (usage 6).
func (k *KDC) checkAuthenticator(_ context.Context, tr *tgsRequest) error {
	plain, err := tr.keys.Decrypt(tr.apreq.EncryptedAuthenticator, tr.tgt.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil {
		return kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "AUTHENTICATOR_DECRYPT_FAILED", err)
	}
	if err := der.DecodeAuthenticator(plain, &tr.auth); err != nil {
		return kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "BAD_AUTHENTICATOR", err)
	}
	a := tr.auth
	if a.CRealm != tr.tgt.CRealm || !wireName(a.CName, a.CRealm).Equal(tr.client) {
		return kerr(errorcode.KRB_AP_ERR_BADMATCH, "CLIENT_MISMATCH", nil)
	}
	ctime := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if d := ctime.Sub(tr.now); d > k.skew || d < -k.skew {
		return kerr(errorcode.KRB_AP_ERR_SKEW, "CLOCK_SKEW", fmt.Errorf("authenticator off by %s", d.Round(time.Second)))
	}
	// A ticket issued with a TGT cannot outlive it (RFC 4120 §3.3.3), so a TGT
	// at or past its end time can give nothing: KRB_AP_ERR_TKT_EXPIRED tells
	// the client to log in again, as MIT and Heimdal answer (no skew grace,
	// which would only lead to KDC_ERR_NEVER_VALID).
	if !tr.now.Before(tr.tgt.EndTime) {
		return kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "TGT_EXPIRED", nil)
	}
	start := tr.tgt.StartTime
	if start.IsZero() {
		start = tr.tgt.AuthTime
	}
	if start.After(tr.now.Add(k.skew)) {
		return kerr(errorcode.KRB_AP_ERR_TKT_NYV, "TGT_NOT_YET_VALID", nil)
	}
	return k.checkTGSChecksum(tr)
}

// unkeyedChecksum reports checksum types that are not keyed, hence not
// collision-proof (RFC 3961 §6.1, RFC 4120 §7.5.3 registry): CRC32, RSA-MD4,
// RSA-MD5, SHA1 and the DES MACs.
func unkeyedChecksum(t int32) bool {
	switch t {
	case 1, 2, 3, 4, 5, 6, 7, 8, 9, 14:
		return true
	}
	return false
}

// checkTGSChecksum verifies the authenticator checksum over the raw req-body: it
// must be present and be the keyed checksum of the session key's enctype
// (KRB_AP_ERR_INAPP_CKSUM otherwise), of a type we know (KDC_ERR_SUMTYPE_NOSUPP),
// and correct (KRB_AP_ERR_MODIFIED, RFC 4120 §3.3.2).
func (k *KDC) checkTGSChecksum(tr *tgsRequest) error {
	ck := tr.auth.Cksum
	if ck.CksumType == 0 && len(ck.Checksum) == 0 {
		return kerr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "NO_CHECKSUM", nil)
	}
	if unkeyedChecksum(ck.CksumType) {
		return kerr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "UNKEYED_CHECKSUM", fmt.Errorf("checksum type %d is not collision-proof", ck.CksumType))
	}
	et, err := crypto.GetChksumEtype(ck.CksumType)
	if err != nil {
		return kerr(errorcode.KDC_ERR_SUMTYPE_NOSUPP, "BAD_CHECKSUM_TYPE", fmt.Errorf("checksum type %d", ck.CksumType))
	}
	// The checksum must belong to the session key's enctype: a keyed checksum
	// of another family would let a client pick a weaker algorithm.
	if et.GetETypeID() != tr.tgt.Key.KeyType {
		return kerr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "CHECKSUM_ENCTYPE_MISMATCH",
			fmt.Errorf("checksum type %d with a %s session key", ck.CksumType, principal.EnctypeName(tr.tgt.Key.KeyType)))
	}
	// The session key (of et's enctype, checked above) picks the keyed checksum.
	if !tr.keys.VerifyChecksum(tr.tgt.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM, tr.req.RawBody, ck.Checksum) {
		return kerr(errorcode.KRB_AP_ERR_MODIFIED, "BAD_CHECKSUM", errors.New("req-body checksum does not verify"))
	}
	return nil
}

// tgsOptionRules: each option needs a TGT flag, else KDC_ERR_BADOPTION (RFC 4120
// §3.3.3; MIT tgs_policy.c). One row per rule.
var tgsOptionRules = []struct {
	option, needs int
	status        string
}{
	{flags.Forwarded, flags.Forwardable, "TGT_NOT_FORWARDABLE"},
	{flags.Proxy, flags.Proxiable, "TGT_NOT_PROXIABLE"},
	{flags.AllowPostDate, flags.MayPostDate, "TGT_NOT_POSTDATABLE"},
	{flags.PostDated, flags.MayPostDate, "TGT_NOT_POSTDATABLE"},
	{flags.Renew, flags.Renewable, "TGT_NOT_RENEWABLE"},
	{flags.Validate, flags.Invalid, "TGT_NOT_INVALID"},
}

func (k *KDC) checkTGSOptions(_ context.Context, tr *tgsRequest) error {
	opts := tr.req.Body.KDCOptions
	for _, r := range tgsOptionRules {
		if isSet(opts, r.option) && !types.IsFlagSet(&tr.tgt.Flags, r.needs) {
			return kerr(errorcode.KDC_ERR_BADOPTION, r.status, nil)
		}
	}
	// PROXY gives a ticket for another service, never a TGT (RFC 4120 §2.5: "a
	// new ticket (but not a ticket-granting ticket)"); MIT answers BADOPTION.
	if isSet(opts, flags.Proxy) && isTGSName(wireName(tr.req.Body.SName, tr.req.Body.Realm)) {
		return kerr(errorcode.KDC_ERR_BADOPTION, "PROXY_TGT_REFUSED", errors.New("PROXY may not ask for a ticket-granting ticket"))
	}
	tr.renew = isSet(opts, flags.Renew) || isSet(opts, flags.Validate)
	// RENEW and VALIDATE reissue the presented ticket: the request must name its
	// server, or a TGT could be turned into a service ticket that keeps INITIAL
	// (Heimdal answers the same KDC_ERR_SERVER_NOMATCH).
	if tr.renew && !wireName(tr.req.Body.SName, tr.req.Body.Realm).Equal(wireName(tr.apreq.Ticket.SName, tr.apreq.Ticket.Realm)) {
		return kerr(errorcode.KDC_ERR_SERVER_NOMATCH, "SERVER_NOMATCH", errors.New("RENEW/VALIDATE must name the presented ticket's server"))
	}
	if isSet(opts, flags.Renew) && !tr.tgt.RenewTill.IsZero() && tr.now.After(tr.tgt.RenewTill) {
		return kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "RENEW_TILL_PASSED", nil)
	}
	if isSet(opts, flags.Validate) && tr.tgt.StartTime.After(tr.now.Add(k.skew)) {
		return kerr(errorcode.KRB_AP_ERR_TKT_NYV, "TICKET_NOT_YET_VALID", nil)
	}
	// An invalid (postdated) ticket is good for nothing but validation.
	if !isSet(opts, flags.Validate) && types.IsFlagSet(&tr.tgt.Flags, flags.Invalid) {
		return kerr(errorcode.KRB_AP_ERR_TKT_NYV, "TICKET_NOT_VALID", nil)
	}
	return nil
}

// isTGSName reports whether n names a ticket-granting service (krbtgt/...).
func isTGSName(n principal.Name) bool {
	return len(n.Components) == 2 && n.Components[0] == "krbtgt"
}

// lookupServer finds the requested service, ignoring the name type (RFC 4120 §6.2).
func (k *KDC) lookupServer(ctx context.Context, tr *tgsRequest) error {
	b := tr.req.Body
	// A realm we do not serve gets a cross-realm TGT if we trust it, else it
	// is an unknown server: KDC_ERR_WRONG_REALM is the referral code of RFC
	// 6806 and would send referral-following clients chasing a referral we
	// did not mean.
	if b.Realm != k.realm {
		return k.lookupOtherRealm(ctx, tr)
	}
	tr.sname = wireName(b.SName, b.Realm)
	rec, err := k.lookup(ctx, tr.sname)
	if err != nil {
		if errors.Is(err, principal.ErrNotFound) {
			if ok, rerr := k.lookupReferral(ctx, tr); ok || rerr != nil {
				return rerr
			}
			return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "LOOKING_UP_SERVER", nil)
		}
		return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	if err := checkServerRecord(rec, tr); err != nil {
		return err
	}
	tr.server = rec
	if n, changed := canonicalName(b.SName, rec, b.KDCOptions, false); changed {
		tr.canonSName = n
	}
	// S4U and user-to-user are checked once the server is known (s4u.go).
	return k.checkDelegation(ctx, tr)
}

// checkServerRecord refuses a disabled or expired service.
func checkServerRecord(rec *principal.Record, tr *tgsRequest) error {
	switch {
	case rec.Disabled:
		return kerr(errorcode.KDC_ERR_POLICY, "SERVER_DISABLED", nil)
	case !rec.Expires.IsZero() && !tr.now.Before(rec.Expires):
		return kerr(errorcode.KDC_ERR_SERVICE_EXP, "SERVER_EXPIRED", nil)
	}
	return nil
}

// lookupClient finds the TGT's client, for TGTs of our own realm: a principal
// deleted, disabled or expired since it logged in gets no more tickets
// (Heimdal: "Client no longer in database"; MIT refuses disabled and expired
// clients the same way). It is a read of the store's in-memory record.
func (k *KDC) lookupClient(ctx context.Context, tr *tgsRequest) error {
	if tr.client.Realm != k.realm || tr.foreignTGT(k) {
		// A client of another realm is not in our database; the way it came
		// is checked instead (crossrealm.go).
		return k.checkForeignClient(tr)
	}
	c, err := k.lookup(ctx, tr.client)
	switch {
	case errors.Is(err, principal.ErrNotFound):
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_NOT_FOUND", errors.New("client no longer in database"))
	case err != nil:
		return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	case c.Disabled:
		return kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "CLIENT_DISABLED", nil)
	case !c.Expires.IsZero() && !tr.now.Before(c.Expires):
		return kerr(errorcode.KDC_ERR_NAME_EXP, "CLIENT_EXPIRED", nil)
	}
	return nil
}

// issueTGS makes the service ticket and the TGS-REP (RFC 4120 §3.3.3, §5.4.2).
func (k *KDC) issueTGS(tr *tgsRequest, issued *issue) ([]byte, error) {
	b := tr.req.Body
	tgt := tr.tgt
	var lt lifetimes
	if tr.renew {
		var err error
		if lt, err = k.reissueTimes(tr); err != nil {
			return nil, err
		}
	} else {
		lim := k.lifeLimits(tr.server)
		lim.endLimit = minTime(unlimited(lim.endLimit), tgt.EndTime)
		lim.renewLimit = minTime(unlimited(lim.renewLimit), unlimited(tgt.RenewTill))
		lim.canRenew = lim.canRenew && types.IsFlagSet(&tgt.Flags, flags.Renewable)
		lim.canPostdate = types.IsFlagSet(&tgt.Flags, flags.MayPostDate)
		var err error
		if lt, err = k.computeTimes(timesOf(b.KDCOptions, b.From, b.Till, b.RTime), tr.now, lim); err != nil {
			return nil, err
		}
	}

	sessEtype, ok := selectEtype(b.EType, hasKeyOf(tr.server))
	if !ok {
		return nil, kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "BAD_ENCRYPTION_TYPE", fmt.Errorf("no requested enctype is supported by %s", tr.sname))
	}
	session, err := principal.RandomKey(sessEtype)
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "RANDOM_FAILED", err)
	}

	tktFlags := k.tgsFlags(tr, lt)
	if tr.server.Delegation.OKAsDelegate {
		types.SetFlag(&tktFlags, flags.OKAsDelegate) // RFC 4120 §2.8
	}
	k.crossRealmFlags(tr, &tktFlags)
	authData, err := k.tgsAuthData(tr)
	if err != nil {
		return nil, err
	}
	skey, err := serviceKey(tr.server)
	if err != nil {
		return nil, err
	}
	part := messages.EncTicketPart{
		Flags:             tktFlags,
		Key:               session,
		CRealm:            tgt.CRealm,
		CName:             tgt.CName,
		Transited:         tr.transitedFor(),
		AuthTime:          tgt.AuthTime,
		StartTime:         lt.start,
		EndTime:           lt.end,
		CAddr:             tgt.CAddr,
		AuthorizationData: authData,
	}
	if lt.renewable {
		part.RenewTill = lt.renewTill
	}
	if isSet(b.KDCOptions, flags.Forwarded) || isSet(b.KDCOptions, flags.Proxy) {
		part.CAddr = b.Addresses
	}
	var sealKey *types.EncryptionKey // nil: the server's key
	if tr.deleg != nil {
		sealKey = k.delegIssue(tr, &part)
	}
	sname := b.SName
	if len(tr.canonSName.NameString) > 0 {
		sname = tr.canonSName // an alias gives way to the canonical name (RFC 6806 §6)
	}
	if tr.xr != nil && len(tr.xr.replySName.NameString) > 0 {
		sname = tr.xr.replySName // a referral names the cross-realm TGT
	}
	var tkt messages.Ticket
	if sealKey != nil {
		// User-to-user: the second ticket's session key, kvno 0 (RFC 4120 §3.3.3).
		tkt, err = ticket.SealTicket(k.realm, sname, part, *sealKey, 0)
		skey = principal.Key{Etype: sealKey.KeyType}
	} else {
		tkt, err = k.keys.SealTicket(k.realm, sname, part, skey.EncryptionKey(), int(skey.KVNO))
	}
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}

	// Starttime is always sent: MIT clients otherwise take authtime (the TGT's)
	// and fail with "Clock skew too great in KDC reply" once it is 5 minutes old.
	encPart := messages.EncKDCRepPart{
		Key: session, Nonce: b.Nonce, Flags: part.Flags,
		AuthTime: part.AuthTime, StartTime: lt.start, EndTime: part.EndTime,
		SRealm: k.realm, SName: sname, CAddr: part.CAddr,
	}
	if lt.renewable {
		encPart.RenewTill = part.RenewTill
	}
	// The reply is sealed in the authenticator subkey (usage 9) when there is
	// one, else in the TGT session key (usage 8) (RFC 4120 §3.3.3).
	replyKey, usage := tgt.Key, uint32(keyusage.TGS_REP_ENCPART_SESSION_KEY)
	if len(tr.auth.SubKey.KeyValue) > 0 {
		replyKey, usage = tr.auth.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY
	}
	var padata types.PADataSequence
	if tr.deleg != nil && tr.deleg.x509 != nil {
		var err error
		if padata, err = k.s4uReplyPA(tr); err != nil {
			return nil, err
		}
	}
	if tr.fast != nil {
		// The reply's padata moves inside the armor (RFC 6113 §5.4.3).
		var err error
		if padata, replyKey, err = k.fastReply(tr.fast, tkt, part.CRealm, part.CName, b.Nonce, padata, replyKey, true); err != nil {
			return nil, err
		}
	}
	rep := ticket.Reply{
		MsgType: msgtype.KRB_TGS_REP,
		PAData:  padata,
		CRealm:  part.CRealm, CName: part.CName,
		Ticket: tkt, Part: encPart,
		Key: replyKey, Usage: usage, Session: &tr.keys,
	}
	out, err := rep.Marshal()
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	*issued = issue{what: "ticket", ticketEtype: skey.Etype, kvno: skey.KVNO, sessionEtype: session.KeyType}
	switch {
	case isSet(b.KDCOptions, flags.Renew):
		issued.what = "renewed"
	case isSet(b.KDCOptions, flags.Validate):
		issued.what = "validated"
	case tr.xr != nil && tr.xr.referral != "":
		issued.what = "cross-realm TGT"
	}
	return out, nil
}

// reissueTimes gives a renewed or validated ticket its times: RENEW starts it now
// with the old lifetime, capped by renew-till; VALIDATE keeps the times (RFC 4120
// §3.3.3).
func (k *KDC) reissueTimes(tr *tgsRequest) (lifetimes, error) {
	tgt := tr.tgt
	lt := lifetimes{start: tgt.StartTime, end: tgt.EndTime, renewTill: tgt.RenewTill,
		renewable: types.IsFlagSet(&tgt.Flags, flags.Renewable)}
	if lt.start.IsZero() {
		lt.start = tgt.AuthTime
	}
	if isSet(tr.req.Body.KDCOptions, flags.Renew) {
		life := tgt.EndTime.Sub(lt.start)
		lt.start = tr.now
		lt.end = minTime(tr.now.Add(life), tgt.RenewTill)
	}
	return lt, nil
}

// tgsFlags computes the new ticket's flags: options the TGT allows, flags copied
// from the TGT, and the lifetime outcome.
func (k *KDC) tgsFlags(tr *tgsRequest, lt lifetimes) asn1.BitString {
	opts, tgt := tr.req.Body.KDCOptions, tr.tgt
	var f []int
	if tr.renew {
		// A renewed or validated ticket keeps the TGT's flags, less INVALID.
		for i := 0; i < 32; i++ {
			if i != flags.Invalid && types.IsFlagSet(&tgt.Flags, i) {
				f = append(f, i)
			}
		}
		return ticket.Flags(f...)
	}
	// OPTS2FLAGS, then clear what the TGT does not allow (RFC 4120 §2.6; FORWARDED,
	// PROXY and ALLOW-POSTDATE were already refused by tgsOptionRules).
	for _, o := range []int{flags.Forwardable, flags.Proxiable, flags.AllowPostDate, flags.Forwarded, flags.Proxy} {
		if isSet(opts, o) {
			f = append(f, o)
		}
	}
	for _, fl := range []int{flags.Forwardable, flags.Proxiable} {
		if !types.IsFlagSet(&tgt.Flags, fl) {
			f = without(f, fl)
		}
	}
	for _, c := range tgsCopiedFlags {
		if types.IsFlagSet(&tgt.Flags, c) {
			f = append(f, c)
		}
	}
	if lt.postdated {
		f = append(f, flags.PostDated, flags.Invalid)
	}
	if lt.renewable {
		f = append(f, flags.Renewable)
	}
	return ticket.Flags(f...)
}

// tgsAuthData copies the TGT's authorization data and appends the request's
// enc-authorization-data, decrypted with the subkey (usage 5) or the session key
// (usage 4) (RFC 4120 §5.4.1).
func (k *KDC) tgsAuthData(tr *tgsRequest) (types.AuthorizationData, error) {
	ad := append(types.AuthorizationData(nil), tr.tgt.AuthorizationData...)
	ed := tr.req.Body.EncAuthData
	if len(ed.Cipher) == 0 {
		return ad, nil
	}
	key, usage := tr.tgt.Key, uint32(keyusage.TGS_REQ_KDC_REQ_BODY_AUTHDATA_SESSION_KEY)
	if len(tr.auth.SubKey.KeyValue) > 0 {
		key, usage = tr.auth.SubKey, keyusage.TGS_REQ_KDC_REQ_BODY_AUTHDATA_SUB_KEY
	}
	plain, err := tr.keys.Decrypt(ed, key, usage)
	if err != nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "AUTHDATA_DECRYPT_FAILED", err)
	}
	extra, err := der.DecodeAuthorizationData(plain)
	if err != nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "BAD_AUTHDATA", err)
	}
	return append(ad, extra...), nil
}

func without(f []int, bit int) []int {
	out := f[:0]
	for _, b := range f {
		if b != bit {
			out = append(out, b)
		}
	}
	return out
}
