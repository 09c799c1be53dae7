package client

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

func writeConf(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeConf(t, `# comment
[libdefaults]
    default_realm = EXAMPLE.ORG
    udp_preference_limit = 1
    ticket_lifetime = 10h
    renew_lifetime = 7d
    forwardable = true
    proxiable = yes
    clockskew = 120
    default_tkt_enctypes = aes128-cts-hmac-sha1-96 aes256-cts-hmac-sha1-96 aes256-cts-hmac-sha384-192
    permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
    EXAMPLE.ORG = {
        kdc = kdc1.example.org
        kdc = 127.0.0.1:18088
        admin_server = kdc1.example.org
    }
    OTHER.ORG = {
        kdc = [::1]:750
    }

[domain_realm]
    .example.org = EXAMPLE.ORG
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Realm != "EXAMPLE.ORG" || c.UDPPreferenceLimit != 1 || c.TicketLifetime != 10*time.Hour ||
		c.RenewLifetime != 7*24*time.Hour || !c.Forwardable || !c.Proxiable || c.Clockskew != 2*time.Minute {
		t.Errorf("config %+v", c)
	}
	// default_tkt_enctypes order, limited by permitted_enctypes.
	if want := []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96}; !slices.Equal(c.Etypes, want) {
		t.Errorf("etypes %v, want %v", c.Etypes, want)
	}
	kdcs, err := c.KDCsFor("EXAMPLE.ORG")
	if err != nil || !slices.Equal(kdcs, []string{"kdc1.example.org:88", "127.0.0.1:18088"}) {
		t.Errorf("kdcs %v %v", kdcs, err)
	}
	if got := c.KDCs["OTHER.ORG"]; !slices.Equal(got, []string{"[::1]:750"}) {
		t.Errorf("OTHER.ORG kdcs %v", got)
	}
	if c.Timeout != DefaultTimeout {
		t.Errorf("timeout %v", c.Timeout)
	}
	if _, err := c.KDCsFor("NOPE"); err == nil {
		t.Error("KDCsFor unknown realm: no error")
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(writeConf(t, "[libdefaults]\n  dns_lookup_kdc = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Realm != "" || c.UDPPreferenceLimit != 1465 || c.TicketLifetime != 24*time.Hour || c.RenewLifetime != 0 ||
		c.Forwardable || c.Proxiable || c.Clockskew != 5*time.Minute || len(c.KDCs) != 0 {
		t.Errorf("defaults %+v", c)
	}
	if want := []int32{18, 17, 20, 19}; !slices.Equal(c.Etypes, want) {
		t.Errorf("default etypes %v, want %v", c.Etypes, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for name, conf := range map[string]string{
		"udp limit too big":  "[libdefaults]\n udp_preference_limit = 40000\n",
		"bad lifetime":       "[libdefaults]\n ticket_lifetime = forever\n",
		"bad kdc port":       "[realms]\n R = {\n  kdc = host:99999\n }\n",
		"no usable enctype":  "[libdefaults]\n default_tkt_enctypes = des-cbc-crc\n",
		"nothing permitted":  "[libdefaults]\n default_tkt_enctypes = aes128-cts\n permitted_enctypes = aes256-cts\n",
		"unbalanced realms":  "[realms]\n R = {\n  kdc = a:88\n }\n }\n",
		"bad boolean":        "[libdefaults]\n forwardable = perhaps\n",
		"line without equal": "[libdefaults]\n forwardable\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(writeConf(t, conf))
			if err == nil || !strings.HasPrefix(err.Error(), "client: ") {
				t.Errorf("err = %v", err)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.conf")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestConfigFromFlagsOnly(t *testing.T) {
	// What kclient --realm R --kdc host:port builds without any krb5.conf.
	c := &Config{Realm: "R", KDCs: map[string][]string{"R": {"127.0.0.1:8888", "kdc.r"}}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.KDCs["R"], []string{"127.0.0.1:8888", "kdc.r:88"}) {
		t.Errorf("kdcs %v", c.KDCs["R"])
	}
	cl, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	cl.Config.KDCs["R"][0] = "changed:1"
	if c.KDCs["R"][0] != "127.0.0.1:8888" {
		t.Error("New does not copy the config")
	}
	for name, mod := range map[string]func(*Config){
		"bad realm":     func(c *Config) { c.Realm = "A B" },
		"bad kdc":       func(c *Config) { c.KDCs["R"] = []string{"no-port-here:"} },
		"negative life": func(c *Config) { c.TicketLifetime = -time.Hour },
		"bad etype":     func(c *Config) { c.Etypes = []int32{1} },
		"udp limit":     func(c *Config) { c.UDPPreferenceLimit = 40000 },
		"renew":         func(c *Config) { c.RenewLifetime = -1 },
	} {
		bad := c.Clone()
		mod(bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"3600", time.Hour},
		{"10h", 10 * time.Hour},
		{"1d", 24 * time.Hour},
		{"30m", 30 * time.Minute},
		{"7d", 7 * 24 * time.Hour},
		{"45s", 45 * time.Second},
		{"1d12h", 36 * time.Hour},
		{"1h30m10s", time.Hour + 30*time.Minute + 10*time.Second},
		{"1d 2h", 26 * time.Hour},
		{" 2h ", 2 * time.Hour},
		{"2:30", 2*time.Hour + 30*time.Minute},
		{"2:30:15", 2*time.Hour + 30*time.Minute + 15*time.Second},
		{"1d2:00:00", 26 * time.Hour},
		{"0", 0},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "h", "10x", "-5", "-1h", "1h1d", "1h1h", "10 h", "2:3", "2:60", "1:2:3:4",
		"99999999999", "30000d", "1.5h", "10hh"} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", bad, got)
		}
	}
}

func TestParsePrincipal(t *testing.T) {
	for _, tc := range []struct {
		in, def, want string
		comps         []string
		nt            int32
	}{
		{"alice", "R", "alice@R", []string{"alice"}, 1},
		{"alice@OTHER", "R", "alice@OTHER", []string{"alice"}, 1},
		{"host/localhost@R", "", "host/localhost@R", []string{"host", "localhost"}, 1},
		{"krbtgt/R", "R", "krbtgt/R@R", []string{"krbtgt", "R"}, 2},
		{`a\/b@R`, "", `a\/b@R`, []string{"a/b"}, 1},
		{`a\@b`, "R", `a\@b@R`, []string{"a@b"}, 1},
	} {
		p, err := ParsePrincipal(tc.in, tc.def)
		if err != nil {
			t.Errorf("ParsePrincipal(%q): %v", tc.in, err)
			continue
		}
		if p.String() != tc.want || !slices.Equal(p.Components, tc.comps) || p.Type != tc.nt {
			t.Errorf("ParsePrincipal(%q) = %s %v type %d", tc.in, p, p.Components, p.Type)
		}
	}
	for _, bad := range []string{"", "alice@", "a//b@R", "/a@R", `alice\`, "a@B@C"} {
		if p, err := ParsePrincipal(bad, "R"); err == nil {
			t.Errorf("ParsePrincipal(%q) = %s, want error", bad, p)
		}
	}
	if _, err := ParsePrincipal("alice", ""); err == nil || !strings.Contains(err.Error(), "no realm") {
		t.Errorf("no default realm: %v", err)
	}
}

// TestConfigSyntaxErrors is the regression test of issue 8: a krb5.conf with a
// broken section header or binary garbage was silently ignored and the user
// saw "no default realm is configured".
func TestConfigSyntaxErrors(t *testing.T) {
	good := "[libdefaults]\n  default_realm = KRB.TEST\n[realms]\n  KRB.TEST = {\n    kdc = 127.0.0.1:88\n  }\n"
	tests := []struct {
		name, text, want string
	}{
		{"broken section header", "[libdefaults\n  default_realm = KRB.TEST\n", "line 1: section header \"[libdefaults\" has no closing ]"},
		{"binary garbage", "[libdefaults]\n\x00\x01\x02\xff\xfe", "line 2: binary data"},
		{"no equals sign", "[libdefaults]\n  default_realm KRB.TEST\n", "line 2: \"default_realm KRB.TEST\" is not \"name = value\""},
		{"unclosed brace", "[realms]\n  KRB.TEST = {\n    kdc = x\n", "missing }"},
		{"extra brace", good + "}\n", "line 7: } without a matching {"},
		{"relation before any section", "default_realm = KRB.TEST\n", "line 1: \"default_realm = KRB.TEST\" before the first [section]"},
		{"header inside a block", "[realms]\n  KRB.TEST = {\n[libdefaults]\n", "line 3: section header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "krb5.conf")
			if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(p)
			if !errors.Is(err, ErrConfigSyntax) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("LoadConfig: %v, want %q with the file name", err, tc.want)
			}
		})
	}
	// What MIT accepts stays accepted: comments, directives, final markers,
	// CRLF line ends, and the files our tools and Debian write.
	ok := []string{
		good,
		"# comment\n; comment\ninclude /etc/krb5.d/extra.conf\nincludedir /etc/krb5.conf.d/\n" + good,
		"[libdefaults]*\r\n  default_realm = KRB.TEST\r\n[realms]\r\n  KRB.TEST = {\r\n    kdc = a:88\r\n  }*\r\n",
		"[libdefaults]\n  default_realm = KRB.TEST\n  noaddresses =\n",
	}
	for i, text := range ok {
		if err := checkConfigSyntax([]byte(text)); err != nil {
			t.Errorf("valid file %d refused: %v", i, err)
		}
	}
	for _, p := range []string{"/etc/krb5.conf"} {
		if b, err := os.ReadFile(p); err == nil {
			if err := checkConfigSyntax(b); err != nil {
				t.Errorf("%s refused: %v", p, err)
			}
		}
	}
}

// FuzzConfigSyntax: the krb5.conf syntax check never panics, and what it
// accepts gokrb5 parses.
func FuzzConfigSyntax(f *testing.F) {
	f.Add([]byte("[libdefaults]\n default_realm = R\n[realms]\n R = {\n  kdc = a:88\n }\n"))
	f.Add([]byte("[libdefaults\n"))
	f.Add([]byte("include /x\n[a]*\n b = {\n }*\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkConfigSyntax(b) != nil {
			return
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Skipf("gokrb5's parser panics on accepted text: %v", r)
				}
			}()
			krbconfig.NewFromString(string(b))
		}()
	})
}

func TestHostRealm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "krb5.conf")
	conf := "[libdefaults]\n default_realm = D.TEST\n[domain_realm]\n exact.example.com = EXACT.TEST\n .example.com = DOT.TEST\n org = BARE.TEST\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"exact.example.com":  "EXACT.TEST",
		"Exact.Example.COM.": "EXACT.TEST",
		"www.example.com":    "DOT.TEST",
		"a.b.example.com":    "DOT.TEST",
		"example.com":        "",
		"www.kerbkit.org":    "BARE.TEST",
		"localhost":          "",
	} {
		got, ok := c.HostRealm(host)
		if got != want || ok != (want != "") {
			t.Errorf("HostRealm(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
	if d := c.Clone(); d.DomainRealm["exact.example.com"] != "EXACT.TEST" {
		t.Error("Clone lost DomainRealm")
	}
}
