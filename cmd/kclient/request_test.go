package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

const reqRealm = "REQ.TEST"

// reqKey returns a random aes256 key.
func reqKey(t *testing.T) types.EncryptionKey {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return types.EncryptionKey{KeyType: 18, KeyValue: k}
}

// reqCache writes a cache for alice@REQ.TEST holding a ticket for service (made here, sealed in the returned
// service key) and returns the cache path and the key.
func reqCache(t *testing.T, service ...string) (string, types.EncryptionKey) {
	t.Helper()
	svcKey := reqKey(t)
	now := time.Now().UTC()
	alice := principal.Name{Components: []string{"alice"}, Realm: reqRealm, Type: nametype.KRB_NT_PRINCIPAL}
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: service}
	session := reqKey(t)
	tkt, err := ticket.SealTicket(reqRealm, sname, messages.EncTicketPart{
		Flags: ticket.Flags(), Key: session, CRealm: reqRealm, CName: alice.PrincipalName(),
		Transited: messages.TransitedEncoding{TRType: 1}, AuthTime: now, StartTime: now, EndTime: now.Add(time.Hour),
	}, svcKey, 2)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ticket.MarshalTicket(tkt)
	if err != nil {
		t.Fatal(err)
	}
	cc := &ticket.CCache{Version: 4, DefaultPrincipal: alice, Credentials: []ticket.Credential{{
		Client: alice, Server: principal.FromPrincipalName(sname, reqRealm), Key: session,
		AuthTime: ticket.KerberosTime(now), StartTime: ticket.KerberosTime(now), EndTime: ticket.KerberosTime(now.Add(time.Hour)),
		Ticket: der,
	}}}
	path := filepath.Join(t.TempDir(), "cc")
	if err := ticket.WriteCCacheFile(path, cc); err != nil {
		t.Fatal(err)
	}
	return path, svcKey
}

// reqAccept verifies an AP-REQ with the service key and returns the AP-REP, the acceptor's per-message key and
// its sequence number.
func reqAccept(t *testing.T, svcKey types.EncryptionKey, b []byte) ([]byte, ticket.GSSKey, uint32) {
	var req messages.APReq
	if err := req.Unmarshal(b); err != nil {
		t.Errorf("AP-REQ: %v", err)
		return nil, ticket.GSSKey{}, 0
	}
	part, err := ticket.OpenTicket(req.Ticket, svcKey)
	if err != nil {
		// Not our key: answer like MIT, with a KRB-ERROR token.
		e, err := ticket.ErrorReply{Code: 31, Realm: reqRealm, SName: req.Ticket.SName, Now: time.Now()}.Marshal()
		if err != nil {
			t.Error(err)
		}
		return ticket.FrameKRB5Token(ticket.TokIDError, e), ticket.GSSKey{}, 0
	}
	if err := req.DecryptAuthenticator(part.Key); err != nil {
		t.Errorf("authenticator: %v", err)
		return nil, ticket.GSSKey{}, 0
	}
	sub := reqKey(t)
	const seq = 4242
	rep, err := ticket.BuildAPRep(ticket.APRepPart{CTime: req.Authenticator.CTime, Cusec: req.Authenticator.Cusec, SubKey: sub, SeqNumber: seq, HasSeq: true}, part.Key)
	if err != nil {
		t.Error(err)
	}
	return ticket.FrameKRB5Token(ticket.TokIDAPRep, rep), ticket.GSSKey{Key: sub, AcceptorSubkey: true}, seq
}

// reqSampleServer serves one GSS sample-protocol connection and returns what it received on the channel.
func reqSampleServer(t *testing.T, svcKey types.EncryptionKey) (string, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 1)
	go func() {
		defer close(got)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		read := func() (byte, []byte) {
			var h [5]byte
			if _, err := io.ReadFull(c, h[:]); err != nil {
				return 0, nil
			}
			b := make([]byte, binary.BigEndian.Uint32(h[1:]))
			_, _ = io.ReadFull(c, b)
			return h[0], b
		}
		write := func(f byte, b []byte) {
			h := []byte{f, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(h[1:], uint32(len(b)))
			_, _ = c.Write(append(h, b...))
		}
		read()
		_, tok := read()
		spnego := false
		if init, _, err := ticket.ParseNegToken(tok); err == nil && init != nil {
			tok, spnego = init.MechToken, true
		}
		_, apreq, err := ticket.ParseKRB5Token(tok)
		if err != nil {
			t.Errorf("context token: %v", err)
			return
		}
		rep, key, seq := reqAccept(t, svcKey, apreq)
		if spnego {
			rep, _ = ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: 0, SupportedMech: ticket.OIDKRB5, ResponseToken: rep})
		}
		write(0x02, rep)
		if key.Key.KeyType == 0 {
			return
		}
		_, wrapped := read()
		msg, _, err := ticket.UnwrapGSS(key, wrapped, false)
		if err != nil {
			t.Errorf("unwrap: %v", err)
			return
		}
		mic, _ := ticket.MakeMIC(key, msg, true, uint64(seq))
		write(0x08, mic)
		read()
		got <- string(msg)
	}()
	return l.Addr().String(), got
}

func TestRequestGSSSample(t *testing.T) {
	for _, service := range []string{"host/localhost", "host@localhost", "host/localhost@" + reqRealm} {
		t.Run(service, func(t *testing.T) {
			cc, key := reqCache(t, "host", "localhost")
			addr, got := reqSampleServer(t, key)
			r := runKClient(t, map[string]string{"KRB5_CONFIG": "/nonexistent"}, "", "request", service, "--addr", addr, "-c", "FILE:"+cc, "--message", "hi there")
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if msg := <-got; msg != "hi there" {
				t.Errorf("server received %q", msg)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			want := []string{
				"authenticated as alice@REQ.TEST to host/localhost@REQ.TEST (mutual: server proved it holds the service key)",
				"  service ticket: from FILE:" + cc + "; session key aes256-cts-hmac-sha1-96",
				"  AP-REP ctime ",
				`  sent wrapped message "hi there" (sealed); server MIC verified (seq 4242)`,
			}
			if len(lines) != len(want) {
				t.Fatalf("output:\n%s", r.stdout)
			}
			for i := range want {
				if !strings.HasPrefix(lines[i], want[i]) {
					t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], want[i])
				}
			}
			if !strings.HasSuffix(lines[2], "matches our authenticator; acceptor subkey aes256-cts-hmac-sha1-96; seq 4242") {
				t.Errorf("line 3 = %q", lines[2])
			}
		})
	}
	t.Run("spnego", func(t *testing.T) {
		cc, key := reqCache(t, "host", "localhost")
		addr, _ := reqSampleServer(t, key)
		r := runKClient(t, map[string]string{"KRB5_CONFIG": "/nonexistent", "KRB5CCNAME": "FILE:" + cc}, "", "request", "host@localhost", "--spnego", "--addr", addr)
		if r.code != 0 || !strings.Contains(r.stdout, "SPNEGO: negState accept-completed, mechanism krb5 1.2.840.113554.1.2.2") ||
			!strings.Contains(r.stdout, `sent wrapped message "hello"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("wrong service key", func(t *testing.T) {
		cc, _ := reqCache(t, "host", "localhost")
		addr, _ := reqSampleServer(t, reqKey(t))
		r := runKClient(t, map[string]string{"KRB5_CONFIG": "/nonexistent"}, "", "request", "host/localhost", "--addr", addr, "-c", cc, "--timeout", "3s")
		wantExit(t, r, cli.ExitAuth, "kclient: server host/localhost@REQ.TEST rejected our authentication: Decrypt integrity check failed (KRB_AP_ERR_BAD_INTEGRITY, code 31)", false)
	})
}

func TestRequestHTTPNotProven(t *testing.T) {
	cc, _ := reqCache(t, "HTTP", "localhost")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", "Negotiate")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString([]byte("garbage")))
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/"
	r := runKClient(t, map[string]string{"KRB5_CONFIG": "/nonexistent"}, "", "request", "--http", url, "-c", cc)
	wantExit(t, r, cli.ExitAuth, "kclient: server did not prove its identity: ", true)
}

func TestRequestErrors(t *testing.T) {
	env := map[string]string{"KRB5_CONFIG": "/nonexistent"}
	cc, _ := reqCache(t, "host", "localhost")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"request", "host/localhost"}, cli.ExitUsage, "kclient: give --addr HOST:PORT (GSS sample server) or --http URL (see kclient --help)"},
		{[]string{"request", "host/localhost", "--addr", "127.0.0.1:1", "--http", "http://x/"}, cli.ExitUsage, "kclient: --addr and --http exclude each other (see kclient --help)"},
		{[]string{"request", "--addr", "127.0.0.1:1"}, cli.ExitUsage, "kclient: SERVICE is required with --addr (e.g. host/localhost or host@localhost) (see kclient --help)"},
		{[]string{"request", "a", "b", "--addr", "x"}, cli.ExitUsage, "kclient: accepts at most 1 arg(s), received 2"},
		{[]string{"request", "host", "--addr", "127.0.0.1:1", "-c", cc}, cli.ExitFailure, `kclient: service "host": give a principal (host/localhost[@REALM]) or a host-based name (host@localhost)`},
		{[]string{"request", "host/localhost", "--addr", "127.0.0.1:1", "-c", filepath.Join(t.TempDir(), "none")}, cli.ExitFailure, "kclient: No credentials cache found (filename: "},
		{[]string{"request", "imap/localhost", "--addr", "127.0.0.1:1", "-c", cc}, cli.ExitFailure, "kclient: No ticket-granting ticket for alice@REQ.TEST in FILE:" + cc + " while getting credentials for imap/localhost@REQ.TEST (run kclient login)"},
		{[]string{"request", "--http", "ftp://localhost/", "-c", cc}, cli.ExitFailure, `kclient: URL "ftp://localhost/" is not http or https`},
	} {
		r := runKClient(t, env, "", tc.args...)
		wantExit(t, r, tc.code, tc.want, true)
	}
}

func TestParseServiceName(t *testing.T) {
	for in, want := range map[string]string{
		"host/localhost":         "host/localhost@R",
		"host/localhost@OTHER":   "host/localhost@OTHER",
		"host@LocalHost":         "host/localhost@R",
		"HTTP@www.example.com":   "HTTP/www.example.com@R",
		"a/b/c":                  "a/b/c@R",
		`host/with\@at@R2`:       `host/with\@at@R2`,
		"nfs@server.example.org": "nfs/server.example.org@R",
	} {
		p, err := parseServiceName(in, "R")
		if err != nil || p.String() != want {
			t.Errorf("%q: %v %v, want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"host", "@localhost", "host@", "host@a@b", "/x"} {
		if p, err := parseServiceName(in, "R"); err == nil {
			t.Errorf("%q: accepted as %v", in, p)
		}
	}
	if _, err := parseServiceName("host@localhost", ""); err == nil {
		t.Error("no realm accepted")
	}
}
