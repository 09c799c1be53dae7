package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"

	"github.com/kerbkit/kerbkit/principal"
)

// Bounds of an HTTP Negotiate exchange.
const (
	// DefaultNegotiateTimeout bounds the whole exchange (both requests) when NegotiateOptions.Timeout is 0.
	DefaultNegotiateTimeout = 30 * time.Second
	// DefaultMaxBody is how much of a response body is read when NegotiateOptions.MaxBody is 0.
	DefaultMaxBody = 1 << 20
	// MaxNegotiateHeaderBytes bounds the response headers read by the default HTTP client: a final token is a
	// few hundred bytes.
	MaxNegotiateHeaderBytes = 64 << 10
)

// ErrServerNotProven is wrapped when an HTTP server accepted the request but did not prove its identity: no
// final Negotiate token on the 2xx response, or one that is not a valid AP-REP for our authenticator. A 200
// status alone proves nothing about who answered.
var ErrServerNotProven = errors.New("server did not prove its identity")

// ErrNegotiateRejected is wrapped when the server answers our Authorization header with another 401.
var ErrNegotiateRejected = errors.New("server rejected our Negotiate authentication")

// NegotiateOptions configure Negotiate.
type NegotiateOptions struct {
	// HTTPClient sends the requests; nil means a private client that follows no redirects and reads at most
	// MaxNegotiateHeaderBytes of headers. Its Timeout, if any, applies per request in addition to Timeout.
	HTTPClient *http.Client
	// Timeout bounds the whole exchange; zero means DefaultNegotiateTimeout.
	Timeout time.Duration
	// MaxBody bounds the response body kept in the result; zero means DefaultMaxBody.
	MaxBody int64
	// Preemptive sends the Authorization header with the first request, as curl does, instead of first asking
	// without it and answering the server's 401 "WWW-Authenticate: Negotiate" challenge [RFC 4559 §4].
	Preemptive bool
}

// NegotiateResult tells what an HTTP Negotiate exchange proved.
type NegotiateResult struct {
	// Context is the established context: the server's AP-REP was verified.
	Context *APContext
	// Response says what the final token held (SPNEGO NegTokenResp or a raw krb5 token).
	Response ResponseInfo
	// Challenged is true when the server first answered 401 with "WWW-Authenticate: Negotiate".
	Challenged bool
	// Status and Header are those of the final response.
	Status int
	Header http.Header
	// Body is the final response body, at most MaxBody bytes.
	Body []byte
	// Truncated is true when the body was longer than MaxBody.
	Truncated bool
}

// HTTPServicePrincipal returns the service principal of an http or https URL, HTTP/<host>@realm, with the host
// name lowercased as MIT does for host-based names [RFC 4559 §4.1].
func HTTPServicePrincipal(rawURL, realm string) (principal.Name, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return principal.Name{}, fmt.Errorf("client: bad URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return principal.Name{}, fmt.Errorf("client: URL %q is not http or https", rawURL)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return principal.Name{}, fmt.Errorf("client: URL %q has no host", rawURL)
	}
	if realm == "" {
		return principal.Name{}, fmt.Errorf("client: no realm for HTTP/%s: %w", host, ErrNoRealm)
	}
	return principal.Name{Components: []string{"HTTP", host}, Realm: realm, Type: nametype.KRB_NT_SRV_HST}, nil
}

// Negotiate fetches rawURL with HTTP Negotiate authentication [RFC 4559] and mutual authentication: it sends
// "Authorization: Negotiate <base64 SPNEGO NegTokenInit>" whose mechToken is a's AP-REQ (after a 401 challenge,
// or at once with o.Preemptive), and on a 2xx answer requires "WWW-Authenticate: Negotiate <base64>" holding a
// NegTokenResp (accept-completed) whose responseToken is the server's AP-REP, or a raw krb5 AP-REP token, and
// verifies it with a.AcceptToken. A missing or invalid final token is an error wrapping ErrServerNotProven, even
// though the status is 200.
func Negotiate(ctx context.Context, rawURL string, a *APContext, o NegotiateOptions) (*NegotiateResult, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultNegotiateTimeout
	}
	maxBody := o.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxResponseHeaderBytes = MaxNegotiateHeaderBytes
		defer tr.CloseIdleConnections()
		hc = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &NegotiateResult{Context: a}

	if !o.Preemptive {
		resp, err := get(ctx, hc, rawURL, "")
		if err != nil {
			return nil, err
		}
		drain(resp.Body)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && hasNegotiate(resp.Header):
			res.Challenged = true
		case resp.StatusCode == http.StatusUnauthorized:
			return nil, fmt.Errorf("client: %s answered 401 without offering Negotiate (WWW-Authenticate: %q)",
				rawURL, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "))
		case resp.StatusCode/100 == 2:
			return nil, fmt.Errorf("client: %s answered %s without asking for authentication: nothing to prove", rawURL, resp.Status)
		default:
			return nil, fmt.Errorf("client: %s answered %s", rawURL, resp.Status)
		}
	}

	tok, err := a.InitialToken(true)
	if err != nil {
		return nil, err
	}
	resp, err := get(ctx, hc, rawURL, "Negotiate "+base64.StdEncoding.EncodeToString(tok))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	res.Status, res.Header = resp.StatusCode, resp.Header
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: reading the response body from %s: %w", rawURL, err)
	}
	if int64(len(body)) > maxBody {
		body, res.Truncated = body[:maxBody], true
	}
	res.Body = body

	final, found, ferr := negotiateToken(resp.Header)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		if found && ferr == nil {
			// The server may explain itself with a KRB-ERROR token.
			if _, err := a.AcceptToken(final, true); err != nil && !errors.Is(err, ErrMutualFailed) {
				return nil, chain(ErrNegotiateRejected, "(HTTP 401)", err)
			}
		}
		return nil, fmt.Errorf("client: %w (HTTP 401 from %s; see the server's log)", ErrNegotiateRejected, rawURL)
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("client: %s answered %s to our Negotiate request", rawURL, resp.Status)
	}
	if ferr != nil {
		return nil, chain(ErrServerNotProven, "", ferr)
	}
	if !found {
		return nil, fmt.Errorf("client: %w: the %s response carries no \"WWW-Authenticate: Negotiate <token>\" (no AP-REP)", ErrServerNotProven, resp.Status)
	}
	info, err := a.AcceptToken(final, true)
	if err != nil {
		return nil, chain(ErrServerNotProven, "", err)
	}
	res.Response = info
	return res, nil
}

// get sends one GET with an optional Authorization header.
func get(ctx context.Context, hc *http.Client, rawURL, auth string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("client: bad URL %q: %w", rawURL, err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", rawURL, err)
	}
	return resp, nil
}

// drain reads a little of a body we do not need, so the connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// negotiateChallenges returns the parameters of every "Negotiate" challenge in the WWW-Authenticate headers
// ("" for a bare challenge). Base64 has no commas, so splitting challenge lists at commas is safe for these.
func negotiateChallenges(h http.Header) []string {
	var out []string
	for _, v := range h.Values("WWW-Authenticate") {
		for _, part := range strings.Split(v, ",") {
			f := strings.Fields(part)
			if len(f) == 0 || !strings.EqualFold(f[0], "Negotiate") {
				continue
			}
			if len(f) > 1 {
				out = append(out, f[1])
			} else {
				out = append(out, "")
			}
		}
	}
	return out
}

// hasNegotiate reports whether the server offers the Negotiate scheme.
func hasNegotiate(h http.Header) bool { return len(negotiateChallenges(h)) > 0 }

// negotiateToken returns the decoded token of the Negotiate challenge that has one.
func negotiateToken(h http.Header) (tok []byte, found bool, err error) {
	for _, c := range negotiateChallenges(h) {
		if c == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			if b2, err2 := base64.RawStdEncoding.DecodeString(c); err2 == nil {
				return b2, true, nil
			}
			return nil, true, fmt.Errorf("the Negotiate token is not base64: %v", err)
		}
		if len(b) == 0 {
			return nil, true, errors.New("the Negotiate token is empty")
		}
		return b, true, nil
	}
	return nil, false, nil
}

// chainError is "client: <sentinel>[ <note>]: <cause>" with the cause's own "client: " prefix dropped; errors.Is
// finds both the sentinel and everything in the cause's chain.
type chainError struct {
	msg  string
	errs []error
}

func (e *chainError) Error() string   { return e.msg }
func (e *chainError) Unwrap() []error { return e.errs }

// chain builds a chainError.
func chain(sentinel error, note string, cause error) error {
	msg := "client: " + sentinel.Error()
	if note != "" {
		msg += " " + note
	}
	msg += ": " + strings.TrimPrefix(cause.Error(), "client: ")
	return &chainError{msg: msg, errs: []error{sentinel, cause}}
}
