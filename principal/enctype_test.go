package principal

import (
	"slices"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
)

func TestEnctypeNames(t *testing.T) {
	for e, want := range map[int32]string{
		1: "des-cbc-crc", 4: "des-cbc-raw", 16: "des3-cbc-sha1", 18: "aes256-cts-hmac-sha1-96",
		20: "aes256-cts-hmac-sha384-192", 23: "arcfour-hmac", 24: "arcfour-hmac-exp", 26: "camellia256-cts-cmac",
		5: "etype 5", 0: "etype 0", -128: "etype -128",
	} {
		if got := EnctypeName(e); got != want {
			t.Errorf("EnctypeName(%d) = %q, want %q", e, got, want)
		}
	}
	for _, e := range []int32{1, 16, 23, 24, 5, 0, -1} {
		if !EnctypeDeprecated(e) {
			t.Errorf("EnctypeDeprecated(%d) = false", e)
		}
	}
	for _, e := range []int32{17, 18, 19, 20, 25, 26} {
		if EnctypeDeprecated(e) {
			t.Errorf("EnctypeDeprecated(%d) = true", e)
		}
	}
}

// TestEnctypeTable keeps the table consistent: numbers and names unique, and every
// enctype a principal may hold keys of implemented by gokrb5.
func TestEnctypeTable(t *testing.T) {
	seen := map[string]int32{}
	ids := map[int32]bool{}
	for _, in := range enctypes {
		if ids[in.id] {
			t.Errorf("enctype %d listed twice", in.id)
		}
		ids[in.id] = true
		for _, n := range append([]string{in.name}, in.aliases...) {
			if o, dup := seen[n]; dup {
				t.Errorf("name %q used by %d and %d", n, o, in.id)
			}
			seen[n] = in.id
		}
		if _, err := crypto.GetEtype(in.id); in.keys && err != nil {
			t.Errorf("%s may hold keys but gokrb5 does not implement it: %v", in.name, err)
		}
	}
	if got := EnctypeNames(); !slices.IsSorted(got) || len(got) != 6 {
		t.Errorf("EnctypeNames() = %v", got)
	}
	for _, e := range DefaultEnctypes {
		if !slices.Contains(EnctypeNames(), EnctypeName(e)) {
			t.Errorf("default enctype %s cannot hold keys", EnctypeName(e))
		}
	}
}

func TestParseEnctypeForms(t *testing.T) {
	for s, want := range map[string]int32{
		"aes256-cts-hmac-sha1-96": 18, "AES256-CTS": 18, "aes256-sha1": 18, "aes128-cts:normal": 17,
		"aes256-sha2": 20, "aes128-cts-hmac-sha256-128": 19, "rc4-hmac": 23, "arcfour-hmac-md5": 23,
		"des3-cbc-sha1-kd": 16, "des3-hmac-sha1": 16, "16": 16,
	} {
		got, err := ParseEnctypes(s)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("ParseEnctypes(%q) = %v, %v; want [%d]", s, got, err, want)
		}
	}
	// Named by MIT but not something a principal may hold keys of, or not an enctype at all.
	for _, s := range []string{"des-cbc-crc", "1", "arcfour-hmac-exp", "camellia128-cts", "25", "etype 18", "18x", "", "-"} {
		if got, err := ParseEnctypes(s); err == nil {
			t.Errorf("ParseEnctypes(%q) = %v, want an error", s, got)
		} else if s != "" && !strings.Contains(err.Error(), "supported: aes128-cts-hmac-sha1-96") {
			t.Errorf("ParseEnctypes(%q) error %q does not list the supported enctypes", s, err)
		}
	}
}
