package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/kdc"
)

const testTrustPassword = "a shared inter-realm secret"

// serveFor runs kdc serve on db until the test ends.
func serveFor(t *testing.T, db string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	e := &env{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{}, db: db}
	go func() {
		done <- serve(ctx, e, &serveOptions{listen: "127.0.0.1:0", logLevel: "error"}, func(string, string) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func TestTrustCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "kdc.db")
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{testTrustPassword + "\n", []string{"trust", "add", "OTHER.TEST", "--direction", "sideways"}, cli.ExitUsage, "kdc: --direction \"sideways\": want in, out or both"},
		{"", []string{"trust", "add", "OTHER.TEST"}, cli.ExitFailure, "kdc: no password on stdin"},
		{"short\n", []string{"trust", "add", "OTHER.TEST"}, cli.ExitFailure, "kdc: the shared password of a trust must have at least 16 characters"},
		{testTrustPassword + "\n", []string{"trust", "add", "KRB.TEST"}, cli.ExitFailure, "kdc: KRB.TEST is this realm"},
		{testTrustPassword + "\n", []string{"trust", "add", "OTHER.TEST", "--enctypes", "des"}, cli.ExitUsage, "kdc: --enctypes"},
		{"", []string{"trust", "add", "OTHER.TEST", "--password-file", filepath.Join(dir, "missing")}, cli.ExitFailure, "kdc: --password-file"},
		{"", []string{"trust", "delete", "OTHER.TEST"}, cli.ExitFailure, "kdc: no trust with OTHER.TEST"},
	} {
		code, _, stderr := kdcRun(t, c.stdin, append(c.args, "--db", db)...)
		if code != c.code || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("kdc %v: exit %d, stderr %q; want exit %d, %q", c.args, code, stderr, c.code, c.want)
		}
	}

	// While the server runs, through its admin socket.
	serveFor(t, db)
	if _, ok := kdc.DialAdmin(kdc.AdminSocketPath(db)); !ok {
		t.Fatal("no admin socket")
	}
	code, out, stderr := kdcRun(t, testTrustPassword+"\n", "trust", "add", "OTHER.TEST", "--db", db)
	if code != 0 || !strings.Contains(out, "added krbtgt/OTHER.TEST@KRB.TEST (kvno 1,") || !strings.Contains(out, "added krbtgt/KRB.TEST@OTHER.TEST (kvno 1,") {
		t.Fatalf("trust add: %d %q %q", code, out, stderr)
	}
	if strings.Contains(out+stderr, testTrustPassword) {
		t.Fatal("the password was printed")
	}
	pwFile := filepath.Join(dir, "trust.pw")
	os.WriteFile(pwFile, []byte(testTrustPassword+"\n"), 0o600)
	if code, out, stderr := kdcRun(t, "", "trust", "add", "THIRD.TEST", "--direction", "in", "--kvno", "3", "--enctypes", "aes256-cts-hmac-sha1-96", "--password-file", pwFile, "--db", db); code != 0 || !strings.Contains(out, "added krbtgt/KRB.TEST@THIRD.TEST (kvno 3, aes256-cts-hmac-sha1-96)") {
		t.Fatalf("trust add --password-file: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := kdcRun(t, testTrustPassword+"\n", "trust", "add", "OTHER.TEST", "--direction", "in", "--db", db); code != cli.ExitFailure || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second add: %d %q", code, stderr)
	}
	code, out, _ = kdcRun(t, "", "trust", "list", "--db", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "OTHER.TEST  both") || !strings.HasPrefix(lines[2], "THIRD.TEST  in") {
		t.Fatalf("trust list: %d\n%s", code, out)
	}
	if code, out, _ := kdcRun(t, "", "trust", "delete", "OTHER.TEST", "--direction", "out", "--db", db); code != 0 || out != "deleted krbtgt/OTHER.TEST@KRB.TEST\n" {
		t.Fatalf("trust delete: %d %q", code, out)
	}
	code, out, _ = kdcRun(t, "", "trust", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "OTHER.TEST  in ") {
		t.Fatalf("trust list after delete: %d\n%s", code, out)
	}
}

// TestTrustCLIEtcd: the incoming trust key, the one record named in another
// realm, is kept by the etcd store too, and dump/load carries it.
func TestTrustCLIEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	url, mk := c.URL("trust"), filepath.Join(dir, "realm.mkey")
	for _, args := range [][]string{
		{"init", "--realm", "ETCD.TEST"},
		{"trust", "add", "OTHER.TEST"},
	} {
		if code, out, stderr := kdcRun(t, testTrustPassword+"\n", append(args, "--db", url, "--master-key", mk)...); code != 0 {
			t.Fatalf("kdc %v: exit %d\n%s%s", args, code, out, stderr)
		}
	}
	code, out, stderr := kdcRun(t, "", "trust", "list", "--db", url, "--master-key", mk)
	if code != 0 || !strings.Contains(out, "OTHER.TEST  both") {
		t.Fatalf("trust list on etcd: %d %q %q", code, out, stderr)
	}
	dump := filepath.Join(dir, "realm.dump")
	if code, _, stderr := kdcRun(t, "", "dump", "--db", url, "--master-key", mk, "-o", dump); code != 0 {
		t.Fatal(stderr)
	}
	bolt := filepath.Join(dir, "copy.db")
	b, _ := os.ReadFile(mk)
	os.WriteFile(bolt+".mkey", b, 0o600)
	if code, _, stderr := kdcRun(t, "", "load", "--db", bolt, dump); code != 0 {
		t.Fatalf("load of a dump with a trust: %s", stderr)
	}
	if code, out, _ := kdcRun(t, "", "trust", "list", "--db", bolt); code != 0 || !strings.Contains(out, "OTHER.TEST  both") {
		t.Fatalf("trust list on the bbolt copy: %d %q", code, out)
	}
}
