package service

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// TestAcceptMutualAPRep: the AP-REP decrypts with the ticket session key at
// usage 12 (checked with gokrb5 directly, not our parser), echoes ctime and
// cusec, and carries an acceptor subkey of the session key's enctype and a
// 30-bit sequence number.
func TestAcceptMutualAPRep(t *testing.T) {
	e := newEnv(t)
	b, session, auth := e.good(req{cusec: 654321, subkey: true, seq: 77})
	c, rep, err := e.accept(b)
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || !c.Mutual {
		t.Fatalf("no AP-REP for a mutual-required AP-REQ (mutual %v)", c.Mutual)
	}
	var ap messages.APRep
	if err := ap.Unmarshal(rep); err != nil {
		t.Fatal(err)
	}
	plain, err := crypto.DecryptEncPart(ap.EncPart, session, keyusage.AP_REP_ENCPART)
	if err != nil {
		t.Fatalf("AP-REP does not decrypt with the session key at usage 12: %v", err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	if !part.CTime.Equal(auth.CTime) || part.Cusec != 654321 {
		t.Errorf("AP-REP ctime %v cusec %d, authenticator %v %d", part.CTime, part.Cusec, auth.CTime, auth.Cusec)
	}
	if part.Subkey.KeyType != session.KeyType || len(part.Subkey.KeyValue) != 32 {
		t.Errorf("acceptor subkey %d/%d bytes, want enctype %d", part.Subkey.KeyType, len(part.Subkey.KeyValue), session.KeyType)
	}
	if part.SequenceNumber <= 0 || part.SequenceNumber > 0x3fffffff {
		t.Errorf("seq-number %d, want a positive 30-bit value", part.SequenceNumber)
	}
	if _, err := crypto.DecryptEncPart(ap.EncPart, c.InitiatorSubkey(), keyusage.AP_REP_ENCPART); err == nil {
		t.Error("AP-REP decrypts with the initiator subkey")
	}
	// Context fields.
	if c.Client.String() != "alice@"+testRealm || c.Service.String() != "host/localhost@"+testRealm {
		t.Errorf("context names %s -> %s", c.Client, c.Service)
	}
	if c.KVNO != 2 || c.Etype != 18 || !c.CTime.Equal(auth.CTime) || c.Cusec != 654321 {
		t.Errorf("context %+v", c)
	}
	if k := c.ProtocolKey(); !k.AcceptorSubkey || !bytesEqual(k.Key.KeyValue, part.Subkey.KeyValue) {
		t.Error("ProtocolKey is not the acceptor subkey")
	}
	if !bytesEqual(c.SessionKey().KeyValue, session.KeyValue) || c.AcceptorSubkey().KeyType != 18 {
		t.Error("context keys wrong")
	}
	// Printing a context shows no key.
	if s := fmt.Sprintf("%+v %#v %v %s", c, c, c, c); strings.Contains(s, fmt.Sprint(session.KeyValue)) || strings.Contains(s, hex.EncodeToString(session.KeyValue)) {
		t.Error("formatting a Context shows the session key")
	}
	// ParseAPRep agrees.
	p, err := ticket.ParseAPRep(rep, session)
	if err != nil || !p.HasSeq || p.SeqNumber != part.SequenceNumber {
		t.Fatalf("ParseAPRep %+v %v", p, err)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func TestAcceptWithoutMutual(t *testing.T) {
	e := newEnv(t)
	b, _, auth := e.good(req{noMutual: true, subkey: true, seq: 1234})
	c, rep, err := e.accept(b)
	if err != nil {
		t.Fatal(err)
	}
	if rep != nil || c.Mutual {
		t.Fatal("AP-REP made without mutual-required")
	}
	if k := c.ProtocolKey(); k.AcceptorSubkey || !bytesEqual(k.Key.KeyValue, auth.SubKey.KeyValue) {
		t.Error("ProtocolKey is not the initiator subkey")
	}
	if c.sendSeq != 1234 || c.recvSeq != 1234 {
		t.Errorf("sequence numbers send %d recv %d, want both 1234", c.sendSeq, c.recvSeq)
	}
}

// TestAcceptReplay: the same AP-REQ twice gives KRB_AP_ERR_REPEAT; the same
// ctime/cusec from another client or to another service does not.
func TestAcceptReplay(t *testing.T) {
	e := newEnv(t)
	b, _, _ := e.good(req{})
	if _, _, err := e.accept(b); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.accept(b)
	ae := wantCode(t, err, errorcode.KRB_AP_ERR_REPEAT)
	if !strings.Contains(ae.Error(), "replayed authenticator from alice@KRB.TEST") {
		t.Errorf("error text %q", ae.Error())
	}
	// Still a replay a while later, within 2×skew.
	e.clock.Advance(4 * time.Minute)
	_, _, err = e.accept(b)
	// Now the skew check may fire first; either way it is refused.
	if err == nil {
		t.Fatal("replay accepted 4 minutes later")
	}

	// Same ctime/cusec, different client or different service: accepted.
	e = newEnv(t)
	now := e.clock.Now()
	tk, s := e.issue(tkt{})
	b1, _ := e.apreq(tk, s, req{ctime: now, cusec: 5})
	tk2, s2 := e.issue(tkt{client: types.NewPrincipalName(1, "bob")})
	b2, _ := e.apreq(tk2, s2, req{ctime: now, cusec: 5, client: types.NewPrincipalName(1, "bob")})
	tk3, s3 := e.issue(tkt{sname: httpName, key: e.httpKey, kvno: 1})
	b3, _ := e.apreq(tk3, s3, req{ctime: now, cusec: 5})
	for i, b := range [][]byte{b1, b2, b3} {
		if _, _, err := e.accept(b); err != nil {
			t.Errorf("AP-REQ %d: %v", i+1, err)
		}
	}
	// A fresh authenticator on the same ticket is fine.
	b4, _ := e.apreq(tk, s, req{ctime: now, cusec: 6})
	if _, _, err := e.accept(b4); err != nil {
		t.Error(err)
	}
}

func TestAcceptSkew(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	for _, d := range []time.Duration{6 * time.Minute, -6 * time.Minute, 5*time.Minute + 2*time.Second} {
		b, _, _ := e.good(req{ctime: now.Add(d)})
		_, _, err := e.accept(b)
		ae := wantCode(t, err, errorcode.KRB_AP_ERR_SKEW)
		if !strings.Contains(ae.Reason, "off our clock") {
			t.Errorf("reason %q", ae.Reason)
		}
	}
	for _, d := range []time.Duration{4 * time.Minute, -4 * time.Minute} {
		b, _, _ := e.good(req{ctime: now.Add(d)})
		if _, _, err := e.accept(b); err != nil {
			t.Errorf("authenticator %v off: %v", d, err)
		}
	}
	// A custom skew.
	e = newEnv(t, func(o *Options) { o.Skew = 30 * time.Second })
	b, _, _ := e.good(req{ctime: e.clock.Now().Add(-time.Minute)})
	_, _, err := e.accept(b)
	wantCode(t, err, errorcode.KRB_AP_ERR_SKEW)
}

// TestAcceptWrongKvno: a ticket sealed with a kvno the keytab lacks gets
// KRB_AP_ERR_BADKEYVER and an error naming the keytab, the principal, the
// kvno and the kvnos present.
func TestAcceptWrongKvno(t *testing.T) {
	e := newEnv(t)
	tk, s := e.issue(tkt{key: randKey(t, 18), kvno: 3})
	b, _ := e.apreq(tk, s, req{})
	_, _, err := e.accept(b)
	ae := wantCode(t, err, errorcode.KRB_AP_ERR_BADKEYVER)
	want := fmt.Sprintf("ticket for host/localhost@KRB.TEST kvno 3 not found in keytab %s (has kvno 1, 2)", e.ktPath)
	if ae.Reason != want {
		t.Errorf("reason\n %q\nwant\n %q", ae.Reason, want)
	}
	if !strings.HasPrefix(err.Error(), "service: "+want) || !strings.Contains(err.Error(), "KRB_AP_ERR_BADKEYVER") {
		t.Errorf("Error() = %q", err.Error())
	}
	// The KRB-ERROR sent to the client does not leak the keytab path.
	kb, kerr := e.acc.ErrorReply(err)
	if kerr != nil {
		t.Fatal(kerr)
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(kb); err != nil {
		t.Fatal(err)
	}
	if ke.ErrorCode != 44 || ke.Realm != testRealm || ke.SName.PrincipalNameString() != "host/localhost" ||
		ke.CName.PrincipalNameString() != "" || strings.Contains(ke.EText, e.ktPath) {
		t.Errorf("KRB-ERROR %+v", ke)
	}
	if ke.EText != "KRB_AP_ERR_BADKEYVER" {
		t.Errorf("e-text %q", ke.EText)
	}
}

func TestAcceptErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) {})
	now := e.clock.Now()
	other := randKey(t, 18)
	cases := []struct {
		name   string
		build  func() []byte
		code   int32
		reason string
	}{
		{"AS-REQ bytes", func() []byte { return []byte{0x6a, 0x03, 0x30, 0x01, 0x00} }, errorcode.KRB_AP_ERR_MSG_TYPE, "not an AP-REQ"},
		{"garbage", func() []byte { return []byte("hello world") }, errorcode.KRB_AP_ERR_MSG_TYPE, "not an AP-REQ"},
		{"truncated", func() []byte { b, _, _ := e.good(req{}); return b[:len(b)/2] }, errorcode.KRB_ERR_GENERIC, "malformed AP-REQ"},
		{"msg-type 15", func() []byte {
			tk, s := e.issue(tkt{})
			b, _ := e.apreq(tk, s, req{msgType: 15})
			return b
		}, errorcode.KRB_AP_ERR_MSG_TYPE, "wrong msg-type"},
		{"pvno 4", func() []byte {
			tk, s := e.issue(tkt{})
			b, _ := e.apreq(tk, s, req{pvno: 4})
			return b
		}, errorcode.KRB_AP_ERR_BADVERSION, "pvno 4"},
		{"user-to-user", func() []byte {
			tk, s := e.issue(tkt{})
			b, _ := e.apreq(tk, s, req{u2u: true})
			return b
		}, errorcode.KRB_AP_ERR_NOKEY, "user-to-user"},
		{"unknown principal", func() []byte {
			tk, s := e.issue(tkt{sname: types.NewPrincipalName(3, "ftp/localhost"), key: other, kvno: 1})
			b, _ := e.apreq(tk, s, req{})
			return b
		}, errorcode.KRB_AP_ERR_NOKEY, "no key for ftp/localhost@KRB.TEST in keytab"},
		{"no key for etype", func() []byte {
			tk, s := e.issue(tkt{key: randKey(t, 20), kvno: 2})
			b, _ := e.apreq(tk, s, req{})
			return b
		}, errorcode.KRB_AP_ERR_NOKEY, "sealed with enctype 20, keytab"},
		{"wrong service key", func() []byte {
			tk, s := e.issue(tkt{key: other, kvno: 2})
			b, _ := e.apreq(tk, s, req{})
			return b
		}, errorcode.KRB_AP_ERR_BAD_INTEGRITY, "cannot decrypt the ticket"},
		{"wrong authenticator key", func() []byte {
			tk, s := e.issue(tkt{})
			b, _ := e.apreq(tk, s, req{authKey: &other})
			return b
		}, errorcode.KRB_AP_ERR_BAD_INTEGRITY, "cannot decrypt the authenticator"},
		{"authenticator etype", func() []byte {
			tk, s := e.issue(tkt{})
			k := randKey(t, 17)
			b, _ := e.apreq(tk, s, req{authKey: &k})
			return b
		}, errorcode.KRB_AP_ERR_BAD_INTEGRITY, "sealed with enctype 17"},
		{"cname mismatch", func() []byte {
			tk, s := e.issue(tkt{})
			b, _ := e.apreq(tk, s, req{client: types.NewPrincipalName(1, "mallory")})
			return b
		}, errorcode.KRB_AP_ERR_BADMATCH, "authenticator names mallory@KRB.TEST, the ticket alice@KRB.TEST"},
		{"crealm mismatch", func() []byte {
			tk, s := e.issue(tkt{})
			b, _ := e.apreq(tk, s, req{crealm: "OTHER.TEST"})
			return b
		}, errorcode.KRB_AP_ERR_BADMATCH, "alice@OTHER.TEST"},
		{"not yet valid", func() []byte {
			tk, s := e.issue(tkt{startTime: now.Add(time.Hour), authTime: now.Add(-time.Hour)})
			b, _ := e.apreq(tk, s, req{})
			return b
		}, errorcode.KRB_AP_ERR_TKT_NYV, "is not valid until"},
		{"invalid flag", func() []byte {
			tk, s := e.issue(tkt{flagBits: []int{flags.Invalid, flags.PostDated}})
			b, _ := e.apreq(tk, s, req{})
			return b
		}, errorcode.KRB_AP_ERR_TKT_NYV, "INVALID flag"},
		{"expired", func() []byte {
			tk, s := e.issue(tkt{authTime: now.Add(-11 * time.Hour), endTime: now.Add(-6 * time.Minute)})
			b, _ := e.apreq(tk, s, req{})
			return b
		}, errorcode.KRB_AP_ERR_TKT_EXPIRED, "expired at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, rep, err := e.accept(c.build())
			if rep != nil {
				t.Error("AP-REP returned with an error")
			}
			ae := wantCode(t, err, c.code)
			if !strings.Contains(ae.Reason, c.reason) {
				t.Errorf("reason %q does not contain %q", ae.Reason, c.reason)
			}
			// Every error encodes as a KRB-ERROR.
			kb, err := e.acc.ErrorReply(err)
			if err != nil {
				t.Fatal(err)
			}
			var ke messages.KRBError
			if err := ke.Unmarshal(kb); err != nil || ke.ErrorCode != c.code {
				t.Fatalf("KRB-ERROR %+v %v", ke, err)
			}
		})
	}
	// Within skew of expiry and of the start time is still fine.
	for _, o := range []tkt{
		{authTime: now.Add(-11 * time.Hour), endTime: now.Add(-4 * time.Minute)},
		{startTime: now.Add(4 * time.Minute), authTime: now},
	} {
		tk, s := e.issue(o)
		b, _ := e.apreq(tk, s, req{})
		if _, _, err := e.accept(b); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestAcceptCheckOrder: when several checks fail the first stage in RFC 4120
// §3.2.3 order wins, and the replay cache is consulted only for an
// authenticator that passed every other check: an expired ticket's
// authenticator is not entered, so sending it again is still a time error,
// never KRB_AP_ERR_REPEAT (the order before the stages were split entered it
// first); a skewed one likewise; a name mismatch is found before the times.
func TestAcceptCheckOrder(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	tk, s := e.issue(tkt{authTime: now.Add(-11 * time.Hour), endTime: now.Add(-time.Hour)})
	b, _ := e.apreq(tk, s, req{})
	for i := 0; i < 2; i++ {
		_, _, err := e.accept(b)
		wantCode(t, err, errorcode.KRB_AP_ERR_TKT_EXPIRED)
	}
	skewed, _, _ := e.good(req{ctime: now.Add(-time.Hour)})
	for i := 0; i < 2; i++ {
		_, _, err := e.accept(skewed)
		wantCode(t, err, errorcode.KRB_AP_ERR_SKEW)
	}
	if n := e.acc.rc.Len(); n != 0 {
		t.Fatalf("replay cache holds %d entries after refused AP-REQs, want 0", n)
	}
	b2, _, _ := e.good(req{ctime: now.Add(-time.Hour), client: types.NewPrincipalName(1, "mallory")})
	_, _, err := e.accept(b2)
	wantCode(t, err, errorcode.KRB_AP_ERR_BADMATCH)

	// A GSS token whose checksum is not 0x8003 is refused before the replay
	// cache sees its authenticator.
	cksum := types.Checksum{CksumType: 16, Checksum: make([]byte, 12)}
	ap, _, _ := e.good(req{cksum: &cksum})
	for i := 0; i < 2; i++ {
		_, _, err := e.acc.AcceptGSS(context.Background(), ticket.FrameKRB5Token(ticket.TokIDAPReq, ap))
		wantCode(t, err, errorcode.KRB_AP_ERR_INAPP_CKSUM)
	}
	if n := e.acc.rc.Len(); n != 0 {
		t.Fatalf("replay cache holds %d entries after a refused GSS token, want 0", n)
	}
	// The one that passes everything is entered, and its replay refused.
	good, _, _ := e.good(req{})
	if _, _, err := e.accept(good); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.accept(good)
	wantCode(t, err, errorcode.KRB_AP_ERR_REPEAT)
	if n := e.acc.rc.Len(); n != 1 {
		t.Errorf("replay cache holds %d entries, want 1", n)
	}
}

// TestAcceptObserver: the observer hears every stage of Stages in order, each
// passed, for a good GSS token; for a refused AP-REQ the stages up to the one
// that failed, that one with its error, and nothing after it.
func TestAcceptObserver(t *testing.T) {
	var got []StageResult
	e := newEnv(t, func(o *Options) { o.Observer = func(r StageResult) { got = append(got, r) } })
	ap, _, _ := e.good(req{})
	if _, _, err := e.acc.AcceptGSS(context.Background(), ticket.FrameKRB5Token(ticket.TokIDAPReq, ap)); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(Stages) {
		t.Fatalf("%d stage results, want %d: %+v", len(got), len(Stages), got)
	}
	for i, r := range got {
		if r.Stage != Stages[i].Name || r.Err != nil {
			t.Errorf("stage %d: %s %v, want %s passed", i, r.Stage, r.Err, Stages[i].Name)
		}
	}
	got = nil
	now := e.clock.Now()
	tk, s := e.issue(tkt{authTime: now.Add(-11 * time.Hour), endTime: now.Add(-time.Hour)})
	b, _ := e.apreq(tk, s, req{})
	if _, _, err := e.accept(b); err == nil {
		t.Fatal("expired ticket accepted")
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Stage)
	}
	want := []string{"decode", "find-key", "decrypt-ticket", "decrypt-authenticator", "check-names", "check-times"}
	if !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v", names, want)
	}
	last := got[len(got)-1]
	if last.Err == nil || last.Err.Code != errorcode.KRB_AP_ERR_TKT_EXPIRED || last.Err.CName.NameString[0] != "alice" {
		t.Errorf("check-times: %+v", last.Err)
	}
	for _, st := range Stages {
		if st.Name == "" || st.Doc == "" {
			t.Errorf("stage %+v without a name or a doc", st)
		}
	}
}

func TestAcceptServiceRestriction(t *testing.T) {
	for _, name := range []string{"host@localhost", "host/localhost", "host/localhost@KRB.TEST"} {
		e := newEnv(t, func(o *Options) { o.Service = name })
		b, _, _ := e.good(req{})
		if _, _, err := e.accept(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		tk, s := e.issue(tkt{sname: httpName, key: e.httpKey, kvno: 1})
		b, _ = e.apreq(tk, s, req{})
		_, _, err := e.accept(b)
		wantCode(t, err, errorcode.KRB_AP_ERR_NOT_US)
	}
	e := newEnv(t)
	if _, err := NewAcceptor(e.acc.Keytab(), Options{Service: "ftp@localhost"}); err == nil {
		t.Error("NewAcceptor for a service the keytab lacks succeeded")
	}
	if _, err := NewAcceptor(e.acc.Keytab(), Options{Service: "host/localhost@OTHER"}); err == nil {
		t.Error("NewAcceptor for another realm succeeded")
	}
	for _, bad := range []string{"@x", "x@", "a@b@c", "a//b"} {
		if _, _, err := ParseServiceName(bad); err == nil {
			t.Errorf("ParseServiceName(%q) succeeded", bad)
		}
	}
}

// TestAcceptConcurrent runs many Accept calls at once (run with -race): every
// distinct authenticator is accepted exactly once, every copy is a replay.
func TestAcceptConcurrent(t *testing.T) {
	e := newEnv(t)
	const n = 64
	reqs := make([][]byte, n)
	for i := range reqs {
		tk, s := e.issue(tkt{})
		reqs[i], _ = e.apreq(tk, s, req{ctime: e.clock.Now(), cusec: i})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := make(map[int]int)
	replays := 0
	for copy := 0; copy < 3; copy++ {
		for i := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, rep, err := e.accept(reqs[i])
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					if c == nil || rep == nil {
						t.Error("success without context or AP-REP")
					}
					ok[i]++
					return
				}
				if AsAPError(err).Code == errorcode.KRB_AP_ERR_REPEAT {
					replays++
					return
				}
				t.Errorf("unexpected error %v", err)
			}()
		}
	}
	wg.Wait()
	if len(ok) != n || replays != 2*n {
		t.Fatalf("%d distinct accepted, %d replays; want %d and %d", len(ok), replays, n, 2*n)
	}
	for i, k := range ok {
		if k != 1 {
			t.Errorf("AP-REQ %d accepted %d times", i, k)
		}
	}
}

// TestAcceptLogLine: one line per authentication naming client, service and
// result (and the code and reason on failure), never key material.
func TestAcceptLogLine(t *testing.T) {
	e := newEnv(t)
	b, session, _ := e.good(req{subkey: true})
	ctx := WithRemote(context.Background(), "127.0.0.1:4242")
	c, _, err := e.acc.Accept(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	e.acc.Accept(ctx, b) // replay
	lines := strings.Split(strings.TrimSpace(e.log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), e.log.String())
	}
	for _, want := range []string{"msg=authentication", "result=ok", "client=alice@KRB.TEST", "service=host/localhost@KRB.TEST", "remote=127.0.0.1:4242", "mech=krb5-ap"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{"result=failed", "code=34", "error=KRB_AP_ERR_REPEAT", "reason=", "client=alice@KRB.TEST"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
	for _, k := range []types.EncryptionKey{session, c.AcceptorSubkey(), c.InitiatorSubkey(), e.hostKeys[2][18]} {
		for _, enc := range []string{hex.EncodeToString(k.KeyValue), fmt.Sprint(k.KeyValue)} {
			if strings.Contains(e.log.String(), enc) {
				t.Fatal("the log shows key material")
			}
		}
	}
}

// TestKeytabReload: a ticket for a kvno the loaded keytab lacks succeeds once
// the keytab file on disk has it.
func TestKeytabReload(t *testing.T) {
	e := newEnv(t)
	k3 := randKey(t, 18)
	tk, s := e.issue(tkt{key: k3, kvno: 3})
	b, _ := e.apreq(tk, s, req{})
	_, _, err := e.accept(b)
	wantCode(t, err, errorcode.KRB_AP_ERR_BADKEYVER)
	entries := []ticket.KeytabEntry{{Principal: principal.FromPrincipalName(hostName, testRealm), KVNO: 3, Key: k3, Timestamp: time.Now()}}
	if err := ticket.WriteKeytabFile(e.ktPath, entries); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(e.ktPath, future, future); err != nil {
		t.Fatal(err)
	}
	b, _ = e.apreq(tk, s, req{cusec: 1})
	if _, _, err := e.accept(b); err != nil {
		t.Fatalf("after the keytab gained kvno 3: %v", err)
	}
}

func TestResolveKeytabPath(t *testing.T) {
	t.Setenv("KRB5_KTNAME", "FILE:/env/kt")
	for _, c := range []struct{ flag, want string }{
		{"/x/kt", "/x/kt"}, {"FILE:/x/kt", "/x/kt"}, {"WRFILE:/x/kt", "/x/kt"}, {"", "/env/kt"}, {"rel/kt", "rel/kt"},
	} {
		got, err := ResolveKeytabPath(c.flag)
		if err != nil || got != c.want {
			t.Errorf("ResolveKeytabPath(%q) = %q, %v; want %q", c.flag, got, err, c.want)
		}
	}
	for _, bad := range []string{"MEMORY:x", "KEYRING:persistent:0", "FILE:"} {
		if _, err := ResolveKeytabPath(bad); err == nil {
			t.Errorf("ResolveKeytabPath(%q) succeeded", bad)
		}
	}
	t.Setenv("KRB5_KTNAME", "")
	if _, err := ResolveKeytabPath(""); err == nil || !strings.Contains(err.Error(), "--keytab") {
		t.Errorf("no keytab: %v", err)
	}
}

func TestLoadKeytabErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeytab(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing keytab loaded")
	}
	empty := filepath.Join(dir, "empty")
	if err := ticket.WriteKeytabFile(empty, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeytab(empty); err == nil {
		t.Errorf("empty keytab: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a keytab"), 0o600)
	if _, err := LoadKeytab(junk); err == nil {
		t.Error("junk keytab loaded")
	}
}

func FuzzAccept(f *testing.F) {
	e := newEnv(f)
	b, _, _ := e.good(req{})
	f.Add(b)
	f.Add(b[:40])
	f.Add([]byte{0x6e, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, err := e.acc.accept(b, nil)
		if err != nil {
			if _, kerr := e.acc.ErrorReply(err); kerr != nil {
				t.Fatal(kerr)
			}
		}
	})
}
