package kdc

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

const (
	hostService  = "host/localhost@" + testRealm
	krbtgtServer = "krbtgt/" + testRealm + "@" + testRealm
	paFXFast     = 136
)

func krbtgtName() types.PrincipalName { return principal.Krbtgt(testRealm).PrincipalName() }

func within(t *testing.T, what string, got, want time.Time, tol time.Duration) {
	t.Helper()
	if d := got.Sub(want); d > tol || d < -tol {
		t.Fatalf("%s = %v, want %v (±%v)", what, got, want, tol)
	}
}

// The request builder must put the body on the wire byte for byte, or every
// checksum test below means nothing.
func TestTGSBuilderKeepsBodyBytes(t *testing.T) {
	r := newTestRealm(t)
	tgt, tpart := r.login(nil)
	b := newTGS(r, tgt, tpart)
	pkt := b.marshal()
	req, err := ticket.ParseKDCRequest(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if req.MsgType != msgtype.KRB_TGS_REQ || req.PVNO != 5 {
		t.Fatalf("decoded %+v", req)
	}
	if !bytes.Equal(req.RawBody, b.bodyBytes(b.Body)) {
		t.Fatal("raw body on the wire differs from the bytes the checksum covers")
	}
	if _, ok := req.PA(patype.PA_TGS_REQ); !ok {
		t.Fatal("no PA-TGS-REQ")
	}
}

// TestTGSIssuesServiceTicket: what the clients of protocol-notes §4.1 send, and
// the reply of §4.3 for each.
func TestTGSIssuesServiceTicket(t *testing.T) {
	r := newTestRealm(t)
	// A second key version for the service, so the kvno on the wire means something.
	if _, err := r.admin.ChangeKeys(context.Background(), "host/localhost", "", true); err != nil {
		t.Fatal(err)
	}
	tgt, tpart := r.login(func(q *messages.ASReq) { types.SetFlag(&q.ReqBody.KDCOptions, flags.Forwardable) })
	if !hasFlag(tpart.Flags, flags.PreAuthent) || !hasFlag(tpart.Flags, flags.Forwardable) {
		t.Fatalf("TGT flags %x: want pre-authent and forwardable", tpart.Flags.Bytes)
	}

	tests := []struct {
		name      string
		nameType  int32
		subkey    bool
		nonce     int
		epoch     bool          // from = till = 19700101000000Z (Heimdal)
		till      time.Duration // requested lifetime when not epoch; 0 = 24h
		wantLife  time.Duration // 0: ends with the TGT
		forwardOp bool
	}{
		{name: "MIT GSS: NT-SRV-HST, subkey", nameType: nametype.KRB_NT_SRV_HST, subkey: true, nonce: 1, forwardOp: true},
		{name: "MIT kvno: NT-PRINCIPAL, subkey", nameType: nametype.KRB_NT_PRINCIPAL, subkey: true, nonce: 2, forwardOp: true},
		{name: "Heimdal: NT-SRV-HST, negative nonce, epoch from and till", nameType: nametype.KRB_NT_SRV_HST, subkey: true, nonce: -682502932, epoch: true, forwardOp: true},
		{name: "Java: NT-UNKNOWN, no subkey", nameType: nametype.KRB_NT_UNKNOWN, nonce: 4, forwardOp: true},
		{name: "no subkey, short till, not forwardable", nameType: nametype.KRB_NT_PRINCIPAL, nonce: 5, till: 2 * time.Hour, wantLife: 2 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTGS(r, tgt, tpart)
			b.t = t
			b.Body.SName = types.NewPrincipalName(tc.nameType, "host/localhost")
			b.Body.Nonce = tc.nonce
			if tc.forwardOp {
				types.SetFlag(&b.Body.KDCOptions, flags.Forwardable)
			}
			switch {
			case tc.epoch:
				b.Body.From, b.Body.Till = ticket.Epoch, ticket.Epoch
			case tc.till != 0:
				b.Body.Till = r.clock.Now().Add(tc.till).UTC().Truncate(time.Second)
			}
			if tc.subkey {
				b.SubKey = randomKey(t, 18)
			}
			now := r.clock.Now()
			reply := b.send()

			// The reply part: subkey with usage 9, else session key with usage 8,
			// and nothing else.
			key, usage := tpart.Key, uint32(keyusage.TGS_REP_ENCPART_SESSION_KEY)
			if tc.subkey {
				key, usage = b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY
			}
			rep, part := tgsRep(t, reply, key, usage)
			if tc.subkey {
				if _, err := ticket.DecryptReplyPart(rep.EncPart, b.SubKey, keyusage.TGS_REP_ENCPART_SESSION_KEY); err == nil {
					t.Fatal("reply part also opens with the subkey at usage 8")
				}
				if _, err := ticket.DecryptReplyPart(rep.EncPart, tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY); err == nil {
					t.Fatal("reply part sealed in the TGT session key although a subkey was sent")
				}
			}

			// Names: the TGT's client; sname echoed as requested, type included.
			if rep.CRealm != testRealm || !rep.CName.Equal(tgt.CName) || rep.CName.NameString[0] != "alice" {
				t.Fatalf("reply client %v@%s", rep.CName, rep.CRealm)
			}
			for what, sn := range map[string]types.PrincipalName{"ticket": rep.Ticket.SName, "enc-part": part.SName} {
				if sn.NameType != tc.nameType || !sn.Equal(b.Body.SName) {
					t.Fatalf("%s sname %+v, want %+v", what, sn, b.Body.SName)
				}
			}
			if rep.Ticket.Realm != testRealm || part.SRealm != testRealm {
				t.Fatalf("realms: ticket %q, srealm %q", rep.Ticket.Realm, part.SRealm)
			}
			if part.Nonce != tc.nonce {
				t.Fatalf("nonce %d, want %d", part.Nonce, tc.nonce)
			}

			// Times: starttime sent and now, authtime the TGT's.
			if part.StartTime.IsZero() {
				t.Fatal("no starttime in the reply part (protocol notes trap 1)")
			}
			within(t, "starttime", part.StartTime, now, 2*time.Second)
			if !part.AuthTime.Equal(tpart.AuthTime) {
				t.Fatalf("authtime %v, want the TGT's %v", part.AuthTime, tpart.AuthTime)
			}
			if tc.wantLife == 0 {
				if !part.EndTime.Equal(tpart.EndTime) {
					t.Fatalf("endtime %v, want the TGT's %v", part.EndTime, tpart.EndTime)
				}
			} else {
				approx(t, "lifetime", part.EndTime.Sub(part.StartTime), tc.wantLife)
			}
			if !part.EndTime.After(r.clock.Now().Add(time.Hour)) {
				t.Fatalf("ticket ends %v: (nearly) expired on issue", part.EndTime)
			}

			// Flags.
			if hasFlag(part.Flags, flags.Initial) {
				t.Error("initial flag on a TGS-issued ticket")
			}
			if !hasFlag(part.Flags, flags.PreAuthent) {
				t.Error("pre-authent not copied from the TGT")
			}
			if got := hasFlag(part.Flags, flags.Forwardable); got != tc.forwardOp {
				t.Errorf("forwardable = %v, want %v", got, tc.forwardOp)
			}
			for _, f := range []int{flags.Invalid, flags.Renewable, flags.PostDated, flags.Forwarded, flags.EncPARep} {
				if hasFlag(part.Flags, f) {
					t.Errorf("flag %d set", f)
				}
			}
			if !part.RenewTill.IsZero() {
				t.Errorf("renew-till %v on a non-renewable ticket", part.RenewTill)
			}
			if part.Key.KeyType != 18 || len(part.Key.KeyValue) != 32 || bytes.Equal(part.Key.KeyValue, tpart.Key.KeyValue) {
				t.Errorf("session key etype %d: want a fresh aes256 key", part.Key.KeyType)
			}

			// The ticket: service key, real kvno, same contents as the reply.
			if rep.Ticket.EncPart.KVNO != 2 {
				t.Fatalf("ticket kvno %d, want 2", rep.Ticket.EncPart.KVNO)
			}
			etp := r.openTicket(t, rep.Ticket, hostService)
			if !bytes.Equal(etp.Key.KeyValue, part.Key.KeyValue) || etp.Key.KeyType != part.Key.KeyType {
				t.Fatal("ticket and reply carry different session keys")
			}
			if etp.CRealm != testRealm || !etp.CName.Equal(tgt.CName) {
				t.Fatalf("ticket client %v@%s", etp.CName, etp.CRealm)
			}
			if !etp.AuthTime.Equal(part.AuthTime) || !etp.StartTime.Equal(part.StartTime) || !etp.EndTime.Equal(part.EndTime) {
				t.Fatalf("ticket times %v %v %v, reply %v %v %v", etp.AuthTime, etp.StartTime, etp.EndTime, part.AuthTime, part.StartTime, part.EndTime)
			}
			if !bytes.Equal(etp.Flags.Bytes, part.Flags.Bytes) {
				t.Fatalf("ticket flags %x, reply flags %x", etp.Flags.Bytes, part.Flags.Bytes)
			}
		})
	}
}

// A ticket forwardable (proxiable) only when both the option and the TGT say so
// (protocol-notes §4.3: set from the options, then clear what the TGT lacks;
// MIT get_ticket_flags).
func TestTGSForwardableAndProxiableNeedTheTGT(t *testing.T) {
	tests := []struct {
		name     string
		flag     int
		tgtHas   bool
		optionOn bool
		want     bool
	}{
		{"forwardable TGT, option", flags.Forwardable, true, true, true},
		{"forwardable TGT, no option", flags.Forwardable, true, false, false},
		{"plain TGT, forwardable option", flags.Forwardable, false, true, false},
		{"proxiable TGT, option", flags.Proxiable, true, true, true},
		{"plain TGT, proxiable option", flags.Proxiable, false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRealm(t)
			tgt, tpart := r.login(func(q *messages.ASReq) {
				if tc.tgtHas {
					types.SetFlag(&q.ReqBody.KDCOptions, tc.flag)
				}
			})
			if hasFlag(tpart.Flags, tc.flag) != tc.tgtHas {
				t.Fatalf("TGT flag %d = %v", tc.flag, !tc.tgtHas)
			}
			b := newTGS(r, tgt, tpart)
			b.t = t
			if tc.optionOn {
				types.SetFlag(&b.Body.KDCOptions, tc.flag)
			}
			rep, part := tgsRep(t, b.send(), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
			if got := hasFlag(part.Flags, tc.flag); got != tc.want {
				t.Fatalf("reply flag %d = %v, want %v", tc.flag, got, tc.want)
			}
			etp := r.openTicket(t, rep.Ticket, hostService)
			if got := hasFlag(etp.Flags, tc.flag); got != tc.want {
				t.Fatalf("ticket flag %d = %v, want %v", tc.flag, got, tc.want)
			}
		})
	}
}

// TestTGSLongAfterLogin: a service ticket asked for 10 minutes after kinit starts
// now, with the old authtime (protocol-notes trap 1).
func TestTGSLongAfterLogin(t *testing.T) {
	r := newTestRealm(t)
	tgt, tpart := r.login(nil)
	r.clock.Advance(10 * time.Minute)
	now := r.clock.Now()
	b := newTGS(r, tgt, tpart)
	b.SubKey = randomKey(t, 18)
	rep, part := tgsRep(t, b.send(), b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	if part.StartTime.IsZero() {
		t.Fatal("no starttime")
	}
	within(t, "starttime", part.StartTime, now, 2*time.Second)
	if !part.AuthTime.Equal(tpart.AuthTime) {
		t.Fatalf("authtime %v, want the TGT's %v", part.AuthTime, tpart.AuthTime)
	}
	approx(t, "starttime − authtime", part.StartTime.Sub(part.AuthTime), 10*time.Minute)
	etp := r.openTicket(t, rep.Ticket, hostService)
	if !etp.StartTime.Equal(part.StartTime) || !etp.AuthTime.Equal(tpart.AuthTime) {
		t.Fatalf("ticket times: start %v auth %v", etp.StartTime, etp.AuthTime)
	}
}

// TestTGSErrors: each fault of protocol-notes §4.2 and its KRB-ERROR code (§7).
func TestTGSErrors(t *testing.T) {
	type env struct {
		r     *testRealmEnv
		tpart messages.EncKDCRepPart
	}
	tests := []struct {
		name   string
		login  func(*messages.ASReq)              // edits the AS-REQ for the TGT
		edit   func(*testing.T, env, *tgsBuilder) // runs after login, before the request is built
		code   int32
		status string // e-text; "" = not checked
	}{
		{name: "no padata", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.PAData = func([]types.PAData) []types.PAData { return nil }
		}, code: errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, status: "NO_PA_TGS_REQ"},
		{name: "only PA-FX-FAST", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.PAData = func([]types.PAData) []types.PAData {
				return []types.PAData{{PADataType: paFXFast, PADataValue: []byte{0x30, 0x00}}}
			}
		}, code: errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, status: "NO_PA_TGS_REQ"},
		{name: "body nonce changed after the checksum", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.MutateBody = func(q *messages.KDCReqBody) { q.Nonce ^= 1 }
		}, code: errorcode.KRB_AP_ERR_MODIFIED, status: "BAD_CHECKSUM"},
		{name: "body till changed after the checksum", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.MutateBody = func(q *messages.KDCReqBody) { q.Till = q.Till.Add(time.Second) }
		}, code: errorcode.KRB_AP_ERR_MODIFIED, status: "BAD_CHECKSUM"},
		{name: "body forwardable option added after the checksum", login: forwardableTGT, edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.MutateBody = func(q *messages.KDCReqBody) {
				q.KDCOptions = ticket.Flags(flags.Forwardable)
			}
		}, code: errorcode.KRB_AP_ERR_MODIFIED, status: "BAD_CHECKSUM"},
		{name: "checksum bytes wrong", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.EditAuth = func(a *types.Authenticator) { a.Cksum.Checksum[0] ^= 0x80 }
		}, code: errorcode.KRB_AP_ERR_MODIFIED, status: "BAD_CHECKSUM"},
		{name: "no checksum", edit: func(_ *testing.T, _ env, b *tgsBuilder) { b.NoChecksum = true },
			code: errorcode.KRB_AP_ERR_INAPP_CKSUM, status: "NO_CHECKSUM"},
		{name: "unknown checksum type", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Checksum = &types.Checksum{CksumType: 9999, Checksum: bytes.Repeat([]byte{7}, 12)}
		}, code: errorcode.KDC_ERR_SUMTYPE_NOSUPP, status: "BAD_CHECKSUM_TYPE"},
		// CRC32 (1) and RSA-MD5 (7) are known but unkeyed: not collision-proof,
		// KRB_AP_ERR_INAPP_CKSUM (protocol-notes §4.2 step 5, §7; RFC 4120 §3.3.2).
		{name: "unkeyed CRC32 checksum", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Checksum = &types.Checksum{CksumType: 1, Checksum: []byte{1, 2, 3, 4}}
		}, code: errorcode.KRB_AP_ERR_INAPP_CKSUM},
		{name: "unkeyed RSA-MD5 checksum", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Checksum = &types.Checksum{CksumType: 7, Checksum: bytes.Repeat([]byte{9}, 16)}
		}, code: errorcode.KRB_AP_ERR_INAPP_CKSUM},
		{name: "authenticator sealed in a wrong key", edit: func(t *testing.T, _ env, b *tgsBuilder) {
			k := randomKey(t, b.Session.KeyType)
			b.AuthKey = &k
		}, code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, status: "AUTHENTICATOR_DECRYPT_FAILED"},
		{name: "authenticator sealed with usage 11", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.AuthUsage = keyusage.AP_REQ_AUTHENTICATOR
		}, code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, status: "AUTHENTICATOR_DECRYPT_FAILED"},
		{name: "TGT sealed in a wrong krbtgt key", edit: func(t *testing.T, e env, b *tgsBuilder) {
			etp := e.r.openTicket(t, b.TGT, krbtgtServer)
			tkt, err := ticket.SealTicket(testRealm, b.TGT.SName, etp, randomKey(t, b.TGT.EncPart.EType), b.TGT.EncPart.KVNO)
			if err != nil {
				t.Fatal(err)
			}
			b.TGT = tkt
		}, code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, status: "TGT_DECRYPT_FAILED"},
		{name: "TGT ciphertext corrupted", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			c := append([]byte(nil), b.TGT.EncPart.Cipher...)
			c[len(c)/2] ^= 0x01
			b.TGT.EncPart.Cipher = c
		}, code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, status: "TGT_DECRYPT_FAILED"},
		{name: "TGT kvno unknown", edit: func(_ *testing.T, _ env, b *tgsBuilder) { b.TGT.EncPart.KVNO = 9 },
			code: errorcode.KRB_AP_ERR_BADKEYVER, status: "TGT_KVNO_UNKNOWN"},
		{name: "service ticket presented as a TGT", edit: func(t *testing.T, e env, b *tgsBuilder) {
			svc := newTGS(e.r, asASRep(messages.TGSRep{KDCRepFields: messages.KDCRepFields{CRealm: b.CRealm, CName: b.CName, Ticket: b.TGT}}), e.tpart)
			svc.t = t
			rep, part := tgsRep(t, svc.send(), e.tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
			b.TGT, b.Session = rep.Ticket, part.Key
			b.Body.Nonce++
		}, code: errorcode.KRB_AP_ERR_NOT_US, status: "NOT_A_TGT"},
		{name: "TGT expired", edit: func(_ *testing.T, e env, b *tgsBuilder) {
			e.r.clock.Advance(e.tpart.EndTime.Sub(e.r.clock.Now()) + DefaultClockSkew + time.Minute)
		}, code: errorcode.KRB_AP_ERR_TKT_EXPIRED, status: "TGT_EXPIRED"},
		// Regression (issue 8): within the skew of its end an expired TGT got
		// KDC_ERR_NEVER_VALID; MIT and Heimdal say "Ticket expired".
		{name: "TGT expired a minute ago", edit: func(_ *testing.T, e env, b *tgsBuilder) {
			e.r.clock.Advance(e.tpart.EndTime.Sub(e.r.clock.Now()) + time.Minute)
		}, code: errorcode.KRB_AP_ERR_TKT_EXPIRED, status: "TGT_EXPIRED"},
		{name: "authenticator 6 minutes fast", edit: func(_ *testing.T, e env, b *tgsBuilder) {
			b.CTime = e.r.clock.Now().Add(6 * time.Minute)
		}, code: errorcode.KRB_AP_ERR_SKEW, status: "CLOCK_SKEW"},
		{name: "authenticator 6 minutes slow", edit: func(_ *testing.T, e env, b *tgsBuilder) {
			b.CTime = e.r.clock.Now().Add(-6 * time.Minute)
		}, code: errorcode.KRB_AP_ERR_SKEW, status: "CLOCK_SKEW"},
		{name: "authenticator cname is not the ticket's", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.CName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "bob")
		}, code: errorcode.KRB_AP_ERR_BADMATCH, status: "CLIENT_MISMATCH"},
		{name: "authenticator crealm is not the ticket's", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.CRealm = "OTHER.TEST"
		}, code: errorcode.KRB_AP_ERR_BADMATCH, status: "CLIENT_MISMATCH"},
		{name: "unknown service", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/nowhere")
		}, code: errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, status: "LOOKING_UP_SERVER"},
		{name: "RENEW with a non-renewable TGT", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Body.SName = krbtgtName()
			types.SetFlag(&b.Body.KDCOptions, flags.Renew)
		}, code: errorcode.KDC_ERR_BADOPTION, status: "TGT_NOT_RENEWABLE"},
		{name: "FORWARDED with a non-forwardable TGT", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			types.SetFlag(&b.Body.KDCOptions, flags.Forwarded)
		}, code: errorcode.KDC_ERR_BADOPTION, status: "TGT_NOT_FORWARDABLE"},
		{name: "VALIDATE with a valid TGT", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Body.SName = krbtgtName()
			types.SetFlag(&b.Body.KDCOptions, flags.Validate)
		}, code: errorcode.KDC_ERR_BADOPTION, status: "TGT_NOT_INVALID"},
		{name: "mutual-required in PA-TGS-REQ", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.APOptions = ticket.Flags(flags.APOptionMutualRequired)
		}, code: errorcode.KDC_ERR_POLICY, status: "BAD_AP_OPTIONS"},
		{name: "use-session-key in PA-TGS-REQ", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.APOptions = ticket.Flags(flags.APOptionUseSessionKey)
		}, code: errorcode.KDC_ERR_POLICY, status: "BAD_AP_OPTIONS"},
		{name: "disabled service", edit: func(t *testing.T, e env, b *tgsBuilder) {
			e.r.add(AddRequest{Name: "host/disabled", RandomKey: true})
			if _, err := e.r.admin.SetDisabled(context.Background(), "host/disabled", true); err != nil {
				t.Fatal(err)
			}
			b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/disabled")
		}, code: errorcode.KDC_ERR_POLICY, status: "SERVER_DISABLED"},
		{name: "client disabled since login", edit: func(t *testing.T, e env, _ *tgsBuilder) {
			if _, err := e.r.admin.SetDisabled(context.Background(), "alice", true); err != nil {
				t.Fatal(err)
			}
		}, code: errorcode.KDC_ERR_CLIENT_REVOKED, status: "CLIENT_DISABLED"},
		// Regression (issue 8): a deleted client kept getting tickets until its
		// TGT expired.
		{name: "client deleted since login", edit: func(t *testing.T, e env, _ *tgsBuilder) {
			if err := e.r.admin.Delete(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			}
		}, code: errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, status: "CLIENT_NOT_FOUND"},
		{name: "client expired since login", edit: func(t *testing.T, e env, _ *tgsBuilder) {
			err := e.r.store.Update(context.Background(), principal.MustParse("alice@"+testRealm), func(rec *principal.Record) error {
				rec.Expires = e.r.clock.Now().Add(-time.Second)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}, code: errorcode.KDC_ERR_NAME_EXP, status: "CLIENT_EXPIRED"},
		// Regression (issue 8): PROXY for krbtgt gave a proxy TGT (RFC 4120 §2.5).
		{name: "PROXY for the TGS", login: func(q *messages.ASReq) { types.SetFlag(&q.ReqBody.KDCOptions, flags.Proxiable) },
			edit: func(_ *testing.T, _ env, b *tgsBuilder) {
				b.Body.SName = krbtgtName()
				types.SetFlag(&b.Body.KDCOptions, flags.Proxy)
			}, code: errorcode.KDC_ERR_BADOPTION, status: "PROXY_TGT_REFUSED"},
		{name: "service in a realm we do not serve", edit: func(_ *testing.T, _ env, b *tgsBuilder) {
			b.Body.Realm = "OTHER.TEST"
		}, code: errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, status: "SERVER_REALM_UNKNOWN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRealm(t)
			tgt, tpart := r.login(tc.login)
			b := newTGS(r, tgt, tpart)
			b.t = t
			b.SubKey = randomKey(t, 18)
			tc.edit(t, env{r: r, tpart: tpart}, b)
			e := expectError(t, b.send(), tc.code)
			if tc.status != "" && e.EText != tc.status {
				t.Fatalf("e-text %q, want %q", e.EText, tc.status)
			}
			if e.Realm != testRealm || len(e.SName.NameString) == 0 {
				t.Fatalf("KRB-ERROR realm %q sname %v", e.Realm, e.SName)
			}
			if r.kdc.Panics() != 0 {
				t.Fatal("the KDC panicked")
			}
		})
	}
}

func forwardableTGT(q *messages.ASReq) { types.SetFlag(&q.ReqBody.KDCOptions, flags.Forwardable) }

// Checksum types other than the session key's, with checksums that do not
// verify: a KRB-ERROR (never a panic, never a ticket).
func TestTGSForeignChecksumTypes(t *testing.T) {
	r := newTestRealm(t)
	tgt, tpart := r.login(nil)
	for _, ct := range []int32{12 /* des3 */, -138 /* hmac-md5 */, 15, 19, 20} {
		b := newTGS(r, tgt, tpart)
		b.Body.Nonce = int(ct) + 1000
		b.Checksum = &types.Checksum{CksumType: ct, Checksum: bytes.Repeat([]byte{0x5a}, 24)}
		reply := b.send()
		if ticket.MessageType(reply) != msgtype.KRB_ERROR {
			t.Fatalf("checksum type %d: reply tag %d, want a KRB-ERROR", ct, ticket.MessageType(reply))
		}
		if r.kdc.Panics() != 0 {
			t.Fatalf("checksum type %d: the KDC panicked", ct)
		}
	}
}

// TestTGSRenew: RENEW of a renewable TGT (MIT kinit -R) starts it now with the
// old lifetime, keeps renew-till and gives a new session key (RFC 4120 §3.3.3).
func TestTGSRenew(t *testing.T) {
	r := newTestRealm(t)
	start := r.clock.Now()
	tgt, tpart := r.login(func(q *messages.ASReq) {
		types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
		types.SetFlag(&q.ReqBody.KDCOptions, flags.Forwardable)
		q.ReqBody.Till = start.Add(time.Hour).UTC()
		q.ReqBody.RTime = start.Add(48 * time.Hour).UTC()
	})
	if !hasFlag(tpart.Flags, flags.Renewable) {
		t.Fatal("TGT not renewable")
	}
	r.clock.Advance(30 * time.Minute)
	now := r.clock.Now()
	b := newTGS(r, tgt, tpart)
	b.Body.SName = krbtgtName()
	b.Body.KDCOptions = ticket.Flags(flags.Renew, flags.Renewable, flags.Forwardable)
	b.Body.Till = ticket.Epoch
	b.SubKey = randomKey(t, 18)
	rep, part := tgsRep(t, b.send(), b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)

	within(t, "starttime", part.StartTime, now, 2*time.Second)
	approx(t, "lifetime", part.EndTime.Sub(part.StartTime), time.Hour)
	if !part.RenewTill.Equal(tpart.RenewTill) {
		t.Fatalf("renew-till %v, want the TGT's %v", part.RenewTill, tpart.RenewTill)
	}
	if !part.AuthTime.Equal(tpart.AuthTime) {
		t.Fatalf("authtime %v, want %v", part.AuthTime, tpart.AuthTime)
	}
	if bytes.Equal(part.Key.KeyValue, tpart.Key.KeyValue) {
		t.Fatal("renewed ticket has the old session key")
	}
	for _, f := range []int{flags.Renewable, flags.Forwardable, flags.PreAuthent} {
		if !hasFlag(part.Flags, f) {
			t.Errorf("flag %d lost on renewal", f)
		}
	}
	if hasFlag(part.Flags, flags.Invalid) {
		t.Error("invalid flag on a renewed ticket")
	}
	if !rep.Ticket.SName.Equal(krbtgtName()) {
		t.Fatalf("renewed ticket is for %v", rep.Ticket.SName)
	}
	etp := r.openTicket(t, rep.Ticket, krbtgtServer)
	if !bytes.Equal(etp.Key.KeyValue, part.Key.KeyValue) || !etp.StartTime.Equal(part.StartTime) ||
		!etp.EndTime.Equal(part.EndTime) || !etp.RenewTill.Equal(part.RenewTill) || !etp.AuthTime.Equal(tpart.AuthTime) {
		t.Fatalf("renewed ticket %+v does not match the reply %+v", etp, part)
	}
	// The renewed TGT works, with its new session key.
	b2 := newTGS(r, asASRep(rep), part)
	if _, sp := tgsRep(t, b2.send(), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY); !sp.AuthTime.Equal(tpart.AuthTime) {
		t.Fatalf("service ticket authtime %v", sp.AuthTime)
	}
	// The old session key no longer goes with the renewed ticket.
	b3 := newTGS(r, asASRep(rep), tpart)
	expectError(t, b3.send(), errorcode.KRB_AP_ERR_BAD_INTEGRITY)
}

// TestTGSRenewMustNameTheTicketsServer: RENEW and VALIDATE reissue the presented
// ticket, so the requested server must be that ticket's server, else
// KDC_ERR_SERVER_NOMATCH (26) (Heimdal krb5tgs.c tgs_build_reply "Inconsistent
// request"; MIT validate_tgs_request). Otherwise the TGT's flags, INITIAL
// included, and its lifetime end up in a ticket for any service: e.g. an
// INITIAL kadmin/changepw ticket from a TGT.
func TestTGSRenewMustNameTheTicketsServer(t *testing.T) {
	for _, opt := range []int{flags.Renew, flags.Validate} {
		name := map[int]string{flags.Renew: "RENEW", flags.Validate: "VALIDATE"}[opt]
		t.Run(name, func(t *testing.T) {
			r := newTestRealm(t)
			t0 := r.clock.Now()
			tgt, tpart := r.login(func(q *messages.ASReq) {
				types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
				if opt == flags.Validate {
					types.SetFlag(&q.ReqBody.KDCOptions, flags.AllowPostDate)
					types.SetFlag(&q.ReqBody.KDCOptions, flags.PostDated)
					q.ReqBody.From = t0.Add(time.Hour).UTC()
				}
			})
			if opt == flags.Validate {
				r.clock.Advance(time.Hour)
			}
			b := newTGS(r, tgt, tpart)
			b.t = t
			b.Body.KDCOptions = ticket.Flags(opt) // sname stays host/localhost
			reply := b.send()
			if ticket.MessageType(reply) == msgtype.KRB_TGS_REP {
				rep, part := tgsRep(t, reply, tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
				t.Fatalf("%s of a TGT with sname %v issued a ticket for %v (initial=%v, flags %x): want KDC_ERR_SERVER_NOMATCH",
					name, b.Body.SName.NameString, rep.Ticket.SName.NameString, hasFlag(part.Flags, flags.Initial), part.Flags.Bytes)
			}
			expectError(t, reply, errorcode.KDC_ERR_SERVER_NOMATCH)
		})
	}
}

// TestTGSRenewCappedByRenewTill: endtime = min(now + old life, renew-till), and no
// renewal once renew-till has passed (KRB_AP_ERR_TKT_EXPIRED).
func TestTGSRenewCappedByRenewTill(t *testing.T) {
	r := newTestRealm(t)
	t0 := r.clock.Now()
	tgt, tpart := r.login(func(q *messages.ASReq) {
		types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
		q.ReqBody.Till = t0.Add(time.Hour).UTC()
		q.ReqBody.RTime = t0.Add(2 * time.Hour).UTC()
	})
	approx(t, "renewable life", tpart.RenewTill.Sub(tpart.StartTime), 2*time.Hour)
	renew := func(tgt messages.ASRep, tpart messages.EncKDCRepPart) []byte {
		t.Helper()
		b := newTGS(r, tgt, tpart)
		b.Body.SName = krbtgtName()
		b.Body.KDCOptions = ticket.Flags(flags.Renew)
		return b.send()
	}

	r.clock.Advance(50 * time.Minute) // +50m: now + 1h < renew-till
	rep, part := tgsRep(t, renew(tgt, tpart), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	approx(t, "first renewal lifetime", part.EndTime.Sub(part.StartTime), time.Hour)

	r.clock.Advance(55 * time.Minute) // +1h45m: now + 1h > renew-till
	rep, part = tgsRep(t, renew(asASRep(rep), part), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	if !part.EndTime.Equal(tpart.RenewTill) {
		t.Fatalf("second renewal ends %v, want renew-till %v", part.EndTime, tpart.RenewTill)
	}
	if !part.RenewTill.Equal(tpart.RenewTill) {
		t.Fatalf("renew-till moved to %v", part.RenewTill)
	}

	// Two minutes past renew-till, which is also the ticket's end: expired,
	// within the skew or not (RFC 4120 §3.3.3: nothing outlives it).
	r.clock.Advance(tpart.RenewTill.Sub(r.clock.Now()) + 2*time.Minute)
	e := expectError(t, renew(asASRep(rep), part), errorcode.KRB_AP_ERR_TKT_EXPIRED)
	if e.EText != "TGT_EXPIRED" {
		t.Fatalf("e-text %q", e.EText)
	}
	// Well past it.
	r.clock.Advance(10 * time.Minute)
	expectError(t, renew(asASRep(rep), part), errorcode.KRB_AP_ERR_TKT_EXPIRED)

	// A TGT whose renew-till comes before its end (RENEWABLE with rtime < till)
	// can no longer be renewed once renew-till has passed, though it is valid.
	tgt, tpart = r.login(func(q *messages.ASReq) {
		types.SetFlag(&q.ReqBody.KDCOptions, flags.Renewable)
		q.ReqBody.Till = r.clock.Now().Add(3 * time.Hour).UTC()
		q.ReqBody.RTime = r.clock.Now().Add(time.Hour).UTC()
	})
	r.clock.Advance(90 * time.Minute)
	e = expectError(t, renew(tgt, tpart), errorcode.KRB_AP_ERR_TKT_EXPIRED)
	if e.EText != "RENEW_TILL_PASSED" {
		t.Fatalf("e-text %q", e.EText)
	}
}

// TestTGSValidatePostdated: a postdated TGT is invalid until VALIDATEd after its
// starttime (RFC 4120 §2.4, §3.3.3).
func TestTGSValidatePostdated(t *testing.T) {
	r := newTestRealm(t)
	t0 := r.clock.Now()
	tgt, tpart := r.login(func(q *messages.ASReq) {
		types.SetFlag(&q.ReqBody.KDCOptions, flags.AllowPostDate)
		types.SetFlag(&q.ReqBody.KDCOptions, flags.PostDated)
		q.ReqBody.From = t0.Add(time.Hour).UTC()
	})
	if !hasFlag(tpart.Flags, flags.Invalid) || !hasFlag(tpart.Flags, flags.PostDated) {
		t.Fatalf("TGT flags %x: want postdated and invalid", tpart.Flags.Bytes)
	}
	validate := func(t *testing.T) *tgsBuilder {
		b := newTGS(r, tgt, tpart)
		b.t = t
		b.Body.SName = krbtgtName()
		b.Body.KDCOptions = ticket.Flags(flags.Validate)
		return b
	}

	t.Run("validate before starttime", func(t *testing.T) {
		expectError(t, validate(t).send(), errorcode.KRB_AP_ERR_TKT_NYV)
	})
	t.Run("use before starttime", func(t *testing.T) {
		b := newTGS(r, tgt, tpart)
		b.t = t
		expectError(t, b.send(), errorcode.KRB_AP_ERR_TKT_NYV)
	})

	r.clock.Advance(time.Hour)

	t.Run("invalid TGT for a service ticket", func(t *testing.T) {
		b := newTGS(r, tgt, tpart)
		b.t = t
		e := expectError(t, b.send(), errorcode.KRB_AP_ERR_TKT_NYV)
		if e.EText != "TICKET_NOT_VALID" {
			t.Fatalf("e-text %q", e.EText)
		}
	})
	t.Run("validate", func(t *testing.T) {
		rep, part := tgsRep(t, validate(t).send(), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if hasFlag(part.Flags, flags.Invalid) {
			t.Fatal("validated ticket still invalid")
		}
		if !hasFlag(part.Flags, flags.PostDated) {
			t.Error("postdated flag lost")
		}
		if !part.StartTime.Equal(tpart.StartTime) || !part.EndTime.Equal(tpart.EndTime) || !part.AuthTime.Equal(tpart.AuthTime) {
			t.Fatalf("validated times %v–%v (auth %v), want the TGT's %v–%v (auth %v)",
				part.StartTime, part.EndTime, part.AuthTime, tpart.StartTime, tpart.EndTime, tpart.AuthTime)
		}
		etp := r.openTicket(t, rep.Ticket, krbtgtServer)
		if hasFlag(etp.Flags, flags.Invalid) {
			t.Fatal("validated ticket's enc-part still invalid")
		}
		if !bytes.Equal(etp.Key.KeyValue, part.Key.KeyValue) {
			t.Fatal("ticket and reply keys differ")
		}
		// The validated TGT gets service tickets.
		b := newTGS(r, asASRep(rep), part)
		b.t = t
		_, sp := tgsRep(t, b.send(), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if hasFlag(sp.Flags, flags.Invalid) {
			t.Fatal("service ticket invalid")
		}
	})
}

// TestTGSRetransmission: an identical TGS-REQ gets the byte-identical reply
// (RFC 4120 §3.3.2), over either transport.
func TestTGSRetransmission(t *testing.T) {
	r := newTestRealm(t)
	tgt, tpart := r.login(nil)
	b := newTGS(r, tgt, tpart)
	b.SubKey = randomKey(t, 18)
	pkt := b.marshal()
	first := r.exchange(pkt)
	_, p1 := tgsRep(t, first, b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	second := r.exchange(pkt)
	if !bytes.Equal(first, second) {
		t.Fatal("retransmission got a different reply")
	}
	third, ok := r.kdc.Handle(context.Background(), pkt, UDP, nil)
	if !ok || !bytes.Equal(first, third) {
		t.Fatal("retransmission over UDP got a different reply")
	}
	// A new request (new authenticator, same body) is a new exchange.
	r.clock.Advance(time.Second)
	fourth := b.send()
	_, p4 := tgsRep(t, fourth, b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	if bytes.Equal(p1.Key.KeyValue, p4.Key.KeyValue) {
		t.Fatal("a new request got the cached session key")
	}
}

// FuzzTGSReq mutates a valid TGS-REQ: the KDC must never panic, and answer a
// TGS-REQ only with a TGS-REP or a KRB-ERROR.
func FuzzTGSReq(f *testing.F) {
	r := newTestRealm(f)
	tgt, tpart := r.login(forwardableTGT)
	b := newTGS(r, tgt, tpart)
	f.Add(b.marshal())
	b.SubKey = randomKey(f, 18)
	b.Body.Nonce = -5
	types.SetFlag(&b.Body.KDCOptions, flags.Forwardable)
	b.PAData = func(pa []types.PAData) []types.PAData {
		return append(pa, types.PAData{PADataType: paFXFast, PADataValue: []byte{0x30, 0x00}})
	}
	f.Add(b.marshal())
	b.Body.SName = krbtgtName()
	b.Body.KDCOptions = ticket.Flags(flags.Renew)
	f.Add(b.marshal())
	f.Fuzz(func(t *testing.T, pkt []byte) {
		reply, ok := r.kdc.Handle(context.Background(), pkt, UDP, nil)
		if r.kdc.Panics() != 0 {
			t.Fatalf("request panicked: % x", pkt)
		}
		if !ok {
			return
		}
		if len(reply) == 0 {
			t.Fatal("ok with an empty reply")
		}
		want := msgtype.KRB_TGS_REP
		if ticket.MessageType(pkt) == msgtype.KRB_AS_REQ {
			want = msgtype.KRB_AS_REP
		}
		switch ticket.MessageType(reply) {
		case want:
			if want == msgtype.KRB_TGS_REP {
				var rep messages.TGSRep
				if err := rep.Unmarshal(reply); err != nil {
					t.Fatalf("TGS-REP does not decode: %v", err)
				}
			}
		case msgtype.KRB_ERROR:
			var e messages.KRBError
			if err := e.Unmarshal(reply); err != nil {
				t.Fatalf("KRB-ERROR does not decode: %v", err)
			}
		default:
			t.Fatalf("reply tag %d to a request with tag %d", ticket.MessageType(reply), ticket.MessageType(pkt))
		}
	})
}

// A TGS KRB-ERROR names the client from the TGT, as MIT's does: the body of a
// TGS-REQ has no cname.
func TestTGSErrorNamesClient(t *testing.T) {
	r := newTestRealm(t)
	rep, part := r.login(nil)
	b := newTGS(r, rep, part)
	b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/nowhere")
	e := expectError(t, b.send(), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN)
	if e.CRealm != testRealm || len(e.CName.NameString) != 1 || e.CName.NameString[0] != "alice" {
		t.Fatalf("KRB-ERROR client = %v@%s, want alice@%s", e.CName.NameString, e.CRealm, testRealm)
	}
}

// TestTGSConcurrentClients: TGS exchanges of several clients at once, some
// answered with a ticket and some with a KRB-ERROR, each get their own answer:
// the state of an exchange is recycled (tgsRequests) and nothing of one may
// show in another's reply or error (run with -race).
func TestTGSConcurrentClients(t *testing.T) {
	r := newTestRealm(t, func(c *Config) { c.LookasideTTL = -1 })
	users := []string{"alice", "bob", "carol"}
	for _, u := range users[1:] {
		r.add(AddRequest{Name: u, Password: testPassword})
	}
	type job struct {
		user, service string
		session       types.EncryptionKey
		pkt           []byte
	}
	var jobs []job
	for _, u := range users {
		req, key := r.preauthASReq(u, 18)
		rep, part := asRep(t, r.exchange(marshalAS(t, req)), key)
		for _, svc := range []string{"host/localhost", "host/nowhere"} {
			for i := 0; i < 20; i++ {
				b := newTGS(r, rep, part)
				b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, svc)
				b.Body.Nonce = int(1000 + len(jobs))
				jobs = append(jobs, job{user: u, service: svc, session: part.Key, pkt: b.marshal()})
			}
		}
	}
	check := func(j job, reply []byte) error {
		if j.service == "host/nowhere" {
			var e messages.KRBError
			if err := e.Unmarshal(reply); err != nil {
				return fmt.Errorf("%s for %s: not a KRB-ERROR: %v", j.user, j.service, err)
			}
			if e.ErrorCode != errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN || e.CName.PrincipalNameString() != j.user {
				return fmt.Errorf("%s for %s: KRB-ERROR %d for %s", j.user, j.service, e.ErrorCode, e.CName.PrincipalNameString())
			}
			return nil
		}
		var rep messages.TGSRep
		if err := rep.Unmarshal(reply); err != nil {
			return fmt.Errorf("%s for %s: not a TGS-REP: %v", j.user, j.service, err)
		}
		part, err := ticket.DecryptReplyPart(rep.EncPart, j.session, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if err != nil {
			return fmt.Errorf("%s for %s: reply does not open with the user's session key: %v", j.user, j.service, err)
		}
		if rep.CName.PrincipalNameString() != j.user || part.SName.PrincipalNameString() != j.service {
			return fmt.Errorf("%s for %s: reply for %s, ticket for %s", j.user, j.service,
				rep.CName.PrincipalNameString(), part.SName.PrincipalNameString())
		}
		return nil
	}
	ctx := context.Background()
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for n := 0; n < 300; n++ {
				j := jobs[(g*7919+n*31)%len(jobs)]
				reply, ok := r.kdc.Handle(ctx, j.pkt, UDP, nil)
				if !ok {
					errs <- fmt.Errorf("%s for %s: no reply", j.user, j.service)
					return
				}
				if err := check(j, reply); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
