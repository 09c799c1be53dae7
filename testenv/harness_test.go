package testenv

import (
	"path/filepath"
	"strings"
	"testing"
)

// These tests prove the harness itself with peers only: MIT and Heimdal
// clients against a real MIT krb5kdc. When one of them fails, the harness (or
// the machine) is at fault, not our code.

func TestParseKlist(t *testing.T) {
	out := "Ticket cache: FILE:/tmp/x/ccache\nDefault principal: alice@KRB.TEST\n\n" +
		"Valid starting     Expires            Service principal\n" +
		"11/25/26 02:25:07  11/25/26 12:25:07  krbtgt/KRB.TEST@KRB.TEST\n" +
		"\trenew until 11/27/26 02:25:07, Flags: FRIA\n" +
		"\tEtype (skey, tkt): aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96 \n" +
		"11/25/26 02:25:08  11/25/26 12:25:07  host/localhost@KRB.TEST\n" +
		"\tFlags: FAT, Etype (skey, tkt): aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96 \n" +
		"11/25/26 02:25:09  11/25/26 12:25:07  HTTP/localhost@KRB.TEST\n" +
		"\trenew until 11/27/26 02:25:07, Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96 \n"
	k, err := ParseKlist(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Klist{Cache: "FILE:/tmp/x/ccache", Principal: "alice@KRB.TEST", Tickets: []KlistTicket{
		{Start: "11/25/26 02:25:07", Expires: "11/25/26 12:25:07", Server: "krbtgt/KRB.TEST@KRB.TEST",
			RenewUntil: "11/27/26 02:25:07", Flags: "FRIA", SessionKey: "aes256-cts-hmac-sha1-96", TicketKey: "aes128-cts-hmac-sha1-96"},
		{Start: "11/25/26 02:25:08", Expires: "11/25/26 12:25:07", Server: "host/localhost@KRB.TEST", Flags: "FAT",
			SessionKey: "aes128-cts-hmac-sha1-96", TicketKey: "aes256-cts-hmac-sha1-96"},
		{Start: "11/25/26 02:25:09", Expires: "11/25/26 12:25:07", Server: "HTTP/localhost@KRB.TEST",
			RenewUntil: "11/27/26 02:25:07", SessionKey: "aes256-cts-hmac-sha1-96", TicketKey: "aes256-cts-hmac-sha1-96"},
	}}
	if k.Cache != want.Cache || k.Principal != want.Principal || len(k.Tickets) != len(want.Tickets) {
		t.Fatalf("ParseKlist = %+v, want %+v", k, want)
	}
	for i := range want.Tickets {
		if k.Tickets[i] != want.Tickets[i] {
			t.Errorf("ticket %d = %+v, want %+v", i, k.Tickets[i], want.Tickets[i])
		}
	}
	if !k.Tickets[0].HasFlags("IA") || k.Tickets[0].HasFlags("T") {
		t.Errorf("HasFlags wrong for %q", k.Tickets[0].Flags)
	}
	if _, err := ParseKlist("klist: No credentials cache found\n"); err == nil {
		t.Error("ParseKlist accepted output without a default principal")
	}
}

func TestKRB5Conf(t *testing.T) {
	c := KRB5Conf("R.TEST", "127.0.0.1:9", EnvOptions{ForceTCP: true, Forwardable: true, RenewLifetime: "7d"})
	for _, s := range []string{"default_realm = R.TEST", "dns_lookup_kdc = false", "rdns = false",
		"dns_canonicalize_hostname = false", "udp_preference_limit = 1", "forwardable = true",
		"renew_lifetime = 7d", "kdc = 127.0.0.1:9", "localhost = R.TEST"} {
		if !strings.Contains(c, s) {
			t.Errorf("krb5.conf lacks %q:\n%s", s, c)
		}
	}
	if strings.Contains(KRB5Conf("R", "x:1", EnvOptions{}), "udp_preference_limit") {
		t.Error("udp_preference_limit set without ForceTCP")
	}
}

// TestMITHarnessKinit: MIT kinit/klist/kvno against the MIT KDC of the harness,
// over UDP and TCP.
func TestMITHarnessKinit(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	for _, tcp := range []bool{false, true} {
		name := map[bool]string{false: "udp", true: "tcp"}[tcp]
		t.Run(name, func(t *testing.T) {
			env := m.Env(EnvOptions{ForceTCP: tcp, Forwardable: true})
			mustMITKinit(t, env, UserPassword, "-r", "2d", m.Principal(UserName))
			tgt := requireTGT(t, mitKlist(t, env), m.Principal(UserName), m.Name, "FRIA")
			if tgt.RenewUntil == "" {
				t.Error("no renew until")
			}
			trace := Trace(env)
			if tcp {
				wantContains(t, "KRB5_TRACE", trace, "Sending TCP request to stream "+m.Addr)
			} else {
				wantContains(t, "KRB5_TRACE", trace, "Sending initial UDP request to dgram "+m.Addr)
			}
			kvno := RequireTool(t, "kvno")
			stdout, stderr, code := Run(t, env, "", kvno, "-k", m.Keytab, "host/localhost")
			if code != 0 {
				t.Fatalf("kvno -k: exit %d: %s", code, stderr)
			}
			wantContains(t, "kvno output", stdout, "keytab entry valid")
		})
	}
	t.Run("wrong-password", func(t *testing.T) {
		_, stderr, code := mitKinit(t, m.Env(EnvOptions{}), "not-the-password", UserName)
		if code == 0 {
			t.Fatal("kinit with a wrong password succeeded")
		}
		wantContains(t, "kinit stderr", stderr, "Password incorrect")
	})
	t.Run("keytab", func(t *testing.T) {
		env := m.Env(EnvOptions{})
		kinit := RequireTool(t, "kinit")
		if _, stderr, code := Run(t, env, "", kinit, "-k", "-t", m.Keytab, m.Principal("host/localhost")); code != 0 {
			t.Fatalf("kinit -k: exit %d: %s", code, stderr)
		}
		requireTGT(t, mitKlist(t, env), m.Principal("host/localhost"), m.Name, "IA")
	})
}

// TestHeimdalHarnessKinit: Heimdal kinit against the MIT KDC; proves the
// download, extraction and wrappers.
func TestHeimdalHarnessKinit(t *testing.T) {
	h := Heimdal(t)
	m := NewMITRealm(t, MITRealmOptions{})
	env := m.Env(EnvOptions{})
	mustHeimdalKinit(t, h, env, UserPassword, m.Principal(UserName))
	stdout, stderr, code := Run(t, env, "", filepath.Join(h, "klist.heimdal"))
	if code != 0 {
		t.Fatalf("heimtools klist: exit %d: %s", code, stderr)
	}
	wantContains(t, "Heimdal klist", stdout, m.Principal(UserName), "krbtgt/"+m.Name+"@"+m.Name)
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kgetcred"), m.Principal("host/localhost")); code != 0 {
		t.Fatalf("kgetcred: exit %d: %s", code, stderr)
	}
	requireTGT(t, mitKlist(t, env), m.Principal(UserName), m.Name, "IA")

	_, stderr, code = heimdalKinit(t, h, m.Env(EnvOptions{}), "wrong-"+UserPassword, m.Principal(UserName))
	if code == 0 {
		t.Fatal("kinit.heimdal with a wrong password succeeded")
	}
	wantContains(t, "kinit.heimdal stderr", stderr, "Password incorrect")
}
