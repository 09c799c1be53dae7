package kdc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// More refusals of S4U, user-to-user and the delegation settings, one row each.
func TestDelegationErrorPaths(t *testing.T) {
	r := newS4URealm(t)
	ctx := context.Background()
	yes := true
	r.modify(ModifyRequest{OKToAuthAsDelegate: &yes, AddDelegateTo: []string{"HTTP/db"}})
	ev, _ := r.evidence()

	// An unkeyed PA-S4U-X509-USER checksum: KRB_AP_ERR_INAPP_CKSUM.
	b := r.s4u2self("alice", nil)
	b.PAData = func(pa []types.PAData) []types.PAData {
		x := der.PAS4UX509User{UserID: der.S4UUserID{Nonce: int64(b.Body.Nonce), CName: types.NewPrincipalName(1, "alice"), CRealm: testRealm},
			Cksum: types.Checksum{CksumType: 7, Checksum: make([]byte, 16)}}
		return append(pa, types.PAData{PADataType: paS4UX509User, PADataValue: der.AppendPAS4UX509User(nil, &x)})
	}
	if e := expectError(t, b.send(), errorcode.KRB_AP_ERR_INAPP_CKSUM); e.EText != "INVALID_S4U2SELF_CHECKSUM" {
		t.Errorf("unkeyed checksum: %q", e.EText)
	}
	// S4U2Self by certificate: not supported, said so.
	b = r.s4u2self("alice", func(x *der.PAS4UX509User) {
		x.UserID.CName = types.PrincipalName{}
		x.UserID.SubjectCertificate = []byte{0x30, 0}
	})
	expectError(t, b.send(), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)

	// A tampered user-to-user second ticket, and one of an unknown kvno.
	tgt, part := r.login(nil)
	u2u := func(second messages.Ticket) *tgsBuilder {
		b := newTGS(r.testRealmEnv, tgt, part)
		b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice")
		b.Body.KDCOptions = ticket.Flags(flags.EncTktInSkey)
		b.Body.AdditionalTickets = []messages.Ticket{second}
		return b
	}
	bad := tgt.Ticket
	bad.EncPart.Cipher = append([]byte(nil), tgt.Ticket.EncPart.Cipher...)
	bad.EncPart.Cipher[30] ^= 1
	if e := expectError(t, u2u(bad).send(), errorcode.KRB_AP_ERR_BAD_INTEGRITY); e.EText != "2ND_TKT_DECRYPT" {
		t.Errorf("tampered second ticket: %q", e.EText)
	}
	old := tgt.Ticket
	old.EncPart.KVNO = 9
	if e := expectError(t, u2u(old).send(), errorcode.KRB_AP_ERR_BADKEYVER); e.EText != "2ND_TKT_KEY_UNKNOWN" {
		t.Errorf("second ticket of kvno 9: %q", e.EText)
	}

	// Disabled users get no S4U tickets, neither to the service nor beyond.
	if _, err := r.admin.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	expectError(t, r.s4u2self("alice", nil).send(), errorcode.KDC_ERR_CLIENT_REVOKED)
	expectError(t, r.s4u2proxy(ev, "HTTP/db").send(), errorcode.KDC_ERR_CLIENT_REVOKED)
	if _, err := r.admin.SetDisabled(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}

	// An evidence ticket that expired while the service's TGT is still good.
	sb := r.s4u2self("alice", nil)
	sb.Body.Till = r.clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
	short, _ := tgsRep(t, sb.send(), sb.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	r.clock.Advance(2 * time.Hour)
	if e := expectError(t, r.s4u2proxy(short.Ticket, "HTTP/db").send(), errorcode.KRB_AP_ERR_TKT_EXPIRED); e.EText != "EVIDENCE_TICKET_EXPIRED" {
		t.Errorf("expired evidence: %q", e.EText)
	}
	r.clock.Set(0)

	// Settings: deleting a target that is not there; too many targets.
	if _, err := r.admin.Modify(ctx, svcName, ModifyRequest{DeleteDelegateTo: []string{"alice"}}); !errors.Is(err, principal.ErrNotFound) {
		t.Errorf("delete a missing target: %v", err)
	}
	var many []string
	for i := 0; i <= MaxDelegateTo; i++ {
		many = append(many, "svc/"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	if _, err := r.admin.Modify(ctx, svcName, ModifyRequest{AddDelegateTo: many}); err == nil {
		t.Error("more than MaxDelegateTo targets accepted")
	}
	if info, err := r.admin.Show(ctx, svcName); err != nil || len(info.DelegateTo) != 1 {
		t.Errorf("a refused modify changed the record: %v %v", info.DelegateTo, err)
	}
}
