package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// kdcExchange is one request a [kdcRecorder] passed to the KDC and the reply
// it passed back (nil if the KDC did not answer).
type kdcExchange struct {
	Transport string // "udp" or "tcp"
	Req, Rep  []byte
}

// kdcRecorder relays Kerberos messages between clients and a KDC over UDP and
// TCP on one 127.0.0.1 port and keeps every exchange, so a test can look at
// what a client really sent (e.g. whether a TGS-REQ carries PA-FX-FAST)
// without tcpdump. Point a client at it with EnvOptions{KDC: rec.Addr}.
type kdcRecorder struct {
	Addr string // 127.0.0.1:PORT, UDP and TCP

	kdc string
	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup

	mu        sync.Mutex
	exchanges []kdcExchange
}

// Bounds of the recorder: every read waits at most recorderTimeout, a TCP
// connection carries at most recorderMaxPerConn requests, and a message is at
// most recorderMaxMsg bytes (RFC 4120 §7.2.2 framing, 4-byte length first).
const (
	recorderTimeout    = 10 * time.Second
	recorderMaxPerConn = 16
	recorderMaxMsg     = 1 << 20
)

// recordKDC starts a recorder in front of the KDC at kdc (HOST:PORT); it is
// stopped in t.Cleanup.
func recordKDC(t *testing.T, kdc string) *kdcRecorder {
	t.Helper()
	r := &kdcRecorder{kdc: kdc}
	var err error
	for i := 0; i < 20; i++ {
		if r.udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatalf("recorder: %v", err)
		}
		port := r.udp.LocalAddr().(*net.UDPAddr).Port
		if r.tcp, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			break
		}
		r.udp.Close()
	}
	if r.Addr == "" {
		t.Fatalf("recorder: no port free for both UDP and TCP on 127.0.0.1: %v", err)
	}
	r.wg.Add(2)
	go r.serveUDP()
	go r.serveTCP()
	t.Cleanup(func() {
		r.udp.Close()
		r.tcp.Close()
		r.wg.Wait()
	})
	return r
}

// Exchanges returns the exchanges relayed so far, in order.
func (r *kdcRecorder) Exchanges() []kdcExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kdcExchange(nil), r.exchanges...)
}

func (r *kdcRecorder) record(tr string, req, rep []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exchanges = append(r.exchanges, kdcExchange{Transport: tr, Req: req, Rep: rep})
}

// serveUDP relays datagrams one at a time until the socket is closed.
func (r *kdcRecorder) serveUDP() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		req := append([]byte(nil), buf[:n]...)
		rep, err := r.udpRoundTrip(req)
		r.record("udp", req, rep)
		if err == nil {
			_, _ = r.udp.WriteTo(rep, from)
		}
	}
}

func (r *kdcRecorder) udpRoundTrip(req []byte) ([]byte, error) {
	c, err := net.Dial("udp", r.kdc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(recorderTimeout))
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// serveTCP accepts connections until the listener is closed.
func (r *kdcRecorder) serveTCP() {
	defer r.wg.Done()
	for {
		c, err := r.tcp.Accept()
		if err != nil {
			return // closed
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			r.relayTCP(c)
		}()
	}
}

// relayTCP relays up to recorderMaxPerConn framed requests of one client
// connection, each over a connection of its own to the KDC.
func (r *kdcRecorder) relayTCP(c net.Conn) {
	for i := 0; i < recorderMaxPerConn; i++ {
		_ = c.SetDeadline(time.Now().Add(recorderTimeout))
		req, err := readFrame(c)
		if err != nil {
			return
		}
		rep, err := r.tcpRoundTrip(req)
		r.record("tcp", req, rep)
		if err != nil || writeFrame(c, rep) != nil {
			return
		}
	}
}

func (r *kdcRecorder) tcpRoundTrip(req []byte) ([]byte, error) {
	c, err := net.Dial("tcp", r.kdc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(recorderTimeout))
	if err := writeFrame(c, req); err != nil {
		return nil, err
	}
	return readFrame(c)
}

// readFrame reads one TCP-framed Kerberos message (RFC 4120 §7.2.2).
func readFrame(c io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > recorderMaxMsg {
		return nil, errors.New("recorder: frame too long")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, fmt.Errorf("recorder: short frame: %w", err)
	}
	return b, nil
}

// writeFrame writes b with its 4-byte length in front.
func writeFrame(c io.Writer, b []byte) error {
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	_, err := c.Write(append(out, b...))
	return err
}
