package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// fakeKDC is a tiny UDP+TCP server on one 127.0.0.1 port. Handlers return the reply, or nil for no reply.
type fakeKDC struct {
	addr     string
	udpReqs  atomic.Int32
	tcpReqs  atomic.Int32
	firstTCP chan []byte // the bytes of the first read on the first TCP connection
	once     sync.Once
}

// startFakeKDC starts the servers; udp or tcp may be nil to leave that transport closed (nothing listening).
// The tcp handler gets the connection to write its reply in any way it likes.
func startFakeKDC(t *testing.T, udp func(req []byte) []byte, tcp func(conn net.Conn, req []byte)) *fakeKDC {
	t.Helper()
	f := &fakeKDC{firstTCP: make(chan []byte, 1)}
	var tl net.Listener
	var ul net.PacketConn
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			l.Close()
			continue
		}
		tl, ul = l, u
		break
	}
	if tl == nil {
		t.Fatal("no free port for the fake KDC")
	}
	f.addr = tl.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		tl.Close()
		ul.Close()
		wg.Wait()
	})
	if tcp == nil {
		tl.Close()
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := tl.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer conn.Close()
					_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 70000)
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					first := append([]byte(nil), buf[:n]...)
					f.once.Do(func() { f.firstTCP <- first })
					msg := first
					if len(msg) < 4 {
						return
					}
					l := int(binary.BigEndian.Uint32(msg[:4]))
					for len(msg) < 4+l {
						m, err := conn.Read(buf)
						if err != nil {
							return
						}
						msg = append(msg, buf[:m]...)
					}
					f.tcpReqs.Add(1)
					tcp(conn, msg[4:4+l])
				}()
			}
		}()
	}
	if udp == nil {
		ul.Close()
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 70000)
			for {
				n, from, err := ul.ReadFrom(buf)
				if err != nil {
					return
				}
				f.udpReqs.Add(1)
				if rep := udp(append([]byte(nil), buf[:n]...)); rep != nil {
					_, _ = ul.WriteTo(rep, from)
				}
			}
		}()
	}
	return f
}

// writeFramed writes a TCP reply with its length prefix.
func writeFramed(conn net.Conn, b []byte) {
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	_, _ = conn.Write(append(msg, b...))
}

// krbErrorBytes encodes a KRB-ERROR with the given code.
func krbErrorBytes(t *testing.T, code int32) []byte {
	t.Helper()
	e := messages.NewKRBError(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", "R"}}, "R", code, "")
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// closedAddr returns a loopback address on which nothing listens (TCP refused, UDP port unreachable).
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func testConfig(timeout time.Duration, kdcs ...string) *Config {
	c := &Config{Realm: "R", KDCs: map[string][]string{"R": kdcs}, Timeout: timeout}
	c.ApplyDefaults()
	return c
}

func send(t *testing.T, cfg *Config, req []byte) (*Reply, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	rep, err := Send(ctx, cfg, "R", req)
	return rep, time.Since(start), err
}

func TestSendUDP(t *testing.T) {
	req := []byte("small request")
	f := startFakeKDC(t, func(b []byte) []byte { return append([]byte("udp:"), b...) },
		func(c net.Conn, b []byte) { writeFramed(c, []byte("tcp")) })
	rep, _, err := send(t, testConfig(2*time.Second, f.addr), req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Network != UDP || rep.KDC != f.addr || string(rep.Data) != "udp:small request" {
		t.Errorf("reply %s %s %q", rep.Network, rep.KDC, rep.Data)
	}
	if len(rep.Attempts) != 1 || f.tcpReqs.Load() != 0 {
		t.Errorf("attempts %d, tcp requests %d", len(rep.Attempts), f.tcpReqs.Load())
	}
}

func TestSendResponseTooBigFallsBackToTCP(t *testing.T) {
	tooBig := krbErrorBytes(t, errorcode.KRB_ERR_RESPONSE_TOO_BIG)
	other := krbErrorBytes(t, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN)
	f := startFakeKDC(t, func([]byte) []byte { return tooBig },
		func(c net.Conn, b []byte) { writeFramed(c, append([]byte("tcp:"), b...)) })
	rep, _, err := send(t, testConfig(2*time.Second, f.addr), []byte("req"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Network != TCP || string(rep.Data) != "tcp:req" {
		t.Errorf("reply %s %q, want tcp", rep.Network, rep.Data)
	}
	if len(rep.Attempts) != 2 || !errors.Is(rep.Attempts[0].Err, errResponseTooBig) || rep.Attempts[0].Network != UDP {
		t.Errorf("attempts %+v", rep.Attempts)
	}
	// Any other KRB-ERROR over UDP is an answer, not a reason to retry.
	g := startFakeKDC(t, func([]byte) []byte { return other }, func(c net.Conn, b []byte) { writeFramed(c, []byte("tcp")) })
	rep, _, err = send(t, testConfig(2*time.Second, g.addr), []byte("req"))
	if err != nil || rep.Network != UDP || !bytes.Equal(rep.Data, other) || g.tcpReqs.Load() != 0 {
		t.Errorf("KRB-ERROR 6 over UDP: %v %+v", err, rep)
	}
}

func TestSendSilentUDPFallsBackToTCP(t *testing.T) {
	const timeout = 400 * time.Millisecond
	f := startFakeKDC(t, func([]byte) []byte { return nil },
		func(c net.Conn, b []byte) { writeFramed(c, []byte("tcp answer")) })
	rep, elapsed, err := send(t, testConfig(timeout, f.addr), []byte("req"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Network != TCP || string(rep.Data) != "tcp answer" {
		t.Errorf("reply %s %q", rep.Network, rep.Data)
	}
	if elapsed < timeout-50*time.Millisecond || elapsed > 2*timeout {
		t.Errorf("took %v with a %v UDP timeout", elapsed, timeout)
	}
	// The UDP request was retransmitted once within the attempt.
	deadline := time.Now().Add(time.Second)
	for f.udpReqs.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.udpReqs.Load(); got != 2 {
		t.Errorf("UDP server saw %d datagrams, want 2 (one retransmission)", got)
	}
}

func TestSendLargeRequestUsesTCPFirst(t *testing.T) {
	f := startFakeKDC(t, func([]byte) []byte { return []byte("udp") },
		func(c net.Conn, b []byte) { writeFramed(c, []byte("tcp")) })
	big := bytes.Repeat([]byte{'x'}, DefaultUDPPreferenceLimit+1)
	rep, _, err := send(t, testConfig(2*time.Second, f.addr), big)
	if err != nil || rep.Network != TCP || f.udpReqs.Load() != 0 {
		t.Fatalf("large request: %v %+v, udp %d", err, rep, f.udpReqs.Load())
	}
	// udp_preference_limit = 1 sends even small requests over TCP.
	cfg := testConfig(2*time.Second, f.addr)
	cfg.UDPPreferenceLimit = 1
	rep, _, err = send(t, cfg, []byte("small"))
	if err != nil || rep.Network != TCP || f.udpReqs.Load() != 0 {
		t.Fatalf("limit 1: %v %+v, udp %d", err, rep, f.udpReqs.Load())
	}
}

func TestSendTCPFraming(t *testing.T) {
	req := bytes.Repeat([]byte{0xab}, 3000)
	f := startFakeKDC(t, nil, func(c net.Conn, b []byte) {
		// Reply in pieces, the length split across writes: the client must read the whole frame.
		msg := binary.BigEndian.AppendUint32(nil, 5)
		msg = append(msg, "hello"...)
		for _, part := range [][]byte{msg[:2], msg[2:6], msg[6:]} {
			_, _ = c.Write(part)
			time.Sleep(20 * time.Millisecond)
		}
	})
	cfg := testConfig(2*time.Second, f.addr)
	cfg.UDPPreferenceLimit = 1
	rep, _, err := send(t, cfg, req)
	if err != nil || string(rep.Data) != "hello" {
		t.Fatalf("framed reply: %v %+v", err, rep)
	}
	select {
	case first := <-f.firstTCP:
		// Length and body went out in one write, so the server's first read holds the whole frame.
		if len(first) != 4+len(req) || binary.BigEndian.Uint32(first) != uint32(len(req)) || !bytes.Equal(first[4:], req) {
			t.Errorf("first TCP read: %d bytes, prefix %x", len(first), first[:4])
		}
	case <-time.After(time.Second):
		t.Fatal("server saw no TCP request")
	}
}

func TestSendBadTCPReplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(net.Conn)
	}{
		{"high bit", func(c net.Conn) { _, _ = c.Write([]byte{0x80, 0, 0, 5, 1, 2, 3, 4, 5}) }},
		{"too long", func(c net.Conn) { _, _ = c.Write(binary.BigEndian.AppendUint32(nil, MaxTCPReply+1)) }},
		{"zero length", func(c net.Conn) { _, _ = c.Write([]byte{0, 0, 0, 0}) }},
		{"short body", func(c net.Conn) { _, _ = c.Write([]byte{0, 0, 0, 9, 1, 2}) }},
		{"close", func(net.Conn) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := startFakeKDC(t, nil, func(c net.Conn, _ []byte) { tc.reply(c) })
			good := startFakeKDC(t, nil, func(c net.Conn, _ []byte) { writeFramed(c, []byte("good")) })
			cfg := testConfig(time.Second, bad.addr, good.addr)
			cfg.UDPPreferenceLimit = 1
			rep, elapsed, err := send(t, cfg, []byte("req"))
			if err != nil {
				t.Fatal(err)
			}
			if rep.KDC != good.addr || string(rep.Data) != "good" {
				t.Errorf("answered by %s: %q", rep.KDC, rep.Data)
			}
			if rep.Attempts[0].KDC != bad.addr || rep.Attempts[0].Err == nil {
				t.Errorf("first attempt %+v", rep.Attempts[0])
			}
			if elapsed > 3*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestSendTriesKDCsInOrder(t *testing.T) {
	dead := closedAddr(t)
	f := startFakeKDC(t, func([]byte) []byte { return []byte("udp") }, nil)
	rep, elapsed, err := send(t, testConfig(time.Second, dead, f.addr), []byte("req"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.KDC != f.addr || rep.Network != UDP {
		t.Errorf("answer from %s %s", rep.Network, rep.KDC)
	}
	// Both transports of the dead KDC were tried first; refusals are fast.
	if len(rep.Attempts) != 3 || rep.Attempts[0].KDC != dead || rep.Attempts[1].KDC != dead || elapsed > 2*time.Second {
		t.Errorf("attempts %+v in %v", rep.Attempts, elapsed)
	}
}

func TestSendNoKDCAnswers(t *testing.T) {
	const timeout = 300 * time.Millisecond
	silent := startFakeKDC(t, func([]byte) []byte { return nil }, func(c net.Conn, _ []byte) {
		_, _ = io.Copy(io.Discard, c) // never answers; the client's deadline ends it
	})
	_, elapsed, err := send(t, testConfig(timeout, silent.addr, closedAddr(t)), []byte("req"))
	var ue *UnreachableError
	if !errors.Is(err, ErrKDCUnreachable) || !errors.As(err, &ue) || len(ue.Attempts) != 4 || ue.Realm != "R" {
		t.Fatalf("err = %v", err)
	}
	// Two silent attempts of one timeout each, two fast refusals.
	if elapsed < 2*timeout-50*time.Millisecond || elapsed > 4*timeout {
		t.Errorf("took %v", elapsed)
	}
	if _, err := Send(context.Background(), testConfig(timeout), "R", []byte("x")); err == nil {
		t.Error("no KDCs configured: no error")
	}
	if _, err := Send(context.Background(), testConfig(timeout, silent.addr), "OTHER", []byte("x")); err == nil {
		t.Error("unknown realm: no error")
	}
}

func TestSendHonoursContext(t *testing.T) {
	silent := startFakeKDC(t, func([]byte) []byte { return nil }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Send(ctx, testConfig(10*time.Second, silent.addr), "R", []byte("req"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took effect after %v", d)
	}
	// A context deadline shorter than the per-attempt timeout bounds the whole exchange.
	dctx, dcancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer dcancel()
	start = time.Now()
	_, err = Send(dctx, testConfig(10*time.Second, silent.addr), "R", []byte("req"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("deadline: err %v after %v", err, time.Since(start))
	}
}
