package ticket

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// newKey is a fresh random key of enctype e. gokrb5's GenerateEncryptionKey
// makes 24-byte aes256-cts-hmac-sha384-192 keys (they are 32 bytes, RFC 8009).
func newKey(t testing.TB, e int32) types.EncryptionKey {
	t.Helper()
	if et := lookupEtype(e); et != nil {
		k := types.EncryptionKey{KeyType: e, KeyValue: make([]byte, et.keyLen)}
		rand.Read(k.KeyValue)
		return k
	}
	et, err := crypto.GetEtype(e)
	if err != nil {
		t.Fatal(err)
	}
	k, err := types.GenerateEncryptionKey(et)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	aesEnctypes = []int32{17, 18, 19, 20}
	// Key usages of RFC 4120 §7.5.1 the KDC uses, plus GSS ones and a large one.
	testUsages   = []uint32{1, 2, 3, 6, 7, 8, 9, 11, 22, 24, 1026}
	testLengths  = []int{0, 1, 15, 16, 17, 31, 32, 33, 200, 1000}
	cacheVariant = []struct {
		name string
		new  func() *KeyCache
	}{
		{"nil", func() *KeyCache { return nil }},
		{"cached", func() *KeyCache { return NewKeyCache(0) }},
	}
)

// RFC 3961 Appendix A.1 n-fold vectors.
func TestNFoldRFC3961(t *testing.T) {
	for _, v := range []struct {
		bits int
		in   string
		want string
	}{
		{64, "012345", "be072631276b1955"},
		{56, "password", "78a07b6caf85fa"},
		{64, "Rough Consensus, and Running Code", "bb6ed30870b7f0e0"},
		{168, "password", "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e"},
		{192, "MASSACHVSETTS INSTITVTE OF TECHNOLOGY", "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b"},
		{168, "Q", "518a54a215a8452a518a54a215a8452a518a54a215"},
		{168, "ba", "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"},
		{64, "kerberos", "6b65726265726f73"},
		{128, "kerberos", "6b65726265726f737b9b5b2b93132b93"},
		{168, "kerberos", "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4"},
		{256, "kerberos", "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4"},
	} {
		if got := hex.EncodeToString(nfold([]byte(v.in), v.bits/8)); got != v.want {
			t.Errorf("%d-fold(%q) = %s, want %s", v.bits, v.in, got, v.want)
		}
	}
}

// RFC 3962 Appendix B AES-CTS vectors (key "chicken teriyaki", IV 0).
func TestCTSRFC3962(t *testing.T) {
	b := mustAES(t, unhex(t, "636869636b656e207465726979616b69"))
	for _, v := range []struct{ in, out string }{
		{"4920776f756c64206c696b652074686520", "c6353568f2bf8cb4d8a580362da7ff7f97"},
		{"4920776f756c64206c696b65207468652047656e6572616c20476175277320", "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5"},
		{"4920776f756c64206c696b65207468652047656e6572616c2047617527732043", "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584"},
		{"4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c", "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5"},
		{"4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c20", "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8"},
		{"4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c20616e6420776f6e746f6e20736f75702e", "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8"},
	} {
		buf := unhex(t, v.in)
		ctsEncrypt(b, buf, new(work))
		if got := hex.EncodeToString(buf); got != v.out {
			t.Errorf("CTS(%s) = %s, want %s", v.in, got, v.out)
		}
		ctsDecrypt(b, buf, new(work))
		if got := hex.EncodeToString(buf); got != v.in {
			t.Errorf("CTS⁻¹(%s) = %s, want %s", v.out, got, v.in)
		}
	}
}

func mustAES(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 8009 Appendix A: key derivation, encryption with the given confounders,
// and checksums, for usage 2.
func TestRFC8009Vectors(t *testing.T) {
	type encVec struct{ plain, conf, out string }
	for _, v := range []struct {
		etype          int32
		base           string
		kc, ke, ki     string
		cksumIn, cksum string
		enc            []encVec
	}{
		{
			etype: 19, base: "3705d96080c17728a0e800eab6e0d23c",
			kc: "b31a018a48f54776f403e9a396325dc3", ke: "9b197dd1e8c5609d6e67c3e37c62c72e", ki: "9fda0e56ab2d85e1569a688696c26a6c",
			cksumIn: "000102030405060708090a0b0c0d0e0f1011121314", cksum: "d78367186643d67b411cba9139fc1dee",
			enc: []encVec{
				{"", "7e5895eaf2672435bad817f545a37148", "ef85fb890bb8472f4dab20394dca781dad877eda39d50c870c0d5a0a8e48c718"},
				{"000102030405", "7bca285e2fd4130fb55b1a5c83bc5b24", "84d7f30754ed987bab0bf3506beb09cfb55402cef7e6877ce99e247e52d16ed4421dfdf8976c"},
				{"000102030405060708090a0b0c0d0e0f", "56ab21713ff62c0a1457200f6fa9948f", "3517d640f50ddc8ad3628722b3569d2ae07493fa8263254080ea65c1008e8fc295fb4852e7d83e1e7c48c37eebe6b0d3"},
				{"000102030405060708090a0b0c0d0e0f1011121314", "a7a4e29a4728ce10664fb64e49ad3fac", "720f73b18d9859cd6ccb4346115cd336c70f58edc0c4437c5573544c31c813bce1e6d072c186b39a413c2f92ca9b8334a287ffcbfc"},
			},
		},
		{
			etype: 20, base: "6d404d37faf79f9df0d33568d320669800eb4836472ea8a026d16b7182460c52",
			kc: "ef5718be86cc84963d8bbb5031e9f5c4ba41f28faf69e73d", ke: "56ab22bee63d82d7bc5227f6773f8ea7a5eb1c825160c38312980c442e5c7e49", ki: "69b16514e3cd8e56b82010d5c73012b622c4d00ffc23ed1f",
			cksumIn: "000102030405060708090a0b0c0d0e0f1011121314", cksum: "45ee791567eefca37f4ac1e0222de80d43c3bfa06699672a",
			enc: []encVec{
				{"", "f764e9fa15c276478b2c7d0c4e5f58e4", "41f53fa5bfe7026d91faf9be959195a058707273a96a40f0a01960621ac612748b9bbfbe7eb4ce3c"},
				{"000102030405", "b80d3251c1f6471494256ffe712d0b9a", "4ed7b37c2bcac8f74f23c1cf07e62bc7b75fb3f637b9f559c7f664f69eab7b6092237526ea0d1f61cb20d69d10f2"},
				{"000102030405060708090a0b0c0d0e0f", "53bf8a0d105265d4e276428624ce5e63", "bc47ffec7998eb91e8115cf8d19dac4bbbe2e163e87dd37f49beca92027764f68cf51f14d798c2273f35df574d1f932e40c4ff255b36a266"},
				{"000102030405060708090a0b0c0d0e0f1011121314", "763e65367e864f02f55153c7e3b58af1", "40013e2df58e8751957d2878bcd2d6fe101ccfd556cb1eae79db3c3ee86429f2b2a602ac86fef6ecb647d6295fae077a1feb517508d2c16b4192e01f62"},
			},
		},
	} {
		t.Run(fmt.Sprint(v.etype), func(t *testing.T) {
			et := lookupEtype(v.etype)
			base := unhex(t, v.base)
			for _, k := range []struct {
				kind byte
				n    int
				want string
			}{{kindKc, et.kiLen, v.kc}, {kindKe, et.keyLen, v.ke}, {kindKi, et.kiLen, v.ki}} {
				if got := hex.EncodeToString(kdfHMACSHA2(et.hash, base, 2, k.kind, make([]byte, k.n))); got != k.want {
					t.Errorf("KDF(usage 2 | %#x) = %s, want %s", k.kind, got, k.want)
				}
			}
			key := types.EncryptionKey{KeyType: v.etype, KeyValue: base}
			for _, c := range []*KeyCache{nil, NewKeyCache(0)} {
				d, err := c.keys(et, base, 2, needEnc|needSum)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range v.enc {
					if got := hex.EncodeToString(d.seal(unhex(t, e.conf), unhex(t, e.plain), macSlot{})); got != e.out {
						t.Errorf("encrypt(%s) = %s, want %s", e.plain, got, e.out)
					}
					plain, err := c.Decrypt(types.EncryptedData{EType: v.etype, Cipher: unhex(t, e.out)}, key, 2)
					if err != nil || hex.EncodeToString(plain) != e.plain {
						t.Errorf("decrypt(%s) = %x, %v; want %s", e.out, plain, err, e.plain)
					}
				}
				typ, sum, err := c.Checksum(key, 2, unhex(t, v.cksumIn))
				if err != nil || typ != v.etype || hex.EncodeToString(sum) != v.cksum {
					t.Errorf("checksum = %d %x %v, want %d %s", typ, sum, err, v.etype, v.cksum)
				}
				if !c.VerifyChecksum(key, 2, unhex(t, v.cksumIn), unhex(t, v.cksum)) {
					t.Error("RFC checksum does not verify")
				}
			}
		})
	}
}

// Derived keys equal gokrb5's DeriveKey for the same label.
func TestDeriveKeyMatchesGokrb5(t *testing.T) {
	for _, e := range aesEnctypes {
		et := lookupEtype(e)
		gk, _ := crypto.GetEtype(e)
		key := newKey(t, e)
		for _, u := range testUsages {
			d, err := deriveKeys(et, key.KeyValue, u, needEnc|needSum)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []struct {
				kind byte
				got  []byte
			}{{kindKc, d.kc}, {kindKi, d.ki}} {
				label := usageLabel(u, k.kind)
				want, err := gk.DeriveKey(key.KeyValue, label[:])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(k.got, want) {
					t.Errorf("etype %d usage %d kind %#x: derived %x, gokrb5 %x", e, u, k.kind, k.got, want)
				}
			}
		}
	}
}

// Our ciphertexts open with gokrb5 and gokrb5's open with ours; checksums are
// byte-for-byte gokrb5's, for every AES enctype, several usages and lengths.
func TestCrossCheckGokrb5(t *testing.T) {
	for _, cv := range cacheVariant {
		c := cv.new()
		for _, e := range aesEnctypes {
			t.Run(fmt.Sprintf("%s/%d", cv.name, e), func(t *testing.T) {
				gk, _ := crypto.GetEtype(e)
				key := newKey(t, e)
				for _, u := range testUsages {
					for _, n := range testLengths {
						plain := make([]byte, n)
						rand.Read(plain)
						// ours → gokrb5
						ed, err := c.Encrypt(key, u, plain, 7)
						if err != nil {
							t.Fatal(err)
						}
						if ed.EType != e || ed.KVNO != 7 || len(ed.Cipher) != 16+n+lookupEtype(e).macLen {
							t.Fatalf("EncryptedData etype %d kvno %d len %d", ed.EType, ed.KVNO, len(ed.Cipher))
						}
						got, err := crypto.DecryptEncPart(ed, key, u)
						if err != nil || !bytes.Equal(got, plain) {
							t.Fatalf("usage %d len %d: gokrb5 cannot open ours: %v", u, n, err)
						}
						// gokrb5 → ours
						ged, err := crypto.GetEncryptedData(plain, key, u, 7)
						if err != nil {
							t.Fatal(err)
						}
						got, err = c.Decrypt(ged, key, u)
						if err != nil || !bytes.Equal(got, plain) {
							t.Fatalf("usage %d len %d: we cannot open gokrb5's: %v", u, n, err)
						}
						// checksums
						want, err := gk.GetChecksumHash(key.KeyValue, plain, u)
						if err != nil {
							t.Fatal(err)
						}
						typ, sum, err := c.Checksum(key, u, plain)
						if err != nil || typ != gk.GetHashID() || !bytes.Equal(sum, want) {
							t.Fatalf("usage %d len %d: checksum %d %x %v, gokrb5 %d %x", u, n, typ, sum, err, gk.GetHashID(), want)
						}
						if !c.VerifyChecksum(key, u, plain, want) || !gk.VerifyChecksum(key.KeyValue, plain, sum, u) {
							t.Fatalf("usage %d len %d: checksum does not verify both ways", u, n)
						}
					}
				}
			})
		}
	}
}

// Wrong key, wrong usage, a flipped bit anywhere, any truncation and random
// bytes are all refused, without a panic.
func TestDecryptRejects(t *testing.T) {
	for _, cv := range cacheVariant {
		c := cv.new()
		for _, e := range aesEnctypes {
			t.Run(fmt.Sprintf("%s/%d", cv.name, e), func(t *testing.T) {
				key, other := newKey(t, e), newKey(t, e)
				plain := []byte("a message of more than two blocks, to exercise CTS")
				ed, err := c.Encrypt(key, 3, plain, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Decrypt(ed, other, 3); !errors.Is(err, ErrIntegrity) {
					t.Errorf("wrong key: %v", err)
				}
				if _, err := c.Decrypt(ed, key, 8); !errors.Is(err, ErrIntegrity) {
					t.Errorf("wrong usage: %v", err)
				}
				for i := range ed.Cipher {
					for _, bit := range []byte{0x01, 0x80} {
						bad := ed
						bad.Cipher = bytes.Clone(ed.Cipher)
						bad.Cipher[i] ^= bit
						if _, err := c.Decrypt(bad, key, 3); !errors.Is(err, ErrIntegrity) {
							t.Fatalf("byte %d ^ %#x accepted: %v", i, bit, err)
						}
					}
				}
				for n := 0; n < len(ed.Cipher); n++ {
					bad := ed
					bad.Cipher = ed.Cipher[:n]
					if _, err := c.Decrypt(bad, key, 3); err == nil {
						t.Fatalf("truncated to %d bytes accepted", n)
					}
					bad.Cipher = ed.Cipher[len(ed.Cipher)-n:]
					if _, err := c.Decrypt(bad, key, 3); err == nil {
						t.Fatalf("last %d bytes accepted", n)
					}
				}
				for n := 0; n < 100; n++ {
					junk := make([]byte, n)
					rand.Read(junk)
					if _, err := c.Decrypt(types.EncryptedData{EType: e, Cipher: junk}, key, 3); err == nil {
						t.Fatalf("%d random bytes accepted", n)
					}
				}
				if _, err := c.Decrypt(types.EncryptedData{EType: e}, key, 3); err == nil {
					t.Fatal("nil ciphertext accepted")
				}
				_, sum, err := c.Checksum(key, 6, plain)
				if err != nil {
					t.Fatal(err)
				}
				for i := range sum {
					bad := bytes.Clone(sum)
					bad[i] ^= 1
					if c.VerifyChecksum(key, 6, plain, bad) {
						t.Fatalf("checksum with byte %d flipped verifies", i)
					}
				}
				for _, bad := range [][]byte{nil, sum[:len(sum)-1], append(bytes.Clone(sum), 0)} {
					if c.VerifyChecksum(key, 6, plain, bad) {
						t.Fatalf("checksum of %d bytes verifies", len(bad))
					}
				}
				if c.VerifyChecksum(key, 7, plain, sum) || c.VerifyChecksum(other, 6, plain, sum) || c.VerifyChecksum(key, 6, plain[1:], sum) {
					t.Fatal("checksum verifies with another usage, key or message")
				}
			})
		}
	}
}

// Keys of the wrong length go to gokrb5 (which refuses them, including the
// 24-byte aes256-cts-hmac-sha384-192 keys its GenerateEncryptionKey makes): the
// outcome is gokrb5's, there is no panic and nothing is cached.
func TestOddKeyLengthsFallBack(t *testing.T) {
	c := NewKeyCache(0)
	for _, e := range aesEnctypes {
		for _, n := range []int{0, 1, 15, 16, 24, 31, 32, 33, 64} {
			if n == lookupEtype(e).keyLen {
				continue
			}
			key := types.EncryptionKey{KeyType: e, KeyValue: make([]byte, n)}
			rand.Read(key.KeyValue)
			ed, err := c.Encrypt(key, 2, []byte("odd"), 0)
			_, gerr := crypto.GetEncryptedData([]byte("odd"), key, 2, 0)
			if (err == nil) != (gerr == nil) {
				t.Errorf("etype %d, %d-byte key: encrypt error %v, gokrb5's %v", e, n, err, gerr)
			}
			if err == nil {
				if got, err := crypto.DecryptEncPart(ed, key, 2); err != nil || string(got) != "odd" {
					t.Errorf("etype %d, %d-byte key: gokrb5 cannot open ours: %v", e, n, err)
				}
				if got, err := c.Decrypt(ed, key, 2); err != nil || string(got) != "odd" {
					t.Errorf("etype %d, %d-byte key: round trip: %v", e, n, err)
				}
			}
			c.Decrypt(types.EncryptedData{EType: e, Cipher: make([]byte, 64)}, key, 2)
			c.Checksum(key, 2, nil)
			c.VerifyChecksum(key, 2, nil, make([]byte, 24))
		}
	}
	if c.Len() != 0 {
		t.Errorf("odd keys were cached: %d entries", c.Len())
	}
}

// Other enctypes go to gokrb5 and still interoperate with it.
func TestFallbackEnctypes(t *testing.T) {
	for _, cv := range cacheVariant {
		c := cv.new()
		for _, e := range []int32{16, 23} { // des3-cbc-sha1-kd, rc4-hmac
			key := newKey(t, e)
			gk, _ := crypto.GetEtype(e)
			plain := []byte("fallback message")
			ed, err := c.Encrypt(key, 2, plain, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := crypto.DecryptEncPart(ed, key, 2); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("etype %d: gokrb5 cannot open ours: %v", e, err)
			}
			ged, _ := crypto.GetEncryptedData(plain, key, 2, 3)
			if got, err := c.Decrypt(ged, key, 2); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("etype %d: we cannot open gokrb5's: %v", e, err)
			}
			typ, sum, err := c.Checksum(key, 6, plain)
			want, _ := gk.GetChecksumHash(key.KeyValue, plain, 6)
			if err != nil || typ != gk.GetHashID() || !bytes.Equal(sum, want) {
				t.Fatalf("etype %d: checksum %d %x %v", e, typ, sum, err)
			}
			if !c.VerifyChecksum(key, 6, plain, sum) {
				t.Fatalf("etype %d: checksum does not verify", e)
			}
			for n := 0; n < len(sum); n++ {
				if c.VerifyChecksum(key, 6, plain, sum[:n]) {
					t.Fatalf("etype %d: checksum truncated to %d bytes verifies", e, n)
				}
			}
			// gokrb5 panics on some short ciphertexts: we must not.
			for n := 0; n < len(ed.Cipher)+8; n++ {
				junk := make([]byte, n)
				rand.Read(junk)
				if _, err := c.Decrypt(types.EncryptedData{EType: e, Cipher: junk}, key, 2); err == nil {
					t.Fatalf("etype %d: %d random bytes accepted", e, n)
				}
				if n < len(ed.Cipher) {
					if _, err := c.Decrypt(types.EncryptedData{EType: e, Cipher: ed.Cipher[:n]}, key, 2); err == nil {
						t.Fatalf("etype %d: truncated to %d bytes accepted", e, n)
					}
				}
			}
		}
		if _, err := c.Encrypt(types.EncryptionKey{KeyType: 9999, KeyValue: make([]byte, 16)}, 2, nil, 0); err == nil {
			t.Error("unknown enctype accepted")
		}
		if _, err := c.Decrypt(types.EncryptedData{EType: 9999}, types.EncryptionKey{KeyType: 9999}, 2); err == nil {
			t.Error("unknown enctype accepted")
		}
	}
	if NewKeyCache(0).Len() != 0 {
		t.Error("fresh cache not empty")
	}
}

// The cache holds at most its capacity, keeps working past it, and serves
// repeated keys from the same entry.
func TestKeyCacheCap(t *testing.T) {
	for _, capacity := range []int{1, 10, 63, 64, 1000} {
		c := NewKeyCache(capacity)
		for i := 0; i < 3*capacity+20; i++ {
			key := newKey(t, aesEnctypes[i%4])
			ed, err := c.Encrypt(key, 2, []byte("capped"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.Decrypt(ed, key, 2); err != nil || string(got) != "capped" {
				t.Fatalf("capacity %d key %d: %q %v", capacity, i, got, err)
			}
			if n := c.Len(); n > capacity {
				t.Fatalf("capacity %d: %d entries", capacity, n)
			}
		}
		if n := c.Len(); n == 0 || n < capacity/2 {
			t.Errorf("capacity %d: only %d entries kept", capacity, n)
		}
	}
	c := NewKeyCache(100)
	key := newKey(t, 18)
	for i := 0; i < 10; i++ {
		for _, u := range []uint32{2, 3, 6} {
			if _, err := c.Encrypt(key, u, []byte("same"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := c.Len(); n != 3 {
		t.Errorf("one key, three usages: %d entries, want 3", n)
	}
	if d := NewKeyCache(0); len(d.shards)*d.perShard != DefaultKeyCacheEntries {
		t.Errorf("default capacity %d", len(d.shards)*d.perShard)
	}
}

// An entry found under a key's hash is used only if it was derived from that
// very key: a hash collision re-derives instead of using another key.
func TestKeyCacheCollisionSafe(t *testing.T) {
	c := NewKeyCache(10)
	a, b := newKey(t, 18), newKey(t, 18)
	if _, err := c.Encrypt(a, 2, []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	et := lookupEtype(18)
	da, err := c.keys(et, a.KeyValue, 2, needEnc)
	if err != nil {
		t.Fatal(err)
	}
	// Plant a's entry where b's would be, as a collision would.
	s := &c.shards[0]
	s.mu.Lock()
	s.m.Clear()
	idB := cacheID{etype: 18, usage: 2, hash: maphash.Bytes(c.seed, b.KeyValue)}
	s.m.Store(idB, da)
	s.n = 1
	s.mu.Unlock()
	ed, err := c.Encrypt(b, 2, []byte("b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := crypto.DecryptEncPart(ed, b, 2); err != nil || string(got) != "b" {
		t.Fatalf("encrypted under the colliding entry: %v", err)
	}
}

// A hit takes no lock: it is served while a fill holds its shard (with an
// RWMutex it waited, and the readers' count was one cache line that every
// core's every request wrote).
func TestKeyCacheHitTakesNoLock(t *testing.T) {
	c := NewKeyCache(10) // one shard
	key := newKey(t, 18)
	if _, err := c.Encrypt(key, 2, []byte("warm"), 0); err != nil {
		t.Fatal(err)
	}
	s := &c.shards[0]
	s.mu.Lock()
	done := make(chan error, 1)
	go func() {
		_, err := c.Encrypt(key, 2, []byte("hit"), 0)
		done <- err
	}()
	select {
	case err := <-done:
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		s.mu.Unlock()
		<-done
		t.Fatal("a cached key waited for the shard's lock")
	}
}

// Concurrent use of one cache from many goroutines, under -race.
func TestKeyCacheConcurrent(t *testing.T) {
	c := NewKeyCache(64) // small enough to evict while in use
	keys := make([]types.EncryptionKey, 40)
	for i := range keys {
		keys[i] = newKey(t, aesEnctypes[i%4])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := keys[(g*7+i)%len(keys)]
				u := testUsages[(g+i)%len(testUsages)]
				msg := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				ed, err := c.Encrypt(key, u, msg, 0)
				if err != nil {
					errs <- err
					return
				}
				got, err := c.Decrypt(ed, key, u)
				if err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("round trip: %v", err)
					return
				}
				_, sum, err := c.Checksum(key, u, msg)
				if err != nil || !c.VerifyChecksum(key, u, msg, sum) {
					errs <- fmt.Errorf("checksum: %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := c.Len(); n > 64 {
		t.Fatalf("%d entries, cap 64", n)
	}
}

func benchKeys(b *testing.B) map[int32]types.EncryptionKey {
	m := map[int32]types.EncryptionKey{}
	for _, e := range aesEnctypes {
		m[e] = newKey(b, e)
	}
	return m
}

// BenchmarkEncrypt200 encrypts a 200-byte message with a long-term key: gokrb5,
// our code with the derived keys cached, and our code deriving every time (the
// session-key path).
func BenchmarkEncrypt200(b *testing.B) {
	keys := benchKeys(b)
	msg := make([]byte, 200)
	for _, e := range aesEnctypes {
		key := keys[e]
		b.Run(fmt.Sprintf("gokrb5/%d", e), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := crypto.GetEncryptedData(msg, key, 2, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, cv := range cacheVariant {
			c := cv.new()
			b.Run(fmt.Sprintf("%s/%d", cv.name, e), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Encrypt(key, 2, msg, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecrypt200 opens a 200-byte message, as BenchmarkEncrypt200.
func BenchmarkDecrypt200(b *testing.B) {
	keys := benchKeys(b)
	msg := make([]byte, 200)
	for _, e := range aesEnctypes {
		key := keys[e]
		ed, err := crypto.GetEncryptedData(msg, key, 2, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("gokrb5/%d", e), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := crypto.DecryptEncPart(ed, key, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, cv := range cacheVariant {
			c := cv.new()
			b.Run(fmt.Sprintf("%s/%d", cv.name, e), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Decrypt(ed, key, 2); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkChecksum is the TGS req-body checksum (about 200 bytes).
func BenchmarkChecksum(b *testing.B) {
	keys := benchKeys(b)
	msg := make([]byte, 200)
	key := keys[18]
	gk, _ := crypto.GetEtype(18)
	b.Run("gokrb5/18", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := gk.GetChecksumHash(key.KeyValue, msg, 6); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, cv := range cacheVariant {
		c := cv.new()
		b.Run(cv.name+"/18", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.Checksum(key, 6, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// SessionKeys, which shares a base key's cipher between its usages, agrees
// with gokrb5 both ways for every AES enctype, over several keys and usages
// used in any order with one SessionKeys.
func TestSessionKeysMatchGokrb5(t *testing.T) {
	for _, e := range aesEnctypes {
		var s SessionKeys
		gk, _ := crypto.GetEtype(e)
		keys := []types.EncryptionKey{newKey(t, e), newKey(t, e), newKey(t, e)} // one more than SessionKeys keeps
		for round := 0; round < 2; round++ {
			for _, key := range keys {
				for _, u := range testUsages {
					plain := make([]byte, 100+int(u))
					rand.Read(plain)
					ed, err := s.Encrypt(key, u, plain, 0)
					if err != nil {
						t.Fatal(err)
					}
					if got, err := crypto.DecryptEncPart(ed, key, u); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("etype %d usage %d: gokrb5 cannot open ours: %v", e, u, err)
					}
					ged, _ := crypto.GetEncryptedData(plain, key, u, 0)
					if got, err := s.Decrypt(ged, key, u); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("etype %d usage %d: we cannot open gokrb5's: %v", e, u, err)
					}
					want, _ := gk.GetChecksumHash(key.KeyValue, plain, u)
					if typ, sum, err := s.Checksum(key, u, plain); err != nil || typ != gk.GetHashID() || !bytes.Equal(sum, want) {
						t.Fatalf("etype %d usage %d: checksum %x, gokrb5 %x", e, u, sum, want)
					}
					if !s.VerifyChecksum(key, u, plain, want) {
						t.Fatalf("etype %d usage %d: gokrb5's checksum does not verify", e, u)
					}
					other := keys[(round+1)%len(keys)]
					if s.VerifyChecksum(other, u, plain, want) && !bytes.Equal(other.KeyValue, key.KeyValue) {
						t.Fatalf("etype %d usage %d: checksum verifies under another key", e, u)
					}
				}
			}
		}
	}
}
