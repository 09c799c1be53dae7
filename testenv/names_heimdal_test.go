package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Names and S4U2Self with Heimdal's clients: kinit --enterprise and
// --canonicalize with an alias, kgetcred --impersonate (PA-FOR-USER).

func heimdalKinitArgs(t *testing.T, h string, env []string, password string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	pwfile := filepath.Join(t.TempDir(), "pw.txt")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Run(t, env, "", filepath.Join(h, "kinit.heimdal"), append([]string{"--password-file=" + pwfile}, args...)...)
}

// TestHeimdalEnterpriseAndAlias: kinit.heimdal --enterprise alice@REALM and
// --canonicalize with an alias both end up with alice's TGT.
func TestHeimdalEnterpriseAndAlias(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	r.mustKDC(t, "", "principal", "alias", "add", UserName, "al")
	for _, args := range [][]string{
		{"--enterprise", UserName + "@" + r.Name},
		{"--canonicalize", r.Principal("al")},
	} {
		env := r.Env(EnvOptions{})
		if _, stderr, code := heimdalKinitArgs(t, h, env, UserPassword, args...); code != 0 {
			t.Fatalf("kinit.heimdal %v: exit %d: %s", args, code, stderr)
		}
		requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	}
}

// TestHeimdalKgetcredImpersonate: Heimdal's S4U2Self (kgetcred --impersonate)
// gets a ticket to the service in alice's name, and with it S4U2Proxy
// (--delegation-credential-cache) gets one for HTTP/localhost once allowed.
func TestHeimdalKgetcredImpersonate(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	r.mustKDC(t, "", "principal", "modify", "host/localhost", "--ok-to-auth-as-delegate", "--add-delegate-to", "HTTP/localhost")
	env := serviceLogin(t, r)
	kgetcred, klist := filepath.Join(h, "kgetcred"), RequireTool(t, "klist")
	s4u := "FILE:" + filepath.Join(t.TempDir(), "s4u.cc")
	if _, stderr, code := Run(t, env, "", kgetcred, "--forwardable", "--impersonate="+r.Principal(UserName), "--out-cache="+s4u, r.Principal("host/localhost")); code != 0 {
		t.Fatalf("kgetcred --impersonate: exit %d: %s", code, stderr)
	}
	out, stderr, code := Run(t, env, "", klist, "-f", "-c", s4u)
	if code != 0 {
		t.Fatalf("klist -c %s: exit %d: %s", s4u, code, stderr)
	}
	wantContains(t, "klist of the S4U2Self cache", out, "Default principal: "+r.Principal(UserName), r.Principal("host/localhost"))

	if _, stderr, code := Run(t, env, "", kgetcred, "--forwardable", "--delegation-credential-cache="+s4u, r.Principal("HTTP/localhost")); code != 0 {
		t.Fatalf("kgetcred --delegation-credential-cache: exit %d: %s", code, stderr)
	}
	out, _, _ = Run(t, env, "", klist)
	wantContains(t, "klist", out, r.Principal("HTTP/localhost"))
}
