package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

const (
	otherRealmName = "OTHER.TEST"
	trustPW        = "a shared inter-realm secret"
)

// twoOwnRealms starts KRB.TEST (alice) and OTHER.TEST (host/svc.other.test), which trust each other both ways,
// and a client configuration that knows both realms' KDCs.
func twoOwnRealms(t *testing.T) (a, b *testenv.InProcRealm, cfg *Config) {
	t.Helper()
	a = startOwnRealm(t)
	b = testenv.NewInProcRealm(t, testenv.InProcOptions{Name: otherRealmName,
		Principals: []testenv.Principal{{Name: "host/svc.other.test", RandomKey: true}}})
	trust(t, a, otherRealmName, kdc.TrustBoth)
	trust(t, b, ownRealmName, kdc.TrustBoth)
	cfg = &Config{Realm: ownRealmName, Timeout: 5 * time.Second,
		KDCs:        map[string][]string{ownRealmName: {a.Addr}, otherRealmName: {b.Addr}},
		DomainRealm: map[string]string{".other.test": otherRealmName}}
	return a, b, cfg
}

func trust(t *testing.T, r *testenv.InProcRealm, other, dir string) {
	t.Helper()
	if _, err := r.Admin.TrustAdd(context.Background(), kdc.TrustRequest{Realm: other, Direction: dir, Password: trustPW}); err != nil {
		t.Fatal(err)
	}
}

func svcName(realm string) principal.Name {
	return principal.Name{Type: nametype.KRB_NT_SRV_HST, Components: []string{"host", "svc.other.test"}, Realm: realm}
}

func TestServiceTicketCrossRealm(t *testing.T) {
	_, b, cfg := twoOwnRealms(t)
	tgt := getTGT(t, cfg)
	for _, c := range []struct {
		name  string
		realm string
	}{
		{"explicit realm", otherRealmName}, // as [domain_realm] or svc@OTHER.TEST gives it
		{"referral realm", ""},             // kvno -S host svc.other.test with no [domain_realm] entry
		{"asked of our realm", ownRealmName},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, events := newTestClient(t, cfg)
			res, err := cl.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: tgt, Server: svcName(c.realm), Forwardable: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.CrossRealmTGTs) != 1 || !res.CrossRealmTGTs[0].Server.Equal(principal.CrossRealmKrbtgt(otherRealmName, ownRealmName)) {
				t.Fatalf("cross-realm TGTs %v", res.CrossRealmTGTs)
			}
			if got := res.Credential.Server; !got.Equal(svcName(otherRealmName)) {
				t.Fatalf("ticket for %s", got)
			}
			if len(res.Realms) != 2 || res.Realms[1] != otherRealmName {
				t.Fatalf("realms %v", res.Realms)
			}
			// The service ticket opens with OTHER.TEST's service key and names alice of KRB.TEST.
			tkt := decodeTicketDER(t, res.Credential.Ticket)
			etp, err := ticket.OpenTicket(tkt, ownKey(t, b, "host/svc.other.test", tkt.EncPart.EType, tkt.EncPart.KVNO))
			if err != nil {
				t.Fatal(err)
			}
			if etp.CRealm != ownRealmName || etp.CName.NameString[0] != "alice" {
				t.Fatalf("ticket names %v@%s", etp.CName.NameString, etp.CRealm)
			}
			var last string
			for _, ev := range *events {
				if ev.Sent {
					last = ev.Realm
				}
			}
			if last != otherRealmName {
				t.Fatalf("last request went to %s", last)
			}
		})
	}
}

func TestServiceTicketCachedCrossRealmTGT(t *testing.T) {
	_, _, cfg := twoOwnRealms(t)
	tgt := getTGT(t, cfg)
	cl, _ := newTestClient(t, cfg)
	first, err := cl.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: tgt, Server: svcName(otherRealmName)})
	if err != nil {
		t.Fatal(err)
	}
	cl2, events := newTestClient(t, cfg)
	_, err = cl2.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: tgt, Server: svcName(otherRealmName),
		CachedTGT: func(realm string) (ticket.Credential, bool) {
			return first.CrossRealmTGTs[0], realm == otherRealmName
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range *events {
		if ev.Realm == ownRealmName {
			t.Fatal("asked KRB.TEST again although the cross-realm TGT was cached")
		}
	}
}

func TestServiceTicketCrossRealmErrors(t *testing.T) {
	_, b, cfg := twoOwnRealms(t)
	tgt := getTGT(t, cfg)
	cl, _ := newTestClient(t, cfg)
	// A realm nobody trusts.
	_, err := cl.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: tgt,
		Server: principal.Name{Type: nametype.KRB_NT_SRV_HST, Components: []string{"host", "x.nowhere.test"}, Realm: "NOWHERE.TEST"}})
	if !IsCode(err, errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN) {
		t.Fatalf("unknown realm: %v", err)
	}
	// OTHER.TEST stops trusting us: its KDC no longer opens the cross-realm TGT.
	if _, err := b.Admin.TrustDelete(context.Background(), ownRealmName, kdc.TrustIn); err != nil {
		t.Fatal(err)
	}
	_, err = cl.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: tgt, Server: svcName(otherRealmName)})
	if !IsCode(err, errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN) {
		t.Fatalf("no trust: %v", err)
	}
}

// TestServiceTicketReferralLoop: realm TEST refers host/svc.b.test to B.TEST (the host's domain), and B.TEST,
// which does not hold it either, refers it back to TEST (the parent domain, a realm it trusts): the client stops
// with ErrReferralLoop instead of going round.
func TestServiceTicketReferralLoop(t *testing.T) {
	a := testenv.NewInProcRealm(t, testenv.InProcOptions{Name: "TEST",
		Principals: []testenv.Principal{{Name: "alice", Password: "alicepw"}}})
	b := testenv.NewInProcRealm(t, testenv.InProcOptions{Name: "B.TEST", Principals: []testenv.Principal{}})
	trust(t, a, "B.TEST", kdc.TrustBoth)
	trust(t, b, "TEST", kdc.TrustBoth)
	cfg := &Config{Realm: "TEST", Timeout: 5 * time.Second, KDCs: map[string][]string{"TEST": {a.Addr}, "B.TEST": {b.Addr}}}
	c, _ := newTestClient(t, cfg)
	login, err := c.Login(tgsCtx(t), ASRequest{Client: principal.Name{Components: []string{"alice"}, Realm: "TEST", Type: nametype.KRB_NT_PRINCIPAL},
		Secret: PasswordSecret("alicepw")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: login.Credential,
		Server: principal.Name{Type: nametype.KRB_NT_SRV_HST, Components: []string{"host", "svc.b.test"}}})
	if !errors.Is(err, ErrReferralLoop) {
		t.Fatalf("want ErrReferralLoop, got %v", err)
	}
}

func TestReferralPathBounded(t *testing.T) {
	p := newReferralPath("R0")
	for i := 1; i <= MaxReferralHops; i++ {
		if err := p.advance("R" + string(rune('A'+i))); err != nil {
			t.Fatalf("hop %d: %v", i, err)
		}
	}
	if err := p.advance("ONE.MORE"); !errors.Is(err, ErrTooManyReferrals) {
		t.Fatalf("hop %d: %v, want ErrTooManyReferrals", MaxReferralHops+1, err)
	}
	q := newReferralPath("A")
	if err := q.advance("B"); err != nil {
		t.Fatal(err)
	}
	if err := q.advance("A"); !errors.Is(err, ErrReferralLoop) {
		t.Fatalf("back to A: %v, want ErrReferralLoop", err)
	}
}

// TestServiceTicketCrossRealmAlias: after a referral the other realm is asked with canonicalize, and answers
// for an alias with the service's canonical name [RFC 6806 §6], which the client accepts.
func TestServiceTicketCrossRealmAlias(t *testing.T) {
	_, b, cfg := twoOwnRealms(t)
	if _, err := b.Admin.AliasAdd(context.Background(), "host/svc.other.test", "host/alias.other.test"); err != nil {
		t.Fatal(err)
	}
	tgt := getTGT(t, cfg)
	cl, _ := newTestClient(t, cfg)
	res, err := cl.ServiceTicket(tgsCtx(t), ServiceTicketRequest{TGT: tgt,
		Server: principal.Name{Type: nametype.KRB_NT_SRV_HST, Components: []string{"host", "alias.other.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Credential.Server; !got.Equal(svcName(otherRealmName)) {
		t.Fatalf("ticket for %s, want the canonical %s", got, svcName(otherRealmName))
	}
}
