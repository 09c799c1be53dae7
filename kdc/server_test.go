package kdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/types"
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
		c := r.dialTCP(3 * time.Second)
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
		c := r.dialTCP(3 * time.Second)
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
	c := r.dialTCP(5 * time.Second)
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

// TestTCPFramesAcrossReads: the worker's read buffer (tcpReadBuffer) sees frames
// however they arrive: three in one segment, one larger than the buffer among
// them, and one a byte at a time; each gets its own answer, in order.
func TestTCPFramesAcrossReads(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	c := r.dialTCP(10 * time.Second)
	big := asReq("alice")
	big.PAData = types.PADataSequence{{PADataType: 999, PADataValue: bytes.Repeat([]byte{0x5a}, 2*tcpReadBuffer)}}
	var seg []byte
	for _, m := range [][]byte{marshalAS(t, asReq("alice")), marshalAS(t, big), marshalAS(t, asReq("nobody"))} {
		seg = append(binary.BigEndian.AppendUint32(seg, uint32(len(m))), m...)
	}
	if _, err := c.Write(seg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int32{errorcode.KDC_ERR_PREAUTH_REQUIRED, errorcode.KDC_ERR_PREAUTH_REQUIRED, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN} {
		expectError(t, readFrame(t, c), want)
	}
	m := marshalAS(t, asReq("nobody-else"))
	for _, b := range binary.BigEndian.AppendUint32(nil, uint32(len(m))) {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range m {
		if _, err := c.Write(m[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	expectError(t, readFrame(t, c), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)
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

// dialFrom opens a TCP connection to addr from the loopback address src
// (127.0.0.0/8 is all local on Linux), so tests can play several clients.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitConns waits (bounded) until the server holds want connections.
func waitConns(t testing.TB, srv *Server, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for srv.conns.Load() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.conns.Load(); n != want {
		t.Fatalf("server holds %d connections, want %d", n, want)
	}
}

// fillConns opens MaxTCPConns connections from MaxTCPConns/MaxTCPConnsPerSource
// loopback sources, each sending prefix, and returns them in the order opened.
func fillConns(t *testing.T, srv *Server, prefix []byte) []net.Conn {
	t.Helper()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := 0; i < MaxTCPConns; i++ {
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", 1+i/MaxTCPConnsPerSource), srv.Addr())
		if prefix != nil {
			if _, err := c.Write(prefix); err != nil {
				t.Fatal(err)
			}
		}
		held = append(held, c)
		if prefix == nil {
			// Keep the order of idleness the order of opening.
			waitConns(t, srv, int64(i+1))
		}
	}
	waitConns(t, srv, MaxTCPConns)
	return held
}

// TestTCPConnectionCap: at MaxTCPConns the oldest idle connection is closed to
// make room for a new one (issue 8: the newest was refused, so idle
// connections of one client shut everyone out).
func TestTCPConnectionCap(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	held := fillConns(t, r.srv, nil)
	reply := exchangeFrom(t, "127.0.2.1", r.addr, marshalAS(t, asReq("alice")))
	expectError(t, reply, 25)
	if n := r.serverConns(); n > MaxTCPConns {
		t.Fatalf("server holds %d connections, over the cap", n)
	}
	// The oldest connection is the one that made room.
	held[0].SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := held[0].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the oldest idle connection: read gave %v, want EOF", err)
	}
	// The newest ones still work.
	last := held[len(held)-1]
	last.SetDeadline(time.Now().Add(3 * time.Second))
	writeFrame(t, last, marshalAS(t, asReq("alice")))
	expectError(t, readFrame(t, last), 25)
}

// TestTCPConnectionCapAllBusy: when every connection is mid-request, there is
// nothing to evict and the new connection is closed at once.
func TestTCPConnectionCapAllBusy(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	// A header announcing 100 bytes and one byte of body: busy, not idle.
	fillConns(t, r.srv, []byte{0, 0, 0, 100, 0x6a})
	// Wait (bounded) until the server has read every header.
	deadline := time.Now().Add(30 * time.Second)
	for idle := -1; idle != 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.srv.mu.Lock()
		idle = 0
		for c := range r.srv.open {
			if c.idleSince.Load() != 0 {
				idle++
			}
		}
		r.srv.mu.Unlock()
	}
	extra := dialFrom(t, "127.0.2.1", r.addr)
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(3 * time.Second))
	writeFrame(t, extra, marshalAS(t, asReq("alice")))
	if n, err := extra.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatal("a connection over the cap was served while every other was busy")
	}
}

// exchangeFrom is tcpExchange from the loopback address src.
func exchangeFrom(t testing.TB, src, addr string, msg []byte) []byte {
	t.Helper()
	c := dialFrom(t, src, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	writeFrame(t, c, msg)
	return readFrame(t, c)
}

// lineCounter counts the lines written to it.
type lineCounter struct {
	mu    sync.Mutex
	lines int
	bytes int
	match string
	hits  int
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines += bytes.Count(p, []byte("\n"))
	w.bytes += len(p)
	if w.match != "" && bytes.Contains(p, []byte(w.match)) {
		w.hits++
	}
	return len(p), nil
}

func (w *lineCounter) counts() (lines, bytes, hits int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines, w.bytes, w.hits
}

// TestTCPOneSourceCannotShutOthersOut is the regression test of issue 8: one
// client opening connections in a loop held the whole connection cap (1 of 10
// fresh requests from elsewhere was answered) and wrote a WARN line for every
// refused connection. Now the attacker keeps its share, a client on another
// address logs in every time, and the refusals make a line per logEvery.
func TestTCPOneSourceCannotShutOthersOut(t *testing.T) {
	logs := &lineCounter{match: "tcp connections refused"}
	r := newTestRealm(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	r.serve()

	stop := make(chan struct{})
	var opened atomic.Int64
	var attack sync.WaitGroup
	attack.Add(1)
	go func() {
		defer attack.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.3.1")}}
		for i := 0; i < 4000; i++ { // bounded: at most 4000 connections, or until stop
			select {
			case <-stop:
				return
			default:
			}
			if c, err := d.Dial("tcp", r.addr); err == nil {
				conns = append(conns, c)
				opened.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// Let the attacker open more connections than the whole cap first.
	deadline := time.Now().Add(10 * time.Second)
	for opened.Load() < MaxTCPConns+64 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ok := 0
	for i := 0; i < 10; i++ {
		req, key := r.preauthASReq("alice", 18)
		c := dialFrom(t, "127.0.3.2", r.addr)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		writeFrame(t, c, marshalAS(t, req))
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err == nil {
			b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, b); err == nil {
				asRep(t, b, key)
				ok++
			}
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	attack.Wait()
	if ok < 9 {
		t.Fatalf("%d of 10 logins from another address succeeded under the attack", ok)
	}
	if n := r.serverConns(); n > MaxTCPConnsPerSource+1 {
		t.Errorf("server holds %d connections: the attacker went over its share", n)
	}
	if _, _, hits := logs.counts(); hits > 3 {
		t.Errorf("%d summary lines about refused connections in a few seconds, want at most one per %v", hits, logEvery)
	}
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
