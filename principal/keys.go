package principal

import (
	"crypto/rand"

	"fmt"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"sort"
	"strings"

	"github.com/jcmturner/gokrb5/v8/crypto"
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

// supportedEnctypes are the enctypes a principal may hold keys for.
var supportedEnctypes = map[int32]string{
	etypeID.AES256_CTS_HMAC_SHA1_96:    "aes256-cts-hmac-sha1-96",
	etypeID.AES128_CTS_HMAC_SHA1_96:    "aes128-cts-hmac-sha1-96",
	etypeID.AES256_CTS_HMAC_SHA384_192: "aes256-cts-hmac-sha384-192",
	etypeID.AES128_CTS_HMAC_SHA256_128: "aes128-cts-hmac-sha256-128",
	etypeID.RC4_HMAC:                   "arcfour-hmac",
	etypeID.DES3_CBC_SHA1_KD:           "des3-cbc-sha1",
}

// EnctypeName returns the MIT name of an enctype, or "etype N" if unknown.
func EnctypeName(e int32) string {
	if n, ok := supportedEnctypes[e]; ok {
		return n
	}
	for n, id := range etypeID.ETypesByName {
		if id == e {
			return n
		}
	}
	return fmt.Sprintf("etype %d", e)
}

// ParseEnctypes reads a comma or space separated list of enctype names (MIT's names,
// such as aes256-cts-hmac-sha1-96, or the short forms aes256-cts, aes128-sha2,
// rc4-hmac) or numbers.
func ParseEnctypes(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		id, err := parseEnctype(f)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("principal: empty enctype list")
	}
	return out, nil
}

var enctypeAliases = map[string]int32{
	"aes256-cts":     etypeID.AES256_CTS_HMAC_SHA1_96,
	"aes128-cts":     etypeID.AES128_CTS_HMAC_SHA1_96,
	"aes256-sha2":    etypeID.AES256_CTS_HMAC_SHA384_192,
	"aes128-sha2":    etypeID.AES128_CTS_HMAC_SHA256_128,
	"aes256-sha1":    etypeID.AES256_CTS_HMAC_SHA1_96,
	"aes128-sha1":    etypeID.AES128_CTS_HMAC_SHA1_96,
	"rc4-hmac":       etypeID.RC4_HMAC,
	"arcfour-hmac":   etypeID.RC4_HMAC,
	"des3-cbc-sha1":  etypeID.DES3_CBC_SHA1_KD,
	"des3-hmac-sha1": etypeID.DES3_CBC_SHA1_KD,
}

func parseEnctype(s string) (int32, error) {
	s = strings.ToLower(strings.TrimSuffix(s, ":normal"))
	if id, ok := enctypeAliases[s]; ok {
		return id, nil
	}
	for id, n := range supportedEnctypes {
		if n == s {
			return id, nil
		}
	}
	var n int32
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil {
		if _, ok := supportedEnctypes[n]; ok {
			return n, nil
		}
	}
	return 0, fmt.Errorf("principal: unsupported enctype %q (supported: %s)", s, strings.Join(EnctypeNames(), ", "))
}

// EnctypeNames lists the names of the supported enctypes, sorted.
func EnctypeNames() []string {
	var names []string
	for _, n := range supportedEnctypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
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
