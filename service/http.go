package service

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// MaxNegotiateHeader caps the Authorization header value the Negotiate
// handler decodes (a ticket with a large PAC stays far below it).
const MaxNegotiateHeader = 64 << 10

type httpContextKey struct{}

// FromRequest returns the authenticated context of a request that passed the
// Negotiate handler.
func FromRequest(r *http.Request) (*Context, bool) {
	c, ok := r.Context().Value(httpContextKey{}).(*Context)
	return c, ok
}

// Negotiate wraps next with HTTP Negotiate authentication (RFC 4559): a
// request without "Authorization: Negotiate <token>" gets 401 with a bare
// "WWW-Authenticate: Negotiate". A token (base64 SPNEGO NegTokenInit, or a raw
// krb5 AP-REQ token) is accepted in one round trip; on success next serves the
// request (FromRequest gives the client) with "WWW-Authenticate: Negotiate
// <final token>" set when the client asked for mutual authentication: a
// NegTokenResp for SPNEGO, the krb5 AP-REP token for a raw krb5 token. On
// failure the answer is 401 with the rejecting token when there is one; the
// acceptor logs the reason. There is no session: every request authenticates.
func Negotiate(a *Acceptor, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := WithRemote(r.Context(), r.RemoteAddr)
		token, ok, err := negotiateToken(r.Header.Values("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", "Negotiate")
			http.Error(w, "Negotiate authentication required", http.StatusUnauthorized)
			return
		}
		if err != nil {
			aerr := &APError{Code: errorcode.KRB_ERR_GENERIC, Reason: fmt.Sprintf("HTTP %s %s: %v", r.Method, r.URL.Path, err)}
			a.logResult(ctx, "http-negotiate", nil, aerr)
			w.Header().Set("WWW-Authenticate", "Negotiate")
			http.Error(w, "bad Negotiate token", http.StatusUnauthorized)
			return
		}
		c, reply, err := a.AcceptToken(ctx, token)
		if len(reply) > 0 {
			w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(reply))
		}
		if err != nil {
			if len(reply) == 0 {
				w.Header().Set("WWW-Authenticate", "Negotiate")
			}
			http.Error(w, "Negotiate authentication failed", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, httpContextKey{}, c)))
	})
}

// negotiateToken finds "Negotiate <base64>" among the Authorization headers.
// ok is false when there is none; err reports an undecodable one.
func negotiateToken(values []string) (token []byte, ok bool, err error) {
	for _, v := range values {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Negotiate") {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return nil, true, fmt.Errorf("empty Negotiate token")
		}
		if len(rest) > MaxNegotiateHeader {
			return nil, true, fmt.Errorf("Negotiate token of %d bytes exceeds %d", len(rest), MaxNegotiateHeader)
		}
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "=")); err != nil {
				return nil, true, fmt.Errorf("Negotiate token is not base64")
			}
		}
		return b, true, nil
	}
	return nil, false, nil
}

// HelloHandler answers every request with "hello CLIENT\n", naming the client
// authenticated by Negotiate.
func HelloHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromRequest(r)
		if !ok {
			http.Error(w, "not authenticated", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello %s\n", c.Client)
	})
}

// LimitListener returns a listener that keeps at most n accepted connections
// open: Accept blocks while n are open, so the kernel's backlog absorbs the
// excess. For the HTTP server, whose connections net/http manages.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
