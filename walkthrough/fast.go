package walkthrough

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FAST (RFC 6113) key usages.
const (
	usageFastEnc = 51 // KEY_USAGE_FAST_ENC: KrbFastReq in enc-fast-req
	usageFastRep = 52 // KEY_USAGE_FAST_REP: KrbFastResponse in enc-fast-rep
)

// paFXFast is the PA-FX-FAST padata type (136).
const paFXFast = 136

// krbFastArmoredReq is KrbFastArmoredReq [RFC 6113 §5.4.2], the armored-data [0] of PA-FX-FAST-REQUEST.
type krbFastArmoredReq struct {
	Armor       krbFastArmor        `asn1:"explicit,optional,tag:0"`
	ReqChecksum types.Checksum      `asn1:"explicit,tag:1"`
	EncFastReq  types.EncryptedData `asn1:"explicit,tag:2"`
}

// krbFastArmor is KrbFastArmor [RFC 6113 §5.4.1]; a TGS-REQ has none (the TGT is the armor).
type krbFastArmor struct {
	ArmorType  int32  `asn1:"explicit,tag:0"`
	ArmorValue []byte `asn1:"explicit,tag:1"`
}

// krbFastReq is KrbFastReq [RFC 6113 §5.4.2], what enc-fast-req holds.
type krbFastReq struct {
	FastOptions asn1.BitString       `asn1:"explicit,tag:0"`
	PAData      types.PADataSequence `asn1:"explicit,tag:1"`
	ReqBody     asn1.RawValue        `asn1:"explicit,tag:2"`
}

// krbFastArmoredRep is KrbFastArmoredRep [RFC 6113 §5.4.3], the armored-data [0] of PA-FX-FAST-REPLY.
type krbFastArmoredRep struct {
	EncFastRep types.EncryptedData `asn1:"explicit,tag:0"`
}

// krbFastResponse is KrbFastResponse [RFC 6113 §5.4.3], what enc-fast-rep holds.
type krbFastResponse struct {
	PAData        types.PADataSequence `asn1:"explicit,tag:0"`
	StrengthenKey types.EncryptionKey  `asn1:"explicit,optional,tag:1"`
	Finished      asn1.RawValue        `asn1:"explicit,optional,tag:2"`
	Nonce         int64                `asn1:"explicit,tag:3"`
}

// unwrapChoice0 returns the contents of a CHOICE alternative [0] (PA-FX-FAST-REQUEST, PA-FX-FAST-REPLY).
func unwrapChoice0(b []byte) ([]byte, error) {
	var rv asn1.RawValue
	if _, err := asn1.Unmarshal(b, &rv); err != nil {
		return nil, err
	}
	if rv.Class != asn1.ClassContextSpecific || rv.Tag != 0 {
		return nil, fmt.Errorf("PA-FX-FAST alternative [%d], not armored-data [0]", rv.Tag)
	}
	return rv.Bytes, nil
}

// openFastRequest decrypts a TGS-REQ's PA-FX-FAST with the armor key (usage 51).
func openFastRequest(v []byte, armor types.EncryptionKey) (*krbFastReq, *krbFastArmoredReq, error) {
	inner, err := unwrapChoice0(v)
	if err != nil {
		return nil, nil, err
	}
	var ar krbFastArmoredReq
	if err := decodeSafe(func() error { _, err := asn1.Unmarshal(inner, &ar); return err }); err != nil {
		return nil, nil, err
	}
	plain, err := crypto.DecryptEncPart(ar.EncFastReq, armor, usageFastEnc)
	if err != nil {
		return nil, &ar, err
	}
	var fr krbFastReq
	if err := decodeSafe(func() error { _, err := asn1.Unmarshal(plain, &fr); return err }); err != nil {
		return nil, &ar, err
	}
	return &fr, &ar, nil
}

// openFastReply decrypts a reply's PA-FX-FAST with the armor key (usage 52).
func openFastReply(v []byte, armor types.EncryptionKey) (*krbFastResponse, *types.EncryptedData, error) {
	inner, err := unwrapChoice0(v)
	if err != nil {
		return nil, nil, err
	}
	var ar krbFastArmoredRep
	if err := decodeSafe(func() error { _, err := asn1.Unmarshal(inner, &ar); return err }); err != nil {
		return nil, nil, err
	}
	plain, err := crypto.DecryptEncPart(ar.EncFastRep, armor, usageFastRep)
	if err != nil {
		return nil, &ar.EncFastRep, err
	}
	var fr krbFastResponse
	if err := decodeSafe(func() error { _, err := asn1.Unmarshal(plain, &fr); return err }); err != nil {
		return nil, &ar.EncFastRep, err
	}
	return &fr, &ar.EncFastRep, nil
}

// fastReqFields shows an opened KrbFastReq.
func fastReqFields(fr *krbFastReq) []Field {
	fs := []Field{field("fast-options", fmt.Sprintf("%x", fr.FastOptions.Bytes))}
	if len(fr.PAData) > 0 {
		fs = append(fs, field("padata", "", padataFields(fr.PAData)...))
	} else {
		fs = append(fs, field("padata", "none"))
	}
	var b messages.KDCReqBody
	if decodeSafe(func() error { return b.Unmarshal(fr.ReqBody.Bytes) }) == nil {
		fs = append(fs, field("req-body", "the request itself, hidden from anyone on the path", reqBodyFields(b)...))
	} else {
		fs = append(fs, field("req-body", bytesText(len(fr.ReqBody.Bytes))))
	}
	return fs
}

// prf is the enctype's pseudo-random function: for AES with HMAC-SHA1 [RFC 3962 §6] the first block of SHA-1 of
// the input, encrypted with DK(key, "prf"); for AES with HMAC-SHA2 [RFC 8009 §5] KDF-HMAC-SHA2(key, "prf", input).
func prf(key types.EncryptionKey, in []byte) ([]byte, error) {
	switch key.KeyType {
	case 17, 18:
		et, err := crypto.GetEtype(key.KeyType)
		if err != nil {
			return nil, err
		}
		dk, err := et.DeriveKey(key.KeyValue, []byte("prf"))
		if err != nil {
			return nil, err
		}
		h := sha1.Sum(in)
		block, err := aes.NewCipher(dk)
		if err != nil {
			return nil, err
		}
		out := make([]byte, aes.BlockSize)
		block.Encrypt(out, h[:aes.BlockSize]) // one block: CBC with a zero IV is ECB
		return out, nil
	case 19, 20:
		bits, hf := 256, sha256.New
		if key.KeyType == 20 {
			bits, hf = 384, sha512.New384
		}
		return kdfHMACSHA2(hf, key.KeyValue, []byte("prf"), in, bits), nil
	}
	return nil, fmt.Errorf("no PRF for enctype %d here", key.KeyType)
}

// kdfHMACSHA2 is KDF-HMAC-SHA2(key, label, context, k) [RFC 8009 §3]: one HMAC block, truncated to k bits.
func kdfHMACSHA2(hf func() hash.Hash, key, label, context []byte, bits int) []byte {
	m := hmac.New(hf, key)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], 1)
	m.Write(n[:])
	m.Write(label)
	m.Write([]byte{0})
	m.Write(context)
	binary.BigEndian.PutUint32(n[:], uint32(bits))
	m.Write(n[:])
	return m.Sum(nil)[:bits/8]
}

// prfPlus is PRF+(key, info) [RFC 6113 §5.1]: PRF(key, 1 || info) || PRF(key, 2 || info) || ..., n bytes.
func prfPlus(key types.EncryptionKey, info []byte, n int) ([]byte, error) {
	var out []byte
	for i := 1; len(out) < n; i++ {
		if i > 255 {
			return nil, errors.New("PRF+ output too long")
		}
		p, err := prf(key, append([]byte{byte(i)}, info...))
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out[:n], nil
}

// cf2 is KRB-FX-CF2(key1, key2, pepper1, pepper2) [RFC 6113 §5.1]: random-to-key of PRF+(key1, pepper1) XOR
// PRF+(key2, pepper2), a key of key1's enctype. FAST derives its armor key and its strengthened reply key so.
func cf2(k1, k2 types.EncryptionKey, p1, p2 string) (types.EncryptionKey, error) {
	et, err := crypto.GetEtype(k1.KeyType)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	n := et.GetKeySeedBitLength() / 8
	a, err := prfPlus(k1, []byte(p1), n)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	b, err := prfPlus(k2, []byte(p2), n)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	for i := range a {
		a[i] ^= b[i]
	}
	return types.EncryptionKey{KeyType: k1.KeyType, KeyValue: et.RandomToKey(a)}, nil
}

// fastNonceText is how the nonce of a FAST reply is shown.
func fastNonceText(n int64) string { return strconv.FormatInt(n, 10) }
