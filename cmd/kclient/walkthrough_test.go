package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/service"
	"github.com/kerbkit/kerbkit/testenv"
)

// wtResult is the outcome of one in-process kclient run for the walkthrough tests.
type wtResult struct {
	code           int
	stdout, stderr string
}

// runWalkthroughCmd runs kclient in-process with stdin and no environment variables.
func runWalkthroughCmd(t *testing.T, stdin string, args ...string) wtResult {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &Env{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }, UID: os.Getuid()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, args, e)
	return wtResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

func TestWalkthroughText(t *testing.T) {
	r := runWalkthroughCmd(t, "", "walkthrough")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour escapes in output that is not a terminal")
	}
	for _, want := range []string{
		"━━ 1/11  pre  local  on the client", "━━ 3/11  pre  KRB-ERROR  AS → client", "━━ 5/11  A B  AS-REP  AS → client",
		"━━ 6/11  C D  TGS-REQ  client → TGS", "━━ 7/11  E F  TGS-REP  TGS → client", "━━ 8/11  E G  AP-REQ  client → service",
		"━━ 9/11  H  AP-REP  service → client", "KDC_ERR_PREAUTH_REQUIRED (25)", "key usage 9",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestWalkthroughJSON checks that --json parses and holds the steps pre and A to H with the key usages of
// DESIGN.md's table: 1 (pre), 3 (A), 2 (B), 7 and 6 (D), 8 or 9 (F), 2 (E), 11 (G), 12 (H).
func TestWalkthroughJSON(t *testing.T) {
	r := runWalkthroughCmd(t, "", "walkthrough", "--json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var doc struct {
		Steps []struct {
			ID        string   `json:"id"`
			Letters   []string `json:"letters"`
			Message   string   `json:"message"`
			From      string   `json:"from"`
			To        string   `json:"to"`
			Transport string   `json:"transport"`
			Size      int      `json:"size"`
			Parts     []struct {
				Letter string `json:"letter"`
				Opened bool   `json:"opened"`
				Key    struct {
					Usage         int    `json:"usage"`
					ChecksumUsage int    `json:"checksum_usage"`
					EtypeName     string `json:"etype_name"`
					Owner         string `json:"owner"`
				} `json:"key"`
			} `json:"parts"`
			Checks []struct {
				Result string `json:"result"`
			} `json:"checks"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--json output does not parse: %v", err)
	}
	letters := map[string]bool{}
	usages := map[string][]int{}
	for _, s := range doc.Steps {
		for _, l := range s.Letters {
			letters[l] = true
		}
		if s.Message != "" && s.Transport != "udp" && s.Transport != "tcp" {
			t.Errorf("step %s: transport %q", s.ID, s.Transport)
		}
		for _, p := range s.Parts {
			usages[p.Letter] = append(usages[p.Letter], p.Key.Usage)
			if p.Key.ChecksumUsage != 0 {
				usages[p.Letter] = append(usages[p.Letter], p.Key.ChecksumUsage)
			}
			if !p.Opened || p.Key.EtypeName == "" || p.Key.Owner == "" {
				t.Errorf("step %s part %s: opened %v, etype %q, owner %q", s.ID, p.Letter, p.Opened, p.Key.EtypeName, p.Key.Owner)
			}
		}
	}
	for _, l := range []string{"pre", "A", "B", "C", "D", "E", "F", "G", "H"} {
		if !letters[l] {
			t.Errorf("no step carries letter %s", l)
		}
	}
	for letter, want := range map[string][]int{"pre": {1}, "A": {3}, "B": {2}, "D": {7, 6}, "E": {2}, "G": {11}, "H": {12}} {
		for _, u := range want {
			if !slices.Contains(usages[letter], u) {
				t.Errorf("letter %s: key usages %v lack %d", letter, usages[letter], u)
			}
		}
	}
	if !slices.Contains(usages["F"], 8) && !slices.Contains(usages["F"], 9) {
		t.Errorf("letter F: key usages %v, want 8 or 9", usages["F"])
	}
}

func TestWalkthroughHTMLFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wt.html")
	r := runWalkthroughCmd(t, "", "walkthrough", "--html", path)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "wrote "+path+": 11 messages, pre A B C D E F G H") {
		t.Errorf("stdout %q", r.stdout)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte("<svg")) || bytes.Contains(b, []byte("<script")) {
		t.Errorf("not the self-contained page (%d bytes)", len(b))
	}
}

// TestWalkthroughStep checks the pager: Enter shows the next step, q stops, and the end of input shows the rest.
func TestWalkthroughStep(t *testing.T) {
	r := runWalkthroughCmd(t, "\n\nq\n", "walkthrough", "--step")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "━━ 2/11") || strings.Contains(r.stdout, "━━ 3/11") {
		t.Errorf("after Enter, Enter, q: want steps 1 and 2 only:\n%s", r.stdout)
	}
	if n := strings.Count(r.stderr, "press Enter"); n != 3 {
		t.Errorf("%d prompts on stderr, want 3: %q", n, r.stderr)
	}
	r = runWalkthroughCmd(t, "\n", "walkthrough", "--step", "--no-color")
	if r.code != 0 || !strings.Contains(r.stdout, "━━ 11/11") {
		t.Errorf("at the end of input the rest should print without waiting: exit %d", r.code)
	}
	if n := strings.Count(r.stderr, "press Enter"); n != 2 {
		t.Errorf("%d prompts, want 2 (the second read hits the end of input)", n)
	}
}

func TestWalkthroughUsage(t *testing.T) {
	r := runWalkthroughCmd(t, "", "walkthrough", "--step", "--json")
	if r.code != 2 || !strings.Contains(r.stderr, "--step") || strings.Count(r.stderr, "\n") != 1 { // 2: usage error
		t.Errorf("--step --json: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runWalkthroughCmd(t, "", "walkthrough", "extra")
	if r.code != 2 {
		t.Errorf("an argument: exit %d", r.code)
	}
}

// runExplainCmd runs kclient in-process with environment variables and standard input.
func runExplainCmd(t *testing.T, env map[string]string, stdin string, args ...string) wtResult {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &Env{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut, Getenv: func(k string) string { return env[k] }, UID: os.Getuid()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, args, e)
	return wtResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// flatText joins the words of s with single spaces, so that wrapped sentences can be searched.
func flatText(s string) string { return strings.Join(strings.Fields(s), " ") }

// wantExplained checks an --explain output: the wanted phrases (after unwrapping), no colour, no password.
func wantExplained(t *testing.T, what string, r wtResult, password string, want ...string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d, stderr %q", what, r.code, r.stderr)
	}
	flat := flatText(r.stdout)
	for _, w := range want {
		if !strings.Contains(flat, w) {
			t.Errorf("%s --explain lacks %q:\n%s", what, w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("%s: colour escapes in output that is not a terminal", what)
	}
	if password != "" && strings.Contains(r.stdout, password) {
		t.Errorf("%s: the explanation prints the password", what)
	}
	if strings.Contains(r.stdout, "value ") && regexp.MustCompile(`value [0-9a-f]{32,}`).MatchString(r.stdout) {
		t.Errorf("%s: the explanation prints a key value", what)
	}
}

// TestExplainOwnKDC runs login, ticket and request with --explain against our KDC (in-process) and our GSS
// sample service: A, F and H are opened, B and E are shown sealed.
func TestExplainOwnKDC(t *testing.T) {
	r := testenv.NewInProcRealm(t, testenv.InProcOptions{})
	dir := t.TempDir()
	cc := "FILE:" + filepath.Join(dir, "cc")
	env := map[string]string{"KRB5_CONFIG": filepath.Join(dir, "no-krb5.conf"), "KRB5CCNAME": cc}

	res := runExplainCmd(t, env, testenv.UserPassword+"\n", "login", "--explain", "--realm", r.Name, "--kdc", r.Addr, testenv.UserName)
	wantExplained(t, "login", res, testenv.UserPassword,
		"━━ 1 pre AS-REQ client → AS", "KDC_ERR_PREAUTH_REQUIRED (25)", "Password to key", "━━ 5 A B AS-REP AS → client",
		"sealed for krbtgt/"+r.Name+"@"+r.Name+": the client cannot read this",
		"✓ A decrypts with the client's key derived from the password (key usage 3)", "(value not shown)")

	res = runExplainCmd(t, env, "", "ticket", "--explain", "--kdc", r.Addr, "host/localhost")
	wantExplained(t, "ticket", res, "",
		"━━ 1 C D TGS-REQ client → TGS", "━━ 2 E F TGS-REP TGS → client", "✓ F decrypts with the subkey from D (key usage 9)",
		"sealed for host/localhost@"+r.Name+": the client cannot read this", "host/localhost@"+r.Name+": kvno = 1")

	ktEnv := map[string]string{"KRB5_CONFIG": env["KRB5_CONFIG"], "KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc-keytab")}
	res = runExplainCmd(t, ktEnv, "", "login", "--explain", "-k", "-t", r.Keytab, "--realm", r.Name, "--kdc", r.Addr, "host/localhost")
	wantExplained(t, "login -k", res, "",
		"Key from a keytab: no password involved", "✓ A decrypts with the client's key from the keytab (key usage 3)")

	svc := startSampleService(t, r.Keytab)
	res = runExplainCmd(t, env, "", "request", "--explain", "host/localhost", "--addr", svc)
	wantExplained(t, "request", res, "",
		"━━ 1 E G AP-REQ client → service", "━━ 2 H AP-REP service → client",
		"sealed for host/localhost@"+r.Name+": the client cannot read this",
		"✓ ctime and cusec are exactly those of authenticator G", "authenticated as alice@"+r.Name)
}

// TestExplainLoginMIT runs kclient login --explain against a real MIT krb5kdc (skipped without MIT's tools,
// unless CI=true).
func TestExplainLoginMIT(t *testing.T) {
	m := testenv.NewMITRealm(t, testenv.MITRealmOptions{})
	dir := t.TempDir()
	env := map[string]string{"KRB5_CONFIG": filepath.Join(dir, "no-krb5.conf"), "KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc")}
	res := runExplainCmd(t, env, testenv.UserPassword+"\n", "login", "--explain", "--realm", m.Name, "--kdc", m.Addr, testenv.UserName)
	wantExplained(t, "login (MIT KDC)", res, testenv.UserPassword,
		"KDC_ERR_PREAUTH_REQUIRED (25)", "PA-FX-FAST (136)", "PA-FX-COOKIE (133)", `salt "MIT.TESTalice"`,
		"sealed for krbtgt/MIT.TEST@MIT.TEST: the client cannot read this",
		"✓ A decrypts with the client's key derived from the password (key usage 3)",
		"✓ the nonce in A is the nonce of the AS-REQ")
	// The only refusal is the first AS-REQ's, for lack of pre-authentication.
	if strings.Count(res.stdout, "✗") != 1 || !strings.Contains(flatText(res.stdout), "✗ the AS refused it with KDC_ERR_PREAUTH_REQUIRED (25)") {
		t.Errorf("a failed check against MIT:\n%s", res.stdout)
	}
	t.Logf("kclient login --explain against MIT krb5kdc:\n%s", res.stdout)
}

// startSampleService serves the GSS sample protocol on 127.0.0.1 with our acceptor and the keytab, until the
// test ends.
func startSampleService(t *testing.T, keytab string) string {
	t.Helper()
	kt, err := service.LoadKeytab(keytab)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	acc, err := service.NewAcceptor(kt, service.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&service.SampleServer{Acceptor: acc, Logger: quiet}).Serve(ctx, ln) }()
	t.Cleanup(func() { stop(); <-done })
	return ln.Addr().String()
}
