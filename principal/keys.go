package principal

import (
	"crypto/rand"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// DefaultEnctypes are the enctypes a new principal gets keys for, strongest first
// in the order MIT lists them. RC4 and DES3 are only used when asked for by name.
var DefaultEnctypes = []int32{
	etypeID.AES256_CTS_HMAC_SHA1_96,
	etypeID.AES128_CTS_HMAC_SHA1_96,
	etypeID.AES256_CTS_HMAC_SHA384_192,
	etypeID.AES128_CTS_HMAC_SHA256_128,
}

// Key is one long-term key of a principal.
type Key struct {
	Etype int32
	KVNO  uint32
	// Salt is the salt the key was derived with; empty for random keys (the
	// default salt is then what clients would assume).
	Salt  string
	Value []byte
}

// EncryptionKey returns the key in gokrb5's type.
func (k Key) EncryptionKey() types.EncryptionKey {
	return types.EncryptionKey{KeyType: k.Etype, KeyValue: k.Value}
}

// KeysFromPassword derives one key per enctype from a password with the RFC 4120
// default salt of name and each enctype's default string-to-key parameters
// (RFC 3962 §4, RFC 8009 §4).
func KeysFromPassword(name Name, password string, enctypes []int32, kvno uint32) ([]Key, error) {
	salt := name.Salt()
	keys := make([]Key, 0, len(enctypes))
	for _, e := range enctypes {
		et, err := crypto.GetEtype(e)
		if err != nil {
			return nil, fmt.Errorf("principal: enctype %d: %w", e, err)
		}
		v, err := et.StringToKey(password, salt, et.GetDefaultStringToKeyParams())
		if err != nil {
			return nil, fmt.Errorf("principal: deriving %s key: %w", EnctypeName(e), err)
		}
		keys = append(keys, Key{Etype: e, KVNO: kvno, Salt: salt, Value: v})
	}
	return keys, nil
}

// RandomKeys makes one random key per enctype from the system CSPRNG.
func RandomKeys(enctypes []int32, kvno uint32) ([]Key, error) {
	keys := make([]Key, 0, len(enctypes))
	for _, e := range enctypes {
		et, err := crypto.GetEtype(e)
		if err != nil {
			return nil, fmt.Errorf("principal: enctype %d: %w", e, err)
		}
		k, err := randomKey(et)
		if err != nil {
			return nil, err
		}
		keys = append(keys, Key{Etype: e, KVNO: kvno, Value: k.KeyValue})
	}
	return keys, nil
}

// KeySize is the protocol key size of an enctype in bytes. gokrb5 v8.4.4 reports
// 24 for aes256-cts-hmac-sha384-192, whose keys are 32 bytes (RFC 8009 §5), and
// then refuses its own 24-byte keys; this is the size to use.
func KeySize(et etype.EType) int {
	if et.GetETypeID() == etypeID.AES256_CTS_HMAC_SHA384_192 {
		return 32
	}
	return et.GetKeyByteSize()
}

// RandomKey makes a random key of the enctype from the system CSPRNG, for
// long-term, session and sub-keys. Use it instead of gokrb5's
// types.GenerateEncryptionKey, which gets the aes256-sha384 size wrong.
func RandomKey(e int32) (types.EncryptionKey, error) {
	et, err := crypto.GetEtype(e)
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("principal: enctype %d: %w", e, err)
	}
	return randomKey(et)
}

func randomKey(et etype.EType) (types.EncryptionKey, error) {
	b := make([]byte, KeySize(et))
	if _, err := rand.Read(b); err != nil {
		return types.EncryptionKey{}, fmt.Errorf("principal: random %s key: %w", EnctypeName(et.GetETypeID()), err)
	}
	return types.EncryptionKey{KeyType: et.GetETypeID(), KeyValue: et.RandomToKey(b)}, nil
}
