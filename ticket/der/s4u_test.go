package der

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

func sampleS4U() (PAForUser, PAS4UX509User) {
	user := types.PrincipalName{NameType: 1, NameString: []string{"alice"}}
	fu := PAForUser{UserName: user, UserRealm: "KRB.TEST",
		Cksum: types.Checksum{CksumType: -138, Checksum: bytes.Repeat([]byte{7}, 16)}, AuthPackage: "Kerberos"}
	xu := PAS4UX509User{UserID: S4UUserID{Nonce: 0xfffffff0, CName: user, CRealm: "KRB.TEST",
		Options: asn1.BitString{Bytes: []byte{0x20, 0, 0, 0}, BitLength: 32}},
		Cksum: types.Checksum{CksumType: 16, Checksum: bytes.Repeat([]byte{9}, 12)}}
	return fu, xu
}

func TestS4URoundTrip(t *testing.T) {
	fu, xu := sampleS4U()
	var fu2 PAForUser
	if err := DecodePAForUser(AppendPAForUser(nil, &fu), &fu2); err != nil || !reflect.DeepEqual(fu, fu2) {
		t.Fatalf("PA-FOR-USER: %v\n%+v\n%+v", err, fu, fu2)
	}
	enc := AppendPAS4UX509User(nil, &xu)
	var xu2 PAS4UX509User
	if err := DecodePAS4UX509User(enc, &xu2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(xu2.RawUserID, AppendS4UUserID(nil, &xu.UserID)) {
		t.Fatal("RawUserID is not the user-id as sent")
	}
	xu2.RawUserID = nil
	if !reflect.DeepEqual(xu, xu2) {
		t.Fatalf("PA-S4U-X509-USER:\n%+v\n%+v", xu, xu2)
	}
	// Refusals: truncation, trailing bytes, a nonce beyond 32 bits, unknown fields.
	for name, bad := range map[string][]byte{
		"truncated": enc[:len(enc)-1],
		"trailing":  append(append([]byte(nil), enc...), 0),
		"big nonce": AppendPAS4UX509User(nil, &PAS4UX509User{UserID: S4UUserID{Nonce: 1 << 33, CRealm: "R"}}),
	} {
		if err := DecodePAS4UX509User(bad, &xu2); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	fuEnc := AppendPAForUser(nil, &fu)
	if err := DecodePAForUser(fuEnc[:len(fuEnc)-2], &fu2); err == nil {
		t.Error("truncated PA-FOR-USER decoded")
	}
}

// FuzzPAForUser: never panics; what decodes encodes back to what decodes the
// same.
func FuzzPAForUser(f *testing.F) {
	fu, _ := sampleS4U()
	f.Add(AppendPAForUser(nil, &fu))
	f.Add([]byte{0x30, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p, q PAForUser
		if DecodePAForUser(b, &p) != nil {
			return
		}
		if err := DecodePAForUser(AppendPAForUser(nil, &p), &q); err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, p, q)
		}
	})
}

// FuzzPAS4UX509User: the same for PA-S4U-X509-USER.
func FuzzPAS4UX509User(f *testing.F) {
	_, xu := sampleS4U()
	f.Add(AppendPAS4UX509User(nil, &xu))
	xu.UserID.Options = asn1.BitString{}
	xu.UserID.CName = types.PrincipalName{}
	xu.UserID.SubjectCertificate = []byte{}
	f.Add(AppendPAS4UX509User(nil, &xu))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p, q PAS4UX509User
		if DecodePAS4UX509User(b, &p) != nil {
			return
		}
		if err := DecodePAS4UX509User(AppendPAS4UX509User(nil, &p), &q); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		p.RawUserID, q.RawUserID = nil, nil
		// A short options BIT STRING is padded to 32 bits on decode.
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip:\n%+v\n%+v", p, q)
		}
	})
}
