package testenv

import (
	"strings"
	"testing"
)

// Password changes with MIT's tools against `kdc serve`'s kpasswd service
// (RFC 3244): kpasswd over UDP and TCP, policy refusals with their reason, and
// kinit walking through an expired password.

// TestMITKpasswd: kpasswd changes the password (the old one stops working,
// the new one logs in), with the default krb5.conf and with
// udp_preference_limit = 1 (MIT 1.20's kpasswd was seen to use TCP in both;
// UDP is covered by kclient passwd and gokrb5 in package kdc and client), and
// a too short or reused password is refused with the reason kpasswd prints.
func TestMITKpasswd(t *testing.T) {
	kpasswd := RequireTool(t, "kpasswd")
	r := NewRealm(t, RealmOptions{})
	if r.KpasswdAddr == "" {
		t.Fatalf("kdc serve printed no kpasswd address:\n%s", r.Log())
	}
	r.mustKDC(t, "", "policy", "add", "strict", "--min-length", "10", "--min-classes", "2", "--history", "3")
	r.mustKDC(t, "", "principal", "modify", UserName, "--policy", "strict")

	old := UserPassword
	for i, o := range []EnvOptions{{}, {ForceTCP: true}} {
		nw := []string{"First-Passw0rd", "Second-Passw0rd"}[i]
		env := r.Env(o)
		out, stderr, code := Run(t, env, old+"\n"+nw+"\n"+nw+"\n", kpasswd, UserName)
		if code != 0 || !strings.Contains(out, "Password changed.") {
			t.Fatalf("kpasswd (udp_preference_limit=1: %v): exit %d: %s %s", o.ForceTCP, code, out, stderr)
		}
		if _, _, code := mitKinit(t, r.Env(EnvOptions{}), old, UserName); code == 0 {
			t.Errorf("the old password %q still logs in", old)
		}
		mustMITKinit(t, r.Env(EnvOptions{}), nw, UserName)
		old = nw
	}
	for _, c := range []struct{ pw, reason string }{
		{"Sh0rt-1", "Password is too short"},
		{"First-Passw0rd", "Password has been used before"},
	} {
		out, stderr, code := Run(t, r.Env(EnvOptions{}), old+"\n"+c.pw+"\n"+c.pw+"\n", kpasswd, UserName)
		if code == 0 || !strings.Contains(out+stderr, c.reason) {
			t.Errorf("kpasswd %q: exit %d, want the reason %q: %s %s", c.pw, code, c.reason, out, stderr)
		}
	}
	mustMITKinit(t, r.Env(EnvOptions{}), old, UserName)
	wantLog(t, r.Log, "msg=kpasswd", "result=CHANGED", `result="Password is too short"`)
}

// TestMITKinitExpiredPassword: with the password expired, kinit gets
// KDC_ERR_KEY_EXPIRED, prints "Password expired.  You must change it now.",
// reads the new password twice, changes it through kpasswd and logs in.
func TestMITKinitExpiredPassword(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	r.mustKDC(t, "", "principal", "modify", UserName, "--pw-expires", "now")
	env := r.Env(EnvOptions{})
	nw := "Changed-Passw0rd"
	out, stderr, code := mitKinit(t, env, UserPassword+"\n"+nw+"\n"+nw, UserName)
	if code != 0 {
		t.Fatalf("kinit with an expired password: exit %d: %s %s", code, out, stderr)
	}
	wantContains(t, "kinit output", out+stderr, "Password expired.  You must change it now.")
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	if _, _, code := mitKinit(t, r.Env(EnvOptions{}), UserPassword, UserName); code == 0 {
		t.Error("the old password still logs in")
	}
	mustMITKinit(t, r.Env(EnvOptions{}), nw, UserName)

	// Our own client walks through the same prompt.
	r.mustKDC(t, "", "principal", "modify", UserName, "--pw-expires", "now")
	kenv := r.Env(EnvOptions{})
	nw2 := "Changed-Again-Passw0rd"
	if _, stderr, code := r.Kclient(t, kenv, nw+"\n"+nw2+"\n"+nw2+"\n", "login", UserName); code != 0 ||
		!strings.Contains(stderr, "Password expired.  You must change it now.") {
		t.Fatalf("kclient login with an expired password: exit %d: %s", code, stderr)
	}
	mustMITKinit(t, r.Env(EnvOptions{}), nw2, UserName)
}
