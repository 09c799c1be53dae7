package kdc

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// S4U2Self and S4U2Proxy (MS-SFU §3.2.5.1, §3.2.5.2, as MIT implements them in
// kdc_util.c and tgs_policy.c, without the PAC, which this KDC does not issue).
//
// S4U2Self: a service with its own TGT asks for a ticket to itself in the name
// of a user (PA-S4U-X509-USER, or PA-FOR-USER alone). The ticket is forwardable
// only if the service is ok-to-auth-as-delegate or has no delegation targets
// (MIT s4u2self_forwardable).
//
// S4U2Proxy: the service presents such a ticket (or one the user gave it) as
// the additional ticket with cname-in-addl-tkt and gets a ticket for another
// service in the user's name, if that service is on its allowed-to-delegate-to
// list and the evidence ticket is forwardable.

// Padata types, options and key usages of MS-SFU.
const (
	paForUser      = 129 // PA-FOR-USER (MS-SFU §2.2.1)
	paS4UX509User  = 130 // PA-S4U-X509-USER (MS-SFU §2.2.2)
	optCNameInAddl = 14  // KDC option cname-in-addl-tkt (MS-SFU §2.2.3)

	usageForUserCksum   = 17 // KERB_NON_KERB_CKSUM_SALT (MS-SFU §2.2.1)
	usageS4UX509Request = 26 // KRB5_KEYUSAGE_PA_S4U_X509_USER_REQUEST
	usageS4UX509Reply   = 27 // KRB5_KEYUSAGE_PA_S4U_X509_USER_REPLY

	cksumHMACMD5 = -138 // KERB_CHECKSUM_HMAC_MD5 (RFC 4757 §4)
)

// delegState is the S4U or user-to-user state of a TGS request, nil for a
// plain one.
type delegState struct {
	self bool                // S4U2Self
	user *principal.Record   // the impersonated user
	x509 *der.PAS4UX509User  // answered with PA-S4U-X509-USER when set
	upn  types.PrincipalName // the user's name as asked

	proxy    bool                   // S4U2Proxy
	evidence messages.EncTicketPart // the user's ticket to the requesting service

	u2u    bool                   // ENC-TKT-IN-SKEY (u2u.go)
	second messages.EncTicketPart // the TGT whose session key seals the ticket
}

// wantsDelegation reports padata or options of S4U or user-to-user, without
// allocating: most requests have none.
func wantsDelegation(tr *tgsRequest) bool {
	o := tr.req.Body.KDCOptions
	if isSet(o, flags.EncTktInSkey) || isSet(o, optCNameInAddl) {
		return true
	}
	for _, pa := range tr.req.PAData {
		if pa.PADataType == paForUser || pa.PADataType == paS4UX509User {
			return true
		}
	}
	return false
}

// checkDelegation runs after the server lookup: S4U2Self, S4U2Proxy and
// user-to-user, each checked as MIT does.
func (k *KDC) checkDelegation(ctx context.Context, tr *tgsRequest) error {
	if !wantsDelegation(tr) {
		return nil
	}
	tr.deleg = &delegState{}
	opts := tr.req.Body.KDCOptions
	if isSet(opts, optCNameInAddl) {
		if err := k.checkS4U2Proxy(ctx, tr); err != nil {
			return err
		}
	} else if err := k.checkS4U2Self(ctx, tr); err != nil {
		return err
	}
	if isSet(opts, flags.EncTktInSkey) {
		return k.checkU2U(ctx, tr)
	}
	return nil
}

// s4uKey is the key the S4U2Self padata is signed with: the authenticator
// subkey if any, else the TGT session key (MIT kdc_process_s4u_x509_user).
func (tr *tgsRequest) s4uKey() types.EncryptionKey {
	if len(tr.auth.SubKey.KeyValue) > 0 {
		return tr.auth.SubKey
	}
	return tr.tgt.Key
}

// checkS4U2Self reads PA-S4U-X509-USER, else PA-FOR-USER, verifies its
// checksum, finds the user and checks the request is the service's for
// itself.
func (k *KDC) checkS4U2Self(ctx context.Context, tr *tgsRequest) error {
	d := tr.deleg
	var user types.PrincipalName
	var realm string
	if v, ok := tr.req.PA(paS4UX509User); ok {
		x := &der.PAS4UX509User{}
		if err := der.DecodePAS4UX509User(v, x); err != nil {
			return kerr(errorcode.KRB_ERR_GENERIC, "DECODE_PA_S4U_X509_USER", err)
		}
		if err := verifyS4UX509(tr, x); err != nil {
			return err
		}
		if len(x.UserID.CName.NameString) == 0 {
			code := int32(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)
			if len(x.UserID.SubjectCertificate) > 0 {
				return kerr(code, "INVALID_S4U2SELF_REQUEST", errors.New("S4U2Self by certificate is not supported"))
			}
			return kerr(code, "INVALID_S4U2SELF_REQUEST", errors.New("no user name"))
		}
		d.x509, user, realm = x, x.UserID.CName, x.UserID.CRealm
	} else if v, ok := tr.req.PA(paForUser); ok {
		var fu der.PAForUser
		if err := der.DecodePAForUser(v, &fu); err != nil {
			return kerr(errorcode.KRB_ERR_GENERIC, "DECODE_PA_FOR_USER", err)
		}
		if err := verifyForUser(tr, &fu); err != nil {
			return err
		}
		user, realm = fu.UserName, fu.UserRealm
	} else {
		return nil
	}
	d.self, d.upn = true, user

	// The service asks for itself (MIT: INVALID_S4U2SELF_REQUEST_SERVER_MISMATCH).
	if !tr.server.Name.Equal(tr.client) && !tr.server.HasAlias(tr.client) {
		return kerr(errorcode.KRB_AP_ERR_BADMATCH, "INVALID_S4U2SELF_REQUEST_SERVER_MISMATCH",
			fmt.Errorf("%s asked for %s", tr.client, tr.server.Name))
	}
	if realm != k.realm {
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "UNKNOWN_S4U2SELF_PRINCIPAL", fmt.Errorf("user of realm %q (cross-realm S4U2Self is not supported)", realm))
	}
	name := wireName(user, realm)
	if user.NameType == ntEnterprise && len(user.NameString) == 1 {
		if n, err := principal.Parse(user.NameString[0], k.realm); err == nil && n.Realm == k.realm {
			if _, gerr := k.store.Get(ctx, name); errors.Is(gerr, principal.ErrNotFound) {
				name = n
			}
		}
	}
	rec, err := k.store.Get(ctx, name)
	switch {
	case errors.Is(err, principal.ErrNotFound):
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "UNKNOWN_S4U2SELF_PRINCIPAL", fmt.Errorf("%s", name))
	case err != nil:
		return kerr(errorcode.KRB_ERR_GENERIC, "LOOKING_UP_S4U2SELF_PRINCIPAL", err)
	case rec.Disabled:
		return kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "CLIENT_DISABLED", fmt.Errorf("S4U2Self for %s", rec.Name))
	case !rec.Expires.IsZero() && !tr.now.Before(rec.Expires):
		return kerr(errorcode.KDC_ERR_NAME_EXP, "CLIENT_EXPIRED", fmt.Errorf("S4U2Self for %s", rec.Name))
	}
	d.user = rec
	return nil
}

// verifyS4UX509 checks the PA-S4U-X509-USER checksum: keyed, over the
// user-id as received, with the nonce of the request (MIT
// verify_s4u_x509_user_checksum).
func verifyS4UX509(tr *tgsRequest, x *der.PAS4UX509User) error {
	if uint32(x.UserID.Nonce) != uint32(tr.req.Body.Nonce) {
		return kerr(errorcode.KRB_AP_ERR_MODIFIED, "INVALID_S4U2SELF_CHECKSUM", errors.New("S4UUserID nonce is not the request's"))
	}
	if unkeyedChecksum(x.Cksum.CksumType) {
		return kerr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "INVALID_S4U2SELF_CHECKSUM", fmt.Errorf("unkeyed checksum type %d", x.Cksum.CksumType))
	}
	key := tr.s4uKey()
	if !tr.keys.VerifyChecksum(key, usageS4UX509Request, x.RawUserID, x.Cksum.Checksum) {
		return kerr(errorcode.KRB_AP_ERR_MODIFIED, "INVALID_S4U2SELF_CHECKSUM", errors.New("PA-S4U-X509-USER checksum does not verify"))
	}
	return nil
}

// verifyForUser checks the PA-FOR-USER checksum over name-type (little
// endian), the name's components, its realm and the auth-package, keyed with
// the TGT session key at usage 17 (MS-SFU §2.2.1): HMAC-MD5 (-138) as
// Windows and MIT make it, or the session key's own keyed checksum.
func verifyForUser(tr *tgsRequest, fu *der.PAForUser) error {
	var data []byte
	data = binary.LittleEndian.AppendUint32(data, uint32(fu.UserName.NameType))
	for _, c := range fu.UserName.NameString {
		data = append(data, c...)
	}
	data = append(data, fu.UserRealm...)
	data = append(data, fu.AuthPackage...)
	key := tr.tgt.Key
	var ok bool
	switch {
	case fu.Cksum.CksumType == cksumHMACMD5:
		ok = hmac.Equal(fu.Cksum.Checksum, hmacMD5Checksum(key.KeyValue, usageForUserCksum, data))
	case unkeyedChecksum(fu.Cksum.CksumType):
		return kerr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "INVALID_S4U2SELF_CHECKSUM", fmt.Errorf("unkeyed checksum type %d", fu.Cksum.CksumType))
	default:
		ok = tr.keys.VerifyChecksum(key, usageForUserCksum, data, fu.Cksum.Checksum)
	}
	if !ok {
		return kerr(errorcode.KRB_AP_ERR_MODIFIED, "INVALID_S4U2SELF_CHECKSUM", errors.New("PA-FOR-USER checksum does not verify"))
	}
	return nil
}

// hmacMD5Checksum is the keyed checksum HMAC-MD5 of RFC 4757 §4, which works
// with a key of any enctype: HMAC(HMAC(K, "signaturekey\0"), MD5(usage || data)).
func hmacMD5Checksum(key []byte, usage uint32, data []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write([]byte("signaturekey\x00"))
	ksign := m.Sum(nil)
	h := md5.New()
	var u [4]byte
	binary.LittleEndian.PutUint32(u[:], usage)
	h.Write(u[:])
	h.Write(data)
	m = hmac.New(md5.New, ksign)
	m.Write(h.Sum(nil))
	return m.Sum(nil)
}

// checkS4U2Proxy applies MIT's check_tgs_s4u2proxy (less the PAC checks) and
// the allowed-to-delegate-to list.
func (k *KDC) checkS4U2Proxy(ctx context.Context, tr *tgsRequest) error {
	d := tr.deleg
	b := tr.req.Body
	if len(b.AdditionalTickets) == 0 {
		return kerr(errorcode.KDC_ERR_BADOPTION, "NO_2ND_TKT", nil)
	}
	for _, o := range []int{flags.Forwarded, flags.Proxy, flags.Renew, flags.Validate, flags.EncTktInSkey} {
		if isSet(b.KDCOptions, o) {
			return kerr(errorcode.KDC_ERR_BADOPTION, "INVALID_S4U2PROXY_OPTIONS", fmt.Errorf("option %d with cname-in-addl-tkt", o))
		}
	}
	if isTGSName(tr.server.Name) {
		return kerr(errorcode.KDC_ERR_POLICY, "NOT_ALLOWED_TO_DELEGATE", errors.New("S4U2Proxy to a ticket-granting service"))
	}
	if tr.client.Realm != k.realm {
		return kerr(errorcode.KDC_ERR_BADOPTION, "NOT_ALLOWED_TO_DELEGATE", errors.New("cross-realm S4U2Proxy is not supported"))
	}
	// The evidence ticket is the user's ticket to the requesting service,
	// sealed in that service's key (MIT: EVIDENCE_TICKET_MISMATCH).
	svc, err := k.store.Get(ctx, tr.client)
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	ev := b.AdditionalTickets[0]
	evName := wireName(ev.SName, ev.Realm)
	if ev.Realm != k.realm || !(evName.Equal(svc.Name) || svc.HasAlias(evName)) {
		return kerr(errorcode.KDC_ERR_SERVER_NOMATCH, "EVIDENCE_TICKET_MISMATCH", fmt.Errorf("evidence ticket for %s, request by %s", evName, svc.Name))
	}
	key, ok := svc.FindKey(ev.EncPart.EType, uint32(ev.EncPart.KVNO))
	if !ok {
		return kerr(errorcode.KRB_AP_ERR_BADKEYVER, "EVIDENCE_TICKET_KEY_UNKNOWN", fmt.Errorf("no %s key of kvno %d", principal.EnctypeName(ev.EncPart.EType), ev.EncPart.KVNO))
	}
	if d.evidence, err = k.keys.OpenTicket(ev, key.EncryptionKey()); err != nil {
		return kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "EVIDENCE_TICKET_DECRYPT", err)
	}
	if !types.IsFlagSet(&d.evidence.Flags, flags.Forwardable) {
		return kerr(errorcode.KDC_ERR_BADOPTION, "EVIDENCE_TKT_NOT_FORWARDABLE", nil)
	}
	if !tr.now.Before(d.evidence.EndTime) {
		return kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "EVIDENCE_TICKET_EXPIRED", nil)
	}
	if !svc.MayDelegateTo(tr.server.Name) {
		return kerr(errorcode.KDC_ERR_BADOPTION, "NOT_ALLOWED_TO_DELEGATE", fmt.Errorf("%s may not delegate to %s", svc.Name, tr.server.Name))
	}
	user := wireName(d.evidence.CName, d.evidence.CRealm)
	if d.evidence.CRealm == k.realm {
		u, err := k.store.Get(ctx, user)
		switch {
		case errors.Is(err, principal.ErrNotFound):
			return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_NOT_FOUND", fmt.Errorf("evidence ticket of %s", user))
		case err != nil:
			return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
		case u.Disabled:
			return kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "CLIENT_DISABLED", nil)
		}
	}
	d.proxy = true
	return nil
}

// delegIssue adjusts a ticket being issued for S4U or user-to-user: its
// client, times, flags and authorization data; it returns the key to seal
// it in when that is not the server's (user-to-user).
func (k *KDC) delegIssue(tr *tgsRequest, part *messages.EncTicketPart) (seal *types.EncryptionKey) {
	d := tr.deleg
	switch {
	case d.self:
		part.CName, part.CRealm = d.user.Name.PrincipalName(), d.user.Name.Realm
		if d.upn.NameType != ntEnterprise {
			part.CName = d.upn // the name as asked, as MIT answers without canonicalize
		}
		// MIT s4u2self_forwardable (MS-SFU §3.2.5.1.2).
		svc := tr.server.Delegation
		if !svc.OKToAuthAsDelegate && len(svc.AllowedTo) > 0 {
			clearFlag(&part.Flags, flags.Forwardable)
		}
	case d.proxy:
		ev := d.evidence
		part.CName, part.CRealm, part.AuthTime = ev.CName, ev.CRealm, ev.AuthTime
		part.AuthorizationData = ev.AuthorizationData
		if part.EndTime.After(ev.EndTime) {
			part.EndTime = ev.EndTime
		}
		if !part.RenewTill.IsZero() && !ev.RenewTill.IsZero() && part.RenewTill.After(ev.RenewTill) {
			part.RenewTill = ev.RenewTill
		}
	}
	if d.u2u {
		if part.EndTime.After(d.second.EndTime) {
			part.EndTime = d.second.EndTime
		}
		return &d.second.Key
	}
	return nil
}

// s4uReplyPA is the PA-S4U-X509-USER of an S4U2Self reply: the request's
// user-id echoed (nonce, name, realm, the reply-key-usage option) and signed
// with the request's checksum type in the subkey or session key, at usage 27
// when asked, else 26 (MIT kdc_make_s4u2self_rep).
func (k *KDC) s4uReplyPA(tr *tgsRequest) (types.PADataSequence, error) {
	x := tr.deleg.x509
	if x == nil {
		return nil, nil
	}
	rep := der.PAS4UX509User{UserID: der.S4UUserID{Nonce: x.UserID.Nonce, CName: x.UserID.CName, CRealm: x.UserID.CRealm}}
	usage := uint32(usageS4UX509Request)
	if len(x.UserID.Options.Bytes) > 0 && x.UserID.Options.At(der.S4UOptUseReplyKeyUsage) == 1 {
		rep.UserID.Options = ticket.Flags(der.S4UOptUseReplyKeyUsage)
		usage = usageS4UX509Reply
	}
	body := der.AppendS4UUserID(nil, &rep.UserID)
	ct, sum, err := tr.keys.Checksum(tr.s4uKey(), usage, body)
	if err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "MAKE_S4U2SELF_PADATA", err)
	}
	rep.Cksum = types.Checksum{CksumType: ct, Checksum: sum}
	return types.PADataSequence{{PADataType: paS4UX509User, PADataValue: der.AppendPAS4UX509User(nil, &rep)}}, nil
}

func clearFlag(f *asn1.BitString, bit int) {
	if bit/8 < len(f.Bytes) {
		f.Bytes[bit/8] &^= 0x80 >> uint(bit%8)
	}
}
