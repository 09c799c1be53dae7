package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// lockedBuffer is an io.Writer safe for the server goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// devRun is a `kdc dev` running in the test process.
type devRun struct {
	info   devInfo
	line   string // the JSON line exactly as printed
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan error
	rest   chan string // anything printed on stdout after the JSON line
}

// startDev runs `kdc ARGS...` (a dev command with --json) in process and waits
// for its JSON line. It is stopped in t.Cleanup.
func startDev(t *testing.T, args ...string) *devRun {
	t.Helper()
	pr, pw := io.Pipe()
	d := &devRun{stderr: &lockedBuffer{}, done: make(chan error, 1), rest: make(chan string, 1)}
	e := &env{stdin: strings.NewReader(""), stdout: pw, stderr: d.stderr}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetOut(pw)
	root.SetErr(d.stderr)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		d.done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(pr)
		l, _ := r.ReadString('\n')
		lines <- l
		b, _ := io.ReadAll(r)
		d.rest <- string(b)
	}()
	t.Cleanup(func() { d.stop(t) })
	select {
	case d.line = <-lines:
	case err := <-d.done:
		t.Fatalf("kdc %s exited before printing JSON: %v\n%s", strings.Join(args, " "), err, d.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("kdc %s printed no JSON line within 20s\n%s", strings.Join(args, " "), d.stderr.String())
	}
	if err := json.Unmarshal([]byte(d.line), &d.info); err != nil {
		t.Fatalf("kdc dev --json printed %q: %v", d.line, err)
	}
	return d
}

// stop cancels the command (what SIGINT and SIGTERM do) and requires a clean
// exit; only the first call acts.
func (d *devRun) stop(t *testing.T) {
	t.Helper()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("kdc dev exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("kdc dev did not stop within 20s of its context being cancelled")
	}
	if rest := <-d.rest; rest != "" {
		t.Errorf("kdc dev --json printed more than one line on stdout: %q", rest)
	}
	if !strings.Contains(d.stderr.String(), "kdc: stopped") {
		t.Errorf("no \"kdc: stopped\" on stderr:\n%s", d.stderr.String())
	}
}

// gokrb5Login logs user in with gokrb5 (an independent client) against the
// KDC at addr and gets a ticket for spn.
func gokrb5Login(t *testing.T, realm, addr, user, password, spn string) {
	t.Helper()
	cfg, err := config.NewFromString(fmt.Sprintf(`[libdefaults]
  default_realm = %[1]s
  default_tkt_enctypes = aes256-cts-hmac-sha384-192 aes256-cts-hmac-sha1-96
  default_tgs_enctypes = aes256-cts-hmac-sha384-192 aes256-cts-hmac-sha1-96
  permitted_enctypes = aes256-cts-hmac-sha384-192 aes256-cts-hmac-sha1-96
[realms]
  %[1]s = {
    kdc = %[2]s
  }
`, realm, addr))
	if err != nil {
		t.Fatal(err)
	}
	cl := krbclient.NewWithPassword(user, realm, password, cfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		t.Fatalf("gokrb5 login as %s@%s at %s: %v", user, realm, addr, err)
	}
	if spn != "" {
		if _, _, err := cl.GetServiceTicket(spn); err != nil {
			t.Fatalf("gokrb5 service ticket for %s: %v", spn, err)
		}
	}
}

// keytabEntries lists "name@REALM enctype" for each entry of a keytab file.
func keytabEntries(t *testing.T, path string) []string {
	t.Helper()
	kt, err := keytab.Load(path)
	if err != nil {
		t.Fatalf("keytab %s: %v", path, err)
	}
	var out []string
	for _, e := range kt.Entries {
		out = append(out, fmt.Sprintf("%s@%s %d", strings.Join(e.Principal.Components, "/"), e.Principal.Realm, e.Key.KeyType))
	}
	return out
}

// keytabKey returns the first key of a keytab, hex-encoded.
func keytabKey(t *testing.T, path string) string {
	t.Helper()
	kt, err := keytab.Load(path)
	if err != nil || len(kt.Entries) == 0 {
		t.Fatalf("keytab %s: %v", path, err)
	}
	return fmt.Sprintf("%x", kt.Entries[0].Key.KeyValue)
}

// TestDevJSON: `kdc dev --json` prints one JSON line, once the realm answers,
// with everything a harness needs; the files it names exist with the right
// modes, a real client logs in with what it says, and realm.json holds the same
// document.
func TestDevJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "realm")
	d := startDev(t, "dev", "--json", "--dir", dir, "--listen", "127.0.0.1:0")
	in := d.info

	if in.Realm != devRealm || in.User != "alice@"+devRealm || in.Password != devPassword {
		t.Errorf("realm/user/password = %q %q %q", in.Realm, in.User, in.Password)
	}
	if !strings.HasPrefix(in.KDC, "127.0.0.1:") || in.KDC != in.Listen || in.Host != "127.0.0.1" || in.Port <= 0 ||
		in.KDC != fmt.Sprintf("127.0.0.1:%d", in.Port) {
		t.Errorf("kdc %q listen %q host %q port %d", in.KDC, in.Listen, in.Host, in.Port)
	}
	if strings.Join(in.Transports, ",") != "udp,tcp" || in.PID != os.Getpid() {
		t.Errorf("transports %v pid %d", in.Transports, in.PID)
	}
	if in.Dir != dir || in.Out != dir || in.DB != filepath.Join(dir, "kdc.db") ||
		in.Krb5Conf != filepath.Join(dir, "krb5.conf") || in.Keytab != filepath.Join(dir, "service.keytab") ||
		in.CCache != filepath.Join(dir, "ccache") {
		t.Errorf("paths: %+v", in)
	}
	wantEnv := map[string]string{"KRB5_CONFIG": in.Krb5Conf, "KRB5CCNAME": "FILE:" + in.CCache, "KRB5_KTNAME": "FILE:" + in.Keytab}
	for k, v := range wantEnv {
		if in.Env[k] != v {
			t.Errorf("env[%s] = %q, want %q", k, in.Env[k], v)
		}
	}
	if len(in.Users) != 1 || len(in.Services) != 2 || in.Services[0].Principal != "host/localhost@"+devRealm ||
		in.Services[1].Keytab != in.Keytab || in.MaxLife != 86400 || in.MaxRenew != 7*86400 {
		t.Errorf("users %+v services %+v lifetimes %d %d", in.Users, in.Services, in.MaxLife, in.MaxRenew)
	}

	conf, err := os.ReadFile(in.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"default_realm = KERBKIT.TEST", "kdc = " + in.KDC, ".kerbkit.test = KERBKIT.TEST", "localhost = KERBKIT.TEST"} {
		if !strings.Contains(string(conf), s) {
			t.Errorf("krb5.conf lacks %q:\n%s", s, conf)
		}
	}
	for path, mode := range map[string]os.FileMode{in.Keytab: 0o600, filepath.Join(dir, devInfoFile): 0o600, in.Krb5Conf: 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %v", path, err, mode)
		}
	}
	saved, err := os.ReadFile(filepath.Join(dir, devInfoFile))
	if err != nil || string(saved) != d.line {
		t.Errorf("realm.json = %q (%v), want the printed line %q", saved, err, d.line)
	}
	kt := strings.Join(keytabEntries(t, in.Keytab), "\n")
	for _, p := range []string{"host/localhost@KERBKIT.TEST 18", "HTTP/localhost@KERBKIT.TEST 20"} {
		if !strings.Contains(kt, p) {
			t.Errorf("keytab lacks %q:\n%s", p, kt)
		}
	}
	gokrb5Login(t, in.Realm, in.KDC, "alice", in.Password, "host/localhost")
	// The summary for people went to stderr, the JSON alone to stdout.
	if s := d.stderr.String(); !strings.Contains(s, "Realm KERBKIT.TEST is up on "+in.KDC) || !strings.Contains(s, "export KRB5_CONFIG="+in.Krb5Conf) {
		t.Errorf("stderr lacks the summary:\n%s", s)
	}
	d.stop(t)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("--dir %s was removed on exit: %v", dir, err)
	}
}

// TestDevTempDirRemoved: without --dir the realm lives in a temporary
// directory that is gone after a clean stop.
func TestDevTempDirRemoved(t *testing.T) {
	d := startDev(t, "dev", "--json")
	if _, err := os.Stat(d.info.DB); err != nil {
		t.Fatal(err)
	}
	d.stop(t)
	if _, err := os.Stat(d.info.Dir); !os.IsNotExist(err) {
		t.Errorf("temporary realm %s still there after stop: %v", d.info.Dir, err)
	}
}

// TestDevEnvironment configures everything from KERBKIT_* variables, as the
// container image does: realm, users with passwords, services in two keytabs,
// enctypes, lifetimes, a separate output directory and the advertised host.
// A flag beats its variable. A restart on the same directory reuses the realm.
func TestDevEnvironment(t *testing.T) {
	dir, out := filepath.Join(t.TempDir(), "db"), filepath.Join(t.TempDir(), "out")
	t.Setenv("KERBKIT_REALM", "EXAMPLE.TEST")
	t.Setenv("KERBKIT_DIR", dir)
	t.Setenv("KERBKIT_OUT", out)
	t.Setenv("KERBKIT_LISTEN", "127.0.0.1:0")
	t.Setenv("KERBKIT_ADVERTISE", "kdc.example.test")
	t.Setenv("KERBKIT_USERS", "bob:bob-pw-1, carol:carol-pw-2")
	t.Setenv("KERBKIT_SERVICES", "HTTP/www.example.test=www.keytab host/www.example.test=www.keytab svc/other.example.test")
	t.Setenv("KERBKIT_ENCTYPES", "aes256-sha2")
	t.Setenv("KERBKIT_MAX_LIFE", "2h")
	t.Setenv("KERBKIT_MAX_RENEW", "1d")
	t.Setenv("KERBKIT_PASSWORD", "unused")
	t.Setenv("KERBKIT_JSON", "true")
	t.Setenv("KERBKIT_LOG_LEVEL", "warn")

	d := startDev(t, "dev", "--user", "dave") // the flag replaces KERBKIT_USERS; dave gets KERBKIT_PASSWORD
	in := d.info
	if in.Realm != "EXAMPLE.TEST" || in.Dir != dir || in.Out != out || in.MaxLife != 7200 || in.MaxRenew != 86400 {
		t.Errorf("realm %q dir %q out %q lifetimes %d %d", in.Realm, in.Dir, in.Out, in.MaxLife, in.MaxRenew)
	}
	if len(in.Users) != 1 || in.Users[0] != (devInfoUser{"dave@EXAMPLE.TEST", "unused"}) {
		t.Errorf("users %+v, want dave only (--user beats KERBKIT_USERS)", in.Users)
	}
	if want := fmt.Sprintf("kdc.example.test:%d", in.Port); in.KDC != want || in.Host != "kdc.example.test" {
		t.Errorf("kdc %q host %q, want %s", in.KDC, in.Host, want)
	}
	if filepath.Dir(in.Krb5Conf) != out || filepath.Dir(in.Keytab) != out || filepath.Dir(in.DB) != dir || strings.HasPrefix(in.CCache, out) {
		t.Errorf("files: conf %s keytab %s db %s ccache %s", in.Krb5Conf, in.Keytab, in.DB, in.CCache)
	}
	www := strings.Join(keytabEntries(t, filepath.Join(out, "www.keytab")), "\n")
	if www != "HTTP/www.example.test@EXAMPLE.TEST 20\nhost/www.example.test@EXAMPLE.TEST 20" {
		t.Errorf("www.keytab:\n%s\nwant the two www services, aes256-sha2 only", www)
	}
	if other := strings.Join(keytabEntries(t, filepath.Join(out, "service.keytab")), "\n"); other != "svc/other.example.test@EXAMPLE.TEST 20" {
		t.Errorf("service.keytab: %s", other)
	}
	if in.Keytab != filepath.Join(out, "www.keytab") || in.Keytabs["service.keytab"] != filepath.Join(out, "service.keytab") {
		t.Errorf("keytab %q keytabs %v", in.Keytab, in.Keytabs)
	}
	conf, _ := os.ReadFile(in.Krb5Conf)
	for _, s := range []string{"default_realm = EXAMPLE.TEST", "kdc = " + in.KDC, ".example.test = EXAMPLE.TEST"} {
		if !strings.Contains(string(conf), s) {
			t.Errorf("krb5.conf lacks %q:\n%s", s, conf)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, devInfoFile)); err == nil {
		t.Error("realm.json written to --dir as well as --out")
	}
	gokrb5Login(t, in.Realm, in.Listen, "dave", "unused", "HTTP/www.example.test")
	d.stop(t)

	// Restart: the realm and its keys are kept; the keytab is the same key.
	before := keytabEntries(t, filepath.Join(out, "www.keytab"))
	keyBefore := keytabKey(t, filepath.Join(out, "www.keytab"))
	d = startDev(t, "dev", "--user", "dave:ignored-now")
	if got := keytabEntries(t, filepath.Join(out, "www.keytab")); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("keytab after restart %v, before %v", got, before)
	}
	if keytabKey(t, filepath.Join(out, "www.keytab")) != keyBefore {
		t.Error("the service key changed across a restart")
	}
	if !strings.Contains(d.stderr.String(), "dave@EXAMPLE.TEST exists") {
		t.Errorf("no note that dave was kept:\n%s", d.stderr.String())
	}
	gokrb5Login(t, d.info.Realm, d.info.Listen, "dave", "unused", "") // the old password still works
	d.stop(t)

	// Another realm name on the same directory is refused.
	code, _, stderr := kdcRun(t, "", "dev", "--realm", "OTHER.TEST")
	if code != 1 || !strings.Contains(stderr, "holds realm EXAMPLE.TEST, not OTHER.TEST") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("--realm OTHER.TEST on an EXAMPLE.TEST dir: exit %d, %q", code, stderr)
	}
}

// TestDevBadInput: bad flags, variables and files get one clear line and exit
// 1; a password never appears in the message.
func TestDevBadInput(t *testing.T) {
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users")
	if err := os.WriteFile(usersFile, []byte("# users\nbob:s3cret-pw\nbroken-line-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--user", "bob:"}, nil, "--user bob: empty password"},
		{[]string{"--user", "a@b@c"}, nil, "malformed principal name"},
		{[]string{"--user", "bob", "--user", "bob:x"}, nil, "bob is given twice"},
		{[]string{"--service", "HTTP/x=../x.keytab"}, nil, "must be a plain file name"},
		{[]string{"--service", "HTTP/x=realm.json"}, nil, "must be a plain file name"},
		{[]string{"--enctypes", "des-cbc-crc"}, nil, "--enctypes"},
		{[]string{"--users-file", usersFile}, nil, "line 3: want NAME:PASSWORD"},
		{[]string{"--users-file", filepath.Join(dir, "none")}, nil, "--users-file"},
		{nil, map[string]string{"KERBKIT_MAX_LIFE": "forever"}, "KERBKIT_MAX_LIFE=\"forever\""},
		{nil, map[string]string{"KERBKIT_JSON": "maybe"}, "KERBKIT_JSON"},
		{[]string{"--listen", "nonsense"}, nil, "listen address"},
		{[]string{"--advertise", ":88"}, nil, "--advertise"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"dev", "--dir", filepath.Join(t.TempDir(), "r")}, c.args...)
			code, _, stderr := kdcRun(t, "", args...)
			if code != 1 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "kdc: ") {
				t.Errorf("kdc %v: exit %d, stderr %q; want 1 and one line with %q", args, code, stderr, c.want)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("the message quotes a password: %q", stderr)
			}
		})
	}
}

// TestDevUsersFile: users and passwords from a file (keeping them out of argv
// and the environment) replace the default user, or join those of --user.
func TestDevUsersFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(f, []byte("\n# test users\nbob:pw with spaces:and colons\ncarol:c-pw\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDev(t, "dev", "--json", "--users-file", f, "--service", "HTTP/localhost")
	want := []devInfoUser{{"bob@KERBKIT.TEST", "pw with spaces:and colons"}, {"carol@KERBKIT.TEST", "c-pw"}}
	if fmt.Sprint(d.info.Users) != fmt.Sprint(want) || d.info.User != "bob@KERBKIT.TEST" {
		t.Errorf("users %+v (first %s), want only the file's %+v", d.info.Users, d.info.User, want)
	}
	gokrb5Login(t, d.info.Realm, d.info.KDC, "bob", "pw with spaces:and colons", "HTTP/localhost")
	d.stop(t)

	// With --user as well, both.
	d = startDev(t, "dev", "--json", "--users-file", f, "--user", "alice")
	want = append([]devInfoUser{{"alice@KERBKIT.TEST", devPassword}}, want...)
	if fmt.Sprint(d.info.Users) != fmt.Sprint(want) {
		t.Errorf("users %+v, want %+v", d.info.Users, want)
	}
}
