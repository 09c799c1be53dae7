package kdc

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

const (
	testRealm    = "KRB.TEST"
	testPassword = "alicepw"
)

// testRealmEnv is an in-process realm: a bbolt store in t.TempDir(), a KDC, and
// optionally a real server on 127.0.0.1:0.
type testRealmEnv struct {
	t     testing.TB
	store principal.Store
	kdc   *KDC
	clock *clock.Offset
	admin *LocalAdmin
	addr  string
	srv   *Server
}

func newTestRealm(t testing.TB, mutate ...func(*Config)) *testRealmEnv {
	t.Helper()
	store, err := store.Init(context.Background(), filepath.Join(t.TempDir(), "kdc.db"), testRealm,
		principal.RealmPolicy{MaxLife: 10 * time.Hour, MaxRenew: 7 * 24 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := &clock.Offset{}
	cfg := Config{Store: store, Now: clk.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &testRealmEnv{t: t, store: store, kdc: k, clock: clk, admin: &LocalAdmin{Store: store}}
	r.add(AddRequest{Name: "alice", Password: testPassword})
	r.add(AddRequest{Name: "host/localhost", RandomKey: true})
	return r
}

func (r *testRealmEnv) add(req AddRequest) {
	r.t.Helper()
	if _, err := r.admin.Add(context.Background(), req); err != nil {
		r.t.Fatal(err)
	}
}

// serve starts a real UDP+TCP server on 127.0.0.1:0, stopped at cleanup.
func (r *testRealmEnv) serve() {
	r.t.Helper()
	srv := NewServer(r.kdc, nil)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	r.addr = srv.Addr()
	r.srv = srv
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("Serve: %v", err)
		}
	})
}

func (r *testRealmEnv) key(name string, etype int32) types.EncryptionKey {
	r.t.Helper()
	rec, err := r.store.Get(context.Background(), principal.MustParse(name))
	if err != nil {
		r.t.Fatal(err)
	}
	k, ok := rec.FindKey(etype, 0)
	if !ok {
		r.t.Fatalf("%s has no etype %d key", name, etype)
	}
	return k.EncryptionKey()
}

// asReq builds an AS-REQ; edit it before marshaling.
func asReq(cname string, etypes ...int32) messages.ASReq {
	if len(etypes) == 0 {
		etypes = []int32{18, 17, 20, 19}
	}
	return messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO: 5, MsgType: msgtype.KRB_AS_REQ,
		ReqBody: messages.KDCReqBody{
			KDCOptions: ticket.Flags(),
			CName:      types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, cname),
			Realm:      testRealm,
			SName:      principal.Krbtgt(testRealm).PrincipalName(),
			Till:       time.Now().Add(24 * time.Hour).UTC(),
			Nonce:      123456,
			EType:      etypes,
		},
	}}
}

// preauthASReq is asReq(cname, etypes...) pre-authenticated: PA-ENC-TIMESTAMP
// on the KDC's clock in cname's key of enctype etype, which it returns too.
func (r *testRealmEnv) preauthASReq(cname string, etype int32, etypes ...int32) (messages.ASReq, types.EncryptionKey) {
	r.t.Helper()
	key := r.key(cname+"@"+testRealm, etype)
	req := asReq(cname, etypes...)
	req.PAData = types.PADataSequence{encTimestamp(r.t, key, r.clock.Now())}
	return req, key
}

// encTimestamp is PA-ENC-TIMESTAMP for time at with key (usage 1).
func encTimestamp(t testing.TB, key types.EncryptionKey, at time.Time) types.PAData {
	t.Helper()
	at = at.UTC()
	b, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: at.Truncate(time.Second), PAUSec: at.Nanosecond() / 1000})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := crypto.GetEncryptedData(b, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ed.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: v}
}

func marshalAS(t testing.TB, req messages.ASReq) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchange sends pkt to the in-process KDC and returns the reply.
func (r *testRealmEnv) exchange(pkt []byte) []byte {
	r.t.Helper()
	reply, ok := r.kdc.Handle(context.Background(), pkt, TCP, nil)
	if !ok {
		r.t.Fatal("KDC gave no reply")
	}
	return reply
}

// expectError asserts the reply is a KRB-ERROR with code and returns it.
func expectError(t testing.TB, reply []byte, code int32) messages.KRBError {
	t.Helper()
	var e messages.KRBError
	if err := e.Unmarshal(reply); err != nil {
		t.Fatalf("reply is not a KRB-ERROR (tag %d): %v", ticket.MessageType(reply), err)
	}
	if e.ErrorCode != code {
		t.Fatalf("error code %d (%s), want %d", e.ErrorCode, e.EText, code)
	}
	return e
}

// asRep decodes an AS-REP and its enc-part with key (usage 3).
func asRep(t testing.TB, reply []byte, key types.EncryptionKey) (messages.ASRep, messages.EncKDCRepPart) {
	t.Helper()
	var rep messages.ASRep
	if err := rep.Unmarshal(reply); err != nil {
		var e messages.KRBError
		if e.Unmarshal(reply) == nil {
			t.Fatalf("got KRB-ERROR %d %s", e.ErrorCode, e.EText)
		}
		t.Fatalf("not an AS-REP: %v", err)
	}
	part, err := ticket.DecryptReplyPart(rep.EncPart, key, keyusage.AS_REP_ENCPART)
	if err != nil {
		t.Fatal(err)
	}
	return rep, part
}

// login runs a pre-authenticated AS exchange for alice with opts applied to the
// request and returns the reply.
func (r *testRealmEnv) login(edit func(*messages.ASReq)) (messages.ASRep, messages.EncKDCRepPart) {
	r.t.Helper()
	req, key := r.preauthASReq("alice", 18)
	if edit != nil {
		edit(&req)
	}
	return asRep(r.t, r.exchange(marshalAS(r.t, req)), key)
}

// tcpExchange sends one framed message on a new connection and reads one reply.
func tcpExchange(t testing.TB, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	writeFrame(t, c, msg)
	return readFrame(t, c)
}

// dialTCP connects to the realm's server (serve) with a deadline of d on the
// whole connection; it is closed at cleanup if the test does not close it.
func (r *testRealmEnv) dialTCP(d time.Duration) net.Conn {
	r.t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(d))
	return c
}

func writeFrame(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	if _, err := c.Write(append(frame, msg...)); err != nil {
		t.Fatal(err)
	}
}

func readFrame(t testing.TB, c net.Conn) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("reading reply length: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return b
}

func udpExchange(t testing.TB, addr string, msg []byte, wait time.Duration) ([]byte, bool) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// serverConns reports open TCP connections of the last server started by serve.
func (r *testRealmEnv) serverConns() int64 { return r.srv.conns.Load() }
