package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// Network names the transport a message travelled over.
type Network string

// The two KDC transports [RFC 4120 §7.2.1, §7.2.2].
const (
	UDP Network = "udp"
	TCP Network = "tcp"
)

// Transport limits. Every wait is also bounded by Config.Timeout per attempt.
const (
	// MaxTCPReply caps the length prefix of a TCP reply, like MIT's 1 MiB stream buffer.
	MaxTCPReply = 1 << 20
	// maxUDPReply is the largest datagram read; anything larger cannot arrive over UDP anyway.
	maxUDPReply = 65535
	// udpSends is how many times a UDP request is sent within one attempt (one retransmission halfway through
	// the timeout, in case the datagram was lost; a KDC answers identical requests identically, RFC 4120 §3.1.2).
	udpSends = 2
)

// ErrKDCUnreachable is wrapped by Send when no KDC of the realm gave an answer.
var ErrKDCUnreachable = errors.New("cannot contact any KDC")

// Attempt records one try to reach one KDC over one transport.
type Attempt struct {
	// KDC is the host:port tried.
	KDC string
	// Network is the transport used.
	Network Network
	// Err is why the attempt did not produce the answer (nil for the answering attempt).
	Err error
	// Elapsed is how long the attempt took.
	Elapsed time.Duration
}

// Reply is a KDC's answer to one request.
type Reply struct {
	// Data is the raw reply message (a KDC-REP or a KRB-ERROR), without any TCP length prefix.
	Data []byte
	// KDC is the host:port that answered.
	KDC string
	// Network is the transport the answer came over.
	Network Network
	// Attempts lists every attempt made, in order; the last one answered.
	Attempts []Attempt
}

// Send delivers one request to the KDCs of realm and returns the first answer [RFC 4120 §7.2].
//
// For each KDC in configured order: UDP is tried first when len(req) <= UDPPreferenceLimit, TCP first otherwise,
// and the other transport second. A UDP answer that is KRB_ERR_RESPONSE_TOO_BIG (52) makes the client retry
// over TCP, and TCP only for the remaining KDCs (RFC 4120 §7.2.1). A transport that fails or stays silent for
// cfg.Timeout moves on to the next transport or KDC. Any other KRB-ERROR is an answer and is returned as Data.
// ctx cancels the whole exchange.
func Send(ctx context.Context, cfg *Config, realm string, req []byte) (*Reply, error) {
	kdcs, err := cfg.KDCsFor(realm)
	if err != nil {
		return nil, err
	}
	if len(req) == 0 || len(req) > MaxTCPReply {
		return nil, fmt.Errorf("client: request of %d bytes cannot be sent", len(req))
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := cfg.UDPPreferenceLimit
	if limit <= 0 {
		limit = DefaultUDPPreferenceLimit
	}
	order := []Network{UDP, TCP}
	if len(req) > limit {
		order = []Network{TCP, UDP}
	}
	var attempts []Attempt
	for _, kdc := range kdcs {
		for _, nw := range order {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("client: sending to realm %s: %w", realm, err)
			}
			start := time.Now()
			var data []byte
			var err error
			if nw == UDP {
				data, err = exchangeUDP(ctx, kdc, req, timeout)
				if err == nil && isResponseTooBig(data) {
					err = errResponseTooBig
				}
			} else {
				data, err = exchangeTCP(ctx, kdc, req, timeout)
			}
			attempts = append(attempts, Attempt{KDC: kdc, Network: nw, Err: err, Elapsed: time.Since(start)})
			if err == nil {
				return &Reply{Data: data, KDC: kdc, Network: nw, Attempts: attempts}, nil
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("client: sending to realm %s: %w", realm, ctxErr)
			}
			if errors.Is(err, errResponseTooBig) {
				order = []Network{TCP} // RFC 4120 §7.2.1: retry over TCP; UDP is pointless from now on
				start = time.Now()
				data, err = exchangeTCP(ctx, kdc, req, timeout)
				attempts = append(attempts, Attempt{KDC: kdc, Network: TCP, Err: err, Elapsed: time.Since(start)})
				if err == nil {
					return &Reply{Data: data, KDC: kdc, Network: TCP, Attempts: attempts}, nil
				}
				break
			}
		}
	}
	return nil, &UnreachableError{Realm: realm, Attempts: attempts}
}

// UnreachableError reports that no KDC of a realm answered. It matches ErrKDCUnreachable with errors.Is.
type UnreachableError struct {
	// Realm is the realm whose KDCs were tried.
	Realm string
	// Attempts lists every failed attempt in order.
	Attempts []Attempt
}

// Error implements error on one line: "client: cannot contact any KDC for realm 'R': udp a:88: ...; tcp ...".
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("client: %v for realm '%s': %s", ErrKDCUnreachable, e.Realm, e.Detail())
}

// Detail lists the failed attempts: "udp host:port: reason; tcp host:port: reason".
func (e *UnreachableError) Detail() string {
	parts := make([]string, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		parts = append(parts, fmt.Sprintf("%s %s: %v", a.Network, a.KDC, a.Err))
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrKDCUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrKDCUnreachable }

// Unwrap returns the attempt errors, so errors.Is can find, for example, a syscall error among them.
func (e *UnreachableError) Unwrap() []error {
	out := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		if a.Err != nil {
			out = append(out, a.Err)
		}
	}
	return out
}

// errResponseTooBig marks a UDP answer that was KRB_ERR_RESPONSE_TOO_BIG.
var errResponseTooBig = errors.New("KDC answered KRB_ERR_RESPONSE_TOO_BIG")

// isResponseTooBig reports whether b is a KRB-ERROR with code KRB_ERR_RESPONSE_TOO_BIG (52).
func isResponseTooBig(b []byte) bool {
	if len(b) == 0 || b[0] != tagKRBError {
		return false
	}
	var e messages.KRBError
	if err := e.Unmarshal(b); err != nil {
		return false
	}
	return e.ErrorCode == errorcode.KRB_ERR_RESPONSE_TOO_BIG
}

// attemptDeadline is now+timeout, or the context's deadline if that comes first.
func attemptDeadline(ctx context.Context, timeout time.Duration) time.Time {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// watchContext makes blocked I/O on conn return at once when ctx is cancelled. Call the returned func when done.
func watchContext(ctx context.Context, conn net.Conn) func() bool {
	return context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
}

// exchangeUDP sends req in one datagram and waits for one datagram back [RFC 4120 §7.2.1]. The socket is
// connected, so only datagrams from kdc are accepted; an ICMP port-unreachable ends the attempt early.
func exchangeUDP(ctx context.Context, kdc string, req []byte, timeout time.Duration) ([]byte, error) {
	deadline := attemptDeadline(ctx, timeout)
	var d net.Dialer
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := d.DialContext(dctx, "udp", kdc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer watchContext(ctx, conn)()
	buf := make([]byte, maxUDPReply+1)
	step := time.Until(deadline) / udpSends
	for i := 1; i <= udpSends; i++ {
		readBy := deadline
		if i < udpSends {
			readBy = time.Now().Add(step)
		}
		if err := conn.SetDeadline(readBy); err != nil {
			return nil, err
		}
		if _, err := conn.Write(req); err != nil {
			return nil, err
		}
		n, err := conn.Read(buf)
		if err == nil {
			if n == 0 || n > maxUDPReply {
				return nil, fmt.Errorf("bad UDP reply of %d bytes", n)
			}
			return append([]byte(nil), buf[:n]...), nil
		}
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no UDP reply within %v", timeout)
}

// exchangeTCP sends req with a 4-byte big-endian length prefix, in one write, and reads one framed reply
// [RFC 4120 §7.2.2]. One request per connection: the client closes it after the reply.
func exchangeTCP(ctx context.Context, kdc string, req []byte, timeout time.Duration) ([]byte, error) {
	deadline := attemptDeadline(ctx, timeout)
	var d net.Dialer
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", kdc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer watchContext(ctx, conn)()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	msg := make([]byte, 4+len(req))
	binary.BigEndian.PutUint32(msg, uint32(len(req)))
	copy(msg[4:], req)
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading reply length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n&0x80000000 != 0 {
		return nil, fmt.Errorf("reply length 0x%08x has the reserved high bit set", n)
	}
	if n == 0 || n > MaxTCPReply {
		return nil, fmt.Errorf("reply length %d out of range 1..%d", n, MaxTCPReply)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, fmt.Errorf("reading reply body: %w", err)
	}
	return body, nil
}
