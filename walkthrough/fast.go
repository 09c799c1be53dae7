package walkthrough

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// FAST (RFC 6113) key usages [RFC 6113 §6.2 (the list of key usages)].
const (
	usageFastReqChecksum    = 50 // KEY_USAGE_FAST_REQ_CHKSUM: req-checksum over the outer request
	usageFastEnc            = 51 // KEY_USAGE_FAST_ENC: KrbFastReq in enc-fast-req
	usageFastRep            = 52 // KEY_USAGE_FAST_REP: KrbFastResponse in enc-fast-rep
	usageFastFinished       = 53 // KEY_USAGE_FAST_FINISHED: ticket-checksum in KrbFastFinished
	usageEncChallengeClient = 54 // KEY_USAGE_ENC_CHALLENGE_CLIENT: the client's PA-ENCRYPTED-CHALLENGE
	usageEncChallengeKDC    = 55 // KEY_USAGE_ENC_CHALLENGE_KDC: the KDC's PA-ENCRYPTED-CHALLENGE
)

// FAST padata types [RFC 6113 §7.2 (IANA)].
const (
	paFXCookie     = 133 // PA-FX-COOKIE
	paFXFast       = 136 // PA-FX-FAST
	paFXError      = 137 // PA-FX-ERROR
	paEncChallenge = 138 // PA-ENCRYPTED-CHALLENGE
)

// fastArmorAPRequest is armor-type FX_FAST_ARMOR_AP_REQUEST [RFC 6113 §5.4.1]: the armor is an AP-REQ.
const fastArmorAPRequest = 1

// decodeFastArmoredReq decodes a request's PA-FX-FAST: PA-FX-FAST-REQUEST, armored-data [0] KrbFastArmoredReq
// [RFC 6113 §5.4.2].
func decodeFastArmoredReq(v []byte) (*der.FastArmoredReq, error) {
	var ar der.FastArmoredReq
	if err := decodeSafe(func() error { return der.DecodeFastArmoredReq(v, &ar) }); err != nil {
		return nil, err
	}
	return &ar, nil
}

// openFastReq decrypts enc-fast-req with the armor key (usage 51) into the KrbFastReq [RFC 6113 §5.4.2].
func openFastReq(ar *der.FastArmoredReq, armor types.EncryptionKey) (*der.FastReq, error) {
	plain, err := decryptSafe(ar.EncFastReq, armor, usageFastEnc)
	if err != nil {
		return nil, err
	}
	var fr der.FastReq
	if err := decodeSafe(func() error { return der.DecodeFastReq(plain, &fr) }); err != nil {
		return nil, err
	}
	return &fr, nil
}

// openFastRequest decrypts a TGS-REQ's PA-FX-FAST with the armor key (usage 51).
func openFastRequest(v []byte, armor types.EncryptionKey) (*der.FastReq, *der.FastArmoredReq, error) {
	ar, err := decodeFastArmoredReq(v)
	if err != nil {
		return nil, nil, err
	}
	fr, err := openFastReq(ar, armor)
	return fr, ar, err
}

// openFastReply decrypts a reply's or a KRB-ERROR's PA-FX-FAST (PA-FX-FAST-REPLY, armored-data [0]
// KrbFastArmoredRep) with the armor key (usage 52) [RFC 6113 §5.4.3].
func openFastReply(v []byte, armor types.EncryptionKey) (*der.FastResponse, *types.EncryptedData, error) {
	var ed types.EncryptedData
	if err := decodeSafe(func() error { return der.DecodeFastArmoredRep(v, &ed) }); err != nil {
		return nil, nil, err
	}
	plain, err := decryptSafe(ed, armor, usageFastRep)
	if err != nil {
		return nil, &ed, err
	}
	var fr der.FastResponse
	if err := decodeSafe(func() error { return der.DecodeFastResponse(plain, &fr) }); err != nil {
		return nil, &ed, err
	}
	return &fr, &ed, nil
}

// fastRepCipherSize is the ciphertext length of a reply's PA-FX-FAST, 0 when it does not decode.
func fastRepCipherSize(v []byte) int {
	var ed types.EncryptedData
	if decodeSafe(func() error { return der.DecodeFastArmoredRep(v, &ed) }) != nil {
		return 0
	}
	return len(ed.Cipher)
}

// decryptSafe decrypts an EncryptedData, turning a panic of the cipher code on odd input into an error.
func decryptSafe(ed types.EncryptedData, key types.EncryptionKey, usage uint32) ([]byte, error) {
	var plain []byte
	err := decodeSafe(func() error {
		var err error
		plain, err = crypto.DecryptEncPart(ed, key, usage)
		return err
	})
	return plain, err
}

// verifyChecksum reports whether sum is the keyed checksum of data with key and usage.
func verifyChecksum(key types.EncryptionKey, usage uint32, data, sum []byte) bool {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return false
	}
	ok := false
	_ = decodeSafe(func() error { ok = et.VerifyChecksum(key.KeyValue, data, sum, usage); return nil })
	return ok
}

// fastReqFields shows an opened KrbFastReq.
func fastReqFields(fr *der.FastReq) []Field {
	fs := []Field{field("fast-options", fmt.Sprintf("%x", fr.Options.Bytes))}
	if len(fr.PAData) > 0 {
		fs = append(fs, field("padata", "", padataFields(fr.PAData)...))
	} else {
		fs = append(fs, field("padata", "none"))
	}
	return append(fs, field("req-body", "the request itself, hidden from anyone on the path", reqBodyFields(fr.Body)...))
}

// cf2 is KRB-FX-CF2(key1, key2, pepper1, pepper2) [RFC 6113 §5.1], a key of key1's enctype: FAST derives its
// armor key, its challenge keys and its strengthened reply key so.
func cf2(k1, k2 types.EncryptionKey, p1, p2 string) (types.EncryptionKey, error) {
	if len(k1.KeyValue) == 0 || len(k2.KeyValue) == 0 {
		return types.EncryptionKey{}, errors.New("KRB-FX-CF2 of an empty key")
	}
	return ticket.CF2(k1, k2, p1, p2)
}

// fastNonceText is how the nonce of a FAST reply is shown.
func fastNonceText(n int) string { return strconv.Itoa(n) }
