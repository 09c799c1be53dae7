package walkthrough

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/service"
	"github.com/kerbkit/kerbkit/ticket"
)

// update rewrites docs/walkthrough.md (and docs/walkthrough.png, when Chromium is there) from a fresh run.
var update = flag.Bool("update", false, "rewrite docs/walkthrough.md and docs/walkthrough.png from a real run")

// docsDir is the repository's docs/ folder, seen from this package.
const docsDir = "../docs"

// docsPreface is what docs/walkthrough.md says before the story itself.
const docsPreface = "<!-- Generated from a real run: go test ./walkthrough -run TestDocsGolden -update\n" +
	"     TestDocsGolden keeps it in sync; times, nonces, keys, ports and sizes are normalised when comparing. -->\n\n" +
	"`kclient walkthrough` runs everything below with nothing to set up, and explains it message by message:\n\n" +
	"```sh\n" +
	"kclient walkthrough                  # the story on the terminal (colour only on a terminal; --no-color)\n" +
	"kclient walkthrough --step           # one message at a time: Enter for the next, q to stop\n" +
	"kclient walkthrough --json           # the same story for programs\n" +
	"kclient walkthrough --html wt.html   # one self-contained page with a sequence diagram\n" +
	"kclient login --explain alice        # a real login, limited to what the client can decrypt\n" +
	"```\n\n" +
	"![The HTML page: a sequence diagram of the client, the AS, the TGS and the service, and one expandable section per message](walkthrough.png)\n\n" +
	"What follows is the text of one real run."

// runStory runs the walkthrough once for a test.
func runStory(t testing.TB) *Story {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, err := Run(ctx, RunOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return st
}

// normalizers replace what changes from run to run: times, ports, keys and other hex, nonces and sequence
// numbers, sizes (an INTEGER's DER length depends on its value) and clock differences.
var normalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<TIME>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<PORT>"},
	{regexp.MustCompile(`\b[0-9a-f]{16,}\b`), "<HEX>"},
	{regexp.MustCompile(`(nonce|seq-number|cusec|pausec|susec|SND_SEQ|sequence number)([^0-9\n]{0,24})\d+`), "${1}${2}<N>"},
	{regexp.MustCompile(`\b\d+( bytes?|-byte)\b`), "<N>$1"},
	{regexp.MustCompile(`(off by|clock by) (less than a second|[0-9hmsµ.]+)`), "$1 <SKEW>"},
	// The failure stories: measured guessing costs, the byte an attacker changed, and its value.
	{regexp.MustCompile(`\d[\d.,]*(×10\^\d+)? (µs|ms|s|minutes|hours|days|years)\b`), "<DUR>"},
	{regexp.MustCompile(`\bbyte \d+`), "byte <N>"},
	{regexp.MustCompile(`(before|after)(\W{0,6})0x[0-9a-f]{2}`), "$1${2}0x<HEX>"},
}

// normalize makes two runs' renderings comparable.
func normalize(s string) string {
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.repl)
	}
	return s
}

// TestDocsGolden keeps docs/walkthrough.md in sync with what the walkthrough really says.
func TestDocsGolden(t *testing.T) {
	st := runStory(t)
	var b bytes.Buffer
	if err := WriteMarkdown(&b, st, MarkdownOptions{Preface: docsPreface}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(docsDir, "walkthrough.md")
	if *update {
		if err := os.MkdirAll(docsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./walkthrough -run TestDocsGolden -update)", err)
	}
	got, exp := normalize(b.String()), normalize(string(want))
	if got != exp {
		gl, el := strings.Split(got, "\n"), strings.Split(exp, "\n")
		for i := 0; i < max(len(gl), len(el)); i++ {
			var g, e string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(el) {
				e = el[i]
			}
			if g != e {
				t.Fatalf("docs/walkthrough.md is out of date (regenerate with: go test ./walkthrough -run TestDocsGolden -update)\n"+
					"first difference at line %d:\n  docs: %q\n  run:  %q", i+1, e, g)
			}
		}
	}
}

// TestNormalize checks that the normaliser hides exactly the volatile values.
func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"- `nonce`: 382759615":                          "- `nonce`: <N>",
		"the nonce in A is the nonce of the AS-REQ, 17": "the nonce in A is the nonce of the AS-REQ, <N>",
		"stime 2026-11-25T03:01:28.042972Z (the KDC's)": "stime <TIME> (the KDC's)",
		"udp 127.0.0.1:39675, 143 bytes (147 bytes)":    "udp 127.0.0.1:<PORT>, <N> bytes (<N> bytes)",
		"value 251f9c5b5f3f6a96dd92f01f1948a641":        "value <HEX>",
		"kvno 1, key usage 2":                           "kvno 1, key usage 2",
		"(off by less than a second)":                   "(off by <SKEW>)",
		"12-byte checksum":                              "<N>-byte checksum",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStory checks the model: every step of the story, in order, with the letters and key usages of DESIGN.md's
// table, every part opened, every check passed.
func TestStory(t *testing.T) {
	st := runStory(t)
	var ids []string
	for _, s := range st.Steps {
		ids = append(ids, s.ID)
	}
	want := []string{"s2k", "as-req-1", "preauth-required", "as-req-2", "as-rep", "tgs-req", "tgs-rep", "ap-req", "ap-rep", "wrap", "mic"}
	if !slices.Equal(ids, want) {
		t.Fatalf("steps %v, want %v", ids, want)
	}
	if got := st.Letters(); !slices.Equal(got, []string{"pre", "A", "B", "C", "D", "E", "F", "G", "H"}) {
		t.Errorf("letters %v", got)
	}
	usages := partUsages(st)
	for letter, want := range map[string][]int{"pre": {1}, "A": {3}, "B": {2}, "C": {2}, "D": {7, 6}, "E": {2}, "F": {9}, "G": {11}, "H": {12}} {
		for _, u := range want {
			if !slices.Contains(usages[letter], u) {
				t.Errorf("letter %s: key usages %v, want %d among them", letter, usages[letter], u)
			}
		}
	}
	transports := map[string]string{"as-req-1": "udp", "preauth-required": "udp", "as-rep": "udp", "tgs-req": "udp", "tgs-rep": "udp", "ap-req": "tcp", "ap-rep": "tcp"}
	for _, s := range st.Steps {
		if w, ok := transports[s.ID]; ok && (s.Transport != w || s.Size == 0 || s.Addr == "") {
			t.Errorf("%s: transport %q addr %q size %d, want %s", s.ID, s.Transport, s.Addr, s.Size, w)
		}
		for _, p := range s.Parts {
			if !p.Opened {
				t.Errorf("%s part %s not opened: %s", s.ID, p.Letter, p.Reason)
			}
			if p.Key.Value == "" {
				t.Errorf("%s part %s: the walkthrough shows every key, this one has no value", s.ID, p.Letter)
			}
		}
		for _, c := range s.Checks {
			// The first AS-REQ is refused on purpose: that is the pre-authentication round.
			if c.Result == CheckFail && s.ID != "as-req-1" {
				t.Errorf("%s: failed check: %s", s.ID, c.Text)
			}
		}
		if s.Summary == "" || s.Title == "" {
			t.Errorf("%s: no title or summary", s.ID)
		}
	}
	if s := st.Step("as-req-1"); s == nil || !hasCheck(s, CheckFail, "requires pre-authentication") {
		t.Errorf("the first AS-REQ should show the refusal for lack of pre-authentication")
	}
	for id, text := range map[string]string{
		"s2k":    "PBKDF2-HMAC-SHA1",
		"as-rep": "session key in A is the very key sealed in B",
		"ap-rep": "ctime and cusec are exactly those of authenticator G",
	} {
		if s := st.Step(id); s == nil || (!hasCheck(s, CheckPass, text) && !hasField(s.Fields, text)) {
			t.Errorf("%s: want %q", id, text)
		}
	}
	if s := st.Step("ap-rep"); s == nil || !hasNote(s, "plus 1") {
		t.Errorf("ap-rep: want the note about the \"plus 1\" of version 4")
	}
	if s := st.Step("preauth-required"); s == nil || !hasNote(s, "neither encrypted nor signed") {
		t.Errorf("preauth-required: want the note about unauthenticated errors")
	}
}

// partUsages collects the key usages of every part by letter.
func partUsages(st *Story) map[string][]int {
	out := map[string][]int{}
	for _, s := range st.Steps {
		for _, p := range s.Parts {
			out[p.Letter] = append(out[p.Letter], p.Key.Usage)
			if p.Key.ChecksumUsage != 0 {
				out[p.Letter] = append(out[p.Letter], p.Key.ChecksumUsage)
			}
		}
	}
	return out
}

func hasCheck(s *Step, result, text string) bool {
	for _, c := range s.Checks {
		if c.Result == result && strings.Contains(c.Text, text) {
			return true
		}
	}
	return false
}

func hasNote(s *Step, text string) bool {
	for _, n := range s.Notes {
		if strings.Contains(n.Text, text) {
			return true
		}
	}
	return false
}

func hasField(fs []Field, text string) bool {
	for _, f := range fs {
		if strings.Contains(f.Value, text) || hasField(f.Fields, text) {
			return true
		}
	}
	return false
}

// TestTextRendering checks colour handling and that every step is in the text.
func TestTextRendering(t *testing.T) {
	st := runStory(t)
	var plain, color bytes.Buffer
	if err := WriteText(&plain, st, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&color, st, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("plain text has ANSI escapes")
	}
	if !strings.Contains(color.String(), "\x1b[") {
		t.Error("colour text has no ANSI escapes")
	}
	if stripANSI(color.String()) != plain.String() {
		t.Error("colour text differs from plain text beyond the escapes")
	}
	for _, want := range []string{"━━ 5/11  A B  AS-REP  AS → client", "key usage 3", "key usage 12", "✓ ctime and cusec"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("text lacks %q", want)
		}
	}
	for _, line := range strings.Split(plain.String(), "\n") {
		if n := len([]rune(line)); n > 100 {
			// Only an unbreakable word (a hex key) may take a line past the width.
			long := false
			for _, w := range strings.Fields(line) {
				long = long || len(w) > 40
			}
			if !long {
				t.Errorf("line of %d runes: %q", n, line)
			}
		}
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ColorEnabled(f, false, func(string) string { return "" }) {
		t.Error("a regular file is not a terminal: no colour")
	}
	if ColorEnabled(io.Discard, false, nil) {
		t.Error("a non-file writer: no colour")
	}
}

// TestExplainerClientView runs the three --explain situations against our KDC and service: login (A opened with
// the password's key, B sealed), ticket (D and F opened with the cached TGT's session key, C and E sealed) and
// request (G and H opened with the service ticket's session key, E sealed); no secret is printed.
func TestExplainerClientView(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	o := RunOptions{TempDir: t.TempDir()}
	o.defaults()
	env, err := startRealm(ctx, o, realmSpec{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	user, _ := client.ParsePrincipal(o.User, o.Realm)
	svc, _ := client.ParsePrincipal(o.Service, o.Realm)
	c, err := client.New(&client.Config{Realm: o.Realm, KDCs: map[string][]string{o.Realm: {env.kdcAddr}}})
	if err != nil {
		t.Fatal(err)
	}

	// kclient login --explain: A opened with the password's key, B sealed.
	var out bytes.Buffer
	as, _ := explainLogin(ctx, t, c, user, o.Password, &out)
	if flat := strings.Join(strings.Fields(out.String()), " "); !strings.Contains(flat, "sealed for krbtgt/KERBKIT.TEST@KERBKIT.TEST: the client cannot read this") {
		t.Errorf("login explanation does not say B is sealed:\n%s", out.String())
	}
	noSecrets(t, out.String(), o.Password, as.Credential.Key.KeyValue)

	// kclient ticket --explain: D and F opened with the TGT session key from the cache, C and E sealed.
	out.Reset()
	tgs, tk := explainTGS(ctx, t, c, as, svc, &out)
	wantPart(t, tk, "tgs-req", "C", false)
	noSecrets(t, out.String(), o.Password, as.Credential.Key.KeyValue, tgs.Credential.Key.KeyValue)

	// kclient request --explain: G and H opened with the service session key, E sealed.
	out.Reset()
	ex := NewExplainer(&out, ExplainOptions{Credentials: []ticket.Credential{as.Credential, tgs.Credential}})
	ap2, err := client.NewAPRequest(tgs.Credential, client.APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", env.svcAddr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.GSSSample(ctx, ex.Conn(conn), ap2, client.GSSSampleOptions{Message: []byte("hi")})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	ex.Close()
	rq := ex.Story()
	wantSteps(t, rq, "ap-req", "ap-rep", "wrap", "mic")
	wantPart(t, rq, "ap-req", "E", false)
	wantPart(t, rq, "ap-req", "G", true)
	wantPart(t, rq, "ap-rep", "H", true)
	if s := rq.Step("ap-rep"); s == nil || !hasCheck(s, CheckPass, "ctime and cusec are exactly those of authenticator G") {
		t.Errorf("ap-rep: the mutual authentication check is missing")
	}
	noSecrets(t, out.String(), o.Password, tgs.Credential.Key.KeyValue, ap2.Subkey.KeyValue)
}

// wantSteps checks the step IDs of a story.
func wantSteps(t *testing.T, st *Story, ids ...string) {
	t.Helper()
	var got []string
	for _, s := range st.Steps {
		got = append(got, s.ID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("steps %v, want %v", got, ids)
	}
}

// wantPart checks whether a part of a step was opened; a sealed one must say for whom and why.
func wantPart(t *testing.T, st *Story, id, letter string, opened bool) {
	t.Helper()
	s := st.Step(id)
	if s == nil {
		t.Errorf("no step %s", id)
		return
	}
	for _, p := range s.Parts {
		if p.Letter != letter {
			continue
		}
		if p.Opened != opened {
			t.Errorf("%s part %s: opened %v, want %v (%s)", id, letter, p.Opened, opened, p.Reason)
		}
		if !opened && (p.SealedFor == "" || !strings.Contains(p.Reason, "cannot read")) {
			t.Errorf("%s part %s: sealed without saying so: %+v", id, letter, p)
		}
		if p.Key.Value != "" {
			t.Errorf("%s part %s: the client view shows a key value", id, letter)
		}
		return
	}
	t.Errorf("%s: no part %s", id, letter)
}

// noSecrets checks that neither the password nor any key appears in the output.
func noSecrets(t *testing.T, out, password string, keys ...[]byte) {
	t.Helper()
	if strings.Contains(out, password) {
		t.Error("the explanation prints the password")
	}
	for _, k := range keys {
		if h := hexKey(k); strings.Contains(out, h) {
			t.Errorf("the explanation prints a key: %s...", h[:8])
		}
	}
}

// BenchmarkWalkthrough measures the whole walkthrough: realm, KDC and service start-up, every exchange over
// loopback UDP and TCP, and the text rendering.
func BenchmarkWalkthrough(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		st, err := Run(ctx, RunOptions{TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteText(io.Discard, st, TextOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExplainHTTPNegotiate explains an HTTP Negotiate exchange (kclient request --http --explain): the AP-REQ
// in "Authorization: Negotiate" and the AP-REP in the 200's "WWW-Authenticate: Negotiate", inside SPNEGO.
func TestExplainHTTPNegotiate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	o := RunOptions{TempDir: t.TempDir()}
	o.defaults()
	env, err := startRealm(ctx, o, realmSpec{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	kt, err := service.LoadKeytab(filepath.Join(env.dir, "service.keytab"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := service.NewAcceptor(kt, service.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(service.Negotiate(acc, service.HelloHandler()))
	defer srv.Close()

	user, _ := client.ParsePrincipal(o.User, o.Realm)
	svc, _ := client.ParsePrincipal(o.Service, o.Realm)
	c, err := client.New(&client.Config{Realm: o.Realm, KDCs: map[string][]string{o.Realm: {env.kdcAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	as, err := c.Login(ctx, client.ASRequest{Client: user, Secret: client.PasswordSecret(o.Password)})
	if err != nil {
		t.Fatal(err)
	}
	tgs, err := c.TGS(ctx, client.TGSRequest{TGT: as.Credential, Server: svc})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ex := NewExplainer(&out, ExplainOptions{Credentials: []ticket.Credential{as.Credential, tgs.Credential}})
	ap, err := client.NewAPRequest(tgs.Credential, client.APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: ex.HTTP(nil), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if _, err := client.Negotiate(ctx, srv.URL, ap, client.NegotiateOptions{HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	ex.Close()
	st := ex.Story()
	wantSteps(t, st, "ap-req", "ap-rep")
	wantPart(t, st, "ap-req", "G", true)
	wantPart(t, st, "ap-rep", "H", true)
	if s := st.Step("ap-req"); s == nil || !strings.Contains(s.Framing, "Authorization: Negotiate") || !strings.Contains(s.Framing, "SPNEGO NegTokenInit") {
		t.Errorf("ap-req framing: %+v", s)
	}
	if s := st.Step("ap-rep"); s == nil || !strings.Contains(s.Framing, "WWW-Authenticate: Negotiate") || !hasCheck(s, CheckPass, "ctime and cusec") {
		t.Errorf("ap-rep: %+v", s)
	}
}

// explainLogin runs a password login with an Explainer writing to out (the
// kclient login --explain view) and checks what every login must show: the
// pre-authentication round, A opened with the password's key, B sealed.
func explainLogin(ctx context.Context, t *testing.T, c *client.Client, user principal.Name, password string, out *bytes.Buffer) (*client.ASResult, *Story) {
	t.Helper()
	ex := NewExplainer(out, ExplainOptions{Password: password, HasPassword: true})
	c.Trace = ex.Trace
	as, err := c.Login(ctx, client.ASRequest{Client: user, Secret: client.PasswordSecret(password)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	login := ex.Story()
	wantSteps(t, login, "as-req-1", "preauth-required", "s2k", "as-req-2", "as-rep")
	wantPart(t, login, "as-req-2", "pre", true)
	wantPart(t, login, "as-rep", "A", true)
	wantPart(t, login, "as-rep", "B", false)
	return as, login
}

// explainTGS gets a service ticket with the TGT from as, explained the way
// kclient ticket --explain does (the TGT's session key known from the cache):
// D and F opened, E sealed.
func explainTGS(ctx context.Context, t *testing.T, c *client.Client, as *client.ASResult, svc principal.Name, out *bytes.Buffer) (*client.TGSResult, *Story) {
	t.Helper()
	ex := NewExplainer(out, ExplainOptions{Credentials: []ticket.Credential{as.Credential}})
	c.Trace = ex.Trace
	tgs, err := c.TGS(ctx, client.TGSRequest{TGT: as.Credential, Server: svc, KDCOffset: as.KDCOffset})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	tk := ex.Story()
	wantSteps(t, tk, "tgs-req", "tgs-rep")
	wantPart(t, tk, "tgs-req", "D", true)
	wantPart(t, tk, "tgs-rep", "E", false)
	wantPart(t, tk, "tgs-rep", "F", true)
	return tgs, tk
}
