package kdc

import (
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// TestASEncPARep: a client that sends PA-REQ-ENC-PA-REP (MIT and Heimdal
// kinit, gokrb5 twice) gets in the reply's encrypted-pa-data the checksum of
// the reply key's enctype, usage 56, over its request as sent, beside an empty
// PA-FX-FAST, and enc-pa-rep on the reply and the ticket (RFC 6806 §11). A
// client that does not send it gets neither the flag nor encrypted-pa-data
// (protocol-notes trap 3).
func TestASEncPARep(t *testing.T) {
	r := newTestRealm(t)
	tgtKey := r.key("krbtgt/"+testRealm+"@"+testRealm, 18)
	for _, c := range []struct {
		name   string
		etype  int32
		ask    int // how many PA-REQ-ENC-PA-REP the request carries
		cksum  int32
		length int
	}{
		{"aes256 asked once", 18, 1, 16, 12},
		{"aes256 asked twice (gokrb5)", 18, 2, 16, 12},
		{"aes128", 17, 1, 15, 12},
		{"aes256-sha2", 20, 1, 20, 24},
		{"not asked", 18, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, key := r.preauthASReq("alice", c.etype, c.etype)
			for i := 0; i < c.ask; i++ {
				req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_REQ_ENC_PA_REP})
			}
			msg := marshalAS(t, req)
			rep, part := asRep(t, r.exchange(msg), key)
			tkt, err := ticket.OpenTicket(rep.Ticket, tgtKey)
			if err != nil {
				t.Fatal(err)
			}
			if c.ask == 0 {
				if hasFlag(part.Flags, flags.EncPARep) || hasFlag(tkt.Flags, flags.EncPARep) || part.EncPAData != nil {
					t.Fatalf("not asked: enc-pa-rep %v/%v, encrypted-pa-data %v", hasFlag(part.Flags, flags.EncPARep), hasFlag(tkt.Flags, flags.EncPARep), part.EncPAData)
				}
				return
			}
			if !hasFlag(part.Flags, flags.EncPARep) || !hasFlag(tkt.Flags, flags.EncPARep) {
				t.Fatalf("enc-pa-rep: reply %v, ticket %v", hasFlag(part.Flags, flags.EncPARep), hasFlag(tkt.Flags, flags.EncPARep))
			}
			if len(part.EncPAData) != 2 || part.EncPAData[1].PADataType != patype.PA_FX_FAST || len(part.EncPAData[1].PADataValue) != 0 {
				t.Fatalf("encrypted-pa-data %+v: want PA-REQ-ENC-PA-REP and an empty PA-FX-FAST", part.EncPAData)
			}
			pa := part.EncPAData[0]
			var ck types.Checksum
			if err := der.DecodeChecksum(pa.PADataValue, &ck); pa.PADataType != patype.PA_REQ_ENC_PA_REP || err != nil {
				t.Fatalf("first encrypted padata %d: %v", pa.PADataType, err)
			}
			if ck.CksumType != c.cksum || len(ck.Checksum) != c.length {
				t.Fatalf("checksum type %d of %d bytes, want %d of %d", ck.CksumType, len(ck.Checksum), c.cksum, c.length)
			}
			et, err := crypto.GetChksumEtype(ck.CksumType)
			if err != nil {
				t.Fatal(err)
			}
			if !et.VerifyChecksum(key.KeyValue, msg, ck.Checksum, keyusage.KEY_USAGE_AS_REQ) {
				t.Fatal("the checksum does not verify over the request as sent")
			}
			// A request changed on the way (here, one etype more) would not.
			req.ReqBody.EType = append(req.ReqBody.EType, 17)
			if et.VerifyChecksum(key.KeyValue, marshalAS(t, req), ck.Checksum, keyusage.KEY_USAGE_AS_REQ) {
				t.Fatal("the checksum verifies over another request")
			}
			// gokrb5's own check of the reply (RFC 6806 §11 in ASRep.Verify).
			if c.etype == 18 {
				gokrb5Accepts(t, part, msg, key)
			}
		})
	}
}

// gokrb5Accepts runs the RFC 6806 part of gokrb5's AS-REP check: with enc-pa-rep
// set it wants PA-FX-FAST and a checksum over its own encoding of the request.
func gokrb5Accepts(t *testing.T, part messages.EncKDCRepPart, sent []byte, key types.EncryptionKey) {
	t.Helper()
	var back messages.ASReq
	if err := back.Unmarshal(sent); err != nil {
		t.Fatal(err)
	}
	ab, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var ck types.PAReqEncPARep
	if err := ck.Unmarshal(part.EncPAData[0].PADataValue); err != nil {
		t.Fatalf("gokrb5 cannot read PA-REQ-ENC-PA-REP: %v", err)
	}
	et, err := crypto.GetChksumEtype(ck.ChksumType)
	if err != nil || !et.VerifyChecksum(key.KeyValue, ab, ck.Chksum, keyusage.KEY_USAGE_AS_REQ) {
		t.Fatalf("gokrb5's check of the checksum fails: %v", err)
	}
	if !part.EncPAData.Contains(patype.PA_FX_FAST) {
		t.Fatal("gokrb5 wants PA-FX-FAST beside the checksum")
	}
}
