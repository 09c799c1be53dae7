package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/internal/etcdtest"
)

func TestEtcdFlagErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret-pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "etcd://127.0.0.1:1/kerbkit"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"principal", "list", "--db", url}, cli.ExitUsage, "kdc: an etcd database needs --master-key FILE"},
		{[]string{"principal", "list", "--db", filepath.Join(dir, "kdc.db"), "--etcd-ca", "ca.pem"}, cli.ExitUsage, "kdc: the --etcd-* flags need --db etcd://"},
		{[]string{"principal", "list", "--db", url, "--master-key", "m", "--etcd-user", "root"}, cli.ExitUsage, "kdc: --etcd-user needs its password"},
		{[]string{"principal", "list", "--db", url, "--master-key", "m", "--etcd-password-file", pw}, cli.ExitUsage, "kdc: --etcd-password-file needs --etcd-user"},
		{[]string{"principal", "list", "--db", "etcd://127.0.0.1:1", "--master-key", "m"}, cli.ExitFailure, "kdc: store: \"etcd://127.0.0.1:1\": want etcd://HOST:PORT"},
		{[]string{"init", "--realm", "R", "--db", url}, cli.ExitUsage, "kdc: an etcd database needs --master-key"},
	} {
		code, _, stderr := kdcRun(t, "", c.args...)
		if code != c.code || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("kdc %v: exit %d, stderr %q; want exit %d, %q", c.args, code, stderr, c.code, c.want)
		}
	}
	// A password file others can read is refused, without echoing it.
	m := filepath.Join(dir, "m")
	code, _, stderr := kdcRun(t, "", "principal", "list", "--db", url, "--master-key", m, "--etcd-user", "root", "--etcd-password-file", pw)
	if code == 0 || !strings.Contains(stderr, "readable by others") || strings.Contains(stderr, "secret-pw") {
		t.Errorf("world-readable password file: exit %d %q", code, stderr)
	}
}

// TestEtcdCLI drives the commands against a real cluster: init, add, list,
// check, dump to bbolt and back, and serve's health report.
func TestEtcdCLI(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	url, mk := c.URL("cli"), filepath.Join(dir, "realm.mkey")
	must := func(stdin string, args ...string) string {
		t.Helper()
		code, out, stderr := kdcRun(t, stdin, args...)
		if code != 0 {
			t.Fatalf("kdc %v: exit %d\n%s%s", args, code, out, stderr)
		}
		return out
	}
	must("", "init", "--realm", "CLI.TEST", "--db", url, "--master-key", mk)
	if fi, err := os.Stat(mk); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key %v %v", fi, err)
	}
	must("pw-alice\n", "principal", "add", "alice", "--db", url, "--master-key", mk)
	if out := must("", "principal", "list", "--db", url, "--master-key", mk); out != "alice@CLI.TEST\nkadmin/changepw@CLI.TEST\nkrbtgt/CLI.TEST@CLI.TEST\n" {
		t.Fatalf("list: %q", out)
	}
	must("", "check", "--db", url, "--master-key", mk)
	must("", "principal", "add", "host/svc.cli.test", "--random-key", "--db", url, "--master-key", mk)
	kt := filepath.Join(dir, "svc.keytab")
	must("", "keytab", "host/svc.cli.test", "-o", kt, "--db", url, "--master-key", mk)
	if fi, err := os.Stat(kt); err != nil || fi.Size() == 0 {
		t.Fatalf("keytab from etcd: %v %v", fi, err)
	}
	must("", "principal", "delete", "host/svc.cli.test", "--db", url, "--master-key", mk)
	dump := filepath.Join(dir, "realm.dump")
	must("", "dump", "--db", url, "--master-key", mk, "-o", dump)
	if fi, err := os.Stat(dump); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dump file %v %v", fi, err)
	}
	bolt := filepath.Join(dir, "copy.db")
	b, _ := os.ReadFile(mk)
	if err := os.WriteFile(bolt+".mkey", b, 0o600); err != nil {
		t.Fatal(err)
	}
	must("", "load", "--db", bolt, dump)
	if out := must("", "principal", "list", "--db", bolt); !strings.Contains(out, "alice@CLI.TEST") {
		t.Fatalf("bbolt copy: %q", out)
	}
	back := must("", "dump", "--db", bolt)
	orig, _ := os.ReadFile(dump)
	// The same records and policies; only the header's schema version is
	// the store's own (2 in etcd, 3 in bbolt).
	if strings.Replace(back, `"schema_version":"Mw=="`, `"schema_version":"Mg=="`, 1) != string(orig) {
		t.Fatalf("dumps differ:\n%s\n%s", orig, back)
	}

	// serve on etcd: the health report and a change made elsewhere.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, db: url, dbFlags: dbFlags{masterKey: mk}}
	o := &serveOptions{listen: "127.0.0.1:0", logLevel: "warn", adminListen: "127.0.0.1:0"}
	ready := make(chan struct{})
	var kdcAddr string
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, e, o, func(a, _ string) { kdcAddr = a; close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	if o.boundAdmin == "" {
		t.Fatal("no admin address")
	}
	resp, err := http.Get("http://" + o.boundAdmin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h healthReport
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || h.Status != "ok" || h.Realm != "CLI.TEST" || h.Store.Backend != "etcd" || !h.Store.Reachable || h.Store.Records != 3 || h.Store.CacheRevision == 0 {
		t.Fatalf("health %+v %v", h, err)
	}
	// kdc probe checks Kerberos and the health report (the container's HEALTHCHECK).
	out := must("", "probe", kdcAddr, "--realm", "CLI.TEST", "--health", "http://"+o.boundAdmin+"/healthz")
	if !strings.Contains(out, "health: ok") {
		t.Fatalf("probe: %q", out)
	}
	if code, _, stderr := kdcRun(t, "", "probe", kdcAddr, "--realm", "CLI.TEST", "--health", "http://"+o.boundAdmin+"/nothing"); code == 0 || !strings.Contains(stderr, "HTTP 404") {
		t.Fatalf("probe of a wrong health URL: exit %d %q", code, stderr)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
