package principal

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// enctypeInfo is one enctype that MIT krb5 knows by name.
type enctypeInfo struct {
	id int32
	// name is MIT's name for it, as krb5_enctype_to_name and klist -e print it.
	name string
	// aliases are the other names MIT's krb5_string_to_enctype accepts.
	aliases []string
	// deprecated marks the enctypes MIT calls weak or deprecated (klist -e
	// prefixes them with "DEPRECATED:").
	deprecated bool
	// keys marks the enctypes a principal may hold long-term keys of.
	keys bool
}

// enctypes is the project's one enctype name table: every enctype MIT krb5 1.20
// names (RFC 3961 §8, RFC 3962, RFC 4757, RFC 6803, RFC 8009), in number order.
// Only some of them can be a principal's keys; the others are here so that
// tickets and caches made elsewhere can be shown by name.
var enctypes = []enctypeInfo{
	{id: etypeID.DES_CBC_CRC, name: "des-cbc-crc", deprecated: true},
	{id: etypeID.DES_CBC_MD4, name: "des-cbc-md4", deprecated: true},
	{id: etypeID.DES_CBC_MD5, name: "des-cbc-md5", deprecated: true},
	{id: etypeID.DES_CBC_RAW, name: "des-cbc-raw", deprecated: true},
	{id: etypeID.DES3_CBC_RAW, name: "des3-cbc-raw", deprecated: true},
	{id: etypeID.DES_HMAC_SHA1, name: "des-hmac-sha1", deprecated: true},
	{id: etypeID.DES3_CBC_SHA1_KD, name: "des3-cbc-sha1", aliases: []string{"des3-hmac-sha1", "des3-cbc-sha1-kd"}, deprecated: true, keys: true},
	{id: etypeID.AES128_CTS_HMAC_SHA1_96, name: "aes128-cts-hmac-sha1-96", aliases: []string{"aes128-cts", "aes128-sha1"}, keys: true},
	{id: etypeID.AES256_CTS_HMAC_SHA1_96, name: "aes256-cts-hmac-sha1-96", aliases: []string{"aes256-cts", "aes256-sha1"}, keys: true},
	{id: etypeID.AES128_CTS_HMAC_SHA256_128, name: "aes128-cts-hmac-sha256-128", aliases: []string{"aes128-sha2"}, keys: true},
	{id: etypeID.AES256_CTS_HMAC_SHA384_192, name: "aes256-cts-hmac-sha384-192", aliases: []string{"aes256-sha2"}, keys: true},
	{id: etypeID.RC4_HMAC, name: "arcfour-hmac", aliases: []string{"rc4-hmac", "arcfour-hmac-md5"}, deprecated: true, keys: true},
	{id: etypeID.RC4_HMAC_EXP, name: "arcfour-hmac-exp", aliases: []string{"rc4-hmac-exp", "arcfour-hmac-md5-exp"}, deprecated: true},
	{id: etypeID.CAMELLIA128_CTS_CMAC, name: "camellia128-cts-cmac", aliases: []string{"camellia128-cts"}},
	{id: etypeID.CAMELLIA256_CTS_CMAC, name: "camellia256-cts-cmac", aliases: []string{"camellia256-cts"}},
}

func lookupEnctype(e int32) (enctypeInfo, bool) {
	for _, in := range enctypes {
		if in.id == e {
			return in, true
		}
	}
	return enctypeInfo{}, false
}

// EnctypeName returns MIT's name of an enctype ("aes256-cts-hmac-sha1-96"), or
// "etype N" for a number MIT has no name for, as klist -e prints them.
func EnctypeName(e int32) string {
	if in, ok := lookupEnctype(e); ok {
		return in.name
	}
	return "etype " + strconv.Itoa(int(e))
}

// EnctypeDeprecated reports whether MIT considers an enctype weak or deprecated:
// single DES, triple DES and RC4, and every number it does not know. MIT klist -e
// shows such enctypes as "DEPRECATED:" followed by the name.
func EnctypeDeprecated(e int32) bool {
	in, ok := lookupEnctype(e)
	return !ok || in.deprecated
}

// ParseEnctypes reads a comma or space separated list of enctypes a principal
// may hold keys of: MIT's names (aes256-cts-hmac-sha1-96), MIT's other names
// (aes256-cts, aes128-sha2, rc4-hmac, ...), case-insensitively and with an
// optional ":normal" salt suffix, or numbers. Enctypes without key support here
// (single DES, camellia, ...) are refused.
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

func parseEnctype(s string) (int32, error) {
	s = strings.ToLower(strings.TrimSuffix(s, ":normal"))
	for _, in := range enctypes {
		if !in.keys {
			continue
		}
		if in.name == s || strconv.Itoa(int(in.id)) == s {
			return in.id, nil
		}
		for _, a := range in.aliases {
			if a == s {
				return in.id, nil
			}
		}
	}
	return 0, fmt.Errorf("principal: unsupported enctype %q (supported: %s)", s, strings.Join(EnctypeNames(), ", "))
}

// EnctypeNames lists, sorted, MIT's names of the enctypes a principal may hold
// keys of.
func EnctypeNames() []string {
	var names []string
	for _, in := range enctypes {
		if in.keys {
			names = append(names, in.name)
		}
	}
	sort.Strings(names)
	return names
}
