package ticket

import (
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Epoch is 19700101000000Z, the KerberosTime that stands for "no limit" in a
// request's till (RFC 4120 §5.4.1) and the last-req value MIT sends.
var Epoch = time.Unix(0, 0).UTC()

// KerberosTime truncates t to what KerberosTime can carry: UTC, whole seconds
// (RFC 4120 §5.2.3). gofork's asn1 writes a zone offset for non-UTC times, which
// is invalid DER for KerberosTime.
func KerberosTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

// SealTicket encrypts part with the service key (key usage 2, RFC 4120 §5.3) and
// returns a fresh Ticket: never one that carries a decrypted part, since gokrb5's
// Ticket.Marshal would leak it onto the wire. Nothing is cached: a KDC sealing
// with long-term keys uses KeyCache.SealTicket.
func SealTicket(realm string, sname types.PrincipalName, part messages.EncTicketPart, key types.EncryptionKey, kvno int) (messages.Ticket, error) {
	var c *KeyCache
	return c.SealTicket(realm, sname, part, key, kvno)
}

// SealTicket is the package's SealTicket with the service key's derived keys
// taken from, or added to, c.
func (c *KeyCache) SealTicket(realm string, sname types.PrincipalName, part messages.EncTicketPart, key types.EncryptionKey, kvno int) (messages.Ticket, error) {
	part.AuthTime = KerberosTime(part.AuthTime)
	part.StartTime = KerberosTime(part.StartTime)
	part.EndTime = KerberosTime(part.EndTime)
	part.RenewTill = KerberosTime(part.RenewTill)
	b, err := asn1.Marshal(part)
	if err != nil {
		return messages.Ticket{}, fmt.Errorf("ticket: encoding EncTicketPart: %w", err)
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart)
	ed, err := c.Encrypt(key, keyusage.KDC_REP_TICKET, b, kvno)
	if err != nil {
		return messages.Ticket{}, fmt.Errorf("ticket: sealing ticket: %w", err)
	}
	return messages.Ticket{TktVNO: iana.PVNO, Realm: realm, SName: sname, EncPart: ed}, nil
}

// OpenTicket decrypts a ticket's enc-part with the service key (usage 2) and
// returns the EncTicketPart; t itself is not modified. Nothing is cached: a KDC
// opening TGTs with the krbtgt key uses KeyCache.OpenTicket.
func OpenTicket(t messages.Ticket, key types.EncryptionKey) (messages.EncTicketPart, error) {
	var c *KeyCache
	return c.OpenTicket(t, key)
}

// OpenTicket is the package's OpenTicket with the service key's derived keys
// taken from, or added to, c.
func (c *KeyCache) OpenTicket(t messages.Ticket, key types.EncryptionKey) (messages.EncTicketPart, error) {
	b, err := c.Decrypt(t.EncPart, key, keyusage.KDC_REP_TICKET)
	if err != nil {
		return messages.EncTicketPart{}, fmt.Errorf("ticket: decrypting ticket: %w", err)
	}
	var part messages.EncTicketPart
	if err := part.Unmarshal(b); err != nil {
		return messages.EncTicketPart{}, fmt.Errorf("%w: EncTicketPart: %w", ErrDecode, err)
	}
	return part, nil
}

// MarshalTicket encodes a Ticket without any decrypted part.
func MarshalTicket(t messages.Ticket) ([]byte, error) {
	clean := messages.Ticket{TktVNO: t.TktVNO, Realm: t.Realm, SName: t.SName, EncPart: t.EncPart}
	b, err := clean.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding Ticket: %w", err)
	}
	return b, nil
}

// Reply is what a KDC needs to build an AS-REP or TGS-REP (RFC 4120 §5.4.2).
type Reply struct {
	MsgType int // msgtype.KRB_AS_REP or msgtype.KRB_TGS_REP
	PAData  types.PADataSequence
	CRealm  string
	CName   types.PrincipalName
	Ticket  messages.Ticket
	Part    messages.EncKDCRepPart
	// Key and Usage protect Part: the client key with usage 3 (AS), the TGT
	// session key with 8 or the authenticator subkey with 9 (TGS).
	Key   types.EncryptionKey
	KVNO  int
	Usage uint32
	// Keys, when not nil, caches the derived keys of Key: set it for a
	// long-term key (the client key of an AS-REP), leave it nil for session
	// keys and subkeys, which are used once.
	Keys *KeyCache
}

// Marshal encrypts the reply part and encodes the whole reply. The part is tagged
// EncASRepPart (25) for AS and EncTGSRepPart (26) for TGS, as RFC 4120 §5.4.2 says
// (MIT sends 26 for both and accepts either).
func (r Reply) Marshal() ([]byte, error) {
	p := r.Part
	p.AuthTime = KerberosTime(p.AuthTime)
	p.StartTime = KerberosTime(p.StartTime)
	p.EndTime = KerberosTime(p.EndTime)
	p.RenewTill = KerberosTime(p.RenewTill)
	p.KeyExpiration = KerberosTime(p.KeyExpiration)
	if p.LastReqs == nil {
		p.LastReqs = []messages.LastReq{{LRType: 0, LRValue: Epoch}}
	}
	b, err := asn1.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding EncKDCRepPart: %w", err)
	}
	tag := asnAppTag.EncASRepPart
	if r.MsgType == msgtype.KRB_TGS_REP {
		tag = asnAppTag.EncTGSRepPart
	}
	b = asn1tools.AddASNAppTag(b, tag)
	ed, err := r.Keys.Encrypt(r.Key, r.Usage, b, r.KVNO)
	if err != nil {
		return nil, fmt.Errorf("ticket: sealing reply part: %w", err)
	}
	fields := messages.KDCRepFields{
		PVNO: iana.PVNO, MsgType: r.MsgType, PAData: r.PAData, CRealm: r.CRealm, CName: r.CName,
		Ticket:  messages.Ticket{TktVNO: r.Ticket.TktVNO, Realm: r.Ticket.Realm, SName: r.Ticket.SName, EncPart: r.Ticket.EncPart},
		EncPart: ed,
	}
	var out []byte
	if r.MsgType == msgtype.KRB_TGS_REP {
		rep := messages.TGSRep{KDCRepFields: fields}
		out, err = rep.Marshal()
	} else {
		rep := messages.ASRep{KDCRepFields: fields}
		out, err = rep.Marshal()
	}
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding KDC-REP: %w", err)
	}
	return out, nil
}

// DecryptReplyPart opens the enc-part of an AS-REP or TGS-REP with key and usage
// and decodes the EncKDCRepPart, accepting either APPLICATION tag 25 or 26: RFC
// 4120 §5.4.2 allows receivers to relax the check, and MIT's KDC sends 26 in
// AS-REPs.
func DecryptReplyPart(ed types.EncryptedData, key types.EncryptionKey, usage uint32) (messages.EncKDCRepPart, error) {
	b, err := crypto.DecryptEncPart(ed, key, usage)
	if err != nil {
		return messages.EncKDCRepPart{}, fmt.Errorf("ticket: decrypting reply part: %w", err)
	}
	var p messages.EncKDCRepPart
	for _, tag := range []int{asnAppTag.EncASRepPart, asnAppTag.EncTGSRepPart} {
		if MessageType(b) != tag {
			continue
		}
		if _, err := asn1.UnmarshalWithParams(b, &p, fmt.Sprintf("application,explicit,tag:%d", tag)); err != nil {
			return p, fmt.Errorf("%w: EncKDCRepPart: %w", ErrDecode, err)
		}
		return p, nil
	}
	return p, fmt.Errorf("%w: reply part has tag %d, want 25 or 26", ErrDecode, MessageType(b))
}

// ErrorReply holds the fields of a KRB-ERROR (RFC 4120 §5.9.1). sname and realm
// are mandatory on the wire; cname and crealm are sent when known.
type ErrorReply struct {
	Code   int32
	Now    time.Time // the KDC's real time: clients learn their clock offset from it
	CRealm string
	CName  types.PrincipalName
	Realm  string
	SName  types.PrincipalName
	EText  string
	EData  []byte
}

// Marshal encodes the KRB-ERROR.
func (e ErrorReply) Marshal() ([]byte, error) {
	now := e.Now.UTC()
	k := messages.KRBError{
		PVNO: iana.PVNO, MsgType: msgtype.KRB_ERROR,
		STime: now.Truncate(time.Second), Susec: now.Nanosecond() / 1000,
		ErrorCode: e.Code, CRealm: e.CRealm, CName: e.CName,
		Realm: e.Realm, SName: e.SName, EText: e.EText, EData: e.EData,
	}
	b, err := k.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding KRB-ERROR: %w", err)
	}
	return b, nil
}

// MethodData encodes METHOD-DATA (SEQUENCE OF PA-DATA, RFC 4120 §5.9.1), the
// e-data of KDC_ERR_PREAUTH_REQUIRED.
func MethodData(pas ...types.PAData) ([]byte, error) {
	b, err := asn1.Marshal(types.PADataSequence(pas))
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding METHOD-DATA: %w", err)
	}
	return b, nil
}

// ETypeInfo2 encodes PA-ETYPE-INFO2 (RFC 4120 §5.2.7.5) as a PA-DATA.
func ETypeInfo2(entries ...types.ETypeInfo2Entry) (types.PAData, error) {
	b, err := asn1.Marshal(types.ETypeInfo2(entries))
	if err != nil {
		return types.PAData{}, fmt.Errorf("ticket: encoding ETYPE-INFO2: %w", err)
	}
	return types.PAData{PADataType: 19, PADataValue: b}, nil
}

// Flags builds KerberosFlags (a 32-bit BIT STRING, RFC 4120 §5.2.8) with the
// given flag bits set.
func Flags(bits ...int) asn1.BitString {
	f := types.NewKrbFlags()
	for _, b := range bits {
		types.SetFlag(&f, b)
	}
	return f
}
