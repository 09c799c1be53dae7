package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// The capture of MIT kinit + kvno against an MIT krb5kdc, and its realm's keytab (walkthrough's testdata).
const (
	explainCapture = "../../walkthrough/testdata/mit-kinit-kvno.pcap"
	explainKeytab  = "../../walkthrough/testdata/mit-kinit-kvno.keytab"
)

// TestExplainCapture runs kclient explain as a user would: with the keytab and the password on standard input
// every part of pre and A to F is decrypted, no key and no password printed; --json and --html agree.
func TestExplainCapture(t *testing.T) {
	r := runExplainCmd(t, nil, testenv.UserPassword+"\n", "explain", explainCapture, "--keytab", explainKeytab, "--password")
	wantExplained(t, "explain", r, testenv.UserPassword,
		"Kerberos messages in mit-kinit-kvno.pcap", "6 over UDP",
		"━━ 5/7 A B AS-REP AS → client", "━━ 7/7 E F TGS-REP TGS → client",
		"krbtgt/MIT.TEST@MIT.TEST kvno 1", "strengthened by FAST: KRB-FX-CF2(strengthen-key, that key)")
	if strings.Contains(r.stdout, "not opened") {
		t.Errorf("a part stayed sealed with every key given:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}

	j := runExplainCmd(t, nil, testenv.UserPassword+"\n", "explain", explainCapture, "--keytab", explainKeytab, "--password", "--json")
	var st walkthrough.Story
	if err := json.Unmarshal([]byte(j.stdout), &st); err != nil || j.code != 0 {
		t.Fatalf("--json: exit %d, %v", j.code, err)
	}
	if st.View != walkthrough.ViewCapture || len(st.Steps) != 7 {
		t.Errorf("--json: view %q, %d steps", st.View, len(st.Steps))
	}
	page := filepath.Join(t.TempDir(), "capture.html")
	h := runExplainCmd(t, nil, "", "explain", explainCapture, "--html", page)
	b, err := os.ReadFile(page)
	if h.code != 0 || err != nil || !strings.Contains(string(b), "<svg") || !strings.Contains(h.stdout, "wrote "+page) {
		t.Errorf("--html: exit %d, %v, stdout %q", h.code, err, h.stdout)
	}
	// Without keys the tickets and the reply parts stay sealed and say what would open them.
	n := runExplainCmd(t, nil, "", "explain", explainCapture)
	if n.code != 0 || !strings.Contains(flatText(n.stdout), "a keytab with it (--keytab) opens it") {
		t.Errorf("no keys: exit %d\n%s", n.code, n.stdout)
	}
}

// The capture of an armored login against our KDC (MIT kinit -k, kinit -T, kvno), and its realm's keytab.
const (
	fastCapture = "../../walkthrough/testdata/fast-armored-kinit.pcap"
	fastKeytab  = "../../walkthrough/testdata/fast-armored-kinit.keytab"
)

// TestExplainCaptureFAST: kclient explain of the armored login, with the keytab and the password on standard
// input, opens every part of the FAST armor and names the key that protects each.
func TestExplainCaptureFAST(t *testing.T) {
	r := runExplainCmd(t, nil, testenv.UserPassword+"\n", "explain", fastCapture, "--keytab", fastKeytab, "--password")
	wantExplained(t, "explain", r, testenv.UserPassword,
		"Kerberos messages in fast-armored-kinit.pcap", "10 over UDP",
		"AS-REQ armored with FAST, with PA-ENCRYPTED-CHALLENGE",
		"armor ticket enc-part (EncTicketPart)", "key usage 11 (AP-REQ authenticator)",
		"the FAST armor key: KRB-FX-CF2(the armor authenticator's subkey, the armor ticket's session key",
		"12-byte checksum; verified", "PA-FX-ERROR (137) the real KRB-ERROR, inside the armor",
		"key usage 54 (FAST encrypted challenge from the client)", "key usage 55 (FAST encrypted challenge from the KDC)",
		"the strengthened reply key: KRB-FX-CF2(the strengthen-key from the armor, alice@KERBKIT.TEST's long-term key",
		"✓ the ticket-checksum in KrbFastFinished verifies with the armor key over ticket B (key usage 53)")
	if strings.Contains(r.stdout, "not opened") || strings.Contains(r.stdout, "✗ the req-checksum") {
		t.Errorf("a part stayed sealed, or a checksum failed, with every key given:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}
}

// TestExplainBadInput: a garbage file, a missing file, a truncated capture and a bad keytab each get one line
// and exit 1; the truncated capture is explained up to its last complete packet first.
func TestExplainBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pcap")
	if err := os.WriteFile(garbage, []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(explainCapture)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pcap")
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"explain", garbage}, 1, "garbage.pcap: not a pcap or pcapng capture"},
		{[]string{"explain", filepath.Join(dir, "missing.pcap")}, 1, "no such file or directory"},
		{[]string{"explain", truncated}, 1, "the capture is truncated after"},
		{[]string{"explain", explainCapture, "--keytab", garbage}, 1, "keytab " + garbage},
		{[]string{"explain"}, 2, "accepts 1 arg"}, // 2: a usage error
	} {
		r := runExplainCmd(t, nil, "", c.args...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code != c.code || len(lines) != 1 || !strings.HasPrefix(lines[0], "kclient: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.args, r.code, r.stderr, c.want)
		}
		if strings.Contains(r.stderr, "GET /") {
			t.Errorf("%v: the error echoes the file's bytes: %q", c.args, r.stderr)
		}
	}
	r := runExplainCmd(t, nil, "", "explain", truncated)
	if !strings.Contains(r.stdout, "AS-REQ") {
		t.Errorf("the truncated capture was not explained up to where it ends:\n%s", r.stdout)
	}
}
