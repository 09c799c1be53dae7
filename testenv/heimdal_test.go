package testenv

import (
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
	mustHeimdalKinit(t, h, env, UserPassword, r.Principal(UserName))
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
	_, stderr, code := heimdalKinit(t, h, r.Env(EnvOptions{}), "wrong-"+UserPassword, r.Principal(UserName))
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
	mustHeimdalKinit(t, h, env, UserPassword, r.Principal(UserName))
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kgetcred"), r.Principal("host/localhost")); code != 0 {
		t.Fatalf("kgetcred host/localhost: exit %d: %s", code, stderr)
	}
	k := mitKlist(t, env)
	if k.Ticket(r.Principal("host/localhost")) == nil {
		t.Errorf("klist: no host/localhost ticket after kgetcred: %+v", k.Tickets)
	}
}
