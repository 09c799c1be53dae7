package kdc

// FAST, the armored AS exchange of RFC 6113 (§5.4): the client wraps its
// request in PA-FX-FAST, encrypted in an armor key both sides derive from a
// ticket the client already holds, and the KDC answers inside the same armor.
//
// Which key protects what (RFC 6113 §5.4.1.1, §5.4.2, §5.4.3):
//   - armor key = KRB-FX-CF2(armor AP-REQ subkey, armor ticket session key,
//     "subkeyarmor", "ticketarmor"); the armor ticket is a TGT of this realm
//     (MIT kinit -T takes it from a host keytab login);
//   - the armor key seals the inner request (usage 51), keys the checksum
//     over the outer req-body (usage 50), seals the KDC's KrbFastResponse
//     (usage 52) and keys the checksum over the issued ticket in
//     KrbFastFinished (usage 53);
//   - the reply part is sealed not in the client's long-term key but in
//     KRB-FX-CF2(strengthen key, client key, "strengthenkey", "replykey"),
//     the strengthen key a fresh random key sent inside the armor;
//   - a KRB-ERROR goes inside the armor as PA-FX-ERROR; the outer error
//     carries the same code and only PA-FX-FAST as e-data (as MIT answers).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// FAST padata types and key usages (RFC 6113 §5.4, §7.2; IANA).
const (
	paFXCookie           = 133
	paFXFAST             = 136
	paFXError            = 137
	paEncryptedChallenge = 138

	usageFastReqChecksum = 50
	usageFastEnc         = 51
	usageFastRep         = 52
	usageFastFinished    = 53
	usageEncChallengeCli = 54
	usageEncChallengeKDC = 55

	armorAPRequest = 1 // FX_FAST_ARMOR_AP_REQUEST
)

// kdcErrUnknownCriticalFastOption is KDC_ERR_UNKNOWN_CRITICAL_FAST_OPTION (RFC
// 6113 §5.4.2), which gokrb5 does not name.
const kdcErrUnknownCriticalFastOption = 93

// fastCookie is the PA-FX-COOKIE value sent with every armored error that
// carries METHOD-DATA. Encrypted challenge needs no state between the two
// requests of a login, so the cookie carries none (MIT sends "MIT" for the
// same reason): a client must echo it (RFC 6113 §5.2), and a missing or
// altered echo changes nothing here.
var fastCookie = []byte("kerbkit")

// fastRequired refuses an unarmored AS exchange of a client that must use
// FAST (kdc serve --require-fast, kdc principal modify --requires-fast):
// KDC_ERR_POLICY, with METHOD-DATA offering PA-FX-FAST, on which a client
// holding armor (MIT kinit -T) restarts armored; one without sees "KDC
// policy rejects request".
func fastRequired() error {
	md, err := ticket.MethodData(types.PAData{PADataType: paFXFAST, PADataValue: []byte{}})
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	return &Error{Code: errorcode.KDC_ERR_POLICY, Status: "FAST_REQUIRED", EData: md, Cause: errors.New("the client must use FAST")}
}

// fastState is what an armored request keeps for the reply or the error.
type fastState struct {
	armorKey types.EncryptionKey
	// kdcChallenge is the KDC challenge key of a verified encrypted
	// challenge (encchallenge.go), nil otherwise.
	kdcChallenge *types.EncryptionKey
	keys         ticket.SessionKeys
	// outer is the request as it arrived, around the inner one.
	outer *ticket.KDCRequest
	// hideClient is the hide-client-names option: the outer reply names
	// the anonymous principal, the real name travels in KrbFastFinished.
	hideClient bool
}

// fastHideClientNames is the hide-client-names FAST option (RFC 6113 §5.4.2).
const fastHideClientNames = 1

// anonymousName is WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS (RFC 6113
// §5.4.2, RFC 8062 §3), the outer client of a reply with hidden names.
var anonymousName = types.PrincipalName{NameType: 11, NameString: []string{"WELLKNOWN", "ANONYMOUS"}}

const anonymousRealm = "WELLKNOWN:ANONYMOUS"

// unwrapFAST opens PA-FX-FAST (RFC 6113 §5.4.2) and replaces as.req by the
// inner request. Failures here are answered unarmored, as MIT's kdc_find_fast
// does (status FIND_FAST): there is no armor key to answer in, or the one
// there is did not prove the request.
func (k *KDC) unwrapFAST(ctx context.Context, as *asRequest, v []byte) error {
	var ar der.FastArmoredReq
	if err := der.DecodeFastArmoredReq(v, &ar); err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "FIND_FAST", fmt.Errorf("PA-FX-FAST: %w", err))
	}
	if !ar.HasArmor {
		return kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "FIND_FAST", errors.New("armored AS request without armor"))
	}
	if ar.ArmorType != armorAPRequest {
		return kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "FIND_FAST", fmt.Errorf("unknown FAST armor type %d", ar.ArmorType))
	}
	fs := &fastState{}
	key, err := k.armorAPReq(ctx, as.now, ar.ArmorValue, &fs.keys)
	if err != nil {
		return err
	}
	fs.armorKey = key
	inner, err := openFastReq(as.req, fs, &ar, as.req.RawBody)
	if err != nil {
		return err
	}
	fs.outer, as.req, as.fast = as.req, inner, fs
	return nil
}

// openFastReq decrypts the inner request, checks the req-checksum over
// checked (the outer req-body for AS, the PA-TGS-REQ AP-REQ for TGS) and
// returns the inner request, which takes the outer one's place.
func openFastReq(outer *ticket.KDCRequest, fs *fastState, ar *der.FastArmoredReq, checked []byte) (*ticket.KDCRequest, error) {
	plain, err := fs.keys.Decrypt(ar.EncFastReq, fs.armorKey, usageFastEnc)
	if err != nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "FIND_FAST", errors.New("enc-fast-req does not decrypt in the armor key"))
	}
	var fr der.FastReq
	if err := der.DecodeFastReq(plain, &fr); err != nil {
		return nil, kerr(errorcode.KRB_ERR_GENERIC, "FIND_FAST", fmt.Errorf("KrbFastReq: %w", err))
	}
	ck := ar.ReqChecksum
	if unkeyedChecksum(ck.CksumType) {
		return nil, kerr(errorcode.KDC_ERR_POLICY, "FIND_FAST", fmt.Errorf("unkeyed checksum type %d in req-checksum", ck.CksumType))
	}
	if ck.CksumType != ticket.MandatoryChecksum(fs.armorKey.KeyType) ||
		!fs.keys.VerifyChecksum(fs.armorKey, usageFastReqChecksum, checked, ck.Checksum) {
		return nil, kerr(errorcode.KRB_AP_ERR_MODIFIED, "FIND_FAST", errors.New("FAST req-checksum invalid: request modified"))
	}
	// Bits 0-15 of fast-options are critical (RFC 6113 §5.4.2); of those
	// only hide-client-names (1) is supported: Heimdal's kinit sets it.
	for i := 0; i < 16 && i < fr.Options.BitLength; i++ {
		if i == fastHideClientNames {
			fs.hideClient = fr.Options.At(i) != 0
			continue
		}
		if fr.Options.At(i) != 0 {
			return nil, kerr(kdcErrUnknownCriticalFastOption, "FIND_FAST", fmt.Errorf("critical FAST option %d", i))
		}
	}
	return &ticket.KDCRequest{PVNO: outer.PVNO, MsgType: outer.MsgType, PAData: fr.PAData, Body: fr.Body, RawBody: fr.RawBody}, nil
}

// armorAPReq verifies the armor AP-REQ (RFC 6113 §5.4.1.1): a ticket for our
// own TGS, an authenticator in its session key with a subkey; it returns the
// armor key. Codes as MIT's krb5_rd_req and armor_ap_request give them.
func (k *KDC) armorAPReq(ctx context.Context, now time.Time, b []byte, sk *ticket.SessionKeys) (types.EncryptionKey, error) {
	var ap messages.APReq
	if err := der.DecodeAPReq(b, &ap); err != nil {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_MSG_TYPE, "FIND_FAST", fmt.Errorf("armor AP-REQ: %w", err))
	}
	t := ap.Ticket
	tname := wireName(t.SName, t.Realm)
	if !isTGSName(tname) || tname.Components[1] != k.realm || t.Realm != k.realm {
		return types.EncryptionKey{}, kerr(errorcode.KDC_ERR_SERVER_NOMATCH, "FIND_FAST", fmt.Errorf("armor ticket for %s, not the local TGS", tname))
	}
	rec, err := k.store.Get(ctx, tname)
	if err != nil {
		return types.EncryptionKey{}, kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	key, ok := rec.FindKey(t.EncPart.EType, uint32(t.EncPart.KVNO))
	if !ok {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_NOKEY, "FIND_FAST", fmt.Errorf("armor ticket: no %s key kvno %d", principal.EnctypeName(t.EncPart.EType), t.EncPart.KVNO))
	}
	tkt, err := k.keys.OpenTicket(t, key.EncryptionKey())
	if err != nil {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "FIND_FAST", fmt.Errorf("armor ticket: %w", err))
	}
	if !now.Before(tkt.EndTime.Add(k.skew)) {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "FIND_FAST", errors.New("armor ticket expired"))
	}
	plain, err := sk.Decrypt(ap.EncryptedAuthenticator, tkt.Key, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "FIND_FAST", errors.New("armor authenticator does not decrypt"))
	}
	var a types.Authenticator
	if err := der.DecodeAuthenticator(plain, &a); err != nil {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "FIND_FAST", fmt.Errorf("armor authenticator: %w", err))
	}
	if a.CRealm != tkt.CRealm || !wireName(a.CName, a.CRealm).Equal(wireName(tkt.CName, tkt.CRealm)) {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_BADMATCH, "FIND_FAST", errors.New("armor authenticator names another client"))
	}
	ctime := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if d := ctime.Sub(now); d > k.skew || d < -k.skew {
		return types.EncryptionKey{}, kerr(errorcode.KRB_AP_ERR_SKEW, "FIND_FAST", fmt.Errorf("armor authenticator off by %s", d.Round(time.Second)))
	}
	if len(a.SubKey.KeyValue) == 0 {
		return types.EncryptionKey{}, kerr(errorcode.KDC_ERR_POLICY, "FIND_FAST", errors.New("armor AP-REQ without subkey"))
	}
	armor, err := ticket.CF2(a.SubKey, tkt.Key, "subkeyarmor", "ticketarmor")
	if err != nil {
		return types.EncryptionKey{}, kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "FIND_FAST", err)
	}
	return armor, nil
}

// sealFastResponse encrypts a KrbFastResponse in the armor key (usage 52) and
// returns it as the PA-FX-FAST of a reply or error.
func (fs *fastState) sealFastResponse(r *der.FastResponse) (types.PAData, error) {
	b, err := der.AppendFastResponse(nil, r)
	if err != nil {
		return types.PAData{}, fmt.Errorf("kdc: encoding KrbFastResponse: %w", err)
	}
	ed, err := fs.keys.Encrypt(fs.armorKey, usageFastRep, b, 0)
	clear(b) // the strengthen key
	if err != nil {
		return types.PAData{}, fmt.Errorf("kdc: sealing KrbFastResponse: %w", err)
	}
	return types.PAData{PADataType: paFXFAST, PADataValue: der.AppendFastArmoredRep(nil, &ed)}, nil
}

// fastError puts a failure of an armored request inside the armor (RFC 6113
// §5.4.3): the inner KRB-ERROR, with the METHOD-DATA it carried and a cookie,
// travels as PA-FX-ERROR in a KrbFastResponse; the outer error keeps the code
// and carries that response as its only e-data.
func (k *KDC) fastError(fs *fastState, req *ticket.KDCRequest, ke *Error) *Error {
	if fs == nil {
		return ke
	}
	b := &req.Body
	inner := ticket.ErrorReply{Code: ke.Code, Now: k.now(), Realm: k.realm, SName: b.SName, EText: ke.Status}
	if len(b.CName.NameString) > 0 && principal.InBounds(b.CName, b.Realm) {
		inner.CName, inner.CRealm = b.CName, b.Realm
	}
	if len(inner.SName.NameString) == 0 || !principal.InBounds(inner.SName, "") {
		inner.SName = principal.Krbtgt(k.realm).PrincipalName()
	}
	var pas types.PADataSequence
	if ke.EData != nil {
		md, err := der.DecodePAData(ke.EData)
		if err != nil {
			return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
		}
		pas = append(md, types.PAData{PADataType: paFXCookie, PADataValue: fastCookie})
	}
	eb, err := inner.Marshal()
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	pas = append(pas, types.PAData{PADataType: paFXError, PADataValue: eb})
	pa, err := fs.sealFastResponse(&der.FastResponse{PAData: pas, Nonce: b.Nonce})
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	md, err := ticket.MethodData(pa)
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	return &Error{Code: ke.Code, Status: ke.Status, EData: md, Cause: ke.Cause}
}

// fastReply makes the PA-FX-FAST of an armored AS-REP or TGS-REP (RFC 6113
// §5.4.3): KrbFastFinished with a checksum over the ticket in the armor key,
// the reply's own padata (pas) moved inside and, when strengthen is set, a
// strengthen key of the reply key's enctype; it returns the padata of the
// outer reply and the reply key: KRB-FX-CF2(strengthen key, reply key,
// "strengthenkey", "replykey") when strengthened, replyKey itself otherwise.
//
// The strengthen key is OPTIONAL (RFC 6113 §5.4.3) and a client that does
// not apply it cannot open the reply: Heimdal 7.8's kinit --fast-armor-cache
// pre-authenticates inside FAST with the encrypted timestamp, keeps a
// strengthen key it is sent without ever using it, and reports the reply it
// then cannot decrypt as "Password incorrect" (Heimdal's own 7.8 KDC never
// sends one). The AS exchange therefore strengthens only after an encrypted
// challenge, whose clients (MIT, Heimdal 8) apply the strengthen key.
func (k *KDC) fastReply(fs *fastState, tkt messages.Ticket, crealm string, cname types.PrincipalName, nonce int, pas types.PADataSequence, replyKey types.EncryptionKey, strengthen bool) (types.PADataSequence, types.EncryptionKey, error) {
	var sk *types.EncryptionKey
	if strengthen {
		key, err := principal.RandomKey(replyKey.KeyType)
		if err != nil {
			return nil, types.EncryptionKey{}, kerr(errorcode.KRB_ERR_GENERIC, "RANDOM_FAILED", err)
		}
		defer clear(key.KeyValue)
		sk = &key
	}
	tb, err := der.AppendTicket(nil, &tkt)
	if err != nil {
		return nil, types.EncryptionKey{}, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	ctype, sum, err := fs.keys.Checksum(fs.armorKey, usageFastFinished, tb)
	if err != nil {
		return nil, types.EncryptionKey{}, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	if fs.kdcChallenge != nil {
		pa, err := k.kdcChallengePA(fs)
		if err != nil {
			return nil, types.EncryptionKey{}, err
		}
		pas = append(pas, pa)
	}
	now := k.now().UTC()
	resp := der.FastResponse{
		PAData:        pas,
		StrengthenKey: sk,
		Finished: &der.FastFinished{
			Timestamp: now.Truncate(time.Second), Usec: now.Nanosecond() / 1000,
			CRealm: crealm, CName: cname,
			TicketChecksum: types.Checksum{CksumType: ctype, Checksum: sum},
		},
		Nonce: nonce,
	}
	pa, err := fs.sealFastResponse(&resp)
	if err != nil {
		return nil, types.EncryptionKey{}, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	if sk == nil {
		return types.PADataSequence{pa}, replyKey, nil
	}
	key, err := ticket.CF2(*sk, replyKey, "strengthenkey", "replykey")
	if err != nil {
		return nil, types.EncryptionKey{}, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	return types.PADataSequence{pa}, key, nil
}

// tgsFAST opens the PA-FX-FAST of a TGS-REQ (RFC 6113 §5.4.1.1, §5.4.2): no
// explicit armor is allowed; the armor key is KRB-FX-CF2(authenticator
// subkey, TGT session key, "subkeyarmor", "ticketarmor"), and the
// req-checksum covers the PA-TGS-REQ AP-REQ. The inner request replaces the
// outer one; the authenticator's checksum was over the outer req-body
// (checkAuthenticator), as MIT checks it.
func (k *KDC) tgsFAST(_ context.Context, tr *tgsRequest) error {
	v, ok := tr.req.PA(paFXFAST)
	if !ok {
		return nil
	}
	var ar der.FastArmoredReq
	if err := der.DecodeFastArmoredReq(v, &ar); err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "FIND_FAST", fmt.Errorf("PA-FX-FAST: %w", err))
	}
	if ar.HasArmor {
		return kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "FIND_FAST", errors.New("AP-REQ armor is not permitted in a TGS-REQ"))
	}
	if len(tr.auth.SubKey.KeyValue) == 0 {
		return kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "FIND_FAST", errors.New("armored TGS-REQ without an authenticator subkey"))
	}
	armor, err := ticket.CF2(tr.auth.SubKey, tr.tgt.Key, "subkeyarmor", "ticketarmor")
	if err != nil {
		return kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "FIND_FAST", err)
	}
	fs := &fastState{armorKey: armor}
	pa, _ := tr.req.PA(patype.PA_TGS_REQ)
	inner, err := openFastReq(tr.req, fs, &ar, pa)
	if err != nil {
		return err
	}
	tr.req, tr.fast = inner, fs
	return nil
}
