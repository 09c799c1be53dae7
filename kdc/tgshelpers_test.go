package kdc

import (
	"bytes"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// tgsReqOuter is KDC-REQ (RFC 4120 §5.4.1) with the req-body kept as the exact
// bytes the authenticator checksum was computed over (as ticket.kdcReqOuter
// decodes it).
type tgsReqOuter struct {
	PVNO    int                  `asn1:"explicit,tag:1"`
	MsgType int                  `asn1:"explicit,tag:2"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
	ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
}

// tgsBuilder makes a TGS-REQ from a TGT. Each field is a knob; the zero value of
// a knob means "what a well-behaved client sends".
type tgsBuilder struct {
	t testing.TB
	r *testRealmEnv

	TGT     messages.Ticket     // presented ticket (from an AS-REP or TGS-REP)
	Session types.EncryptionKey // its session key
	CRealm  string              // authenticator crealm/cname (default: the TGT's client)
	CName   types.PrincipalName

	Body messages.KDCReqBody // KDC-REQ-BODY, encoded once

	CTime     time.Time            // authenticator ctime; zero means the KDC's clock now
	SubKey    types.EncryptionKey  // authenticator subkey; zero means none (Java)
	APOptions asn1.BitString       // AP-REQ ap-options; zero means none
	AuthKey   *types.EncryptionKey // key the authenticator is sealed in; nil means Session
	AuthUsage uint32               // usage for the authenticator; 0 means 7

	NoChecksum bool                                // omit the authenticator checksum
	Checksum   *types.Checksum                     // use this checksum as is
	EditAuth   func(*types.Authenticator)          // last edit of the authenticator before sealing
	MutateBody func(*messages.KDCReqBody)          // applied after the checksum is computed
	EditAPReq  func(*messages.APReq)               // last edit of the AP-REQ before encoding
	PAData     func([]types.PAData) []types.PAData // rewrites the padata list ([PA-TGS-REQ])
}

// newTGS starts a TGS-REQ for sname (NT-SRV-HST) with alice's TGT.
func newTGS(r *testRealmEnv, tgt messages.ASRep, part messages.EncKDCRepPart) *tgsBuilder {
	return &tgsBuilder{
		t: r.t, r: r,
		TGT: tgt.Ticket, Session: part.Key,
		CRealm: tgt.CRealm, CName: tgt.CName,
		Body: messages.KDCReqBody{
			KDCOptions: ticket.Flags(),
			Realm:      testRealm,
			SName:      types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/localhost"),
			Till:       r.clock.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
			Nonce:      424242,
			EType:      []int32{18, 17},
		},
	}
}

// bodyBytes encodes a request body.
func (b *tgsBuilder) bodyBytes(body messages.KDCReqBody) []byte {
	b.t.Helper()
	out, err := body.Marshal()
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// checksum is the keyed checksum over body with the session key, usage 6.
func (b *tgsBuilder) checksum(body []byte) types.Checksum {
	b.t.Helper()
	et, err := crypto.GetEtype(b.Session.KeyType)
	if err != nil {
		b.t.Fatal(err)
	}
	sum, err := et.GetChecksumHash(b.Session.KeyValue, body, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		b.t.Fatal(err)
	}
	return types.Checksum{CksumType: et.GetHashID(), Checksum: sum}
}

// authenticator builds the authenticator for body.
func (b *tgsBuilder) authenticator(body []byte) types.Authenticator {
	now := b.CTime
	if now.IsZero() {
		now = b.r.clock.Now()
	}
	now = now.UTC()
	a := types.Authenticator{
		AVNO:   5,
		CRealm: b.CRealm,
		CName:  b.CName,
		Cusec:  now.Nanosecond() / 1000,
		CTime:  now.Truncate(time.Second),
		SubKey: b.SubKey,
	}
	switch {
	case b.Checksum != nil:
		a.Cksum = *b.Checksum
	case !b.NoChecksum:
		a.Cksum = b.checksum(body)
	}
	if b.EditAuth != nil {
		b.EditAuth(&a)
	}
	return a
}

// apReq encodes the PA-TGS-REQ value for body.
func (b *tgsBuilder) apReq(body []byte) []byte {
	b.t.Helper()
	a := b.authenticator(body)
	plain, err := a.Marshal() // adds APPLICATION 2
	if err != nil {
		b.t.Fatal(err)
	}
	key := b.Session
	if b.AuthKey != nil {
		key = *b.AuthKey
	}
	usage := b.AuthUsage
	if usage == 0 {
		usage = keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR
	}
	ed, err := crypto.GetEncryptedData(plain, key, usage, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	opts := b.APOptions
	if len(opts.Bytes) == 0 {
		opts = types.NewKrbFlags()
	}
	ap := messages.APReq{
		PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: opts,
		// A fresh Ticket: never one carrying a decrypted part (protocol notes trap 5).
		Ticket:                 messages.Ticket{TktVNO: b.TGT.TktVNO, Realm: b.TGT.Realm, SName: b.TGT.SName, EncPart: b.TGT.EncPart},
		EncryptedAuthenticator: ed,
	}
	if b.EditAPReq != nil {
		b.EditAPReq(&ap)
	}
	out, err := ap.Marshal()
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// marshal builds the whole TGS-REQ.
func (b *tgsBuilder) marshal() []byte {
	b.t.Helper()
	body := b.bodyBytes(b.Body)
	pa := []types.PAData{{PADataType: patype.PA_TGS_REQ, PADataValue: b.apReq(body)}}
	if b.PAData != nil {
		pa = b.PAData(pa)
	}
	if b.MutateBody != nil {
		// The checksum was computed over the original bytes.
		mutated := b.Body
		b.MutateBody(&mutated)
		nb := b.bodyBytes(mutated)
		if bytes.Equal(nb, body) {
			b.t.Fatal("MutateBody did not change the encoded body")
		}
		body = nb
	}
	return encodeTGSReq(b.t, pa, body)
}

// encodeTGSReq wraps padata and the exact body bytes as a TGS-REQ (APPLICATION 12).
func encodeTGSReq(t testing.TB, pa []types.PAData, body []byte) []byte {
	t.Helper()
	outer := tgsReqOuter{
		PVNO: 5, MsgType: msgtype.KRB_TGS_REQ, PAData: pa,
		ReqBody: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: body},
	}
	out, err := asn1.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	return asn1tools.AddASNAppTag(out, asnAppTag.TGSREQ)
}

// send builds the request and returns the KDC's reply.
func (b *tgsBuilder) send() []byte {
	b.t.Helper()
	return b.r.exchange(b.marshal())
}

// tgsRep decodes a TGS-REP and opens its enc-part with key and usage.
func tgsRep(t testing.TB, reply []byte, key types.EncryptionKey, usage uint32) (messages.TGSRep, messages.EncKDCRepPart) {
	t.Helper()
	var rep messages.TGSRep
	if err := rep.Unmarshal(reply); err != nil {
		var e messages.KRBError
		if e.Unmarshal(reply) == nil {
			t.Fatalf("got KRB-ERROR %d %s", e.ErrorCode, e.EText)
		}
		t.Fatalf("not a TGS-REP: %v", err)
	}
	part, err := ticket.DecryptReplyPart(rep.EncPart, key, usage)
	if err != nil {
		t.Fatalf("reply part does not open with etype %d usage %d: %v", key.KeyType, usage, err)
	}
	return rep, part
}

// asASRep presents a TGS-REP as an AS-REP, so a renewed or validated TGT can be
// fed back to newTGS.
func asASRep(rep messages.TGSRep) messages.ASRep {
	return messages.ASRep(rep)
}

// openTicket opens a ticket with the current key of its server for the
// ticket's enctype and checks the kvno on the wire is that key's.
func (r *testRealmEnv) openTicket(t testing.TB, tkt messages.Ticket, server string) messages.EncTicketPart {
	t.Helper()
	rec, err := r.store.Get(t.Context(), principal.MustParse(server))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := uint32(tkt.EncPart.KVNO), rec.KVNO(); got != want {
		t.Fatalf("ticket for %s has kvno %d, the key's is %d", server, got, want)
	}
	etp, err := ticket.OpenTicket(tkt, r.key(server, tkt.EncPart.EType))
	if err != nil {
		t.Fatalf("ticket does not open with the %s key: %v", server, err)
	}
	return etp
}

// randomKey is a fresh key of etype e.
func randomKey(t testing.TB, e int32) types.EncryptionKey {
	t.Helper()
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

func hasFlag(f asn1.BitString, bit int) bool { return types.IsFlagSet(&f, bit) }
