package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeKeytab(t *testing.T) string {
	t.Helper()
	k, err := ticket.RandomKey(18)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kt")
	var entries []ticket.KeytabEntry
	for _, n := range []string{"host/localhost", "HTTP/localhost"} {
		entries = append(entries, ticket.KeytabEntry{Principal: principal.FromPrincipalName(types.NewPrincipalName(3, n), "KRB.TEST"), KVNO: 1, Key: k, Timestamp: time.Now()})
	}
	if err := ticket.WriteKeytabFile(path, entries); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadFlags(t *testing.T) {
	kt := writeKeytab(t)
	t.Setenv("KRB5_KTNAME", "")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, cli.ExitUsage, "kservice: nothing to serve"},
		{[]string{"--listen", "127.0.0.1:0"}, cli.ExitUsage, "kservice: no keytab: use --keytab FILE or set KRB5_KTNAME"},
		{[]string{"--keytab", "/nonexistent/kt", "--listen", "127.0.0.1:0"}, cli.ExitFailure, "kservice: keytab: stat /nonexistent/kt"},
		{[]string{"--keytab", kt, "--listen", "127.0.0.1:0", "--service", "ftp@localhost"}, cli.ExitFailure, "has no key for ftp@localhost"},
		{[]string{"--keytab", kt, "--listen", "256.0.0.1:0"}, cli.ExitFailure, "kservice: --listen:"},
		{[]string{"--keytab", kt, "--listen", "127.0.0.1:0", "--log-level", "loud"}, cli.ExitUsage, "--log-level"},
		{[]string{"--nope"}, cli.ExitUsage, "unknown flag: --nope (see `kservice --help`)"},
		{[]string{"extra"}, cli.ExitUsage, "unknown command"},
	} {
		var stderr bytes.Buffer
		if code := run(c.args, &stderr); code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
		out := stderr.String()
		if !strings.Contains(out, c.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line with %q", c.args, out, c.want)
		}
	}
	// KRB5_KTNAME with FILE: works.
	t.Setenv("KRB5_KTNAME", "FILE:"+kt)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuf
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		c := newRootCmd(&stderr, func(string, string) { close(ready) })
		c.SetArgs([]string{"--listen", "127.0.0.1:0"})
		done <- c.ExecuteContext(ctx)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("exited: %v\n%s", err, stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestServeAndStop starts both listeners on port 0, checks the printed
// addresses and the HTTP challenge, and stops on context cancel (what
// SIGINT/SIGTERM do) with "kservice: stopped".
func TestServeAndStop(t *testing.T) {
	kt := writeKeytab(t)
	var stderr syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		c := newRootCmd(&stderr, func(g, h string) { addrs <- [2]string{g, h} })
		c.SetArgs([]string{"--keytab", kt, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--service", "host@localhost"})
		done <- c.ExecuteContext(ctx)
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("exited: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	out := stderr.String()
	for _, want := range []string{"kservice: gss listening on " + a[0] + "\n", "kservice: http listening on " + a[1] + "\n",
		"kservice: keytab " + kt + " (host/localhost@KRB.TEST, HTTP/localhost@KRB.TEST)"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(a[0], "127.0.0.1:") || strings.HasSuffix(a[0], ":0") {
		t.Errorf("gss address %q", a[0])
	}
	resp, err := http.Get("http://" + a[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("HTTP without auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	if !strings.HasSuffix(stderr.String(), "kservice: stopped\n") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestExamplesAndCompletion(t *testing.T) {
	root := newRootCmd(io.Discard, nil)
	for _, err := range cli.CheckExamples(root) {
		t.Error(err)
	}
	var out, stderr bytes.Buffer
	if code := runOut([]string{"--help"}, &out, &stderr); code != 0 || !strings.Contains(out.String(), "\nExamples:\n") || !strings.Contains(out.String(), "Exit status:") {
		t.Errorf("--help: exit %d, no Examples or exit status:\n%s", code, out.String())
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out.Reset()
		if code := runOut([]string{"completion", shell}, &out, &stderr); code != 0 || !strings.Contains(out.String(), "kservice") || out.Len() < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, out.Len(), stderr.String())
		}
	}
	out.Reset()
	runOut([]string{"__complete", "--log-level", ""}, &out, &stderr)
	if !strings.Contains(out.String(), "debug\ninfo\nwarn\nerror\n") {
		t.Errorf("completing --log-level: %q", out.String())
	}
}
