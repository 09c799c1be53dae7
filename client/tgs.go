package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
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

// TGSRequest asks for a service ticket with a ticket-granting ticket, or for the renewal or validation of a TGT
// [RFC 4120 §3.3]. Enctypes come from the Client's Config.
type TGSRequest struct {
	// TGT is the ticket-granting ticket krbtgt/REALM@REALM with its session key, as read from a credential cache.
	// For Renew and Validate it is the ticket to renew or validate.
	TGT ticket.Credential
	// Server is the service asked for. It is ignored (the TGT's own server is used) for Renew and Validate.
	Server principal.Name
	// Renew asks the KDC to renew TGT (KDC option renew, 30): a new ticket with starttime now, the old lifetime
	// and the same renew-till. The TGT must be renewable and its renew-till not passed.
	Renew bool
	// Validate asks the KDC to validate a postdated (invalid) TGT (KDC option validate, 31).
	Validate bool
	// Forwardable asks for a forwardable ticket; it is asked only when the TGT is forwardable.
	Forwardable bool
	// Till is the requested endtime; zero means the TGT's endtime (for Renew: its renew-till).
	Till time.Time
	// KDCOffset is the KDC's clock minus the local clock, as stored in the credential cache header; it corrects
	// the authenticator time and the reply checks.
	KDCOffset time.Duration
	// Canonicalize sets the canonicalize KDC option (15) and lets the KDC answer with a referral: a cross-realm
	// TGT krbtgt/OTHER@REALM instead of the ticket asked for [RFC 6806 §8]. ServiceTicket follows referrals.
	Canonicalize bool
}

// TGSResult is the outcome of a successful TGS exchange.
type TGSResult struct {
	// Credential is the new ticket with its session key, times and flags, ready for a credential cache.
	Credential ticket.Credential
	// KVNO is the key version number of the service key the ticket is encrypted in (Ticket enc-part kvno).
	KVNO int
	// TicketEtype is the enctype of the ticket's enc-part (the service's long-term key).
	TicketEtype int32
	// SubkeyReply is true when the reply enc-part was sealed in the authenticator subkey (key usage 9) rather
	// than in the TGT session key (usage 8).
	SubkeyReply bool
	// Reply tells which KDC answered, over which transport, after which attempts.
	Reply *Reply
}

// ErrNotRenewable is wrapped when a renewal is asked for a ticket without the renewable flag.
var ErrNotRenewable = errors.New("ticket is not renewable")

// ErrRenewExpired is wrapped when a renewal is asked after the ticket's renew-till.
var ErrRenewExpired = errors.New("renewable lifetime has ended")

// ErrNoTGT is wrapped when a credential cache holds no ticket-granting ticket for the wanted realm.
var ErrNoTGT = errors.New("no ticket-granting ticket")

// FindTGT returns the newest usable ticket-granting ticket krbtgt/realm@realm of the cache's default principal.
// realm "" means the default principal's realm. Configuration entries are skipped.
func FindTGT(cc *ticket.CCache, realm string) (ticket.Credential, error) {
	if realm == "" {
		realm = cc.DefaultPrincipal.Realm
	}
	want := TGSPrincipal(realm)
	best := -1
	for i, c := range cc.Credentials {
		if c.IsConfig() || !c.Server.Equal(want) || !c.Client.Equal(cc.DefaultPrincipal) || len(c.Key.KeyValue) == 0 {
			continue
		}
		if best < 0 || !c.EndTime.Before(cc.Credentials[best].EndTime) {
			best = i
		}
	}
	if best < 0 {
		return ticket.Credential{}, fmt.Errorf("client: %w for %s in realm %s", ErrNoTGT, cc.DefaultPrincipal, realm)
	}
	return cc.Credentials[best], nil
}

// tgsState is the state of one TGS exchange, owned by TGS and passed to each step.
type tgsState struct {
	req      TGSRequest
	client   principal.Name // the TGT's client: authenticator cname, expected reply cname
	server   principal.Name // requested service (sname and body realm)
	tgsRealm string         // realm whose KDCs are asked: the TGT's issuing realm
	etypes   []int32

	// Per request (set by buildTGSReq).
	nonce  int
	till   time.Time
	subkey types.EncryptionKey
}

// TGS runs the TGS exchange [RFC 4120 §3.3] (messages C to F): it builds a TGS-REQ whose PA-TGS-REQ carries an
// AP-REQ with the TGT and an authenticator (checksum over the request body, fresh subkey), sends it with the
// realm's KDCs, and verifies and decrypts the TGS-REP. KDC errors are returned as *KDCError.
func (c *Client) TGS(ctx context.Context, r TGSRequest) (*TGSResult, error) {
	st, err := c.newTGSState(r)
	if err != nil {
		return nil, err
	}
	req, err := c.buildTGSReq(st)
	if err != nil {
		return nil, err
	}
	rep, received, ke, err := c.kdcExchange(ctx, st.tgsRealm, "TGS-REQ", "TGS-REP", 1, req)
	if err != nil {
		return nil, err
	}
	if ke != nil {
		return nil, kdcErrorFrom(ke, st.client.String(), st.server.String())
	}
	res, err := c.verifyTGSRep(st, rep.Data, received)
	if err != nil {
		return nil, err
	}
	res.Reply = rep
	return res, nil
}

// newTGSState checks the request against the TGT and fixes what the request will ask for.
func (c *Client) newTGSState(r TGSRequest) (*tgsState, error) {
	if c.Config == nil {
		return nil, errors.New("client: Client has no Config (use client.New)")
	}
	if r.Renew && r.Validate {
		return nil, errors.New("client: a TGS request cannot both renew and validate")
	}
	cred := r.TGT
	if cred.Client.Realm == "" || len(cred.Client.Components) == 0 {
		return nil, errors.New("client: TGS request with a ticket that names no client")
	}
	if len(cred.Ticket) == 0 || len(cred.Key.KeyValue) == 0 {
		return nil, fmt.Errorf("client: the credential for %s has no ticket or no session key", cred.Server)
	}
	if _, err := crypto.GetEtype(cred.Key.KeyType); err != nil {
		return nil, fmt.Errorf("client: the session key of %s has unsupported enctype %s", cred.Server, principal.EnctypeName(cred.Key.KeyType))
	}
	var tgt messages.Ticket
	if err := unmarshalSafe(func() error { return tgt.Unmarshal(cred.Ticket) }); err != nil {
		return nil, fmt.Errorf("client: the ticket for %s in the cache does not decode: %w", cred.Server, err)
	}
	st := &tgsState{req: r, client: cred.Client, etypes: slices.Clone(c.Config.Etypes)}
	// The ticket is addressed to krbtgt/REALM@REALM: REALM's KDCs can open it.
	if len(tgt.SName.NameString) == 2 && tgt.SName.NameString[0] == "krbtgt" {
		st.tgsRealm = tgt.SName.NameString[1]
	} else {
		st.tgsRealm = tgt.Realm
	}
	now := c.clock().Add(r.KDCOffset)
	switch {
	case r.Renew || r.Validate:
		// The KDC reissues the presented ticket: ask for the server the ticket itself names [RFC 4120 §3.3.3].
		st.server = principal.FromPrincipalName(tgt.SName, tgt.Realm)
		if r.Renew {
			if cred.Flags&ticket.FlagRenewable == 0 {
				return nil, fmt.Errorf("client: cannot renew %s: %w", cred.Server, ErrNotRenewable)
			}
			if !cred.RenewTill.IsZero() && now.After(cred.RenewTill) {
				return nil, fmt.Errorf("client: cannot renew %s: %w at %s", cred.Server, ErrRenewExpired,
					cred.RenewTill.UTC().Format(time.RFC3339))
			}
		}
		if r.Validate && cred.Flags&ticket.FlagInvalid == 0 {
			return nil, fmt.Errorf("client: cannot validate %s: the ticket is not postdated (not invalid): %w", cred.Server,
				&KDCError{Code: errorcode.KDC_ERR_BADOPTION, Local: true, Client: cred.Client.String(), Server: cred.Server.String()})
		}
	default:
		if len(r.Server.Components) == 0 || r.Server.Realm == "" {
			return nil, errors.New("client: TGS request without a service principal")
		}
		if r.Server.Realm != st.tgsRealm {
			return nil, fmt.Errorf("client: %s is in realm %s but the ticket-granting ticket is for realm %s (ServiceTicket follows cross-realm referrals)",
				r.Server, r.Server.Realm, st.tgsRealm)
		}
		st.server = r.Server
		if now.After(cred.EndTime.Add(c.Config.Clockskew)) {
			return nil, fmt.Errorf("client: the ticket-granting ticket expired at %s: %w", cred.EndTime.UTC().Format(time.RFC3339),
				&KDCError{Code: errorcode.KRB_AP_ERR_TKT_EXPIRED, Local: true, Client: cred.Client.String(), Server: r.Server.String()})
		}
	}
	return st, nil
}

// buildTGSReq builds the DER TGS-REQ [RFC 4120 §3.3.1, §5.4.1]:
//
//   - req-body: kdc-options (forwardable if asked and the TGT is forwardable, renewable if the TGT is, renew or
//     validate), realm and sname of the service, till (the TGT's endtime unless asked otherwise), a fresh nonce,
//     the configured enctypes; no cname, no addresses. It is encoded once, and those bytes are both checksummed
//     and sent.
//   - authenticator: cname/crealm of the TGT's client, ctime/cusec on the KDC's clock (local time + cache offset),
//     a keyed checksum of the session key's enctype over the body (key usage 6), and a fresh random subkey of the
//     session key's enctype; encrypted in the TGT session key with key usage 7.
//   - padata: PA-TGS-REQ (1) = AP-REQ {no ap-options, the TGT as cached, the authenticator}.
func (c *Client) buildTGSReq(st *tgsState) ([]byte, error) {
	cred := st.req.TGT
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	st.nonce = nonce
	now := c.clock().Add(st.req.KDCOffset).UTC()

	opts := types.NewKrbFlags()
	if st.req.Forwardable && cred.Flags&ticket.FlagForwardable != 0 {
		types.SetFlag(&opts, flags.Forwardable)
	}
	if cred.Flags&ticket.FlagRenewable != 0 {
		types.SetFlag(&opts, flags.Renewable)
	}
	if st.req.Canonicalize {
		types.SetFlag(&opts, flags.Canonicalize)
	}
	switch {
	case st.req.Renew:
		types.SetFlag(&opts, flags.Renew)
	case st.req.Validate:
		types.SetFlag(&opts, flags.Validate)
	}
	st.till = st.req.Till
	if st.till.IsZero() {
		st.till = cred.EndTime
		if st.req.Renew && !cred.RenewTill.IsZero() {
			st.till = cred.RenewTill
		}
	}
	st.till = ticket.KerberosTime(st.till)

	body := messages.KDCReqBody{
		KDCOptions: opts,
		Realm:      st.server.Realm,
		SName:      st.server.PrincipalName(),
		Till:       st.till,
		Nonce:      nonce,
		EType:      st.etypes,
	}
	bodyDER, err := body.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: encode TGS-REQ body: %w", err)
	}

	et, err := crypto.GetEtype(cred.Key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("client: session key enctype %s: %w", principal.EnctypeName(cred.Key.KeyType), err)
	}
	sum, err := et.GetChecksumHash(cred.Key.KeyValue, bodyDER, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return nil, fmt.Errorf("client: checksum over the TGS-REQ body: %w", err)
	}
	st.subkey, err = principal.RandomKey(cred.Key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("client: generate subkey: %w", err)
	}
	auth := types.Authenticator{
		AVNO:   iana.PVNO,
		CRealm: st.client.Realm,
		CName:  st.client.PrincipalName(),
		Cksum:  types.Checksum{CksumType: et.GetHashID(), Checksum: sum},
		Cusec:  now.Nanosecond() / 1000,
		CTime:  now.Truncate(time.Second),
		SubKey: st.subkey,
	}
	authDER, err := auth.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: encode authenticator: %w", err)
	}
	encAuth, err := crypto.GetEncryptedData(authDER, cred.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, 0)
	if err != nil {
		return nil, fmt.Errorf("client: encrypt authenticator: %w", err)
	}
	ap, err := asn1.Marshal(ticket.APReqWire{
		PVNO:          iana.PVNO,
		MsgType:       msgtype.KRB_AP_REQ,
		APOptions:     types.NewKrbFlags(),
		Ticket:        asn1.RawValue{Class: asn1.ClassContextSpecific, IsCompound: true, Tag: 3, Bytes: cred.Ticket},
		Authenticator: encAuth,
	})
	if err != nil {
		return nil, fmt.Errorf("client: encode AP-REQ: %w", err)
	}
	ap = asn1tools.AddASNAppTag(ap, asnAppTag.APREQ)

	sent := bodyDER
	if c.tgsBodyHook != nil {
		sent = c.tgsBodyHook(slices.Clone(bodyDER))
	}
	req, err := asn1.Marshal(ticket.KDCReqWire{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_TGS_REQ,
		PAData:  types.PADataSequence{{PADataType: patype.PA_TGS_REQ, PADataValue: ap}},
		ReqBody: asn1.RawValue{Class: asn1.ClassContextSpecific, IsCompound: true, Tag: 4, Bytes: sent},
	})
	if err != nil {
		return nil, fmt.Errorf("client: encode TGS-REQ: %w", err)
	}
	return asn1tools.AddASNAppTag(req, asnAppTag.TGSREQ), nil
}

// verifyTGSRep decodes and checks the TGS-REP [RFC 4120 §3.3.4] and builds the credential: msg-type, cname/crealm
// of the TGT's client, enc-part decrypted with the subkey (key usage 9) or else the TGT session key (usage 8),
// nonce echoed, ticket sname == enc-part sname == requested sname (or all krbtgt), starttime within the clock
// skew, endtime no later than requested, renew-till no later than the TGT's.
func (c *Client) verifyTGSRep(st *tgsState, b []byte, received time.Time) (*TGSResult, error) {
	rep, tkt, err := decodeKDCRep(b, "TGS-REP", asnAppTag.TGSREP, msgtype.KRB_TGS_REP, st.client)
	if err != nil {
		return nil, err
	}

	// RFC 4120 §3.3.3: the subkey protects the reply when the authenticator had one; accept the session key too,
	// as MIT does, for KDCs that ignore the subkey.
	enc, err := ticket.DecryptReplyPart(rep.EncPart, st.subkey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	subkeyReply := err == nil
	if err != nil {
		var err8 error
		enc, err8 = ticket.DecryptReplyPart(rep.EncPart, st.req.TGT.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if err8 != nil {
			return nil, fmt.Errorf("client: TGS-REP enc-part decrypts neither with the subkey (usage 9: %v) nor with the session key (usage 8: %v): %w",
				err, err8, &KDCError{Code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, Local: true, Client: st.client.String(), Server: st.server.String()})
		}
	}
	if err := c.checkTGSRepPart(st, &enc, tkt, received); err != nil {
		return nil, err
	}
	cred := replyCredential(st.client, &enc, rep.Ticket.Bytes)
	return &TGSResult{Credential: cred, KVNO: tkt.EncPart.KVNO, TicketEtype: tkt.EncPart.EType, SubkeyReply: subkeyReply}, nil
}

// isTGS reports whether a principal name is a ticket-granting service, krbtgt/*.
func isTGS(n types.PrincipalName) bool {
	return len(n.NameString) == 2 && n.NameString[0] == "krbtgt"
}

// checkTGSRepPart compares the decrypted enc-part and the ticket with the request [RFC 4120 §3.3.4].
func (c *Client) checkTGSRepPart(st *tgsState, enc *messages.EncKDCRepPart, tkt *messages.Ticket, received time.Time) error {
	mismatch := replyMismatch("TGS-REP")
	if enc.Nonce != st.nonce {
		return mismatch("nonce %d does not match the request's %d", enc.Nonce, st.nonce)
	}
	encServer := principal.FromPrincipalName(enc.SName, enc.SRealm)
	tktServer := principal.FromPrincipalName(tkt.SName, tkt.Realm)
	if !encServer.Equal(tktServer) {
		return mismatch("enc-part names server %s but the ticket is for %s", encServer, tktServer)
	}
	// With canonicalize the KDC may name the server otherwise [RFC 6806 §6, §8]: its canonical name, or a
	// referral (a TGT of its own realm for another realm); the server stays in the KDC's realm. MIT accepts the
	// same ("Reply server ... differs from requested ...").
	canonical := st.req.Canonicalize && enc.SRealm == st.tgsRealm
	if !encServer.Equal(st.server) && !(isTGS(enc.SName) && isTGS(st.server.PrincipalName())) && !canonical {
		return mismatch("is for server %s, not %s", encServer, st.server)
	}
	if enc.EndTime.IsZero() || enc.AuthTime.IsZero() {
		return mismatch("enc-part lacks authtime or endtime")
	}
	start := replyStart(enc)
	// The KDC's clock is the local clock plus the cache's offset; starttime is "now" on that clock, except for a
	// validated ticket, which keeps the starttime it was postdated to.
	kdcNow := received.Add(st.req.KDCOffset)
	if d := start.Sub(kdcNow); d > c.Config.Clockskew || (d < -c.Config.Clockskew && !st.req.Validate) {
		return fmt.Errorf("client: TGS-REP starttime %s is %s away from the KDC time expected (%s): %w",
			start.UTC().Format(time.RFC3339), d.Round(time.Second), kdcNow.UTC().Format(time.RFC3339),
			&KDCError{Code: errorcode.KRB_AP_ERR_SKEW, Local: true, Client: st.client.String(), Server: st.server.String()})
	}
	if err := checkReplyEndTime(enc, st.till, mismatch); err != nil {
		return err
	}
	tgt := st.req.TGT
	if ticket.FlagsFromBitString(enc.Flags)&ticket.FlagRenewable != 0 && !tgt.RenewTill.IsZero() &&
		enc.RenewTill.After(tgt.RenewTill) {
		return mismatch("renew-till %v is after the ticket-granting ticket's %v", enc.RenewTill.UTC(), tgt.RenewTill.UTC())
	}
	return checkReplyKey(enc, mismatch)
}
