package client

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/kerbkit/kerbkit/ticket"
)

// A fake GSS sample server (the protocol of MIT gss-server) in front of the in-test acceptor.

// sampleServer knobs spoil one step of the exchange.
type sampleServer struct {
	acc acceptor

	spnego      bool // answer with a NegTokenResp
	negState    int  // negState of that answer (default accept-completed)
	rawAPRep    bool // with spnego, answer a raw krb5 token anyway
	errorToken  bool // answer a KRB-ERROR token
	closeAfter  int  // close after reading this many tokens (0: never)
	silent      bool // read the context token and never answer
	hugeLength  bool // answer with a length beyond MaxSampleToken
	tamperMIC   bool // flip a bit of the MIC
	micSeqShift int  // add to the MIC's sequence number
	badMICFlag  bool // send the MIC with flag DATA instead of MIC

	got chan sampleGot // what the server received, once it finished
}

type sampleGot struct {
	message []byte
	wrapSeq uint64
	flags   []byte // token flags in order
	err     error
}

// readSample reads one sample-protocol token.
// serve runs the server side on conn; the result goes to s.got.
func (s *sampleServer) serve(t *testing.T, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var g sampleGot
	defer func() { s.got <- g }()
	read := func() ([]byte, bool) {
		f, b, err := ticket.ReadSampleToken(conn, 1<<20)
		if err != nil {
			g.err = err
			return nil, false
		}
		g.flags = append(g.flags, f)
		if s.closeAfter > 0 && len(g.flags) >= s.closeAfter {
			return nil, false
		}
		return b, true
	}
	if _, ok := read(); !ok { // NOOP|CONTEXT_NEXT
		return
	}
	tok, ok := read()
	if !ok {
		return
	}
	if s.silent {
		_, _ = io.Copy(io.Discard, conn)
		return
	}
	if s.hugeLength {
		_, _ = conn.Write([]byte{ticket.SampleContext, 0x7f, 0xff, 0xff, 0xff})
		return
	}
	inner := tok
	if mech, _, err := ticket.ParseGSSToken(tok); err == nil && mech.Equal(ticket.OIDSPNEGO) {
		init, _, err := ticket.ParseNegToken(tok)
		if err != nil || init == nil || len(init.MechTypes) != 1 || !init.MechTypes[0].Equal(ticket.OIDKRB5) {
			g.err = errors.New("bad NegTokenInit")
			return
		}
		inner = init.MechToken
	}
	id, apreq, err := ticket.ParseKRB5Token(inner)
	if err != nil || id != ticket.TokIDAPReq {
		g.err = errors.New("bad krb5 token")
		return
	}
	var answer []byte
	if s.errorToken {
		answer = ticket.FrameKRB5Token(ticket.TokIDError, s.acc.krbError(t, errorcode.KRB_AP_ERR_BAD_INTEGRITY))
	} else {
		answer = ticket.FrameKRB5Token(ticket.TokIDAPRep, s.acc.accept(t, apreq))
	}
	if s.spnego && !s.rawAPRep {
		answer, err = ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: s.negState, SupportedMech: ticket.OIDKRB5, ResponseToken: answer})
		if err != nil {
			g.err = err
			return
		}
	}
	if err := ticket.WriteSampleToken(conn, ticket.SampleContext, answer); err != nil {
		g.err = err
		return
	}
	wrapped, ok := read()
	if !ok {
		return
	}
	msg, seq, err := ticket.UnwrapGSS(s.acc.gssKey(), wrapped, false)
	if err != nil {
		g.err = err
		return
	}
	g.message, g.wrapSeq = msg, seq
	mic, err := ticket.MakeMIC(s.acc.gssKey(), msg, true, uint64(s.acc.seq)+uint64(s.micSeqShift))
	if err != nil {
		g.err = err
		return
	}
	if s.tamperMIC {
		mic[len(mic)-1] ^= 1
	}
	flag := ticket.SampleMIC
	if s.badMICFlag {
		flag = ticket.SampleData
	}
	if err := ticket.WriteSampleToken(conn, flag, mic); err != nil {
		g.err = err
		return
	}
	_, _ = read() // NOOP
}

// runSample runs GSSSample against a fresh fake server over TCP on 127.0.0.1.
func runSample(t *testing.T, s *sampleServer, o GSSSampleOptions) (*APContext, *GSSSampleResult, sampleGot, error) {
	t.Helper()
	s.acc.svc = newAPService(t, "host", "localhost")
	s.got = make(chan sampleGot, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			s.got <- sampleGot{err: err}
			return
		}
		s.serve(t, c)
	}()
	ap, err := NewAPRequest(s.acc.svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96), APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := DialGSSSample(ctx, l.Addr().String(), ap, o)
	select {
	case g := <-s.got:
		return ap, res, g, err
	case <-time.After(15 * time.Second):
		t.Fatal("fake sample server did not finish")
	}
	return nil, nil, sampleGot{}, nil
}

func TestGSSSample(t *testing.T) {
	for _, spnego := range []bool{false, true} {
		name := map[bool]string{false: "krb5", true: "spnego"}[spnego]
		t.Run(name, func(t *testing.T) {
			ap, res, got, err := runSample(t, &sampleServer{spnego: spnego}, GSSSampleOptions{SPNEGO: spnego, Message: []byte("hello there")})
			if err != nil {
				t.Fatal(err)
			}
			if got.err != nil {
				t.Fatalf("server: %v", got.err)
			}
			if string(got.message) != "hello there" || got.wrapSeq != uint64(ap.Seq) {
				t.Errorf("server got %q seq %d, want %q seq %d", got.message, got.wrapSeq, "hello there", ap.Seq)
			}
			want := []byte{0x11, 0x02, 0xe4, 0x01}
			if string(got.flags) != string(want) {
				t.Errorf("token flags %x, want %x", got.flags, want)
			}
			if !res.MessageSent || !res.MICVerified || res.MICSeq != uint64(ap.AcceptorSeq) || res.Response.SPNEGO != spnego {
				t.Errorf("result %+v", res)
			}
			if !ap.HasAcceptorSubkey() {
				t.Error("acceptor subkey not adopted")
			}
		})
	}
	t.Run("no message", func(t *testing.T) {
		_, res, got, err := runSample(t, &sampleServer{}, GSSSampleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The server reads the final NOOP where it expected the wrapped message.
		if res.MessageSent || string(got.flags) != "\x11\x02\x01" {
			t.Errorf("result %+v, server saw flags %x", res, got.flags)
		}
	})
	t.Run("spnego server answers raw krb5", func(t *testing.T) {
		_, res, _, err := runSample(t, &sampleServer{spnego: true, rawAPRep: true}, GSSSampleOptions{SPNEGO: true, Message: []byte("x")})
		if err != nil || res.Response.SPNEGO {
			t.Fatalf("err %v, result %+v", err, res)
		}
	})
}

func TestGSSSampleFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		srv    sampleServer
		opts   GSSSampleOptions
		want   string
		mutual bool // the error must wrap ErrMutualFailed
	}{
		{"tampered ctime", sampleServer{acc: acceptor{ctimeShift: -time.Second}}, GSSSampleOptions{}, "server failed mutual authentication: AP-REP ctime", true},
		{"wrong key", sampleServer{acc: acceptor{wrongKey: true}}, GSSSampleOptions{}, "AP-REP does not decrypt", true},
		{"KRB-ERROR token", sampleServer{errorToken: true}, GSSSampleOptions{}, "rejected our authentication: Decrypt integrity check failed", false},
		{"spnego reject", sampleServer{spnego: true, negState: ticket.NegStateReject}, GSSSampleOptions{SPNEGO: true}, "rejected the SPNEGO negotiation", false},
		{"spnego incomplete", sampleServer{spnego: true, negState: ticket.NegStateAcceptIncomplete}, GSSSampleOptions{SPNEGO: true}, "negState 1", false},
		{"closed after context", sampleServer{closeAfter: 2}, GSSSampleOptions{}, "server closed the connection", false},
		{"huge length", sampleServer{hugeLength: true}, GSSSampleOptions{}, "exceeds", false},
		{"silent", sampleServer{silent: true}, GSSSampleOptions{Timeout: 300 * time.Millisecond}, "no answer within 300ms", false},
		{"tampered MIC", sampleServer{tamperMIC: true}, GSSSampleOptions{Message: []byte("m")}, "server's MIC does not verify", false},
		{"MIC seq", sampleServer{micSeqShift: 1}, GSSSampleOptions{Message: []byte("m")}, "replayed or out of order", false},
		{"MIC flag", sampleServer{badMICFlag: true}, GSSSampleOptions{Message: []byte("m")}, "instead of a MIC", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			srv := tc.srv
			_, res, _, err := runSample(t, &srv, tc.opts)
			if err == nil {
				t.Fatalf("succeeded: %+v", res)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if errors.Is(err, ErrMutualFailed) != tc.mutual {
				t.Errorf("errors.Is(err, ErrMutualFailed) = %v, want %v", !tc.mutual, tc.mutual)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestGSSSampleCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c) // never answers
			c.Close()
		}
	}()
	svc := newAPService(t, "host", "localhost")
	ap, err := NewAPRequest(svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96), APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = DialGSSSample(ctx, l.Addr().String(), ap, GSSSampleOptions{Timeout: time.Minute})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("err = %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
}

func TestAcceptTokenSPNEGOMech(t *testing.T) {
	svc := newAPService(t, "host", "localhost")
	ap, err := NewAPRequest(svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96), APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := ticket.FrameKRB5Token(ticket.TokIDAPRep, (&acceptor{svc: svc}).accept(t, ap.Request))
	ntlm := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}
	for name, resp := range map[string]ticket.NegTokenResp{
		"foreign mech":  {NegState: 0, SupportedMech: ntlm, ResponseToken: rep},
		"no negState":   {NegState: ticket.NegStateAbsent, ResponseToken: rep},
		"no token":      {NegState: 0, SupportedMech: ticket.OIDKRB5},
		"request-mic":   {NegState: ticket.NegStateRequestMIC, ResponseToken: rep},
		"token is init": {NegState: 0, ResponseToken: ap.Request},
	} {
		b, err := ticket.MarshalNegTokenResp(resp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ap.AcceptToken(b, true); err == nil || ap.Established {
			t.Errorf("%s: accepted", name)
		}
	}
	// The legacy Microsoft OID is krb5.
	b, _ := ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: 0, SupportedMech: ticket.OIDKRB5Legacy, ResponseToken: rep})
	if info, err := ap.AcceptToken(b, true); err != nil || !info.SPNEGO {
		t.Errorf("legacy OID: %v %+v", err, info)
	}
	// A SPNEGO token where a raw krb5 token is expected is refused.
	ap2, _ := NewAPRequest(svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96), APOptions{})
	if _, err := ap2.AcceptToken(b, false); err == nil {
		t.Error("NegTokenResp accepted without SPNEGO")
	}
}
