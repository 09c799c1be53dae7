package main

// A private, throw-away MIT krb5kdc realm for interop tests (to be replaced by the shared testenv harness).
// Everything lives in t.TempDir(), listens on 127.0.0.1 only, and the KDC is stopped by PID in t.Cleanup.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mitTestRealm is the realm name of every throw-away MIT realm.
const mitTestRealm = "KRB.TEST"

// mitRealm is a running MIT KDC with its files.
type mitRealm struct {
	Realm   string
	Dir     string
	Addr    string   // 127.0.0.1:port, UDP and TCP
	Conf    string   // client krb5.conf
	Env     []string // KRB5_CONFIG and KRB5_KDC_PROFILE for MIT tools
	kdcConf string
}

// mitTool returns the path of an MIT binary. When it is missing the test is skipped, unless CI=true, where a
// missing tool fails the test.
func mitTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("MIT tool %s not found and CI=true: install krb5-kdc and krb5-user", name)
	}
	t.Skipf("MIT tool %s not found (install krb5-kdc and krb5-user to run this test)", name)
	return ""
}

// freeLoopbackPort returns a port that is currently free for both TCP and UDP on 127.0.0.1.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatalf("no free TCP+UDP port on 127.0.0.1")
	return 0
}

// runMIT runs an MIT admin tool with the realm's environment and a time limit.
func (r *mitRealm) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mitTool(t, name), args...)
	cmd.Env = append(os.Environ(), r.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kadmin runs one kadmin.local query and checks that its output contains want (kadmin.local exits 0 even when
// the query fails).
func (r *mitRealm) kadmin(t testing.TB, query, want string) {
	t.Helper()
	out := r.run(t, "kadmin.local", "-r", r.Realm, "-q", query)
	if !strings.Contains(out, want) {
		t.Fatalf("kadmin.local %q: want %q in output:\n%s", query, want, out)
	}
}

// startMITRealm creates a database with principals, starts krb5kdc on a free loopback port and stops it when the
// test ends. Principals: alice/alicepw (requires preauth), dave/davepw (preauth, salt without realm),
// erin/erinpw (no preauth, salt without realm), svc/client (random keys, in r.Dir/client.keytab), and
// krbtgt's keys in r.Dir/krbtgt.keytab so tests can open TGTs.
func startMITRealm(t *testing.T) *mitRealm {
	t.Helper()
	for _, tool := range []string{"krb5kdc", "kdb5_util", "kadmin.local"} {
		mitTool(t, tool)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := tryStartMITRealm(t)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("could not start MIT krb5kdc: %v", lastErr)
	return nil
}

// tryStartMITRealm is one attempt of startMITRealm; it fails (rather than Fatals) when the KDC does not come
// up, which happens if another process took the port in between.
func tryStartMITRealm(t *testing.T) (*mitRealm, error) {
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := &mitRealm{Realm: mitTestRealm, Dir: dir, Addr: addr,
		Conf: filepath.Join(dir, "krb5.conf"), kdcConf: filepath.Join(dir, "kdc.conf")}
	r.Env = []string{"KRB5_CONFIG=" + r.Conf, "KRB5_KDC_PROFILE=" + r.kdcConf, "KRB5RCACHETYPE=none",
		"KRB5CCNAME=FILE:" + filepath.Join(dir, "unused-ccache")}
	db := filepath.Join(dir, "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return nil, err
	}
	kdcConf := fmt.Sprintf(`[kdcdefaults]
    kdc_listen = %[1]s
    kdc_tcp_listen = %[1]s
[realms]
    %[2]s = {
        database_name = %[3]s/principal
        key_stash_file = %[3]s/stash
        acl_file = %[3]s/kadm5.acl
        kdc_listen = %[1]s
        kdc_tcp_listen = %[1]s
        max_life = 10h
        max_renewable_life = 7d
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal aes256-cts-hmac-sha384-192:normal aes128-cts-hmac-sha256-128:normal
        default_principal_flags = +preauth
    }
[logging]
    kdc = FILE:%[3]s/kdc.log
`, addr, r.Realm, db)
	krbConf := fmt.Sprintf(`[libdefaults]
    default_realm = %[1]s
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
[realms]
    %[1]s = {
        kdc = %[2]s
    }
`, r.Realm, addr)
	for p, s := range map[string]string{r.kdcConf: kdcConf, r.Conf: krbConf, filepath.Join(db, "kadm5.acl"): ""} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			return nil, err
		}
	}
	r.run(t, "kdb5_util", "create", "-s", "-r", r.Realm, "-P", "masterpw-not-secret")
	r.kadmin(t, "addprinc -pw alicepw alice", "created")
	r.kadmin(t, "addprinc -e aes256-cts-hmac-sha1-96:norealm -pw davepw dave", "created")
	r.kadmin(t, "addprinc -requires_preauth -e aes256-cts-hmac-sha1-96:norealm -pw erinpw erin", "created")
	r.kadmin(t, "addprinc -randkey svc/client", "created")
	r.kadmin(t, "ktadd -k "+filepath.Join(dir, "client.keytab")+" svc/client", "added to keytab")
	r.kadmin(t, "ktadd -norandkey -k "+filepath.Join(dir, "krbtgt.keytab")+" krbtgt/"+r.Realm, "added to keytab")

	pidFile := filepath.Join(dir, "kdc.pid")
	cmd := exec.Command(mitTool(t, "krb5kdc"), "-n", "-r", r.Realm, "-P", pidFile)
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.Create(filepath.Join(dir, "kdc.stdout"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// Stop exactly the process we started, by PID, and reap it; bounded wait.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	// Ready when the TCP port accepts; give up after 10 s or if krb5kdc exits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case werr := <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "kdc.stdout"))
			return nil, fmt.Errorf("krb5kdc exited early (%v): %s", werr, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("krb5kdc did not start listening within 10s")
		}
	}
	t.Cleanup(stop)
	return r, nil
}

// The client package keeps an identical helper; both go away when testenv offers a shared one.
