package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/kadmin"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// kpRealm is a test realm with kadmin/changepw and a kpasswd service.
type kpRealm struct {
	*testRealmEnv
	kp     *Kpasswd
	kpAddr string
}

func newKpRealm(t testing.TB, o KpasswdOptions) *kpRealm {
	t.Helper()
	r := newTestRealm(t)
	if _, err := r.store.Get(context.Background(), principal.MustParse("kadmin/changepw@"+testRealm)); err != nil {
		r.add(AddRequest{Name: "kadmin/changepw", RandomKey: true})
	}
	return &kpRealm{testRealmEnv: r, kp: NewKpasswd(r.kdc, o)}
}

// serveKpasswd starts the KDC and the kpasswd service on 127.0.0.1:0.
func (r *kpRealm) serveKpasswd() {
	r.t.Helper()
	r.serve()
	srv := NewKpasswdServer(r.kp, nil)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	r.kpAddr = srv.Addr()
	r.t.Cleanup(func() { cancel(); <-done })
}

// changepwTicket logs alice in for kadmin/changepw: an INITIAL ticket.
func (r *kpRealm) changepwTicket() (messages.Ticket, types.EncryptionKey) {
	rep, part := r.login(func(q *messages.ASReq) {
		q.ReqBody.SName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "kadmin/changepw")
	})
	return rep.Ticket, part.Key
}

// kpReq is a kpasswd request under construction.
type kpReq struct {
	version  uint16
	tkt      messages.Ticket
	session  types.EncryptionKey
	subkey   types.EncryptionKey
	seq      int64
	userData []byte
	ctime    time.Time
	cname    string
	authKey  *types.EncryptionKey
}

func (r *kpRealm) newReq(version uint16, password string, target string) *kpReq {
	tkt, key := r.changepwTicket()
	q := &kpReq{version: version, tkt: tkt, session: key, subkey: randomKey(r.t, 18), seq: 12345,
		ctime: r.clock.Now(), cname: "alice"}
	if version == KpasswdVersionChange {
		q.userData = []byte(password)
	} else {
		d := kadmin.ChangePasswdData{NewPasswd: []byte(password)}
		if target != "" {
			n := principal.MustParse(target)
			d.TargName, d.TargRealm = n.PrincipalName(), n.Realm
		}
		b, err := d.Marshal()
		if err != nil {
			r.t.Fatal(err)
		}
		q.userData = b
	}
	return q
}

func (q *kpReq) marshal(t testing.TB) []byte {
	t.Helper()
	auth, err := types.NewAuthenticator(testRealm, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, q.cname))
	if err != nil {
		t.Fatal(err)
	}
	auth.CTime, auth.Cusec = q.ctime.UTC().Truncate(time.Second), q.ctime.Nanosecond()/1000
	auth.SubKey, auth.SeqNumber = q.subkey, q.seq
	key := q.session
	if q.authKey != nil {
		key = *q.authKey
	}
	ap, err := messages.NewAPReq(q.tkt, key, auth)
	if err != nil {
		t.Fatal(err)
	}
	apb, err := ap.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	priv := messages.NewKRBPriv(messages.EncKrbPrivPart{UserData: q.userData, SequenceNumber: q.seq,
		SAddress: types.HostAddress{AddrType: 2, Address: []byte{127, 0, 0, 1}}})
	if err := priv.EncryptEncPart(q.subkey); err != nil {
		t.Fatal(err)
	}
	pb, err := priv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(6+len(apb)+len(pb)))
	b = binary.BigEndian.AppendUint16(b, q.version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(apb)))
	return append(append(b, apb...), pb...)
}

// kpReply is a decoded reply.
type kpReply struct {
	isError bool
	krbCode int32
	code    uint16
	text    string
}

// decodeKpReply reads a reply as MIT's client does (chpw.c get_clear_result):
// version 1, AP-REP checked with the session key, KRB-PRIV opened with the
// subkey and its sequence number equal to the AP-REP's.
func decodeKpReply(t testing.TB, b []byte, session, subkey types.EncryptionKey) kpReply {
	t.Helper()
	if len(b) < 6 || int(binary.BigEndian.Uint16(b)) != len(b) {
		t.Fatalf("reply length field wrong (%d bytes)", len(b))
	}
	if v := binary.BigEndian.Uint16(b[2:]); v != 1 {
		t.Fatalf("reply version %#x, want 1", v)
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n == 0 {
		var e messages.KRBError
		if err := e.Unmarshal(b[6:]); err != nil {
			t.Fatalf("error reply: %v", err)
		}
		if len(e.EData) < 2 {
			t.Fatalf("KRB-ERROR %d without result e-data", e.ErrorCode)
		}
		return kpReply{isError: true, krbCode: e.ErrorCode, code: binary.BigEndian.Uint16(e.EData), text: string(e.EData[2:])}
	}
	rep, err := ticket.ParseAPRep(b[6:6+n], session)
	if err != nil {
		t.Fatalf("AP-REP: %v", err)
	}
	var priv messages.KRBPriv
	if err := priv.Unmarshal(b[6+n:]); err != nil {
		t.Fatal(err)
	}
	if err := priv.DecryptEncPart(subkey); err != nil {
		t.Fatal(err)
	}
	if !rep.HasSeq || priv.DecryptedEncPart.SequenceNumber != rep.SeqNumber {
		t.Fatalf("KRB-PRIV seq %d, AP-REP seq %d (has %v)", priv.DecryptedEncPart.SequenceNumber, rep.SeqNumber, rep.HasSeq)
	}
	ud := priv.DecryptedEncPart.UserData
	return kpReply{code: binary.BigEndian.Uint16(ud), text: string(ud[2:])}
}

func (r *kpRealm) send(q *kpReq) kpReply {
	r.t.Helper()
	b, ok := r.kp.Handle(context.Background(), q.marshal(r.t), UDP, nil)
	if !ok {
		r.t.Fatal("no reply")
	}
	return decodeKpReply(r.t, b, q.session, q.subkey)
}

// loginWorks reports whether alice's AS exchange with password succeeds.
func (r *kpRealm) loginWorks(password string) bool {
	rec, err := r.store.Get(context.Background(), principal.MustParse("alice@"+testRealm))
	if err != nil {
		r.t.Fatal(err)
	}
	keys, err := principal.KeysFromPassword(rec.Name, password, []int32{18}, rec.KVNO())
	if err != nil {
		r.t.Fatal(err)
	}
	k, ok := rec.FindKey(18, 0)
	return ok && string(k.Value) == string(keys[0].Value)
}

func TestKpasswdChangeBothVersions(t *testing.T) {
	for _, v := range []uint16{KpasswdVersionChange, KpasswdVersionSet} {
		t.Run(fmt.Sprintf("%#04x", v), func(t *testing.T) {
			r := newKpRealm(t, KpasswdOptions{})
			before, _ := r.store.Get(context.Background(), principal.MustParse("alice@"+testRealm))
			got := r.send(r.newReq(v, "n3w-Passw0rd", ""))
			if got.isError || got.code != KpasswdSuccess {
				t.Fatalf("reply %+v", got)
			}
			after, _ := r.store.Get(context.Background(), principal.MustParse("alice@"+testRealm))
			if after.KVNO() != before.KVNO()+1 {
				t.Errorf("kvno %d -> %d", before.KVNO(), after.KVNO())
			}
			if r.loginWorks(testPassword) || !r.loginWorks("n3w-Passw0rd") {
				t.Error("the new password is not the one that works")
			}
		})
	}
}

func TestKpasswdExpiredPasswordCleared(t *testing.T) {
	r := newKpRealm(t, KpasswdOptions{})
	ctx := context.Background()
	alice := principal.MustParse("alice@" + testRealm)
	q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "") // ticket before expiry
	if err := r.store.Update(ctx, alice, func(rec *principal.Record) error {
		rec.PasswordExpires = r.clock.Now().Add(-time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The KDC refuses a TGT but gives kadmin/changepw (as.go).
	req, _ := r.preauthASReq("alice", 18)
	expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_KEY_EXPIRED)
	r.changepwTicket()
	if got := r.send(q); got.code != KpasswdSuccess {
		t.Fatalf("reply %+v", got)
	}
	rec, _ := r.store.Get(ctx, alice)
	if !rec.PasswordExpires.IsZero() {
		t.Errorf("PasswordExpires %v after the change", rec.PasswordExpires)
	}
	req, _ = r.preauthASReq("alice", 18)
	if rep := r.exchange(marshalAS(t, req)); ticket.MessageType(rep) != 11 {
		t.Errorf("AS after the change: message type %d", ticket.MessageType(rep))
	}
}

func TestKpasswdResultCodes(t *testing.T) {
	t.Run("bad version", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		q := r.newReq(KpasswdVersionChange, "x", "")
		q.version = 2
		got := r.send(q)
		if !got.isError || got.code != KpasswdBadVersion || !strings.Contains(got.text, "version number 2") {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("bad AP-REQ", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		b := []byte{0, 12, 0, 1, 0, 3, 1, 2, 3, 4, 5, 6}
		reply, ok := r.kp.Handle(context.Background(), b, UDP, nil)
		if !ok {
			t.Fatal("no reply")
		}
		got := decodeKpReply(t, reply, types.EncryptionKey{}, types.EncryptionKey{})
		if !got.isError || got.code != KpasswdAuthError {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("truncated AP-REQ", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		b := []byte{0, 8, 0, 1, 0, 200, 1, 2}
		reply, _ := r.kp.Handle(context.Background(), b, UDP, nil)
		if got := decodeKpReply(t, reply, types.EncryptionKey{}, types.EncryptionKey{}); got.code != KpasswdMalformed {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("garbage gets no reply", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		for _, b := range [][]byte{nil, {1}, {0, 9, 0, 1, 0, 1, 1}, []byte("GET / HTTP/1.0\r\n\r\n")} {
			if _, ok := r.kp.Handle(context.Background(), b, UDP, nil); ok {
				t.Errorf("reply to %q", b)
			}
		}
	})
	t.Run("wrong service", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")
		rep, part := r.login(nil) // a TGT, not kadmin/changepw
		q.tkt, q.session = rep.Ticket, part.Key
		got := r.send(q)
		if !got.isError || got.code != KpasswdAuthError || got.krbCode != errorcode.KRB_AP_ERR_NOT_US {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("authenticator in the wrong key", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")
		k := randomKey(t, 18)
		q.authKey = &k
		if got := r.send(q); !got.isError || got.krbCode != errorcode.KRB_AP_ERR_BAD_INTEGRITY {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("clock skew", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")
		q.ctime = q.ctime.Add(-time.Hour)
		if got := r.send(q); !got.isError || got.krbCode != errorcode.KRB_AP_ERR_SKEW {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("non-initial ticket", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		tgt, tpart := r.login(nil)
		b := newTGS(r.testRealmEnv, tgt, tpart)
		b.Body.SName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "kadmin/changepw")
		rep, part := tgsRep(t, b.send(), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")
		q.tkt, q.session = rep.Ticket, part.Key
		got := r.send(q)
		if got.isError || got.code != KpasswdInitialNeeded {
			t.Fatalf("%+v", got)
		}
		if !r.loginWorks(testPassword) {
			t.Error("password changed anyway")
		}
	})
	t.Run("set another principal's password", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		r.add(AddRequest{Name: "bob", Password: "bobpw"})
		got := r.send(r.newReq(KpasswdVersionSet, "0wned-by-alice", "bob@"+testRealm))
		if got.code != KpasswdAccessDenied {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("admin sets another principal's password", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{Admins: []string{"alice@" + testRealm}})
		r.add(AddRequest{Name: "bob", Password: "bobpw"})
		if got := r.send(r.newReq(KpasswdVersionSet, "new-bob-pw", "bob@"+testRealm)); got.code != KpasswdSuccess {
			t.Fatalf("%+v", got)
		}
		bob, _ := r.store.Get(context.Background(), principal.MustParse("bob@"+testRealm))
		if bob.KVNO() != 2 {
			t.Errorf("bob's kvno %d", bob.KVNO())
		}
	})
	t.Run("malformed ChangePasswdData", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		q := r.newReq(KpasswdVersionSet, "x", "")
		q.userData = []byte("not DER")
		if got := r.send(q); got.code != KpasswdMalformed {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("empty password", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{})
		if got := r.send(r.newReq(KpasswdVersionChange, "", "")); got.code != KpasswdSoftError {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("policy reject with text", func(t *testing.T) {
		r := newKpRealm(t, KpasswdOptions{CheckPassword: func(_ *principal.Record, pw string) error {
			if len(pw) < 8 {
				return errors.New("Password is too short")
			}
			return nil
		}})
		got := r.send(r.newReq(KpasswdVersionChange, "Zq9!x", ""))
		if got.isError || got.code != KpasswdSoftError || got.text != "Password is too short" {
			t.Fatalf("%+v", got)
		}
		if !r.loginWorks(testPassword) {
			t.Error("password changed anyway")
		}
	})
}

// TestKpasswdRetransmitChangesOnce: MIT kpasswd resends the same datagram
// while the change runs; every copy gets the same reply and the key changes
// once. Another request reusing the authenticator is a replay.
func TestKpasswdRetransmitChangesOnce(t *testing.T) {
	r := newKpRealm(t, KpasswdOptions{})
	q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")
	pkt := q.marshal(t)
	var wg sync.WaitGroup
	replies := make([][]byte, 4)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i], _ = r.kp.Handle(context.Background(), pkt, UDP, nil)
		}()
	}
	wg.Wait()
	again, _ := r.kp.Handle(context.Background(), pkt, UDP, nil)
	for i, b := range append(replies, again) {
		if string(b) != string(replies[0]) {
			t.Fatalf("reply %d differs", i)
		}
	}
	if got := decodeKpReply(t, replies[0], q.session, q.subkey); got.code != KpasswdSuccess {
		t.Fatalf("%+v", got)
	}
	rec, _ := r.store.Get(context.Background(), principal.MustParse("alice@"+testRealm))
	if rec.KVNO() != 2 {
		t.Errorf("kvno %d after one change sent five times", rec.KVNO())
	}
	// Same authenticator, another password: a different packet.
	q.userData = []byte("other-Passw0rd")
	if got := r.send(q); !got.isError || got.krbCode != errorcode.KRB_AP_ERR_REPEAT {
		t.Fatalf("%+v", got)
	}
}

func TestKpasswdOverTCPAndUDP(t *testing.T) {
	r := newKpRealm(t, KpasswdOptions{})
	r.serveKpasswd()
	q := r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")
	if got := decodeKpReply(t, tcpExchange(t, r.kpAddr, q.marshal(t)), q.session, q.subkey); got.code != KpasswdSuccess {
		t.Fatalf("tcp: %+v", got)
	}
	q = r.newReq(KpasswdVersionSet, "third-Passw0rd", "")
	b, ok := udpExchange(t, r.kpAddr, q.marshal(t), 5*time.Second)
	if !ok {
		t.Fatal("no UDP reply")
	}
	if got := decodeKpReply(t, b, q.session, q.subkey); got.code != KpasswdSuccess {
		t.Fatalf("udp: %+v", got)
	}
	// A TCP frame longer than a kpasswd message can be.
	big := make([]byte, MaxKpasswdMessage+1)
	reply := tcpExchange(t, r.kpAddr, big)
	if got := decodeKpReply(t, reply, types.EncryptionKey{}, types.EncryptionKey{}); got.krbCode != errorcode.KRB_ERR_FIELD_TOOLONG {
		t.Fatalf("oversized: %+v", got)
	}
}

// TestKpasswdGokrb5Client: gokrb5's client.ChangePasswd (version 0xff80 over
// UDP) changes the password.
func TestKpasswdGokrb5Client(t *testing.T) {
	r := newKpRealm(t, KpasswdOptions{})
	r.serveKpasswd()
	conf := fmt.Sprintf("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n udp_preference_limit = 1465\n"+
		"[realms]\n %s = {\n  kdc = %s\n  kpasswd_server = %s\n }\n", testRealm, testRealm, r.addr, r.kpAddr)
	cfg, err := config.NewFromString(conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("alice", testRealm, testPassword, cfg, client.DisablePAFXFAST(true))
	ok, err := cl.ChangePasswd("gokrb5-Passw0rd")
	if err != nil || !ok {
		t.Fatalf("ChangePasswd: %v %v", ok, err)
	}
	if !r.loginWorks("gokrb5-Passw0rd") {
		t.Error("new password does not work")
	}
}

// FuzzKpasswdRequest: no input crashes the decoder or the service, and
// every reply is a well-formed version-1 reply.
func FuzzKpasswdRequest(f *testing.F) {
	r := newKpRealm(f, KpasswdOptions{})
	f.Add(r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "").marshal(f))
	f.Add(r.newReq(KpasswdVersionSet, "n3w-Passw0rd", "bob@"+testRealm).marshal(f))
	f.Add([]byte{0, 12, 0, 1, 0, 3, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseKpasswdRequest(b); err == nil && len(b) < 6 {
			t.Fatal("short request parsed")
		}
		reply, ok := r.kp.Handle(context.Background(), b, UDP, nil)
		if !ok {
			return
		}
		if len(reply) < 6 || int(binary.BigEndian.Uint16(reply)) != len(reply) || binary.BigEndian.Uint16(reply[2:]) != 1 {
			t.Fatalf("malformed reply % x", reply[:min(len(reply), 8)])
		}
		if r.kdc.Panics() != 0 {
			t.Fatal("the service panicked")
		}
	})
}

// TestKpasswdRealmPolicy: the principal's stored policy applies: MIT's
// reasons come back as KRB5_KPASSWD_SOFTERROR, and a change moves the
// password expiry by the policy's maximum life.
func TestKpasswdRealmPolicy(t *testing.T) {
	r := newKpRealm(t, KpasswdOptions{})
	ctx := context.Background()
	ps := r.store.(principal.PolicyStore)
	if err := ps.CreatePolicy(ctx, &principal.Policy{Name: "strict", MinLength: 10, MinClasses: 2, History: 3, MaxLife: 90 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	alice := principal.MustParse("alice@" + testRealm)
	if err := r.store.Update(ctx, alice, func(rec *principal.Record) error { rec.Policy = "strict"; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ pw, text string }{
		{"Sh0rt", "Password is too short"},
		{"onlylowercase", "Password does not contain enough character classes"},
		{testPassword + "-Extra1", ""},
		{testPassword + "-Extra1", "Password has been used before"},
	} {
		got := r.send(r.newReq(KpasswdVersionChange, c.pw, ""))
		if c.text == "" {
			if got.code != KpasswdSuccess {
				t.Fatalf("%q: %+v", c.pw, got)
			}
			rec, _ := r.store.Get(ctx, alice)
			if want := r.clock.Now().Add(90 * 24 * time.Hour); rec.PasswordExpires.Sub(want).Abs() > time.Minute {
				t.Errorf("PasswordExpires %v, want about %v", rec.PasswordExpires, want)
			}
			continue
		}
		if got.isError || got.code != KpasswdSoftError || got.text != c.text {
			t.Errorf("%q: %+v, want soft error %q", c.pw, got, c.text)
		}
	}
}

// TestModifyPasswordExpires: `kdc principal modify --pw-expires now` makes
// the next login KDC_ERR_KEY_EXPIRED; never clears it.
func TestModifyPasswordExpires(t *testing.T) {
	r := newKpRealm(t, KpasswdOptions{})
	ctx := context.Background()
	now := r.clock.Now()
	if _, err := r.admin.Modify(ctx, "alice", ModifyRequest{PasswordExpires: &now}); err != nil {
		t.Fatal(err)
	}
	req, _ := r.preauthASReq("alice", 18)
	expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_KEY_EXPIRED)
	never := time.Time{}
	if _, err := r.admin.Modify(ctx, "alice", ModifyRequest{PasswordExpires: &never}); err != nil {
		t.Fatal(err)
	}
	req, _ = r.preauthASReq("alice", 18)
	if rep := r.exchange(marshalAS(t, req)); ticket.MessageType(rep) != 11 {
		t.Errorf("AS after --pw-expires never: message type %d", ticket.MessageType(rep))
	}
}

// TestKpasswdAudited: a password change through kpasswd writes one audit line
// naming who asked, for whom and the outcome, and never the password; a
// rejected change is audited with its reason.
func TestKpasswdAudited(t *testing.T) {
	var buf syncBuffer
	env := newTestRealm(t, func(c *Config) { c.Audit = NewAuditLog(&buf, nil) })
	r := &kpRealm{testRealmEnv: env, kp: NewKpasswd(env.kdc, KpasswdOptions{
		CheckPassword: func(_ *principal.Record, pw string) error {
			if len(pw) < 8 {
				return &principal.PasswordError{Reason: "Password is too short"}
			}
			return nil
		}})}
	if got := r.send(r.newReq(KpasswdVersionChange, "n3w-Passw0rd", "")); got.code != KpasswdSuccess {
		t.Fatalf("reply %+v", got)
	}
	if got := r.send(r.newReq(KpasswdVersionChange, "Zq9!x", "")); got.code != KpasswdSoftError {
		t.Fatalf("reply %+v", got)
	}
	log := buf.String()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2:\n%s", len(lines), log)
	}
	for i, want := range []string{`"result":"ok"`, `"result":"Password is too short"`} {
		l := lines[i]
		if !strings.Contains(l, `"who":"principal alice@`+testRealm+`"`) || !strings.Contains(l, `"what":"kpasswd-change"`) ||
			!strings.Contains(l, `"target":"alice@`+testRealm+`"`) || !strings.Contains(l, want) {
			t.Errorf("audit line %d: %s", i, l)
		}
	}
	if strings.Contains(log, "n3w-Passw0rd") || strings.Contains(log, "Zq9!x") {
		t.Errorf("the audit log holds a password:\n%s", log)
	}
}
