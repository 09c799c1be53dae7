package kdc

import (
	"context"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

func TestPreauthRequiredMethodData(t *testing.T) {
	r := newTestRealm(t)
	r.clock.Advance(-17 * time.Minute) // the KDC's clock, not the client's, goes into stime
	req := asReq("alice", 17, 18)
	req.PAData = types.PADataSequence{{PADataType: 150}, {PADataType: 149}}
	e := expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_PREAUTH_REQUIRED)
	if e.EText != "NEEDED_PREAUTH" || e.Realm != testRealm || e.CName.NameString[0] != "alice" || e.CRealm != testRealm {
		t.Fatalf("KRB-ERROR fields: %+v", e)
	}
	if d := e.STime.Sub(r.clock.Now()); d > 2*time.Second || d < -2*time.Second {
		t.Fatalf("stime %v is not the KDC's time %v", e.STime, r.clock.Now())
	}
	var md types.PADataSequence
	if err := md.Unmarshal(e.EData); err != nil {
		t.Fatalf("e-data is not METHOD-DATA: %v", err)
	}
	// PA-FX-FAST (136, empty) last: FAST is available (RFC 6113 §5.4.2).
	if len(md) != 3 || md[0].PADataType != patype.PA_ETYPE_INFO2 || md[1].PADataType != patype.PA_ENC_TIMESTAMP ||
		md[2].PADataType != 136 || len(md[2].PADataValue) != 0 {
		t.Fatalf("METHOD-DATA types %v, want [19 2 136]", md)
	}
	info, err := md[0].GetETypeInfo2()
	if err != nil {
		t.Fatal(err)
	}
	// The client's preference (17 first) picks the entry; the salt is explicit.
	if len(info) != 1 || info[0].EType != 17 || info[0].Salt != "KRB.TESTalice" {
		t.Fatalf("ETYPE-INFO2 = %+v", info)
	}
}

func TestASIssuesTGT(t *testing.T) {
	r := newTestRealm(t)
	now := r.clock.Now()
	rep, part := r.login(func(req *messages.ASReq) {
		req.ReqBody.Nonce = -682502932 // Heimdal sends negative nonces: echo as sent
		// Unknown and duplicate padata must be ignored (gokrb5 sends 149 twice).
		req.PAData = append(req.PAData, types.PAData{PADataType: 149}, types.PAData{PADataType: 149}, types.PAData{PADataType: 4242, PADataValue: []byte{1, 2}})
		types.SetFlag(&req.ReqBody.KDCOptions, flags.Forwardable)
	})
	if part.Nonce != -682502932 {
		t.Fatalf("nonce %d not echoed", part.Nonce)
	}
	if rep.CName.NameString[0] != "alice" || rep.CRealm != testRealm || !part.SName.Equal(rep.Ticket.SName) || part.SName.NameString[0] != "krbtgt" {
		t.Fatalf("names: cname %v sname %v ticket %v", rep.CName, part.SName, rep.Ticket.SName)
	}
	// enc-pa-rep because the request asked for PA-REQ-ENC-PA-REP
	// (TestASEncPARep).
	for _, f := range []int{flags.Initial, flags.PreAuthent, flags.Forwardable, flags.EncPARep} {
		if !types.IsFlagSet(&part.Flags, f) {
			t.Errorf("flag %d not set", f)
		}
	}
	for _, f := range []int{flags.Renewable, flags.Proxiable} {
		if types.IsFlagSet(&part.Flags, f) {
			t.Errorf("flag %d set", f)
		}
	}
	if d := part.AuthTime.Sub(now); d > 2*time.Second || d < -2*time.Second {
		t.Fatalf("authtime %v, now %v", part.AuthTime, now)
	}
	if got := part.EndTime.Sub(part.StartTime); got != 10*time.Hour {
		t.Fatalf("lifetime %v, want the realm's 10h", got)
	}
	// The ticket is sealed in the krbtgt key with its real kvno, and carries the
	// same session key.
	if rep.Ticket.EncPart.KVNO != 1 {
		t.Fatalf("ticket kvno %d", rep.Ticket.EncPart.KVNO)
	}
	etp, err := ticket.OpenTicket(rep.Ticket, r.key("krbtgt/KRB.TEST@KRB.TEST", rep.Ticket.EncPart.EType))
	if err != nil {
		t.Fatal(err)
	}
	if string(etp.Key.KeyValue) != string(part.Key.KeyValue) || etp.CName.NameString[0] != "alice" {
		t.Fatal("ticket does not carry the reply's session key and client")
	}
	if len(rep.PAData) != 1 || rep.PAData[0].PADataType != patype.PA_ETYPE_INFO2 {
		t.Fatalf("AS-REP padata %v, want one ETYPE-INFO2", rep.PAData)
	}
}

func TestASErrors(t *testing.T) {
	r := newTestRealm(t)
	r.add(AddRequest{Name: "rc4only", Password: "pw", Enctypes: []int32{23}})
	r.add(AddRequest{Name: "bob", Password: "bobpw"})
	if _, err := r.admin.SetDisabled(context.Background(), "bob", true); err != nil {
		t.Fatal(err)
	}
	aliceKey := r.key("alice@"+testRealm, 18)
	wrongKey, _ := principal.KeysFromPassword(principal.MustParse("alice@KRB.TEST"), "wrong", []int32{18}, 1)

	tests := []struct {
		name   string
		edit   func(*messages.ASReq)
		code   int32
		status string
	}{
		{"unknown client", func(q *messages.ASReq) { q.ReqBody.CName.NameString = []string{"nobody"} },
			errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_NOT_FOUND"},
		{"unknown server", func(q *messages.ASReq) { q.ReqBody.SName.NameString = []string{"nfs", "nowhere"} },
			errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVER_NOT_FOUND"},
		{"wrong password", func(q *messages.ASReq) {
			q.PAData = types.PADataSequence{encTimestamp(t, wrongKey[0].EncryptionKey(), r.clock.Now())}
		}, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED"},
		{"garbage timestamp", func(q *messages.ASReq) {
			q.PAData = types.PADataSequence{{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: []byte{0x30, 0x00}}}
		}, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED"},
		{"client clock 6 minutes fast", func(q *messages.ASReq) {
			q.PAData = types.PADataSequence{encTimestamp(t, aliceKey, r.clock.Now().Add(6*time.Minute))}
		}, errorcode.KRB_AP_ERR_SKEW, "PREAUTH_FAILED"},
		{"no common enctype", func(q *messages.ASReq) { q.ReqBody.EType = []int32{23} },
			errorcode.KDC_ERR_ETYPE_NOSUPP, "BAD_ENCRYPTION_TYPE"},
		{"renew option in AS-REQ", func(q *messages.ASReq) { types.SetFlag(&q.ReqBody.KDCOptions, flags.Renew) },
			errorcode.KDC_ERR_BADOPTION, "BAD_OPTION"},
		{"disabled client", func(q *messages.ASReq) { q.ReqBody.CName.NameString = []string{"bob"} },
			errorcode.KDC_ERR_CLIENT_REVOKED, "CLIENT_DISABLED"},
		{"future from without POSTDATED", func(q *messages.ASReq) { q.ReqBody.From = r.clock.Now().Add(time.Hour).UTC() },
			errorcode.KDC_ERR_CANNOT_POSTDATE, "CANNOT_POSTDATE"},
		{"till in the past", func(q *messages.ASReq) { q.ReqBody.Till = r.clock.Now().Add(-time.Hour).UTC() },
			errorcode.KDC_ERR_NEVER_VALID, "NEVER_VALID"},
		// Not WRONG_REALM: that is RFC 6806's referral code (issue 8).
		{"wrong realm", func(q *messages.ASReq) { q.ReqBody.Realm = "OTHER.TEST" },
			errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_REALM_UNKNOWN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := asReq("alice")
			req.PAData = types.PADataSequence{encTimestamp(t, aliceKey, r.clock.Now())}
			tc.edit(&req)
			e := expectError(t, r.exchange(marshalAS(t, req)), tc.code)
			if e.EText != tc.status {
				t.Fatalf("e-text %q, want %q", e.EText, tc.status)
			}
			if tc.code == errorcode.KDC_ERR_PREAUTH_FAILED && len(e.EData) == 0 {
				t.Fatal("PREAUTH_FAILED without METHOD-DATA")
			}
		})
	}
	// A client with only an RC4 key asked for AES only.
	e := expectError(t, r.exchange(marshalAS(t, asReq("rc4only", 18, 17))), errorcode.KDC_ERR_ETYPE_NOSUPP)
	if e.EText != "BAD_ENCRYPTION_TYPE" {
		t.Fatal(e.EText)
	}
}

func TestASLifetimes(t *testing.T) {
	r := newTestRealm(t)
	r.add(AddRequest{Name: "short", Password: "pw", MaxLife: 30 * time.Minute, MaxRenew: 2 * time.Hour})
	tests := []struct {
		name           string
		edit           func(*messages.ASReq)
		life           time.Duration
		renewable      bool
		renew          time.Duration // renew-till − start
		postdated      bool
		startAfter     time.Duration
		asPrincipalFor string
	}{
		{name: "epoch till means as long as allowed", edit: func(q *messages.ASReq) { q.ReqBody.Till = ticket.Epoch },
			life: 10 * time.Hour},
		{name: "short till is honoured", edit: func(q *messages.ASReq) { q.ReqBody.Till = r.clock.Now().Add(time.Hour).UTC() },
			life: time.Hour},
		{name: "renewable without rtime gets the realm cap", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
		}, life: 10 * time.Hour, renewable: true, renew: 7 * 24 * time.Hour},
		{name: "renewable with rtime", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
			q.ReqBody.RTime = r.clock.Now().Add(48 * time.Hour).UTC()
		}, life: 10 * time.Hour, renewable: true, renew: 48 * time.Hour},
		// Regression (issue 8): kinit -l 10h -r 10h, and a Python library that
		// always sends rtime = till, got no RENEWABLE flag.
		{name: "renewable with rtime equal to till", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
			q.ReqBody.Till = r.clock.Now().Add(5 * time.Hour).UTC()
			q.ReqBody.RTime = q.ReqBody.Till
		}, life: 5 * time.Hour, renewable: true, renew: 5 * time.Hour},
		{name: "renewable with rtime before till keeps that renew-till", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
			q.ReqBody.Till = r.clock.Now().Add(5 * time.Hour).UTC()
			q.ReqBody.RTime = r.clock.Now().Add(3 * time.Hour).UTC()
		}, life: 5 * time.Hour, renewable: true, renew: 3 * time.Hour},
		{name: "renewable-ok with a till that was not cut", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.RenewableOK)
			q.ReqBody.Till = r.clock.Now().Add(10 * time.Hour).UTC()
		}, life: 10 * time.Hour},
		{name: "renewable-ok turns a cut till into renew-till", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.RenewableOK)
			q.ReqBody.Till = r.clock.Now().Add(24 * time.Hour).UTC()
		}, life: 10 * time.Hour, renewable: true, renew: 24 * time.Hour},
		{name: "renewable-ok not needed", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.RenewableOK)
			q.ReqBody.Till = r.clock.Now().Add(2 * time.Hour).UTC()
		}, life: 2 * time.Hour},
		{name: "postdated", edit: func(q *messages.ASReq) {
			types.SetFlag(&q.ReqBody.KDCOptions, flags.AllowPostDate)
			types.SetFlag(&q.ReqBody.KDCOptions, flags.PostDated)
			q.ReqBody.From = r.clock.Now().Add(time.Hour).UTC()
		}, life: 10 * time.Hour, postdated: true, startAfter: time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, part := r.login(tc.edit)
			approx(t, "lifetime", part.EndTime.Sub(part.StartTime), tc.life)
			if got := types.IsFlagSet(&part.Flags, flags.Renewable); got != tc.renewable {
				t.Fatalf("renewable = %v", got)
			}
			if tc.renewable {
				approx(t, "renewable life", part.RenewTill.Sub(part.StartTime), tc.renew)
			} else if !part.RenewTill.IsZero() {
				t.Fatalf("renew-till %v on a non-renewable ticket", part.RenewTill)
			}
			if got := types.IsFlagSet(&part.Flags, flags.PostDated) && types.IsFlagSet(&part.Flags, flags.Invalid); got != tc.postdated {
				t.Fatalf("postdated+invalid = %v", got)
			}
			approx(t, "start", part.StartTime.Sub(r.clock.Now()), tc.startAfter)
			etp, err := ticket.OpenTicket(rep.Ticket, r.key("krbtgt/KRB.TEST@KRB.TEST", rep.Ticket.EncPart.EType))
			if err != nil {
				t.Fatal(err)
			}
			if !etp.EndTime.Equal(part.EndTime) || !etp.RenewTill.Equal(part.RenewTill) {
				t.Fatal("ticket and reply times differ")
			}
		})
	}

	// Per-principal caps beat the realm's.
	req, key := r.preauthASReq("short", 18)
	types.SetFlag(&req.ReqBody.KDCOptions, flags.Renewable)
	_, part := asRep(t, r.exchange(marshalAS(t, req)), key)
	approx(t, "capped lifetime", part.EndTime.Sub(part.StartTime), 30*time.Minute)
	approx(t, "capped renew", part.RenewTill.Sub(part.StartTime), 2*time.Hour)
}

func approx(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d > 2*time.Second || d < -2*time.Second {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestNoPreauthPrincipal(t *testing.T) {
	r := newTestRealm(t)
	r.add(AddRequest{Name: "legacy", Password: "pw", NoPreauth: true})
	key := r.key("legacy@"+testRealm, 18)
	_, part := asRep(t, r.exchange(marshalAS(t, asReq("legacy"))), key)
	if types.IsFlagSet(&part.Flags, flags.PreAuthent) {
		t.Fatal("pre-authent set without pre-authentication")
	}
}

func TestChangesVisibleWithoutRestart(t *testing.T) {
	r := newTestRealm(t)
	ctx := context.Background()
	expectError(t, r.exchange(marshalAS(t, asReq("carol"))), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)
	r.add(AddRequest{Name: "carol", Password: "carolpw"})
	fresh := asReq("carol")
	fresh.ReqBody.Nonce = 7 // a real client's next try has a new nonce
	expectError(t, r.exchange(marshalAS(t, fresh)), errorcode.KDC_ERR_PREAUTH_REQUIRED)
	old := r.key("carol@"+testRealm, 18)
	if _, err := r.admin.ChangeKeys(ctx, "carol", "newpw", false); err != nil {
		t.Fatal(err)
	}
	req := asReq("carol")
	req.PAData = types.PADataSequence{encTimestamp(t, old, r.clock.Now())}
	req.ReqBody.Nonce = 99 // a new request, not a retransmission
	expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_PREAUTH_FAILED)
}

// A client that only speaks aes256-cts-hmac-sha384-192 gets a usable 32-byte
// session key (RFC 8009 §5).
func TestASSha384SessionKey(t *testing.T) {
	r := newTestRealm(t)
	req, key := r.preauthASReq("alice", 20, 20)
	rep, part := asRep(t, r.exchange(marshalAS(t, req)), key)
	if part.Key.KeyType != 20 || len(part.Key.KeyValue) != 32 {
		t.Fatalf("session key etype %d, %d bytes", part.Key.KeyType, len(part.Key.KeyValue))
	}
	if rep.EncPart.EType != 20 {
		t.Fatalf("reply sealed with etype %d", rep.EncPart.EType)
	}
}
