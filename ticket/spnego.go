package ticket

import (
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
)

// SPNEGO negState values (RFC 4178 §4.2.2). NegStateAbsent marks a NegTokenResp
// without the field.
const (
	NegStateAbsent           = -1
	NegStateAcceptCompleted  = 0
	NegStateAcceptIncomplete = 1
	NegStateReject           = 2
	NegStateRequestMIC       = 3
)

// NegTokenInit is the initiator's first SPNEGO token (RFC 4178 §4.2.1). The
// MechToken is the optimistic token of MechTypes[0], for krb5 a framed AP-REQ
// (FrameKRB5Token). A zero-length ReqFlags is not sent.
type NegTokenInit struct {
	MechTypes   []asn1.ObjectIdentifier
	ReqFlags    asn1.BitString
	MechToken   []byte
	MechListMIC []byte
}

// NegTokenResp is every later SPNEGO token (RFC 4178 §4.2.2). NegState is one
// of the NegState constants; NegStateAbsent (-1) omits it.
type NegTokenResp struct {
	NegState      int /* -1 absent, 0 accept-completed, 1 accept-incomplete, 2 reject, 3 request-mic */
	SupportedMech asn1.ObjectIdentifier
	ResponseToken []byte
	MechListMIC   []byte
}

// oidSPNEGODER is the DER encoding of OIDSPNEGO, tag and length included.
var oidSPNEGODER = []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}

// MarshalNegTokenInit encodes t as the initial SPNEGO context token: framed
// with 0x60 and the SPNEGO OID (RFC 2743 §3.1), around NegotiationToken's
// choice [0] NegTokenInit.
func MarshalNegTokenInit(t NegTokenInit) ([]byte, error) {
	var mechs [][]byte
	for _, m := range t.MechTypes {
		b, err := asn1.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("ticket: encoding SPNEGO mechType %v: %w", m, err)
		}
		mechs = append(mechs, b)
	}
	fields := [][]byte{derTLV(0xa0, derTLV(0x30, mechs...))}
	if t.ReqFlags.BitLength > 0 {
		b, err := asn1.Marshal(t.ReqFlags)
		if err != nil {
			return nil, fmt.Errorf("ticket: encoding SPNEGO reqFlags: %w", err)
		}
		fields = append(fields, derTLV(0xa1, b))
	}
	if t.MechToken != nil {
		fields = append(fields, derTLV(0xa2, derTLV(0x04, t.MechToken)))
	}
	if t.MechListMIC != nil {
		fields = append(fields, derTLV(0xa3, derTLV(0x04, t.MechListMIC)))
	}
	return derTLV(0x60, oidSPNEGODER, derTLV(0xa0, derTLV(0x30, fields...))), nil
}

// MarshalNegTokenResp encodes t as NegotiationToken's choice [1] NegTokenResp.
// It is not framed: only the initial token carries the 0x60/OID framing (RFC
// 4178 §4.2).
func MarshalNegTokenResp(t NegTokenResp) ([]byte, error) {
	var fields [][]byte
	if t.NegState != NegStateAbsent {
		if t.NegState < NegStateAcceptCompleted || t.NegState > NegStateRequestMIC {
			return nil, fmt.Errorf("ticket: SPNEGO negState %d out of range", t.NegState)
		}
		fields = append(fields, derTLV(0xa0, []byte{0x0a, 0x01, byte(t.NegState)}))
	}
	if len(t.SupportedMech) > 0 {
		b, err := asn1.Marshal(t.SupportedMech)
		if err != nil {
			return nil, fmt.Errorf("ticket: encoding SPNEGO supportedMech %v: %w", t.SupportedMech, err)
		}
		fields = append(fields, derTLV(0xa1, b))
	}
	if t.ResponseToken != nil {
		fields = append(fields, derTLV(0xa2, derTLV(0x04, t.ResponseToken)))
	}
	if t.MechListMIC != nil {
		fields = append(fields, derTLV(0xa3, derTLV(0x04, t.MechListMIC)))
	}
	return derTLV(0xa1, derTLV(0x30, fields...)), nil
}

// ParseNegToken decodes a SPNEGO token: a framed initial token holding a
// NegTokenInit, or a bare [1] NegTokenResp. A bare [0] NegTokenInit is
// accepted too. Exactly one of the results is non-nil on success. Microsoft's
// NegTokenInit2 layout (negHints at [3], mechListMIC at [4]) is understood.
func ParseNegToken(b []byte) (init *NegTokenInit, resp *NegTokenResp, err error) {
	defer func() {
		if r := recover(); r != nil {
			init, resp, err = nil, nil, fmt.Errorf("%w: SPNEGO token: %v", ErrDecode, r)
		}
	}()
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("%w: empty SPNEGO token", ErrDecode)
	}
	body := b
	if b[0] == 0x60 {
		mech, inner, err := ParseGSSToken(b)
		if err != nil {
			return nil, nil, err
		}
		if !mech.Equal(OIDSPNEGO) {
			return nil, nil, fmt.Errorf("%w: GSS token for mechanism %v, not SPNEGO", ErrDecode, mech)
		}
		if len(inner) == 0 || inner[0] != 0xa0 {
			return nil, nil, fmt.Errorf("%w: initial SPNEGO token does not hold a NegTokenInit", ErrDecode)
		}
		body = inner
	}
	tag, content, rest, err := readDER(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SPNEGO token: %w", ErrDecode, err)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: SPNEGO token has %d bytes after its end", ErrDecode, len(rest))
	}
	seq, err := sequenceOf(content)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SPNEGO token: %w", ErrDecode, err)
	}
	switch tag {
	case 0xa0:
		t, err := parseNegTokenInit(seq)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: NegTokenInit: %w", ErrDecode, err)
		}
		return t, nil, nil
	case 0xa1:
		t, err := parseNegTokenResp(seq)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: NegTokenResp: %w", ErrDecode, err)
		}
		return nil, t, nil
	}
	return nil, nil, fmt.Errorf("%w: SPNEGO token starts with 0x%02x", ErrDecode, tag)
}

// sequenceOf returns the contents of the single SEQUENCE that b must be.
func sequenceOf(b []byte) ([]byte, error) {
	tag, content, rest, err := readDER(b)
	if err != nil {
		return nil, err
	}
	if tag != 0x30 || len(rest) != 0 {
		return nil, errors.New("not a single SEQUENCE")
	}
	return content, nil
}

// contextFields walks the [n] EXPLICIT fields of a SEQUENCE, in increasing
// tag order, calling f with each tag number and the inner element.
func contextFields(b []byte, f func(n int, elem []byte) error) error {
	last := -1
	for len(b) > 0 {
		tag, content, rest, err := readDER(b)
		if err != nil {
			return err
		}
		if tag&0xe0 != 0xa0 {
			return fmt.Errorf("unexpected tag 0x%02x", tag)
		}
		n := int(tag & 0x1f)
		if n <= last {
			return fmt.Errorf("field [%d] out of order", n)
		}
		last = n
		if err := f(n, content); err != nil {
			return fmt.Errorf("field [%d]: %w", n, err)
		}
		b = rest
	}
	return nil
}

// octetString decodes an element that must be exactly one primitive OCTET
// STRING.
func octetString(b []byte) ([]byte, error) {
	tag, content, rest, err := readDER(b)
	if err != nil {
		return nil, err
	}
	if tag != 0x04 || len(rest) != 0 {
		return nil, errors.New("not an OCTET STRING")
	}
	return append([]byte{}, content...), nil
}

// objectIdentifier decodes an element that must be exactly one OID.
func objectIdentifier(b []byte) (asn1.ObjectIdentifier, error) {
	if len(b) == 0 || b[0] != 0x06 {
		return nil, errors.New("not an OBJECT IDENTIFIER")
	}
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(b, &oid)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes after OBJECT IDENTIFIER")
	}
	return oid, nil
}

func parseNegTokenInit(b []byte) (*NegTokenInit, error) {
	t := &NegTokenInit{}
	seen := false
	err := contextFields(b, func(n int, elem []byte) error {
		switch n {
		case 0:
			seen = true
			list, err := sequenceOf(elem)
			if err != nil {
				return err
			}
			for len(list) > 0 {
				_, _, rest, err := readDER(list)
				if err != nil {
					return err
				}
				oid, err := objectIdentifier(list[:len(list)-len(rest)])
				if err != nil {
					return err
				}
				t.MechTypes = append(t.MechTypes, oid)
				list = rest
			}
		case 1:
			if len(elem) == 0 || elem[0] != 0x03 {
				return errors.New("not a BIT STRING")
			}
			rest, err := asn1.Unmarshal(elem, &t.ReqFlags)
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return errors.New("trailing bytes after BIT STRING")
			}
		case 2:
			tok, err := octetString(elem)
			if err != nil {
				return err
			}
			t.MechToken = tok
		case 3:
			// mechListMIC in NegTokenInit, or negHints (a SEQUENCE) in
			// Microsoft's NegTokenInit2.
			if len(elem) > 0 && elem[0] == 0x30 {
				return nil
			}
			mic, err := octetString(elem)
			if err != nil {
				return err
			}
			t.MechListMIC = mic
		case 4:
			mic, err := octetString(elem)
			if err != nil {
				return err
			}
			t.MechListMIC = mic
		default:
			return errors.New("unknown field")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !seen {
		return nil, errors.New("no mechTypes")
	}
	return t, nil
}

func parseNegTokenResp(b []byte) (*NegTokenResp, error) {
	t := &NegTokenResp{NegState: NegStateAbsent}
	err := contextFields(b, func(n int, elem []byte) error {
		switch n {
		case 0:
			if len(elem) != 3 || elem[0] != 0x0a || elem[1] != 0x01 || elem[2] > NegStateRequestMIC {
				return errors.New("negState is not an ENUMERATED 0..3")
			}
			t.NegState = int(elem[2])
		case 1:
			oid, err := objectIdentifier(elem)
			if err != nil {
				return err
			}
			t.SupportedMech = oid
		case 2:
			tok, err := octetString(elem)
			if err != nil {
				return err
			}
			t.ResponseToken = tok
		case 3:
			mic, err := octetString(elem)
			if err != nil {
				return err
			}
			t.MechListMIC = mic
		default:
			return errors.New("unknown field")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
