package ticket

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
)

// Reflection-based encodings of the SPNEGO types with gofork's asn1, as an
// independent reference for the hand-built DER (gokrb5's spnego package has
// the same shape but needs dependencies this module does not carry).
type refNegTokenInit struct {
	MechTypes   []asn1.ObjectIdentifier `asn1:"explicit,tag:0"`
	ReqFlags    asn1.BitString          `asn1:"explicit,optional,tag:1"`
	MechToken   []byte                  `asn1:"explicit,optional,omitempty,tag:2"`
	MechListMIC []byte                  `asn1:"explicit,optional,omitempty,tag:3"`
}

type refNegTokenResp struct {
	NegState      asn1.Enumerated       `asn1:"explicit,tag:0"`
	SupportedMech asn1.ObjectIdentifier `asn1:"explicit,optional,tag:1"`
	ResponseToken []byte                `asn1:"explicit,optional,omitempty,tag:2"`
	MechListMIC   []byte                `asn1:"explicit,optional,omitempty,tag:3"`
}

// refChoice wraps a reference encoding in NegotiationToken's [n] choice.
func refChoice(t testing.TB, n int, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err = asn1.Marshal(asn1.RawValue{Class: 2, Tag: n, IsCompound: true, Bytes: b})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNegTokenRespVector(t *testing.T) {
	// What Apache mod_auth_gssapi answered curl (protocol-notes §10):
	// a1 { 30 { a0 {0a 01 00}, a1 {krb5 OID}, a2 {04 <token>} } }.
	tok := []byte{0x60, 0x01, 0x02}
	got, err := MarshalNegTokenResp(NegTokenResp{NegState: NegStateAcceptCompleted, SupportedMech: OIDKRB5, ResponseToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "a1 1b 30 19 a0 03 0a 01 00 a1 0b 06 09 2a864886f712010202 a2 05 04 03 600102")
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalNegTokenResp = %x\nwant                  %x", got, want)
	}
	_, resp, err := ParseNegToken(want)
	if err != nil {
		t.Fatal(err)
	}
	if resp.NegState != 0 || !resp.SupportedMech.Equal(OIDKRB5) || !bytes.Equal(resp.ResponseToken, tok) || resp.MechListMIC != nil {
		t.Fatalf("parsed %+v", resp)
	}
	// negState alone (a reject), and absent.
	got, _ = MarshalNegTokenResp(NegTokenResp{NegState: NegStateReject})
	if want := unhex(t, "a1 07 30 05 a0 03 0a 01 02"); !bytes.Equal(got, want) {
		t.Fatalf("reject = %x, want %x", got, want)
	}
	got, _ = MarshalNegTokenResp(NegTokenResp{NegState: NegStateAbsent, MechListMIC: []byte{9}})
	if want := unhex(t, "a1 07 30 05 a3 03 04 01 09"); !bytes.Equal(got, want) {
		t.Fatalf("MIC only = %x, want %x", got, want)
	}
	_, resp, err = ParseNegToken(got)
	if err != nil || resp.NegState != NegStateAbsent || !bytes.Equal(resp.MechListMIC, []byte{9}) {
		t.Fatalf("parsed %+v %v", resp, err)
	}
	if _, err := MarshalNegTokenResp(NegTokenResp{NegState: 4}); err == nil {
		t.Fatal("negState 4 accepted")
	}
}

func TestNegTokenInitVector(t *testing.T) {
	// curl's token (protocol-notes §10): mechTypes = [krb5] and a mechToken.
	mt := FrameKRB5Token(TokIDAPReq, []byte{0x6e, 0x00})
	got, err := MarshalNegTokenInit(NegTokenInit{MechTypes: []asn1.ObjectIdentifier{OIDKRB5}, MechToken: mt})
	if err != nil {
		t.Fatal(err)
	}
	want := derTLV(0x60, oidSPNEGODER, derTLV(0xa0, derTLV(0x30,
		derTLV(0xa0, derTLV(0x30, oidKRB5DER)),
		derTLV(0xa2, derTLV(0x04, mt)))))
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalNegTokenInit = %x\nwant                  %x", got, want)
	}
	// 0x60 len, SPNEGO OID, [0] { SEQUENCE { [0] { SEQUENCE OF { krb5 } } ...
	if !bytes.Equal(got[:18], unhex(t, "60 30 06062b0601050502 a0 26 30 24 a0 0d 30 0b")) {
		t.Fatalf("head %x", got[:18])
	}
	init, resp, err := ParseNegToken(got)
	if err != nil || resp != nil {
		t.Fatal(err)
	}
	if len(init.MechTypes) != 1 || !init.MechTypes[0].Equal(OIDKRB5) || !bytes.Equal(init.MechToken, mt) || init.ReqFlags.BitLength != 0 {
		t.Fatalf("parsed %+v", init)
	}
}

func TestNegTokenRoundTrip(t *testing.T) {
	flags := asn1.BitString{Bytes: []byte{0x60}, BitLength: 3}
	inits := []NegTokenInit{
		{MechTypes: []asn1.ObjectIdentifier{OIDKRB5, OIDKRB5Legacy, {1, 3, 6, 1, 5, 2, 5}}, ReqFlags: flags, MechToken: bytes.Repeat([]byte{7}, 400), MechListMIC: []byte{1, 2}},
		{MechTypes: []asn1.ObjectIdentifier{OIDKRB5Legacy}},
	}
	for _, in := range inits {
		b, err := MarshalNegTokenInit(in)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ParseNegToken(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, in) {
			t.Fatalf("round trip %+v -> %+v", in, *got)
		}
		// The reflection-based reference decodes the unframed NegTokenInit.
		_, inner, err := ParseGSSToken(b)
		if err != nil {
			t.Fatal(err)
		}
		var ref refNegTokenInit
		if _, err := asn1.UnmarshalWithParams(inner, &ref, "explicit,tag:0"); err != nil {
			t.Fatalf("reference decoder: %v", err)
		}
		if len(ref.MechTypes) != len(in.MechTypes) || !bytes.Equal(ref.MechToken, in.MechToken) {
			t.Fatalf("reference sees %+v", ref)
		}
	}
	resps := []NegTokenResp{
		{NegState: NegStateAcceptIncomplete, SupportedMech: OIDKRB5},
		{NegState: NegStateRequestMIC, SupportedMech: OIDKRB5Legacy, ResponseToken: []byte{1}, MechListMIC: []byte{2}},
		{NegState: NegStateAbsent, ResponseToken: bytes.Repeat([]byte{3}, 1000)},
	}
	for _, in := range resps {
		b, err := MarshalNegTokenResp(in)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := ParseNegToken(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, in) {
			t.Fatalf("round trip %+v -> %+v", in, *got)
		}
	}
}

// TestParseNegTokenReference parses tokens encoded by the reflection-based
// reference (bare [0]/[1] choices, as gokrb5's spnego package writes them).
func TestParseNegTokenReference(t *testing.T) {
	b := refChoice(t, 0, refNegTokenInit{MechTypes: []asn1.ObjectIdentifier{OIDKRB5}, MechToken: []byte{0x60, 0x00}})
	init, _, err := ParseNegToken(b)
	if err != nil || !init.MechTypes[0].Equal(OIDKRB5) || !bytes.Equal(init.MechToken, []byte{0x60, 0x00}) {
		t.Fatalf("%+v %v", init, err)
	}
	b = refChoice(t, 1, refNegTokenResp{NegState: 0, SupportedMech: OIDKRB5, ResponseToken: []byte{5}})
	_, resp, err := ParseNegToken(b)
	if err != nil || resp.NegState != 0 || !bytes.Equal(resp.ResponseToken, []byte{5}) {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestParseNegTokenInit2(t *testing.T) {
	// Microsoft NegTokenInit2: negHints at [3] (a SEQUENCE), mechListMIC at [4].
	body := derTLV(0x30,
		derTLV(0xa0, derTLV(0x30, oidKRB5DER)),
		derTLV(0xa3, derTLV(0x30, derTLV(0xa0, []byte{0x1b, 0x01, 'x'}))),
		derTLV(0xa4, derTLV(0x04, []byte{0xee})))
	tok := derTLV(0x60, oidSPNEGODER, derTLV(0xa0, body))
	init, _, err := ParseNegToken(tok)
	if err != nil || !bytes.Equal(init.MechListMIC, []byte{0xee}) {
		t.Fatalf("%+v %v", init, err)
	}
}

func TestParseNegTokenRejects(t *testing.T) {
	good, _ := MarshalNegTokenInit(NegTokenInit{MechTypes: []asn1.ObjectIdentifier{OIDKRB5}, MechToken: []byte{1, 2, 3}})
	goodResp, _ := MarshalNegTokenResp(NegTokenResp{NegState: 0, SupportedMech: OIDKRB5, ResponseToken: []byte{1}})
	krb5 := FrameKRB5Token(TokIDAPReq, []byte{0x6e, 0x00})
	cases := map[string][]byte{
		"empty":             nil,
		"krb5 token":        krb5,
		"framed resp":       derTLV(0x60, oidSPNEGODER, goodResp),
		"a2 choice":         {0xa2, 0x02, 0x30, 0x00},
		"not a sequence":    {0xa1, 0x02, 0x31, 0x00},
		"trailing":          append(append([]byte{}, goodResp...), 0),
		"init no mechTypes": derTLV(0xa0, derTLV(0x30, derTLV(0xa2, derTLV(0x04, nil)))),
		"out of order":      derTLV(0xa1, derTLV(0x30, derTLV(0xa1, oidKRB5DER), derTLV(0xa0, []byte{0x0a, 0x01, 0x00}))),
		"negState 4":        derTLV(0xa1, derTLV(0x30, derTLV(0xa0, []byte{0x0a, 0x01, 0x04}))),
		"negState INTEGER":  derTLV(0xa1, derTLV(0x30, derTLV(0xa0, []byte{0x02, 0x01, 0x00}))),
		"token not octets":  derTLV(0xa1, derTLV(0x30, derTLV(0xa2, []byte{0x03, 0x01, 0x00}))),
		"mech not OID":      derTLV(0xa1, derTLV(0x30, derTLV(0xa1, []byte{0x04, 0x01, 0x00}))),
		"unknown field":     derTLV(0xa1, derTLV(0x30, derTLV(0xa5, []byte{0x04, 0x00}))),
		"mechTypes junk":    derTLV(0xa0, derTLV(0x30, derTLV(0xa0, derTLV(0x30, []byte{0x04, 0x00})))),
	}
	for name, b := range cases {
		if i, r, err := ParseNegToken(b); err == nil {
			t.Errorf("%s: accepted as %+v %+v", name, i, r)
		} else if !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v does not wrap ErrDecode", name, err)
		}
	}
	for _, tok := range [][]byte{good, goodResp} {
		for i := 0; i < len(tok); i++ {
			if _, _, err := ParseNegToken(tok[:i]); err == nil {
				t.Errorf("%x truncated to %d: accepted", tok, i)
			}
		}
	}
}

func FuzzParseNegToken(f *testing.F) {
	init, _ := MarshalNegTokenInit(NegTokenInit{MechTypes: []asn1.ObjectIdentifier{OIDKRB5, OIDKRB5Legacy},
		ReqFlags: asn1.BitString{Bytes: []byte{0x80}, BitLength: 1}, MechToken: FrameKRB5Token(TokIDAPReq, []byte{1}), MechListMIC: []byte{1}})
	resp, _ := MarshalNegTokenResp(NegTokenResp{NegState: 0, SupportedMech: OIDKRB5, ResponseToken: []byte{1}, MechListMIC: []byte{2}})
	f.Add(init)
	f.Add(resp)
	f.Add([]byte{0xa0, 0x02, 0x30, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		i, r, err := ParseNegToken(b)
		if err != nil {
			if i != nil || r != nil {
				t.Fatal("error with a result")
			}
			return
		}
		if (i == nil) == (r == nil) {
			t.Fatalf("want exactly one result, got %v %v", i, r)
		}
		// What parses re-encodes and parses to the same value.
		if r != nil {
			b2, err := MarshalNegTokenResp(*r)
			if err != nil {
				t.Fatal(err)
			}
			_, r2, err := ParseNegToken(b2)
			if err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("resp %+v re-parsed as %+v (%v)", r, r2, err)
			}
		}
		if i != nil {
			b2, err := MarshalNegTokenInit(*i)
			if err != nil {
				return // e.g. an OID gofork parses but refuses to encode
			}
			i2, _, err := ParseNegToken(b2)
			if err != nil || len(i2.MechTypes) != len(i.MechTypes) || !bytes.Equal(i2.MechToken, i.MechToken) {
				t.Fatalf("init %+v re-parsed as %+v (%v)", i, i2, err)
			}
		}
	})
}
