package testenv

import (
	"strings"
	"testing"
)

// Names with MIT's tools: aliases, enterprise names (RFC 6806) and the
// refusal of anonymous requests.

// TestMITKinitEnterprise: kinit -E alice@REALM logs in as alice, and so does
// an enterprise name held as an alias (alice\@example.com).
func TestMITKinitEnterprise(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	r.mustKDC(t, "", "principal", "alias", "add", UserName, `alice\@example.com`)
	for _, upn := range []string{UserName + "@" + r.Name, "alice@example.com"} {
		env := r.Env(EnvOptions{})
		mustMITKinit(t, env, UserPassword, "-E", upn)
		requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	}
	env := r.Env(EnvOptions{})
	_, stderr, code := mitKinit(t, env, UserPassword, "-E", "nobody@"+r.Name)
	if code == 0 || !strings.Contains(stderr, "not found in Kerberos database") {
		t.Errorf("kinit -E nobody: exit %d: %s", code, stderr)
	}
}

// TestMITKinitCanonicalizeAlias: kinit -C with an alias gets a TGT for the
// canonical principal; without -C, MIT accepts the alias's own name back.
func TestMITKinitCanonicalizeAlias(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	r.mustKDC(t, "", "principal", "alias", "add", UserName, "al")
	out := r.mustKDC(t, "", "principal", "alias", "list")
	wantContains(t, "alias list", out, "al@"+r.Name+"\t"+r.Principal(UserName))
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-C", "al")
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	wantContains(t, "KRB5_TRACE", Trace(env), "Received answer")

	env = r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "al")
	requireTGT(t, mitKlist(t, env), r.Principal("al"), r.Name, "IA")
	// The TGT of an alias still gets service tickets.
	kvno := RequireTool(t, "kvno")
	if _, stderr, code := Run(t, env, "", kvno, "host/localhost"); code != 0 {
		t.Errorf("kvno with an alias's TGT: exit %d: %s", code, stderr)
	}

	// A service alias: MIT kvno asks with canonicalize, and the ticket
	// (in host/localhost's key) names the service's own name.
	r.mustKDC(t, "", "principal", "alias", "add", "host/localhost", "host/www.kerbkit.test")
	out, stderr, code := Run(t, env, "", kvno, "-k", r.Keytab, "host/www.kerbkit.test")
	if code != 0 {
		t.Fatalf("kvno of a service alias: exit %d: %s", code, stderr)
	}
	wantContains(t, "kvno of a service alias", out, "keytab entry valid")

	r.mustKDC(t, "", "principal", "alias", "delete", "al")
	_, stderr, code = mitKinit(t, r.Env(EnvOptions{}), UserPassword, "-C", "al")
	if code == 0 || !strings.Contains(stderr, "not found in Kerberos database") {
		t.Errorf("kinit -C of a deleted alias: exit %d: %s", code, stderr)
	}
}

// TestMITKinitAnonymousRefused: kinit -n is refused with the policy error, not
// "not found in Kerberos database", and the log says why.
func TestMITKinitAnonymousRefused(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	kinit := RequireTool(t, "kinit")
	_, stderr, code := Run(t, env, "", kinit, "-n", "@"+r.Name)
	if code == 0 {
		t.Fatalf("kinit -n succeeded")
	}
	t.Logf("kinit -n: %s", stderr)
	if strings.Contains(stderr, "not found") {
		t.Errorf("kinit -n: %s", stderr)
	}
	// MIT prints the code's message (MIT's own KDC answers KDC_ERR_POLICY
	// too when anonymous is off); the reason is in our log.
	wantContains(t, "kinit -n", stderr, "KDC policy rejects request")
	wantLog(t, r.Log, "result=ANONYMOUS_NOT_SUPPORTED", "are not issued by this KDC")
}
