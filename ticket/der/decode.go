package der

import (
	stdasn1 "encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformed reports bytes that are not the DER encoding of the expected
// message; the error text names the field.
var ErrMalformed = errors.New("der: malformed")

// MaxElements bounds every SEQUENCE OF (padata, enctypes, addresses, name
// components, authorization data, tickets). Each element takes at least two
// bytes on the wire, so a list is also bounded by the input, which the KDC's
// transports cap (64 KiB over UDP, 1 MiB over TCP), and the decoded value is
// at most a small multiple of the input's size. The bound is generous on
// purpose: a request with an absurd list still decodes and gets its KRB-ERROR
// from the KDC's own limits, instead of being dropped without an answer.
const MaxElements = 1 << 17

// Universal tags used by Kerberos (X.690 §8; RFC 4120 §5.2).
const (
	tagGeneralString = casn1.Tag(27)
	tagKerberosTime  = casn1.GeneralizedTime
)

// decoder holds what one decoding shares: the input, which byte fields alias,
// and the first error. String fields come from intern.
type decoder struct {
	in  []byte
	err error
}

// fail records the first failure; what names the field.
func (d *decoder) fail(what, why string) bool {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrMalformed, what, why)
	}
	return false
}

// context returns the identifier octet of a constructed context-specific tag.
func context(tag uint8) casn1.Tag { return casn1.Tag(tag).Constructed().ContextSpecific() }

// application returns the identifier octet of a constructed APPLICATION tag.
func application(tag uint8) casn1.Tag {
	return casn1.Tag(tag) | 0x40 | 0x20
}

// field reads the explicitly tagged field [tag] of a SEQUENCE (RFC 4120 §5.2:
// every Kerberos field is explicitly tagged) and returns its contents, which
// must be one element. Fields are matched in order: when the next element is
// not [tag], an optional field is absent (and the element is left for the
// fields after it), a mandatory one is an error.
func (d *decoder) field(s *cryptobyte.String, tag uint8, optional bool, what string) (cryptobyte.String, bool) {
	if d.err != nil {
		return nil, false
	}
	if len(*s) == 0 {
		if !optional {
			d.fail(what, "missing")
		}
		return nil, false
	}
	id := (*s)[0]
	switch {
	case id == byte(context(tag)):
		var w cryptobyte.String
		if !s.ReadASN1(&w, context(tag)) {
			return nil, d.fail(what, "bad length")
		}
		if len(w) == 0 {
			return nil, d.fail(what, "empty")
		}
		return w, true
	case id&0x1f == 0x1f:
		return nil, d.fail(what, "high tag number")
	case id&0xc0 == 0x80 && id&0x1f == tag:
		// [tag] in primitive form: gofork refuses an empty one and skips
		// the others; neither is a Kerberos encoding.
		return nil, d.fail(what, "primitive explicit tag")
	}
	if !optional {
		return nil, d.fail(what, "missing")
	}
	// The element is left for the next field, but it must be an element:
	// gofork reads its header and refuses the message if that fails.
	rest := *s
	var e cryptobyte.String
	var t casn1.Tag
	if !rest.ReadAnyASN1Element(&e, &t) {
		return nil, d.fail(what, "bad element after it")
	}
	return nil, false
}

// one reads the single element with tag that w must hold and returns its contents.
func (d *decoder) one(w cryptobyte.String, tag casn1.Tag, what string) (cryptobyte.String, bool) {
	var c cryptobyte.String
	if !w.ReadASN1(&c, tag) {
		return nil, d.fail(what, "wrong type or length")
	}
	if !w.Empty() {
		return nil, d.fail(what, "trailing bytes")
	}
	return c, true
}

// seq reads the SEQUENCE that w must hold and returns its contents.
func (d *decoder) seq(w cryptobyte.String, what string) (cryptobyte.String, bool) {
	return d.one(w, casn1.SEQUENCE, what)
}

// count counts the elements of a SEQUENCE OF, each of which must have tag,
// bounded by MaxElements.
func (d *decoder) count(c cryptobyte.String, tag casn1.Tag, what string) (int, bool) {
	n := 0
	for !c.Empty() {
		var e cryptobyte.String
		if !c.ReadASN1Element(&e, tag) {
			return 0, d.fail(what, "element of the wrong type or length")
		}
		if n++; n > MaxElements {
			return 0, d.fail(what, fmt.Sprintf("more than %d elements", MaxElements))
		}
	}
	return n, true
}

// int64Of reads an INTEGER of up to 64 bits (gokrb5's int and int64 fields).
func (d *decoder) int64Of(w cryptobyte.String, what string) (int64, bool) {
	var v int64
	if !w.ReadASN1Int64WithTag(&v, casn1.INTEGER) {
		return 0, d.fail(what, "not a DER INTEGER of at most 64 bits")
	}
	if !w.Empty() {
		return 0, d.fail(what, "trailing bytes")
	}
	return v, true
}

// int32Of reads an INTEGER that fits in 32 bits (Int32, enctypes, types).
func (d *decoder) int32Of(w cryptobyte.String, what string) (int32, bool) {
	v, ok := d.int64Of(w, what)
	if !ok {
		return 0, false
	}
	if v != int64(int32(v)) {
		return 0, d.fail(what, "integer out of 32-bit range")
	}
	return int32(v), true
}

// intField reads an optional or mandatory [tag] INTEGER into an int.
func (d *decoder) intField(s *cryptobyte.String, tag uint8, optional bool, what string) int {
	w, ok := d.field(s, tag, optional, what)
	if !ok {
		return 0
	}
	v, _ := d.int64Of(w, what)
	return int(v)
}

// int32Field reads an optional or mandatory [tag] INTEGER of 32 bits.
func (d *decoder) int32Field(s *cryptobyte.String, tag uint8, optional bool, what string) int32 {
	w, ok := d.field(s, tag, optional, what)
	if !ok {
		return 0
	}
	v, _ := d.int32Of(w, what)
	return v
}

// bytesField reads a [tag] OCTET STRING; the result aliases the input and is
// not nil when present, even if empty (gokrb5 tells the two apart when encoding).
func (d *decoder) bytesField(s *cryptobyte.String, tag uint8, optional bool, what string) []byte {
	w, ok := d.field(s, tag, optional, what)
	if !ok {
		return nil
	}
	c, ok := d.one(w, casn1.OCTET_STRING, what)
	if !ok {
		return nil
	}
	if c == nil {
		return []byte{}
	}
	return c
}

// str returns the bytes of c as a string (intern.go).
func (d *decoder) str(c []byte) string { return intern(c) }

// kerberosString reads the KerberosString (GeneralString, RFC 4120 §5.2.1) that w holds.
func (d *decoder) kerberosString(w cryptobyte.String, what string) string {
	c, ok := d.one(w, tagGeneralString, what)
	if !ok {
		return ""
	}
	return d.str(c)
}

// stringField reads a [tag] KerberosString.
func (d *decoder) stringField(s *cryptobyte.String, tag uint8, optional bool, what string) string {
	w, ok := d.field(s, tag, optional, what)
	if !ok {
		return ""
	}
	return d.kerberosString(w, what)
}

// timeField reads a [tag] KerberosTime.
func (d *decoder) timeField(s *cryptobyte.String, tag uint8, optional bool, what string) time.Time {
	w, ok := d.field(s, tag, optional, what)
	if !ok {
		return time.Time{}
	}
	c, ok := d.one(w, tagKerberosTime, what)
	if !ok {
		return time.Time{}
	}
	t, ok := ParseKerberosTime(c)
	if !ok {
		d.fail(what, "not a KerberosTime (YYYYMMDDHHMMSSZ)")
	}
	return t
}

// ParseKerberosTime reads the contents of a KerberosTime: GeneralizedTime as
// YYYYMMDDHHMMSSZ, UTC, no fractional seconds (RFC 4120 §5.2.3). It accepts
// the dates time.Parse accepts for that layout, without allocating.
func ParseKerberosTime(b []byte) (time.Time, bool) {
	if len(b) != 15 || b[14] != 'Z' {
		return time.Time{}, false
	}
	var v [14]int
	for i := 0; i < 14; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		v[i] = int(c - '0')
	}
	year := v[0]*1000 + v[1]*100 + v[2]*10 + v[3]
	month := v[4]*10 + v[5]
	day := v[6]*10 + v[7]
	hour, minute, sec := v[8]*10+v[9], v[10]*10+v[11], v[12]*10+v[13]
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// flags reads KerberosFlags (a BIT STRING, RFC 4120 §5.2.8). A value shorter
// than 32 bits is padded with zero bits at the end, so that bit n means the
// same and types.IsFlagSet can read bits 0-31 without going out of range.
func (d *decoder) flags(w cryptobyte.String, what string) asn1.BitString {
	var bs stdasn1.BitString
	if !w.ReadASN1BitString(&bs) {
		d.fail(what, "not a DER BIT STRING")
		return asn1.BitString{}
	}
	if !w.Empty() {
		d.fail(what, "trailing bytes")
		return asn1.BitString{}
	}
	if len(bs.Bytes) < 4 {
		b := make([]byte, 4)
		copy(b, bs.Bytes)
		return asn1.BitString{Bytes: b, BitLength: 32}
	}
	return asn1.BitString{Bytes: bs.Bytes, BitLength: bs.BitLength}
}

// flagsField reads a [tag] KerberosFlags.
func (d *decoder) flagsField(s *cryptobyte.String, tag uint8, what string) asn1.BitString {
	w, ok := d.field(s, tag, false, what)
	if !ok {
		return asn1.BitString{}
	}
	return d.flags(w, what)
}
