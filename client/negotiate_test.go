package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"

	"github.com/kerbkit/kerbkit/ticket"
)

// negServer is an HTTP Negotiate acceptor in front of the in-test acceptor; the knobs spoil its answers.
type negServer struct {
	acc acceptor

	final       func(tok []byte) string // replaces the final WWW-Authenticate value
	rawKRB5     bool                    // final token is a raw krb5 AP-REP token, not SPNEGO
	noChallenge bool                    // answer 200 to an unauthenticated request
	basicOnly   bool                    // challenge with Basic only
	reject      bool                    // answer 401 to the Authorization header, with a KRB-ERROR token
	status      int                     // status of the authenticated answer (default 200)
	body        string

	tb       *handlerTB
	mu       sync.Mutex
	requests []string // Authorization header of each request ("" if none)
}

// handlerTB lets acceptor code fail inside an HTTP handler goroutine, where t.Fatal is not allowed: it records the
// failure, aborts the handler, and the test reports it from its own goroutine.
type handlerTB struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (h *handlerTB) Helper() {}

func (h *handlerTB) Fatal(args ...any) { h.Fatalf("%s", fmt.Sprint(args...)) }

func (h *handlerTB) Fatalf(format string, args ...any) {
	h.mu.Lock()
	h.failed = append(h.failed, fmt.Sprintf(format, args...))
	h.mu.Unlock()
	panic(http.ErrAbortHandler)
}

// check reports recorded failures.
func (h *handlerTB) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.failed {
		t.Errorf("fake HTTP acceptor: %s", f)
	}
}

func (s *negServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	s.requests = append(s.requests, auth)
	s.mu.Unlock()
	if auth == "" {
		switch {
		case s.noChallenge:
			_, _ = w.Write([]byte("open to all"))
		case s.basicOnly:
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.Header().Add("WWW-Authenticate", `Basic realm="x"`)
			w.Header().Add("WWW-Authenticate", "Negotiate")
			w.WriteHeader(http.StatusUnauthorized)
		}
		return
	}
	b64, ok := strings.CutPrefix(auth, "Negotiate ")
	if !ok {
		http.Error(w, "bad scheme", http.StatusBadRequest)
		return
	}
	tok, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		http.Error(w, "bad base64", http.StatusBadRequest)
		return
	}
	init, _, err := ticket.ParseNegToken(tok)
	if err != nil || init == nil || len(init.MechTypes) != 1 || !init.MechTypes[0].Equal(ticket.OIDKRB5) {
		http.Error(w, "bad NegTokenInit", http.StatusBadRequest)
		return
	}
	id, apreq, err := ticket.ParseKRB5Token(init.MechToken)
	if err != nil || id != ticket.TokIDAPReq {
		http.Error(w, "bad mechToken", http.StatusBadRequest)
		return
	}
	tt := s.tb
	if s.reject {
		e := ticket.FrameKRB5Token(ticket.TokIDError, s.acc.krbError(tt, errorcode.KRB_AP_ERR_MODIFIED))
		resp, _ := ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: ticket.NegStateReject, ResponseToken: e})
		w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(resp))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rep := ticket.FrameKRB5Token(ticket.TokIDAPRep, s.acc.accept(tt, apreq))
	final := rep
	if !s.rawKRB5 {
		final, _ = ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: ticket.NegStateAcceptCompleted, SupportedMech: ticket.OIDKRB5, ResponseToken: rep})
	}
	h := "Negotiate " + base64.StdEncoding.EncodeToString(final)
	if s.final != nil {
		h = s.final(final)
	}
	if h != "" {
		w.Header().Set("WWW-Authenticate", h)
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
	}
	_, _ = w.Write([]byte(s.body))
}

// runNegotiate runs Negotiate against a fresh negServer.
func runNegotiate(t *testing.T, s *negServer, o NegotiateOptions) (*APContext, *NegotiateResult, error) {
	t.Helper()
	s.acc.svc = newAPService(t, "HTTP", "localhost")
	s.tb = &handlerTB{TB: t}
	defer s.tb.check(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ap, err := NewAPRequest(s.acc.svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96), APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Negotiate(ctx, srv.URL+"/index.txt", ap, o)
	return ap, res, err
}

func TestNegotiate(t *testing.T) {
	t.Run("challenge then SPNEGO", func(t *testing.T) {
		s := &negServer{body: "hello negotiate\n"}
		ap, res, err := runNegotiate(t, s, NegotiateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ap.Established || !res.Challenged || res.Status != 200 || string(res.Body) != "hello negotiate\n" || !res.Response.SPNEGO {
			t.Errorf("result %+v", res)
		}
		if len(s.requests) != 2 || s.requests[0] != "" || !strings.HasPrefix(s.requests[1], "Negotiate YI") {
			t.Errorf("requests %q: want none, then a SPNEGO initial token", s.requests)
		}
	})
	t.Run("preemptive raw krb5", func(t *testing.T) {
		s := &negServer{rawKRB5: true}
		_, res, err := runNegotiate(t, s, NegotiateOptions{Preemptive: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Challenged || res.Response.SPNEGO || len(s.requests) != 1 {
			t.Errorf("result %+v, requests %d", res, len(s.requests))
		}
	})
	t.Run("token among other challenges", func(t *testing.T) {
		s := &negServer{status: http.StatusCreated}
		s.final = func(tok []byte) string {
			return `Basic realm="x", Negotiate ` + base64.StdEncoding.EncodeToString(tok)
		}
		if _, res, err := runNegotiate(t, s, NegotiateOptions{}); err != nil || res.Status != 201 {
			t.Fatalf("err %v result %+v", err, res)
		}
	})
	t.Run("body limit", func(t *testing.T) {
		s := &negServer{body: strings.Repeat("x", 100)}
		_, res, err := runNegotiate(t, s, NegotiateOptions{MaxBody: 10})
		if err != nil || len(res.Body) != 10 || !res.Truncated {
			t.Fatalf("err %v, body %d bytes, truncated %v", err, len(res.Body), res.Truncated)
		}
	})
}

func TestNegotiateServerNotProven(t *testing.T) {
	for _, tc := range []struct {
		name   string
		srv    *negServer
		want   string
		mutual bool
	}{
		{"missing final token", &negServer{final: func([]byte) string { return "" }}, `carries no "WWW-Authenticate: Negotiate <token>"`, false},
		{"bare Negotiate", &negServer{final: func([]byte) string { return "Negotiate" }}, "carries no", false},
		{"garbage", &negServer{final: func([]byte) string { return "Negotiate AAAA" }}, "SPNEGO token does not decode", false},
		{"not base64", &negServer{final: func([]byte) string { return "Negotiate ***" }}, "not base64", false},
		{"tampered ctime", &negServer{acc: acceptor{ctimeShift: time.Minute}}, "server failed mutual authentication: AP-REP ctime", true},
		{"wrong key", &negServer{acc: acceptor{wrongKey: true}}, "AP-REP does not decrypt with the ticket session key", true},
		{"wrong key raw", &negServer{rawKRB5: true, acc: acceptor{wrongKey: true}}, "AP-REP does not decrypt", true},
		{"krb5 token of another kind", &negServer{final: func([]byte) string {
			return "Negotiate " + base64.StdEncoding.EncodeToString(ticket.FrameKRB5Token(0x0404, []byte{1, 2, 3}))
		}}, "TOK_ID 0404", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, res, err := runNegotiate(t, tc.srv, NegotiateOptions{})
			if err == nil {
				t.Fatalf("succeeded: %+v", res)
			}
			if !errors.Is(err, ErrServerNotProven) || !strings.HasPrefix(err.Error(), "client: server did not prove its identity: ") {
				t.Errorf("err = %v, want ErrServerNotProven", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(strings.TrimPrefix(err.Error(), "client: "), "client: ") {
				t.Errorf("err = %q, want %q once prefixed", err, tc.want)
			}
			if errors.Is(err, ErrMutualFailed) != tc.mutual {
				t.Errorf("errors.Is(ErrMutualFailed) = %v, want %v", !tc.mutual, tc.mutual)
			}
			if ap.Established {
				t.Error("context established")
			}
		})
	}
}

func TestNegotiateOtherFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  *negServer
		want string
		is   error
	}{
		{"rejected", &negServer{reject: true}, "server rejected our Negotiate authentication (HTTP 401): server HTTP/localhost@AP.TEST rejected our authentication: Message stream modified", ErrNegotiateRejected},
		{"no auth asked", &negServer{noChallenge: true}, "without asking for authentication", nil},
		{"basic only", &negServer{basicOnly: true}, "401 without offering Negotiate", nil},
		{"server error", &negServer{status: http.StatusInternalServerError}, "500 Internal Server Error to our Negotiate request", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := runNegotiate(t, tc.srv, NegotiateOptions{})
			if err == nil {
				t.Fatalf("succeeded: %+v", res)
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		svc := newAPService(t, "HTTP", "localhost")
		ap, _ := NewAPRequest(svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96), APOptions{})
		if _, err := Negotiate(context.Background(), url, ap, NegotiateOptions{Timeout: 5 * time.Second}); err == nil {
			t.Error("succeeded against a closed port")
		}
	})
}

func TestHTTPServicePrincipal(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:8080/index.txt": "HTTP/localhost@R",
		"https://WWW.Example.COM/":        "HTTP/www.example.com@R",
		"http://[::1]:80/":                "HTTP/::1@R",
	} {
		p, err := HTTPServicePrincipal(in, "R")
		if err != nil || p.String() != want || p.Type != nametype.KRB_NT_SRV_HST {
			t.Errorf("%s: %v %v, want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"ftp://x/", "http:///nohost", "::bad", "localhost:80"} {
		if _, err := HTTPServicePrincipal(in, "R"); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
	if _, err := HTTPServicePrincipal("http://x/", ""); !errors.Is(err, ErrNoRealm) {
		t.Errorf("no realm: %v", err)
	}
}
