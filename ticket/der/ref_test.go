package der

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The reference: gokrb5's own decoding and encoding of each type, as the code
// base used it before this package. ref decoders recover from gofork's panics.

func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gokrb5 panicked: %v", r)
		}
	}()
	return f()
}

// kdcReqWire is KDC-REQ with the req-body kept raw, as ticket.ParseKDCRequest
// decoded it with gofork.
type kdcReqWire struct {
	PVNO    int                  `asn1:"explicit,tag:1"`
	MsgType int                  `asn1:"explicit,tag:2"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
	ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
}

func refKDCReq(b []byte) (r KDCReq, err error) {
	err = guard(func() error {
		if len(b) < 2 || b[0]&0xe0 != 0x60 || b[0]&0x1f == 0x1f {
			return errors.New("not tagged")
		}
		mt := int(b[0] & 0x1f)
		if mt != asnAppTag.ASREQ && mt != asnAppTag.TGSREQ {
			return errors.New("not a KDC-REQ")
		}
		var w kdcReqWire
		rest, err := asn1.UnmarshalWithParams(b, &w, fmt.Sprintf("application,explicit,tag:%d", mt))
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return errors.New("trailing")
		}
		if w.MsgType != mt {
			return errors.New("msg-type")
		}
		var inner asn1.RawValue
		if rest, err := asn1.Unmarshal(w.ReqBody.Bytes, &inner); err != nil || len(rest) != 0 {
			return errors.New("req-body not one element")
		}
		r = KDCReq{PVNO: w.PVNO, MsgType: w.MsgType, PAData: w.PAData, RawBody: w.ReqBody.Bytes}
		return r.Body.Unmarshal(r.RawBody)
	})
	return r, err
}

func refMarshalKDCReq(r KDCReq) ([]byte, error) {
	body, err := r.Body.Marshal()
	if err != nil {
		return nil, err
	}
	w := kdcReqWire{PVNO: r.PVNO, MsgType: r.MsgType, PAData: r.PAData,
		ReqBody: asn1.RawValue{Class: asn1.ClassContextSpecific, IsCompound: true, Tag: 4, Bytes: body}}
	b, err := asn1.Marshal(w)
	if err != nil {
		return nil, err
	}
	return asn1tools.AddASNAppTag(b, r.MsgType), nil
}

func marshalApp(v any, tag int) ([]byte, error) {
	b, err := asn1.Marshal(v)
	if err != nil {
		return nil, err
	}
	return asn1tools.AddASNAppTag(b, tag), nil
}

// kerberosTimeWire lets gofork decode and encode a bare KerberosTime.
type kerberosTimeWire struct {
	T time.Time `asn1:"generalized"`
}

// normFlags pads a gokrb5 BitString as DecodeFlags does, for comparison.
func normFlags(f *asn1.BitString) {
	if len(f.Bytes) < 4 {
		b := make([]byte, 4)
		copy(b, f.Bytes)
		*f = asn1.BitString{Bytes: b, BitLength: 32}
	}
}

// kdcOptionsAsSent reads the KDCOptions of a req-body with gofork, without
// gokrb5's padding at the front.
func kdcOptionsAsSent(body []byte) asn1.BitString {
	var m struct {
		KDCOptions asn1.BitString `asn1:"explicit,tag:0"`
	}
	asn1.Unmarshal(body, &m)
	normFlags(&m.KDCOptions)
	return m.KDCOptions
}

// bounded reports whether err is one of our bounds rather than a disagreement.
func bounded(err error) bool {
	return err != nil && strings.Contains(err.Error(), "more than")
}

func canonical(b []byte, marshal func() ([]byte, error)) bool {
	m, err := marshal()
	return err == nil && bytes.Equal(m, b)
}

// refs lists, per decoder, gokrb5's decoder and encoder and ours.
type ref struct {
	ours    func([]byte) (any, error)
	theirs  func([]byte) (any, error)
	marshal func(any) ([]byte, error) // gokrb5's encoding of theirs' value
	norm    func(in []byte, theirs any) any
}

var refs = map[string]ref{
	"KDCReq": {
		ours: func(b []byte) (any, error) { var r KDCReq; err := DecodeKDCReq(b, &r); return r, err },
		theirs: func(b []byte) (any, error) {
			return refKDCReq(b)
		},
		marshal: func(v any) ([]byte, error) { return refMarshalKDCReq(v.(KDCReq)) },
		norm: func(in []byte, v any) any {
			r := v.(KDCReq)
			r.Body.KDCOptions = kdcOptionsAsSent(r.RawBody)
			for i := range r.Body.AdditionalTickets {
				r.Body.AdditionalTickets[i].DecryptedEncPart = messages.EncTicketPart{}
			}
			return r
		},
	},
	"APReq": {
		ours: func(b []byte) (any, error) { var r messages.APReq; err := DecodeAPReq(b, &r); return r, err },
		theirs: func(b []byte) (any, error) {
			var r messages.APReq
			err := guard(func() error { return r.Unmarshal(b) })
			return r, err
		},
		marshal: func(v any) ([]byte, error) { r := v.(messages.APReq); return r.Marshal() },
		norm: func(in []byte, v any) any {
			r := v.(messages.APReq)
			normFlags(&r.APOptions)
			return r
		},
	},
	"Ticket": {
		ours: func(b []byte) (any, error) { var t messages.Ticket; err := DecodeTicket(b, &t); return t, err },
		theirs: func(b []byte) (any, error) {
			var t messages.Ticket
			err := guard(func() error { return t.Unmarshal(b) })
			return t, err
		},
		marshal: func(v any) ([]byte, error) { t := v.(messages.Ticket); return t.Marshal() },
	},
	"EncTicketPart": {
		ours: func(b []byte) (any, error) {
			var p messages.EncTicketPart
			err := DecodeEncTicketPart(b, &p)
			return p, err
		},
		theirs: func(b []byte) (any, error) {
			var p messages.EncTicketPart
			err := guard(func() error { return p.Unmarshal(b) })
			return p, err
		},
		marshal: func(v any) ([]byte, error) { return marshalApp(v.(messages.EncTicketPart), asnAppTag.EncTicketPart) },
		norm: func(in []byte, v any) any {
			p := v.(messages.EncTicketPart)
			normFlags(&p.Flags)
			return p
		},
	},
	"Authenticator": {
		ours: func(b []byte) (any, error) {
			var a types.Authenticator
			err := DecodeAuthenticator(b, &a)
			return a, err
		},
		theirs: func(b []byte) (any, error) {
			var a types.Authenticator
			err := guard(func() error { return a.Unmarshal(b) })
			return a, err
		},
		marshal: func(v any) ([]byte, error) { a := v.(types.Authenticator); return a.Marshal() },
	},
	"EncryptedData": {
		ours: func(b []byte) (any, error) {
			var ed types.EncryptedData
			err := DecodeEncryptedData(b, &ed)
			return ed, err
		},
		theirs: func(b []byte) (any, error) {
			var ed types.EncryptedData
			err := guard(func() error { return ed.Unmarshal(b) })
			return ed, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.(types.EncryptedData)) },
	},
	"PAEncTSEnc": {
		ours: func(b []byte) (any, error) { var ts types.PAEncTSEnc; err := DecodePAEncTSEnc(b, &ts); return ts, err },
		theirs: func(b []byte) (any, error) {
			var ts types.PAEncTSEnc
			err := guard(func() error { return ts.Unmarshal(b) })
			return ts, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.(types.PAEncTSEnc)) },
	},
	"PAData": {
		ours: func(b []byte) (any, error) { return DecodePAData(b) },
		theirs: func(b []byte) (any, error) {
			var p types.PADataSequence
			err := guard(func() error { return p.Unmarshal(b) })
			return p, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.(types.PADataSequence)) },
	},
	"Checksum": {
		ours: func(b []byte) (any, error) { var c types.Checksum; err := DecodeChecksum(b, &c); return c, err },
		theirs: func(b []byte) (any, error) {
			var c types.Checksum
			err := guard(func() error { return c.Unmarshal(b) })
			return c, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.(types.Checksum)) },
	},
	"PrincipalName": {
		ours: func(b []byte) (any, error) {
			var pn types.PrincipalName
			err := DecodePrincipalName(b, &pn)
			return pn, err
		},
		theirs: func(b []byte) (any, error) {
			var pn types.PrincipalName
			err := guard(func() error { _, err := asn1.Unmarshal(b, &pn); return err })
			return pn, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.(types.PrincipalName)) },
	},
	"HostAddresses": {
		ours: func(b []byte) (any, error) { return DecodeHostAddresses(b) },
		theirs: func(b []byte) (any, error) {
			var a []types.HostAddress
			err := guard(func() error { _, err := asn1.Unmarshal(b, &a); return err })
			return a, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.([]types.HostAddress)) },
	},
	"AuthorizationData": {
		ours: func(b []byte) (any, error) { return DecodeAuthorizationData(b) },
		theirs: func(b []byte) (any, error) {
			var a types.AuthorizationData
			err := guard(func() error { return a.Unmarshal(b) })
			return a, err
		},
		marshal: func(v any) ([]byte, error) { return asn1.Marshal(v.(types.AuthorizationData)) },
	},
	"KerberosTime": {
		ours: func(b []byte) (any, error) { return DecodeKerberosTime(b) },
		theirs: func(b []byte) (any, error) {
			// gofork's decoding of a KerberosTime field, wrapped in a
			// SEQUENCE so that its params apply.
			var w kerberosTimeWire
			seq := append([]byte{0x30}, asn1tools.MarshalLengthBytes(len(b))...)
			err := guard(func() error {
				rest, err := asn1.Unmarshal(append(seq, b...), &w)
				if err == nil && len(rest) > 0 {
					err = errors.New("trailing")
				}
				return err
			})
			if err == nil && (len(b) == 0 || b[0] != 0x18) {
				err = errors.New("not a GeneralizedTime") // gofork takes a UTCTime, whose re-encoding differs
			}
			return w.T, err
		},
		marshal: func(v any) ([]byte, error) {
			b, err := asn1.Marshal(kerberosTimeWire{T: v.(time.Time)})
			if err != nil {
				return nil, err
			}
			return b[2:], nil
		},
	},
}
