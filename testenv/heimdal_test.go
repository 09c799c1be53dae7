package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Heimdal 7.8 clients (extracted heimdal-clients) against our KDC.

// TestHeimdalKinit: kinit.heimdal --password-file against our KDC; Heimdal's
// klist and MIT's klist show the TGT.
func TestHeimdalKinit(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	pwfile := filepath.Join(t.TempDir(), "pw.txt")
	if err := os.WriteFile(pwfile, []byte(UserPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kinit.heimdal"), "--password-file="+pwfile, r.Principal(UserName)); code != 0 {
		t.Fatalf("kinit.heimdal: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := Run(t, env, "", filepath.Join(h, "klist.heimdal"))
	if code != 0 {
		t.Fatalf("heimtools klist: exit %d: %s", code, stderr)
	}
	wantContains(t, "Heimdal klist", stdout, "Principal: "+r.Principal(UserName), "krbtgt/"+r.Name+"@"+r.Name)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
}

// TestHeimdalKinitWrongPassword: Heimdal reports a failed pre-authentication.
func TestHeimdalKinitWrongPassword(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	pwfile := filepath.Join(t.TempDir(), "pw.txt")
	if err := os.WriteFile(pwfile, []byte("wrong-"+UserPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := Run(t, r.Env(EnvOptions{}), "", filepath.Join(h, "kinit.heimdal"), "--password-file="+pwfile, r.Principal(UserName))
	if code == 0 {
		t.Fatal("kinit.heimdal with a wrong password succeeded")
	}
	wantContains(t, "kinit.heimdal stderr", stderr, "Password incorrect")
}

// TestHeimdalKgetcred (beyond the login requirements: the TGS exchange): Heimdal
// kgetcred sends from=till=19700101000000Z and a negative nonce.
func TestHeimdalKgetcred(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	pwfile := filepath.Join(t.TempDir(), "pw.txt")
	if err := os.WriteFile(pwfile, []byte(UserPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kinit.heimdal"), "--password-file="+pwfile, r.Principal(UserName)); code != 0 {
		t.Fatalf("kinit.heimdal: exit %d: %s", code, stderr)
	}
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kgetcred"), r.Principal("host/localhost")); code != 0 {
		t.Fatalf("kgetcred host/localhost: exit %d: %s", code, stderr)
	}
	k := mitKlist(t, env)
	if k.Ticket(r.Principal("host/localhost")) == nil {
		t.Errorf("klist: no host/localhost ticket after kgetcred: %+v", k.Tickets)
	}
}
