package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FAST (RFC 6113) with MIT's tools: kinit -T ARMOR_CCACHE, the armor ticket
// from a host keytab login, as the MIT documentation sets it up.

// armorCache logs host/localhost in from the realm's keytab into a cache of
// its own and returns that cache's name, for kinit -T.
func armorCache(t *testing.T, r *Realm) string {
	t.Helper()
	env := r.Env(EnvOptions{})
	cc := "FILE:" + filepath.Join(filepath.Dir(CCachePath(env)), "armor.ccache")
	kinit := RequireTool(t, "kinit")
	if _, stderr, code := Run(t, env, "", kinit, "-k", "-t", r.Keytab, "-c", cc, r.Principal("host/localhost")); code != 0 {
		t.Fatalf("kinit -k -t %s host/localhost (armor): exit %d: %s", r.Keytab, code, strings.TrimSpace(stderr))
	}
	return cc
}

// TestMITKinitArmored: kinit -T logs alice in armored: the trace shows the
// request encoded into FAST, the FAST reply decoded and the reply key
// strengthened, with encrypted challenge as the pre-authentication and no
// fallback to an unarmored exchange.
func TestMITKinitArmored(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	armor := armorCache(t, r)
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-T", armor, UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	trace := Trace(env)
	wantContains(t, "KRB5_TRACE", trace,
		"FAST armor ccache: "+armor,
		"Upgrading to FAST due to presence of PA_FX_FAST in reply",
		"Encoding request body and padata into FAST request",
		"Decoding FAST response",
		"Preauth module encrypted_challenge (138)",
		"FAST reply key:",
	)
	if strings.Contains(trace, "encrypted_timestamp") {
		t.Errorf("kinit -T pre-authenticated with the timestamp, outside the armor:\n%s", trace)
	}
	wantContains(t, "KDC log", r.Log(), "client="+r.Principal(UserName))
}

// TestMITKinitArmoredWrongPassword: a wrong password inside FAST is
// "Password incorrect", from the armored KRB-ERROR.
func TestMITKinitArmoredWrongPassword(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	armor := armorCache(t, r)
	env := r.Env(EnvOptions{})
	_, stderr, code := mitKinit(t, env, "not-"+UserPassword, "-T", armor, UserName)
	if code == 0 {
		t.Fatal("kinit -T with a wrong password succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "Password incorrect")
	wantContains(t, "KRB5_TRACE", Trace(env), "Decoding FAST response")
	if _, err := os.Stat(CCachePath(env)); err == nil {
		t.Error("a failed kinit left a credential cache")
	}
}

// TestMITKvnoArmored: MIT kvno armors every TGS-REQ with the TGT (implicit
// armor, RFC 6113 §5.4.1.1); the KDC now answers inside the armor: the trace
// shows the FAST response decoded and the reply key strengthened.
func TestMITKvnoArmored(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, UserName)
	kvno := RequireTool(t, "kvno")
	if _, stderr, code := Run(t, env, "", kvno, "host/localhost"); code != 0 {
		t.Fatalf("kvno host/localhost: exit %d: %s", code, stderr)
	}
	wantContains(t, "KRB5_TRACE", Trace(env), "Decoding FAST response", "FAST reply key:")
	// An error inside the armor: MIT reports the inner code.
	_, stderr, code := Run(t, env, "", kvno, "nosuch/localhost")
	if code == 0 {
		t.Fatal("kvno for an unknown service succeeded")
	}
	wantContains(t, "kvno stderr", stderr, "not found in Kerberos database")
}

// TestMITKinitFASTRequired: with alice marked --requires-fast, an unarmored
// MIT kinit is refused with the policy error, kinit -T still logs in
// armored, and other principals still log in unarmored.
func TestMITKinitFASTRequired(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	out := r.mustKDC(t, "", "principal", "modify", UserName, "--requires-fast")
	wantContains(t, "principal modify", out, "requires FAST true")
	env := r.Env(EnvOptions{})
	_, stderr, code := mitKinit(t, env, UserPassword, UserName)
	if code == 0 {
		t.Fatal("unarmored kinit of a principal that requires FAST succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "KDC policy rejects request")
	wantContains(t, "KDC log", r.Log(), "result=FAST_REQUIRED")

	armor := armorCache(t, r) // host/localhost needs no FAST
	env = r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-T", armor, UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	wantContains(t, "KRB5_TRACE", Trace(env), "Upgrading to FAST due to presence of PA_FX_FAST in reply", "Decoding FAST response")
}

// TestHeimdalKinitArmored: Heimdal 7.8's kinit --fast-armor-cache logs alice
// in armored (it pre-authenticates with the encrypted timestamp inside FAST
// and uses no strengthen key, kdc/fast.go fastReply). Armor is proven by
// --requires-fast on alice: the unarmored Heimdal kinit is refused with the
// policy error, the armored one gets the TGT.
func TestHeimdalKinitArmored(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	out := r.mustKDC(t, "", "principal", "modify", UserName, "--requires-fast")
	wantContains(t, "principal modify", out, "requires FAST true")

	env := r.Env(EnvOptions{})
	_, stderr, code := heimdalKinitArgs(t, h, env, UserPassword, r.Principal(UserName))
	if code == 0 {
		t.Fatal("unarmored kinit.heimdal of a principal that requires FAST succeeded")
	}
	// Heimdal shows the KRB-ERROR's e-text rather than the code's text.
	wantContains(t, "kinit.heimdal stderr", stderr, "FAST_REQUIRED")
	wantContains(t, "KDC log", r.Log(), "result=FAST_REQUIRED")

	armor := armorCache(t, r) // host/localhost needs no FAST
	env = r.Env(EnvOptions{})
	if _, stderr, code := heimdalKinitArgs(t, h, env, UserPassword, "--fast-armor-cache="+armor, r.Principal(UserName)); code != 0 {
		t.Fatalf("kinit.heimdal --fast-armor-cache: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")

	// A wrong password inside the armor is still refused.
	env = r.Env(EnvOptions{})
	_, stderr, code = heimdalKinitArgs(t, h, env, "not-"+UserPassword, "--fast-armor-cache="+armor, r.Principal(UserName))
	if code == 0 {
		t.Fatal("kinit.heimdal --fast-armor-cache with a wrong password succeeded")
	}
	wantContains(t, "kinit.heimdal stderr", stderr, "Password incorrect")
}
