package kdc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/addrtype"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket"
)

// The kpasswd protocol (RFC 3244; MIT's kadmind speaks the same): one
// request, one reply, over UDP or TCP (TCP frames carry the usual 4-octet
// length prefix of RFC 4120 §7.2.2 in front of the message).
//
//	request: length(2) version(2) ap-req-length(2) AP-REQ KRB-PRIV
//	reply:   length(2) 0x0001     ap-rep-length(2) AP-REP KRB-PRIV
//	     or: length(2) 0x0001     0x0000           KRB-ERROR
//
// Version 0x0001 is the original change-password protocol: the KRB-PRIV's
// user-data is the new password itself. Version 0xff80 is RFC 3244's set
// password: the user-data is a DER ChangePasswdData that may name a target
// principal other than the ticket's client. Replies always carry version 1
// (RFC 3244 §2; MIT schpw.c, and gokrb5 refuses any other).
const (
	// KpasswdVersionChange is the change-password protocol version.
	KpasswdVersionChange = 0x0001
	// KpasswdVersionSet is RFC 3244's set-password protocol version.
	KpasswdVersionSet = 0xff80
	// MaxKpasswdMessage is the largest request: the length field has 16
	// bits (RFC 3244 §2). Longer TCP frames get KRB_ERR_FIELD_TOOLONG.
	MaxKpasswdMessage = 0xffff
	// MaxNewPassword bounds the new password in bytes; longer ones are
	// refused with KRB5_KPASSWD_SOFTERROR.
	MaxNewPassword = 1024
)

// Result codes of a kpasswd reply (RFC 3244 §2).
const (
	KpasswdSuccess       = 0 // KRB5_KPASSWD_SUCCESS
	KpasswdMalformed     = 1 // KRB5_KPASSWD_MALFORMED: request fails to decode
	KpasswdHardError     = 2 // KRB5_KPASSWD_HARDERROR: server error
	KpasswdAuthError     = 3 // KRB5_KPASSWD_AUTHERROR: authentication failed
	KpasswdSoftError     = 4 // KRB5_KPASSWD_SOFTERROR: password change rejected (policy)
	KpasswdAccessDenied  = 5 // KRB5_KPASSWD_ACCESSDENIED: not authorized
	KpasswdBadVersion    = 6 // KRB5_KPASSWD_BAD_VERSION: unknown protocol version
	KpasswdInitialNeeded = 7 // KRB5_KPASSWD_INITIAL_FLAG_NEEDED: ticket not INITIAL
)

// kpasswdRequest is a request split into its parts, nothing verified yet.
type kpasswdRequest struct {
	version uint16
	apReq   []byte
	priv    []byte
}

// errKpasswdGarbage marks input too broken to answer: shorter than the
// header, or whose length field is not its length. Like the KDC, the service
// does not reply to garbage (a reply would make it a reflector).
var errKpasswdGarbage = errors.New("kdc: not a kpasswd request")

// kpasswdFail is a refusal: the result code and text for the client, the
// KRB-ERROR code when no AP-REP can be made, and the cause for the log.
type kpasswdFail struct {
	result  uint16
	text    string
	krbCode int32
	cause   error
}

func (f *kpasswdFail) Error() string {
	s := fmt.Sprintf("kdc: kpasswd result %d: %s", f.result, f.text)
	if f.cause != nil {
		s += ": " + f.cause.Error()
	}
	return s
}

func kpFail(result uint16, krbCode int32, text string, cause error) *kpasswdFail {
	return &kpasswdFail{result: result, text: text, krbCode: krbCode, cause: cause}
}

// parseKpasswdRequest splits a request (RFC 3244 §2). It returns
// errKpasswdGarbage for input to drop, or a *kpasswdFail to answer.
func parseKpasswdRequest(b []byte) (*kpasswdRequest, error) {
	if len(b) < 6 || int(binary.BigEndian.Uint16(b)) != len(b) {
		return nil, errKpasswdGarbage
	}
	r := &kpasswdRequest{version: binary.BigEndian.Uint16(b[2:])}
	if r.version != KpasswdVersionChange && r.version != KpasswdVersionSet {
		// KDC_ERR_BAD_PVNO, as MIT answers.
		return r, kpFail(KpasswdBadVersion, 3, fmt.Sprintf("Request contained unknown protocol version number %d", r.version), nil)
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n == 0 || 6+n >= len(b) {
		// KRB_AP_ERR_MODIFIED (41).
		return r, kpFail(KpasswdMalformed, 41, "Request was truncated in AP-REQ", nil)
	}
	r.apReq, r.priv = b[6:6+n], b[6+n:]
	return r, nil
}

// changePasswdData is RFC 3244's ChangePasswdData.
type changePasswdData struct {
	NewPasswd []byte              `asn1:"explicit,tag:0"`
	TargName  types.PrincipalName `asn1:"explicit,optional,tag:1"`
	TargRealm string              `asn1:"generalstring,optional,explicit,tag:2"`
}

// decodeChangePasswdData decodes the user-data of a version 0xff80 request.
func decodeChangePasswdData(b []byte) (changePasswdData, error) {
	var d changePasswdData
	rest, err := asn1.Unmarshal(b, &d)
	if err != nil {
		return changePasswdData{}, fmt.Errorf("kdc: ChangePasswdData: %w", err)
	}
	if len(rest) != 0 {
		return changePasswdData{}, errors.New("kdc: ChangePasswdData: trailing bytes")
	}
	if len(d.TargName.NameString) > maxNameComponents {
		return changePasswdData{}, errors.New("kdc: ChangePasswdData: target name too long")
	}
	return d, nil
}

// maxNameComponents bounds a target principal name.
const maxNameComponents = 8

// kpasswdResult is the user-data of a reply: the result code, then the
// UTF-8 text MIT's kpasswd prints (RFC 3244 §2).
func kpasswdResult(code uint16, text string) []byte {
	b := make([]byte, 2, 2+len(text))
	binary.BigEndian.PutUint16(b, code)
	return append(b, text...)
}

// frameKpasswdReply puts the reply header in front of an AP-REP (empty for an
// error reply) and a KRB-PRIV or KRB-ERROR.
func frameKpasswdReply(apRep, body []byte) ([]byte, error) {
	n := 6 + len(apRep) + len(body)
	if n > MaxKpasswdMessage {
		return nil, errors.New("kdc: kpasswd reply too long")
	}
	b := make([]byte, 6, n)
	binary.BigEndian.PutUint16(b, uint16(n))
	binary.BigEndian.PutUint16(b[2:], 1)
	binary.BigEndian.PutUint16(b[4:], uint16(len(apRep)))
	b = append(b, apRep...)
	return append(b, body...), nil
}

// directionalAccept is the sender address of replies: RFC 4120 §8.1's
// directional address, 1 for the acceptor. MIT uses it when it does not know
// the interface a request came in on; its client checks no address.
var directionalAccept = types.HostAddress{AddrType: addrtype.Directional, Address: []byte{0, 0, 0, 1}}

// buildKpasswdPriv seals the reply's result in a KRB-PRIV (RFC 4120 §5.7)
// under key (the client's subkey, or the session key without one) with our
// sequence number, as the client's auth context expects after the AP-REP.
func buildKpasswdPriv(keys *ticket.SessionKeys, key types.EncryptionKey, result []byte, seq int64, now time.Time) ([]byte, error) {
	part := messages.EncKrbPrivPart{
		UserData:       result,
		Timestamp:      now.UTC().Truncate(time.Second),
		Usec:           now.Nanosecond() / 1000,
		SequenceNumber: seq,
		SAddress:       directionalAccept,
	}
	plain, err := asn1.Marshal(part)
	if err != nil {
		return nil, fmt.Errorf("kdc: encoding EncKrbPrivPart: %w", err)
	}
	plain = appTag(plain, 28) // EncKrbPrivPart ::= [APPLICATION 28]
	ed, err := keys.Encrypt(key, keyusage.KRB_PRIV_ENCPART, plain, 0)
	if err != nil {
		return nil, fmt.Errorf("kdc: sealing KRB-PRIV: %w", err)
	}
	priv := messages.KRBPriv{PVNO: 5, MsgType: 21, EncPart: ed}
	return priv.Marshal()
}

// appTag wraps b in an explicit [APPLICATION n] constructed tag.
func appTag(b []byte, n int) []byte {
	out, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassApplication, IsCompound: true, Tag: n, Bytes: b})
	return out
}

// openKpasswdPriv decrypts the request's KRB-PRIV (key usage 13) and checks
// its sequence number against the authenticator's (MIT's kpasswd client
// uses sequence numbers, not timestamps).
func openKpasswdPriv(keys *ticket.SessionKeys, key types.EncryptionKey, b []byte, auth *types.Authenticator) ([]byte, error) {
	var priv messages.KRBPriv
	if err := priv.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("kdc: KRB-PRIV: %w", err)
	}
	if priv.PVNO != 5 {
		return nil, fmt.Errorf("kdc: KRB-PRIV pvno %d", priv.PVNO)
	}
	plain, err := keys.Decrypt(priv.EncPart, key, keyusage.KRB_PRIV_ENCPART)
	if err != nil {
		return nil, fmt.Errorf("kdc: KRB-PRIV: %w", err)
	}
	var part messages.EncKrbPrivPart
	if err := part.Unmarshal(plain); err != nil {
		return nil, fmt.Errorf("kdc: KRB-PRIV: %w", err)
	}
	if auth.SeqNumber != 0 && part.SequenceNumber != auth.SeqNumber {
		return nil, fmt.Errorf("kdc: KRB-PRIV sequence number %d, authenticator %d", part.SequenceNumber, auth.SeqNumber)
	}
	return part.UserData, nil
}

// changepwSName is kadmin/changepw as a wire name, for KRB-ERRORs.
var changepwSName = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{"kadmin", "changepw"}}
