package ticket

import (
	"encoding/hex"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestCF2Vectors checks KRB-FX-CF2 against the expected outputs of MIT krb5's
// crypto test (keys from string-to-key of "key1"/"key2" salted with
// themselves, peppers "a" and "b"): facts, not code, carried over.
func TestCF2Vectors(t *testing.T) {
	for _, c := range []struct {
		etype int32
		want  string
	}{
		{17, "97df97e4b798b29eb31ed7280287a92a"},
		{18, "4d6ca4e629785c1f01baf55e2e548566b9617ae3a96868c337cb93b5e72b1c7b"},
		{19, "edd02a39d2dbde31611c16e610be062c"},
		{20, "67f6ea530aea85a37dcbb23349ea52dcc61ca8493ff557252327fd8304341584"},
	} {
		et, err := crypto.GetEtype(c.etype)
		if err != nil {
			t.Fatal(err)
		}
		key := func(s string) types.EncryptionKey {
			kb, err := et.StringToKey(s, s, et.GetDefaultStringToKeyParams())
			if err != nil {
				t.Fatal(err)
			}
			return types.EncryptionKey{KeyType: c.etype, KeyValue: kb}
		}
		got, err := CF2(key("key1"), key("key2"), "a", "b")
		if err != nil {
			t.Fatal(err)
		}
		if h := hex.EncodeToString(got.KeyValue); h != c.want || got.KeyType != c.etype {
			t.Errorf("etype %d: CF2 = %d %s, want %s", c.etype, got.KeyType, h, c.want)
		}
	}
}

// TestPRF8009Vector checks the RFC 8009 PRF against RFC 8009 Appendix A.
func TestPRF8009Vector(t *testing.T) {
	k, _ := hex.DecodeString("3705D96080C17728A0E800EAB6E0D23C")
	got, err := PRF(types.EncryptionKey{KeyType: 19, KeyValue: k}, []byte("test"))
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got); h != "9d188616f63852fe86915bb840b4a886ff3e6bb0f819b49b893393d393854295" {
		t.Errorf("PRF = %s", h)
	}
}

func TestCF2RefusesOtherEnctypes(t *testing.T) {
	k := types.EncryptionKey{KeyType: 23, KeyValue: make([]byte, 16)}
	if _, err := CF2(k, k, "a", "b"); err == nil {
		t.Fatal("CF2 of an rc4 key: no error")
	}
}
