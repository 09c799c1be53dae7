package testenv

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// nativeSite runs the interop matrix with the peers installed on this host:
// our KDC (kdc dev, as a harness in another language would start it, read
// from its --json line) and an MIT krb5kdc on 127.0.0.1, kservice, gss-server
// and Apache on loopback, every service host "localhost".
type nativeSite struct {
	kclient string
	realms  map[*siteRealm]*clientSide
}

// interopMITEnctypes are the MIT realm's key enctypes: both AES families.
const interopMITEnctypes = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal " +
	"aes256-cts-hmac-sha384-192:normal aes128-cts-hmac-sha256-128:normal"

// devJSONRE is the line `kdc dev --json` prints once its realm answers.
var devJSONRE = regexp.MustCompile(`(?m)^(\{"realm":.*\})$`)

// devRealmInfo is the part of `kdc dev --json` the harness uses.
type devRealmInfo struct {
	Realm    string            `json:"realm"`
	KDC      string            `json:"kdc"`
	Keytab   string            `json:"keytab"`
	Krb5Conf string            `json:"krb5_conf"`
	Env      map[string]string `json:"env"`
}

// startKdcDevJSON runs `kdc dev --json` with env vars added and returns what it
// printed; it is stopped by PID in t.Cleanup and must then exit 0.
func startKdcDevJSON(t *testing.T, vars map[string]string, args ...string) (*Process, devRealmInfo) {
	t.Helper()
	kdc, _ := Binaries(t)
	p, err := StartProcess(ClientEnviron(vars), kdc, append([]string{"dev", "--json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("kdc dev (pid %d) did not exit cleanly on SIGTERM: %s", p.PID(), describeExit(err))
		}
		if t.Failed() {
			t.Logf("---- kdc dev output (pid %d) ----\n%s", p.PID(), tail(p.Output(), 16000))
		}
	})
	m, err := p.WaitOutput(devJSONRE, StartTimeout)
	if err != nil {
		t.Fatalf("kdc dev --json: %v\n%s", err, p.Output())
	}
	var info devRealmInfo
	if err := json.Unmarshal([]byte(m[1]), &info); err != nil {
		t.Fatalf("kdc dev --json printed %q: %v", m[1], err)
	}
	return p, info
}

func (s *nativeSite) Realms(t *testing.T, ourUsers, mitUsers []string) (ours, mit *siteRealm) {
	for _, tool := range []string{"kinit", "klist", "kvno", "gss-client", "gss-server", "curl", "krb5kdc", "kadmin.local"} {
		RequireTool(t, tool)
	}
	_, s.kclient = Binaries(t)
	var specs []string
	for _, u := range append([]string{UserName}, ourUsers...) {
		specs = append(specs, u+":"+UserPassword)
	}
	dir := t.TempDir()
	dev, info := startKdcDevJSON(t, map[string]string{"KERBKIT_USERS": strings.Join(specs, ",")},
		"--dir", dir, "--listen", "127.0.0.1:0", "--max-renew", "7d")
	ks := startKservice(t, info.Keytab)
	cs := &clientSide{realm: info.Realm, addr: func() string { return info.KDC }, dir: dir}
	g := startGSSServer(t, cs.env(EnvOptions{}), info.Keytab, "host@localhost")
	a := startApache(t, cs.env(EnvOptions{}), info.Keytab)
	ours = &siteRealm{
		Kind: "kerbkit", Name: info.Realm, KDC: info.KDC, Log: dev.Output,
		KService: &siteService{Host: "localhost", GSSPort: ks.gssPort, GSSAddr: "127.0.0.1:" + ks.gssPort,
			URL: "http://localhost:" + ks.httpPort + "/", Keytab: info.Keytab, Log: func(*testing.T) string { return ks.proc.Output() }},
		GSSServer: &siteService{Host: "localhost", GSSAddr: g.Addr, Keytab: info.Keytab, Log: func(*testing.T) string { return g.Log() }},
		Apache:    &siteService{Host: "localhost", URL: a.URL(""), Keytab: info.Keytab, Log: func(*testing.T) string { return a.AccessLog() }},
	}

	m := NewMITRealm(t, MITRealmOptions{Enctypes: interopMITEnctypes})
	// All users in one kadmin.local, passwords on its stdin.
	var q strings.Builder
	for _, u := range mitUsers {
		q.WriteString("addprinc -pw " + UserPassword + " " + u + "\n")
	}
	kadmin := RequireTool(t, "kadmin.local")
	if _, stderr, code := Run(t, m.AdminEnv(), q.String(), kadmin, "-r", m.Name); code != 0 || kadminFailed(stderr) || strings.Contains(stderr, "Unknown request") {
		t.Fatalf("kadmin.local addprinc: exit %d: %s", code, stderr)
	}
	mg := startGSSServer(t, m.Env(EnvOptions{}), m.Keytab, "host@localhost")
	mit = &siteRealm{
		Kind: "MIT", Name: m.Name, KDC: m.Addr, Log: m.Log,
		GSSServer: &siteService{Host: "localhost", GSSAddr: mg.Addr, Keytab: m.Keytab, Log: func(*testing.T) string { return mg.Log() }},
	}
	s.realms = map[*siteRealm]*clientSide{ours: cs, mit: m.client}
	if filepath.Dir(info.Krb5Conf) != dir {
		t.Errorf("kdc dev --json: krb5_conf %s is not in --dir %s", info.Krb5Conf, dir)
	}
	return ours, mit
}

func (s *nativeSite) Client(t *testing.T, r *siteRealm, o EnvOptions) siteClient {
	return &nativeClient{env: s.realms[r].env(o), kclient: s.kclient}
}

// nativeClient runs the peers installed on this host in one environment.
type nativeClient struct {
	env     []string
	kclient string
}

func (c *nativeClient) Run(t *testing.T, stdin, tool string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := c.kclient
	if tool != "kclient" {
		bin = RequireTool(t, tool)
	}
	return Run(t, c.env, stdin, bin, args...)
}

func (c *nativeClient) Trace(*testing.T) string { return Trace(c.env) }
