package testenv

import (
	"path/filepath"
	"strings"
	"testing"
)

// Delegation and user-to-user with MIT's kvno: S4U2Self (kvno -U),
// S4U2Proxy (kvno -U USER -P), allowed and refused, and kvno --u2u.

// serviceLogin logs host/localhost in from the realm's keytab, forwardable, in
// a cache of its own, and returns that client environment.
func serviceLogin(t *testing.T, r *Realm) []string {
	t.Helper()
	env := r.Env(EnvOptions{})
	kinit := RequireTool(t, "kinit")
	if _, stderr, code := Run(t, env, "", kinit, "-f", "-k", "-t", r.Keytab, "host/localhost"); code != 0 {
		t.Fatalf("kinit -k host/localhost: exit %d: %s", code, stderr)
	}
	return env
}

// TestMITKvnoS4U: host/localhost impersonates alice to itself (S4U2Self), then
// to HTTP/localhost (S4U2Proxy) once `kdc principal modify` allows it; the
// HTTP/localhost ticket names alice and decrypts with HTTP/localhost's keytab.
func TestMITKvnoS4U(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	kvno, klist := RequireTool(t, "kvno"), RequireTool(t, "klist")
	env := serviceLogin(t, r)

	// S4U2Self: allowed for any service.
	out, stderr, code := Run(t, env, "", kvno, "-U", UserName, "host/localhost")
	if code != 0 {
		t.Fatalf("kvno -U alice host/localhost: exit %d: %s", code, stderr)
	}
	wantContains(t, "kvno -U", out, "host/localhost@"+r.Name+": kvno = ")
	wantContains(t, "KRB5_TRACE", Trace(env), "Getting credentials alice@"+r.Name+" -> host/localhost@"+r.Name)

	// S4U2Proxy before the service may delegate: KDC_ERR_BADOPTION.
	_, stderr, code = Run(t, env, "", kvno, "-U", UserName, "-P", "HTTP/localhost")
	if code == 0 || !strings.Contains(stderr, "KDC can't fulfill requested option") {
		t.Fatalf("kvno -U -P without delegation rights: exit %d: %s", code, stderr)
	}
	wantLog(t, r.Log, "NOT_ALLOWED_TO_DELEGATE")

	// A delegation target alone makes S4U2Self tickets non-forwardable: no
	// evidence (MIT's rule, MS-SFU §3.2.5.1.2).
	r.mustKDC(t, "", "principal", "modify", "host/localhost", "--add-delegate-to", "HTTP/localhost")
	env = serviceLogin(t, r)
	_, stderr, code = Run(t, env, "", kvno, "-U", UserName, "-P", "HTTP/localhost")
	if code == 0 || !strings.Contains(stderr, "KDC can't fulfill requested option") {
		t.Fatalf("kvno -U -P without ok-to-auth-as-delegate: exit %d: %s", code, stderr)
	}
	wantLog(t, r.Log, "EVIDENCE_TKT_NOT_FORWARDABLE")

	// With ok-to-auth-as-delegate: the whole chain, checked with the keytab.
	out = r.mustKDC(t, "", "principal", "modify", "host/localhost", "--ok-to-auth-as-delegate")
	wantContains(t, "principal modify", out, "ok-to-auth-as-delegate true", "HTTP/localhost@"+r.Name)
	env = serviceLogin(t, r)
	out, stderr, code = Run(t, env, "", kvno, "-k", r.Keytab, "-U", UserName, "-P", "HTTP/localhost")
	if code != 0 {
		t.Fatalf("kvno -U alice -P HTTP/localhost: exit %d: %s", code, stderr)
	}
	wantContains(t, "kvno -U -P", out, "HTTP/localhost@"+r.Name+": kvno = ", "keytab entry valid")
	out, _, _ = Run(t, env, "", klist)
	wantContains(t, "klist", out, "HTTP/localhost@"+r.Name)
	trace := Trace(env)
	wantContains(t, "KRB5_TRACE", trace, "alice@"+r.Name+" -> HTTP/localhost@"+r.Name)

	// Not on the list: refused, as before.
	_, stderr, code = Run(t, env, "", kvno, "-U", UserName, "-P", "krbtgt/"+r.Name)
	if code == 0 || !strings.Contains(stderr, "KDC policy rejects request") {
		t.Fatalf("S4U2Proxy to krbtgt: exit %d: %s", code, stderr)
	}
	// An unknown user: MIT's "not found".
	_, stderr, code = Run(t, env, "", kvno, "-U", "nobody", "host/localhost")
	if code == 0 || !strings.Contains(stderr, "not found in Kerberos database") {
		t.Errorf("kvno -U nobody: exit %d: %s", code, stderr)
	}
}

// TestMITKvnoU2U: alice gets a user-to-user ticket for bob with bob's TGT
// (kvno --u2u): kvno 0, sealed in bob's TGT session key.
func TestMITKvnoU2U(t *testing.T) {
	r := NewRealm(t, RealmOptions{Principals: append(DefaultPrincipals(), Principal{Name: "bob", Password: "bob-Pw-1414"})})
	kvno := RequireTool(t, "kvno")
	bob := r.Env(EnvOptions{})
	mustMITKinit(t, bob, "bob-Pw-1414", "bob")
	alice := r.Env(EnvOptions{})
	mustMITKinit(t, alice, UserPassword, UserName)
	bobCache := CCachePath(bob)
	if !filepath.IsAbs(strings.TrimPrefix(bobCache, "FILE:")) {
		t.Fatalf("bob's cache %q", bobCache)
	}
	out, stderr, code := Run(t, alice, "", kvno, "--u2u", bobCache, "bob")
	if code != 0 {
		t.Fatalf("kvno --u2u: exit %d: %s", code, stderr)
	}
	wantContains(t, "kvno --u2u", out, "bob@"+r.Name+": kvno = 0")
	// Without bob's TGT the KDC cannot seal it: a plain request for bob gets
	// a ticket in bob's key instead.
	if _, stderr, code := Run(t, alice, "", kvno, "--u2u", CCachePath(alice), "bob"); code == 0 {
		t.Errorf("kvno --u2u with alice's own TGT for bob succeeded")
	} else {
		t.Logf("mismatched second ticket: %s", stderr)
	}
	wantLog(t, r.Log, "2ND_TKT_MISMATCH")
}
