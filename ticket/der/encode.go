package der

import (
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
)

// ErrEncode reports a value that has no DER encoding, such as a time outside
// the years 0-9999.
var ErrEncode = errors.New("der: cannot encode")

// encoder appends DER to b. An element is opened with a one-byte length
// placeholder and closed when its contents are written: a length of 128 or
// more then moves the contents up to make room for the long form (X.690
// §8.1.3.5), which for Kerberos messages happens a few times per message.
// No allocation happens beyond growing b.
type encoder struct {
	b   []byte
	err error
}

// open starts an element with identifier octet id and returns where its
// contents start, for close.
func (e *encoder) open(id byte) int {
	e.b = append(e.b, id, 0)
	return len(e.b)
}

// close writes the length of the element whose contents start at start.
func (e *encoder) close(start int) {
	n := len(e.b) - start
	if n < 0x80 {
		e.b[start-1] = byte(n)
		return
	}
	l := 0
	for x := n; x > 0; x >>= 8 {
		l++
	}
	for i := 0; i < l; i++ {
		e.b = append(e.b, 0)
	}
	copy(e.b[start+l:], e.b[start:start+n])
	e.b[start-1] = 0x80 | byte(l)
	for i := 0; i < l; i++ {
		e.b[start+i] = byte(n >> (8 * (l - 1 - i)))
	}
}

// explicit opens the context-specific constructed tag [tag] of a field.
func (e *encoder) explicit(tag uint8) int { return e.open(0xa0 | tag) }

// seq opens a SEQUENCE.
func (e *encoder) seq() int { return e.open(0x30) }

// app opens a constructed [APPLICATION tag].
func (e *encoder) app(tag int) int { return e.open(0x60 | byte(tag)) }

// integer writes an INTEGER in minimal two's complement (X.690 §8.3).
func (e *encoder) integer(v int64) {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	e.b = append(e.b, 0x02, byte(n))
	for i := n - 1; i >= 0; i-- {
		e.b = append(e.b, byte(v>>(8*i)))
	}
}

// intField writes [tag] INTEGER.
func (e *encoder) intField(tag uint8, v int64) {
	f := e.explicit(tag)
	e.integer(v)
	e.close(f)
}

// octets writes an OCTET STRING.
func (e *encoder) octets(v []byte) {
	s := e.open(0x04)
	e.b = append(e.b, v...)
	e.close(s)
}

func (e *encoder) octetsField(tag uint8, v []byte) {
	f := e.explicit(tag)
	e.octets(v)
	e.close(f)
}

// generalString writes a KerberosString (GeneralString, RFC 4120 §5.2.1).
func (e *encoder) generalString(v string) {
	s := e.open(0x1b)
	e.b = append(e.b, v...)
	e.close(s)
}

func (e *encoder) stringField(tag uint8, v string) {
	f := e.explicit(tag)
	e.generalString(v)
	e.close(f)
}

// kerberosTime writes a KerberosTime: GeneralizedTime YYYYMMDDHHMMSSZ in UTC,
// whole seconds (RFC 4120 §5.2.3).
func (e *encoder) kerberosTime(t time.Time) {
	t = t.UTC()
	y := t.Year()
	if y < 0 || y > 9999 {
		if e.err == nil {
			e.err = fmt.Errorf("%w: time %s is outside the years 0-9999", ErrEncode, t)
		}
		y = 0
	}
	mo, d := t.Month(), t.Day()
	h, mi, s := t.Clock()
	e.b = append(e.b, 0x18, 15,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		byte('0'+mo/10), byte('0'+mo%10), byte('0'+d/10), byte('0'+d%10),
		byte('0'+h/10), byte('0'+h%10), byte('0'+mi/10), byte('0'+mi%10),
		byte('0'+s/10), byte('0'+s%10), 'Z')
}

func (e *encoder) timeField(tag uint8, t time.Time) {
	f := e.explicit(tag)
	e.kerberosTime(t)
	e.close(f)
}

// optTimeField writes [tag] KerberosTime unless t is the zero time, which
// gokrb5 uses for an absent optional field.
func (e *encoder) optTimeField(tag uint8, t time.Time) {
	if !t.IsZero() {
		e.timeField(tag, t)
	}
}

// bitString writes a BIT STRING as gofork does: the unused-bit count of
// BitLength, then Bytes as they are.
func (e *encoder) bitString(v asn1.BitString) {
	s := e.open(0x03)
	e.b = append(e.b, byte((8-v.BitLength%8)%8))
	e.b = append(e.b, v.Bytes...)
	e.close(s)
}

func (e *encoder) flagsField(tag uint8, v asn1.BitString) {
	f := e.explicit(tag)
	e.bitString(v)
	e.close(f)
}
