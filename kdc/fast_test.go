package kdc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// fastClient builds armored AS-REQs the way MIT kinit -T does (RFC 6113
// §5.4): AP-REQ armor with a TGT, armor key by KRB-FX-CF2, req-checksum over
// the outer body, the real request inside. Fields edit one request.
type fastClient struct {
	t        *testing.T
	r        *testRealmEnv
	armorTkt messages.Ticket
	session  types.EncryptionKey
	subkey   types.EncryptionKey
	armorKey types.EncryptionKey
	armorFor string // the armor TGT's client; "" means alice

	noArmor     bool
	noSubkey    bool
	armorType   int32
	encKey      *types.EncryptionKey // seal the inner request in this key instead
	badChecksum bool                 // checksum over other bytes
	options     asn1.BitString
}

// newFastClient logs alice in (plain) for the armor TGT.
func newFastClient(t *testing.T, r *testRealmEnv) *fastClient {
	tgt, part := r.login(nil)
	c := &fastClient{t: t, r: r, armorTkt: tgt.Ticket, session: part.Key, subkey: randomKey(t, 18), armorType: 1, options: ticket.Flags()}
	var err error
	if c.armorKey, err = ticket.CF2(c.subkey, c.session, "subkeyarmor", "ticketarmor"); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *fastClient) armorAPReq() []byte {
	t := c.t
	now := c.r.clock.Now().UTC()
	who := c.armorFor
	if who == "" {
		who = "alice"
	}
	a := types.Authenticator{AVNO: 5, CRealm: testRealm, CName: types.NewPrincipalName(1, who),
		CTime: now.Truncate(time.Second), Cusec: now.Nanosecond() / 1000}
	if !c.noSubkey {
		a.SubKey = c.subkey
	}
	plain, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ed, err := crypto.GetEncryptedData(plain, c.session, keyusage.AP_REQ_AUTHENTICATOR, 0)
	if err != nil {
		t.Fatal(err)
	}
	tk := c.armorTkt
	ap := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(),
		Ticket: messages.Ticket{TktVNO: tk.TktVNO, Realm: tk.Realm, SName: tk.SName, EncPart: tk.EncPart}, EncryptedAuthenticator: ed}
	b, err := ap.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request wraps req (its body and padata go inside) in PA-FX-FAST.
func (c *fastClient) request(req messages.ASReq) []byte {
	t := c.t
	body, err := req.ReqBody.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	inner := der.AppendFastReq(nil, c.options, req.PAData, body)
	key := c.armorKey
	if c.encKey != nil {
		key = *c.encKey
	}
	ed, err := crypto.GetEncryptedData(inner, key, usageFastEnc, 0)
	if err != nil {
		t.Fatal(err)
	}
	et, _ := crypto.GetEtype(c.armorKey.KeyType)
	summed := body
	if c.badChecksum {
		summed = append([]byte{0}, body...)
	}
	sum, err := et.GetChecksumHash(c.armorKey.KeyValue, summed, usageFastReqChecksum)
	if err != nil {
		t.Fatal(err)
	}
	ar := der.FastArmoredReq{HasArmor: !c.noArmor, ArmorType: c.armorType, ArmorValue: c.armorAPReq(),
		ReqChecksum: types.Checksum{CksumType: et.GetHashID(), Checksum: sum}, EncFastReq: ed}
	outer := req
	outer.PAData = types.PADataSequence{{PADataType: paFXFAST, PADataValue: der.AppendFastArmoredReq(nil, &ar)}}
	return marshalAS(t, outer)
}

// response opens the KrbFastResponse in padata.
func (c *fastClient) response(pas types.PADataSequence) der.FastResponse {
	t := c.t
	t.Helper()
	for _, pa := range pas {
		if pa.PADataType != paFXFAST {
			continue
		}
		var ed types.EncryptedData
		if err := der.DecodeFastArmoredRep(pa.PADataValue, &ed); err != nil {
			t.Fatal(err)
		}
		plain, err := crypto.DecryptEncPart(ed, c.armorKey, usageFastRep)
		if err != nil {
			t.Fatal(err)
		}
		var r der.FastResponse
		if err := der.DecodeFastResponse(plain, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Fatalf("no PA-FX-FAST in %v", pas)
	return der.FastResponse{}
}

// fastErr asserts an armored KRB-ERROR: the outer code is code, its e-data
// only PA-FX-FAST, and inside is PA-FX-ERROR with the same code. It returns
// the inner padata.
func (c *fastClient) fastErr(reply []byte, code int32) (messages.KRBError, types.PADataSequence) {
	t := c.t
	t.Helper()
	e := expectError(t, reply, code)
	var md types.PADataSequence
	if err := md.Unmarshal(e.EData); err != nil || len(md) != 1 || md[0].PADataType != paFXFAST {
		t.Fatalf("outer e-data %v (%v), want only PA-FX-FAST", md, err)
	}
	r := c.response(md)
	for _, pa := range r.PAData {
		if pa.PADataType == paFXError {
			var in messages.KRBError
			if err := in.Unmarshal(pa.PADataValue); err != nil {
				t.Fatal(err)
			}
			if in.ErrorCode != code || in.EText != e.EText {
				t.Fatalf("inner error %d %s, outer %d %s", in.ErrorCode, in.EText, code, e.EText)
			}
			return in, r.PAData
		}
	}
	t.Fatalf("no PA-FX-ERROR in %v", r.PAData)
	return e, nil
}

func (c *fastClient) challenge(key types.EncryptionKey, at time.Time) types.PAData {
	t := c.t
	ck, err := ticket.CF2(c.armorKey, key, "clientchallengearmor", "challengelongterm")
	if err != nil {
		t.Fatal(err)
	}
	at = at.UTC()
	b, err := der.AppendPAEncTSEnc(nil, at.Truncate(time.Second), at.Nanosecond()/1000)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := crypto.GetEncryptedData(b, ck, usageEncChallengeCli, 0)
	if err != nil {
		t.Fatal(err)
	}
	return types.PAData{PADataType: paEncryptedChallenge, PADataValue: der.AppendEncryptedData(nil, &ed)}
}

func paTypes(pas types.PADataSequence) []int32 {
	var out []int32
	for _, pa := range pas {
		out = append(out, pa.PADataType)
	}
	return out
}

// TestFASTASEncryptedChallenge runs the armored login MIT kinit -T makes:
// PREAUTH_REQUIRED inside the armor offering encrypted challenge (not the
// timestamp) and a cookie, then the challenge; the reply part opens only
// with the strengthened key, the KDC proves itself with its own challenge,
// and KrbFastFinished checks the ticket.
func TestFASTASEncryptedChallenge(t *testing.T) {
	r := newTestRealm(t)
	c := newFastClient(t, r)
	_, inner := c.fastErr(r.exchange(c.request(asReq("alice", 18))), errorcode.KDC_ERR_PREAUTH_REQUIRED)
	got := paTypes(inner)
	want := []int32{paFXFAST, patype.PA_ETYPE_INFO2, paEncryptedChallenge, paFXCookie, paFXError}
	if len(got) != len(want) {
		t.Fatalf("inner padata %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("inner padata %v, want %v", got, want)
		}
	}

	key := r.key("alice@"+testRealm, 18)
	req := asReq("alice", 18)
	req.PAData = types.PADataSequence{c.challenge(key, r.clock.Now()), {PADataType: paFXCookie, PADataValue: []byte("kerbkit")}}
	reply := r.exchange(c.request(req))
	var rep messages.ASRep
	if err := rep.Unmarshal(reply); err != nil {
		t.Fatalf("not an AS-REP: %v", err)
	}
	if _, err := ticket.DecryptReplyPart(rep.EncPart, key, keyusage.AS_REP_ENCPART); err == nil {
		t.Fatal("armored reply part opens with the long-term key: not strengthened")
	}
	fr := c.response(rep.PAData)
	if fr.StrengthenKey == nil || fr.Finished == nil || fr.Nonce != req.ReqBody.Nonce {
		t.Fatalf("KrbFastResponse %+v", fr)
	}
	replyKey, err := ticket.CF2(*fr.StrengthenKey, key, "strengthenkey", "replykey")
	if err != nil {
		t.Fatal(err)
	}
	part, err := ticket.DecryptReplyPart(rep.EncPart, replyKey, keyusage.AS_REP_ENCPART)
	if err != nil {
		t.Fatalf("reply part with the strengthened key: %v", err)
	}
	if part.Nonce != req.ReqBody.Nonce {
		t.Fatalf("nonce %d", part.Nonce)
	}
	tb, err := der.AppendTicket(nil, &rep.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	et, _ := crypto.GetEtype(c.armorKey.KeyType)
	if !et.VerifyChecksum(c.armorKey.KeyValue, tb, fr.Finished.TicketChecksum.Checksum, usageFastFinished) {
		t.Fatal("KrbFastFinished ticket-checksum does not verify")
	}
	if fr.Finished.CRealm != testRealm || fr.Finished.CName.NameString[0] != "alice" {
		t.Fatalf("finished names %v@%s", fr.Finished.CName, fr.Finished.CRealm)
	}
	var kdcChallenge bool
	kc, _ := ticket.CF2(c.armorKey, key, "kdcchallengearmor", "challengelongterm")
	for _, pa := range fr.PAData {
		if pa.PADataType == paEncryptedChallenge {
			var ed types.EncryptedData
			if err := der.DecodeEncryptedData(pa.PADataValue, &ed); err != nil {
				t.Fatal(err)
			}
			if _, err := crypto.DecryptEncPart(ed, kc, usageEncChallengeKDC); err != nil {
				t.Fatalf("KDC challenge: %v", err)
			}
			kdcChallenge = true
		}
	}
	if !kdcChallenge {
		t.Fatalf("no KDC challenge in %v", paTypes(fr.PAData))
	}
	tkt := r.openTicket(t, rep.Ticket, "krbtgt/"+testRealm+"@"+testRealm)
	if !hasFlag(tkt.Flags, 10) {
		t.Fatal("armored login without the pre-authent flag")
	}
}

// TestFASTCookieCarriesNoState: encrypted challenge needs no state, so a
// missing or altered cookie changes nothing (as MIT's trivial cookie).
func TestFASTCookieCarriesNoState(t *testing.T) {
	r := newTestRealm(t)
	c := newFastClient(t, r)
	key := r.key("alice@"+testRealm, 18)
	for _, cookie := range [][]byte{nil, []byte("garbled\x00\xff")} {
		req := asReq("alice", 18)
		req.PAData = types.PADataSequence{c.challenge(key, r.clock.Now())}
		if cookie != nil {
			req.PAData = append(req.PAData, types.PAData{PADataType: paFXCookie, PADataValue: cookie})
		}
		var rep messages.ASRep
		if err := rep.Unmarshal(r.exchange(c.request(req))); err != nil {
			t.Fatalf("cookie %q: not an AS-REP: %v", cookie, err)
		}
	}
}

// TestFASTBadChallenge: a challenge in the wrong key is PREAUTH_FAILED
// inside the armor; one at a skewed time is KRB_AP_ERR_SKEW.
func TestFASTBadChallenge(t *testing.T) {
	r := newTestRealm(t)
	c := newFastClient(t, r)
	req := asReq("alice", 18)
	req.PAData = types.PADataSequence{c.challenge(randomKey(t, 18), r.clock.Now())}
	c.fastErr(r.exchange(c.request(req)), errorcode.KDC_ERR_PREAUTH_FAILED)

	req.PAData = types.PADataSequence{c.challenge(r.key("alice@"+testRealm, 18), r.clock.Now().Add(time.Hour))}
	c.fastErr(r.exchange(c.request(req)), errorcode.KRB_AP_ERR_SKEW)

	req.PAData = types.PADataSequence{{PADataType: paEncryptedChallenge, PADataValue: []byte{0x30, 0x01}}}
	c.fastErr(r.exchange(c.request(req)), errorcode.KDC_ERR_PREAUTH_FAILED)
}

// TestFASTArmorErrors: what fails before there is an armor key to answer in
// is answered unarmored, with MIT's codes.
func TestFASTArmorErrors(t *testing.T) {
	r := newTestRealm(t)
	for _, tc := range []struct {
		name string
		edit func(*fastClient)
		code int32
	}{
		{"no armor", func(c *fastClient) { c.noArmor = true }, errorcode.KDC_ERR_PREAUTH_FAILED},
		{"unknown armor type", func(c *fastClient) { c.armorType = 2 }, errorcode.KDC_ERR_PREAUTH_FAILED},
		{"armor ticket tampered", func(c *fastClient) {
			c.armorTkt.EncPart.Cipher = append([]byte(nil), c.armorTkt.EncPart.Cipher...)
			c.armorTkt.EncPart.Cipher[20] ^= 1
		}, errorcode.KRB_AP_ERR_BAD_INTEGRITY},
		{"armor ticket not a TGT", func(c *fastClient) {
			c.armorTkt.SName = types.NewPrincipalName(3, "host/localhost")
		}, errorcode.KDC_ERR_SERVER_NOMATCH},
		{"armor without subkey", func(c *fastClient) { c.noSubkey = true }, errorcode.KDC_ERR_POLICY},
		{"inner request in the wrong key", func(c *fastClient) { k := randomKey(t, 18); c.encKey = &k }, errorcode.KRB_AP_ERR_BAD_INTEGRITY},
		{"req-checksum over other bytes", func(c *fastClient) { c.badChecksum = true }, errorcode.KRB_AP_ERR_MODIFIED},
		{"unknown critical FAST option", func(c *fastClient) { c.options = ticket.Flags(2) }, kdcErrUnknownCriticalFastOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFastClient(t, r)
			tc.edit(c)
			e := expectError(t, r.exchange(c.request(asReq("alice", 18))), tc.code)
			if e.EText != "FIND_FAST" {
				t.Errorf("e-text %q, want FIND_FAST", e.EText)
			}
			if len(e.EData) != 0 {
				t.Errorf("unarmored error carries e-data % x", e.EData)
			}
		})
	}
	// Garbage in PA-FX-FAST is refused, not ignored.
	req := asReq("alice", 18)
	req.PAData = types.PADataSequence{{PADataType: paFXFAST, PADataValue: []byte{0xa0, 0x02, 0x30, 0x00}}}
	expectError(t, r.exchange(marshalAS(t, req)), errorcode.KRB_ERR_GENERIC)
}

// TestFASTUnknownClientInsideArmor: an error with no METHOD-DATA still goes
// inside the armor, without a cookie.
func TestFASTUnknownClientInsideArmor(t *testing.T) {
	r := newTestRealm(t)
	c := newFastClient(t, r)
	_, inner := c.fastErr(r.exchange(c.request(asReq("nobody", 18))), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)
	if got := paTypes(inner); len(got) != 1 || got[0] != paFXError {
		t.Fatalf("inner padata %v, want [137]", got)
	}
}

// TestFASTRequired: a client that requires FAST, or a realm that does, gets
// KDC_ERR_POLICY offering PA-FX-FAST for an unarmored request; armored it
// logs in; other clients of a realm without the setting still log in plain.
func TestFASTRequired(t *testing.T) {
	r := newTestRealm(t)
	if err := r.store.Update(context.Background(), principal.MustParse("alice@"+testRealm), func(rec *principal.Record) error {
		rec.RequiresFAST = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	req, _ := r.preauthASReq("alice", 18)
	e := expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_POLICY)
	var md types.PADataSequence
	if err := md.Unmarshal(e.EData); err != nil || e.EText != "FAST_REQUIRED" || len(md) != 1 || md[0].PADataType != paFXFAST {
		t.Fatalf("FAST required: %s, e-data %v (%v)", e.EText, md, err)
	}
	// The armor TGT comes from host/localhost, which needs no FAST.
	hostReq, hostKey := r.preauthASReq("host/localhost", 18)
	tgt, part := asRep(t, r.exchange(marshalAS(t, hostReq)), hostKey)
	c := &fastClient{t: t, r: r, armorTkt: tgt.Ticket, session: part.Key, subkey: randomKey(t, 18), armorType: 1, options: ticket.Flags(), armorFor: "host/localhost"}
	c.armorKey, _ = ticket.CF2(c.subkey, c.session, "subkeyarmor", "ticketarmor")
	armored := asReq("alice", 18)
	armored.PAData = types.PADataSequence{c.challenge(r.key("alice@"+testRealm, 18), r.clock.Now())}
	var rep messages.ASRep
	if err := rep.Unmarshal(r.exchange(c.request(armored))); err != nil {
		t.Fatalf("armored login of a FAST-only client: %v", err)
	}

	realm := newTestRealm(t, func(cfg *Config) { cfg.RequireFAST = true })
	req, _ = realm.preauthASReq("alice", 18)
	expectError(t, realm.exchange(marshalAS(t, req)), errorcode.KDC_ERR_POLICY)
}

// TestFASTTGS: a TGS-REQ armored with the TGT (implicit armor) gets its
// reply part in the strengthened subkey and errors inside the armor; AP-REQ
// armor is refused in a TGS-REQ.
func TestFASTTGS(t *testing.T) {
	r := newTestRealm(t)
	tgt, tpart := r.login(nil)
	sub := randomKey(t, 18)
	armorKey, _ := ticket.CF2(sub, tpart.Key, "subkeyarmor", "ticketarmor")
	c := &fastClient{t: t, r: r, armorKey: armorKey, options: ticket.Flags()}
	build := func(sname string, withArmor bool) []byte {
		b := newTGS(r, tgt, tpart)
		b.SubKey = sub
		b.Body.SName = types.NewPrincipalName(3, sname)
		body := b.bodyBytes(b.Body)
		ap := b.apReq(body)
		et, _ := crypto.GetEtype(armorKey.KeyType)
		sum, _ := et.GetChecksumHash(armorKey.KeyValue, ap, usageFastReqChecksum)
		inner := der.AppendFastReq(nil, ticket.Flags(), nil, body)
		ed, _ := crypto.GetEncryptedData(inner, armorKey, usageFastEnc, 0)
		ar := der.FastArmoredReq{ReqChecksum: types.Checksum{CksumType: et.GetHashID(), Checksum: sum}, EncFastReq: ed}
		if withArmor {
			ar.HasArmor, ar.ArmorType, ar.ArmorValue = true, 1, ap
		}
		pa := []types.PAData{{PADataType: patype.PA_TGS_REQ, PADataValue: ap}, {PADataType: paFXFAST, PADataValue: der.AppendFastArmoredReq(nil, &ar)}}
		return encodeTGSReq(t, pa, body)
	}
	reply := r.exchange(build("host/localhost", false))
	var rep messages.TGSRep
	if err := rep.Unmarshal(reply); err != nil {
		t.Fatalf("not a TGS-REP: %v", err)
	}
	fr := c.response(rep.PAData)
	if fr.StrengthenKey == nil || fr.Finished == nil {
		t.Fatalf("KrbFastResponse %+v", fr)
	}
	key, _ := ticket.CF2(*fr.StrengthenKey, sub, "strengthenkey", "replykey")
	if _, err := ticket.DecryptReplyPart(rep.EncPart, key, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY); err != nil {
		t.Fatalf("reply part with the strengthened subkey: %v", err)
	}
	c.fastErr(r.exchange(build("nosuch/localhost", false)), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN)
	expectError(t, r.exchange(build("host/localhost", true)), errorcode.KDC_ERR_PREAUTH_FAILED)
}

// TestFASTHideClientNames: with hide-client-names (Heimdal's kinit sets it)
// the outer AS-REP names the anonymous principal and KrbFastFinished the
// real client (RFC 6113 §5.4.2).
func TestFASTHideClientNames(t *testing.T) {
	r := newTestRealm(t)
	c := newFastClient(t, r)
	c.options = ticket.Flags(fastHideClientNames)
	req := asReq("alice", 18)
	req.PAData = types.PADataSequence{c.challenge(r.key("alice@"+testRealm, 18), r.clock.Now())}
	var rep messages.ASRep
	if err := rep.Unmarshal(r.exchange(c.request(req))); err != nil {
		t.Fatalf("not an AS-REP: %v", err)
	}
	if rep.CRealm != anonymousRealm || len(rep.CName.NameString) != 2 || rep.CName.NameString[1] != "ANONYMOUS" {
		t.Fatalf("outer client %v@%s, want the anonymous principal", rep.CName, rep.CRealm)
	}
	if fr := c.response(rep.PAData); fr.Finished.CName.NameString[0] != "alice" || fr.Finished.CRealm != testRealm {
		t.Fatalf("finished names %v@%s", fr.Finished.CName, fr.Finished.CRealm)
	}
}

// TestFASTASEncryptedTimestampNotStrengthened is the armored login of Heimdal
// 7.8's kinit --fast-armor-cache: PA-ENC-TIMESTAMP inside the armor (Heimdal
// 7.8 has no encrypted challenge). Heimdal never applies a strengthen key
// (RFC 6113 §5.4.3 makes it optional), so the KDC sends none and seals the
// reply part in the client's long-term key; KrbFastFinished still covers the
// ticket with the armor key, and the nonce is the request's.
func TestFASTASEncryptedTimestampNotStrengthened(t *testing.T) {
	r := newTestRealm(t)
	c := newFastClient(t, r)
	key := r.key("alice@"+testRealm, 18)
	req := asReq("alice", 18)
	req.PAData = types.PADataSequence{encTimestamp(t, key, r.clock.Now())}
	reply := r.exchange(c.request(req))
	var rep messages.ASRep
	if err := rep.Unmarshal(reply); err != nil {
		t.Fatalf("not an AS-REP: %v", err)
	}
	fr := c.response(rep.PAData)
	if fr.StrengthenKey != nil {
		t.Fatal("strengthen key sent to a client that pre-authenticated with the timestamp")
	}
	if fr.Finished == nil || fr.Nonce != req.ReqBody.Nonce {
		t.Fatalf("KrbFastResponse %+v", fr)
	}
	part, err := ticket.DecryptReplyPart(rep.EncPart, key, keyusage.AS_REP_ENCPART)
	if err != nil {
		t.Fatalf("reply part does not open with the long-term key: %v", err)
	}
	if part.Nonce != req.ReqBody.Nonce {
		t.Fatalf("nonce %d", part.Nonce)
	}
	tb, err := der.AppendTicket(nil, &rep.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	et, _ := crypto.GetEtype(c.armorKey.KeyType)
	if !et.VerifyChecksum(c.armorKey.KeyValue, tb, fr.Finished.TicketChecksum.Checksum, usageFastFinished) {
		t.Fatal("KrbFastFinished ticket-checksum does not verify")
	}
	if tkt := r.openTicket(t, rep.Ticket, "krbtgt/"+testRealm+"@"+testRealm); !hasFlag(tkt.Flags, 10) {
		t.Fatal("armored login without the pre-authent flag")
	}
}

// TestRequestLogLine: one line per request with unquoted values (issued as
// attributes, etypes comma-separated) and fast=true on armored requests only.
func TestRequestLogLine(t *testing.T) {
	var buf bytes.Buffer
	r := newTestRealm(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	var all []string
	lines := func() []string {
		defer buf.Reset()
		l := strings.Split(strings.TrimSpace(buf.String()), "\n")
		all = append(all, l...)
		return l
	}
	tgt, tpart := r.login(nil)
	got := lines()
	if len(got) != 1 || !strings.Contains(got[0], "msg=AS_REQ") || !strings.Contains(got[0], "etypes=18,17,20,19 ") ||
		!strings.Contains(got[0], "result=ISSUE reply=aes256-cts-hmac-sha1-96 session=aes256-cts-hmac-sha1-96 ") ||
		strings.Contains(got[0], "fast=") {
		t.Errorf("plain login logged %q", got)
	}
	newTGS(r, tgt, tpart).send()
	got = lines()
	if len(got) != 1 || !strings.Contains(got[0], "msg=TGS_REQ") ||
		!strings.Contains(got[0], "result=ISSUE issued=ticket ticket=aes256-cts-hmac-sha1-96 kvno=1 session=") ||
		strings.Contains(got[0], "fast=") {
		t.Errorf("plain TGS logged %q", got)
	}

	c := newFastClient(t, r)
	buf.Reset()
	key := r.key("alice@"+testRealm, 18)
	req := asReq("alice", 18, 17)
	req.PAData = types.PADataSequence{c.challenge(key, r.clock.Now())}
	r.exchange(c.request(req))
	got = lines()
	if len(got) != 1 || !strings.Contains(got[0], "result=ISSUE") || !strings.Contains(got[0], "etypes=18,17 ") ||
		!strings.Contains(got[0], " fast=true ") {
		t.Errorf("armored login logged %q", got)
	}
	r.exchange(c.request(asReq("nobody", 18)))
	got = lines()
	if len(got) != 1 || !strings.Contains(got[0], "result=CLIENT_NOT_FOUND") || !strings.Contains(got[0], " fast=true ") {
		t.Errorf("armored refusal logged %q", got)
	}
	for _, l := range all {
		if strings.Contains(l, `"`) {
			t.Errorf("a quoted value in %q", l)
		}
	}
}
