package kdc

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

const svcName = "host/localhost"

// s4uRealm has alice, host/localhost (the impersonating service, logged in
// with a forwardable TGT) and HTTP/db (the back end).
type s4uRealm struct {
	*testRealmEnv
	tgt  messages.ASRep
	part messages.EncKDCRepPart
}

func newS4URealm(t *testing.T) *s4uRealm {
	r := newTestRealm(t)
	r.add(AddRequest{Name: "HTTP/db", RandomKey: true})
	req, key := r.preauthASReq(svcName, 18)
	req.ReqBody.CName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, svcName)
	req.ReqBody.KDCOptions = ticket.Flags(flags.Forwardable)
	tgt, part := asRep(t, r.exchange(marshalAS(t, req)), key)
	return &s4uRealm{r, tgt, part}
}

func (r *s4uRealm) modify(m ModifyRequest) {
	r.t.Helper()
	if _, err := r.admin.Modify(context.Background(), svcName, m); err != nil {
		r.t.Fatal(err)
	}
}

func keyedSum(t testing.TB, key types.EncryptionKey, usage uint32, data []byte) types.Checksum {
	t.Helper()
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := et.GetChecksumHash(key.KeyValue, data, usage)
	if err != nil {
		t.Fatal(err)
	}
	return types.Checksum{CksumType: et.GetHashID(), Checksum: sum}
}

// s4u2self builds the service's S4U2Self request for user, as MIT sends it:
// PA-S4U-X509-USER signed with the subkey (with the reply-key-usage option)
// and PA-FOR-USER; edit changes the PA-S4U-X509-USER before it is signed.
func (r *s4uRealm) s4u2self(user string, edit func(*der.PAS4UX509User)) *tgsBuilder {
	b := newTGS(r.testRealmEnv, r.tgt, r.part)
	b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, svcName)
	b.Body.KDCOptions = ticket.Flags(flags.Forwardable)
	b.SubKey = randomKey(r.t, 18)
	un := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, user)
	x := der.PAS4UX509User{UserID: der.S4UUserID{Nonce: int64(b.Body.Nonce), CName: un, CRealm: testRealm,
		Options: ticket.Flags(der.S4UOptUseReplyKeyUsage)}}
	if edit != nil {
		edit(&x)
	}
	x.Cksum = keyedSum(r.t, b.SubKey, usageS4UX509Request, der.AppendS4UUserID(nil, &x.UserID))
	xv := der.AppendPAS4UX509User(nil, &x)
	fu := forUser(un, testRealm, r.part.Key)
	b.PAData = func(pa []types.PAData) []types.PAData {
		return append(pa, types.PAData{PADataType: paS4UX509User, PADataValue: xv}, types.PAData{PADataType: paForUser, PADataValue: fu})
	}
	return b
}

// forUser is PA-FOR-USER with the HMAC-MD5 checksum in the session key.
func forUser(user types.PrincipalName, realm string, session types.EncryptionKey) []byte {
	var data []byte
	data = binary.LittleEndian.AppendUint32(data, uint32(user.NameType))
	for _, c := range user.NameString {
		data = append(data, c...)
	}
	data = append(append(data, realm...), "Kerberos"...)
	fu := der.PAForUser{UserName: user, UserRealm: realm, AuthPackage: "Kerberos",
		Cksum: types.Checksum{CksumType: cksumHMACMD5, Checksum: hmacMD5Checksum(session.KeyValue, usageForUserCksum, data)}}
	return der.AppendPAForUser(nil, &fu)
}

// evidence runs S4U2Self for alice and returns the ticket.
func (r *s4uRealm) evidence() (messages.Ticket, messages.EncTicketPart) {
	r.t.Helper()
	b := r.s4u2self("alice", nil)
	rep, enc := tgsRep(r.t, b.send(), b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	if got := rep.CName.PrincipalNameString(); got != "alice" {
		r.t.Fatalf("S4U2Self reply client %s", got)
	}
	// The reply's PA-S4U-X509-USER, signed at usage 27 in the subkey.
	var x der.PAS4UX509User
	found := false
	for _, pa := range rep.PAData {
		if pa.PADataType == paS4UX509User {
			if err := der.DecodePAS4UX509User(pa.PADataValue, &x); err != nil {
				r.t.Fatal(err)
			}
			found = true
		}
	}
	if !found || uint32(x.UserID.Nonce) != uint32(b.Body.Nonce) {
		r.t.Fatalf("S4U2Self reply padata %+v", rep.PAData)
	}
	if want := keyedSum(r.t, b.SubKey, usageS4UX509Reply, x.RawUserID); string(want.Checksum) != string(x.Cksum.Checksum) {
		r.t.Fatal("reply PA-S4U-X509-USER checksum does not verify at usage 27")
	}
	part := r.openTicket(r.t, rep.Ticket, svcName+"@"+testRealm)
	if part.CName.PrincipalNameString() != "alice" || !hasFlag(enc.Flags, flags.Forwardable) != !hasFlag(part.Flags, flags.Forwardable) {
		r.t.Fatalf("S4U2Self ticket: %+v", part)
	}
	return rep.Ticket, part
}

func (r *s4uRealm) s4u2proxy(evidence messages.Ticket, target string) *tgsBuilder {
	b := newTGS(r.testRealmEnv, r.tgt, r.part)
	b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_INST, target)
	b.Body.KDCOptions = ticket.Flags(flags.Forwardable, optCNameInAddl)
	b.Body.AdditionalTickets = []messages.Ticket{evidence}
	return b
}

// TestS4U: a service impersonates alice to itself, then to HTTP/db, under
// MIT's rules; every refusal has MIT's code.
func TestS4U(t *testing.T) {
	r := newS4URealm(t)
	yes, no := true, false

	// Without settings: S4U2Self works and is forwardable (no targets), and
	// S4U2Proxy is refused: HTTP/db is not on the list.
	ev, part := r.evidence()
	if !hasFlag(part.Flags, flags.Forwardable) {
		t.Fatal("S4U2Self ticket of a service without targets is not forwardable")
	}
	e := expectError(t, r.s4u2proxy(ev, "HTTP/db").send(), errorcode.KDC_ERR_BADOPTION)
	if e.EText != "NOT_ALLOWED_TO_DELEGATE" {
		t.Fatalf("e-text %q", e.EText)
	}

	// With a target but not ok-to-auth-as-delegate: S4U2Self tickets are not
	// forwardable, so they are no evidence.
	r.modify(ModifyRequest{AddDelegateTo: []string{"HTTP/db"}})
	ev, part = r.evidence()
	if hasFlag(part.Flags, flags.Forwardable) {
		t.Fatal("S4U2Self ticket forwardable without ok-to-auth-as-delegate")
	}
	e = expectError(t, r.s4u2proxy(ev, "HTTP/db").send(), errorcode.KDC_ERR_BADOPTION)
	if e.EText != "EVIDENCE_TKT_NOT_FORWARDABLE" {
		t.Fatalf("e-text %q", e.EText)
	}

	// ok-to-auth-as-delegate: the whole chain.
	r.modify(ModifyRequest{OKToAuthAsDelegate: &yes})
	ev, _ = r.evidence()
	b := r.s4u2proxy(ev, "HTTP/db")
	rep, enc := tgsRep(t, b.send(), r.part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	got := r.openTicket(t, rep.Ticket, "HTTP/db@"+testRealm)
	if got.CName.PrincipalNameString() != "alice" || rep.CName.PrincipalNameString() != "alice" || enc.SName.PrincipalNameString() != "HTTP/db" {
		t.Fatalf("S4U2Proxy ticket for %s as %s", enc.SName.PrincipalNameString(), got.CName.PrincipalNameString())
	}

	// Refusals of S4U2Proxy.
	for _, tc := range []struct {
		name   string
		edit   func(*tgsBuilder)
		code   int32
		status string
	}{
		{"no evidence", func(b *tgsBuilder) { b.Body.AdditionalTickets = nil }, errorcode.KDC_ERR_BADOPTION, "NO_2ND_TKT"},
		{"to a TGS", func(b *tgsBuilder) {
			b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/"+testRealm)
		}, errorcode.KDC_ERR_POLICY, "NOT_ALLOWED_TO_DELEGATE"},
		{"to another service", func(b *tgsBuilder) { b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "alice") }, errorcode.KDC_ERR_BADOPTION, "NOT_ALLOWED_TO_DELEGATE"},
		{"with renew", func(b *tgsBuilder) { types.SetFlag(&b.Body.KDCOptions, flags.Renew) }, errorcode.KDC_ERR_BADOPTION, ""},
		{"evidence for another service", func(b *tgsBuilder) {
			b.Body.AdditionalTickets = []messages.Ticket{r.tgt.Ticket}
		}, errorcode.KDC_ERR_SERVER_NOMATCH, "EVIDENCE_TICKET_MISMATCH"},
		{"tampered evidence", func(b *tgsBuilder) {
			t2 := ev
			t2.EncPart.Cipher = append([]byte(nil), ev.EncPart.Cipher...)
			t2.EncPart.Cipher[20] ^= 1
			b.Body.AdditionalTickets = []messages.Ticket{t2}
		}, errorcode.KRB_AP_ERR_BAD_INTEGRITY, "EVIDENCE_TICKET_DECRYPT"},
	} {
		b := r.s4u2proxy(ev, "HTTP/db")
		tc.edit(b)
		e := expectError(t, b.send(), tc.code)
		if tc.status != "" && e.EText != tc.status {
			t.Errorf("%s: e-text %q, want %q", tc.name, e.EText, tc.status)
		}
	}

	// Clearing the settings takes the right away again.
	r.modify(ModifyRequest{OKToAuthAsDelegate: &no, ClearDelegateTo: true})
	expectError(t, r.s4u2proxy(ev, "HTTP/db").send(), errorcode.KDC_ERR_BADOPTION)
}

// TestS4U2SelfRefusals: MIT's codes for bad S4U2Self requests.
func TestS4U2SelfRefusals(t *testing.T) {
	r := newS4URealm(t)
	for _, tc := range []struct {
		name   string
		build  func() *tgsBuilder
		code   int32
		status string
	}{
		{"unknown user", func() *tgsBuilder { return r.s4u2self("nobody", nil) }, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "UNKNOWN_S4U2SELF_PRINCIPAL"},
		{"other realm", func() *tgsBuilder {
			return r.s4u2self("alice", func(x *der.PAS4UX509User) { x.UserID.CRealm = "OTHER.TEST" })
		}, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "UNKNOWN_S4U2SELF_PRINCIPAL"},
		{"no user", func() *tgsBuilder {
			return r.s4u2self("alice", func(x *der.PAS4UX509User) { x.UserID.CName = types.PrincipalName{} })
		}, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "INVALID_S4U2SELF_REQUEST"},
		{"wrong nonce", func() *tgsBuilder {
			return r.s4u2self("alice", func(x *der.PAS4UX509User) { x.UserID.Nonce++ })
		}, errorcode.KRB_AP_ERR_MODIFIED, "INVALID_S4U2SELF_CHECKSUM"},
		{"bad checksum", func() *tgsBuilder {
			b := r.s4u2self("alice", nil)
			inner := b.PAData
			b.PAData = func(pa []types.PAData) []types.PAData {
				pa = inner(pa)
				v := append([]byte(nil), pa[1].PADataValue...)
				v[len(v)-1] ^= 1
				pa[1].PADataValue = v
				return pa
			}
			return b
		}, errorcode.KRB_AP_ERR_MODIFIED, "INVALID_S4U2SELF_CHECKSUM"},
		{"garbage PA-S4U-X509-USER", func() *tgsBuilder {
			b := r.s4u2self("alice", nil)
			b.PAData = func(pa []types.PAData) []types.PAData {
				return append(pa, types.PAData{PADataType: paS4UX509User, PADataValue: []byte{0x30, 0x03, 0x01}})
			}
			return b
		}, errorcode.KRB_ERR_GENERIC, "DECODE_PA_S4U_X509_USER"},
		{"for another service", func() *tgsBuilder {
			b := r.s4u2self("alice", nil)
			b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "HTTP/db")
			return b
		}, errorcode.KRB_AP_ERR_BADMATCH, "INVALID_S4U2SELF_REQUEST_SERVER_MISMATCH"},
		{"PA-FOR-USER alone, bad checksum", func() *tgsBuilder {
			b := r.s4u2self("alice", nil)
			b.PAData = func(pa []types.PAData) []types.PAData {
				return append(pa, types.PAData{PADataType: paForUser, PADataValue: forUser(types.NewPrincipalName(1, "alice"), testRealm, randomKey(t, 18))})
			}
			return b
		}, errorcode.KRB_AP_ERR_MODIFIED, "INVALID_S4U2SELF_CHECKSUM"},
	} {
		e := expectError(t, tc.build().send(), tc.code)
		if e.EText != tc.status {
			t.Errorf("%s: e-text %q, want %q", tc.name, e.EText, tc.status)
		}
	}
	// PA-FOR-USER alone (Windows, Heimdal) is S4U2Self too.
	b := r.s4u2self("alice", nil)
	b.PAData = func(pa []types.PAData) []types.PAData {
		return append(pa, types.PAData{PADataType: paForUser, PADataValue: forUser(types.NewPrincipalName(1, "alice"), testRealm, r.part.Key)})
	}
	rep, _ := tgsRep(t, b.send(), b.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY)
	if rep.CName.PrincipalNameString() != "alice" || len(rep.PAData) != 0 {
		t.Fatalf("PA-FOR-USER S4U2Self: client %s padata %v", rep.CName.PrincipalNameString(), rep.PAData)
	}
}

// TestU2U: a ticket for alice sealed in the session key of her TGT; refusals
// for a missing, mismatched or non-TGT second ticket.
func TestU2U(t *testing.T) {
	r := newTestRealm(t)
	tgt, part := r.login(nil)
	u2u := func(sname string, second messages.Ticket) *tgsBuilder {
		b := newTGS(r, tgt, part)
		b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, sname)
		b.Body.KDCOptions = ticket.Flags(flags.EncTktInSkey)
		b.Body.AdditionalTickets = []messages.Ticket{second}
		return b
	}
	rep, _ := tgsRep(t, u2u("alice", tgt.Ticket).send(), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	if rep.Ticket.EncPart.KVNO != 0 {
		t.Errorf("user-to-user ticket kvno %d, want 0", rep.Ticket.EncPart.KVNO)
	}
	etp, err := ticket.OpenTicket(rep.Ticket, part.Key)
	if err != nil {
		t.Fatalf("user-to-user ticket does not open with the TGT session key: %v", err)
	}
	if etp.CName.PrincipalNameString() != "alice" {
		t.Fatalf("ticket client %s", etp.CName.PrincipalNameString())
	}
	svc, _ := tgsRep(t, newTGS(r, tgt, part).send(), part.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	for _, tc := range []struct {
		name, sname string
		second      *messages.Ticket
		code        int32
		status      string
	}{
		{"no second ticket", "alice", nil, errorcode.KDC_ERR_BADOPTION, "NO_2ND_TKT"},
		{"server is not the TGT's owner", "host/localhost", &tgt.Ticket, errorcode.KDC_ERR_SERVER_NOMATCH, "2ND_TKT_MISMATCH"},
		{"second ticket is not a TGT", "alice", &svc.Ticket, errorcode.KDC_ERR_POLICY, "2ND_TKT_NOT_TGS"},
	} {
		b := u2u(tc.sname, tgt.Ticket)
		if tc.second == nil {
			b.Body.AdditionalTickets = nil
		} else {
			b.Body.AdditionalTickets = []messages.Ticket{*tc.second}
		}
		if e := expectError(t, b.send(), tc.code); e.EText != tc.status {
			t.Errorf("%s: e-text %q, want %q", tc.name, e.EText, tc.status)
		}
	}
}
