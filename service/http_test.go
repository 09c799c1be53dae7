package service

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/kerbkit/kerbkit/ticket"
)

func get(t *testing.T, url, auth string) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestNegotiateHandler(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(Negotiate(e.acc, HelloHandler()))
	defer srv.Close()

	// No Authorization: 401 with a bare challenge.
	resp, _ := get(t, srv.URL, "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Fatalf("no auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = get(t, srv.URL, "Basic YWxpY2U6cHc=")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Fatalf("basic auth: %d", resp.StatusCode)
	}

	// SPNEGO, as curl sends it.
	tok, session, auth := e.gssToken(req{})
	init, _ := ticket.MarshalNegTokenInit(ticket.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}, MechToken: tok})
	header := "Negotiate " + base64.StdEncoding.EncodeToString(init)
	resp, body := get(t, srv.URL+"/index.txt", header)
	if resp.StatusCode != 200 || body != "hello alice@KRB.TEST\n" {
		t.Fatalf("SPNEGO: %d %q", resp.StatusCode, body)
	}
	final := finalToken(t, resp)
	_, nresp, err := ticket.ParseNegToken(final)
	if err != nil || nresp.NegState != 0 || !nresp.SupportedMech.Equal(ticket.OIDKRB5) {
		t.Fatalf("final token %+v %v", nresp, err)
	}
	finish(t, nresp.ResponseToken, session, auth)

	// The same header again is a replay: 401.
	resp, _ = get(t, srv.URL, header)
	if resp.StatusCode != 401 {
		t.Fatalf("replayed Authorization: %d", resp.StatusCode)
	}
	if _, r, err := ticket.ParseNegToken(finalToken(t, resp)); err != nil || r.NegState != ticket.NegStateReject {
		t.Errorf("replay answer %+v %v", r, err)
	}

	// A raw krb5 token gets a raw krb5 AP-REP token back.
	tok, session, auth = e.gssToken(req{})
	resp, body = get(t, srv.URL, "negotiate "+base64.StdEncoding.EncodeToString(tok))
	if resp.StatusCode != 200 || body != "hello alice@KRB.TEST\n" {
		t.Fatalf("raw krb5: %d %q", resp.StatusCode, body)
	}
	finish(t, finalToken(t, resp), session, auth)

	// Garbage.
	for _, h := range []string{"Negotiate !!!", "Negotiate", "Negotiate " + base64.StdEncoding.EncodeToString([]byte("junk")),
		"Negotiate " + strings.Repeat("A", MaxNegotiateHeader+4)} {
		resp, _ = get(t, srv.URL, h)
		if resp.StatusCode != 401 {
			t.Errorf("%.40q: %d", h, resp.StatusCode)
		}
	}
	if !strings.Contains(e.log.String(), "mech=http-negotiate") || !strings.Contains(e.log.String(), "mech=spnego-krb5") {
		t.Errorf("log:\n%s", e.log.String())
	}
}

func finalToken(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	h := resp.Header.Get("WWW-Authenticate")
	b64, ok := strings.CutPrefix(h, "Negotiate ")
	if !ok {
		t.Fatalf("WWW-Authenticate %q has no token", h)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLimitListener(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(Negotiate(e.acc, HelloHandler()))
	srv.Listener = LimitListener(srv.Listener, 2)
	srv.Start()
	defer srv.Close()
	for i := 0; i < 5; i++ {
		if resp, _ := get(t, srv.URL, ""); resp.StatusCode != 401 {
			t.Fatal(resp.StatusCode)
		}
	}
}
