// Package ticket is the wire layer shared by the KDC, the client and the service:
// what gokrb5 lacks or gets wrong for them (request decoding that keeps the raw
// req-body, ticket and reply building, AP-REP, MIT ccache and keytab files).
// Everything here is a pure function over bytes and keys: no sockets, no store.
package ticket

import (
	"errors"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// ErrDecode reports bytes that are not the expected Kerberos message.
var ErrDecode = errors.New("ticket: cannot decode")

// KDCRequest is a decoded AS-REQ or TGS-REQ (RFC 4120 §5.4.1) that keeps the
// req-body bytes exactly as they arrived (RawBody), because the TGS
// authenticator checksum covers those bytes and a re-encoding may differ
// (gokrb5 drops them). Its byte slices alias the bytes it was parsed from.
type KDCRequest der.KDCReq

// MessageType returns the Kerberos message type of an encoded message from its
// APPLICATION tag, or 0 if b does not start like one.
func MessageType(b []byte) int {
	if len(b) < 2 || b[0]&0xe0 != 0x60 || b[0]&0x1f == 0x1f {
		return 0
	}
	return int(b[0] & 0x1f)
}

// ParseKDCRequest decodes an AS-REQ or TGS-REQ with the reflection-free
// decoder of package der. It never panics on bad input. The request's byte
// slices alias b, which must not change while the request is in use.
func ParseKDCRequest(b []byte) (*KDCRequest, error) {
	if mt := MessageType(b); mt != asnAppTag.ASREQ && mt != asnAppTag.TGSREQ {
		return nil, fmt.Errorf("%w: not a KDC request (tag %d)", ErrDecode, mt)
	}
	req := new(KDCRequest)
	if err := der.DecodeKDCReq(b, (*der.KDCReq)(req)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return req, nil
}

// PA returns the value of the first padata of type t, and whether there was one.
// Later duplicates are ignored (gokrb5 clients send PA-REQ-ENC-PA-REP twice).
func (r *KDCRequest) PA(t int32) ([]byte, bool) { return PAValue(r.PAData, t) }

// PAValue returns the value of the first padata of type t in pas (a request's,
// a reply's, or METHOD-DATA), and whether there was one.
func PAValue(pas []types.PAData, t int32) ([]byte, bool) {
	for _, pa := range pas {
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
