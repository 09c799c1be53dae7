package kdc

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

const (
	otherRealm    = "OTHER.TEST"
	thirdRealm    = "THIRD.TEST"
	trustPassword = "a shared inter-realm secret"
)

// newNamedRealm is newTestRealm for another realm, sharing clk with the first.
func newNamedRealm(t testing.TB, realm string, clk *clock.Offset, mutate ...func(*Config)) *testRealmEnv {
	t.Helper()
	st, err := store.Init(context.Background(), filepath.Join(t.TempDir(), "kdc.db"), realm,
		principal.RealmPolicy{MaxLife: 10 * time.Hour, MaxRenew: 7 * 24 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, Now: clk.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &testRealmEnv{t: t, store: st, kdc: k, clock: clk, admin: &LocalAdmin{Store: st}}
	r.add(AddRequest{Name: "host/svc.other.test", RandomKey: true})
	return r
}

func (r *testRealmEnv) trust(req TrustRequest) {
	r.t.Helper()
	if req.Password == "" {
		req.Password = trustPassword
	}
	if _, err := r.admin.TrustAdd(context.Background(), req); err != nil {
		r.t.Fatal(err)
	}
}

// twoRealms: KRB.TEST (with alice) and OTHER.TEST (with host/svc.other.test),
// trusting each other both ways unless told otherwise.
func twoRealms(t *testing.T, otherTrust *TrustRequest) (a, b *testRealmEnv) {
	a = newTestRealm(t)
	b = newNamedRealm(t, otherRealm, a.clock)
	a.trust(TrustRequest{Realm: otherRealm})
	if otherTrust == nil {
		otherTrust = &TrustRequest{}
	}
	otherTrust.Realm = testRealm
	b.trust(*otherTrust)
	return a, b
}

// crossTGT gets alice a cross-realm TGT krbtgt/OTHER.TEST@KRB.TEST from a.
func crossTGT(t *testing.T, a *testRealmEnv) (messages.TGSRep, messages.EncKDCRepPart) {
	t.Helper()
	tgt, tpart := a.login(nil)
	q := newTGS(a, tgt, tpart)
	q.Body.Realm = otherRealm
	q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
	rep, part := tgsRep(t, q.send(), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	want := principal.CrossRealmKrbtgt(otherRealm, testRealm)
	if got := principal.FromPrincipalName(rep.Ticket.SName, rep.Ticket.Realm); !got.Equal(want) {
		t.Fatalf("ticket for %s, want the cross-realm TGT %s", got, want)
	}
	if got := principal.FromPrincipalName(part.SName, part.SRealm); !got.Equal(want) {
		t.Fatalf("reply names %s, want %s", got, want)
	}
	return rep, part
}

func TestCrossRealmServiceTicket(t *testing.T) {
	a, b := twoRealms(t, nil)
	xrep, xpart := crossTGT(t, a)
	// The cross-realm TGT is sealed in the inter-realm key both realms derived
	// from the shared password: OTHER.TEST opens it with its own copy.
	etp := b.openTicket(t, xrep.Ticket, principal.CrossRealmKrbtgt(otherRealm, testRealm).String())
	if etp.CRealm != testRealm || etp.CName.NameString[0] != "alice" {
		t.Fatalf("cross-realm TGT names %v@%s", etp.CName.NameString, etp.CRealm)
	}

	q := newTGS(b, asASRep(xrep), xpart)
	q.Body.Realm = otherRealm
	q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
	q.SubKey = randomKey(t, 18)
	rep, _ := tgsRep(t, q.send(), q.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	if rep.CRealm != testRealm || rep.CName.NameString[0] != "alice" {
		t.Fatalf("reply names %v@%s", rep.CName.NameString, rep.CRealm)
	}
	svc := b.openTicket(t, rep.Ticket, "host/svc.other.test@"+otherRealm)
	if svc.CRealm != testRealm || svc.CName.NameString[0] != "alice" {
		t.Fatalf("service ticket names %v@%s, want the foreign client alice@%s", svc.CName.NameString, svc.CRealm, testRealm)
	}
	if svc.Transited.TRType != 1 || len(svc.Transited.Contents) != 0 {
		t.Fatalf("direct trust: transited %d %q, want type 1 and empty", svc.Transited.TRType, svc.Transited.Contents)
	}
	if !hasFlag(svc.Flags, flags.TransitedPolicyChecked) {
		t.Fatal("ticket of a foreign client lacks TRANSITED-POLICY-CHECKED")
	}
}

func TestCrossRealmReferral(t *testing.T) {
	a, _ := twoRealms(t, nil)
	tgt, tpart := a.login(nil)
	for _, nt := range []int32{nametype.KRB_NT_SRV_HST, nametype.KRB_NT_PRINCIPAL, nametype.KRB_NT_UNKNOWN} {
		// The name is asked of our own realm (kvno host/svc.other.test, or a
		// host with no [domain_realm] entry): canonicalize lets the KDC refer.
		q := newTGS(a, tgt, tpart)
		q.Body.SName = types.NewPrincipalName(nt, "host/svc.other.test")
		types.SetFlag(&q.Body.KDCOptions, flags.Canonicalize)
		rep, part := tgsRep(t, q.send(), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		want := principal.CrossRealmKrbtgt(otherRealm, testRealm)
		if got := principal.FromPrincipalName(rep.Ticket.SName, rep.Ticket.Realm); !got.Equal(want) {
			t.Fatalf("name type %d: referral ticket for %s, want %s", nt, got, want)
		}
		if got := principal.FromPrincipalName(part.SName, part.SRealm); !got.Equal(want) {
			t.Fatalf("name type %d: reply names %s, want %s", nt, got, want)
		}
	}
	for name, edit := range map[string]func(*tgsBuilder){
		"no canonicalize": func(*tgsBuilder) {},
		"no trusted domain": func(q *tgsBuilder) {
			types.SetFlag(&q.Body.KDCOptions, flags.Canonicalize)
			q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.nowhere.test")
		},
		"not host-based": func(q *tgsBuilder) {
			types.SetFlag(&q.Body.KDCOptions, flags.Canonicalize)
			q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_ENTERPRISE, "host/svc.other.test")
		},
	} {
		q := newTGS(a, tgt, tpart)
		q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
		edit(q)
		if e := expectError(t, q.send(), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN); e.EText != "LOOKING_UP_SERVER" {
			t.Fatalf("%s: e-text %q", name, e.EText)
		}
	}
}

func TestCrossRealmUnknownRealm(t *testing.T) {
	a, b := twoRealms(t, nil)
	tgt, tpart := a.login(nil)
	q := newTGS(a, tgt, tpart)
	q.Body.Realm = "NOWHERE.TEST"
	if e := expectError(t, q.send(), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN); e.EText != "SERVER_REALM_UNKNOWN" {
		t.Fatalf("e-text %q", e.EText)
	}

	// A third realm that OTHER.TEST holds no key with presents a TGT for it.
	c := newNamedRealm(t, thirdRealm, a.clock)
	c.add(AddRequest{Name: "carol", Password: testPassword})
	c.add(AddRequest{Name: "krbtgt/" + otherRealm, Password: trustPassword}) // C's side only
	xrep, xpart := issueFor(t, c, "carol@"+thirdRealm, principal.CrossRealmKrbtgt(otherRealm, thirdRealm), nil)
	q = newTGS(b, asASRep(xrep), xpart)
	q.Body.Realm = otherRealm
	q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
	if e := expectError(t, q.send(), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN); e.EText != "NO_TRUST_WITH_REALM" {
		t.Fatalf("e-text %q", e.EText)
	}
}

func TestCrossRealmKeyErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		other  TrustRequest
		code   int32
		status string
	}{
		{"wrong inter-realm key", TrustRequest{Password: "not the shared secret at all"}, errorcode.KRB_AP_ERR_BAD_INTEGRITY, "INTER_REALM_KEY_MISMATCH"},
		{"kvno mismatch", TrustRequest{KVNO: 2}, errorcode.KRB_AP_ERR_BADKEYVER, "INTER_REALM_KVNO_UNKNOWN"},
		{"no common enctype", TrustRequest{Enctypes: []int32{17}}, errorcode.KRB_AP_ERR_NOKEY, "INTER_REALM_ETYPE_UNKNOWN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := twoRealms(t, &c.other)
			xrep, xpart := crossTGT(t, a)
			q := newTGS(b, asASRep(xrep), xpart)
			q.Body.Realm = otherRealm
			q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
			if e := expectError(t, q.send(), c.code); e.EText != c.status {
				t.Fatalf("e-text %q, want %q", e.EText, c.status)
			}
		})
	}
}

// issueFor seals, in realm r's copy of the key of server, a TGT for client
// with the given transited contents, as r's KDC (or a lying one) would.
func issueFor(t *testing.T, r *testRealmEnv, client string, server principal.Name, transited []byte) (messages.TGSRep, messages.EncKDCRepPart) {
	t.Helper()
	rec, err := r.store.Get(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := rec.FindKey(18, 0)
	cn := principal.MustParse(client)
	session := randomKey(t, 18)
	now := r.clock.Now().UTC()
	if transited == nil {
		transited = []byte{}
	}
	part := messages.EncTicketPart{
		Flags: ticket.Flags(), Key: session, CRealm: cn.Realm, CName: cn.PrincipalName(),
		Transited: messages.TransitedEncoding{TRType: 1, Contents: transited},
		AuthTime:  now, StartTime: now, EndTime: now.Add(time.Hour),
	}
	tkt, err := ticket.SealTicket(server.Realm, server.PrincipalName(), part, key.EncryptionKey(), int(key.KVNO))
	if err != nil {
		t.Fatal(err)
	}
	return messages.TGSRep{KDCRepFields: messages.KDCRepFields{CRealm: cn.Realm, CName: cn.PrincipalName(), Ticket: tkt}},
		messages.EncKDCRepPart{Key: session}
}

func TestCrossRealmRefusesOurOwnClients(t *testing.T) {
	_, b := twoRealms(t, nil)
	// KRB.TEST, trusted for its own users, claims a user of OTHER.TEST.
	b.add(AddRequest{Name: "bob", Password: testPassword})
	xrep, xpart := issueFor(t, b, "bob@"+otherRealm, principal.CrossRealmKrbtgt(otherRealm, testRealm), nil)
	q := newTGS(b, asASRep(xrep), xpart)
	q.Body.Realm = otherRealm
	q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
	if e := expectError(t, q.send(), errorcode.KDC_ERR_POLICY); e.EText != "CROSS_REALM_LOCAL_CLIENT" {
		t.Fatalf("e-text %q", e.EText)
	}
}

func TestCrossRealmTransit(t *testing.T) {
	// KRB.TEST -> OTHER.TEST -> THIRD.TEST: alice crosses OTHER.TEST to reach
	// a service of THIRD.TEST, which trusts OTHER.TEST directly.
	run := func(t *testing.T, transit []string) ([]byte, *testRealmEnv) {
		t.Helper()
		a, b := twoRealms(t, nil)
		c := newNamedRealm(t, thirdRealm, a.clock, func(cfg *Config) { cfg.TransitRealms = transit })
		c.add(AddRequest{Name: "host/svc.third.test", RandomKey: true})
		b.trust(TrustRequest{Realm: thirdRealm, Direction: TrustOut})
		c.trust(TrustRequest{Realm: otherRealm, Direction: TrustIn})

		xrep, xpart := crossTGT(t, a)
		q := newTGS(b, asASRep(xrep), xpart)
		q.Body.Realm = thirdRealm
		q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.third.test")
		rep2, part2 := tgsRep(t, q.send(), xpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if got := principal.FromPrincipalName(rep2.Ticket.SName, rep2.Ticket.Realm); !got.Equal(principal.CrossRealmKrbtgt(thirdRealm, otherRealm)) {
			t.Fatalf("OTHER.TEST issued %s", got)
		}
		q = newTGS(c, asASRep(rep2), part2)
		q.Body.Realm = thirdRealm
		q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.third.test")
		return q.send(), c
	}
	t.Run("refused by default", func(t *testing.T) {
		reply, _ := run(t, nil)
		e := expectError(t, reply, errorcode.KDC_ERR_POLICY)
		if e.EText != "BAD_TRANSIT" {
			t.Fatalf("e-text %q", e.EText)
		}
	})
	t.Run("allowed transit realm", func(t *testing.T) {
		reply, c := run(t, []string{otherRealm})
		var rep messages.TGSRep
		if err := rep.Unmarshal(reply); err != nil {
			expectError(t, reply, 0)
		}
		svc := c.openTicket(t, rep.Ticket, "host/svc.third.test@"+thirdRealm)
		if svc.CRealm != testRealm || string(svc.Transited.Contents) != otherRealm {
			t.Fatalf("service ticket for %s@%s with transited %q, want alice@%s via %s",
				svc.CName.NameString, svc.CRealm, svc.Transited.Contents, testRealm, otherRealm)
		}
	})
}

func TestCrossRealmTransitedFieldChecked(t *testing.T) {
	_, b := twoRealms(t, nil)
	for _, c := range []struct {
		name, transited string
	}{
		{"untrusted realm on the path", "EVIL.TEST"},
		{"unnamed hierarchy", ","},
		{"path through ourselves", otherRealm},
	} {
		xrep, xpart := issueFor(t, b, "alice@"+testRealm, principal.CrossRealmKrbtgt(otherRealm, testRealm), []byte(c.transited))
		q := newTGS(b, asASRep(xrep), xpart)
		q.Body.Realm = otherRealm
		q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/svc.other.test")
		if e := expectError(t, q.send(), errorcode.KDC_ERR_POLICY); e.EText != "BAD_TRANSIT" {
			t.Fatalf("%s: e-text %q", c.name, e.EText)
		}
	}
}

func TestTrustAdmin(t *testing.T) {
	a := newTestRealm(t)
	ctx := context.Background()
	if _, err := a.admin.TrustAdd(ctx, TrustRequest{Realm: otherRealm, Password: "short"}); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("short password: %v", err)
	}
	for _, bad := range []string{"", testRealm, "A/B", "A@B"} {
		if _, err := a.admin.TrustAdd(ctx, TrustRequest{Realm: bad, Password: trustPassword}); err == nil {
			t.Fatalf("realm %q accepted", bad)
		}
	}
	if _, err := a.admin.TrustAdd(ctx, TrustRequest{Realm: otherRealm, Password: trustPassword, Direction: "sideways"}); err == nil {
		t.Fatal("direction sideways accepted")
	}
	infos, err := a.admin.TrustAdd(ctx, TrustRequest{Realm: otherRealm, Password: trustPassword})
	if err != nil || len(infos) != 2 {
		t.Fatalf("TrustAdd: %v, %v", infos, err)
	}
	if _, err := a.admin.TrustAdd(ctx, TrustRequest{Realm: otherRealm, Password: trustPassword, Direction: TrustIn}); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	a.trust(TrustRequest{Realm: thirdRealm, Direction: TrustIn})
	list, err := a.admin.TrustList(ctx)
	if err != nil || len(list) != 2 || list[0].Realm != otherRealm || list[0].Direction() != TrustBoth || list[1].Direction() != TrustIn {
		t.Fatalf("TrustList: %+v, %v", list, err)
	}
	// MIT's addprinc krbtgt/OTHER.TEST@KRB.TEST with the same password: the default salt.
	rec, _ := a.store.Get(ctx, principal.CrossRealmKrbtgt(otherRealm, testRealm))
	if rec.Keys[0].Salt != testRealm+"krbtgt"+otherRealm || rec.KVNO() != 1 {
		t.Fatalf("salt %q kvno %d", rec.Keys[0].Salt, rec.KVNO())
	}
	deleted, err := a.admin.TrustDelete(ctx, otherRealm, TrustOut)
	if err != nil || len(deleted) != 1 {
		t.Fatalf("TrustDelete out: %v, %v", deleted, err)
	}
	if _, err := a.admin.TrustDelete(ctx, otherRealm, TrustOut); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := a.admin.TrustDelete(ctx, otherRealm, TrustBoth); err != nil {
		t.Fatal(err)
	}
}

func TestCrossRealmDisabledTrust(t *testing.T) {
	a, _ := twoRealms(t, nil)
	if _, err := a.admin.SetDisabled(context.Background(), "krbtgt/"+otherRealm, true); err != nil {
		t.Fatal(err)
	}
	tgt, tpart := a.login(nil)
	q := newTGS(a, tgt, tpart)
	q.Body.Realm = otherRealm
	if e := expectError(t, q.send(), errorcode.KDC_ERR_POLICY); e.EText != "SERVER_DISABLED" {
		t.Fatalf("e-text %q", e.EText)
	}
}

func TestCrossRealmReferralDomainRealms(t *testing.T) {
	a := newTestRealm(t, func(c *Config) {
		c.DomainRealms = map[string]string{".Elsewhere.NET": otherRealm, "local.elsewhere.net": testRealm, ".nowhere.net": "NOWHERE.TEST"}
	})
	a.trust(TrustRequest{Realm: otherRealm})
	tgt, tpart := a.login(nil)
	ask := func(host string) []byte {
		q := newTGS(a, tgt, tpart)
		q.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/"+host)
		types.SetFlag(&q.Body.KDCOptions, flags.Canonicalize)
		return q.send()
	}
	rep, _ := tgsRep(t, ask("web.elsewhere.net"), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	if got := principal.FromPrincipalName(rep.Ticket.SName, rep.Ticket.Realm); !got.Equal(principal.CrossRealmKrbtgt(otherRealm, testRealm)) {
		t.Fatalf("[domain_realm] referral: ticket for %s", got)
	}
	// Mapped to this realm, or to a realm without a trust: no referral.
	for _, host := range []string{"local.elsewhere.net", "web.nowhere.net"} {
		if e := expectError(t, ask(host), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN); e.EText != "LOOKING_UP_SERVER" {
			t.Fatalf("%s: e-text %q", host, e.EText)
		}
	}
}
