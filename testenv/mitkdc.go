package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MITRealmOptions configure [NewMITRealm].
type MITRealmOptions struct {
	Name     string // default DefaultMITRealmName
	MaxLife  string // max_life, default "10h"
	MaxRenew string // max_renewable_life, default "7d"
	// Enctypes is supported_enctypes (the enctypes of new keys), default
	// "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal".
	Enctypes string
	// Principals to add; nil means DefaultPrincipals. Args go to addprinc.
	Principals []Principal
	// KeytabPrincipals are written to MITRealm.Keytab with ktadd; nil means
	// DefaultKeytabPrincipals (those that exist).
	KeytabPrincipals []string
}

// MITRealm is a throw-away realm served by a real MIT krb5kdc on 127.0.0.1.
type MITRealm struct {
	Name    string // realm name
	Dir     string // temp dir holding everything
	Addr    string // 127.0.0.1:PORT (UDP and TCP)
	Keytab  string // service keytab, "" if none
	KDCConf string // kdc.conf (KRB5_KDC_PROFILE)
	Conf    string // krb5.conf for the admin tools
	LogFile string // krb5kdc's log file

	proc   *Process
	client *clientSide
}

// NewMITRealm creates an MIT KDC database in t.TempDir() with kdb5_util, adds
// the principals with kadmin.local, extracts the service keytab and starts
// `krb5kdc -n` on a free 127.0.0.1 port. It is stopped by PID in t.Cleanup.
func NewMITRealm(t testing.TB, o MITRealmOptions) *MITRealm {
	t.Helper()
	kdb5util := RequireTool(t, "kdb5_util")
	kadmin := RequireTool(t, "kadmin.local")
	krb5kdc := RequireTool(t, "krb5kdc")
	o = o.withDefaults()
	dir := t.TempDir()
	m := &MITRealm{
		Name:    o.Name,
		Dir:     dir,
		KDCConf: filepath.Join(dir, "kdc.conf"),
		Conf:    filepath.Join(dir, "krb5.conf"),
		LogFile: filepath.Join(dir, "kdc.log"),
	}
	m.client = &clientSide{realm: m.Name, addr: func() string { return m.Addr }, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			m.dump(t)
		}
	})

	const attempts = 3
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		m.writeConfig(t, o)
		if attempt == 1 {
			m.createDB(t, kdb5util, kadmin, o)
		}
		err = m.start(t, krb5kdc)
		if err == nil {
			break
		}
		if attempt == attempts {
			t.Fatalf("krb5kdc: %v", err)
		}
		t.Logf("krb5kdc on %s: %v; retrying on another port", m.Addr, err)
	}
	return m
}

// withDefaults fills the zero fields of o.
func (o MITRealmOptions) withDefaults() MITRealmOptions {
	if o.Name == "" {
		o.Name = DefaultMITRealmName
	}
	if o.MaxLife == "" {
		o.MaxLife = "10h"
	}
	if o.MaxRenew == "" {
		o.MaxRenew = "7d"
	}
	if o.Enctypes == "" {
		o.Enctypes = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal"
	}
	if o.Principals == nil {
		o.Principals = DefaultPrincipals()
	}
	return o
}

// writeConfig writes kdc.conf and the admin krb5.conf for the current port.
func (m *MITRealm) writeConfig(t testing.TB, o MITRealmOptions) {
	t.Helper()
	kdcConf := mitKDCConf(m.Name, m.Addr, m.Dir, m.LogFile, o)
	if err := os.WriteFile(m.KDCConf, []byte(kdcConf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.Conf, []byte(KRB5Conf(m.Name, m.Addr, EnvOptions{})), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "kadm5.acl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// mitKDCConf renders krb5kdc's kdc.conf for realm name listening on listen
// (HOST:PORT, or a port alone for every address), with its database in dir and
// its log in logFile ("STDERR" for stderr). o's lifetimes and enctypes must be
// filled in.
func mitKDCConf(name, listen, dir, logFile string, o MITRealmOptions) string {
	log := "FILE:" + logFile
	if logFile == "STDERR" {
		log = "STDERR"
	}
	return fmt.Sprintf(`[kdcdefaults]
    kdc_listen = %[2]s
    kdc_tcp_listen = %[2]s
[realms]
    %[1]s = {
        database_name = %[3]s/principal
        key_stash_file = %[3]s/stash
        acl_file = %[3]s/kadm5.acl
        kdc_listen = %[2]s
        kdc_tcp_listen = %[2]s
        kadmind_listen = 127.0.0.1:0
        max_life = %[4]s
        max_renewable_life = %[5]s
        supported_enctypes = %[7]s
        default_principal_flags = +preauth
    }
[logging]
    kdc = %[6]s
    admin_server = FILE:%[3]s/kadmin.log
    default = FILE:%[3]s/default.log
`, name, listen, dir, o.MaxLife, o.MaxRenew, log, o.Enctypes)
}

// AdminEnv is the environment for kdb5_util, kadmin.local and krb5kdc.
func (m *MITRealm) AdminEnv() []string {
	return ClientEnviron(map[string]string{
		"KRB5_CONFIG":      m.Conf,
		"KRB5_KDC_PROFILE": m.KDCConf,
		"KRB5RCACHETYPE":   "none",
	})
}

// createDB runs kdb5_util create and adds the principals and keytab.
func (m *MITRealm) createDB(t testing.TB, kdb5util, kadmin string, o MITRealmOptions) {
	t.Helper()
	// The master password is argv-only for kdb5_util; it protects nothing here.
	if _, stderr, code := Run(t, m.AdminEnv(), "", kdb5util, "create", "-s", "-r", m.Name, "-P", "kerbkit-master"); code != 0 {
		t.Fatalf("kdb5_util create: exit %d: %s", code, stderr)
	}
	for _, p := range o.Principals {
		q := "addprinc "
		if len(p.Args) > 0 {
			q += strings.Join(p.Args, " ") + " "
		}
		stdin := ""
		if p.RandomKey {
			q += "-randkey " + p.Name
		} else {
			q += p.Name
			stdin = p.Password + "\n" + p.Password + "\n" // prompt + verify, never in argv
		}
		m.KadminLocal(t, stdin, q)
	}
	kt := keytabPrincipals(o.KeytabPrincipals, o.Principals)
	if len(kt) > 0 {
		m.Keytab = filepath.Join(m.Dir, "service.keytab")
		m.KadminLocal(t, "", "ktadd -k "+m.Keytab+" "+strings.Join(kt, " "))
	}
}

// KadminLocal runs `kadmin.local -r REALM -q QUERY` with stdin and fails the test
// if it fails. kadmin.local exits 0 even when a query fails, so its stderr is
// checked too.
func (m *MITRealm) KadminLocal(t testing.TB, stdin, query string) string {
	t.Helper()
	kadmin := RequireTool(t, "kadmin.local")
	stdout, stderr, code := Run(t, m.AdminEnv(), stdin, kadmin, "-r", m.Name, "-q", query)
	if code != 0 || kadminFailed(stderr) {
		t.Fatalf("kadmin.local -q %q: exit %d: %s", query, code, strings.TrimSpace(stderr))
	}
	return stdout
}

// kadminFailed spots kadmin.local query errors, which do not change its exit code.
func kadminFailed(stderr string) bool {
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "No policy specified") || strings.HasPrefix(l, "Authenticating as") {
			continue
		}
		if strings.Contains(l, "while ") || strings.Contains(l, "usage:") || strings.Contains(l, "Usage:") {
			return true
		}
	}
	return false
}

// start runs krb5kdc -n and waits until it accepts TCP connections.
func (m *MITRealm) start(t testing.TB, krb5kdc string) error {
	t.Helper()
	p, err := StartProcess(m.AdminEnv(), krb5kdc, "-n", "-r", m.Name, "-P", filepath.Join(m.Dir, "kdc.pid"))
	if err != nil {
		return err
	}
	t.Cleanup(func() {
		if err := p.Stop(syscall.SIGTERM); err != nil {
			t.Logf("krb5kdc (pid %d) stop: %s", p.PID(), describeExit(err))
		}
	})
	deadline := time.Now().Add(StartTimeout)
	for {
		if p.Exited() {
			return fmt.Errorf("krb5kdc (pid %d) exited: %s\n%s\n%s", p.PID(), describeExit(p.waitErr), p.Output(), readFile(m.LogFile))
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = p.Stop(syscall.SIGTERM)
			return fmt.Errorf("krb5kdc (pid %d) not answering on %s after %v: %v\n%s", p.PID(), m.Addr, StartTimeout, err, readFile(m.LogFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.proc = p
	t.Logf("MIT krb5kdc for %s serving on %s (pid %d)", m.Name, m.Addr, p.PID())
	return nil
}

// Principal returns name@REALM.
func (m *MITRealm) Principal(name string) string { return name + "@" + m.Name }

// Env returns a child environment for client commands against this realm (see
// [Realm.Env]).
func (m *MITRealm) Env(o EnvOptions) []string { return m.client.env(o) }

// Stop stops krb5kdc by PID (SIGTERM, then SIGKILL after StopGrace).
func (m *MITRealm) Stop() error {
	if m.proc == nil {
		return nil
	}
	return m.proc.Stop(syscall.SIGTERM)
}

// Log returns krb5kdc's log file and captured output.
func (m *MITRealm) Log() string {
	s := readFile(m.LogFile)
	if m.proc != nil {
		s += m.proc.Output()
	}
	return s
}

func (m *MITRealm) dump(t testing.TB) {
	t.Logf("---- MIT krb5kdc log (%s) ----\n%s", m.Name, tail(m.Log(), 16000))
	m.client.dump(t)
}

// FreePort returns a port that was free on 127.0.0.1 for both UDP and TCP.
func FreePort() (int, error) {
	for i := 0; i < 20; i++ {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no port free for both UDP and TCP on 127.0.0.1")
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
