package client

import (
	"strconv"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// etypeNames are the enctype names MIT tools print (klist -e) [RFC 3961 §8, RFC 3962, RFC 8009, RFC 4757].
var etypeNames = map[int32]string{
	etypeID.DES_CBC_CRC:                "des-cbc-crc",
	etypeID.DES_CBC_MD4:                "des-cbc-md4",
	etypeID.DES_CBC_MD5:                "des-cbc-md5",
	etypeID.DES3_CBC_SHA1_KD:           "des3-cbc-sha1",
	etypeID.AES128_CTS_HMAC_SHA1_96:    "aes128-cts-hmac-sha1-96",
	etypeID.AES256_CTS_HMAC_SHA1_96:    "aes256-cts-hmac-sha1-96",
	etypeID.AES128_CTS_HMAC_SHA256_128: "aes128-cts-hmac-sha256-128",
	etypeID.AES256_CTS_HMAC_SHA384_192: "aes256-cts-hmac-sha384-192",
	etypeID.RC4_HMAC:                   "arcfour-hmac",
	etypeID.RC4_HMAC_EXP:               "arcfour-hmac-exp",
	etypeID.CAMELLIA128_CTS_CMAC:       "camellia128-cts-cmac",
	etypeID.CAMELLIA256_CTS_CMAC:       "camellia256-cts-cmac",
}

// EtypeName returns the MIT name of an enctype ("aes256-cts-hmac-sha1-96"), or "etype N" for unknown numbers.
func EtypeName(e int32) string {
	if n, ok := etypeNames[e]; ok {
		return n
	}
	return "etype " + strconv.Itoa(int(e))
}
