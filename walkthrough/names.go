package walkthrough

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
)

// etypeName names an enctype the way MIT tools print it, with its number.
func etypeName(e int32) string {
	return fmt.Sprintf("%s (%d)", principal.EnctypeName(e), e)
}

// etypeList names a list of enctypes.
func etypeList(es []int32) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = etypeName(e)
	}
	return strings.Join(names, ", ")
}

// nameTypes are the principal name types [RFC 4120 §6.2].
var nameTypes = map[int32]string{
	0: "NT-UNKNOWN", 1: "NT-PRINCIPAL", 2: "NT-SRV-INST", 3: "NT-SRV-HST", 4: "NT-SRV-XHST", 5: "NT-UID",
	6: "NT-X500-PRINCIPAL", 7: "NT-SMTP-NAME", 10: "NT-ENTERPRISE", 11: "NT-WELLKNOWN",
}

// princName formats a name with its realm and name type: "host/localhost@R (NT-SRV-HST)".
func princName(pn types.PrincipalName, realm string) string {
	p := principal.FromPrincipalName(pn, realm)
	s := p.String()
	if realm == "" {
		s = strings.TrimSuffix(s, "@")
	}
	nt, ok := nameTypes[pn.NameType]
	if !ok {
		nt = "name-type " + strconv.Itoa(int(pn.NameType))
	}
	return s + " (" + nt + ")"
}

// Names of the bits of KDCOptions, TicketFlags and APOptions [RFC 4120 §5.4.1, §5.3, §5.5.1].
var (
	kdcOptionNames = map[int]string{
		1: "forwardable", 2: "forwarded", 3: "proxiable", 4: "proxy", 5: "allow-postdate", 6: "postdated",
		8: "renewable", 11: "opt-hardware-auth", 14: "cname-in-addl-tkt", 15: "canonicalize",
		26: "disable-transited-check", 27: "renewable-ok", 28: "enc-tkt-in-skey", 30: "renew", 31: "validate",
	}
	ticketFlagNames = map[int]string{
		1: "forwardable", 2: "forwarded", 3: "proxiable", 4: "proxy", 5: "may-postdate", 6: "postdated",
		7: "invalid", 8: "renewable", 9: "initial", 10: "pre-authent", 11: "hw-authent",
		12: "transited-policy-checked", 13: "ok-as-delegate", 15: "enc-pa-rep", 16: "anonymous",
	}
	apOptionNames = map[int]string{1: "use-session-key", 2: "mutual-required"}
)

// flagNames lists the set bits of a KerberosFlags BIT STRING by name ("none" when no bit is set).
func flagNames(b asn1.BitString, names map[int]string) string {
	var out []string
	for i := 0; i < b.BitLength && i < 32; i++ {
		if b.At(i) == 0 {
			continue
		}
		if n, ok := names[i]; ok {
			out = append(out, n)
		} else {
			out = append(out, "bit "+strconv.Itoa(i))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// hasFlag reports whether bit i of a KerberosFlags BIT STRING is set.
func hasFlag(b asn1.BitString, i int) bool { return i < b.BitLength && b.At(i) == 1 }

// paNames are the padata types a reader meets [RFC 4120 §7.5.2, RFC 6113, RFC 6806].
var paNames = map[int32]string{
	1: "PA-TGS-REQ", 2: "PA-ENC-TIMESTAMP", 3: "PA-PW-SALT", 11: "PA-ETYPE-INFO", 19: "PA-ETYPE-INFO2",
	128: "PA-PAC-REQUEST", 133: "PA-FX-COOKIE", 136: "PA-FX-FAST", 137: "PA-FX-ERROR",
	138: "PA-ENCRYPTED-CHALLENGE", 149: "PA-REQ-ENC-PA-REP", 150: "PA-AS-FRESHNESS",
}

// paName names a padata type with its number.
func paName(t int32) string {
	if n, ok := paNames[t]; ok {
		return fmt.Sprintf("%s (%d)", n, t)
	}
	return fmt.Sprintf("padata type %d", t)
}

// usageNames say what each key usage number protects [RFC 4120 §7.5.1, RFC 4121 §2].
var usageNames = map[int]string{
	50: "FAST req-checksum over the outer request", 51: "FAST armored request (KrbFastReq)",
	52: "FAST armored reply (KrbFastResponse)", 53: "FAST ticket-checksum in KrbFastFinished",
	54: "FAST encrypted challenge from the client", 55: "FAST encrypted challenge from the KDC",
	1:  "AS-REQ PA-ENC-TIMESTAMP",
	2:  "ticket enc-part (EncTicketPart)",
	3:  "AS-REP enc-part (EncASRepPart)",
	6:  "TGS-REQ authenticator checksum over the req-body",
	7:  "TGS-REQ PA-TGS-REQ authenticator",
	8:  "TGS-REP enc-part, sealed in the TGS session key",
	9:  "TGS-REP enc-part, sealed in the authenticator subkey",
	11: "AP-REQ authenticator",
	12: "AP-REP enc-part (EncAPRepPart)",
	22: "GSS acceptor seal (wrap token)",
	23: "GSS acceptor sign (MIC token)",
	24: "GSS initiator seal (wrap token)",
	25: "GSS initiator sign (MIC token)",
}

// usageName names a key usage.
func usageName(u int) string {
	if n, ok := usageNames[u]; ok {
		return n
	}
	return "key usage " + strconv.Itoa(u)
}

// checksumNames name checksum types [RFC 3961 §7, RFC 8009, RFC 4121 §4.1.1].
var checksumNames = map[int32]string{
	15: "hmac-sha1-96-aes128", 16: "hmac-sha1-96-aes256", 19: "hmac-sha256-128-aes128",
	20: "hmac-sha384-192-aes256", -138: "hmac-md5-rc4", 0x8003: "GSS-API krb5 checksum",
}

// checksumName names a checksum type with its number.
func checksumName(t int32) string {
	if n, ok := checksumNames[t]; ok {
		return fmt.Sprintf("%s (%d)", n, t)
	}
	return fmt.Sprintf("checksum type %d", t)
}

// gssFlagNames name the context flags of the 0x8003 checksum [RFC 4121 §4.1.1.1].
var gssFlagNames = []struct {
	bit  uint32
	name string
}{{1, "deleg"}, {2, "mutual"}, {4, "replay"}, {8, "sequence"}, {16, "conf"}, {32, "integ"}, {64, "anon"}, {0x100, "trans"}}

// gssFlags names the set GSS context flags.
func gssFlags(f uint32) string {
	var out []string
	for _, n := range gssFlagNames {
		if f&n.bit != 0 {
			out = append(out, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		out = append(out, fmt.Sprintf("0x%x", f))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// errorName names a KRB-ERROR code: "KDC_ERR_PREAUTH_REQUIRED (25): Additional pre-authentication required".
func errorName(code int32) string {
	s := errorcode.Lookup(code) // "(25) KDC_ERR_PREAUTH_REQUIRED Additional pre-authentication required"
	s = strings.TrimPrefix(s, fmt.Sprintf("(%d) ", code))
	name, text, _ := strings.Cut(s, " ")
	if text == "" {
		return fmt.Sprintf("%s (%d)", name, code)
	}
	return fmt.Sprintf("%s (%d): %s", name, code, text)
}

// timeLayout is how every KerberosTime is shown.
const timeLayout = "2006-01-02T15:04:05Z"

// kTime formats a KerberosTime ("none" for the zero time).
func kTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(timeLayout)
}

// kTimeUsec formats a time with microseconds: ctime/cusec, stime/susec, patimestamp/pausec.
func kTimeUsec(t time.Time, usec int) string {
	return t.UTC().Add(time.Duration(usec) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
}

// relTime formats t and its distance from base: "2026-01-01T10:00:00Z (authtime + 10h0m0s)".
func relTime(t, base time.Time, baseName string) string {
	if t.IsZero() {
		return "none"
	}
	d := t.Sub(base).Round(time.Minute)
	if d == 0 {
		return kTime(t) + " (= " + baseName + ")"
	}
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s (%s %s %s)", kTime(t), baseName, sign, shortDuration(d))
}

// shortDuration prints 10h0m0s as "10h", 90m as "1h30m".
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	if s == "" {
		return "0s"
	}
	return s
}

// skewText says how far apart two clocks are, rounded.
func skewText(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < time.Second {
		return "less than a second"
	}
	return d.Round(time.Second).String()
}

// hexKey formats key material in lower-case hex.
func hexKey(b []byte) string { return hex.EncodeToString(b) }

// s2kIterations returns the PBKDF2 iteration count of an AES string-to-key parameter (4 bytes big-endian), or
// the enctype's default when params is empty [RFC 3962 §4, RFC 8009 §4].
func s2kIterations(etype int32, params []byte) (int, bool) {
	if len(params) == 4 {
		return int(binary.BigEndian.Uint32(params)), true
	}
	switch etype {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
		return 4096, true
	case etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192:
		return 32768, true
	}
	return 0, false
}

// s2kFunction describes the string-to-key function of an enctype.
func s2kFunction(etype int32, iterations int) string {
	switch etype {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
		return fmt.Sprintf("PBKDF2-HMAC-SHA1(password, salt, %d iterations), then DK(key, \"kerberos\") [RFC 3962 §4]", iterations)
	case etypeID.AES128_CTS_HMAC_SHA256_128:
		return fmt.Sprintf("PBKDF2-HMAC-SHA256(password, \"aes128-cts-hmac-sha256-128\" 0x00 salt, %d iterations), then KDF-HMAC-SHA2(key, \"kerberos\") [RFC 8009 §4]", iterations)
	case etypeID.AES256_CTS_HMAC_SHA384_192:
		return fmt.Sprintf("PBKDF2-HMAC-SHA384(password, \"aes256-cts-hmac-sha384-192\" 0x00 salt, %d iterations), then KDF-HMAC-SHA2(key, \"kerberos\") [RFC 8009 §4]", iterations)
	case etypeID.RC4_HMAC:
		return "MD4(UTF-16LE(password)), no salt, no iterations [RFC 4757 §3]: weak, avoid"
	}
	return "the enctype's string-to-key function [RFC 3961 §3]"
}

// bytesText returns "1 byte" / "2 bytes".
func bytesText(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return strconv.Itoa(n) + " bytes"
}
