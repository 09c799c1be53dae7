package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Defaults shared by [NewRealm] and [NewMITRealm].
const (
	// DefaultRealmName is the realm of [NewRealm] (our KDC).
	DefaultRealmName = "KERBKIT.TEST"
	// DefaultMITRealmName is the realm of [NewMITRealm].
	DefaultMITRealmName = "MIT.TEST"
	// UserName is the default user principal (without realm).
	UserName = "alice"
	// UserPassword is the default user's password. It only ever travels on stdin.
	UserPassword = "alice-Pw-2718"
	// StartTimeout bounds how long a KDC may take to start listening.
	StartTimeout = 20 * time.Second
)

// Principal describes a principal to create in a test realm.
type Principal struct {
	Name      string   // without realm, e.g. "alice" or "host/localhost"
	Password  string   // piped on stdin; ignored when RandomKey
	RandomKey bool     // random keys (services)
	Args      []string // extra flags for `kdc principal add` or kadmin's addprinc
}

// DefaultPrincipals are alice (with [UserPassword]), host/localhost and
// HTTP/localhost (random keys).
func DefaultPrincipals() []Principal {
	return []Principal{
		{Name: UserName, Password: UserPassword},
		{Name: "host/localhost", RandomKey: true},
		{Name: "HTTP/localhost", RandomKey: true},
	}
}

// DefaultKeytabPrincipals are exported to the realm's service keytab.
var DefaultKeytabPrincipals = []string{"host/localhost", "HTTP/localhost"}

// keytabPrincipals is what a realm exports to its service keytab: keytab when it
// is not nil, else those of DefaultKeytabPrincipals that are among principals.
func keytabPrincipals(keytab []string, principals []Principal) []string {
	if keytab != nil {
		return keytab
	}
	var kt []string
	for _, name := range DefaultKeytabPrincipals {
		for _, p := range principals {
			if p.Name == name {
				kt = append(kt, name)
			}
		}
	}
	return kt
}

// RealmOptions configure [NewRealm].
type RealmOptions struct {
	Name     string // default DefaultRealmName
	MaxLife  string // kdc init --max-life, when set
	MaxRenew string // kdc init --max-renew, when set
	// Principals to add before serving; nil means DefaultPrincipals.
	Principals []Principal
	// KeytabPrincipals are exported to Realm.Keytab; nil means
	// DefaultKeytabPrincipals (those that exist).
	KeytabPrincipals []string
	// ServeArgs are extra flags for `kdc serve` (e.g. --domain-realm).
	ServeArgs []string
}

// Realm is a throw-away realm served by our own KDC (cmd/kdc), on 127.0.0.1 with
// an ephemeral port.
type Realm struct {
	Name string // realm name
	Dir  string // temp dir holding everything
	DB   string // principal database (Dir/kdc.db)
	Addr string // 127.0.0.1:PORT the KDC bound (UDP and TCP)
	// KpasswdAddr is 127.0.0.1:PORT of the password-change service (kpasswd).
	KpasswdAddr string
	Keytab      string // service keytab (Dir/service.keytab), "" if none exported
	KDCBin      string // path of the kdc binary
	KclientBin  string // path of the kclient binary

	t         testing.TB
	proc      *Process
	client    *clientSide
	serveArgs []string // RealmOptions.ServeArgs
}

// listeningRE finds the real bound address in `kdc serve`'s stderr.
var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// kpasswdRE finds the bound kpasswd address in `kdc serve`'s stderr.
var kpasswdRE = regexp.MustCompile(`\(kpasswd\) on (127\.0\.0\.1:[0-9]+)`)

// NewRealm builds our binaries (once), initialises a realm in t.TempDir(), adds
// the principals (passwords piped on stdin), exports the service keytab and
// starts `kdc serve --listen 127.0.0.1:0`. The KDC is stopped in t.Cleanup; its
// log and the client traces are written to the test log if the test failed.
func NewRealm(t testing.TB, o RealmOptions) *Realm {
	t.Helper()
	kdc, kclient := Binaries(t)
	if o.Name == "" {
		o.Name = DefaultRealmName
	}
	if o.Principals == nil {
		o.Principals = DefaultPrincipals()
	}
	dir := t.TempDir()
	r := &Realm{Name: o.Name, Dir: dir, DB: filepath.Join(dir, "kdc.db"), KDCBin: kdc, KclientBin: kclient, t: t, serveArgs: o.ServeArgs}
	r.client = &clientSide{realm: r.Name, addr: func() string { return r.Addr }, kpasswd: func() string { return r.KpasswdAddr }, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			r.dump(t)
		}
	})

	args := []string{"init", "--realm", r.Name, "--db", r.DB}
	if o.MaxLife != "" {
		args = append(args, "--max-life", o.MaxLife)
	}
	if o.MaxRenew != "" {
		args = append(args, "--max-renew", o.MaxRenew)
	}
	r.mustKDC(t, "", args...)
	for _, p := range o.Principals {
		if p.RandomKey {
			r.AddRandomPrincipal(t, p.Name, p.Args...)
		} else {
			r.AddPrincipal(t, p.Name, p.Password, p.Args...)
		}
	}
	kt := keytabPrincipals(o.KeytabPrincipals, o.Principals)
	if len(kt) > 0 {
		r.Keytab = filepath.Join(dir, "service.keytab")
		r.ExportKeytab(t, r.Keytab, kt...)
	}
	r.Start(t)
	return r
}

// Principal returns name@REALM.
func (r *Realm) Principal(name string) string { return name + "@" + r.Name }

// KDC runs `kdc ARGS... --db DB` with stdin and returns its output and exit code.
func (r *Realm) KDC(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	args = append(append([]string(nil), args...), "--db", r.DB)
	return Run(t, r.adminEnv(), stdin, r.KDCBin, args...)
}

// mustKDC runs a kdc command and fails the test unless it exits 0.
func (r *Realm) mustKDC(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	var stdout, stderr string
	var code int
	if len(args) > 0 && args[0] == "init" {
		stdout, stderr, code = Run(t, r.adminEnv(), stdin, r.KDCBin, args...)
	} else {
		stdout, stderr, code = r.KDC(t, stdin, args...)
	}
	if code != 0 {
		t.Fatalf("kdc %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	return stdout
}

// AddPrincipal runs `kdc principal add NAME ARGS...` with the password piped on
// stdin (never in argv). It works whether or not the KDC is serving.
func (r *Realm) AddPrincipal(t testing.TB, name, password string, args ...string) {
	t.Helper()
	r.mustKDC(t, password+"\n", append([]string{"principal", "add", name}, args...)...)
}

// AddRandomPrincipal runs `kdc principal add NAME --random-key ARGS...`.
func (r *Realm) AddRandomPrincipal(t testing.TB, name string, args ...string) {
	t.Helper()
	r.mustKDC(t, "", append([]string{"principal", "add", name, "--random-key"}, args...)...)
}

// ExportKeytab runs `kdc keytab NAMES... -o FILE`.
func (r *Realm) ExportKeytab(t testing.TB, file string, names ...string) {
	t.Helper()
	r.mustKDC(t, "", append(append([]string{"keytab"}, names...), "-o", file)...)
}

// Kclient runs our kclient binary in env.
func (r *Realm) Kclient(t testing.TB, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return Run(t, env, stdin, r.KclientBin, args...)
}

// Env returns a child environment for client commands against this realm: a
// fresh directory with krb5.conf (KRB5_CONFIG), ccache (KRB5CCNAME=FILE:…),
// trace.log (KRB5_TRACE), KRB5RCACHETYPE=none and LC_ALL=C.
func (r *Realm) Env(o EnvOptions) []string { return r.client.env(o) }

// adminEnv is the environment for kdc subcommands.
func (r *Realm) adminEnv() []string {
	return ClientEnviron(map[string]string{"KRB5_CONFIG": os.DevNull})
}

// Start runs `kdc serve --db DB --listen 127.0.0.1:0` (or the previous address
// when restarting) and waits for its "listening on" line. It is called by
// NewRealm; call it again only after Stop.
func (r *Realm) Start(t testing.TB) {
	t.Helper()
	listen, kpasswd := "127.0.0.1:0", "127.0.0.1:0"
	if r.Addr != "" {
		listen = r.Addr
	}
	if r.KpasswdAddr != "" {
		kpasswd = r.KpasswdAddr
	}
	p, err := StartProcess(r.adminEnv(), r.KDCBin, append([]string{"serve", "--db", r.DB, "--listen", listen, "--kpasswd-listen", kpasswd}, r.serveArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p
	t.Cleanup(func() {
		if err := p.Stop(syscall.SIGTERM); err != nil {
			t.Logf("kdc serve (pid %d) stop: %s", p.PID(), describeExit(err))
		}
	})
	m, err := p.WaitOutput(listeningRE, StartTimeout)
	if err != nil {
		_ = p.Stop(syscall.SIGTERM)
		t.Fatalf("kdc serve: %v\n---- kdc output ----\n%s", err, p.Output())
	}
	r.Addr = m[1]
	if m, err := p.WaitOutput(kpasswdRE, StartTimeout); err == nil {
		r.KpasswdAddr = m[1]
	}
	t.Logf("our KDC for %s serving on %s, kpasswd on %s (pid %d)", r.Name, r.Addr, r.KpasswdAddr, p.PID())
}

// Stop stops `kdc serve` by PID with SIGTERM (SIGKILL after StopGrace) and
// returns its exit error: nil means a clean exit 0.
func (r *Realm) Stop() error {
	if r.proc == nil {
		return nil
	}
	return r.proc.Stop(syscall.SIGTERM)
}

// Process returns the running `kdc serve` child.
func (r *Realm) Process() *Process { return r.proc }

// Log returns what `kdc serve` has written so far (one line per request).
func (r *Realm) Log() string {
	if r.proc == nil {
		return ""
	}
	return r.proc.Output()
}

// dump writes the KDC log and client traces to the test log.
func (r *Realm) dump(t testing.TB) {
	if r.proc != nil {
		t.Logf("---- our KDC log (%s, pid %d) ----\n%s", r.Name, r.proc.PID(), tail(r.proc.Output(), 16000))
	}
	r.client.dump(t)
}
