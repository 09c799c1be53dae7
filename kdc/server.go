package kdc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
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
	// MaxTCPConns caps open TCP connections. When it is reached the oldest
	// idle connection (one waiting for a request) is closed to make room; only
	// when every connection is busy mid-request is the new one refused (MIT
	// evicts its least recently used connection the same way).
	MaxTCPConns = 256
	// MaxTCPConnsPerSource is the share of MaxTCPConns one source address may
	// hold: over it the source's own oldest idle connection makes room, so one
	// client opening connections in a loop cannot shut the others out.
	MaxTCPConnsPerSource = 32
	// TCPIdleTimeout bounds the wait for (the rest of) a request, including the
	// wait for a next request on a kept-open connection (Heimdal uses 4 s).
	TCPIdleTimeout = 5 * time.Second
	// TCPBusyIdleTimeout replaces TCPIdleTimeout for the wait for a next
	// request once more than half of MaxTCPConns are open.
	TCPBusyIdleTimeout = time.Second
	// TCPWriteTimeout bounds writing one reply.
	TCPWriteTimeout = 5 * time.Second
	// MaxTCPInFlight bounds the bytes of large TCP requests (over
	// tcpSmallMessage) being read or answered at once; a connection that would
	// go over it is closed. Together with the connection cap this bounds the
	// memory the TCP side can be made to hold.
	MaxTCPInFlight = 16 << 20
	// tcpReadBuffer is each TCP worker's read buffer: the length and a request
	// of up to this size come in one read(2), and are handled in place.
	tcpReadBuffer = 8 << 10
	// tcpSmallMessage is the size up to which a request needs no share of
	// MaxTCPInFlight: real requests are a few kilobytes.
	tcpSmallMessage = 64 << 10
	// logEvery is the shortest interval between two summary lines about
	// refused or evicted connections: under attack they come by the thousand.
	logEvery = 10 * time.Second
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
	// h answers each request: the KDC itself, or the kpasswd service
	// (NewKpasswdServer), which shares this transport code.
	h packetHandler
	// maxMessage caps one framed TCP request (MaxTCPMessage for the KDC).
	maxMessage uint32

	udp  []*net.UDPConn
	tcp  *net.TCPListener
	addr string

	conns    atomic.Int64 // len(open), for tests and metrics
	inFlight atomic.Int64 // bytes of large requests being handled
	accepted atomic.Uint64
	refused  atomic.Uint64
	evicted  atomic.Uint64
	drops    dropLog

	mu      sync.Mutex
	open    map[*tcpConn]struct{}
	bySrc   map[string]int
	closing bool
	wg      sync.WaitGroup

	// tcpHandoff passes an accepted connection to a parked TCP worker.
	tcpHandoff chan *tcpConn
}

// tcpConn is one open TCP connection and what admission needs to know of it.
type tcpConn struct {
	net.Conn
	src string // the peer's IP address: the unit of MaxTCPConnsPerSource
	// idleSince is when the connection started waiting for a request (unix
	// nanoseconds), 0 while a request is being read or answered.
	idleSince atomic.Int64
}

// packetHandler answers one request that arrived over UDP or TCP. ok false
// means no reply (garbage); fieldTooLong is the reply to an over-long TCP frame.
type packetHandler interface {
	Handle(ctx context.Context, pkt []byte, tr Transport, from net.Addr) (reply []byte, ok bool)
	fieldTooLong() []byte
}

// NewServer returns a server for k; log may be nil.
func NewServer(k *KDC, log *slog.Logger) *Server {
	return newServer(k, k, MaxTCPMessage, log)
}

func newServer(k *KDC, h packetHandler, maxMessage uint32, log *slog.Logger) *Server {
	if log == nil {
		log = k.log
	}
	return &Server{IdleTimeout: TCPIdleTimeout, kdc: k, h: h, maxMessage: maxMessage, log: log,
		open: make(map[*tcpConn]struct{}), bySrc: make(map[string]int), tcpHandoff: make(chan *tcpConn)}
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
	// No TCP keepalives: a KDC connection lives for one or a few requests
	// under a 5 s idle timeout, and enabling them costs four setsockopt(2)
	// calls on every accepted connection.
	lc := net.ListenConfig{Control: reusePort, KeepAlive: -1}
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
	defer s.drops.flush(s.log)
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
		// ReadFromUDPAddrPort allocates nothing, where ReadFromUDP makes a
		// *UDPAddr per datagram.
		n, ap, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("udp read", "err", err)
			continue
		}
		reply, ok := s.h.Handle(ctx, buf[:n], UDP, udpAddr{ap})
		if !ok {
			continue
		}
		if _, err := c.WriteToUDPAddrPort(reply, ap); err != nil {
			s.log.Warn("udp write", "to", ap.String(), "err", err)
		}
	}
}

// udpAddr is a datagram's source as a net.Addr, formatted only when logged.
type udpAddr struct{ netip.AddrPort }

func (udpAddr) Network() string { return "udp" }

func (a udpAddr) String() string {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String() // 1.2.3.4:88, not [::ffff:1.2.3.4]:88
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
		tc := &tcpConn{Conn: c, src: sourceOf(c.RemoteAddr())}
		if !s.admit(tc) {
			c.Close()
			if s.isClosing() {
				return
			}
			continue
		}
		select {
		case s.tcpHandoff <- tc: // a parked worker takes it
		default:
			go s.tcpWorker(ctx, tc)
		}
	}
}

// tcpWorkerLinger is how long a TCP worker goroutine waits for its next
// connection before it ends.
const tcpWorkerLinger = 10 * time.Second

// tcpWorker serves connections one after another. Workers are kept between
// connections, because clients open one connection per request (MIT and
// Heimdal do): a new goroutine per connection paid for growing its stack on
// every request, 12% of the KDC's CPU under such a load. At most one worker
// per connection open at the peak is parked.
func (s *Server) tcpWorker(ctx context.Context, c *tcpConn) {
	t := time.NewTimer(tcpWorkerLinger)
	defer t.Stop()
	b := &tcpBuffers{br: bufio.NewReaderSize(nil, tcpReadBuffer)}
	for {
		s.serveTCP(ctx, c, b)
		t.Reset(tcpWorkerLinger)
		select {
		case c = <-s.tcpHandoff:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// sourceOf is the unit of MaxTCPConnsPerSource: the peer's IP address.
func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// admit makes room for tc and registers it, or refuses it. Over the source's
// share its own oldest idle connection is closed; at the global cap the oldest
// idle connection of all is; a new connection is refused only when no idle one
// can make room.
func (s *Server) admit(tc *tcpConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.bySrc[tc.src] >= MaxTCPConnsPerSource && !s.unsafeEvictOldestIdle(tc.src) {
		s.refused.Add(1)
		s.drops.refused(s.log, tc.src, "source over its share")
		return false
	}
	if len(s.open) >= MaxTCPConns && !s.unsafeEvictOldestIdle("") {
		s.refused.Add(1)
		s.drops.refused(s.log, tc.src, "all busy")
		return false
	}
	tc.idleSince.Store(time.Now().UnixNano())
	s.accepted.Add(1)
	s.open[tc] = struct{}{}
	s.bySrc[tc.src]++
	s.conns.Store(int64(len(s.open)))
	s.wg.Add(1)
	return true
}

// unsafeEvictOldestIdle closes the connection that has waited longest for a
// request, of source src ("" for any), and forgets it. s.mu must be held.
func (s *Server) unsafeEvictOldestIdle(src string) bool {
	var oldest *tcpConn
	var since int64
	for c := range s.open {
		t := c.idleSince.Load()
		if t == 0 || (src != "" && c.src != src) {
			continue
		}
		if oldest == nil || t < since {
			oldest, since = c, t
		}
	}
	if oldest == nil {
		return false
	}
	s.unsafeForget(oldest)
	oldest.Close() // its goroutine sees the error and ends
	s.evicted.Add(1)
	s.drops.evicted(s.log, oldest.src)
	return true
}

// unsafeForget removes c from the connection table; s.mu must be held. It
// reports whether c was still there.
func (s *Server) unsafeForget(c *tcpConn) bool {
	if _, ok := s.open[c]; !ok {
		return false
	}
	delete(s.open, c)
	if s.bySrc[c.src]--; s.bySrc[c.src] <= 0 {
		delete(s.bySrc, c.src)
	}
	s.conns.Store(int64(len(s.open)))
	return true
}

// idleTimeout is the wait for a next request: short once more than half of
// MaxTCPConns are open.
func (s *Server) idleTimeout() time.Duration {
	if s.conns.Load() > MaxTCPConns/2 && s.IdleTimeout > TCPBusyIdleTimeout {
		return TCPBusyIdleTimeout
	}
	return s.IdleTimeout
}

// tcpBuffers are a TCP worker's, reused from one connection to the next.
type tcpBuffers struct {
	br    *bufio.Reader // reset to each connection
	frame []byte        // the last reply frame written, for its capacity
}

// maxKeptFrame is the largest frame buffer a worker keeps for the next reply
// (as big as its read buffer: a reply is rarely over 2 KB).
const maxKeptFrame = tcpReadBuffer

// serveTCP answers framed requests on one connection (RFC 4120 §7.2.2): a 4-byte
// big-endian length, then the message. It keeps the connection for further
// requests until the client closes it, so TIME_WAIT lands on the client, but
// closes on EOF at once (no CLOSE_WAIT), on a bad length (after KRB-ERROR 61),
// on undecodable input and when a request does not arrive within the idle
// timeout. b holds the worker's buffers; its reader is reset to c here.
func (s *Server) serveTCP(ctx context.Context, c *tcpConn, b *tcpBuffers) {
	br := b.br
	br.Reset(c)
	defer func() {
		br.Reset(nil)
		s.mu.Lock()
		s.unsafeForget(c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	var hdr [4]byte
	for {
		c.idleSince.Store(time.Now().UnixNano())
		c.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return // EOF, timeout, eviction or shutdown: close our side now
		}
		c.idleSince.Store(0)
		c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		n := binary.BigEndian.Uint32(hdr[:])
		if n&0x80000000 != 0 || n > s.maxMessage {
			s.log.Info("tcp request too long", "from", c.RemoteAddr().String(), "length", n)
			s.writeFrame(c, s.h.fieldTooLong(), b)
			return
		}
		if !s.serveTCPRequest(ctx, c, b, int64(n)) {
			return
		}
	}
}

// serveTCPRequest reads one request body of n bytes from br and writes its
// reply. A body that fits br is handled in br's buffer (Handle keeps nothing of
// its packet: the UDP side reuses its buffer too). A large body needs a share of
// MaxTCPInFlight for as long as it is handled.
func (s *Server) serveTCPRequest(ctx context.Context, c *tcpConn, b *tcpBuffers, n int64) bool {
	br := b.br
	if n > tcpSmallMessage {
		if s.inFlight.Add(n) > MaxTCPInFlight {
			s.inFlight.Add(-n)
			s.refused.Add(1)
			s.drops.refused(s.log, c.src, "large requests over the in-flight budget")
			return false
		}
		defer s.inFlight.Add(-n)
	}
	var msg []byte
	if n <= int64(br.Size()) {
		b, err := br.Peek(int(n))
		if err != nil {
			return false
		}
		defer br.Discard(len(b)) //nolint:errcheck // the bytes are buffered: Discard cannot fail
		msg = b
	} else {
		msg = make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return false
		}
	}
	reply, ok := s.h.Handle(ctx, msg, TCP, c.RemoteAddr())
	if !ok {
		return false
	}
	return s.writeFrame(c, reply, b)
}

// writeFrame writes the length and the message in one Write: gokrb5 clients read
// the length with a single Read and break on a split frame. The frame is built
// in b's buffer, which a small one stays in for the next reply.
func (s *Server) writeFrame(c net.Conn, msg []byte, b *tcpBuffers) bool {
	if msg == nil {
		return false
	}
	frame := binary.BigEndian.AppendUint32(b.frame[:0], uint32(len(msg)))
	frame = append(frame, msg...)
	if cap(frame) <= maxKeptFrame {
		b.frame = frame
	} else {
		b.frame = nil
	}
	c.SetWriteDeadline(time.Now().Add(TCPWriteTimeout))
	if _, err := c.Write(frame); err != nil {
		s.log.Warn("tcp write", "to", c.RemoteAddr().String(), "err", err)
		return false
	}
	return true
}

// dropLog aggregates the log lines about refused and evicted TCP connections:
// at most one summary line per logEvery, with counts, the reasons and the
// busiest source since the last line, instead of a line per connection.
type dropLog struct {
	mu       sync.Mutex
	last     time.Time
	nRefused int
	nEvicted int
	reasons  map[string]int
	sources  map[string]int
}

// maxDropSources bounds the sources a dropLog counts between two lines.
const maxDropSources = 1024

func (d *dropLog) refused(log *slog.Logger, src, reason string) {
	d.note(log, src, reason, true)
}

func (d *dropLog) evicted(log *slog.Logger, src string) {
	d.note(log, src, "", false)
}

func (d *dropLog) note(log *slog.Logger, src, reason string, refused bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reasons == nil {
		d.reasons, d.sources = map[string]int{}, map[string]int{}
	}
	if refused {
		d.nRefused++
		d.reasons[reason]++
	} else {
		d.nEvicted++
	}
	if _, ok := d.sources[src]; ok || len(d.sources) < maxDropSources {
		d.sources[src]++
	}
	if time.Since(d.last) >= logEvery {
		d.unsafeFlush(log)
	}
}

// flush writes what was counted since the last line, if anything.
func (d *dropLog) flush(log *slog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unsafeFlush(log)
}

func (d *dropLog) unsafeFlush(log *slog.Logger) {
	d.last = time.Now()
	if d.nRefused == 0 && d.nEvicted == 0 {
		return
	}
	top, topN := "", 0
	for src, n := range d.sources {
		if n > topN {
			top, topN = src, n
		}
	}
	log.Warn("tcp connections refused or closed to make room", "refused", d.nRefused, "evicted_idle", d.nEvicted,
		"reasons", d.reasons, "sources", len(d.sources), "top_source", top, "top_source_count", topN,
		"max_conns", MaxTCPConns, "max_per_source", MaxTCPConnsPerSource)
	d.nRefused, d.nEvicted = 0, 0
	d.reasons, d.sources = map[string]int{}, map[string]int{}
}
