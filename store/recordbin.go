package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kerbkit/kerbkit/principal"
)

// The binary form of a stored record (schema 3, bbolt). The JSON form of
// dbRecord (schemas 1 and 2, etcd, dumps) spent two thirds of a record on
// field names, base64 and a second copy of the keys' JSON inside the seal, and
// decoding it was most of the cost of a lookup that missed the record cache.
// The binary form holds the same dbRecord:
//
//	record = 0x02 field*
//	field  = tag(1 byte) length(uvarint) payload(length bytes)
//
// Integers are varints (encoding/binary) filling their payload exactly; names
// and strings are their bytes; aliases and delegation targets repeat their
// field once per name. A zero or empty field is left out. A reader skips a tag
// it does not know, so a later field can be added without a new form, as
// optional JSON fields were. The first byte tells the forms apart: a JSON
// record starts with '{'.
//
// Keys are sealed the same way in both forms; only the plaintext inside the
// seal differs (keysBinary or JSON), and openKeys reads either.
const recordBinary = 0x02

// Field tags of the binary form. Never renumber: stored records use them.
const (
	tagName         = 1
	tagNameType     = 2
	tagKeys         = 3
	tagFlags        = 4
	tagMaxLife      = 5
	tagMaxRenew     = 6
	tagExpires      = 7
	tagPwExpires    = 8
	tagCreated      = 9
	tagModified     = 10
	tagAlias        = 11
	tagDelegateTo   = 12
	tagPolicy       = 13
	tagFailCount    = 14
	tagLastFailure  = 15
	tagLockedUntil  = 16
	tagLastPwChange = 17
	tagKeyHistory   = 18
)

// Bits of tagFlags.
const (
	flagPreauth = 1 << iota
	flagDisabled
	flagOKAsDelegate
	flagOKToAuthAsDelegate
	flagRequiresFAST
)

// keysBinary starts the binary plaintext of sealed keys (a JSON list starts
// with '['): then the count and, per key, etype, kvno, salt and value.
const keysBinary = 0x01

var errShort = errors.New("truncated")

func appendField(b []byte, tag byte, payload []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

func appendIntField(b []byte, tag byte, v int64) []byte {
	if v == 0 {
		return b
	}
	var buf [binary.MaxVarintLen64]byte
	return appendField(b, tag, binary.AppendVarint(buf[:0], v))
}

func appendStringField(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// marshalRecordBinary is d in the binary form.
func marshalRecordBinary(d *dbRecord) []byte {
	b := make([]byte, 0, 64+len(d.Name)+len(d.SealedKeys)+len(d.SealedHistory))
	b = append(b, recordBinary)
	b = appendStringField(b, tagName, d.Name)
	b = appendIntField(b, tagNameType, int64(d.NameType))
	if len(d.SealedKeys) > 0 {
		b = appendField(b, tagKeys, d.SealedKeys)
	}
	flag := func(on bool, bit int64) int64 {
		if on {
			return bit
		}
		return 0
	}
	b = appendIntField(b, tagFlags, flag(d.RequiresPreauth, flagPreauth)|flag(d.Disabled, flagDisabled)|
		flag(d.OKAsDelegate, flagOKAsDelegate)|flag(d.OKToAuthAsDelegate, flagOKToAuthAsDelegate)|
		flag(d.RequiresFAST, flagRequiresFAST))
	b = appendIntField(b, tagMaxLife, d.MaxLife)
	b = appendIntField(b, tagMaxRenew, d.MaxRenew)
	b = appendIntField(b, tagExpires, d.Expires)
	b = appendIntField(b, tagPwExpires, d.PasswordExpires)
	b = appendIntField(b, tagCreated, d.Created)
	b = appendIntField(b, tagModified, d.Modified)
	for _, a := range d.Aliases {
		b = appendStringField(b, tagAlias, a)
	}
	for _, a := range d.DelegateTo {
		b = appendStringField(b, tagDelegateTo, a)
	}
	b = appendStringField(b, tagPolicy, d.Policy)
	b = appendIntField(b, tagFailCount, int64(d.FailCount))
	b = appendIntField(b, tagLastFailure, d.LastFailure)
	b = appendIntField(b, tagLockedUntil, d.LockedUntil)
	b = appendIntField(b, tagLastPwChange, d.LastPwChange)
	if len(d.SealedHistory) > 0 {
		b = appendField(b, tagKeyHistory, d.SealedHistory)
	}
	return b
}

// unmarshalRecordBinary reads the binary form into a dbRecord. Byte fields
// are copied: b may be bbolt's memory, valid only in its transaction.
func unmarshalRecordBinary(b []byte) (*dbRecord, error) {
	if len(b) == 0 || b[0] != recordBinary {
		return nil, errors.New("not a binary record")
	}
	d := &dbRecord{V: 1}
	for p := b[1:]; len(p) > 0; {
		tag := p[0]
		n, w := binary.Uvarint(p[1:])
		if w <= 0 || n > uint64(len(p)-1-w) {
			return nil, fmt.Errorf("field %d: %w", tag, errShort)
		}
		v := p[1+w : 1+w+int(n)]
		p = p[1+w+int(n):]
		var i int64
		switch tag {
		case tagNameType, tagFlags, tagMaxLife, tagMaxRenew, tagExpires, tagPwExpires, tagCreated,
			tagModified, tagFailCount, tagLastFailure, tagLockedUntil, tagLastPwChange:
			var k int
			if i, k = binary.Varint(v); k <= 0 || k != len(v) {
				return nil, fmt.Errorf("field %d: not one integer", tag)
			}
		}
		switch tag {
		case tagName:
			d.Name = string(v)
		case tagNameType:
			d.NameType = int32(i)
			if int64(d.NameType) != i {
				return nil, fmt.Errorf("name type %d out of range", i)
			}
		case tagKeys:
			d.SealedKeys = append([]byte(nil), v...)
		case tagFlags:
			d.RequiresPreauth = i&flagPreauth != 0
			d.Disabled = i&flagDisabled != 0
			d.OKAsDelegate = i&flagOKAsDelegate != 0
			d.OKToAuthAsDelegate = i&flagOKToAuthAsDelegate != 0
			d.RequiresFAST = i&flagRequiresFAST != 0
		case tagMaxLife:
			d.MaxLife = i
		case tagMaxRenew:
			d.MaxRenew = i
		case tagExpires:
			d.Expires = i
		case tagPwExpires:
			d.PasswordExpires = i
		case tagCreated:
			d.Created = i
		case tagModified:
			d.Modified = i
		case tagAlias:
			d.Aliases = append(d.Aliases, string(v))
		case tagDelegateTo:
			d.DelegateTo = append(d.DelegateTo, string(v))
		case tagPolicy:
			d.Policy = string(v)
		case tagFailCount:
			d.FailCount = int(i)
		case tagLastFailure:
			d.LastFailure = i
		case tagLockedUntil:
			d.LockedUntil = i
		case tagLastPwChange:
			d.LastPwChange = i
		case tagKeyHistory:
			d.SealedHistory = append([]byte(nil), v...)
		}
	}
	if d.Name == "" {
		return nil, errors.New("no name")
	}
	return d, nil
}

// marshalKeysBinary is the binary plaintext of sealed keys.
func marshalKeysBinary(ks []dbKey) []byte {
	b := []byte{keysBinary}
	b = binary.AppendUvarint(b, uint64(len(ks)))
	for _, k := range ks {
		b = binary.AppendVarint(b, int64(k.Etype))
		b = binary.AppendUvarint(b, uint64(k.KVNO))
		b = binary.AppendUvarint(b, uint64(len(k.Salt)))
		b = append(b, k.Salt...)
		b = binary.AppendUvarint(b, uint64(len(k.Value)))
		b = append(b, k.Value...)
	}
	return b
}

// unmarshalKeysBinary reads what marshalKeysBinary wrote.
func unmarshalKeysBinary(b []byte) ([]dbKey, error) {
	if len(b) == 0 || b[0] != keysBinary {
		return nil, errors.New("not binary keys")
	}
	p := b[1:]
	uv := func() (uint64, bool) {
		v, w := binary.Uvarint(p)
		if w <= 0 {
			return 0, false
		}
		p = p[w:]
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(p)) {
			return nil, false
		}
		v := p[:n]
		p = p[n:]
		return v, true
	}
	count, ok := uv()
	if !ok || count > uint64(len(p))/4 { // a key takes at least 4 bytes
		return nil, errShort
	}
	keys := make([]dbKey, count)
	for i := range keys {
		et, w := binary.Varint(p)
		if w <= 0 || int64(int32(et)) != et {
			return nil, errShort
		}
		p = p[w:]
		kvno, ok := uv()
		if !ok || kvno > 1<<32-1 {
			return nil, errShort
		}
		salt, ok := bytesOf()
		if !ok {
			return nil, errShort
		}
		value, ok := bytesOf()
		if !ok {
			return nil, errShort
		}
		keys[i] = dbKey{Etype: int32(et), KVNO: uint32(kvno), Salt: string(salt), Value: append([]byte(nil), value...)}
	}
	if len(p) != 0 {
		return nil, errors.New("bytes after the keys")
	}
	return keys, nil
}

// recordForm is how a store writes records: bbolt in the binary form, etcd in
// JSON (so that KDCs of an older release sharing the realm can still read
// what a newer one wrote). Every store reads both.
type recordForm int

const (
	formJSON recordForm = iota
	formBinary
)

// corruptRecord is the error of a stored value that does not decode.
func corruptRecord(err error) error { return fmt.Errorf("%w: %w", principal.ErrCorrupt, err) }
