package ticket

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixedKey returns a deterministic key of the given AES enctype.
func fixedKey(t testing.TB, etype int32) types.EncryptionKey {
	t.Helper()
	et, err := crypto.GetEtype(etype)
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, keySize(et))
	for i := range k {
		k[i] = byte(i*7 + int(etype))
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: k}
}

var cfxEtypes = []int32{17, 18, 19, 20}

func TestFrameKRB5TokenVector(t *testing.T) {
	// 0x60, length 15, OID 1.2.840.113554.1.2.2, TOK_ID 01 00, then the message.
	got := FrameKRB5Token(TokIDAPReq, []byte{0x6e, 0x00})
	want := unhex(t, "60 0f 06 09 2a864886f712010202 0100 6e00")
	if !bytes.Equal(got, want) {
		t.Fatalf("FrameKRB5Token = %x, want %x", got, want)
	}
	// Long-form lengths: 1 + 1 + 9 + 2 + 200 = 213 = 0x81 0xd5.
	msg := bytes.Repeat([]byte{0xab}, 200)
	got = FrameKRB5Token(TokIDAPRep, msg)
	if !bytes.Equal(got[:4], []byte{0x60, 0x81, 0xd5, 0x06}) || len(got) != 3+213 {
		t.Fatalf("long form header %x, len %d", got[:4], len(got))
	}
	// 300-byte message: length 313 = 0x82 0x01 0x39.
	got = FrameKRB5Token(TokIDError, make([]byte, 300))
	if !bytes.Equal(got[:4], []byte{0x60, 0x82, 0x01, 0x39}) {
		t.Fatalf("two-byte length header %x", got[:4])
	}
	for _, tok := range [][]byte{FrameKRB5Token(TokIDAPRep, msg), FrameKRB5Token(TokIDError, make([]byte, 300))} {
		id, m, err := ParseKRB5Token(tok)
		if err != nil {
			t.Fatal(err)
		}
		if id != binary.BigEndian.Uint16(tok[len(tok)-len(m)-2:]) {
			t.Errorf("tok id %04x", id)
		}
	}
}

func TestParseKRB5TokenObservedMIT(t *testing.T) {
	// The head of a token MIT gss-client sent (protocol-notes §9), with the
	// AP-REQ body cut to a stub and the length fixed up.
	tok := unhex(t, "6013 06092a864886f7120102020100 6e04 3002 0500")
	id, msg, err := ParseKRB5Token(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id != TokIDAPReq || !bytes.Equal(msg, unhex(t, "6e0430020500")) {
		t.Fatalf("got %04x %x", id, msg)
	}
	// Legacy Microsoft OID.
	legacy, err := FrameGSSToken(OIDKRB5Legacy, []byte{0x02, 0x00, 0x6f, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(legacy[2:4], []byte{0x06, 0x09}) || !bytes.Equal(legacy[4:13], unhex(t, "2a864882f712010202")) {
		t.Fatalf("legacy OID framing %x", legacy)
	}
	id, msg, err = ParseKRB5Token(legacy)
	if err != nil || id != TokIDAPRep || !bytes.Equal(msg, []byte{0x6f, 0x00}) {
		t.Fatalf("legacy: %04x %x %v", id, msg, err)
	}
	mech, _, err := ParseGSSToken(legacy)
	if err != nil || !mech.Equal(OIDKRB5Legacy) {
		t.Fatalf("ParseGSSToken legacy: %v %v", mech, err)
	}
}

func TestParseKRB5TokenRejects(t *testing.T) {
	good := FrameKRB5Token(TokIDAPReq, []byte{0x6e, 0x00})
	spnego, _ := FrameGSSToken(OIDSPNEGO, []byte{0xa0, 0x00})
	cases := map[string][]byte{
		"empty":            nil,
		"one byte":         {0x60},
		"not 0x60":         append([]byte{0x61}, good[1:]...),
		"length too long":  append([]byte{0x60, 0x10}, good[2:]...),
		"length too short": append([]byte{0x60, 0x0e}, good[2:]...),
		"trailing":         append(append([]byte{}, good...), 0),
		"indefinite":       append([]byte{0x60, 0x80}, good[2:]...),
		"5-byte length":    {0x60, 0x85, 0, 0, 0, 0, 15},
		"no OID":           {0x60, 0x02, 0x04, 0x00},
		"empty OID":        {0x60, 0x04, 0x06, 0x00, 0x01, 0x00},
		"other mech":       spnego,
		"no TOK_ID":        {0x60, 0x0c, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01},
		"bad OID encoding": {0x60, 0x05, 0x06, 0x01, 0x80, 0x01, 0x00},
	}
	for name, b := range cases {
		if _, _, err := ParseKRB5Token(b); err == nil {
			t.Errorf("%s: ParseKRB5Token(%x) succeeded", name, b)
		} else if !errors.Is(err, ErrDecode) {
			t.Errorf("%s: error %v does not wrap ErrDecode", name, err)
		}
	}
	// Every truncation of a good token fails.
	for i := 0; i < len(good); i++ {
		if _, _, err := ParseKRB5Token(good[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
}

func TestGSSChecksumVector(t *testing.T) {
	// MIT gss-client's default flags 0x136 (protocol-notes §9): mutual,
	// replay, conf, integ and 0x100, no channel bindings.
	c := GSSChecksum{Flags: 0x136}
	want := unhex(t, "10000000 00000000000000000000000000000000 36010000")
	if got := c.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal = %x, want %x", got, want)
	}
	got, err := ParseGSSChecksum(want)
	if err != nil || got.Flags != 0x136 || got.Deleg != nil {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	// With delegation: DlgOpt 1, Dlgth 3, KRB-CRED stub, then an extension
	// that must be ignored.
	d := GSSChecksum{Flags: GSSFlagDeleg | GSSFlagMutual, Deleg: []byte{0x76, 0x01, 0x00}}
	d.Bindings[0] = 0xaa
	want = unhex(t, "10000000 aa000000000000000000000000000000 03000000 0100 0300 760100")
	if got := d.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal deleg = %x, want %x", got, want)
	}
	got, err = ParseGSSChecksum(append(want, 0xde, 0xad, 0xbe, 0xef))
	if err != nil {
		t.Fatal(err)
	}
	if got.DelegOpt != 1 || !bytes.Equal(got.Deleg, d.Deleg) || got.Bindings != d.Bindings || got.Flags != d.Flags {
		t.Fatalf("Parse deleg = %+v", got)
	}
}

func TestParseGSSChecksumRejects(t *testing.T) {
	good := GSSChecksum{Flags: GSSFlagDeleg, Deleg: []byte{1, 2, 3, 4}}.Marshal()
	for i := 0; i < len(good); i++ {
		if _, err := ParseGSSChecksum(good[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	bad := append([]byte{}, good...)
	bad[0] = 17
	if _, err := ParseGSSChecksum(bad); err == nil || !strings.Contains(err.Error(), "Lgth 17") {
		t.Errorf("Lgth 17: %v", err)
	}
}

func TestWrapGSSRoundTrip(t *testing.T) {
	msgs := [][]byte{{}, []byte("x"), []byte("hello"), bytes.Repeat([]byte("0123456789abcdef"), 70)}
	for _, et := range cfxEtypes {
		for _, sub := range []bool{false, true} {
			key := GSSKey{Key: fixedKey(t, et), AcceptorSubkey: sub}
			for _, acceptor := range []bool{false, true} {
				for _, seal := range []bool{false, true} {
					for i, m := range msgs {
						seq := uint64(0x1234567890 + i)
						tok, err := WrapGSS(key, m, acceptor, seal, seq)
						if err != nil {
							t.Fatal(err)
						}
						wantFlags := byte(0)
						if acceptor {
							wantFlags |= GSSTokenSentByAcceptor
						}
						if seal {
							wantFlags |= GSSTokenSealed
						}
						if sub {
							wantFlags |= GSSTokenAcceptorSubkey
						}
						if tok[0] != 0x05 || tok[1] != 0x04 || tok[2] != wantFlags || tok[3] != 0xff {
							t.Fatalf("header %x, want flags %02x", tok[:4], wantFlags)
						}
						got, gotSeq, err := UnwrapGSS(key, tok, acceptor)
						if err != nil {
							t.Fatalf("etype %d sub %v acceptor %v seal %v: %v", et, sub, acceptor, seal, err)
						}
						if !bytes.Equal(got, m) || gotSeq != seq {
							t.Fatalf("round trip: %q seq %d", got, gotSeq)
						}
						if seal && len(m) > 4 && bytes.Contains(tok, m) {
							t.Fatalf("sealed token contains the plaintext")
						}
						// The wrong direction is refused.
						if _, _, err := UnwrapGSS(key, tok, !acceptor); err == nil {
							t.Fatal("unwrap with the wrong direction succeeded")
						}
						// So is the wrong subkey assertion.
						if _, _, err := UnwrapGSS(GSSKey{Key: key.Key, AcceptorSubkey: !sub}, tok, acceptor); err == nil {
							t.Fatal("unwrap with the wrong AcceptorSubkey succeeded")
						}
					}
				}
			}
		}
	}
}

// TestWrapGSSIntegrityMatchesGokrb5 cross-checks integrity-only Wrap tokens
// and MIC tokens (deterministic: HMACs, no confounder) against gokrb5's gssapi
// package.
func TestWrapGSSIntegrityMatchesGokrb5(t *testing.T) {
	for _, et := range cfxEtypes {
		key := fixedKey(t, et)
		msg := []byte("integrity only")
		ref, err := gssapi.NewInitiatorWrapToken(msg, key)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := WrapGSS(GSSKey{Key: key}, msg, false, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("etype %d: WrapGSS = %x\ngokrb5 = %x", et, got, want)
		}
		// gokrb5 verifies ours.
		var wt gssapi.WrapToken
		if err := wt.Unmarshal(got, false); err != nil {
			t.Fatal(err)
		}
		if ok, err := wt.Verify(key, keyusage.GSSAPI_INITIATOR_SEAL); !ok {
			t.Errorf("gokrb5 rejects our wrap token: %v", err)
		}

		refMIC, err := gssapi.NewInitiatorMICToken(msg, key)
		if err != nil {
			t.Fatal(err)
		}
		wantMIC, _ := refMIC.Marshal()
		gotMIC, err := MakeMIC(GSSKey{Key: key}, msg, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotMIC, wantMIC) {
			t.Errorf("etype %d: MakeMIC = %x\ngokrb5 = %x", et, gotMIC, wantMIC)
		}
	}
}

// TestWrapGSSSealedLayout checks the sealed layout by hand: the body decrypts
// with the sender's seal usage to plaintext || header (RRC 0).
func TestWrapGSSSealedLayout(t *testing.T) {
	key := fixedKey(t, 18)
	tok, err := WrapGSS(GSSKey{Key: key, AcceptorSubkey: true}, []byte("hello"), false, true, 7)
	if err != nil {
		t.Fatal(err)
	}
	hdr := unhex(t, "0504 06 ff 0000 0000 0000000000000007")
	if !bytes.Equal(tok[:16], hdr) {
		t.Fatalf("header %x, want %x", tok[:16], hdr)
	}
	plain, err := crypto.DecryptMessage(tok[16:], key, keyusage.GSSAPI_INITIATOR_SEAL)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("hello"), hdr...); !bytes.Equal(plain, want) {
		t.Fatalf("decrypted %x, want %x", plain, want)
	}
	if _, err := crypto.DecryptMessage(tok[16:], key, keyusage.GSSAPI_ACCEPTOR_SEAL); err == nil {
		t.Fatal("initiator token decrypts with the acceptor usage")
	}
}

// rotate builds the token a sender with a non-zero RRC would send: the body
// rotated right by rrc and RRC set in the outer header.
func rotate(tok []byte, rrc int) []byte {
	out := append([]byte{}, tok[:16]...)
	binary.BigEndian.PutUint16(out[6:8], uint16(rrc))
	body := tok[16:]
	r := rrc % len(body)
	out = append(out, body[len(body)-r:]...)
	return append(out, body[:len(body)-r]...)
}

func TestUnwrapGSSRotated(t *testing.T) {
	key := GSSKey{Key: fixedKey(t, 18)}
	for _, seal := range []bool{true, false} {
		tok, err := WrapGSS(key, []byte("rotate me please"), true, seal, 99)
		if err != nil {
			t.Fatal(err)
		}
		// 28 is what Windows uses (16 + 12), 12 the checksum length; a
		// count beyond the body length wraps.
		for _, rrc := range []int{1, 12, 28, len(tok) - 16, len(tok) + 5} {
			got, seq, err := UnwrapGSS(key, rotate(tok, rrc), true)
			if err != nil || string(got) != "rotate me please" || seq != 99 {
				t.Errorf("seal %v RRC %d: %q %d %v", seal, rrc, got, seq, err)
			}
		}
	}
}

func TestUnwrapGSSRejects(t *testing.T) {
	key := GSSKey{Key: fixedKey(t, 18)}
	sealed, _ := WrapGSS(key, []byte("hello world"), false, true, 1)
	integ, _ := WrapGSS(key, []byte("hello world"), false, false, 1)
	mod := func(b []byte, i int, v byte) []byte {
		c := append([]byte{}, b...)
		c[i] = v
		return c
	}
	cases := map[string][]byte{
		"empty":             nil,
		"short header":      sealed[:15],
		"header only":       sealed[:16],
		"wrong TOK_ID":      mod(sealed, 0, 0x04),
		"filler":            mod(sealed, 3, 0xfe),
		"sealed flag off":   mod(sealed, 2, 0),
		"sealed flag on":    mod(integ, 2, GSSTokenSealed),
		"ciphertext bit":    mod(sealed, 20, sealed[20]^1),
		"seq changed":       mod(sealed, 15, 2),
		"EC changed":        mod(sealed, 5, 1),
		"integ payload bit": mod(integ, 17, integ[17]^1),
		"integ seq changed": mod(integ, 15, 2),
		"integ EC":          mod(integ, 5, 11),
		"truncated sealed":  sealed[:len(sealed)-1],
		"truncated integ":   integ[:len(integ)-1],
		"short ciphertext":  sealed[:16+20],
		"tiny ciphertext":   sealed[:16+3],
	}
	for name, tok := range cases {
		if _, _, err := UnwrapGSS(key, tok, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Wrong key.
	other := GSSKey{Key: fixedKey(t, 17)}
	if _, _, err := UnwrapGSS(other, sealed, false); err == nil {
		t.Error("unwrap with another key succeeded")
	}
	// Enctypes without RFC 4121 tokens.
	rc4 := GSSKey{Key: types.EncryptionKey{KeyType: 23, KeyValue: make([]byte, 16)}}
	if _, err := WrapGSS(rc4, []byte("x"), false, true, 0); err == nil {
		t.Error("WrapGSS with rc4-hmac succeeded")
	}
	short := GSSKey{Key: types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 5)}}
	if _, err := WrapGSS(short, []byte("x"), false, true, 0); err == nil {
		t.Error("WrapGSS with a 5-byte aes256 key succeeded")
	}
}

func TestMICRoundTrip(t *testing.T) {
	for _, et := range cfxEtypes {
		for _, sub := range []bool{false, true} {
			key := GSSKey{Key: fixedKey(t, et), AcceptorSubkey: sub}
			for _, acceptor := range []bool{false, true} {
				tok, err := MakeMIC(key, []byte("sign me"), acceptor, 42)
				if err != nil {
					t.Fatal(err)
				}
				if tok[0] != 0x04 || tok[1] != 0x04 || !bytes.Equal(tok[3:8], []byte{0xff, 0xff, 0xff, 0xff, 0xff}) {
					t.Fatalf("MIC header %x", tok[:8])
				}
				seq, err := VerifyMIC(key, []byte("sign me"), tok, acceptor)
				if err != nil || seq != 42 {
					t.Fatalf("VerifyMIC: %d %v", seq, err)
				}
				if _, err := VerifyMIC(key, []byte("sign mE"), tok, acceptor); err == nil {
					t.Fatal("MIC verified over another message")
				}
				if _, err := VerifyMIC(key, []byte("sign me"), tok, !acceptor); err == nil {
					t.Fatal("MIC verified in the wrong direction")
				}
				if _, err := VerifyMIC(key, []byte("sign me"), tok[:len(tok)-1], acceptor); err == nil {
					t.Fatal("truncated MIC verified")
				}
				bad := append([]byte{}, tok...)
				bad[15] ^= 1
				if _, err := VerifyMIC(key, []byte("sign me"), bad, acceptor); err == nil {
					t.Fatal("MIC with another seq verified")
				}
			}
		}
	}
	// Acceptor MIC with a hand-computed checksum: usage 23 over msg || header.
	key := fixedKey(t, 18)
	tok, _ := MakeMIC(GSSKey{Key: key, AcceptorSubkey: true}, []byte("m"), true, 5)
	hdr := unhex(t, "0404 05 ffffffffff 0000000000000005")
	if !bytes.Equal(tok[:16], hdr) {
		t.Fatalf("MIC header %x, want %x", tok[:16], hdr)
	}
	et, _ := crypto.GetEtype(18)
	ck, _ := et.GetChecksumHash(key.KeyValue, append([]byte("m"), hdr...), keyusage.GSSAPI_ACCEPTOR_SIGN)
	if !bytes.Equal(tok[16:], ck) {
		t.Fatalf("MIC checksum %x, want %x", tok[16:], ck)
	}
}

func TestDecryptShortCiphertext(t *testing.T) {
	key := fixedKey(t, 18)
	for n := 0; n < 40; n++ {
		if _, err := Decrypt(key, make([]byte, n), 11); err == nil {
			t.Errorf("%d zero bytes decrypted", n)
		}
	}
	ed, err := crypto.GetEncryptedData([]byte("abc"), key, 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := Decrypt(key, ed.Cipher, 11); err != nil || string(b) != "abc" {
		t.Fatalf("Decrypt = %q, %v", b, err)
	}
}

func FuzzParseKRB5Token(f *testing.F) {
	f.Add(FrameKRB5Token(TokIDAPReq, []byte{0x6e, 0x00}))
	f.Add(FrameKRB5Token(TokIDAPRep, bytes.Repeat([]byte{1}, 300)))
	legacy, _ := FrameGSSToken(OIDKRB5Legacy, []byte{3, 0})
	f.Add(legacy)
	f.Add([]byte{0x60, 0x80})
	f.Add([]byte{0x60, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, msg, err := ParseKRB5Token(b)
		if err != nil {
			return
		}
		// What parses re-frames to the same bytes when it used the
		// standard OID and a minimal length.
		mech, _, _ := ParseGSSToken(b)
		if mech.Equal(OIDKRB5) {
			if again := FrameKRB5Token(id, msg); len(again) == len(b) && !bytes.Equal(again, b) {
				t.Fatalf("re-framed %x as %x", b, again)
			}
		}
		key := GSSKey{Key: types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}}
		_, _, _ = UnwrapGSS(key, msg, false)
		_, _ = VerifyMIC(key, nil, msg, true)
		_, _ = ParseGSSChecksum(msg)
	})
}

// TestOIDValues pins the OIDs' DER bytes.
func TestOIDValues(t *testing.T) {
	for _, c := range []struct {
		oid  asn1.ObjectIdentifier
		want string
	}{
		{OIDKRB5, "06092a864886f712010202"},
		{OIDKRB5Legacy, "06092a864882f712010202"},
		{OIDSPNEGO, "06062b0601050502"},
	} {
		b, err := asn1.Marshal(c.oid)
		if err != nil || hex.EncodeToString(b) != c.want {
			t.Errorf("%v = %x, want %s", c.oid, b, c.want)
		}
	}
	if hex.EncodeToString(oidKRB5DER) != "06092a864886f712010202" || hex.EncodeToString(oidSPNEGODER) != "06062b0601050502" {
		t.Error("cached OID encodings are wrong")
	}
}
