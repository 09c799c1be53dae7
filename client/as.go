package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// maxASRounds bounds the AS-REQs of one exchange: the first try, the pre-authenticated retry, and one more in
// case the KDC sends fresh ETYPE-INFO2 with a second PREAUTH_REQUIRED.
const maxASRounds = 3

// ASRequest says who asks for initial credentials and with which secret. Ticket options (lifetimes,
// forwardable, proxiable, enctypes) come from the Client's Config.
type ASRequest struct {
	// Client is the client principal (cname and realm of the request).
	Client principal.Name
	// Secret is the client's password or keytab.
	Secret Secret
	// Server is the requested service; the zero value means krbtgt/REALM@REALM of the client's realm.
	Server principal.Name
	// StartTime, when set, is the requested start (kinit -s): the request carries from = StartTime and the
	// lifetimes count from it [RFC 4120 §5.4.1]. A start after the current time asks for a postdated ticket
	// (options POSTDATED and ALLOW-POSTDATE, RFC 4120 §2.4), which the KDC issues INVALID: validate it once it
	// starts (TGSRequest.Validate). A start in the past is sent as it is, as kinit does, and a till that has
	// passed with it gets KDC_ERR_NEVER_VALID. The zero value means a ticket valid from now.
	StartTime time.Time
}

// ASResult is the outcome of a successful AS exchange.
type ASResult struct {
	// Credential is the new ticket with its session key, times and flags, ready for a credential cache.
	Credential ticket.Credential
	// KDCOffset is the KDC's clock minus the local clock, learned from the reply's authtime (what MIT stores
	// in the ccache header with kdc_timesync). Offsets under one second are reported as zero.
	KDCOffset time.Duration
	// Reply tells which KDC answered the final request, over which transport, after which attempts.
	Reply *Reply
	// Preauthenticated is true when PA-ENC-TIMESTAMP was sent.
	Preauthenticated bool
	// ReplyEtype is the enctype of the AS-REP enc-part (the client key used).
	ReplyEtype int32
}

// asState is the state of one AS exchange, owned by Login and passed to each step.
type asState struct {
	// Fixed for the whole exchange.
	req            ASRequest
	client, server principal.Name
	etypes         []int32 // requested enctypes, preference order
	lifetime       time.Duration
	renew          time.Duration // 0: ask for renewable-ok only
	forwardable    bool
	proxiable      bool

	// Learned from the KDC.
	offset    time.Duration          // KDC time minus local time, from a KRB-ERROR's stime/susec
	hint      *types.ETypeInfo2Entry // chosen ETYPE-INFO2 entry from METHOD-DATA
	cookie    []byte                 // PA-FX-COOKIE to echo, if any
	preauth   bool                   // PA-ENC-TIMESTAMP is to be sent
	preKey    types.EncryptionKey    // key used for PA-ENC-TIMESTAMP
	lastError *messages.KRBError     // the last KRB-ERROR received

	// Per request (set by buildASReq).
	round int
	sent  []byte // the AS-REQ as sent: what the KDC's PA-REQ-ENC-PA-REP checksum must cover [RFC 6806 §11]
	nonce int
	from  time.Time // zero unless postdating
	till  time.Time
	rtime time.Time
}

// Login runs the AS exchange [RFC 4120 §3.1] for r.Client and returns the ticket (a TGT unless r.Server names
// another service). The steps are: build the AS-REQ (buildASReq), send it (kdcExchange), then either handle a
// KRB-ERROR (handleASError: on KDC_ERR_PREAUTH_REQUIRED derive the key from ETYPE-INFO2 and retry with
// PA-ENC-TIMESTAMP) or verify the AS-REP (verifyASRep). KDC errors are returned as *KDCError.
func (c *Client) Login(ctx context.Context, r ASRequest) (*ASResult, error) {
	st, err := c.newASState(r)
	if err != nil {
		return nil, err
	}
	for st.round = 1; st.round <= maxASRounds; st.round++ {
		req, err := c.buildASReq(st)
		if err != nil {
			return nil, err
		}
		rep, received, ke, err := c.kdcExchange(ctx, st.client.Realm, "AS-REQ", "AS-REP", st.round, req)
		if err != nil {
			return nil, err
		}
		if ke != nil {
			if err := c.handleASError(st, ke, received); err != nil {
				return nil, err
			}
			continue
		}
		res, err := c.verifyASRep(st, rep.Data, received)
		if err != nil {
			return nil, err
		}
		res.Reply = rep
		return res, nil
	}
	if st.lastError != nil {
		return nil, fmt.Errorf("client: giving up after %d AS-REQs: %w", maxASRounds,
			kdcErrorFrom(st.lastError, st.client.String(), st.server.String()))
	}
	return nil, fmt.Errorf("client: giving up after %d AS-REQs", maxASRounds)
}

// newASState checks the request and fixes the parameters that stay the same for every AS-REQ of the exchange.
func (c *Client) newASState(r ASRequest) (*asState, error) {
	if c.Config == nil {
		return nil, errors.New("client: Client has no Config (use client.New)")
	}
	if r.Client.Realm == "" || len(r.Client.Components) == 0 {
		return nil, errors.New("client: AS request without a client principal")
	}
	if !r.Secret.valid() {
		return nil, errors.New("client: AS request without a password or keytab")
	}
	server := r.Server
	if server.Realm == "" && len(server.Components) == 0 {
		server = TGSPrincipal(r.Client.Realm)
	}
	if server.Realm != r.Client.Realm {
		return nil, fmt.Errorf("client: AS request for %s from realm %s: the AS exchange stays in the client's realm", server, r.Client.Realm)
	}
	etypes := r.Secret.etypes(r.Client, c.Config.Etypes)
	if len(etypes) == 0 {
		if r.Secret.keytab != nil {
			return nil, fmt.Errorf("client: keytab has no key for %s of a configured enctype", r.Client)
		}
		return nil, errors.New("client: no supported enctype configured")
	}
	return &asState{
		req: r, client: r.Client, server: server, etypes: etypes,
		lifetime: c.Config.TicketLifetime, renew: c.Config.RenewLifetime,
		forwardable: c.Config.Forwardable, proxiable: c.Config.Proxiable,
	}, nil
}

// buildASReq builds the DER AS-REQ for the current round [RFC 4120 §3.1.1, §5.4.1]: kdc-options from the
// configuration (forwardable, proxiable, renewable with rtime when a renewable life is asked, renewable-ok
// otherwise, like MIT kinit), till = now + lifetime on the KDC's clock as far as known, a fresh nonce for every
// request, the enctypes in preference order, no addresses, and PA-ENC-TIMESTAMP once the KDC asked for it.
func (c *Client) buildASReq(st *asState) ([]byte, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	now := c.clock().Add(st.offset).UTC()
	st.nonce = nonce
	// Lifetimes count from the start: now, or the requested start time [RFC 4120 §5.4.1 from].
	start := now
	st.from = time.Time{}
	postdated := false
	if !st.req.StartTime.IsZero() {
		st.from = st.req.StartTime.Add(st.offset).UTC().Truncate(time.Second)
		start = st.from
		postdated = st.req.StartTime.After(c.clock())
	}
	st.till = start.Add(st.lifetime).Truncate(time.Second)
	st.rtime = time.Time{}

	opts := types.NewKrbFlags()
	if st.forwardable {
		types.SetFlag(&opts, flags.Forwardable)
	}
	if st.proxiable {
		types.SetFlag(&opts, flags.Proxiable)
	}
	if postdated {
		types.SetFlag(&opts, flags.AllowPostDate)
		types.SetFlag(&opts, flags.PostDated)
	}
	if st.renew > 0 {
		types.SetFlag(&opts, flags.Renewable)
		st.rtime = start.Add(st.renew).Truncate(time.Second)
	} else {
		types.SetFlag(&opts, flags.RenewableOK)
	}

	var padata types.PADataSequence
	if st.cookie != nil {
		// RFC 6113 §5.2: a client echoes the KDC's cookie; harmless for KDCs that do not use FAST.
		padata = append(padata, types.PAData{PADataType: patype.PA_FX_COOKIE, PADataValue: st.cookie})
	}
	if st.preauth {
		pa, err := encTimestamp(st.preKey, now)
		if err != nil {
			return nil, err
		}
		padata = append(padata, pa)
	}
	// Ask the KDC to checksum this request into the reply [RFC 6806 §11], as MIT and Heimdal kinit do.
	padata = append(padata, types.PAData{PADataType: patype.PA_REQ_ENC_PA_REP, PADataValue: []byte{}})
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_AS_REQ,
		PAData:  padata,
		ReqBody: messages.KDCReqBody{
			KDCOptions: opts,
			CName:      st.client.PrincipalName(),
			Realm:      st.client.Realm,
			SName:      st.server.PrincipalName(),
			From:       st.from,
			Till:       st.till,
			RTime:      st.rtime,
			Nonce:      nonce,
			EType:      st.etypes,
		},
	}}
	b, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: encode AS-REQ: %w", err)
	}
	st.sent = b
	return b, nil
}

// newNonce returns a random 31-bit nonce (non-negative, so every implementation reads it the same way).
func newNonce() (int, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("client: nonce: %w", err)
	}
	return int(binary.BigEndian.Uint32(b[:]) & 0x7fffffff), nil
}

// encTimestamp builds PA-ENC-TIMESTAMP [RFC 4120 §5.2.7.2]: PA-ENC-TS-ENC {patimestamp, pausec} encrypted in the
// client key with key usage 1.
func encTimestamp(key types.EncryptionKey, now time.Time) (types.PAData, error) {
	ts := types.PAEncTSEnc{PATimestamp: now.UTC().Truncate(time.Second), PAUSec: now.Nanosecond() / 1000}
	plain, err := asn1.Marshal(ts)
	if err != nil {
		return types.PAData{}, fmt.Errorf("client: encode PA-ENC-TS-ENC: %w", err)
	}
	ed, err := crypto.GetEncryptedData(plain, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 0)
	if err != nil {
		return types.PAData{}, fmt.Errorf("client: encrypt PA-ENC-TIMESTAMP with %s: %w", principal.EnctypeName(key.KeyType), err)
	}
	b, err := ed.Marshal()
	if err != nil {
		return types.PAData{}, fmt.Errorf("client: encode PA-ENC-TIMESTAMP: %w", err)
	}
	return types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: b}, nil
}

// handleASError processes a KRB-ERROR answer [RFC 4120 §3.1.3, §5.9.1]. KDC_ERR_PREAUTH_REQUIRED with METHOD-DATA
// that offers PA-ENC-TIMESTAMP prepares the next round (KDC time offset from stime/susec, key from ETYPE-INFO2)
// and returns nil; every other error, and a second PREAUTH_REQUIRED without new information, is returned as a
// *KDCError.
func (c *Client) handleASError(st *asState, ke *messages.KRBError, received time.Time) error {
	st.lastError = ke
	kerr := kdcErrorFrom(ke, st.client.String(), st.server.String())
	if ke.ErrorCode != errorcode.KDC_ERR_PREAUTH_REQUIRED {
		return kerr
	}
	if len(ke.EData) == 0 {
		// MIT gives up here too: without METHOD-DATA there is nothing to retry with.
		return kerr
	}
	var md types.PADataSequence
	if err := unmarshalSafe(func() error { return md.Unmarshal(ke.EData) }); err != nil {
		return fmt.Errorf("client: PREAUTH_REQUIRED with undecodable METHOD-DATA: %w", err)
	}
	if !md.Contains(patype.PA_ENC_TIMESTAMP) {
		return fmt.Errorf("client: the KDC offers no pre-authentication method this client supports (METHOD-DATA %v): %w",
			padataTypes(md), kerr)
	}
	if !ke.STime.IsZero() {
		kdcNow := ke.STime.Add(time.Duration(ke.Susec) * time.Microsecond)
		st.offset = roundOffset(kdcNow.Sub(received))
	}
	st.cookie = nil
	for _, pa := range md {
		if pa.PADataType == patype.PA_FX_COOKIE {
			st.cookie = pa.PADataValue
		}
	}
	hint, err := chooseEtypeInfo(md, st.etypes)
	if err != nil {
		return err
	}
	if hint == nil {
		// No ETYPE-INFO2 and no ETYPE-INFO: first requested enctype, default salt [RFC 4120 §3.1.3].
		hint = &types.ETypeInfo2Entry{EType: st.etypes[0]}
	}
	key, err := st.req.Secret.key(st.client, hint.EType, hint.Salt, hint.S2KParams)
	if err != nil {
		return err
	}
	if st.preauth && sameHint(st.hint, hint) {
		// Pre-authenticated already with the same key and asked again: retrying cannot help.
		return kerr
	}
	st.hint, st.preKey, st.preauth = hint, key, true
	return nil
}

// chooseEtypeInfo picks the KDC's salt hint [RFC 4120 §5.2.7.4, §5.2.7.5]: the first ETYPE-INFO2 entry whose
// enctype was requested, else the first such ETYPE-INFO entry; nil when the KDC sent neither.
func chooseEtypeInfo(md types.PADataSequence, etypes []int32) (*types.ETypeInfo2Entry, error) {
	for _, pa := range md {
		if pa.PADataType != patype.PA_ETYPE_INFO2 {
			continue
		}
		var info types.ETypeInfo2
		if err := unmarshalSafe(func() error { return info.Unmarshal(pa.PADataValue) }); err != nil {
			return nil, fmt.Errorf("client: undecodable PA-ETYPE-INFO2: %w", err)
		}
		for _, e := range info {
			if slices.Contains(etypes, e.EType) {
				return &e, nil
			}
		}
		return nil, fmt.Errorf("client: PA-ETYPE-INFO2 offers no requested enctype: %w",
			&KDCError{Code: errorcode.KDC_ERR_ETYPE_NOSUPP, Local: true})
	}
	for _, pa := range md {
		if pa.PADataType != patype.PA_ETYPE_INFO {
			continue
		}
		var info types.ETypeInfo
		if err := unmarshalSafe(func() error { return info.Unmarshal(pa.PADataValue) }); err != nil {
			return nil, fmt.Errorf("client: undecodable PA-ETYPE-INFO: %w", err)
		}
		for _, e := range info {
			if slices.Contains(etypes, e.EType) {
				return &types.ETypeInfo2Entry{EType: e.EType, Salt: string(e.Salt)}, nil
			}
		}
	}
	return nil, nil
}

// verifyASRep decodes and checks the AS-REP [RFC 4120 §3.1.5] and builds the credential: cname/crealm as
// requested, enc-part enctype among those requested, enc-part decrypted with the client key (key usage 3),
// nonce echoed, enc-part sname == ticket sname == requested sname (and realms), endtime <= till, renew-till
// within what was asked.
func (c *Client) verifyASRep(st *asState, b []byte, received time.Time) (*ASResult, error) {
	rep, tkt, err := decodeKDCRep(b, "AS-REP", asnAppTag.ASREP, msgtype.KRB_AS_REP, st.client)
	if err != nil {
		return nil, err
	}
	etype := rep.EncPart.EType
	if !slices.Contains(st.etypes, etype) {
		return nil, fmt.Errorf("client: AS-REP enc-part uses %s, which was not requested: %w", principal.EnctypeName(etype), ErrReplyMismatch)
	}

	key, err := c.replyKey(st, rep.PAData, etype)
	if err != nil {
		return nil, err
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, key, keyusage.AS_REP_ENCPART)
	if err != nil {
		return nil, fmt.Errorf("client: AS-REP enc-part does not decrypt with the %s key of %s: %w", principal.EnctypeName(etype), st.client,
			&KDCError{Code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, Local: true, Client: st.client.String(), Server: st.server.String()})
	}
	var enc messages.EncKDCRepPart
	// gokrb5 accepts EncASRepPart [APPLICATION 25] and, as MIT's KDC sends, EncTGSRepPart [APPLICATION 26].
	if err := unmarshalSafe(func() error { return enc.Unmarshal(plain) }); err != nil {
		return nil, fmt.Errorf("client: undecodable AS-REP enc-part: %w", err)
	}
	if err := checkASRepPart(st, &enc, tkt); err != nil {
		return nil, err
	}
	if err := checkEncPARep(st, &enc, key); err != nil {
		return nil, err
	}
	return &ASResult{
		Credential:       replyCredential(principal.FromPrincipalName(rep.CName, rep.CRealm), &enc, rep.Ticket.Bytes),
		KDCOffset:        roundOffset(enc.AuthTime.Sub(received)),
		Preauthenticated: st.preauth,
		ReplyEtype:       etype,
	}, nil
}

// checkASRepPart compares the decrypted enc-part and the ticket with the request [RFC 4120 §3.1.5].
func checkASRepPart(st *asState, enc *messages.EncKDCRepPart, tkt *messages.Ticket) error {
	mismatch := replyMismatch("AS-REP")
	if enc.Nonce != st.nonce {
		return mismatch("nonce %d does not match the request's %d", enc.Nonce, st.nonce)
	}
	if !enc.SName.Equal(st.server.PrincipalName()) || enc.SRealm != st.server.Realm {
		return mismatch("enc-part is for server %s, not %s", principal.FromPrincipalName(enc.SName, enc.SRealm), st.server)
	}
	if !tkt.SName.Equal(st.server.PrincipalName()) || tkt.Realm != st.server.Realm {
		return mismatch("ticket is for server %s, not %s", principal.FromPrincipalName(tkt.SName, tkt.Realm), st.server)
	}
	if enc.EndTime.IsZero() || enc.AuthTime.IsZero() {
		return mismatch("enc-part lacks authtime or endtime")
	}
	if err := checkReplyEndTime(enc, st.till, mismatch); err != nil {
		return err
	}
	// A postdated ticket must start when asked (MIT's verify_as_reply checks the same).
	if !st.from.IsZero() && st.from.After(enc.AuthTime) && !enc.StartTime.Equal(st.from) {
		return mismatch("starttime %v is not the requested postdated start %v", enc.StartTime.UTC(), st.from)
	}
	if ticket.FlagsFromBitString(enc.Flags)&ticket.FlagRenewable != 0 {
		limit := st.rtime
		if st.renew == 0 {
			// Granted through renewable-ok: the renewable life may only reach the requested till.
			limit = st.till
		}
		if enc.RenewTill.After(limit) {
			return mismatch("renew-till %v is after the requested %v", enc.RenewTill.UTC(), limit)
		}
	}
	return checkReplyKey(enc, mismatch)
}

// checkEncPARep is the client's side of RFC 6806 §11. The AS-REQ asked (an empty PA-REQ-ENC-PA-REP), so an
// AS-REP with the flag enc-pa-rep must carry, in its encrypted-pa-data, the KDC's checksum over that request
// exactly as sent: the required checksum type of the reply key's enctype (for the AES enctypes; for others, what
// gokrb5 verifies with that key), in the reply key, key usage 56. It shows
// that nothing the request carried in the clear (the enctypes offered, the padata) was changed on the way. A reply
// without the flag comes from a KDC that does not do this, and is not refused for it (MIT's client does the same).
func checkEncPARep(st *asState, enc *messages.EncKDCRepPart, key types.EncryptionKey) error {
	if ticket.FlagsFromBitString(enc.Flags)&ticket.FlagEncPARep == 0 {
		return nil
	}
	mismatch := replyMismatch("AS-REP")
	v, ok := ticket.PAValue(enc.EncPAData, patype.PA_REQ_ENC_PA_REP)
	if !ok {
		return mismatch("has the flag enc-pa-rep but no PA-REQ-ENC-PA-REP (RFC 6806 §11)")
	}
	var ck types.PAReqEncPARep
	if err := unmarshalSafe(func() error { return ck.Unmarshal(v) }); err != nil {
		return mismatch("PA-REQ-ENC-PA-REP does not decode")
	}
	if want := ticket.MandatoryChecksum(key.KeyType); want != 0 && ck.ChksumType != want {
		return mismatch("PA-REQ-ENC-PA-REP is a checksum of type %d, not %d, the type of the reply key's enctype", ck.ChksumType, want)
	}
	et, err := crypto.GetChksumEtype(ck.ChksumType)
	if err != nil || !et.VerifyChecksum(key.KeyValue, st.sent, ck.Chksum, keyusage.KEY_USAGE_AS_REQ) {
		return mismatch("PA-REQ-ENC-PA-REP does not verify over the AS-REQ as sent: the request was changed on the way (RFC 6806 §11)")
	}
	return nil
}

// replyKey returns the client key that decrypts the AS-REP enc-part of enctype etype: with a keytab the entry of
// that enctype; with a password the key salted as the AS-REP's own PA-ETYPE-INFO2 says, else as the
// PREAUTH_REQUIRED hint said (reusing the pre-authentication key), else with the default salt.
func (c *Client) replyKey(st *asState, padata types.PADataSequence, etype int32) (types.EncryptionKey, error) {
	var hint *types.ETypeInfo2Entry
	if h, err := chooseEtypeInfo(padata, []int32{etype}); err == nil && h != nil {
		hint = h
	} else if st.hint != nil && st.hint.EType == etype {
		hint = st.hint
	}
	if st.preauth && sameHint(hint, st.hint) && st.preKey.KeyType == etype {
		return st.preKey, nil
	}
	if hint == nil {
		hint = &types.ETypeInfo2Entry{EType: etype}
	}
	return st.req.Secret.key(st.client, etype, hint.Salt, hint.S2KParams)
}

// sameHint reports whether two salt hints derive the same key from a password.
func sameHint(a, b *types.ETypeInfo2Entry) bool {
	return a != nil && b != nil && a.EType == b.EType && a.Salt == b.Salt && slices.Equal(a.S2KParams, b.S2KParams)
}

// decodeKRBError decodes a KRB-ERROR [RFC 4120 §5.9.1] with gokrb5's type, without letting a gokrb5 error or
// panic through.
func decodeKRBError(b []byte) (*messages.KRBError, error) {
	var ke messages.KRBError
	if err := unmarshalSafe(func() error { return ke.Unmarshal(b) }); err != nil {
		return nil, fmt.Errorf("client: undecodable KRB-ERROR: %w", err)
	}
	return &ke, nil
}

// errUndecodable is returned for bytes that do not decode as the expected ASN.1.
var errUndecodable = errors.New("ASN.1 decoding failed")

// unmarshalSafe runs a gokrb5/gofork decoder, turning panics (seen on hostile input) into errors and
// gokrb5's krberror values into a plain error that keeps only their text.
func unmarshalSafe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errUndecodable, r)
		}
	}()
	if e := f(); e != nil {
		return fmt.Errorf("%w: %s", errUndecodable, e.Error())
	}
	return nil
}

// roundOffset treats clock offsets under two seconds as zero. authtime has one-second resolution and is
// stamped before the reply travels, so with equal clocks authtime − arrival lies anywhere in (−1 s − rtt, 0]:
// a one-second threshold would record a false −1 s whenever a reply crosses a second boundary, and every
// authenticator would then be dated a second early.
func roundOffset(d time.Duration) time.Duration {
	if d > -2*time.Second && d < 2*time.Second {
		return 0
	}
	return d.Round(time.Second)
}

// padataTypes lists the padata types of a sequence, for messages.
func padataTypes(pas types.PADataSequence) []int32 {
	out := make([]int32, 0, len(pas))
	for _, p := range pas {
		out = append(out, p.PADataType)
	}
	return out
}
