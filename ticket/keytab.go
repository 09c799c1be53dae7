package ticket

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
)

// keytabVersion2 is the MIT keytab file format version written by
// MarshalKeytab (big-endian integers, principals with a name type).
const keytabVersion2 = 0x0502

// KeytabEntry is one key of one principal.
type KeytabEntry struct {
	Principal principal.Name
	Timestamp time.Time
	KVNO      uint32
	Key       types.EncryptionKey
}

// validate checks that every field fits the keytab's fixed-width length
// fields.
func (e *KeytabEntry) validate() error {
	if len(e.Principal.Components) > math.MaxInt16 {
		return fmt.Errorf("principal %s has %d components (max %d)", e.Principal, len(e.Principal.Components), math.MaxInt16)
	}
	if len(e.Principal.Realm) > math.MaxUint16 {
		return fmt.Errorf("realm of %d bytes is too long (max %d)", len(e.Principal.Realm), math.MaxUint16)
	}
	for _, c := range e.Principal.Components {
		if len(c) > math.MaxUint16 {
			return fmt.Errorf("principal component of %d bytes is too long (max %d)", len(c), math.MaxUint16)
		}
	}
	if len(e.Key.KeyValue) > math.MaxUint16 {
		return fmt.Errorf("key of %d bytes is too long (max %d)", len(e.Key.KeyValue), math.MaxUint16)
	}
	if e.Key.KeyType < math.MinInt16 || e.Key.KeyType > math.MaxUint16 {
		return fmt.Errorf("enctype %d does not fit in 16 bits", e.Key.KeyType)
	}
	return nil
}

// MarshalKeytab encodes entries as an MIT keytab file, format version 2
// (0x0502, big-endian). Each record is a 4-byte size followed by the entry:
// count of components (16 bits), realm, components (16-bit counted strings),
// name type (32 bits), timestamp (32-bit epoch seconds, the zero time as 0),
// the low 8 bits of the kvno, the key (16-bit enctype and 16-bit counted key
// bytes) and finally the full 32-bit kvno, which MIT (1.14+) and gokrb5
// prefer over the 8-bit one when it is non-zero.
//
// Entries must fit the format (at most 32767 components, realm, components
// and key at most 65535 bytes each, enctype in 16 bits); MarshalKeytab panics
// otherwise. WriteKeytabFile checks this and returns an error instead.
func MarshalKeytab(entries []KeytabEntry) []byte {
	b, err := marshalKeytab(entries)
	if err != nil {
		panic(err.Error())
	}
	return b
}

func marshalKeytab(entries []KeytabEntry) ([]byte, error) {
	b := binary.BigEndian.AppendUint16(nil, keytabVersion2)
	for i := range entries {
		e := &entries[i]
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("ticket: keytab entry %d: %w", i, err)
		}
		sizeAt := len(b)
		b = append(b, 0, 0, 0, 0) // record size, filled in below
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Principal.Components)))
		b = appendString16(b, e.Principal.Realm)
		for _, c := range e.Principal.Components {
			b = appendString16(b, c)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(e.Principal.Type))
		b = binary.BigEndian.AppendUint32(b, epoch32(e.Timestamp))
		b = append(b, uint8(e.KVNO))
		b = binary.BigEndian.AppendUint16(b, uint16(e.Key.KeyType))
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Key.KeyValue)))
		b = append(b, e.Key.KeyValue...)
		b = binary.BigEndian.AppendUint32(b, e.KVNO)
		size := len(b) - sizeAt - 4
		if size > math.MaxInt32 {
			return nil, fmt.Errorf("ticket: keytab entry %d is too large", i)
		}
		binary.BigEndian.PutUint32(b[sizeAt:], uint32(size))
	}
	return b, nil
}

func appendString16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// WriteKeytabFile writes entries to path as an MIT v2 keytab, atomically and
// with mode 0600 like WriteCCacheFile: on failure the previous file at path is
// left as it was.
func WriteKeytabFile(path string, entries []KeytabEntry) error {
	b, err := marshalKeytab(entries)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, b, nil); err != nil {
		return fmt.Errorf("ticket: write keytab: %w", err)
	}
	return nil
}
