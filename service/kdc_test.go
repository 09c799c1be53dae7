package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

// kdcRealm is an in-process realm of our KDC with alice (no preauth, to keep
// the AS exchange short) and host/localhost, and the keytab it exports.
type kdcRealm struct {
	t      *testing.T
	store  *store.BoltStore
	kdc    *kdc.KDC
	admin  *kdc.LocalAdmin
	keytab string
	nonce  int
}

func newKDCRealm(t *testing.T) *kdcRealm {
	t.Helper()
	dir := t.TempDir()
	store, err := store.Init(context.Background(), filepath.Join(dir, "kdc.db"), testRealm,
		principal.RealmPolicy{MaxLife: 10 * time.Hour, MaxRenew: 24 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k, err := kdc.New(kdc.Config{Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := &kdcRealm{t: t, store: store, kdc: k, admin: &kdc.LocalAdmin{Store: store}, keytab: filepath.Join(dir, "service.keytab")}
	for _, a := range []kdc.AddRequest{{Name: "alice", Password: "alice-pw", NoPreauth: true}, {Name: "host/localhost", RandomKey: true}} {
		if _, err := r.admin.Add(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	r.exportKeytab()
	return r
}

func (r *kdcRealm) exportKeytab() {
	r.t.Helper()
	entries, err := r.admin.Keytab(context.Background(), []string{"host/localhost"})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := ticket.WriteKeytabFile(r.keytab, entries); err != nil {
		r.t.Fatal(err)
	}
}

// serviceTicket runs an AS exchange for alice straight to host/localhost (as
// `kinit -S host/localhost` does) and returns the ticket and session key.
func (r *kdcRealm) serviceTicket() (messages.Ticket, types.EncryptionKey) {
	r.t.Helper()
	r.nonce++
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO: 5, MsgType: msgtype.KRB_AS_REQ,
		ReqBody: messages.KDCReqBody{
			KDCOptions: ticket.Flags(),
			CName:      types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice"),
			Realm:      testRealm,
			SName:      types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/localhost"),
			Till:       time.Now().Add(time.Hour).UTC(),
			Nonce:      4242 + r.nonce, // distinct requests: the KDC's lookaside cache answers repeats
			EType:      []int32{18, 17},
		},
	}}
	b, err := req.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	reply, ok := r.kdc.Handle(context.Background(), b, kdc.TCP, nil)
	if !ok {
		r.t.Fatal("KDC gave no reply")
	}
	var rep messages.ASRep
	if err := rep.Unmarshal(reply); err != nil {
		r.t.Fatalf("not an AS-REP: %v (%x)", err, reply)
	}
	rec, err := r.store.Get(context.Background(), principal.MustParse("alice@"+testRealm))
	if err != nil {
		r.t.Fatal(err)
	}
	key, ok := rec.FindKey(rep.EncPart.EType, 0)
	if !ok {
		r.t.Fatalf("alice has no enctype %d key", rep.EncPart.EType)
	}
	part, err := ticket.DecryptReplyPart(rep.EncPart, key.EncryptionKey(), keyusage.AS_REP_ENCPART)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep.Ticket, part.Key
}

// TestAcceptKDCTicket: a service ticket from our KDC, verified with the keytab
// the KDC exported; after a key change the old keytab names the missing kvno,
// and a re-export is picked up without a restart.
func TestAcceptKDCTicket(t *testing.T) {
	r := newKDCRealm(t)
	kt, err := LoadKeytab(r.keytab)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := NewAcceptor(kt, Options{Service: "host@localhost", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: clock.NewFrozen()}
	tk, session := r.serviceTicket()
	b, auth := e.apreq(tk, session, nowReq(req{subkey: true}))
	c, rep, err := acc.AcceptGSS(context.Background(), ticket.FrameKRB5Token(ticket.TokIDAPReq, b))
	if err != nil {
		t.Fatal(err)
	}
	if c.Client.String() != "alice@"+testRealm || c.KVNO != 1 {
		t.Errorf("context %s kvno %d", c, c.KVNO)
	}
	finish(t, rep, session, auth)

	if _, err := r.admin.ChangeKeys(context.Background(), "host/localhost", "", true); err != nil {
		t.Fatal(err)
	}
	tk, session = r.serviceTicket()
	if tk.EncPart.KVNO != 2 {
		t.Fatalf("ticket kvno %d after the key change, want 2", tk.EncPart.KVNO)
	}
	b, _ = e.apreq(tk, session, nowReq(req{}))
	_, _, err = acc.Accept(context.Background(), b)
	ae := wantCode(t, err, errorcode.KRB_AP_ERR_BADKEYVER)
	want := fmt.Sprintf("ticket for host/localhost@KRB.TEST kvno 2 not found in keytab %s (has kvno 1)", r.keytab)
	if ae.Reason != want {
		t.Errorf("reason %q\nwant   %q", ae.Reason, want)
	}
	time.Sleep(10 * time.Millisecond) // a distinct mtime even on coarse clocks
	r.exportKeytab()
	b, _ = e.apreq(tk, session, nowReq(req{}))
	if _, _, err := acc.Accept(context.Background(), b); err != nil {
		t.Fatalf("after re-exporting the keytab: %v", err)
	}
}

// nowReq sets the authenticator time to the real clock (the KDC's tickets
// use it), with microseconds.
func nowReq(o req) req {
	now := time.Now()
	o.ctime, o.cusec = now, now.Nanosecond()/1000
	return o
}
