package service

import (
	"context"
	"errors"
	"fmt"
	"github.com/kerbkit/kerbkit/ticket"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits of the sample protocol server. Each is a default of a SampleServer
// field, except SampleWriteTimeout.
const (
	// DefaultSampleMaxToken caps one token; a longer announced length closes
	// the connection before anything is read.
	DefaultSampleMaxToken = 1 << 20
	// DefaultSampleMaxConns caps concurrent connections; more are closed at
	// once.
	DefaultSampleMaxConns = 64
	// DefaultSampleReadTimeout bounds the wait for each token.
	DefaultSampleReadTimeout = 30 * time.Second
	// DefaultSampleLifetime bounds a whole connection.
	DefaultSampleLifetime = 5 * time.Minute
	// SampleWriteTimeout bounds writing one token.
	SampleWriteTimeout = 10 * time.Second
	// maxLoggedMessage caps how much of a received message is logged.
	maxLoggedMessage = 256
)

// SampleServer serves MIT's GSS sample protocol (what gss-client speaks) with
// an Acceptor: the client sends NOOP|CONTEXT_NEXT, then its initial context
// token (krb5 or SPNEGO, told apart by the token's OID); the server answers
// with its context token (the AP-REP token for mutual authentication, or a
// KRB-ERROR token and a close on failure). Then each DATA token is unwrapped
// when WRAPPED, logged as `received message: "..."`, and answered with a MIC
// of the plaintext when SEND_MIC, else with an empty NOOP; a NOOP ends the
// connection. Without CONTEXT_NEXT there is no context and only plain DATA
// is allowed. One goroutine per connection; every read has a deadline.
type SampleServer struct {
	Acceptor *Acceptor
	Logger   *slog.Logger // default: the acceptor's logger

	MaxToken    int           // default DefaultSampleMaxToken
	MaxConns    int           // default DefaultSampleMaxConns
	ReadTimeout time.Duration // default DefaultSampleReadTimeout
	Lifetime    time.Duration // default DefaultSampleLifetime

	// OnMessage, when set, is called with every message received.
	OnMessage func(c *Context, msg []byte)

	conns atomic.Int64
}

// Conns returns the number of open connections.
func (s *SampleServer) Conns() int64 { return s.conns.Load() }

func (s *SampleServer) defaults() {
	if s.Logger == nil {
		s.Logger = s.Acceptor.log
	}
	if s.MaxToken <= 0 {
		s.MaxToken = DefaultSampleMaxToken
	}
	if s.MaxConns <= 0 {
		s.MaxConns = DefaultSampleMaxConns
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = DefaultSampleReadTimeout
	}
	if s.Lifetime <= 0 {
		s.Lifetime = DefaultSampleLifetime
	}
}

// Serve accepts connections on ln until ctx is done, then closes ln, unblocks
// and waits for the connections in flight, and returns nil. Any other accept
// failure is returned.
func (s *SampleServer) Serve(ctx context.Context, ln net.Listener) error {
	s.defaults()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = make(map[net.Conn]struct{})
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.SetDeadline(time.Now()) // unblock reads and writes; handlers then close
		}
		mu.Unlock()
	})
	defer stop()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			wg.Wait()
			return fmt.Errorf("service: accept: %w", err)
		}
		backoff = 0
		if s.conns.Add(1) > int64(s.MaxConns) {
			s.conns.Add(-1)
			s.Logger.Warn("connection refused: too many connections", "remote", conn.RemoteAddr().String(), "max", s.MaxConns)
			conn.Close()
			continue
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			s.conns.Add(-1)
			conn.Close()
			continue
		}
		open[conn] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.conns.Add(-1)
			defer func() {
				mu.Lock()
				delete(open, conn)
				mu.Unlock()
				conn.Close()
			}()
			defer func() {
				if r := recover(); r != nil {
					s.Logger.Error("panic serving connection", "remote", conn.RemoteAddr().String(), "panic", fmt.Sprint(r))
				}
			}()
			s.serveConn(ctx, conn)
		}()
	}
}

// serveConn runs the sample protocol on one connection.
func (s *SampleServer) serveConn(ctx context.Context, conn net.Conn) {
	remote := conn.RemoteAddr().String()
	ctx = WithRemote(ctx, remote)
	end := time.Now().Add(s.Lifetime)
	read := func() (byte, []byte, error) {
		conn.SetReadDeadline(minTime(time.Now().Add(s.ReadTimeout), end))
		return ticket.ReadSampleToken(conn, s.MaxToken)
	}
	write := func(flags byte, tok []byte) error {
		conn.SetWriteDeadline(time.Now().Add(SampleWriteTimeout))
		return ticket.WriteSampleToken(conn, flags, tok)
	}
	fail := func(what string, err error) {
		if errors.Is(err, io.EOF) {
			return // the client closed between tokens
		}
		s.Logger.Warn("sample protocol: "+what, "remote", remote, "error", err)
	}

	flags, _, err := read()
	if err != nil {
		fail("reading the first token", err)
		return
	}
	if flags&ticket.SampleNoop == 0 {
		fail("first token", fmt.Errorf("flags 0x%02x, want NOOP", flags))
		return
	}
	var gctx *Context
	if flags&ticket.SampleContextNext != 0 {
		flags, tok, err := read()
		if err != nil {
			fail("reading the context token", err)
			return
		}
		if flags&ticket.SampleContext == 0 {
			fail("context token", fmt.Errorf("flags 0x%02x, want CONTEXT", flags))
			return
		}
		c, reply, aerr := s.Acceptor.AcceptToken(ctx, tok)
		if len(reply) > 0 {
			if err := write(ticket.SampleContext, reply); err != nil {
				fail("writing the context token", err)
				return
			}
		}
		if aerr != nil {
			return // logged by the acceptor; the client sees the error token
		}
		gctx = c
	}
	for {
		flags, tok, err := read()
		if err != nil {
			fail("reading a message", err)
			return
		}
		if flags&ticket.SampleNoop != 0 {
			return
		}
		if flags&ticket.SampleData == 0 {
			fail("message", fmt.Errorf("flags 0x%02x, want DATA or NOOP", flags))
			return
		}
		msg, sealed := tok, false
		if flags&ticket.SampleWrapped != 0 {
			if gctx == nil {
				fail("message", errors.New("WRAPPED data without a context"))
				return
			}
			sealed = len(tok) > 2 && tok[2]&0x02 != 0
			if msg, err = gctx.Unwrap(tok); err != nil {
				fail("unwrapping a message from "+gctx.Client.String(), err)
				return
			}
		}
		attrs := []any{"remote", remote, "wrapped", flags&ticket.SampleWrapped != 0, "sealed", sealed}
		if gctx != nil {
			attrs = append(attrs, "client", gctx.Client.String())
		}
		shown := msg
		if len(shown) > maxLoggedMessage {
			shown = shown[:maxLoggedMessage]
		}
		s.Logger.Info(fmt.Sprintf("received message: %q", shown), attrs...)
		if s.OnMessage != nil {
			s.OnMessage(gctx, msg)
		}
		if flags&ticket.SampleSendMIC != 0 {
			if gctx == nil {
				fail("message", errors.New("SEND_MIC without a context"))
				return
			}
			mic, err := gctx.MakeMIC(msg)
			if err != nil {
				fail("making a MIC", err)
				return
			}
			if err := write(ticket.SampleMIC, mic); err != nil {
				fail("writing the MIC", err)
				return
			}
		} else if err := write(ticket.SampleNoop, nil); err != nil {
			fail("writing the NOOP reply", err)
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
