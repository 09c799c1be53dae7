package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Network limits (DESIGN.md "Network hygiene", RFC 4120 §7.2). Each is tested.
const (
	// MaxUDPPayload is the largest UDP datagram payload over IPv4.
	MaxUDPPayload = 65507
	// MaxTCPMessage caps one framed TCP request, as MIT's 1 MiB buffer does; a
	// longer length, or one with the reserved high bit set, gets
	// KRB_ERR_FIELD_TOOLONG and the connection is closed (RFC 4120 §7.2.2).
	MaxTCPMessage = 1 << 20
	// MaxTCPConns caps open TCP connections; further ones are closed at once.
	MaxTCPConns = 256
	// TCPIdleTimeout bounds the wait for (the rest of) a request, including the
	// wait for a next request on a kept-open connection (Heimdal uses 4 s).
	TCPIdleTimeout = 5 * time.Second
	// TCPWriteTimeout bounds writing one reply.
	TCPWriteTimeout = 5 * time.Second
	// ShutdownGrace is how long Serve waits for requests in flight at shutdown.
	ShutdownGrace = 5 * time.Second
	// bindAttempts bounds the search for a port free for both UDP and TCP when
	// listening on port 0.
	bindAttempts = 20
)

// Server serves a KDC over UDP and TCP on the same address.
type Server struct {
	// IdleTimeout bounds the wait for (the rest of) a TCP request; set it
	// before Serve. NewServer sets TCPIdleTimeout.
	IdleTimeout time.Duration

	kdc *KDC
	log *slog.Logger

	udp  []*net.UDPConn
	tcp  *net.TCPListener
	addr string

	conns   atomic.Int64
	mu      sync.Mutex
	open    map[net.Conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

// NewServer returns a server for k; log may be nil.
func NewServer(k *KDC, log *slog.Logger) *Server {
	if log == nil {
		log = k.log
	}
	return &Server{IdleTimeout: TCPIdleTimeout, kdc: k, log: log, open: make(map[net.Conn]struct{})}
}

// Listen binds TCP and UDP on addr (host:port; port 0 picks one port free for
// both). UDP gets one socket per CPU with SO_REUSEPORT so the kernel spreads
// datagrams across cores.
func (s *Server) Listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("kdc: listen address %q: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = bindAttempts
	}
	for i := 0; i < attempts; i++ {
		err = s.bind(host, port)
		if err == nil {
			return nil
		}
	}
	return err
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func (s *Server) bind(host, port string) error {
	lc := net.ListenConfig{Control: reusePort}
	tl, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("kdc: tcp listen: %w", err)
	}
	bound := strconv.Itoa(tl.Addr().(*net.TCPAddr).Port)
	n := runtime.GOMAXPROCS(0)
	var udp []*net.UDPConn
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(host, bound))
		if err != nil {
			tl.Close()
			for _, u := range udp {
				u.Close()
			}
			return fmt.Errorf("kdc: udp listen on port %s: %w", bound, err)
		}
		udp = append(udp, pc.(*net.UDPConn))
	}
	s.tcp, s.udp = tl.(*net.TCPListener), udp
	s.addr = net.JoinHostPort(host, bound)
	return nil
}

// Addr is the bound address, valid after Listen.
func (s *Server) Addr() string { return s.addr }

// Serve answers requests until ctx is cancelled, then stops accepting, lets
// requests in flight finish (up to ShutdownGrace) and closes every socket.
func (s *Server) Serve(ctx context.Context) error {
	if s.tcp == nil {
		return errors.New("kdc: Serve before Listen")
	}
	for _, u := range s.udp {
		s.wg.Add(1)
		go s.serveUDP(ctx, u)
	}
	s.wg.Add(1)
	go s.acceptTCP(ctx)

	<-ctx.Done()
	s.mu.Lock()
	s.closing = true
	s.tcp.Close()
	for _, u := range s.udp {
		u.Close()
	}
	// Wake connections blocked waiting for a next request; one mid-request
	// still gets its reply written.
	for c := range s.open {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(ShutdownGrace):
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		return errors.New("kdc: shutdown grace period expired; closed open connections")
	}
}

// serveUDP answers datagrams: one datagram, one request, one reply to the sender
// (RFC 4120 §7.2.1). The buffer is reused; Handle is done with it before the next
// read.
func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, MaxUDPPayload+1)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("udp read", "err", err)
			continue
		}
		reply, ok := s.kdc.Handle(ctx, buf[:n], UDP, from)
		if !ok {
			continue
		}
		if _, err := c.WriteToUDP(reply, from); err != nil {
			s.log.Warn("udp write", "to", from.String(), "err", err)
		}
	}
}

func (s *Server) acceptTCP(ctx context.Context) {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("tcp accept", "err", err)
			// Back off briefly on errors such as EMFILE instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if s.conns.Add(1) > MaxTCPConns {
			s.conns.Add(-1)
			s.log.Warn("tcp connection refused: too many open", "from", c.RemoteAddr().String(), "max", MaxTCPConns)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			s.conns.Add(-1)
			c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveTCP(ctx, c)
	}
}

// serveTCP answers framed requests on one connection (RFC 4120 §7.2.2): a 4-byte
// big-endian length, then the message. It keeps the connection for further
// requests until the client closes it, so TIME_WAIT lands on the client, but
// closes on EOF at once (no CLOSE_WAIT), on a bad length (after KRB-ERROR 61),
// on undecodable input and when a request does not arrive within s.IdleTimeout.
func (s *Server) serveTCP(ctx context.Context, c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		c.Close()
		s.conns.Add(-1)
		s.wg.Done()
	}()
	var hdr [4]byte
	for {
		c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return // EOF, timeout or shutdown: close our side now
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n&0x80000000 != 0 || n > MaxTCPMessage {
			s.log.Info("tcp request too long", "from", c.RemoteAddr().String(), "length", n)
			s.writeFrame(c, s.kdc.fieldTooLong())
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		reply, ok := s.kdc.Handle(ctx, msg, TCP, c.RemoteAddr())
		if !ok {
			return
		}
		if !s.writeFrame(c, reply) {
			return
		}
	}
}

// writeFrame writes the length and the message in one Write: gokrb5 clients read
// the length with a single Read and break on a split frame.
func (s *Server) writeFrame(c net.Conn, msg []byte) bool {
	if msg == nil {
		return false
	}
	frame := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(frame, uint32(len(msg)))
	copy(frame[4:], msg)
	c.SetWriteDeadline(time.Now().Add(TCPWriteTimeout))
	if _, err := c.Write(frame); err != nil {
		s.log.Warn("tcp write", "to", c.RemoteAddr().String(), "err", err)
		return false
	}
	return true
}
