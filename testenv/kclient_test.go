package testenv

import (
	"os"
	"strings"
	"testing"
)

// Our client (cmd/kclient) against a real MIT KDC and against our KDC.

// kclientRun runs our kclient binary.
func kclientRun(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	_, kclient := Binaries(t)
	return Run(t, env, stdin, kclient, args...)
}

// mustKclient runs kclient and fails the test unless it exits 0.
func mustKclient(t *testing.T, env []string, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, code := kclientRun(t, env, stdin, args...)
	if code != 0 {
		t.Fatalf("kclient %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	return stdout
}

// TestKclientLoginMITKDC: kclient login (password on stdin) against a real MIT
// krb5kdc; MIT klist reads the TGT from the cache we wrote.
func TestKclientLoginMITKDC(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	env := m.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	requireTGT(t, mitKlist(t, env), m.Principal(UserName), m.Name, "IA")
	if !strings.Contains(m.Log(), "ISSUE: authtime") {
		t.Errorf("MIT KDC log shows no issued ticket:\n%s", m.Log())
	}
}

// TestKclientLoginMITKDCNoConfig: kclient login with --realm and --kdc and no
// krb5.conf at all, writing the cache named by -c.
func TestKclientLoginMITKDCNoConfig(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	env := m.Env(EnvOptions{})
	cc := CCachePath(env)
	noConf := WithEnv(WithEnv(env, "KRB5_CONFIG", os.DevNull), "KRB5CCNAME", "FILE:"+cc+".unused")
	mustKclient(t, noConf, UserPassword+"\n", "login", m.Principal(UserName), "--realm", m.Name, "--kdc", m.Addr, "-c", "FILE:"+cc)
	requireTGT(t, mitKlist(t, env), m.Principal(UserName), m.Name, "IA")
}

// TestKclientListMITCache: kclient list reads a cache written by MIT kinit.
func TestKclientListMITCache(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	env := m.Env(EnvOptions{Forwardable: true})
	mustMITKinit(t, env, UserPassword, UserName)
	tgt := "krbtgt/" + m.Name + "@" + m.Name

	out := mustKclient(t, env, "", "list")
	wantContains(t, "kclient list", out, m.Principal(UserName), tgt)

	// The same cache named with -c, and no KRB5CCNAME.
	out = mustKclient(t, WithEnv(env, "KRB5CCNAME", "FILE:/nonexistent/ccache"), "", "list", "-c", "FILE:"+CCachePath(env))
	wantContains(t, "kclient list -c", out, m.Principal(UserName), tgt)

	out = mustKclient(t, env, "", "list", "-f", "-e")
	wantContains(t, "kclient list -f -e", out, tgt, "aes256-cts-hmac-sha1-96")
}

// TestKclientLoginOurKDC: the developer flow against our KDC: kclient login,
// kclient list, MIT klist on the same cache, kclient destroy.
func TestKclientLoginOurKDC(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	tgt := "krbtgt/" + r.Name + "@" + r.Name

	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	out := mustKclient(t, env, "", "list")
	wantContains(t, "kclient list", out, r.Principal(UserName), tgt)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")

	// A wrong password fails with one line on stderr and a non-zero exit.
	env2 := r.Env(EnvOptions{})
	_, stderr, code := kclientRun(t, env2, "wrong-"+UserPassword+"\n", "login", UserName)
	if code == 0 {
		t.Error("kclient login with a wrong password succeeded")
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); stderr == "" || n > 0 {
		t.Errorf("kclient login failure: want one line on stderr, got %q", stderr)
	}
	if strings.Contains(stderr, UserPassword) {
		t.Errorf("kclient printed the password on stderr: %q", stderr)
	}

	mustKclient(t, env, "", "destroy")
	if _, err := os.Stat(CCachePath(env)); err == nil {
		t.Errorf("kclient destroy left %s", CCachePath(env))
	}
	klist := RequireTool(t, "klist")
	if _, _, code := Run(t, env, "", klist, "-s"); code == 0 {
		t.Error("klist -s still finds credentials after kclient destroy")
	}
}

// TestKclientLoginKeytabOurKDC: kclient login -k -t with the keytab from
// `kdc keytab`.
func TestKclientLoginKeytabOurKDC(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustKclient(t, env, "", "login", "-k", "-t", r.Keytab, r.Principal("host/localhost"))
	requireTGT(t, mitKlist(t, env), r.Principal("host/localhost"), r.Name, "IA")
}
