package der

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/test/testdata"
	"github.com/jcmturner/gokrb5/v8/types"
)

// differential checks the properties every decoder must have on input in:
//   - ours never panics (a panic fails the test or fuzz run by itself);
//   - if ours accepts, gokrb5 accepts and every field is equal;
//   - if gokrb5 accepts and in is the canonical DER of what it read (gokrb5
//     encodes it back to in), ours accepts, unless in exceeds our bounds.
func differential(t *testing.T, r ref, in []byte) {
	t.Helper()
	ov, oerr := r.ours(in)
	tv, terr := r.theirs(in)
	if oerr == nil {
		if terr != nil {
			t.Fatalf("ours accepts %x, gokrb5 refuses: %v", in, terr)
		}
		if r.norm != nil {
			tv = r.norm(in, tv)
		}
		if !reflect.DeepEqual(ov, tv) {
			t.Fatalf("values differ for %x:\nours   %#v\ngokrb5 %#v", in, ov, tv)
		}
		return
	}
	if terr == nil && !bounded(oerr) && canonical(in, func() ([]byte, error) { return r.marshal(tv) }) {
		t.Fatalf("gokrb5 accepts canonical %x, ours refuses: %v", in, oerr)
	}
}

// values makes n random values per decoder, encoded by gokrb5.
func values(seed int64, n int) map[string][][]byte {
	g := newGen(seed)
	out := map[string][][]byte{}
	add := func(name string, b []byte, err error) {
		if err == nil {
			out[name] = append(out[name], b)
		}
	}
	for i := 0; i < n; i++ {
		body := g.kdcReqBody()
		mt := msgtype.KRB_AS_REQ
		if g.coin() {
			mt = msgtype.KRB_TGS_REQ
		}
		b, err := refMarshalKDCReq(KDCReq{PVNO: g.int(), MsgType: mt, PAData: g.paData(), Body: body})
		add("KDCReq", b, err)
		tkt := g.ticket()
		b, err = tkt.Marshal()
		add("Ticket", b, err)
		ap := messages.APReq{PVNO: g.int(), MsgType: msgtype.KRB_AP_REQ, APOptions: g.flags(), Ticket: tkt, EncryptedAuthenticator: g.encryptedData()}
		b, err = ap.Marshal()
		add("APReq", b, err)
		b, err = marshalApp(g.encTicketPart(), asnAppTag.EncTicketPart)
		add("EncTicketPart", b, err)
		a := g.authenticator()
		b, err = a.Marshal()
		add("Authenticator", b, err)
		b, err = asn1.Marshal(g.encryptedData())
		add("EncryptedData", b, err)
		b, err = asn1.Marshal(types.PAEncTSEnc{PATimestamp: g.time(), PAUSec: g.int()})
		add("PAEncTSEnc", b, err)
		b, err = asn1.Marshal(types.PADataSequence(g.paData()))
		add("PAData", b, err)
		b, err = asn1.Marshal(types.Checksum{CksumType: g.i32(), Checksum: g.bytes(30)})
		add("Checksum", b, err)
		b, err = asn1.Marshal(g.principalName())
		add("PrincipalName", b, err)
		b, err = asn1.Marshal(g.addresses())
		add("HostAddresses", b, err)
		b, err = asn1.Marshal(g.authData())
		add("AuthorizationData", b, err)
		b, err = refs["KerberosTime"].marshal(g.time())
		add("KerberosTime", b, err)
	}
	return out
}

// TestDecodersAgreeWithGokrb5 decodes random values encoded by gokrb5: ours
// must accept every one and read the same fields.
func TestDecodersAgreeWithGokrb5(t *testing.T) {
	for name, ins := range values(1, 400) {
		r := refs[name]
		t.Run(name, func(t *testing.T) {
			for _, in := range ins {
				if _, err := r.ours(in); err != nil && !bounded(err) {
					t.Fatalf("ours refuses gokrb5's %x: %v", in, err)
				}
				differential(t, r, in)
			}
		})
	}
}

// mitVectors are MIT's reference encodings (src/tests/asn.1/reference_encode.out,
// as gokrb5 ships them), per decoder.
var mitVectors = map[string][]string{
	"KDCReq": {testdata.MarshaledKRB5as_req, testdata.MarshaledKRB5as_reqOptionalsNULLexceptsecond_ticket,
		testdata.MarshaledKRB5as_reqOptionalsNULLexceptserver, testdata.MarshaledKRB5tgs_req,
		testdata.MarshaledKRB5tgs_reqOptionalsNULLexceptsecond_ticket, testdata.MarshaledKRB5tgs_reqOptionalsNULLexceptserver},
	"APReq":         {testdata.MarshaledKRB5ap_req},
	"Ticket":        {testdata.MarshaledKRB5ticket},
	"EncTicketPart": {testdata.MarshaledKRB5enc_tkt_part, testdata.MarshaledKRB5enc_tkt_partOptionalsNULL},
	"Authenticator": {testdata.MarshaledKRB5authenticator, testdata.MarshaledKRB5authenticatorOptionalsEmpty,
		testdata.MarshaledKRB5authenticatorOptionalsNULL},
	"EncryptedData":     {testdata.MarshaledKRB5enc_data, testdata.MarshaledKRB5enc_dataMSBSetkvno, testdata.MarshaledKRB5enc_dataKVNONegOne},
	"PAEncTSEnc":        {testdata.MarshaledKRB5pa_enc_ts, testdata.MarshaledKRB5pa_enc_tsNoUsec},
	"PAData":            {testdata.MarshaledKRB5padata_sequence, testdata.MarshaledKRB5padataSequenceEmpty},
	"AuthorizationData": {testdata.MarshaledKRB5authorization_data},
}

// TestMITReferenceEncodings decodes MIT's reference encodings: ours must accept
// each and agree with gokrb5.
func TestMITReferenceEncodings(t *testing.T) {
	for name, vs := range mitVectors {
		for i, v := range vs {
			in, err := hex.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := refs[name].ours(in); err != nil {
				t.Errorf("%s vector %d: %v", name, i, err)
				continue
			}
			differential(t, refs[name], in)
		}
	}
	// The KDC-REQ-BODY vectors through the KDC-REQ decoder's body path.
	for _, v := range []string{testdata.MarshaledKRB5kdc_req_body, testdata.MarshaledKRB5kdc_req_bodyOptionalsNULLexceptserver} {
		in, _ := hex.DecodeString(v)
		d := decoder{in: in}
		var b, want messages.KDCReqBody
		d.kdcReqBody(in, &b)
		if d.err != nil {
			t.Fatalf("KDC-REQ-BODY %x: %v", in, d.err)
		}
		if err := want.Unmarshal(in); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b.Till, want.Till) || b.Nonce != want.Nonce || !reflect.DeepEqual(b.SName, want.SName) || !reflect.DeepEqual(b.EType, want.EType) {
			t.Errorf("KDC-REQ-BODY differs:\nours   %+v\ngokrb5 %+v", b, want)
		}
	}
}

// TestEncodersMatchGokrb5 encodes random values with ours and gokrb5's Marshal:
// the bytes must be identical, and gokrb5 must read ours back.
func TestEncodersMatchGokrb5(t *testing.T) {
	g := newGen(2)
	same := func(t *testing.T, what string, ours, theirs []byte, oerr, terr error) {
		t.Helper()
		if terr != nil {
			if oerr == nil {
				t.Fatalf("%s: gokrb5 cannot encode (%v), ours did", what, terr)
			}
			return
		}
		if oerr != nil {
			t.Fatalf("%s: ours: %v", what, oerr)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("%s differs:\nours   %x\ngokrb5 %x", what, ours, theirs)
		}
	}
	for i := 0; i < 500; i++ {
		tkt := g.ticket()
		o, oerr := AppendTicket(nil, &tkt)
		th, terr := tkt.Marshal()
		same(t, "Ticket", o, th, oerr, terr)
		var back messages.Ticket
		if err := back.Unmarshal(o); err != nil || !reflect.DeepEqual(back.SName.NameString, tkt.SName.NameString) && len(tkt.SName.NameString) > 0 {
			t.Fatalf("gokrb5 reads back Ticket %x: %v", o, err)
		}

		etp := g.encTicketPart()
		o, oerr = AppendEncTicketPart([]byte("prefix"), &etp)
		th, terr = marshalApp(etp, asnAppTag.EncTicketPart)
		if oerr == nil {
			if !bytes.HasPrefix(o, []byte("prefix")) {
				t.Fatal("AppendEncTicketPart lost dst")
			}
			o = o[len("prefix"):]
		}
		same(t, "EncTicketPart", o, th, oerr, terr)

		rp := g.encKDCRepPart()
		for _, tag := range []int{asnAppTag.EncASRepPart, asnAppTag.EncTGSRepPart} {
			o, oerr = AppendEncKDCRepPart(nil, &rp, tag)
			th, terr = marshalApp(rp, tag)
			same(t, "EncKDCRepPart", o, th, oerr, terr)
			if oerr == nil {
				var back messages.EncKDCRepPart
				if err := back.Unmarshal(o); err != nil {
					t.Fatalf("gokrb5 reads back EncKDCRepPart %d: %v", tag, err)
				}
			}
		}

		f := messages.KDCRepFields{PVNO: g.int(), PAData: g.paData(), CRealm: g.str(), CName: g.principalName(),
			Ticket: g.ticket(), EncPart: g.encryptedData()}
		f.MsgType = msgtype.KRB_AS_REP
		o, oerr = AppendKDCRep(nil, &f)
		as := messages.ASRep{KDCRepFields: f}
		th, terr = as.Marshal()
		same(t, "AS-REP", o, th, oerr, terr)
		f.MsgType = msgtype.KRB_TGS_REP
		o, oerr = AppendKDCRep(nil, &f)
		tgs := messages.TGSRep{KDCRepFields: f}
		th, terr = tgs.Marshal()
		same(t, "TGS-REP", o, th, oerr, terr)

		ke := g.krbError()
		o, oerr = AppendKRBError(nil, &ke)
		th, terr = ke.Marshal()
		same(t, "KRB-ERROR", o, th, oerr, terr)

		pas := g.paData()
		th, terr = asn1.Marshal(types.PADataSequence(pas))
		same(t, "METHOD-DATA", AppendPAData(nil, pas), th, nil, terr)

		ei := g.etypeInfo2()
		th, terr = asn1.Marshal(ei)
		same(t, "ETYPE-INFO2", AppendETypeInfo2(nil, ei), th, nil, terr)

		ed := g.encryptedData()
		th, terr = asn1.Marshal(ed)
		same(t, "EncryptedData", AppendEncryptedData(nil, &ed), th, nil, terr)

		pn := g.principalName()
		th, terr = asn1.Marshal(pn)
		same(t, "PrincipalName", AppendPrincipalName(nil, &pn), th, nil, terr)

		ck := types.Checksum{CksumType: g.i32(), Checksum: g.bytes(48)}
		th, terr = asn1.Marshal(ck)
		same(t, "Checksum", AppendChecksum(nil, &ck), th, nil, terr)
	}
}

// TestEncodeNeverLeaksDecryptedPart: gokrb5's Ticket.Marshal writes a
// decrypted EncTicketPart into the ticket (protocol-notes trap 5); ours never.
func TestEncodeNeverLeaksDecryptedPart(t *testing.T) {
	g := newGen(3)
	tkt := g.ticket()
	clean, _ := AppendTicket(nil, &tkt)
	tkt.DecryptedEncPart = g.encTicketPart()
	tkt.DecryptedEncPart.Key.KeyValue = []byte("0123456789abcdef")
	leaky, _ := AppendTicket(nil, &tkt)
	if !bytes.Equal(clean, leaky) {
		t.Fatalf("AppendTicket encoded DecryptedEncPart")
	}
	rep := messages.KDCRepFields{MsgType: msgtype.KRB_AS_REP, PVNO: 5, Ticket: tkt}
	b, _ := AppendKDCRep(nil, &rep)
	if bytes.Contains(b, []byte("0123456789abcdef")) {
		t.Fatalf("AppendKDCRep leaked the decrypted part's key")
	}
}

func TestEncodeTimeOutOfRange(t *testing.T) {
	p := messages.EncTicketPart{AuthTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := AppendEncTicketPart(nil, &p); err == nil {
		t.Fatal("year 10000 encoded")
	}
	// Non-UTC times are written in UTC, never with a zone offset.
	p.AuthTime = time.Date(2024, 5, 6, 9, 8, 7, 0, time.FixedZone("X", 2*3600))
	b, err := AppendEncTicketPart(nil, &p)
	if err != nil || !bytes.Contains(b, []byte("20240506070807Z")) {
		t.Fatalf("zoned time: %v %x", err, b)
	}
}

func TestParseKerberosTimeMatchesTimeParse(t *testing.T) {
	for _, s := range []string{
		"20240229120000Z", "20230229120000Z", "19700101000000Z", "99991231235959Z", "00000101000000Z",
		"20241301000000Z", "20240001000000Z", "20240100000000Z", "20240431000000Z", "20240101240000Z",
		"20240101006000Z", "20240101000060Z", "2024010100000Z", "20240101000000z", "2024010100000+Z",
		"21000229000000Z", "20000229000000Z",
	} {
		want, err := time.Parse("20060102150405Z0700", s)
		ok := err == nil && want.Format("20060102150405Z0700") == s
		got, gotOK := ParseKerberosTime([]byte(s))
		if gotOK != ok || ok && !got.Equal(want) {
			t.Errorf("%s: ours %v %v, time.Parse %v %v", s, got, gotOK, want, ok)
		}
	}
}

// TestDecoderBounds: lists beyond MaxElements and hostile nesting are refused
// with an error, not a panic or a large allocation.
func TestDecoderBounds(t *testing.T) {
	// A PrincipalName with 65 components.
	pn := types.PrincipalName{NameType: 1}
	for i := 0; i <= MaxElements; i++ {
		pn.NameString = append(pn.NameString, "x")
	}
	b, _ := asn1.Marshal(pn)
	if err := DecodePrincipalName(b, &types.PrincipalName{}); !bounded(err) {
		t.Fatalf("65 components: %v", err)
	}
	pn.NameString = pn.NameString[:MaxElements]
	b, _ = asn1.Marshal(pn)
	if err := DecodePrincipalName(b, &types.PrincipalName{}); err != nil {
		t.Fatalf("64 components: %v", err)
	}
	for _, in := range [][]byte{nil, {0x30}, {0x30, 0x80}, {0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, {0x6a, 0x81, 0x05}, {0x7f, 0x01, 0x00}} {
		var r KDCReq
		if err := DecodeKDCReq(in, &r); err == nil {
			t.Errorf("%x accepted", in)
		}
	}
}

// TestShortFlagsArePaddedAtTheEnd: a KerberosFlags of 8 bits keeps bit 1
// (forwardable) as bit 1 and reads as 32 bits.
func TestShortFlagsArePaddedAtTheEnd(t *testing.T) {
	body := messages.KDCReqBody{KDCOptions: asn1.BitString{Bytes: []byte{0x40}, BitLength: 8}, Realm: "R",
		Till: time.Unix(0, 0).UTC(), EType: []int32{18}}
	in, err := refMarshalKDCReq(KDCReq{PVNO: 5, MsgType: msgtype.KRB_AS_REQ, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	var r KDCReq
	if err := DecodeKDCReq(in, &r); err != nil {
		t.Fatal(err)
	}
	if !types.IsFlagSet(&r.Body.KDCOptions, 1) || types.IsFlagSet(&r.Body.KDCOptions, 25) || len(r.Body.KDCOptions.Bytes) != 4 {
		t.Fatalf("options %x", r.Body.KDCOptions.Bytes)
	}
	differential(t, refs["KDCReq"], in)
}
