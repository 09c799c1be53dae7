package kdc

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// asInvalidOptions may not appear in an AS-REQ: they only make sense with a ticket
// in hand (RFC 4120 §3.1.3; MIT kdc_util.c validate_as_request).
var asInvalidOptions = []int{flags.Forwarded, flags.Proxy, flags.Validate, flags.Renew, flags.EncTktInSkey, 14 /* cname-in-addl-tkt */}

// asRequest is the state of one AS exchange, filled stage by stage.
type asRequest struct {
	req *ticket.KDCRequest
	now time.Time

	cname, sname   principal.Name    // from the request (decodeAS)
	client, server *principal.Record // from the store (lookupAS)
	replyKey       principal.Key     // client key the reply is sealed in (selectReplyKey)
	preauthed      bool              // PA-ENC-TIMESTAMP verified (checkPreauth)
	times          lifetimes         // issueAS
	session        types.EncryptionKey

	// fast is the armor of a FAST request (fast.go), nil for a plain one;
	// req is then the request inside and fast.outer the one that arrived.
	fast *fastState
	// pkt is the whole request as it arrived (outcome.pkt).
	pkt []byte

	// policy is the client's policy when it counts failures (lockout.go).
	policy *principal.Policy
}

// handleAS runs the AS exchange (RFC 4120 §3.1): decode → look up → check policy →
// pre-authenticate → issue → encode.
func (k *KDC) handleAS(ctx context.Context, req *ticket.KDCRequest, out *outcome) ([]byte, error) {
	as := &asRequest{req: req, now: k.now().UTC(), pkt: out.pkt}
	defer func() { out.armored = as.fast != nil }()
	if v, ok := req.PA(paFXFAST); ok {
		// Observed as "decode": FAST has no stage of its own (observe.go).
		if err := k.observe("AS", "decode", k.unwrapFAST(ctx, as, v)); err != nil {
			return nil, err
		}
	}
	if err := k.observe("AS", "decode", k.decodeAS(as)); err != nil {
		return nil, k.fastError(as.fast, as.req, asError(err))
	}
	out.client, out.service = as.cname.String(), as.sname.String()
	for _, step := range asSteps {
		if err := k.observe("AS", step.name, step.run(k, ctx, as)); err != nil {
			k.afterAS(as, err)
			return nil, k.fastError(as.fast, as.req, asError(err))
		}
	}
	reply, err := k.issueAS(as)
	if err = k.observe("AS", "issue", err); err != nil {
		return nil, k.fastError(as.fast, as.req, asError(err))
	}
	k.afterAS(as, nil)
	out.issued = issue{what: "reply", replyEtype: as.replyKey.Etype, sessionEtype: as.session.KeyType}
	return reply, nil
}

func (k *KDC) decodeAS(as *asRequest) error {
	b := as.req.Body
	if len(b.CName.NameString) == 0 {
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "NO_CLIENT_NAME", nil)
	}
	if len(b.SName.NameString) == 0 {
		return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "NO_SERVER_NAME", nil)
	}
	// A client of a realm we do not serve is an unknown client, as MIT answers:
	// KDC_ERR_WRONG_REALM is the referral code of RFC 6806 §6 and would send a
	// referral-following client chasing a referral we did not mean.
	if b.Realm != k.realm {
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_REALM_UNKNOWN", fmt.Errorf("request for realm %q", b.Realm))
	}
	as.cname = wireName(b.CName, b.Realm)
	as.sname = wireName(b.SName, b.Realm)
	for _, o := range asInvalidOptions {
		if isSet(b.KDCOptions, o) {
			return kerr(errorcode.KDC_ERR_BADOPTION, "BAD_OPTION", fmt.Errorf("option %d not allowed in an AS-REQ", o))
		}
	}
	return refuseUnsupportedAS(as)
}

func (k *KDC) lookupAS(ctx context.Context, as *asRequest) error {
	if err := k.lookupASClient(ctx, as); err != nil {
		return err
	}
	var err error
	if as.server, err = k.lookup(ctx, as.sname); err != nil {
		if errors.Is(err, principal.ErrNotFound) {
			return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVER_NOT_FOUND", nil)
		}
		return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	return nil
}

// checkASPolicy refuses disabled or expired principals (RFC 4120 §7.5.9 codes,
// MIT's e-text).
func (k *KDC) checkASPolicy(ctx context.Context, as *asRequest) error {
	c, s := as.client, as.server
	switch {
	case c.Disabled:
		return kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "CLIENT_DISABLED", nil)
	case !c.Expires.IsZero() && !as.now.Before(c.Expires):
		return kerr(errorcode.KDC_ERR_NAME_EXP, "CLIENT_EXPIRED", nil)
	case !c.PasswordExpires.IsZero() && !as.now.Before(c.PasswordExpires) && !isChangePW(s.Name):
		// An expired password still lets the client reach kadmin/changepw.
		return kerr(errorcode.KDC_ERR_KEY_EXPIRED, "PASSWORD_EXPIRED", nil)
	case as.fast == nil && (k.requireFAST || c.RequiresFAST):
		return fastRequired()
	case s.Disabled:
		return kerr(errorcode.KDC_ERR_POLICY, "SERVER_DISABLED", nil)
	case !s.Expires.IsZero() && !as.now.Before(s.Expires):
		return kerr(errorcode.KDC_ERR_SERVICE_EXP, "SERVER_EXPIRED", nil)
	}
	return k.checkLockout(ctx, as)
}

func isChangePW(n principal.Name) bool {
	return len(n.Components) == 2 && n.Components[0] == "kadmin" && n.Components[1] == "changepw"
}

// selectReplyKey picks the client key the reply is sealed in: the first enctype in
// the request that the client has a key for (RFC 4120 §3.1.3, MIT
// select_session_keytype); none gives KDC_ERR_ETYPE_NOSUPP.
func (k *KDC) selectReplyKey(_ context.Context, as *asRequest) error {
	e, ok := selectEtype(as.req.Body.EType, hasKeyOf(as.client))
	if !ok {
		return kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "BAD_ENCRYPTION_TYPE",
			fmt.Errorf("client asked for %v, has %v", as.req.Body.EType, as.client.Enctypes()))
	}
	as.replyKey, _ = as.client.FindKey(e, 0)
	return nil
}

// checkPreauth verifies PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2) or, when the client
// must pre-authenticate and did not, answers KDC_ERR_PREAUTH_REQUIRED with the
// METHOD-DATA real clients need: ETYPE-INFO2 then an empty PA-ENC-TIMESTAMP
// (protocol-notes §3.2: without the latter MIT kinit cannot pre-authenticate).
// Unknown padata types are ignored.
func (k *KDC) checkPreauth(_ context.Context, as *asRequest) error {
	if as.fast != nil {
		if v, ok := as.req.PA(paEncryptedChallenge); ok {
			return k.checkEncChallenge(as, v)
		}
	}
	v, ok := as.req.PA(patype.PA_ENC_TIMESTAMP)
	if !ok {
		if !as.client.RequiresPreauth {
			return nil
		}
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_REQUIRED, "NEEDED_PREAUTH", nil)
	}
	var ed types.EncryptedData
	if err := der.DecodeEncryptedData(v, &ed); err != nil {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", fmt.Errorf("PA-ENC-TIMESTAMP: %w", err))
	}
	key, ok := as.client.FindKey(ed.EType, 0)
	if !ok {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", fmt.Errorf("no %s key", principal.EnctypeName(ed.EType)))
	}
	plain, err := k.keys.Decrypt(ed, key.EncryptionKey(), keyusage.AS_REQ_PA_ENC_TIMESTAMP)
	if err != nil {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", errors.New("encrypted timestamp does not decrypt (wrong password?)"))
	}
	if err := k.checkPATimestamp(as, plain); err != nil {
		return err
	}
	as.preauthed = true
	return nil
}

// checkPATimestamp decodes the PA-ENC-TS-ENC that a pre-authentication
// (encrypted timestamp, RFC 4120 §5.2.7.2, or encrypted challenge, RFC 6113
// §5.4.6) decrypted to, and checks it is within the skew of the KDC's clock.
func (k *KDC) checkPATimestamp(as *asRequest, plain []byte) error {
	var ts types.PAEncTSEnc
	if err := der.DecodePAEncTSEnc(plain, &ts); err != nil {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", fmt.Errorf("PA-ENC-TS-ENC: %w", err))
	}
	client := ts.PATimestamp.Add(time.Duration(ts.PAUSec) * time.Microsecond)
	if d := client.Sub(as.now); d > k.skew || d < -k.skew {
		return kerr(errorcode.KRB_AP_ERR_SKEW, "PREAUTH_FAILED", fmt.Errorf("client clock off by %s", d.Round(time.Second)))
	}
	return nil
}

// preauthError answers with METHOD-DATA [ETYPE-INFO2, PA-ENC-TIMESTAMP] as e-data
// (RFC 4120 §3.1.3, §5.2.7.5). MIT kinit only retries when e-data is present.
func (k *KDC) preauthError(as *asRequest, code int32, status string, cause error) error {
	info, err := k.etypeInfo2(as, as.replyKey)
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	var md []byte
	if as.fast != nil {
		// Inside FAST: encrypted challenge instead of the timestamp, as MIT
		// offers (RFC 6113 §5.4.6); fastError adds the cookie.
		md, err = ticket.MethodData(types.PAData{PADataType: paFXFAST, PADataValue: []byte{}}, info,
			types.PAData{PADataType: paEncryptedChallenge, PADataValue: []byte{}})
	} else {
		// PA-FX-FAST (empty) says FAST is available: an MIT client with an
		// armor ccache restarts armored on seeing it (RFC 6113 §5.4.2).
		md, err = ticket.MethodData(info, types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: []byte{}},
			types.PAData{PADataType: paFXFAST, PADataValue: []byte{}})
	}
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	return &Error{Code: code, Status: status, EData: md, Cause: cause}
}

// etypeInfo2 tells the client which key to use: one entry, for the enctype the
// client prefers among the keys it has (RFC 4120 §5.2.7.5; MIT sends one entry
// with the salt spelled out).
func (k *KDC) etypeInfo2(as *asRequest, key principal.Key) (types.PAData, error) {
	salt := key.Salt
	if salt == "" {
		salt = as.client.Name.Salt()
	}
	return ticket.ETypeInfo2(types.ETypeInfo2Entry{EType: key.Etype, Salt: salt})
}

// issueAS makes the ticket and the AS-REP (RFC 4120 §3.1.3, §5.4.2).
func (k *KDC) issueAS(as *asRequest) ([]byte, error) {
	b := as.req.Body
	// An alias or enterprise name gives way to the canonical name when asked
	// (names.go; RFC 6806 §5, §6).
	cname, _ := canonicalName(b.CName, as.client, b.KDCOptions, as.cname.Type == ntEnterprise)
	sname, _ := canonicalName(b.SName, as.server, b.KDCOptions, false)
	lt, err := k.computeTimes(timesOf(b.KDCOptions, b.From, b.Till, b.RTime), as.now, k.lifeLimits(as.client, as.server))
	if err != nil {
		return nil, err
	}
	as.times = lt

	sessEtype, ok := selectEtype(b.EType, hasKeyOf(as.server))
	if !ok {
		return nil, kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "BAD_ENCRYPTION_TYPE",
			fmt.Errorf("no requested enctype is supported by %s", as.sname))
	}
	if as.session, err = principal.RandomKey(sessEtype); err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "RANDOM_FAILED", err)
	}

	tf := []int{flags.Initial}
	if as.preauthed {
		tf = append(tf, flags.PreAuthent)
	}
	for _, o := range []int{flags.Forwardable, flags.Proxiable, flags.AllowPostDate} {
		if isSet(b.KDCOptions, o) {
			tf = append(tf, o)
		}
	}
	if lt.postdated {
		tf = append(tf, flags.PostDated, flags.Invalid)
	}
	if lt.renewable {
		tf = append(tf, flags.Renewable)
	}
	if as.server.Delegation.OKAsDelegate {
		tf = append(tf, flags.OKAsDelegate) // RFC 4120 §2.8
	}
	// The client asked for the reply to authenticate its request (RFC 6806
	// §11): the reply carries the checksum, and the ticket and the reply say
	// so with enc-pa-rep. A client that sees the flag demands the checksum
	// (protocol-notes trap 3), so it is set only when the checksum is sent.
	_, encPARep := as.req.PA(patype.PA_REQ_ENC_PA_REP)
	encPARep = encPARep && len(as.pkt) > 0
	if encPARep {
		tf = append(tf, flags.EncPARep)
	}
	tktFlags := ticket.Flags(tf...)

	skey, err := serviceKey(as.server)
	if err != nil {
		return nil, err
	}
	part := messages.EncTicketPart{
		Flags:     tktFlags,
		Key:       as.session,
		CRealm:    k.realm,
		CName:     cname,
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}},
		AuthTime:  as.now,
		StartTime: lt.start,
		EndTime:   lt.end,
		CAddr:     b.Addresses,
	}
	if lt.renewable {
		part.RenewTill = lt.renewTill
	}
	tkt, err := k.keys.SealTicket(k.realm, sname, part, skey.EncryptionKey(), int(skey.KVNO))
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}

	encPart := messages.EncKDCRepPart{
		Key:       as.session,
		Nonce:     b.Nonce,
		Flags:     tktFlags,
		AuthTime:  as.now,
		StartTime: lt.start,
		EndTime:   lt.end,
		SRealm:    k.realm,
		SName:     sname,
		CAddr:     b.Addresses,
	}
	if lt.renewable {
		encPart.RenewTill = lt.renewTill
	}
	if !as.client.PasswordExpires.IsZero() {
		encPart.KeyExpiration = as.client.PasswordExpires
	}
	info, err := k.etypeInfo2(as, as.replyKey)
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	padata, replyKey, keys := types.PADataSequence{info}, as.replyKey.EncryptionKey(), k.keys
	if as.fast != nil {
		if padata, replyKey, err = k.fastReply(as.fast, tkt, k.realm, cname, b.Nonce, padata, replyKey, as.fast.kdcChallenge != nil); err != nil {
			return nil, err
		}
		if as.fast.kdcChallenge != nil {
			keys = nil // the strengthened reply key serves once
		}
	}
	if encPARep {
		if encPart.EncPAData, err = encPARepData(as.pkt, replyKey, keys); err != nil {
			return nil, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
		}
	}
	outerRealm, outerName := k.realm, cname
	if as.fast != nil && as.fast.hideClient {
		outerRealm, outerName = anonymousRealm, anonymousName
	}
	rep := ticket.Reply{
		MsgType: msgtype.KRB_AS_REP,
		PAData:  padata,
		CRealm:  outerRealm,
		CName:   outerName,
		Ticket:  tkt,
		Part:    encPart,
		Key:     replyKey,
		KVNO:    int(as.replyKey.KVNO),
		Usage:   keyusage.AS_REP_ENCPART,
		Keys:    keys, // the client's long-term key, cached
	}
	out, err := rep.Marshal()
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	return out, nil
}

// encPARepData is the encrypted-pa-data of an AS-REP to a request that sent
// PA-REQ-ENC-PA-REP (RFC 6806 §11): the keyed checksum of the reply key's
// enctype over the whole request as it arrived (for FAST, the outer request),
// and an empty PA-FX-FAST, which tells the client that FAST is available (MIT
// records it as fast_avail in the credential cache; gokrb5 requires it beside
// the checksum). keys caches the reply key's derived keys when it is the
// client's long-term key; nil means a key used once.
func encPARepData(pkt []byte, replyKey types.EncryptionKey, keys *ticket.KeyCache) (types.PADataSequence, error) {
	var (
		ct  int32
		sum []byte
		err error
	)
	if keys != nil {
		ct, sum, err = keys.Checksum(replyKey, keyusage.KEY_USAGE_AS_REQ, pkt)
	} else {
		var once ticket.SessionKeys
		ct, sum, err = once.Checksum(replyKey, keyusage.KEY_USAGE_AS_REQ, pkt)
	}
	if err != nil {
		return nil, err
	}
	return types.PADataSequence{
		{PADataType: patype.PA_REQ_ENC_PA_REP, PADataValue: der.AppendChecksum(nil, &types.Checksum{CksumType: ct, Checksum: sum})},
		{PADataType: paFXFAST, PADataValue: []byte{}},
	}, nil
}
