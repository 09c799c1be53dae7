package ticket

import (
	"fmt"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket/der"
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
	buf := getScratch()
	defer putScratch(buf)
	b, err := der.AppendEncTicketPart((*buf)[:0], &part)
	*buf = b
	if err != nil {
		return messages.Ticket{}, fmt.Errorf("ticket: encoding EncTicketPart: %w", err)
	}
	ed, err := c.Encrypt(key, keyusage.KDC_REP_TICKET, b, kvno)
	clear(b) // the session key
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
	if err := der.DecodeEncTicketPart(b, &part); err != nil {
		return messages.EncTicketPart{}, fmt.Errorf("%w: EncTicketPart: %w", ErrDecode, err)
	}
	return part, nil
}

// MarshalTicket encodes a Ticket without any decrypted part.
func MarshalTicket(t messages.Ticket) ([]byte, error) {
	b, err := der.AppendTicket(nil, &t) // never writes DecryptedEncPart
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
	// Session, when not nil, is used instead of Keys: the per-request keys of
	// a TGS exchange, which has derived from the same session key already.
	Session *SessionKeys
}

// defaultLastReq is the last-req MIT's KDC sends, {0, 19700101000000Z}
// (protocol-notes §2); read-only.
var defaultLastReq = []messages.LastReq{{LRType: 0, LRValue: Epoch}}

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
		p.LastReqs = defaultLastReq
	}
	tag := asnAppTag.EncASRepPart
	if r.MsgType == msgtype.KRB_TGS_REP {
		tag = asnAppTag.EncTGSRepPart
	}
	buf := getScratch()
	defer putScratch(buf)
	b, err := der.AppendEncKDCRepPart((*buf)[:0], &p, tag)
	*buf = b
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding EncKDCRepPart: %w", err)
	}
	var ed types.EncryptedData
	if r.Session != nil {
		ed, err = r.Session.Encrypt(r.Key, r.Usage, b, r.KVNO)
	} else {
		ed, err = r.Keys.Encrypt(r.Key, r.Usage, b, r.KVNO)
	}
	clear(b) // the session key
	if err != nil {
		return nil, fmt.Errorf("ticket: sealing reply part: %w", err)
	}
	fields := messages.KDCRepFields{
		PVNO: iana.PVNO, MsgType: r.MsgType, PAData: r.PAData, CRealm: r.CRealm, CName: r.CName,
		Ticket: r.Ticket, EncPart: ed,
	}
	// The reply is returned, and may be kept for retransmissions: its own buffer.
	out := make([]byte, 0, 192+len(r.Ticket.EncPart.Cipher)+len(ed.Cipher)+len(r.CRealm)+len(r.Ticket.Realm))
	out, err = der.AppendKDCRep(out, &fields)
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
	b, err := der.AppendKRBError(make([]byte, 0, 160+len(e.EData)+len(e.EText)), &k)
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding KRB-ERROR: %w", err)
	}
	return b, nil
}

// MethodData encodes METHOD-DATA (SEQUENCE OF PA-DATA, RFC 4120 §5.9.1), the
// e-data of KDC_ERR_PREAUTH_REQUIRED.
func MethodData(pas ...types.PAData) ([]byte, error) {
	n := 8
	for _, pa := range pas {
		n += 16 + len(pa.PADataValue)
	}
	return der.AppendPAData(make([]byte, 0, n), pas), nil
}

// ETypeInfo2 encodes PA-ETYPE-INFO2 (RFC 4120 §5.2.7.5) as a PA-DATA.
func ETypeInfo2(entries ...types.ETypeInfo2Entry) (types.PAData, error) {
	n := 8
	for _, e := range entries {
		n += 24 + len(e.Salt) + len(e.S2KParams)
	}
	return types.PAData{PADataType: 19, PADataValue: der.AppendETypeInfo2(make([]byte, 0, n), entries)}, nil
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

// scratch holds the plaintext buffers of encodings that are encrypted at once
// (EncTicketPart, EncKDCRepPart): the ciphertext is a new slice, so the
// buffer goes back to the pool, cleared of the session key it held.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getScratch() *[]byte { return scratch.Get().(*[]byte) }

func putScratch(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // an outsized request; let it go
	}
	scratch.Put(b)
}
