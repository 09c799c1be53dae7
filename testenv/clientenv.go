package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EnvOptions shape the krb5.conf and environment that [Realm.Env] and
// [MITRealm.Env] generate for client commands.
type EnvOptions struct {
	// ForceTCP sets udp_preference_limit = 1, so MIT clients use TCP.
	ForceTCP bool
	// Forwardable sets forwardable = true (kinit then asks for a forwardable TGT).
	Forwardable bool
	// RenewLifetime, when set, becomes renew_lifetime (e.g. "7d").
	RenewLifetime string
	// TicketLifetime, when set, becomes ticket_lifetime (e.g. "10h").
	TicketLifetime string
	// KDC overrides the realm's KDC address (HOST:PORT), e.g. to point at a proxy.
	KDC string
	// Kpasswd is the realm's kpasswd_server (HOST:PORT); empty means the
	// realm's own password-change service, if it has one.
	Kpasswd string
	// Libdefaults are extra "key = value" lines for [libdefaults].
	Libdefaults []string
	// Domains are more DNS domains (".example.test") or hosts of the realm, for
	// [domain_realm] besides localhost.
	Domains []string
}

// clientSide writes client configurations for one realm. Each Env call gets its
// own directory with krb5.conf, ccache and trace.log, so environments never share
// a cache by accident.
type clientSide struct {
	realm   string
	addr    func() string
	kpasswd func() string // nil or "" when the realm has no kpasswd service
	dir     string

	mu   sync.Mutex
	dirs []string // one per Env call, for the failure dump
}

// KRB5Conf renders a client krb5.conf for realm with its KDC at kdc, as in
// interop-peers.md §1.1.
func KRB5Conf(realm, kdc string, o EnvOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n")
	fmt.Fprintf(&b, "    default_realm = %s\n", realm)
	fmt.Fprintf(&b, "    dns_lookup_kdc = false\n")
	fmt.Fprintf(&b, "    dns_lookup_realm = false\n")
	fmt.Fprintf(&b, "    rdns = false\n")
	fmt.Fprintf(&b, "    dns_canonicalize_hostname = false\n")
	if o.ForceTCP {
		fmt.Fprintf(&b, "    udp_preference_limit = 1\n")
	}
	if o.Forwardable {
		fmt.Fprintf(&b, "    forwardable = true\n")
	}
	if o.RenewLifetime != "" {
		fmt.Fprintf(&b, "    renew_lifetime = %s\n", o.RenewLifetime)
	}
	if o.TicketLifetime != "" {
		fmt.Fprintf(&b, "    ticket_lifetime = %s\n", o.TicketLifetime)
	}
	for _, l := range o.Libdefaults {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	fmt.Fprintf(&b, "[realms]\n")
	fmt.Fprintf(&b, "    %s = {\n", realm)
	fmt.Fprintf(&b, "        kdc = %s\n", kdc)
	if o.Kpasswd != "" {
		fmt.Fprintf(&b, "        kpasswd_server = %s\n", o.Kpasswd)
	}
	fmt.Fprintf(&b, "    }\n")
	fmt.Fprintf(&b, "[domain_realm]\n")
	fmt.Fprintf(&b, "    localhost = %s\n", realm)
	for _, d := range o.Domains {
		fmt.Fprintf(&b, "    %s = %s\n", d, realm)
	}
	return b.String()
}

// env writes a fresh client directory and returns the child environment.
func (c *clientSide) env(o EnvOptions) []string {
	c.mu.Lock()
	n := len(c.dirs) + 1
	dir := filepath.Join(c.dir, fmt.Sprintf("client%d", n))
	c.dirs = append(c.dirs, dir)
	c.mu.Unlock()

	kdc := o.KDC
	if kdc == "" {
		kdc = c.addr()
	}
	if o.Kpasswd == "" && c.kpasswd != nil {
		o.Kpasswd = c.kpasswd()
	}
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		panic(fmt.Sprintf("testenv: %v", err))
	}
	if err := os.WriteFile(conf, []byte(KRB5Conf(c.realm, kdc, o)), 0o600); err != nil {
		panic(fmt.Sprintf("testenv: %v", err))
	}
	return ClientEnviron(map[string]string{
		"KRB5_CONFIG":    conf,
		"KRB5CCNAME":     "FILE:" + filepath.Join(dir, "ccache"),
		"KRB5RCACHETYPE": "none",
		"KRB5_TRACE":     filepath.Join(dir, "trace.log"),
	})
}

// dump writes every client trace to the test log.
func (c *clientSide) dump(t testing.TB) {
	c.mu.Lock()
	dirs := append([]string(nil), c.dirs...)
	c.mu.Unlock()
	for _, d := range dirs {
		p := filepath.Join(d, "trace.log")
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		t.Logf("---- KRB5_TRACE %s ----\n%s", p, tail(string(b), 12000))
	}
}

// ClientEnviron returns the test's environment without any KRB5* variable, with
// LC_ALL=C (stable dates and untranslated messages), plus vars.
func ClientEnviron(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "KRB5") || k == "LC_ALL" || k == "LANGUAGE" {
			continue
		}
		if _, ok := vars[k]; ok {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C")
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// EnvValue returns the value of key in env ("" if absent; the last one wins).
func EnvValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// WithEnv returns a copy of env with key set to value.
func WithEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// CCachePath returns the file behind KRB5CCNAME in env (without "FILE:").
func CCachePath(env []string) string {
	return strings.TrimPrefix(EnvValue(env, "KRB5CCNAME"), "FILE:")
}

// Trace returns the MIT trace written so far for env's KRB5_TRACE ("" if none).
func Trace(env []string) string {
	p := EnvValue(env, "KRB5_TRACE")
	if p == "" {
		return ""
	}
	b, _ := os.ReadFile(p)
	return string(b)
}

// ResetTrace empties env's trace file, so later assertions see only new lines.
func ResetTrace(env []string) {
	if p := EnvValue(env, "KRB5_TRACE"); p != "" {
		_ = os.WriteFile(p, nil, 0o600)
	}
}
