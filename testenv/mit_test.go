package testenv

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MIT krb5 clients (krb5-user) against our KDC.

// TestMITKinitUDP: kinit with the password on stdin over UDP; klist -f -e shows
// the TGT with an AES enctype and flags I (initial) and A (pre-authenticated).
// kinit checked the reply's PA-REQ-ENC-PA-REP checksum over its request and
// learned that FAST is available (RFC 6806 §11).
func TestMITKinitUDP(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	trace := Trace(env)
	wantContains(t, "KRB5_TRACE", trace, "Sending initial UDP request to dgram "+r.Addr, "FAST negotiation: available")
	if strings.Contains(trace, "Initiating TCP connection") {
		t.Errorf("kinit fell back to TCP (RESPONSE_TOO_BIG?):\n%s", trace)
	}
}

// TestMITKinitTCP: the same over TCP (udp_preference_limit = 1), asserted from
// KRB5_TRACE; the checksum covers the request without its length prefix.
func TestMITKinitTCP(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{ForceTCP: true})
	mustMITKinit(t, env, UserPassword, UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	trace := Trace(env)
	wantContains(t, "KRB5_TRACE", trace, "Sending TCP request to stream "+r.Addr, "Received answer", "FAST negotiation: available")
	if strings.Contains(trace, "UDP request") {
		t.Errorf("kinit used UDP despite udp_preference_limit = 1:\n%s", trace)
	}
}

// TestMITKinitForwardable: kinit -f gives flag F.
func TestMITKinitForwardable(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-f", UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "FIA")
}

// TestMITKinitRenewable: kinit -r 2d gives flag R and a "renew until" line.
func TestMITKinitRenewable(t *testing.T) {
	r := NewRealm(t, RealmOptions{MaxRenew: "7d"})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-r", "2d", UserName)
	tgt := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "RIA")
	if tgt.RenewUntil == "" {
		t.Errorf("klist shows no \"renew until\" for a renewable TGT: %+v", tgt)
	}
}

// TestMITKinitWrongPassword: KDC_ERR_PREAUTH_FAILED → "Password incorrect".
func TestMITKinitWrongPassword(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	_, stderr, code := mitKinit(t, env, "not-"+UserPassword, UserName)
	if code == 0 {
		t.Fatal("kinit with a wrong password succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "Password incorrect")
	if _, err := os.Stat(CCachePath(env)); err == nil {
		t.Error("a failed kinit left a credential cache")
	}
}

// TestMITKinitUnknownUser: KDC_ERR_C_PRINCIPAL_UNKNOWN → "not found in Kerberos
// database".
func TestMITKinitUnknownUser(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	_, stderr, code := mitKinit(t, r.Env(EnvOptions{}), "whatever", "nobody")
	if code == 0 {
		t.Fatal("kinit for an unknown user succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "not found in Kerberos database")
}

// TestMITKinitKeytab: MIT kinit -k -t with the keytab `kdc keytab` exported for
// host/localhost; klist -k reads the keytab and klist shows the TGT.
func TestMITKinitKeytab(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	klist := RequireTool(t, "klist")
	stdout, stderr, code := Run(t, env, "", klist, "-k", "-e", r.Keytab)
	if code != 0 {
		t.Fatalf("klist -k -e %s: exit %d: %s", r.Keytab, code, stderr)
	}
	wantContains(t, "klist -k", stdout, r.Principal("host/localhost"), r.Principal("HTTP/localhost"), "aes256-cts-hmac-sha1-96")

	kinit := RequireTool(t, "kinit")
	if _, stderr, code := Run(t, env, "", kinit, "-k", "-t", r.Keytab, r.Principal("host/localhost")); code != 0 {
		t.Fatalf("kinit -k -t %s host/localhost: exit %d: %s", r.Keytab, code, strings.TrimSpace(stderr))
	}
	requireTGT(t, mitKlist(t, env), r.Principal("host/localhost"), r.Name, "IA")
}

// TestMITKinitLiveAdmin: `kdc principal add/disable/enable/passwd/show/delete`
// and `kdc keytab` while `kdc serve` runs on the same database take effect on
// the next request, without a restart; a disabled principal gets
// KDC_ERR_CLIENT_REVOKED. Finally the KDC stops cleanly on SIGTERM.
func TestMITKinitLiveAdmin(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	const bob, bobPW = "bob", "bob-Pw-31415"
	pid := r.Process().PID()

	env := r.Env(EnvOptions{})
	if _, stderr, code := mitKinit(t, env, bobPW, bob); code == 0 {
		t.Fatal("kinit bob succeeded before bob was added")
	} else {
		wantContains(t, "kinit stderr", stderr, "not found in Kerberos database")
	}

	r.AddPrincipal(t, bob, bobPW)
	stdout, _, code := r.KDC(t, "", "principal", "list")
	if code != 0 || !strings.Contains(stdout, bob) {
		t.Errorf("kdc principal list (exit %d) does not list %s:\n%s", code, bob, stdout)
	}
	mustMITKinit(t, env, bobPW, bob)
	requireTGT(t, mitKlist(t, env), r.Principal(bob), r.Name, "IA")

	r.mustKDC(t, "", "principal", "disable", bob)
	_, stderr, code := mitKinit(t, r.Env(EnvOptions{}), bobPW, bob)
	if code == 0 {
		t.Error("kinit for a disabled principal succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "Client's credentials have been revoked")

	r.mustKDC(t, "", "principal", "enable", bob)
	env = r.Env(EnvOptions{})
	mustMITKinit(t, env, bobPW, bob)
	requireTGT(t, mitKlist(t, env), r.Principal(bob), r.Name, "IA")

	// passwd while serving: the old password stops working at once.
	const bobPW2 = "bob-Pw-27182"
	r.mustKDC(t, bobPW2+"\n", "principal", "passwd", bob)
	_, stderr, code = mitKinit(t, r.Env(EnvOptions{}), bobPW, bob)
	if code == 0 {
		t.Error("kinit with bob's old password succeeded after kdc principal passwd")
	}
	wantContains(t, "kinit stderr", stderr, "Password incorrect")
	mustMITKinit(t, r.Env(EnvOptions{}), bobPW2, bob)

	// show while serving names the principal.
	stdout = r.mustKDC(t, "", "principal", "show", bob)
	wantContains(t, "kdc principal show", stdout, bob)

	// A service added and exported to a keytab while serving works at once.
	svc := "svc/localhost"
	r.AddRandomPrincipal(t, svc)
	kt := filepath.Join(t.TempDir(), "svc.keytab")
	r.ExportKeytab(t, kt, svc)
	kinit := RequireTool(t, "kinit")
	env = r.Env(EnvOptions{})
	if _, stderr, code := Run(t, env, "", kinit, "-k", "-t", kt, r.Principal(svc)); code != 0 {
		t.Errorf("kinit -k with a keytab exported while serving: exit %d: %s", code, strings.TrimSpace(stderr))
	} else {
		requireTGT(t, mitKlist(t, env), r.Principal(svc), r.Name, "IA")
	}

	// delete while serving: the principal is unknown at once.
	r.mustKDC(t, "", "principal", "delete", bob)
	_, stderr, code = mitKinit(t, r.Env(EnvOptions{}), bobPW2, bob)
	if code == 0 {
		t.Error("kinit for a deleted principal succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "not found in Kerberos database")

	if r.Process().PID() != pid || r.Process().Exited() {
		t.Errorf("kdc serve (pid %d) was restarted or exited during the admin commands", pid)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("kdc serve did not exit cleanly on SIGTERM: %s", describeExit(err))
	}
}

// devExportRE matches `export KRB5_CONFIG=…` and `export KRB5CCNAME=…`.
var (
	devConfigRE   = regexp.MustCompile(`export KRB5_CONFIG=("[^"]*"|'[^']*'|\S+)`)
	devCCacheRE   = regexp.MustCompile(`export KRB5CCNAME=("[^"]*"|'[^']*'|\S+)`)
	devPasswordRE = regexp.MustCompile(`(?i)password\s*(?:[:=]|\sis\s)\s*("[^"]*"|'[^']*'|[^\s,;)]+)`)
	devListenRE   = regexp.MustCompile(`(127\.0\.0\.1:[0-9]+)`)
)

// TestMITKdcDev runs `kdc dev` as a new user would: parse the printed export
// lines and password, kinit alice with MIT kinit, klist shows the TGT; then
// SIGINT stops it with exit 0 within a bounded time.
func TestMITKdcDev(t *testing.T) {
	kdc, _ := Binaries(t)
	dir := t.TempDir()
	p, err := StartProcess(ClientEnviron(nil), kdc, "dev", "--dir", dir, "--listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("---- kdc dev output ----\n%s", p.Output())
		}
	})
	// The exports and the password may come in any order; wait for all three.
	var conf, ccache, password string
	for _, re := range []*regexp.Regexp{devConfigRE, devCCacheRE, devPasswordRE} {
		m, err := p.WaitOutput(re, StartTimeout)
		if err != nil {
			t.Fatalf("kdc dev: %v", err)
		}
		v := strings.Trim(m[1], `"'`)
		switch re {
		case devConfigRE:
			conf = v
		case devCCacheRE:
			ccache = v
		default:
			password = v
		}
	}
	t.Logf("kdc dev printed KRB5_CONFIG=%s KRB5CCNAME=%s (password %d chars)", conf, ccache, len(password))
	if strings.Contains(strings.ToLower(password), "password") || password == "" {
		t.Fatalf("could not find alice's password in kdc dev output:\n%s", p.Output())
	}
	for _, f := range []string{filepath.Join(dir, "krb5.conf"), filepath.Join(dir, "service.keytab")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kdc dev --dir %s: %v", dir, err)
		}
	}
	if _, err := os.Stat(conf); err != nil {
		t.Fatalf("exported KRB5_CONFIG: %v", err)
	}
	if m := devListenRE.FindString(readFile(conf)); m == "" || strings.HasSuffix(m, ":0") {
		t.Errorf("%s names no bound 127.0.0.1 KDC address:\n%s", conf, readFile(conf))
	}

	env := ClientEnviron(map[string]string{
		"KRB5_CONFIG":    conf,
		"KRB5CCNAME":     ccache,
		"KRB5RCACHETYPE": "none",
		"KRB5_TRACE":     filepath.Join(t.TempDir(), "trace.log"),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- KRB5_TRACE ----\n%s", tail(Trace(env), 12000))
		}
	})
	mustMITKinit(t, env, password, UserName)
	k := mitKlist(t, env)
	realm := defaultRealm(readFile(conf))
	if realm == "" {
		t.Fatalf("no default_realm in %s", conf)
	}
	requireTGT(t, k, UserName+"@"+realm, realm, "IA")

	start := time.Now()
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited, werr := p.Wait(StopGrace)
	if !exited {
		t.Fatalf("kdc dev still running %v after SIGINT", StopGrace)
	}
	if werr != nil {
		t.Errorf("kdc dev exited with %s after SIGINT, want exit 0", describeExit(werr))
	}
	t.Logf("kdc dev exited %v after SIGINT", time.Since(start).Round(time.Millisecond))
}

// defaultRealm returns default_realm from a krb5.conf.
func defaultRealm(conf string) string {
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "default_realm" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestMITKvno (beyond the login requirements: the TGS exchange): MIT kvno gets a
// service ticket for host/localhost with the TGT from our KDC (FAST-armored
// TGS-REQ, subkey), and `kvno -k` decrypts it with the keytab from `kdc keytab`.
func TestMITKvno(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, UserName)
	kvno := RequireTool(t, "kvno")
	stdout, stderr, code := Run(t, env, "", kvno, "-k", r.Keytab, "host/localhost")
	if code != 0 {
		t.Fatalf("kvno -k %s host/localhost: exit %d: %s", r.Keytab, code, strings.TrimSpace(stderr))
	}
	wantContains(t, "kvno output", stdout, r.Principal("host/localhost")+": kvno ", "keytab entry valid")
	k := mitKlist(t, env)
	if st := k.Ticket(r.Principal("host/localhost")); st == nil {
		t.Errorf("klist: no host/localhost ticket in %+v", k.Tickets)
	} else if !strings.HasPrefix(st.TicketKey, "aes") {
		t.Errorf("service ticket enctype %q, want AES", st.TicketKey)
	}
}
