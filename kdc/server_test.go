package kdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

func TestMalformedPacketsKeepServing(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	good := marshalAS(t, asReq("alice"))
	garbage := [][]byte{
		{},
		{0x00},
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{0x6a, 0x84, 0xff, 0xff, 0xff, 0xff}, // AS-REQ tag with an absurd length
		{0x6c, 0x02, 0x30, 0x00},             // TGS-REQ tag, empty body
		{0x7e, 0x03, 0x02, 0x01, 0x05},       // KRB-ERROR: not a request
		bytes.Repeat([]byte{0xff}, 4000),
	}
	for i := 1; i < len(good); i += 7 {
		garbage = append(garbage, good[:i]) // truncations
	}
	for _, g := range garbage {
		if reply, ok := udpExchange(t, r.addr, g, 50*time.Millisecond); ok {
			t.Fatalf("UDP garbage % x got a reply % x", g[:min(len(g), 8)], reply[:min(len(reply), 8)])
		}
		// Over TCP undecodable input gets no reply and the connection is closed.
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		writeFrame(t, c, g)
		if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Fatalf("TCP garbage got a reply")
		}
		c.Close()
	}
	// Still serving, over both transports.
	if reply, ok := udpExchange(t, r.addr, good, 2*time.Second); !ok {
		t.Fatal("no UDP reply after garbage")
	} else {
		expectError(t, reply, errorcode.KDC_ERR_PREAUTH_REQUIRED)
	}
	expectError(t, tcpExchange(t, r.addr, good), errorcode.KDC_ERR_PREAUTH_REQUIRED)
	if r.kdc.Panics() != 0 {
		t.Fatalf("%d requests panicked", r.kdc.Panics())
	}
}

func TestTCPLengthLimits(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	for _, n := range []uint32{0x80000010, MaxTCPMessage + 1} {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, n)); err != nil {
			t.Fatal(err)
		}
		expectError(t, readFrame(t, c), errorcode.KRB_ERR_FIELD_TOOLONG)
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("length %#x: connection not closed after KRB-ERROR 61: %v", n, err)
		}
		c.Close()
	}
}

func TestTCPPipelinedAndClose(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	a, b := asReq("alice"), asReq("nobody")
	writeFrame(t, c, marshalAS(t, a))
	writeFrame(t, c, marshalAS(t, b))
	expectError(t, readFrame(t, c), errorcode.KDC_ERR_PREAUTH_REQUIRED)
	expectError(t, readFrame(t, c), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)

	// The client closes first; the server must close its side at once (no
	// CLOSE_WAIT), which frees its connection slot.
	c.(*net.TCPConn).CloseWrite()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server did not close after client EOF: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.serverConns() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.serverConns(); n != 0 {
		t.Fatalf("%d connections still open after the client closed", n)
	}
}

func TestUDPResponseTooBig(t *testing.T) {
	r := newTestRealm(t, func(c *Config) { c.MaxUDPReply = 200 })
	r.serve()
	req, key := r.preauthASReq("alice", 18)
	pkt := marshalAS(t, req)
	reply, ok := udpExchange(t, r.addr, pkt, 2*time.Second)
	if !ok {
		t.Fatal("no UDP reply")
	}
	expectError(t, reply, errorcode.KRB_ERR_RESPONSE_TOO_BIG)
	// The client's retry of the same request over TCP gets the full reply.
	asRep(t, tcpExchange(t, r.addr, pkt), key)
	// A small reply still goes over UDP.
	if reply, ok := udpExchange(t, r.addr, marshalAS(t, asReq("nobody")), 2*time.Second); !ok || len(reply) > 200 {
		t.Fatal("small error reply not sent over UDP")
	}
}

func TestRetransmissionGetsIdenticalReply(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	req, key := r.preauthASReq("alice", 18)
	pkt := marshalAS(t, req)
	first, ok := udpExchange(t, r.addr, pkt, 2*time.Second)
	if !ok {
		t.Fatal("no reply")
	}
	second, ok := udpExchange(t, r.addr, pkt, 2*time.Second)
	if !ok {
		t.Fatal("no reply to the retransmission")
	}
	if !bytes.Equal(first, second) {
		t.Fatal("retransmission got a different reply")
	}
	asRep(t, second, key)
	// Past the lookaside window a fresh reply (new session key) is made.
	r.clock.Advance(DefaultLookasideTTL + time.Second)
	req.PAData = append(req.PAData[:0], encTimestamp(t, key, r.clock.Now()))
	third := r.exchange(marshalAS(t, req))
	if bytes.Equal(first, third) {
		t.Fatal("reply reused after the lookaside window")
	}
}

func TestShutdownIsClean(t *testing.T) {
	r := newTestRealm(t)
	srv := NewServer(r.kdc, nil)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	// An idle connection must not hold up shutdown.
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(ShutdownGrace + time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", srv.Addr()); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func FuzzHandle(f *testing.F) {
	r := newTestRealm(f)
	f.Add(marshalAS(f, asReq("alice")))
	f.Add(marshalAS(f, asReq("nobody", 23)))
	f.Add([]byte{0x6c, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		reply, ok := r.kdc.Handle(context.Background(), pkt, UDP, nil)
		if ok && len(reply) == 0 {
			t.Fatal("ok with an empty reply")
		}
		if r.kdc.Panics() != 0 {
			t.Fatalf("request panicked: % x", pkt)
		}
	})
}

func TestTCPConnectionCap(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < MaxTCPConns; i++ {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(3 * time.Second)
	for r.serverConns() < MaxTCPConns && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.serverConns(); n != MaxTCPConns {
		t.Fatalf("server holds %d connections, want %d", n, MaxTCPConns)
	}
	// One more is accepted by the kernel and closed by the server at once.
	extra, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(3 * time.Second))
	writeFrame(t, extra, marshalAS(t, asReq("alice")))
	if n, err := extra.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatal("a connection over the cap was served")
	}
	// Freeing a slot lets the next client in.
	held[0].Close()
	held = held[1:]
	deadline = time.Now().Add(3 * time.Second)
	for r.serverConns() >= MaxTCPConns && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	expectError(t, tcpExchange(t, r.addr, marshalAS(t, asReq("alice"))), 25)
}

func TestTCPIdleConnectionClosed(t *testing.T) {
	r := newTestRealm(t)
	srv := NewServer(r.kdc, nil)
	srv.IdleTimeout = 200 * time.Millisecond
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	for name, send := range map[string][]byte{
		"idle":          nil,
		"half a header": {0, 0},
		"half a body":   {0, 0, 0, 100, 0x6a},
	} {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s connection: read gave %v, want EOF from the server closing it", name, err)
		}
		c.Close()
	}
}
