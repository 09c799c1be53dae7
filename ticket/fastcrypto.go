package ticket

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/types"
)

// The pseudo-random function of the AES enctypes and the key combination of
// FAST built on it (RFC 6113 §5.1). gokrb5 has neither.

// prfConstant is the "prf" label both RFC 3962 §4 and RFC 8009 §5 use.
var prfConstant = []byte("prf")

// PRF is the pseudo-random function of key's enctype over input:
//   - RFC 3962 §4 (aes*-cts-hmac-sha1-96): AES-CBC with a zero IV, under
//     DK(key, "prf"), of SHA-1(input) truncated to one block: 16 bytes;
//   - RFC 8009 §5 (aes*-cts-hmac-sha2): KDF-HMAC-SHA2(key, "prf", input) of
//     256 bits (aes128-cts-hmac-sha256-128) or 384 bits
//     (aes256-cts-hmac-sha384-192).
//
// Other enctypes are refused.
func PRF(key types.EncryptionKey, input []byte) ([]byte, error) {
	et := etypeOf(key)
	if et == nil {
		return nil, fmt.Errorf("ticket: no PRF for enctype %d with a %d-byte key", key.KeyType, len(key.KeyValue))
	}
	if et.rfc8009 {
		n := 32
		if et.id == 20 {
			n = 48
		}
		m := hmac.New(et.hash, key.KeyValue)
		var ctr [4]byte
		binary.BigEndian.PutUint32(ctr[:], 1)
		m.Write(ctr[:])
		m.Write(prfConstant)
		m.Write([]byte{0})
		m.Write(input)
		var k [4]byte
		binary.BigEndian.PutUint32(k[:], uint32(8*n))
		m.Write(k[:])
		return m.Sum(nil)[:n], nil
	}
	base, err := aes.NewCipher(key.KeyValue)
	if err != nil {
		return nil, fmt.Errorf("ticket: PRF: %w", err)
	}
	// DK(key, "prf") (RFC 3961 §5.1): the constant n-folded to one block,
	// encrypted, and each block encrypted again up to the key length.
	dk := make([]byte, et.keyLen)
	copy(dk[:aes.BlockSize], nfold(prfConstant, aes.BlockSize))
	base.Encrypt(dk[:aes.BlockSize], dk[:aes.BlockSize])
	for i := aes.BlockSize; i < len(dk); i += aes.BlockSize {
		base.Encrypt(dk[i:i+aes.BlockSize], dk[i-aes.BlockSize:i])
	}
	blk, err := aes.NewCipher(dk)
	clear(dk)
	if err != nil {
		return nil, fmt.Errorf("ticket: PRF: %w", err)
	}
	h := sha1.Sum(input)
	out := make([]byte, aes.BlockSize)
	blk.Encrypt(out, h[:aes.BlockSize]) // one block: CBC with a zero IV is the cipher
	return out, nil
}

// PRFPlus is PRF+ of RFC 6113 §5.1: PRF(key, 1|input) | PRF(key, 2|input) | ...
// (the counter one octet) cut to n bytes.
func PRFPlus(key types.EncryptionKey, input []byte, n int) ([]byte, error) {
	out := make([]byte, 0, n+48)
	buf := make([]byte, 1+len(input))
	copy(buf[1:], input)
	for i := 1; len(out) < n; i++ {
		if i > 255 {
			return nil, fmt.Errorf("ticket: PRF+ output of %d bytes is too long", n)
		}
		buf[0] = byte(i)
		p, err := PRF(key, buf)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out[:n], nil
}

// CF2 is KRB-FX-CF2 of RFC 6113 §5.1: random-to-key(PRF+(k1, pepper1) XOR
// PRF+(k2, pepper2)), each cut to the key-generation seed length of k1's
// enctype; the result has k1's enctype. For AES random-to-key is the identity.
func CF2(k1, k2 types.EncryptionKey, pepper1, pepper2 string) (types.EncryptionKey, error) {
	et := etypeOf(k1)
	if et == nil {
		return types.EncryptionKey{}, fmt.Errorf("ticket: KRB-FX-CF2: unsupported enctype %d", k1.KeyType)
	}
	a, err := PRFPlus(k1, []byte(pepper1), et.keyLen)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	b, err := PRFPlus(k2, []byte(pepper2), et.keyLen)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	for i := range a {
		a[i] ^= b[i]
	}
	clear(b)
	return types.EncryptionKey{KeyType: k1.KeyType, KeyValue: a}, nil
}

// MandatoryChecksum is the checksum type of key's enctype (RFC 3962 §7, RFC
// 8009 §8), or 0 for an enctype not done here.
func MandatoryChecksum(etype int32) int32 {
	if et := lookupEtype(etype); et != nil {
		return et.cksum
	}
	return 0
}
