package ticket

import (
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The wire structs below are Kerberos messages with one part kept as raw DER,
// for code that must send or compare bytes exactly as they were encoded: the
// TGS checksum covers the req-body as sent, and a ticket must travel byte for
// byte as the KDC issued it (gokrb5 re-encodes both). Each RawValue holds the
// whole context-tagged element, its [n] wrapper included: that is what decoding
// yields, and gofork writes a RawValue as is when encoding. Add the message's
// APPLICATION tag with asn1tools.AddASNAppTag, or give it to UnmarshalWithParams.

// KDCReqWire is KDC-REQ (RFC 4120 §5.4.1) with the req-body as raw DER. Its
// first field tag is [1]: KDC-REQ has no field [0].
type KDCReqWire struct {
	PVNO    int                  `asn1:"explicit,tag:1"`
	MsgType int                  `asn1:"explicit,tag:2"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
	ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
}

// KDCRepWire is KDC-REP (RFC 4120 §5.4.2) with the ticket as raw DER.
type KDCRepWire struct {
	PVNO    int                  `asn1:"explicit,tag:0"`
	MsgType int                  `asn1:"explicit,tag:1"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:2"`
	CRealm  string               `asn1:"generalstring,explicit,tag:3"`
	CName   types.PrincipalName  `asn1:"explicit,tag:4"`
	Ticket  asn1.RawValue        `asn1:"explicit,tag:5"`
	EncPart types.EncryptedData  `asn1:"explicit,tag:6"`
}

// APReqWire is AP-REQ (RFC 4120 §5.5.1) with the ticket as raw DER.
type APReqWire struct {
	PVNO          int                 `asn1:"explicit,tag:0"`
	MsgType       int                 `asn1:"explicit,tag:1"`
	APOptions     asn1.BitString      `asn1:"explicit,tag:2"`
	Ticket        asn1.RawValue       `asn1:"explicit,tag:3"`
	Authenticator types.EncryptedData `asn1:"explicit,tag:4"`
}
