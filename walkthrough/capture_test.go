package walkthrough

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/service"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// The committed captures (testdata/), made by TestCaptureMIT and TestCaptureOurKDC with -update: tcpdump on
// the loopback interface while real MIT clients ran, and the keytab (the throw-away realm's krbtgt and
// host/localhost keys) that opens them. The user's password is testenv.UserPassword.
const (
	mitCapture     = "testdata/mit-kinit-kvno.pcap"
	mitKeytab      = "testdata/mit-kinit-kvno.keytab"
	ourCapture     = "testdata/ourkdc-kinit-kvno-gss.pcap"
	ourKeytab      = "testdata/ourkdc-kinit-kvno-gss.keytab"
	captureTimeout = 60 * time.Second
)

// explainFile explains a capture file with a keytab and, when password is not "", a password.
// runOK runs a client tool with stdin and fails t unless it exits 0.
func runOK(t *testing.T, env []string, stdin, tool string, args ...string) {
	t.Helper()
	if _, stderr, code := testenv.Run(t, env, stdin, tool, args...); code != 0 {
		t.Fatalf("%s %s: exit %d: %s", filepath.Base(tool), strings.Join(args, " "), code, stderr)
	}
}

func explainFile(t *testing.T, capture, keytabPath, password string) *Story {
	t.Helper()
	f, err := os.Open(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := CaptureOptions{Name: filepath.Base(capture), Password: password, HasPassword: password != ""}
	if keytabPath != "" {
		if o.Keytab, err = client.LoadKeytab(keytabPath); err != nil {
			t.Fatal(err)
		}
	}
	st, err := ExplainCapture(f, o)
	if err != nil {
		t.Fatalf("ExplainCapture(%s): %v", capture, err)
	}
	return st
}

// captureMessages decodes a committed capture into its Kerberos messages, in order, as the explainer reads them.
func captureMessages(t *testing.T, capture string) *captureDecoder {
	t.Helper()
	f, err := os.Open(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkts, link, err := readCapture(f)
	if err != nil {
		t.Fatal(err)
	}
	d := &captureDecoder{}
	for i := range pkts {
		d.packet(&pkts[i], link)
	}
	d.finish()
	return d
}

// wantOpened checks that every part with one of the letters is in the story and opened.
func wantOpened(t *testing.T, st *Story, letters ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range st.Steps {
		for _, p := range s.Parts {
			if !slicesContains(letters, p.Letter) {
				continue
			}
			seen[p.Letter] = true
			if !p.Opened {
				t.Errorf("step %s part %s not opened: %s", s.ID, p.Letter, p.Reason)
			}
			if p.Key.Value != "" {
				t.Errorf("step %s part %s: a capture's explanation shows a key value", s.ID, p.Letter)
			}
		}
	}
	for _, l := range letters {
		if !seen[l] {
			t.Errorf("no part %s in the story (steps %v)", l, stepIDs(st))
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestExplainCaptureMIT explains the committed capture of MIT kinit + kvno against an MIT krb5kdc: with the
// realm's keytab and the user's password every part of pre, A, B, C, D, E and F opens; with the password only,
// what the client can open (pre, A, D, F) opens and the tickets stay sealed, saying which key would open them.
func TestExplainCaptureMIT(t *testing.T) {
	st := explainFile(t, mitCapture, mitKeytab, testenv.UserPassword)
	wantSteps(t, st, "as-req-1", "preauth-required", "s2k", "as-req-2", "as-rep", "tgs-req", "tgs-rep")
	wantOpened(t, st, "pre", "A", "B", "C", "D", "E", "F")
	if st.Client != "alice@MIT.TEST" || st.Service != "host/localhost@MIT.TEST" || st.View != ViewCapture {
		t.Errorf("client %q service %q view %q", st.Client, st.Service, st.View)
	}
	for _, s := range st.Steps {
		for _, c := range s.Checks {
			if c.Result == CheckFail && s.ID != "as-req-1" {
				t.Errorf("%s: failed check in a good capture: %s", s.ID, c.Text)
			}
		}
	}
	var text bytes.Buffer
	if err := WriteText(&text, st, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	noSecrets(t, text.String(), testenv.UserPassword)

	pw := explainFile(t, mitCapture, "", testenv.UserPassword)
	wantOpened(t, pw, "pre", "A", "D", "F")
	for _, id := range []string{"as-rep", "tgs-rep"} {
		s := pw.Step(id)
		for _, p := range s.Parts {
			if (p.Letter == "B" || p.Letter == "E") && (p.Opened || !strings.Contains(p.Reason, "--keytab")) {
				t.Errorf("%s part %s without the keytab: opened %v, %q", id, p.Letter, p.Opened, p.Reason)
			}
		}
	}
	none := explainFile(t, mitCapture, "", "")
	if len(none.Steps) != len(st.Steps)-1 { // no s2k step without a password
		t.Errorf("without keys: %d steps, want %d", len(none.Steps), len(st.Steps)-1)
	}
}

// TestExplainCaptureOurKDC explains the committed capture of MIT kinit, kvno (over TCP), gss-client and curl
// --negotiate against our KDC and services: every message from pre to H, the tokens after H, all opened.
func TestExplainCaptureOurKDC(t *testing.T) {
	st := explainFile(t, ourCapture, ourKeytab, testenv.UserPassword)
	wantOpened(t, st, "pre", "A", "B", "C", "D", "E", "F", "G", "H")
	checkOurCapture(t, st)
}

// TestExplainCaptureBadFiles: garbage, an empty file and a truncated capture get clear errors; the truncated one
// is explained up to its last complete packet.
func TestExplainCaptureBadFiles(t *testing.T) {
	for name, data := range map[string][]byte{
		"garbage": []byte("this is not a capture, just some text that goes on for a while\n"),
		"empty":   nil,
		"short":   {0xd4, 0xc3},
	} {
		_, err := ExplainCapture(bytes.NewReader(data), CaptureOptions{})
		if !errors.Is(err, ErrNotCapture) {
			t.Errorf("%s: error %v, want ErrNotCapture", name, err)
		}
	}
	full, err := os.ReadFile(mitCapture)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := ExplainCapture(bytes.NewReader(full), CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ExplainCapture(bytes.NewReader(full[:len(full)*2/3]), CaptureOptions{})
	var te *TruncatedError
	if !errors.As(err, &te) || te.Packets == 0 || !strings.Contains(err.Error(), "truncated after") {
		t.Fatalf("truncated capture: error %v", err)
	}
	if st == nil || len(st.Steps) == 0 || len(st.Steps) >= len(whole.Steps) {
		t.Errorf("truncated capture: %v steps, the whole one %d", st, len(whole.Steps))
	}
	// A record that claims 4 GiB: cut there with a clear reason, nothing allocated for it.
	huge := bytes.Clone(full)
	binary.LittleEndian.PutUint32(huge[24+8:], 0xfffffff0)
	_, err = ExplainCapture(bytes.NewReader(huge), CaptureOptions{})
	if !errors.As(err, &te) || te.Packets != 0 || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a record of 4 GiB: %v", err)
	}
	// The same packets as pcapng (as Wireshark writes it) tell the same story, and a truncated pcapng is cut
	// after its last whole block.
	ng := toPcapng(t, full)
	ngStory, err := ExplainCapture(bytes.NewReader(ng), CaptureOptions{})
	if err != nil || len(ngStory.Steps) != len(whole.Steps) {
		t.Errorf("pcapng: %v, %d steps, want %d", err, len(ngStory.Steps), len(whole.Steps))
	}
	if _, err := ExplainCapture(bytes.NewReader(ng[:len(ng)-10]), CaptureOptions{}); !errors.As(err, &te) || te.Packets != 5 {
		t.Errorf("truncated pcapng: %v", err)
	}
	// A pcap header with garbage packets: nothing Kerberos, no crash.
	junk := append(bytes.Clone(full[:24]), bytes.Repeat([]byte{0x10, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0xff}, 40)...)
	if _, err := ExplainCapture(bytes.NewReader(junk), CaptureOptions{}); err == nil {
		t.Log("junk packets: explained without error")
	}
}

// toPcapng rewrites a pcap file as pcapng with gopacket's writer.
func toPcapng(t *testing.T, pcap []byte) []byte {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriter(&b, r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzExplainCapture: no input crashes the capture reader.
func FuzzExplainCapture(f *testing.F) {
	if b, err := os.ReadFile(mitCapture); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ExplainCapture(bytes.NewReader(b), CaptureOptions{})
	})
}

// tcpdump captures the loopback interface into a file while a test runs real clients.
type tcpdump struct {
	cmd  *exec.Cmd
	file string
}

// startTcpdump runs `tcpdump -i lo -s 0 -U -w FILE FILTER` and waits until it listens. It needs tcpdump and
// the right to capture (root); without them the test is skipped, unless CI=true.
func startTcpdump(t *testing.T, filter string) *tcpdump {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err == nil && os.Geteuid() != 0 {
		err = errors.New("capturing needs root")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tcpdump: %v (CI=true: apt-get install -y tcpdump, run as root)", err)
		}
		t.Skipf("tcpdump: %v", err)
	}
	td := &tcpdump{file: filepath.Join(t.TempDir(), "capture.pcap")}
	td.cmd = exec.Command(path, "-i", "lo", "-s", "0", "-U", "--immediate-mode", "-n", "-w", td.file, filter)
	td.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := td.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := td.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { td.stop(t) })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				ready <- sc.Text()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("tcpdump did not start listening within 15s")
	}
	// "listening on" is printed before the kernel delivers packets to it: give it a moment.
	time.Sleep(time.Second)
	return td
}

// stop ends tcpdump by its PID (SIGINT, which flushes the file), then SIGKILL after 5 s.
func (td *tcpdump) stop(t *testing.T) string {
	if td.cmd.ProcessState != nil {
		return td.file
	}
	// Packets the kernel handed over but tcpdump has not written yet are lost on SIGINT: let it catch up.
	time.Sleep(500 * time.Millisecond)
	_ = td.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- td.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-td.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Errorf("tcpdump did not stop on SIGINT")
	}
	return td.file
}

// keepCapture copies a capture and its keytab into testdata with -update.
func keepCapture(t *testing.T, capture, keytab, wantCapture, wantKeytab string) {
	t.Helper()
	if !*update {
		return
	}
	for src, dst := range map[string]string{capture: wantCapture, keytab: wantKeytab} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dst)
	}
}

// TestCaptureMIT is the acceptance check, live: a fresh tcpdump of MIT kinit + kvno against an MIT krb5kdc,
// explained with that realm's keytab (krbtgt and host/localhost, extracted with ktadd -norandkey) and the user's
// password, shows pre, A, B, C, D, E and F decrypted. With -update the capture and keytab become testdata.
func TestCaptureMIT(t *testing.T) {
	m := testenv.NewMITRealm(t, testenv.MITRealmOptions{})
	_, port, _ := net.SplitHostPort(m.Addr)
	kt := filepath.Join(t.TempDir(), "realm.keytab")
	m.KadminLocal(t, "", "ktadd -norandkey -k "+kt+" krbtgt/"+m.Name+" host/localhost")
	td := startTcpdump(t, "port "+port)
	env := m.Env(testenv.EnvOptions{})
	kinit, kvno := testenv.RequireTool(t, "kinit"), testenv.RequireTool(t, "kvno")
	runOK(t, env, testenv.UserPassword+"\n", kinit, testenv.UserName)
	runOK(t, env, "", kvno, "host/localhost")
	file := td.stop(t)
	st := explainFile(t, file, kt, testenv.UserPassword)
	wantOpened(t, st, "pre", "A", "B", "C", "D", "E", "F")
	keepCapture(t, file, kt, mitCapture, mitKeytab)
}

// TestCaptureOurKDC, live: tcpdump of MIT kinit and kvno (over TCP: udp_preference_limit = 1), gss-client and
// curl --negotiate against our KDC, our GSS sample service and our HTTP Negotiate service, explained with our
// realm's keytab and the password: every message from pre to H opened, the KDC's TCP connections reassembled,
// and the HTTP exchange's AP-REQ and AP-REP found in their headers. With -update the capture and keytab become
// testdata.
func TestCaptureOurKDC(t *testing.T) {
	kinit, kvno := testenv.RequireTool(t, "kinit"), testenv.RequireTool(t, "kvno")
	gssClient, curl := testenv.RequireTool(t, "gss-client"), testenv.RequireTool(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), captureTimeout)
	defer cancel()
	o := RunOptions{TempDir: t.TempDir(), Password: testenv.UserPassword, Realm: "KERBKIT.TEST"}
	o.defaults()
	env, err := startRealm(ctx, o, realmSpec{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if _, err := env.admin.Add(ctx, kdc.AddRequest{Name: "HTTP/localhost", RandomKey: true}); err != nil {
		t.Fatal(err)
	}
	entries, err := env.admin.Keytab(ctx, []string{"krbtgt/" + o.Realm, o.Service, "HTTP/localhost"})
	if err != nil {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "realm.keytab")
	if err := ticket.WriteKeytabFile(kt, entries); err != nil {
		t.Fatal(err)
	}
	skt, err := service.LoadKeytab(kt)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := service.NewAcceptor(skt, service.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Service: "HTTP/localhost"})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(service.Negotiate(acc, service.HelloHandler()))
	defer web.Close()
	_, wport, _ := net.SplitHostPort(web.Listener.Addr().String())

	_, kport, _ := net.SplitHostPort(env.kdcAddr)
	shost, sport, _ := net.SplitHostPort(env.svcAddr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, []byte(testenv.KRB5Conf(o.Realm, env.kdcAddr, testenv.EnvOptions{ForceTCP: true})), 0o600); err != nil {
		t.Fatal(err)
	}
	cenv := testenv.ClientEnviron(map[string]string{"KRB5_CONFIG": conf, "KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc")})
	td := startTcpdump(t, "port "+kport+" or port "+sport+" or port "+wport)
	if _, stderr, code := testenv.Run(t, cenv, o.Password+"\n", kinit, o.User); code != 0 {
		t.Fatalf("kinit: exit %d: %s", code, stderr)
	}
	if _, stderr, code := testenv.Run(t, cenv, "", kvno, o.Service); code != 0 {
		t.Fatalf("kvno: exit %d: %s", code, stderr)
	}
	if _, stderr, code := testenv.Run(t, cenv, "", gssClient, "-port", sport, shost, "host@localhost", "hello from a capture"); code != 0 {
		t.Fatalf("gss-client: exit %d: %s", code, stderr)
	}
	if stdout, stderr, code := testenv.Run(t, cenv, "", curl, "-sS", "--negotiate", "-u", ":", "http://localhost:"+wport+"/"); code != 0 ||
		!strings.Contains(stdout, "hello alice@") {
		t.Fatalf("curl --negotiate: exit %d: %s %s", code, stdout, stderr)
	}
	file := td.stop(t)
	st := explainFile(t, file, kt, o.Password)
	wantOpened(t, st, "pre", "A", "B", "C", "D", "E", "F", "G", "H")
	checkOurCapture(t, st)
	keepCapture(t, file, kt, ourCapture, ourKeytab)
}

// checkOurCapture checks what the capture of MIT's clients against our KDC and services must show: the KDC's
// messages over TCP, the GSS sample protocol's AP exchange and tokens, and HTTP Negotiate's.
func checkOurCapture(t *testing.T, st *Story) {
	t.Helper()
	for _, id := range []string{"as-req-1", "as-rep", "tgs-req", "tgs-rep", "tgs-req-2", "tgs-rep-2", "ap-req", "ap-rep", "wrap", "mic", "ap-req-2", "ap-rep-2"} {
		if st.Step(id) == nil {
			t.Errorf("no step %s (steps %v)", id, stepIDs(st))
		}
	}
	for _, id := range []string{"as-req-1", "as-rep", "tgs-req"} {
		if s := st.Step(id); s != nil && s.Transport != "tcp" {
			t.Errorf("%s over %s, want tcp (udp_preference_limit = 1)", id, s.Transport)
		}
	}
	if s := st.Step("ap-rep"); s == nil || !hasCheck(s, CheckPass, "ctime and cusec are exactly those of authenticator G") {
		t.Errorf("ap-rep: the mutual authentication check is missing")
	}
	if s := st.Step("wrap"); s == nil || len(s.Parts) == 0 || !s.Parts[0].Opened || !hasField(s.Parts[0].Fields, "hello from a capture") {
		t.Errorf("wrap token not opened: %+v", s)
	}
	if s := st.Step("ap-req-2"); s == nil || !strings.Contains(s.Framing, "Authorization: Negotiate") {
		t.Errorf("the HTTP AP-REQ: %+v", s)
	}
	if s := st.Step("ap-rep-2"); s == nil || !strings.Contains(strings.ToLower(s.Framing), "www-authenticate: negotiate") {
		t.Errorf("the HTTP AP-REP: %+v", s)
	}
}

// TestCaptureDocsGolden keeps docs/explain.md (the committed MIT capture, explained with its keytab and password)
// in sync, and renders the same story's HTML page in headless Chromium (with -update: docs/explain.png).
func TestCaptureDocsGolden(t *testing.T) {
	st := explainFile(t, mitCapture, mitKeytab, testenv.UserPassword)
	var b bytes.Buffer
	preface := "<!-- Generated: go test ./walkthrough -run TestCaptureDocsGolden -update -->\n\n" +
		"A capture of MIT's `kinit alice` and `kvno host/localhost` against an MIT krb5kdc, made with tcpdump and " +
		"explained with the realm's keytab (krbtgt and host/localhost, `kadmin.local ktadd -norandkey`) and the user's password:\n\n" +
		"```sh\nkclient explain walkthrough/testdata/mit-kinit-kvno.pcap --keytab walkthrough/testdata/mit-kinit-kvno.keytab --password\n```\n\n" +
		"![The same explanation as an HTML page (--html FILE)](explain.png)"
	if err := WriteMarkdown(&b, st, MarkdownOptions{Preface: preface}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(docsDir, "explain.md")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with: go test ./walkthrough -run TestCaptureDocsGolden -update)", err)
		}
		if d := firstDiff(normalize(b.String()), normalize(string(want))); d != "" {
			t.Errorf("docs/explain.md is out of date (regenerate with: go test ./walkthrough -run TestCaptureDocsGolden -update)\n%s", d)
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found and CI=true: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s not found: apt-get install -y chromium to render the page", chromiumPath)
	}
	dir := t.TempDir()
	page, shot := filepath.Join(dir, "explain.html"), filepath.Join(dir, "explain.png")
	b.Reset()
	if err := WriteHTML(&b, st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	screenshot(t, page, shot)
	data, err := os.ReadFile(shot)
	if err != nil || len(data) < 10000 {
		t.Fatalf("screenshot: %v, %d bytes", err, len(data))
	}
	if *update {
		if err := os.WriteFile(filepath.Join(docsDir, "explain.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
