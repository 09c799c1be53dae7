package ticket

import (
	"bytes"
	"testing"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func testASReq(t testing.TB) []byte {
	t.Helper()
	c := config.New()
	c.LibDefaults.DefaultTktEnctypeIDs = []int32{18, 17}
	req, err := messages.NewASReqForTGT("KRB.TEST", c, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	req.PAData = append(req.PAData, types.PAData{PADataType: 149}, types.PAData{PADataType: 149}, types.PAData{PADataType: 150, PADataValue: []byte{1}})
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseKDCRequestKeepsRawBody(t *testing.T) {
	b := testASReq(t)
	req, err := ParseKDCRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if req.MsgType != 10 || req.PVNO != 5 || req.Body.Realm != "KRB.TEST" || req.Body.CName.NameString[0] != "alice" {
		t.Fatalf("decoded %+v", req)
	}
	body, err := req.Body.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, req.RawBody) {
		t.Fatalf("raw body differs from the body's encoding:\n% x\n% x", req.RawBody, body)
	}
	if !bytes.Contains(b, req.RawBody) {
		t.Fatal("raw body is not a slice of the request")
	}
	if v, ok := req.PA(150); !ok || !bytes.Equal(v, []byte{1}) {
		t.Fatalf("PA(150) = %v %v", v, ok)
	}
	if got := req.PATypes(); len(got) != 3 {
		t.Fatalf("PATypes = %v", got)
	}
}

func TestParseKDCRequestRejects(t *testing.T) {
	b := testASReq(t)
	for i := 0; i < len(b); i++ {
		if _, err := ParseKDCRequest(b[:i]); err == nil {
			t.Fatalf("truncation at %d accepted", i)
		}
	}
	for _, bad := range [][]byte{nil, {0x6a}, {0x30, 0}, {0x7e, 0}, append(append([]byte{}, b...), 0)} {
		if _, err := ParseKDCRequest(bad); err == nil {
			t.Fatalf("accepted % x", bad)
		}
	}
}

func FuzzParseKDCRequest(f *testing.F) {
	f.Add(testASReq(f))
	f.Add([]byte{0x6c, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseKDCRequest(b)
		if err == nil && (req.MsgType != 10 && req.MsgType != 12) {
			t.Fatalf("accepted message type %d", req.MsgType)
		}
	})
}
