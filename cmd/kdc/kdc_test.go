package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// kdcRun runs the command in process and returns its exit code and output.
func kdcRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIContract(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kdc.db")

	code, _, stderr := kdcRun(t, "", "init", "--db", db)
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--realm is required") {
		t.Fatalf("init without realm: code %d stderr %q", code, stderr)
	}
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db, "--max-renew", "7d", "--max-life", "10h"); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second init: %d %q", code, stderr)
	}
	code, _, stderr = kdcRun(t, "", "principal", "add", "alice", "--db", db, "--bogus")
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "unknown flag") {
		t.Fatalf("bad flag: code %d stderr %q", code, stderr)
	}
	if code, _, stderr := kdcRun(t, "", "principal", "add", "alice", "--db", db); code == 0 || !strings.Contains(stderr, "no password on stdin") {
		t.Fatalf("add without a password: %d %q", code, stderr)
	}
	if code, out, stderr := kdcRun(t, "alicepw\n", "principal", "add", "alice", "--db", db, "--max-life", "1d"); code != 0 || !strings.Contains(out, "added alice@KRB.TEST (kvno 1") {
		t.Fatalf("add: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := kdcRun(t, "", "principal", "add", "host/localhost", "--random-key", "--password", "x", "--db", db); code == 0 || !strings.Contains(stderr, "exclude each other") {
		t.Fatalf("random and password: %d %q", code, stderr)
	}
	if code, _, stderr := kdcRun(t, "", "principal", "add", "host/localhost", "--random-key", "--enctypes", "aes256-cts,aes128-sha2", "--db", db); code != 0 {
		t.Fatalf("add service: %s", stderr)
	}
	code, out, _ := kdcRun(t, "", "principal", "show", "alice", "--db", db)
	if code != 0 || !strings.Contains(out, "Max life:          24h0m0s") || !strings.Contains(out, "Requires preauth:  true") {
		t.Fatalf("show: %q", out)
	}
	if strings.Contains(strings.ToLower(out), "alicepw") {
		t.Fatal("show printed the password")
	}
	if code, _, stderr := kdcRun(t, "", "principal", "show", "nobody", "--db", db); code == 0 || !strings.Contains(stderr, "not found") {
		t.Fatalf("show unknown: %d %q", code, stderr)
	}
	if code, out, _ := kdcRun(t, "", "principal", "passwd", "host/localhost", "--random-key", "--db", db); code != 0 || !strings.Contains(out, "kvno 2") {
		t.Fatalf("passwd: %q", out)
	}

	kt := filepath.Join(t.TempDir(), "svc.keytab")
	if code, _, stderr := kdcRun(t, "", "keytab", "host/localhost", "-o", kt, "--db", db); code != 0 {
		t.Fatalf("keytab: %s", stderr)
	}
	fi, err := os.Stat(kt)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keytab mode: %v %v", fi, err)
	}
	k, err := keytab.Load(kt)
	if err != nil {
		t.Fatal(err)
	}
	// Both kvnos are exported, two enctypes each, so old tickets stay readable.
	kvnos := map[uint32]int{}
	for _, e := range k.Entries {
		kvnos[e.KVNO]++
	}
	if kvnos[1] != 2 || kvnos[2] != 2 {
		t.Fatalf("keytab kvnos %v, want two keys each of kvno 1 and 2", kvnos)
	}

	if code, out, _ := kdcRun(t, "", "principal", "list", "--db", db); code != 0 || out != "alice@KRB.TEST\nhost/localhost@KRB.TEST\nkadmin/changepw@KRB.TEST\nkrbtgt/KRB.TEST@KRB.TEST\n" {
		t.Fatalf("list: %q", out)
	}
	if code, _, _ := kdcRun(t, "", "principal", "delete", "alice", "--db", db); code != 0 {
		t.Fatal("delete failed")
	}
	if code, _, stderr := kdcRun(t, "", "principal", "delete", "krbtgt/KRB.TEST", "--db", db); code == 0 || !strings.Contains(stderr, "refusing") {
		t.Fatalf("delete krbtgt: %q", stderr)
	}
	if code, _, stderr := kdcRun(t, "", "serve", "--db", db, "--log-level", "loud"); code == 0 || !strings.Contains(stderr, "--log-level") {
		t.Fatalf("bad log level: %q", stderr)
	}
	if code, _, stderr := kdcRun(t, "", "serve", "--db", filepath.Join(t.TempDir(), "none.db"), "--listen", "127.0.0.1:0"); code == 0 || !strings.Contains(stderr, "kdc init") {
		t.Fatalf("serve without a database: %q", stderr)
	}
}

func TestServeFlagsErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kdc.db")
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml"}, "--log-format \"xml\": want text or json"},
		{[]string{"--pprof"}, "--pprof needs --metrics-listen"},
		{[]string{"--metrics-listen", "256.0.0.1:1"}, "--metrics-listen"},
	} {
		code, _, stderr := kdcRun(t, "", append([]string{"serve", "--db", db, "--listen", "127.0.0.1:0"}, tc.args...)...)
		if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %v: code %d stderr %q", tc.args, code, stderr)
		}
	}
}
