// Package ticket is the wire layer shared by the KDC, the client and the service:
// what gokrb5 lacks or gets wrong for them (request decoding that keeps the raw
// req-body, ticket and reply building, AP-REP, MIT ccache and keytab files).
// Everything here is a pure function over bytes and keys: no sockets, no store.
package ticket

import (
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ErrDecode reports bytes that are not the expected Kerberos message.
var ErrDecode = errors.New("ticket: cannot decode")

// KDCRequest is a decoded AS-REQ or TGS-REQ (RFC 4120 §5.4.1) that keeps the
// req-body bytes exactly as they arrived, because the TGS authenticator checksum
// covers those bytes and a re-encoding may differ (gokrb5 drops them).
type KDCRequest struct {
	MsgType int // msgtype.KRB_AS_REQ or msgtype.KRB_TGS_REQ
	PVNO    int
	PAData  types.PADataSequence
	Body    messages.KDCReqBody
	// RawBody is the DER KDC-REQ-BODY as received.
	RawBody []byte
}

// MessageType returns the Kerberos message type of an encoded message from its
// APPLICATION tag, or 0 if b does not start like one.
func MessageType(b []byte) int {
	if len(b) < 2 || b[0]&0xe0 != 0x60 || b[0]&0x1f == 0x1f {
		return 0
	}
	return int(b[0] & 0x1f)
}

// ParseKDCRequest decodes an AS-REQ or TGS-REQ. It never panics on bad input.
func ParseKDCRequest(b []byte) (req *KDCRequest, err error) {
	defer func() {
		// gofork's asn1 has panicked on hostile input before; a decoder of
		// network bytes must not take the KDC down with it.
		if r := recover(); r != nil {
			req, err = nil, fmt.Errorf("%w: request: %v", ErrDecode, r)
		}
	}()
	mt := MessageType(b)
	if mt != asnAppTag.ASREQ && mt != asnAppTag.TGSREQ {
		return nil, fmt.Errorf("%w: not a KDC request (tag %d)", ErrDecode, mt)
	}
	var outer KDCReqWire
	rest, err := asn1.UnmarshalWithParams(b, &outer, fmt.Sprintf("application,explicit,tag:%d", mt))
	if err != nil {
		return nil, fmt.Errorf("%w: KDC-REQ: %w", ErrDecode, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after KDC-REQ", ErrDecode, len(rest))
	}
	wantType := msgtype.KRB_AS_REQ
	if mt == asnAppTag.TGSREQ {
		wantType = msgtype.KRB_TGS_REQ
	}
	if outer.MsgType != wantType {
		return nil, fmt.Errorf("%w: msg-type %d inside tag %d", ErrDecode, outer.MsgType, mt)
	}
	req = &KDCRequest{MsgType: outer.MsgType, PVNO: outer.PVNO, PAData: outer.PAData, RawBody: outer.ReqBody.Bytes}
	var inner asn1.RawValue
	if rest, err := asn1.Unmarshal(req.RawBody, &inner); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: req-body is not one DER element", ErrDecode)
	}
	if err := req.Body.Unmarshal(req.RawBody); err != nil {
		return nil, fmt.Errorf("%w: KDC-REQ-BODY: %w", ErrDecode, err)
	}
	return req, nil
}

// PA returns the value of the first padata of type t, and whether there was one.
// Later duplicates are ignored (gokrb5 clients send PA-REQ-ENC-PA-REP twice).
func (r *KDCRequest) PA(t int32) ([]byte, bool) {
	for _, pa := range r.PAData {
		if pa.PADataType == t {
			return pa.PADataValue, true
		}
	}
	return nil, false
}

// PATypes lists the padata types in the request, in order, for logs.
func (r *KDCRequest) PATypes() []int32 {
	out := make([]int32, len(r.PAData))
	for i, pa := range r.PAData {
		out[i] = pa.PADataType
	}
	return out
}
