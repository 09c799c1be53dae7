package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Cross-realm trust (issue 14): a client of one realm gets a ticket for a
// service of another with MIT kvno and with kclient ticket, between two of our
// KDCs and between ours and a real MIT krb5kdc in both directions, and the
// service accepts it. The inter-realm keys come from one shared password,
// typed into `kdc trust add` (through the admin socket of the running `kdc
// serve`) and into MIT's `kadmin.local addprinc krbtgt/B@A`.

const (
	otherRealm    = "OTHER.TEST"
	trustPassword = "cross-realm shared secret 14"
)

// crossRealmEnv writes a client directory whose krb5.conf knows every realm of
// kdcs (realm -> HOST:PORT), with home as default_realm and domains mapped in
// [domain_realm], and returns the environment for client commands.
func crossRealmEnv(t *testing.T, home string, kdcs, domains map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n    default_realm = %s\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n", home)
	fmt.Fprintf(&b, "    rdns = false\n    dns_canonicalize_hostname = false\n[realms]\n")
	realms := make([]string, 0, len(kdcs))
	for r := range kdcs {
		realms = append(realms, r)
	}
	sort.Strings(realms)
	for _, r := range realms {
		fmt.Fprintf(&b, "    %s = {\n        kdc = %s\n    }\n", r, kdcs[r])
	}
	fmt.Fprintf(&b, "[domain_realm]\n")
	for d, r := range domains {
		fmt.Fprintf(&b, "    %s = %s\n", d, r)
	}
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := ClientEnviron(map[string]string{
		"KRB5_CONFIG":    conf,
		"KRB5CCNAME":     "FILE:" + filepath.Join(dir, "ccache"),
		"KRB5RCACHETYPE": "none",
		"KRB5_TRACE":     filepath.Join(dir, "trace.log"),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- krb5.conf ----\n%s\n---- KRB5_TRACE ----\n%s", b.String(), tail(Trace(env), 12000))
		}
	})
	return env
}

// trustOurs runs `kdc trust add OTHER --direction DIR` on our running realm,
// the shared password on stdin (never in argv).
func trustOurs(t *testing.T, r *Realm, other, direction string) {
	t.Helper()
	out := r.mustKDC(t, trustPassword+"\n", "trust", "add", other, "--direction", direction)
	if !strings.Contains(out, "added krbtgt/") {
		t.Fatalf("kdc trust add: %q", out)
	}
}

// trustMIT adds krbtgt/TO@FROM to an MIT realm with kadmin.local, the password
// typed at its prompt (stdin).
func trustMIT(t *testing.T, m *MITRealm, name string) {
	t.Helper()
	m.KadminLocal(t, trustPassword+"\n"+trustPassword+"\n", "addprinc "+name)
}

// kvnoValid runs MIT kvno -k KEYTAB SERVICE and requires "keytab entry valid".
func kvnoValid(t *testing.T, env []string, keytab, service string, extra ...string) string {
	t.Helper()
	kvno := RequireTool(t, "kvno")
	args := append(append([]string{}, extra...), "-k", keytab, service)
	stdout, stderr, code := Run(t, env, "", kvno, args...)
	if code != 0 || !strings.Contains(stdout, "keytab entry valid") {
		t.Fatalf("kvno %s: exit %d: %s%s", strings.Join(args, " "), code, stdout, strings.TrimSpace(stderr))
	}
	return stdout
}

// requireCrossTGT fails unless MIT klist shows the cross-realm TGT krbtgt/TO@FROM.
func requireCrossTGT(t *testing.T, env []string, to, from string) {
	t.Helper()
	want := "krbtgt/" + to + "@" + from
	if mitKlist(t, env).Ticket(want) == nil {
		klist := RequireTool(t, "klist")
		out, _, _ := Run(t, env, "", klist)
		t.Fatalf("klist does not list the cross-realm TGT %s:\n%s", want, out)
	}
}

// gssClientTo runs MIT gss-client against 127.0.0.1:port for a host-based service.
func gssClientTo(t *testing.T, env []string, port, service, msg string) string {
	t.Helper()
	gssClient := RequireTool(t, "gss-client")
	stdout, stderr, code := Run(t, env, "", gssClient, "-port", port, "127.0.0.1", service, msg)
	if code != 0 {
		t.Fatalf("gss-client %s: exit %d\n%s%s", service, code, stdout, stderr)
	}
	return stdout
}

// TestCrossRealmOursToOurs: alice@KERBKIT.TEST reaches host/svc.other.test of
// OTHER.TEST, a second realm of ours: MIT kvno (explicit realm, [domain_realm],
// and the referral our KDC gives for a name asked of KERBKIT.TEST), kclient
// ticket the same ways, and both services accept: kservice verifies MIT
// gss-client's AP-REQ, and kclient request authenticates to it.
func TestCrossRealmOursToOurs(t *testing.T) {
	a := NewRealm(t, RealmOptions{})
	b := NewRealm(t, RealmOptions{Name: otherRealm,
		Principals:       []Principal{{Name: "host/svc.other.test", RandomKey: true}},
		KeytabPrincipals: []string{"host/svc.other.test"}})
	trustOurs(t, a, otherRealm, "out")
	trustOurs(t, b, a.Name, "in")
	kdcs := map[string]string{a.Name: a.Addr, otherRealm: b.Addr}
	svc := "host/svc.other.test@" + otherRealm

	t.Run("mit-kvno", func(t *testing.T) {
		env := crossRealmEnv(t, a.Name, kdcs, map[string]string{".other.test": otherRealm})
		mustMITKinit(t, env, UserPassword, UserName)
		out := kvnoValid(t, env, b.Keytab, svc)
		wantContains(t, "kvno", out, svc+": kvno = 1")
		requireCrossTGT(t, env, otherRealm, a.Name)
		// -S: the realm from [domain_realm]; the cross-realm TGT is reused.
		kvnoValid(t, env, b.Keytab, "svc.other.test", "-S", "host")
	})
	t.Run("mit-kvno-referral", func(t *testing.T) {
		// No [domain_realm] entry: kvno asks KERBKIT.TEST, which refers it to OTHER.TEST.
		env := crossRealmEnv(t, a.Name, kdcs, nil)
		mustMITKinit(t, env, UserPassword, UserName)
		kvnoValid(t, env, b.Keytab, "host/svc.other.test")
		// MIT keeps referral TGTs out of the cache; its trace shows the one it followed.
		wantContains(t, "kvno trace", Trace(env), "Following referral TGT krbtgt/"+otherRealm+"@"+a.Name,
			"Received creds for desired service host/svc.other.test@"+otherRealm)
	})
	t.Run("kclient", func(t *testing.T) {
		env := crossRealmEnv(t, a.Name, kdcs, map[string]string{".other.test": otherRealm})
		mustKclient(t, env, UserPassword+"\n", "login", UserName)
		out := mustKclient(t, env, "", "ticket", "-k", b.Keytab, svc)
		wantContains(t, "kclient ticket", out, svc+": kvno = 1, keytab entry valid")
		requireCrossTGT(t, env, otherRealm, a.Name)
		// By referral, with the name asked of KERBKIT.TEST.
		out = mustKclient(t, env, "", "ticket", "-k", b.Keytab, "host/svc.other.test@"+a.Name)
		wantContains(t, "kclient ticket (referral)", out, "keytab entry valid")
	})
	t.Run("service-accepts", func(t *testing.T) {
		env := crossRealmEnv(t, a.Name, kdcs, map[string]string{".other.test": otherRealm})
		mustMITKinit(t, env, UserPassword, UserName)
		ks := startKservice(t, b.Keytab, "--service", "host@svc.other.test")
		out := gssClientTo(t, env, ks.gssPort, "host@svc.other.test", "hello across realms")
		wantContains(t, "gss-client", out, `"alice@`+a.Name+`" to "`+svc+`"`, "Signature verified")
		if _, err := ks.proc.WaitOutput(regexp.MustCompile(regexp.QuoteMeta("alice@"+a.Name)), StartTimeout); err != nil {
			t.Fatalf("kservice did not log the foreign client: %v", err)
		}
		kenv := crossRealmEnv(t, a.Name, kdcs, map[string]string{".other.test": otherRealm})
		mustKclient(t, kenv, UserPassword+"\n", "login", UserName)
		kclientRequestOK(t, kenv, "alice@"+a.Name, svc, svc, "--addr", "127.0.0.1:"+ks.gssPort, "--message", "kclient across realms")
	})
}

// TestCrossRealmMITToOurs: alice@MIT.TEST, logged in at a real MIT krb5kdc,
// reaches host/localhost of our realm: MIT's KDC seals krbtgt/KERBKIT.TEST@MIT.TEST
// (made with kadmin.local addprinc), ours opens it with the key `kdc trust add
// MIT.TEST --direction in` derived from the same password, and issues the
// service ticket for the foreign client; kservice accepts it.
func TestCrossRealmMITToOurs(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	o := NewRealm(t, RealmOptions{})
	trustMIT(t, m, "krbtgt/"+o.Name+"@"+m.Name)
	trustOurs(t, o, m.Name, "in")
	kdcs := map[string]string{m.Name: m.Addr, o.Name: o.Addr}
	domains := map[string]string{"localhost": o.Name}
	svc := "host/localhost@" + o.Name

	t.Run("mit-kvno", func(t *testing.T) {
		env := crossRealmEnv(t, m.Name, kdcs, domains)
		mustMITKinit(t, env, UserPassword, UserName)
		kvnoValid(t, env, o.Keytab, svc)
		requireCrossTGT(t, env, o.Name, m.Name)
	})
	t.Run("kclient", func(t *testing.T) {
		env := crossRealmEnv(t, m.Name, kdcs, domains)
		mustKclient(t, env, UserPassword+"\n", "login", UserName)
		out := mustKclient(t, env, "", "ticket", "-k", o.Keytab, svc)
		wantContains(t, "kclient ticket", out, "keytab entry valid")
	})
	t.Run("service-accepts", func(t *testing.T) {
		env := crossRealmEnv(t, m.Name, kdcs, domains)
		mustMITKinit(t, env, UserPassword, UserName)
		ks := startKservice(t, o.Keytab, "--service", "host@localhost")
		out := gssClientTo(t, env, ks.gssPort, "host@localhost", "from MIT.TEST")
		wantContains(t, "gss-client", out, `"alice@`+m.Name+`" to "`+svc+`"`, "Signature verified")
	})
	t.Run("wrong-password", func(t *testing.T) {
		// A realm whose inter-realm key does not match: our KDC says so.
		o2 := NewRealm(t, RealmOptions{})
		o2.mustKDC(t, "a different shared password\n", "trust", "add", m.Name, "--direction", "in")
		env := crossRealmEnv(t, m.Name, map[string]string{m.Name: m.Addr, o.Name: o2.Addr}, domains)
		mustMITKinit(t, env, UserPassword, UserName)
		kvno := RequireTool(t, "kvno")
		_, stderr, code := Run(t, env, "", kvno, svc)
		if code == 0 {
			t.Fatal("kvno succeeded with mismatched inter-realm keys")
		}
		wantContains(t, "kvno stderr", stderr, "integrity")
		wantLog(t, o2.Log, "INTER_REALM_KEY_MISMATCH")
	})
}

// TestCrossRealmOursToMIT: alice of our realm reaches host/localhost of a real
// MIT realm: our KDC seals krbtgt/MIT.TEST@KERBKIT.TEST (kdc trust add
// --direction out), MIT's opens it (kadmin.local addprinc of the same name and
// password) and issues the service ticket; MIT's gss-server accepts it from
// kclient request.
func TestCrossRealmOursToMIT(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	o := NewRealm(t, RealmOptions{})
	trustMIT(t, m, "krbtgt/"+m.Name+"@"+o.Name)
	trustOurs(t, o, m.Name, "out")
	kdcs := map[string]string{m.Name: m.Addr, o.Name: o.Addr}
	domains := map[string]string{"localhost": m.Name}
	svc := "host/localhost@" + m.Name

	t.Run("mit-kvno", func(t *testing.T) {
		env := crossRealmEnv(t, o.Name, kdcs, domains)
		mustMITKinit(t, env, UserPassword, UserName)
		kvnoValid(t, env, m.Keytab, svc)
		requireCrossTGT(t, env, m.Name, o.Name)
	})
	t.Run("kclient", func(t *testing.T) {
		env := crossRealmEnv(t, o.Name, kdcs, domains)
		mustKclient(t, env, UserPassword+"\n", "login", UserName)
		out := mustKclient(t, env, "", "ticket", "-k", m.Keytab, svc)
		wantContains(t, "kclient ticket", out, "keytab entry valid")
		requireCrossTGT(t, env, m.Name, o.Name)
	})
	t.Run("service-accepts", func(t *testing.T) {
		env := crossRealmEnv(t, o.Name, kdcs, domains)
		mustKclient(t, env, UserPassword+"\n", "login", UserName)
		g := startGSSServer(t, env, m.Keytab, "host@localhost")
		kclientRequestOK(t, env, "alice@"+o.Name, svc, svc, "--addr", g.Addr, "--message", "from kerbkit to MIT")
		g.waitLog(t, `Received message: "from kerbkit to MIT"`)
	})
}

// TestCrossRealmEnctypes: a trust made with one enctype only, on both sides
// (kdc trust add --enctypes, kadmin addprinc -e), works in both directions with
// MIT: the cross-realm TGTs are sealed in that enctype.
func TestCrossRealmEnctypes(t *testing.T) {
	for _, enctype := range []string{"aes128-cts-hmac-sha1-96", "aes256-cts-hmac-sha384-192"} {
		t.Run(enctype, func(t *testing.T) {
			m := NewMITRealm(t, MITRealmOptions{})
			o := NewRealm(t, RealmOptions{})
			for _, name := range []string{"krbtgt/" + m.Name + "@" + o.Name, "krbtgt/" + o.Name + "@" + m.Name} {
				m.KadminLocal(t, trustPassword+"\n"+trustPassword+"\n", "addprinc -e "+enctype+":normal "+name)
			}
			o.mustKDC(t, trustPassword+"\n", "trust", "add", m.Name, "--enctypes", enctype)
			kdcs := map[string]string{m.Name: m.Addr, o.Name: o.Addr}
			// Ours to MIT.
			env := crossRealmEnv(t, o.Name, kdcs, nil)
			mustMITKinit(t, env, UserPassword, UserName)
			kvnoValid(t, env, m.Keytab, "host/localhost@"+m.Name)
			if tk := mitKlist(t, env).Ticket("krbtgt/" + m.Name + "@" + o.Name); tk == nil || !strings.Contains(tk.TicketKey, enctype) {
				t.Errorf("cross-realm TGT to %s: %+v, want a ticket of %s", m.Name, tk, enctype)
			}
			// MIT to ours.
			env = crossRealmEnv(t, m.Name, kdcs, nil)
			mustMITKinit(t, env, UserPassword, UserName)
			kvnoValid(t, env, o.Keytab, "host/localhost@"+o.Name)
		})
	}
}

// TestCrossRealmKDCDomainRealm: hosts whose domain is not named after their
// realm are referred by `kdc serve --domain-realm .elsewhere.test=OTHER.TEST`,
// as MIT's KDC does with its [domain_realm]; the clients know nothing of the
// host's realm (MIT kvno -S, kclient ticket -S).
func TestCrossRealmKDCDomainRealm(t *testing.T) {
	a := NewRealm(t, RealmOptions{ServeArgs: []string{"--domain-realm", ".elsewhere.test=" + otherRealm}})
	b := NewRealm(t, RealmOptions{Name: otherRealm,
		Principals:       []Principal{{Name: "host/web.elsewhere.test", RandomKey: true}},
		KeytabPrincipals: []string{"host/web.elsewhere.test"}})
	trustOurs(t, a, otherRealm, "out")
	trustOurs(t, b, a.Name, "in")
	kdcs := map[string]string{a.Name: a.Addr, otherRealm: b.Addr}

	env := crossRealmEnv(t, a.Name, kdcs, nil)
	mustMITKinit(t, env, UserPassword, UserName)
	kvnoValid(t, env, b.Keytab, "web.elsewhere.test", "-S", "host")
	wantContains(t, "kvno trace", Trace(env), "Following referral TGT krbtgt/"+otherRealm+"@"+a.Name)

	kenv := crossRealmEnv(t, a.Name, kdcs, nil)
	mustKclient(t, kenv, UserPassword+"\n", "login", UserName)
	out := mustKclient(t, kenv, "", "ticket", "-k", b.Keytab, "-S", "host", "web.elsewhere.test")
	wantContains(t, "kclient ticket -S", out, "keytab entry valid")
}

// TestCrossRealmHeimdal: Heimdal's kgetcred, a second client implementation,
// crosses from our KERBKIT.TEST to our OTHER.TEST ([domain_realm] names the
// service's realm), and MIT kvno -k accepts the ticket it stored.
func TestCrossRealmHeimdal(t *testing.T) {
	h := Heimdal(t)
	a := NewRealm(t, RealmOptions{})
	b := NewRealm(t, RealmOptions{Name: otherRealm,
		Principals:       []Principal{{Name: "host/svc.other.test", RandomKey: true}},
		KeytabPrincipals: []string{"host/svc.other.test"}})
	trustOurs(t, a, otherRealm, "out")
	trustOurs(t, b, a.Name, "in")
	env := crossRealmEnv(t, a.Name, map[string]string{a.Name: a.Addr, otherRealm: b.Addr}, map[string]string{".other.test": otherRealm})
	mustHeimdalKinit(t, h, env, UserPassword, a.Principal(UserName))
	svc := "host/svc.other.test@" + otherRealm
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kgetcred"), svc); code != 0 {
		t.Fatalf("kgetcred %s: exit %d: %s", svc, code, strings.TrimSpace(stderr))
	}
	tgsRequireLog(t, b.Log, "TGS_REQ", "client=alice@"+a.Name, "service="+svc, "result=ISSUE")
	kvno := RequireTool(t, "kvno")
	stdout, stderr, code := Run(t, env, "", kvno, "-k", b.Keytab, svc)
	if code != 0 || !strings.Contains(stdout, "keytab entry valid") {
		t.Fatalf("kvno -k on Heimdal's cache: exit %d: %s%s", code, stdout, stderr)
	}
}
