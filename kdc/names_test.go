package kdc

import (
	"context"
	"errors"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

func (r *testRealmEnv) alias(name, alias string) {
	r.t.Helper()
	if _, err := r.admin.AliasAdd(context.Background(), name, alias); err != nil {
		r.t.Fatal(err)
	}
}

// TestASAlias: an alias logs in; the reply keeps the alias unless the client
// asks for canonicalization, then it names the principal (RFC 6806 §5).
func TestASAlias(t *testing.T) {
	r := newTestRealm(t)
	r.alias("alice", "al")
	for _, canon := range []bool{false, true} {
		req, key := r.preauthASReq("al", 18)
		if canon {
			req.ReqBody.KDCOptions = ticket.Flags(optCanonicalize)
		}
		rep, _ := asRep(t, r.exchange(marshalAS(t, req)), key)
		want := "al"
		if canon {
			want = "alice"
		}
		if got := rep.CName.PrincipalNameString(); got != want {
			t.Errorf("canonicalize %v: reply cname %s, want %s", canon, got, want)
		}
		if got := r.openTicket(t, rep.Ticket, "krbtgt/"+testRealm+"@"+testRealm).CName.PrincipalNameString(); got != want {
			t.Errorf("canonicalize %v: ticket cname %s, want %s", canon, got, want)
		}
	}
}

// TestASEnterprise: NT-ENTERPRISE "alice@REALM" is alice; "x@example.com" is
// found through an alias of that spelling; unknown ones are unknown clients.
func TestASEnterprise(t *testing.T) {
	r := newTestRealm(t)
	r.alias("alice", `alice\@example.com`)
	for _, tc := range []struct {
		upn  string
		code int32 // 0: success
	}{
		{"alice@" + testRealm, 0},
		{"alice@example.com", 0},
		{"bob@" + testRealm, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{"alice@OTHER.TEST", errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{`alice@`, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
	} {
		req, key := r.preauthASReq("alice", 18)
		req.ReqBody.CName = types.NewPrincipalName(ntEnterprise, "")
		req.ReqBody.CName.NameString = []string{tc.upn}
		req.ReqBody.KDCOptions = ticket.Flags(optCanonicalize)
		reply := r.exchange(marshalAS(t, req))
		if tc.code != 0 {
			expectError(t, reply, tc.code)
			continue
		}
		rep, _ := asRep(t, reply, key)
		if got := rep.CName.PrincipalNameString(); got != "alice" || rep.CName.NameType != nametype.KRB_NT_PRINCIPAL {
			t.Errorf("%s: reply cname %s (type %d), want alice", tc.upn, got, rep.CName.NameType)
		}
	}
}

// TestTGSServiceAlias: a service asked for under an alias is issued under it,
// or under its own name with canonicalize; the ticket is in its key either way.
func TestTGSServiceAlias(t *testing.T) {
	r := newTestRealm(t)
	r.alias("host/localhost", "host/www.krb.test")
	tgt, part := r.login(nil)
	for _, canon := range []bool{false, true} {
		b := newTGS(r, tgt, part)
		b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/www.krb.test")
		if canon {
			b.Body.KDCOptions = ticket.Flags(optCanonicalize)
		}
		rep, enc := tgsRep(t, b.send(), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		want := "host/www.krb.test"
		if canon {
			want = "host/localhost"
		}
		if got := enc.SName.PrincipalNameString(); got != want || rep.Ticket.SName.PrincipalNameString() != want {
			t.Errorf("canonicalize %v: sname %s / ticket %s, want %s", canon, got, rep.Ticket.SName.PrincipalNameString(), want)
		}
		r.openTicket(t, rep.Ticket, "host/localhost@"+testRealm)
	}
}

// TestRefuseAnonymousAndPKINIT: kinit -n and PKINIT-only requests get their
// own codes and texts, not "client not found" or a preauth loop.
func TestRefuseAnonymousAndPKINIT(t *testing.T) {
	r := newTestRealm(t)
	anon := asReq("x")
	anon.ReqBody.CName = types.PrincipalName{NameType: ntWellknown, NameString: []string{"WELLKNOWN", "ANONYMOUS"}}
	anon.ReqBody.KDCOptions = ticket.Flags(optRequestAnonymous)
	if e := expectError(t, r.exchange(marshalAS(t, anon)), errorcode.KDC_ERR_POLICY); e.EText != "ANONYMOUS_NOT_SUPPORTED" {
		t.Errorf("anonymous: e-text %q", e.EText)
	}
	opt := asReq("alice")
	opt.ReqBody.KDCOptions = ticket.Flags(optRequestAnonymous)
	expectError(t, r.exchange(marshalAS(t, opt)), errorcode.KDC_ERR_POLICY)

	pk := asReq("alice")
	pk.PAData = types.PADataSequence{{PADataType: patype.PA_PK_AS_REQ, PADataValue: []byte{0x30, 0}}}
	if e := expectError(t, r.exchange(marshalAS(t, pk)), errorcode.KDC_ERR_PADATA_TYPE_NOSUPP); e.EText != "PKINIT_NOT_SUPPORTED" {
		t.Errorf("pkinit: e-text %q", e.EText)
	}
	// A client that offers PKINIT and a password is served by the password.
	both, key := r.preauthASReq("alice", 18)
	both.PAData = append(both.PAData, types.PAData{PADataType: patype.PA_PK_AS_REQ, PADataValue: []byte{0x30, 0}})
	asRep(t, r.exchange(marshalAS(t, both)), key)
}

// TestAliasAdmin covers the admin refusals: clashes, aliases of krbtgt, other
// realms, deleting a principal as if it were an alias.
func TestAliasAdmin(t *testing.T) {
	r := newTestRealm(t)
	ctx := context.Background()
	r.alias("alice", "al")
	for _, tc := range []struct{ name, alias string }{
		{"host/localhost", "al"},       // alice's alias
		{"host/localhost", "alice"},    // a principal
		{"alice", "al"},                // already
		{"alice", "alice"},             // itself
		{"krbtgt/" + testRealm, "tgs"}, // krbtgt
		{"alice", "al@OTHER.TEST"},     // another realm
		{"nobody", "nb"},               // no such principal
	} {
		if _, err := r.admin.AliasAdd(ctx, tc.name, tc.alias); err == nil {
			t.Errorf("alias add %s %s succeeded", tc.name, tc.alias)
		}
	}
	if _, err := r.admin.AliasDelete(ctx, "alice"); err == nil {
		t.Error("alias delete of a principal succeeded")
	}
	if _, err := r.admin.AliasDelete(ctx, "nothing"); !errors.Is(err, principal.ErrNotFound) {
		t.Errorf("alias delete of nothing: %v", err)
	}
	list, err := r.admin.AliasList(ctx, "")
	if err != nil || len(list) != 1 || list[0] != (AliasInfo{Alias: "al@" + testRealm, Principal: "alice@" + testRealm}) {
		t.Fatalf("alias list: %v %v", list, err)
	}
	if canon, err := r.admin.AliasDelete(ctx, "al"); err != nil || canon != "alice@"+testRealm {
		t.Fatalf("alias delete: %q %v", canon, err)
	}
	req, _ := r.preauthASReq("alice", 18)
	req.ReqBody.CName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "al")
	expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)
	_ = messages.ASReq{}
}

// TestOKAsDelegate: `kdc principal modify --ok-as-delegate` puts the flag in
// the service's tickets, and only in those.
func TestOKAsDelegate(t *testing.T) {
	r := newTestRealm(t)
	tgt, part := r.login(nil)
	get := func() messages.EncKDCRepPart {
		_, enc := tgsRep(t, newTGS(r, tgt, part).send(), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		return enc
	}
	if hasFlag(get().Flags, 13) || hasFlag(part.Flags, 13) {
		t.Fatal("ok-as-delegate set without the setting")
	}
	yes := true
	if _, err := r.admin.Modify(context.Background(), "host/localhost", ModifyRequest{OKAsDelegate: &yes}); err != nil {
		t.Fatal(err)
	}
	if !hasFlag(get().Flags, 13) {
		t.Fatal("no ok-as-delegate in a ticket for an ok-as-delegate service")
	}
}
