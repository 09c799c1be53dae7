package service

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/kerbkit/kerbkit/ticket"
)

// startSample runs a SampleServer on 127.0.0.1:0 until the test ends.
func startSample(t *testing.T, e *env, mutate ...func(*SampleServer)) (*SampleServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SampleServer{Acceptor: e.acc}
	for _, m := range mutate {
		m(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, flags byte, tok []byte) {
	t.Helper()
	if err := ticket.WriteSampleToken(c, flags, tok); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, c net.Conn) (byte, []byte) {
	t.Helper()
	f, tok, err := ticket.ReadSampleToken(c, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return f, tok
}

// TestSampleProtocol runs the gss-client sequence for krb5 and SPNEGO:
// NOOP|CONTEXT_NEXT, context token, AP-REP, wrapped DATA with SEND_MIC, MIC,
// unwrapped DATA without SEND_MIC, NOOP reply, NOOP.
func TestSampleProtocol(t *testing.T) {
	for _, spnego := range []bool{false, true} {
		e := newEnv(t)
		var (
			mu  sync.Mutex
			got []string
		)
		_, addr := startSample(t, e, func(s *SampleServer) {
			s.OnMessage = func(c *Context, m []byte) {
				mu.Lock()
				got = append(got, c.Client.String()+":"+string(m))
				mu.Unlock()
			}
		})
		c := dial(t, addr)
		send(t, c, ticket.SampleNoop|ticket.SampleContextNext, nil)
		tok, session, auth := e.gssToken(req{subkey: true, seq: 10})
		if spnego {
			tok, _ = ticket.MarshalNegTokenInit(ticket.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}, MechToken: tok})
		}
		send(t, c, ticket.SampleContext, tok)
		f, reply := recv(t, c)
		if f != ticket.SampleContext {
			t.Fatalf("reply flags %#x", f)
		}
		if spnego {
			_, resp, err := ticket.ParseNegToken(reply)
			if err != nil {
				t.Fatal(err)
			}
			reply = resp.ResponseToken
		}
		in := finish(t, reply, session, auth)
		w, _ := ticket.WrapGSS(in.key, []byte("hello"), false, true, in.sendSeq)
		send(t, c, ticket.SampleData|ticket.SampleWrapped|ticket.SampleEncrypted|ticket.SampleSendMIC, w)
		f, mic := recv(t, c)
		if f != ticket.SampleMIC {
			t.Fatalf("MIC flags %#x", f)
		}
		if seq, err := ticket.VerifyMIC(in.key, []byte("hello"), mic, true); err != nil || seq != in.recvSeq {
			t.Fatalf("MIC: seq %d %v", seq, err)
		}
		send(t, c, ticket.SampleData, []byte("plain"))
		if f, tok := recv(t, c); f != ticket.SampleNoop || len(tok) != 0 {
			t.Fatalf("reply to DATA without SEND_MIC: %#x %x", f, tok)
		}
		send(t, c, ticket.SampleNoop, nil)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("server did not close after NOOP: %v", err)
		}
		mu.Lock()
		if strings.Join(got, ",") != "alice@KRB.TEST:hello,alice@KRB.TEST:plain" {
			t.Errorf("messages %q", got)
		}
		mu.Unlock()
		if log := e.log.String(); !strings.Contains(log, `received message: \"hello\"`) || !strings.Contains(log, "client=alice@KRB.TEST") {
			t.Errorf("log:\n%s", log)
		}
	}
}

func TestSampleProtocolFailures(t *testing.T) {
	e := newEnv(t)
	s, addr := startSample(t, e, func(s *SampleServer) { s.MaxToken = 4096 })

	t.Run("replay gets an error token and a close", func(t *testing.T) {
		tok, _, _ := e.gssToken(req{})
		for i := 0; i < 2; i++ {
			c := dial(t, addr)
			send(t, c, ticket.SampleNoop|ticket.SampleContextNext, nil)
			send(t, c, ticket.SampleContext, tok)
			f, reply := recv(t, c)
			id, msg, err := ticket.ParseKRB5Token(reply)
			if err != nil || f != ticket.SampleContext {
				t.Fatal(err)
			}
			if i == 0 {
				if id != ticket.TokIDAPRep {
					t.Fatalf("first: TOK_ID %04x", id)
				}
				continue
			}
			if id != ticket.TokIDError {
				t.Fatalf("replay: TOK_ID %04x", id)
			}
			if re, err := ticket.ParseKRBError(msg); err != nil || re.KRBError.ErrorCode != 34 {
				t.Fatalf("%v %v", re, err)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("connection not closed after the error token: %v", err)
			}
		}
	})
	t.Run("oversized token closes", func(t *testing.T) {
		c := dial(t, addr)
		hdr := []byte{ticket.SampleNoop | ticket.SampleContextNext, 0, 0, 0, 0, ticket.SampleContext}
		hdr = binary.BigEndian.AppendUint32(hdr, 1<<30)
		c.Write(hdr)
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("first token must be NOOP", func(t *testing.T) {
		c := dial(t, addr)
		send(t, c, ticket.SampleContext, []byte{1})
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("bad wrap token closes", func(t *testing.T) {
		c := dial(t, addr)
		send(t, c, ticket.SampleNoop|ticket.SampleContextNext, nil)
		tok, _, _ := e.gssToken(req{})
		send(t, c, ticket.SampleContext, tok)
		recv(t, c)
		send(t, c, ticket.SampleData|ticket.SampleWrapped|ticket.SampleSendMIC, bytes.Repeat([]byte{5}, 60))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("no context: plain data only", func(t *testing.T) {
		c := dial(t, addr)
		send(t, c, ticket.SampleNoop, nil)
		send(t, c, ticket.SampleData, []byte("anon"))
		if f, _ := recv(t, c); f != ticket.SampleNoop {
			t.Fatalf("%#x", f)
		}
		send(t, c, ticket.SampleData|ticket.SampleSendMIC, []byte("anon"))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Conns() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Conns(); n != 0 {
		t.Errorf("%d connections left open", n)
	}
}

// TestSampleServerLimits: connections over the cap are closed at once; an idle
// connection is closed after the read timeout; Serve returns promptly on
// cancel with connections still open.
func TestSampleServerLimits(t *testing.T) {
	e := newEnv(t)
	s, addr := startSample(t, e, func(s *SampleServer) { s.MaxConns = 2; s.ReadTimeout = 300 * time.Millisecond })
	a, b := dial(t, addr), dial(t, addr)
	_ = a
	_ = b
	deadline := time.Now().Add(2 * time.Second)
	for s.Conns() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c := dial(t, addr)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("third connection: %v, want EOF", err)
	}
	// The idle ones time out.
	start := time.Now()
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
}

func TestSampleServeShutdown(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SampleServer{Acceptor: e.acc}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c := dial(t, ln.Addr().String())
	send(t, c, ticket.SampleNoop|ticket.SampleContextNext, nil) // then idle, mid-protocol
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("open connection not closed at shutdown: %v", err)
	}
}
