package ticket

import (
	"fmt"
	"math"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// APRepPart is the content of EncAPRepPart (RFC 4120 §5.5.2). CTime and Cusec
// must be copied from the authenticator being answered: that echo is what
// proves the server to the client. SubKey is the acceptor's subkey (KeyType 0
// means none). SeqNumber, when HasSeq, is the acceptor's initial sequence
// number, a UInt32.
type APRepPart struct {
	CTime     time.Time
	Cusec     int
	SubKey    types.EncryptionKey
	SeqNumber int64
	HasSeq    bool
}

// encAPRepPartASN decodes EncAPRepPart with the optional seq-number kept raw,
// so that an absent one is told apart from zero.
type encAPRepPartASN struct {
	CTime     time.Time           `asn1:"generalized,explicit,tag:0"`
	Cusec     int                 `asn1:"explicit,tag:1"`
	Subkey    types.EncryptionKey `asn1:"optional,explicit,tag:2"`
	SeqNumber asn1.RawValue       `asn1:"optional,tag:3"`
}

// BuildAPRep encodes an AP-REP (APPLICATION 15, RFC 4120 §5.5.2) whose
// enc-part is part (EncAPRepPart, APPLICATION 27) encrypted with the ticket
// session key under key usage 12. The session key, not any subkey, protects it
// (MIT mk_rep.c/rd_rep.c do the same).
func BuildAPRep(part APRepPart, sessionKey types.EncryptionKey) ([]byte, error) {
	if part.Cusec < 0 || part.Cusec > 999999 {
		return nil, fmt.Errorf("ticket: AP-REP cusec %d out of range", part.Cusec)
	}
	if part.HasSeq && (part.SeqNumber < 0 || part.SeqNumber > math.MaxUint32) {
		return nil, fmt.Errorf("ticket: AP-REP seq-number %d is not a UInt32", part.SeqNumber)
	}
	if y := part.CTime.UTC().Year(); part.CTime.IsZero() || y < 1 || y > 9999 {
		return nil, fmt.Errorf("ticket: AP-REP ctime %v is not a KerberosTime", part.CTime)
	}
	// KerberosTime: GeneralizedTime "YYYYMMDDHHMMSSZ" (RFC 4120 §5.2.3).
	ctime := derTLV(0x18, []byte(KerberosTime(part.CTime).Format("20060102150405Z")))
	cusec, err := asn1.Marshal(part.Cusec)
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding AP-REP cusec: %w", err)
	}
	fields := [][]byte{derTLV(0xa0, ctime), derTLV(0xa1, cusec)}
	if part.SubKey.KeyType != 0 {
		k, err := asn1.Marshal(part.SubKey)
		if err != nil {
			return nil, fmt.Errorf("ticket: encoding AP-REP subkey: %w", err)
		}
		fields = append(fields, derTLV(0xa2, k))
	}
	if part.HasSeq {
		s, err := asn1.Marshal(part.SeqNumber)
		if err != nil {
			return nil, fmt.Errorf("ticket: encoding AP-REP seq-number: %w", err)
		}
		fields = append(fields, derTLV(0xa3, s))
	}
	enc := asn1tools.AddASNAppTag(derTLV(0x30, fields...), asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(enc, sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, fmt.Errorf("ticket: sealing AP-REP: %w", err)
	}
	b, err := asn1.Marshal(messages.APRep{PVNO: iana.PVNO, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding AP-REP: %w", err)
	}
	return asn1tools.AddASNAppTag(b, asnAppTag.APREP), nil
}

// ParseAPRep decodes an AP-REP and decrypts its enc-part with the ticket
// session key (usage 12). A KRB-ERROR in its place comes back as a
// *RemoteError. The caller must still compare CTime/Cusec with the
// authenticator it sent (RFC 4120 §3.2.5). A seq-number MIT-style encoded as a
// negative 32-bit INTEGER is returned as the equivalent UInt32.
func ParseAPRep(b []byte, sessionKey types.EncryptionKey) (part APRepPart, err error) {
	defer func() {
		if r := recover(); r != nil {
			part, err = APRepPart{}, fmt.Errorf("%w: AP-REP: %v", ErrDecode, r)
		}
	}()
	switch MessageType(b) {
	case msgtype.KRB_AP_REP:
	case msgtype.KRB_ERROR:
		return part, parseRemoteError(b)
	default:
		return part, fmt.Errorf("%w: not an AP-REP (tag %d)", ErrDecode, MessageType(b))
	}
	var rep messages.APRep
	if _, err := asn1.UnmarshalWithParams(b, &rep, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.APREP)); err != nil {
		return part, fmt.Errorf("%w: AP-REP: %w", ErrDecode, err)
	}
	if rep.PVNO != iana.PVNO || rep.MsgType != msgtype.KRB_AP_REP {
		return part, fmt.Errorf("%w: AP-REP with pvno %d, msg-type %d", ErrDecode, rep.PVNO, rep.MsgType)
	}
	if rep.EncPart.EType != sessionKey.KeyType {
		return part, fmt.Errorf("ticket: AP-REP sealed with enctype %d, the session key is enctype %d", rep.EncPart.EType, sessionKey.KeyType)
	}
	plain, err := Decrypt(sessionKey, rep.EncPart.Cipher, keyusage.AP_REP_ENCPART)
	if err != nil {
		return part, fmt.Errorf("ticket: decrypting AP-REP: %w", err)
	}
	var p encAPRepPartASN
	if _, err := asn1.UnmarshalWithParams(plain, &p, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.EncAPRepPart)); err != nil {
		return part, fmt.Errorf("%w: EncAPRepPart: %w", ErrDecode, err)
	}
	part = APRepPart{CTime: p.CTime.UTC(), Cusec: p.Cusec, SubKey: p.Subkey}
	if len(p.SeqNumber.FullBytes) > 0 {
		if p.SeqNumber.Class != asn1.ClassContextSpecific || p.SeqNumber.Tag != 3 || !p.SeqNumber.IsCompound {
			return APRepPart{}, fmt.Errorf("%w: EncAPRepPart has an unexpected element after subkey", ErrDecode)
		}
		var seq int64
		if rest, err := asn1.Unmarshal(p.SeqNumber.Bytes, &seq); err != nil || len(rest) != 0 {
			return APRepPart{}, fmt.Errorf("%w: EncAPRepPart seq-number", ErrDecode)
		}
		if seq < math.MinInt32 || seq > math.MaxUint32 {
			return APRepPart{}, fmt.Errorf("%w: EncAPRepPart seq-number %d is not 32 bits", ErrDecode, seq)
		}
		if seq < 0 {
			seq += 1 << 32
		}
		part.SeqNumber, part.HasSeq = seq, true
	}
	return part, nil
}

// RemoteError is a KRB-ERROR received where another message was expected,
// e.g. in place of an AP-REP or inside a krb5 GSS error token (TOK_ID 03 00).
type RemoteError struct {
	KRBError messages.KRBError
}

func (e *RemoteError) Error() string {
	s := fmt.Sprintf("ticket: peer sent KRB-ERROR %d (%s)", e.KRBError.ErrorCode, errorcode.Lookup(e.KRBError.ErrorCode))
	if e.KRBError.EText != "" {
		s += ": " + e.KRBError.EText
	}
	return s
}

// parseRemoteError decodes a KRB-ERROR into a *RemoteError, or a decode error.
func parseRemoteError(b []byte) error {
	var k messages.KRBError
	if err := k.Unmarshal(b); err != nil {
		return fmt.Errorf("%w: KRB-ERROR: %v", ErrDecode, err)
	}
	return &RemoteError{KRBError: k}
}

// ParseKRBError decodes a KRB-ERROR message into a *RemoteError; any other
// input gives an error wrapping ErrDecode.
func ParseKRBError(b []byte) (re *RemoteError, err error) {
	defer func() {
		if r := recover(); r != nil {
			re, err = nil, fmt.Errorf("%w: KRB-ERROR: %v", ErrDecode, r)
		}
	}()
	if MessageType(b) != msgtype.KRB_ERROR {
		return nil, fmt.Errorf("%w: not a KRB-ERROR (tag %d)", ErrDecode, MessageType(b))
	}
	err = parseRemoteError(b)
	if re, ok := err.(*RemoteError); ok {
		return re, nil
	}
	return nil, err
}
