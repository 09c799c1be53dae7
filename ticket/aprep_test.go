package ticket

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func TestAPRepRoundTrip(t *testing.T) {
	session := fixedKey(t, 18)
	ctime := time.Date(2026, 11, 25, 2, 25, 7, 0, time.UTC)
	sub := fixedKey(t, 18)
	sub.KeyValue[0] ^= 0xff
	cases := []APRepPart{
		{CTime: ctime, Cusec: 123456},
		{CTime: ctime, Cusec: 0, SubKey: sub, SeqNumber: 0, HasSeq: true},
		{CTime: ctime, Cusec: 999999, SubKey: sub, SeqNumber: 0xfffffffe, HasSeq: true},
		{CTime: ctime, Cusec: 1, SeqNumber: 0x3fffffff, HasSeq: true},
	}
	for _, p := range cases {
		b, err := BuildAPRep(p, session)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 0x6f {
			t.Fatalf("AP-REP starts with %02x, want 6f (APPLICATION 15)", b[0])
		}
		got, err := ParseAPRep(b, session)
		if err != nil {
			t.Fatal(err)
		}
		if !got.CTime.Equal(p.CTime) || got.Cusec != p.Cusec || got.HasSeq != p.HasSeq || got.SeqNumber != p.SeqNumber ||
			got.SubKey.KeyType != p.SubKey.KeyType || !bytes.Equal(got.SubKey.KeyValue, p.SubKey.KeyValue) {
			t.Fatalf("round trip %+v -> %+v", p, got)
		}
		// gokrb5 decodes it too, with usage 12 and the session key.
		var rep messages.APRep
		if err := rep.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		plain, err := crypto.DecryptEncPart(rep.EncPart, session, keyusage.AP_REP_ENCPART)
		if err != nil {
			t.Fatal(err)
		}
		var enc messages.EncAPRepPart
		if err := enc.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		if !enc.CTime.Equal(p.CTime) || enc.Cusec != p.Cusec || enc.SequenceNumber != p.SeqNumber {
			t.Fatalf("gokrb5 decodes %+v", enc)
		}
		// Not with another usage.
		if _, err := crypto.DecryptEncPart(rep.EncPart, session, keyusage.AP_REQ_AUTHENTICATOR); err == nil {
			t.Fatal("AP-REP decrypts with usage 11")
		}
	}
	other := sub
	if _, err := ParseAPRep(mustAPRep(t, cases[0], session), other); err == nil {
		t.Fatal("ParseAPRep with the wrong key succeeded")
	}
	if _, err := ParseAPRep(mustAPRep(t, cases[0], session), fixedKey(t, 17)); err == nil {
		t.Fatal("ParseAPRep with an aes128 key succeeded")
	}
}

func mustAPRep(t testing.TB, p APRepPart, key types.EncryptionKey) []byte {
	t.Helper()
	b, err := BuildAPRep(p, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAPRepEncPartLayout checks the plaintext EncAPRepPart byte for byte.
func TestAPRepEncPartLayout(t *testing.T) {
	session := fixedKey(t, 17)
	p := APRepPart{CTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Cusec: 7, SeqNumber: 0x01020304, HasSeq: true}
	b := mustAPRep(t, p, session)
	var rep messages.APRep
	if err := rep.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if rep.PVNO != 5 || rep.MsgType != 15 || rep.EncPart.EType != 17 || rep.EncPart.KVNO != 0 {
		t.Fatalf("AP-REP fields %+v", rep)
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, session, 12)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "7b 22 30 20"+
		" a0 11 18 0f 3230323630313032303330343035 5a"+ // ctime 20260102030405Z
		" a1 03 02 01 07"+ // cusec 7
		" a3 06 02 04 01020304") // seq-number
	if !bytes.Equal(plain, want) {
		t.Fatalf("EncAPRepPart = %x\nwant            %x", plain, want)
	}
}

// sealEncPart seals a hand-made EncAPRepPart body (SEQUENCE contents).
func sealEncPart(t testing.TB, key types.EncryptionKey, seqContents []byte) []byte {
	t.Helper()
	enc := asn1tools.AddASNAppTag(derTLV(0x30, seqContents), 27)
	ed, err := crypto.GetEncryptedData(enc, key, 12, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := asn1.Marshal(messages.APRep{PVNO: 5, MsgType: 15, EncPart: ed})
	if err != nil {
		t.Fatal(err)
	}
	return asn1tools.AddASNAppTag(b, 15)
}

func TestParseAPRepNegativeSeq(t *testing.T) {
	key := fixedKey(t, 18)
	ctime := unhex(t, "a0 11 18 0f 3230323630313032303330343035 5a a1 03 02 01 00")
	// seq-number -5 as MIT's old encoders wrote values >= 2^31.
	b := sealEncPart(t, key, append(append([]byte{}, ctime...), unhex(t, "a3 03 02 01 fb")...))
	p, err := ParseAPRep(b, key)
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasSeq || p.SeqNumber != 1<<32-5 {
		t.Fatalf("seq %d (has %v), want %d", p.SeqNumber, p.HasSeq, int64(1<<32-5))
	}
	// A 40-bit seq-number is refused.
	b = sealEncPart(t, key, append(append([]byte{}, ctime...), unhex(t, "a3 07 02 05 0100000000")...))
	if _, err := ParseAPRep(b, key); err == nil {
		t.Fatal("40-bit seq-number accepted")
	}
	// An unknown [4] in place of seq-number is refused.
	b = sealEncPart(t, key, append(append([]byte{}, ctime...), unhex(t, "a4 03 02 01 01")...))
	if _, err := ParseAPRep(b, key); err == nil {
		t.Fatal("EncAPRepPart with [4] accepted")
	}
	// No seq-number: HasSeq false.
	b = sealEncPart(t, key, ctime)
	if p, err := ParseAPRep(b, key); err != nil || p.HasSeq {
		t.Fatalf("no seq: %+v %v", p, err)
	}
}

func TestParseAPRepKRBError(t *testing.T) {
	e := ErrorReply{Code: 34, Now: time.Now(), Realm: "R", SName: types.NewPrincipalName(3, "host/localhost"), EText: "replay"}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseAPRep(b, fixedKey(t, 18))
	var re *RemoteError
	if !errors.As(err, &re) || re.KRBError.ErrorCode != 34 {
		t.Fatalf("ParseAPRep(KRB-ERROR) = %v", err)
	}
	re2, err := ParseKRBError(b)
	if err != nil || re2.KRBError.EText != "replay" {
		t.Fatalf("ParseKRBError = %+v, %v", re2, err)
	}
	if _, err := ParseKRBError(mustAPRep(t, APRepPart{CTime: time.Now()}, fixedKey(t, 18))); err == nil {
		t.Fatal("ParseKRBError(AP-REP) succeeded")
	}
}

func TestParseAPRepRejects(t *testing.T) {
	key := fixedKey(t, 18)
	good := mustAPRep(t, APRepPart{CTime: time.Now(), Cusec: 5, SubKey: fixedKey(t, 18), SeqNumber: 9, HasSeq: true}, key)
	for i := 0; i < len(good); i++ {
		if _, err := ParseAPRep(good[:i], key); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	// A flipped bit either fails or (in DER framing gofork tolerates, e.g.
	// SET for SEQUENCE) decodes the very same part: never a different one.
	want, err := ParseAPRep(good, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(good); i++ {
		b := append([]byte{}, good...)
		b[i] ^= 0x01
		if p, err := ParseAPRep(b, key); err == nil && !reflect.DeepEqual(p, want) {
			t.Errorf("bit flip at %d decoded a different part: %+v", i, p)
		}
	}
	if _, err := BuildAPRep(APRepPart{CTime: time.Now(), Cusec: 1000000}, key); err == nil {
		t.Error("cusec 1000000 accepted")
	}
	if _, err := BuildAPRep(APRepPart{CTime: time.Now(), SeqNumber: 1 << 32, HasSeq: true}, key); err == nil {
		t.Error("seq 2^32 accepted")
	}
	if _, err := BuildAPRep(APRepPart{}, key); err == nil {
		t.Error("zero ctime accepted")
	}
}

func FuzzParseAPRep(f *testing.F) {
	key := types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	good, err := BuildAPRep(APRepPart{CTime: time.Unix(1e9, 0), Cusec: 1, SubKey: key, SeqNumber: 3, HasSeq: true}, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	e, _ := ErrorReply{Code: 41, Now: time.Unix(1e9, 0), Realm: "R", SName: types.NewPrincipalName(1, "x")}.Marshal()
	f.Add(e)
	f.Add([]byte{0x6f, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseAPRep(b, key)
		if err == nil && p.HasSeq && (p.SeqNumber < 0 || p.SeqNumber > 1<<32-1) {
			t.Fatalf("odd part %+v", p)
		}
		_, _ = ParseKRBError(b)
	})
}
