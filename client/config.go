// Package client implements the client side of Kerberos v5: the KDC transport (RFC 4120 §7.2), the AS and TGS exchanges
// (RFC 4120 §3.1, §3.3) and krb5.conf handling. It is a library; cmd/kclient is one user of it.
package client

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// Defaults for every Config knob. They are kept in one place and applied by Config.ApplyDefaults.
const (
	// DefaultUDPPreferenceLimit is MIT's default udp_preference_limit: requests up to this size go over UDP first.
	DefaultUDPPreferenceLimit = 1465
	// MaxUDPPreferenceLimit is the largest udp_preference_limit MIT accepts.
	MaxUDPPreferenceLimit = 32700
	// DefaultTicketLifetime is the requested ticket lifetime when none is configured (MIT ticket_lifetime).
	DefaultTicketLifetime = 24 * time.Hour
	// DefaultClockskew is the maximum tolerated clock difference [RFC 4120 §8.2].
	DefaultClockskew = 5 * time.Minute
	// DefaultTimeout bounds each attempt to reach one KDC over one transport.
	DefaultTimeout = 3 * time.Second
	// DefaultKDCPort is the Kerberos port used when a KDC address has none [RFC 4120 §7.2.3].
	DefaultKDCPort = "88"
)

// DefaultEtypes is the default enctype preference list: aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96,
// aes256-cts-hmac-sha384-192, aes128-cts-hmac-sha256-128.
var DefaultEtypes = []int32{
	etypeID.AES256_CTS_HMAC_SHA1_96,
	etypeID.AES128_CTS_HMAC_SHA1_96,
	etypeID.AES256_CTS_HMAC_SHA384_192,
	etypeID.AES128_CTS_HMAC_SHA256_128,
}

// Config is the client configuration. The zero value of every field means "use the default" (see the constants
// above), except RenewLifetime where zero means "no renewable ticket requested". Build one with LoadConfig or
// by hand, then call ApplyDefaults and Validate (LoadConfig does both).
type Config struct {
	// Realm is the default realm, used for principals given without one (krb5.conf default_realm).
	Realm string
	// KDCs lists the KDC addresses (host:port) of each realm, tried in order (krb5.conf [realms] kdc).
	KDCs map[string][]string
	// KpasswdServers lists the password-change servers (host:port, RFC 3244) of each realm (krb5.conf
	// [realms] kpasswd_server, else admin_server on port 464).
	KpasswdServers map[string][]string
	// UDPPreferenceLimit: requests up to this many bytes try UDP first, larger ones TCP first; 1 forces TCP
	// first (krb5.conf udp_preference_limit).
	UDPPreferenceLimit int
	// TicketLifetime is the requested ticket lifetime (krb5.conf ticket_lifetime).
	TicketLifetime time.Duration
	// RenewLifetime is the requested renewable lifetime; 0 requests no renewable ticket (krb5.conf
	// renew_lifetime).
	RenewLifetime time.Duration
	// Forwardable requests forwardable tickets (krb5.conf forwardable).
	Forwardable bool
	// Proxiable requests proxiable tickets (krb5.conf proxiable).
	Proxiable bool
	// Etypes is the enctype preference list, most preferred first (krb5.conf default_tkt_enctypes, limited by
	// permitted_enctypes).
	Etypes []int32
	// Clockskew is the tolerated clock difference with the KDC (krb5.conf clockskew).
	Clockskew time.Duration
	// Timeout bounds one attempt to reach one KDC over one transport.
	Timeout time.Duration
	// DomainRealm maps host names and domains (".example.com") to realms (krb5.conf [domain_realm]).
	DomainRealm map[string]string
}

// LoadConfig reads a krb5.conf file with gokrb5's parser and maps the settings this package uses: default_realm,
// the kdc lists of [realms], udp_preference_limit, ticket_lifetime, renew_lifetime, forwardable, proxiable,
// default_tkt_enctypes, permitted_enctypes and clockskew. It then applies defaults and validates.
func LoadConfig(path string) (*Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: load %s: %w", path, err)
	}
	if err := checkConfigSyntax(text); err != nil {
		return nil, fmt.Errorf("client: %s %w", path, err)
	}
	kc, err := krbconfig.NewFromString(string(text))
	if kc == nil {
		// gokrb5 returns a usable config together with an UnsupportedDirective error (v4 settings); any other
		// error comes without a config.
		if err == nil {
			err = errors.New("empty configuration")
		}
		return nil, fmt.Errorf("client: load %s: %w", path, err)
	}
	c, err := configFromKrb5(kc)
	if err != nil {
		return nil, fmt.Errorf("client: load %s: %w", path, err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("client: load %s: %w", path, err)
	}
	return c, nil
}

// configFromKrb5 maps a parsed gokrb5 configuration onto Config.
func configFromKrb5(kc *krbconfig.Config) (*Config, error) {
	ld := kc.LibDefaults
	c := &Config{
		Realm:              ld.DefaultRealm,
		KDCs:               map[string][]string{},
		UDPPreferenceLimit: ld.UDPPreferenceLimit,
		TicketLifetime:     ld.TicketLifetime,
		RenewLifetime:      ld.RenewLifetime,
		Forwardable:        ld.Forwardable,
		Proxiable:          ld.Proxiable,
		Clockskew:          ld.Clockskew,
		DomainRealm:        map[string]string{},
	}
	for d, r := range kc.DomainRealm {
		c.DomainRealm[strings.ToLower(d)] = r
	}
	c.KpasswdServers = map[string][]string{}
	for _, r := range kc.Realms {
		for _, k := range r.KDC {
			c.KDCs[r.Realm] = append(c.KDCs[r.Realm], strings.TrimSpace(k))
		}
		// gokrb5 already falls back to admin_server:464.
		for _, k := range r.KPasswdServer {
			c.KpasswdServers[r.Realm] = append(c.KpasswdServers[r.Realm], withPort(k, DefaultKpasswdPort))
		}
	}
	// gokrb5 fills its own (long, weak-inclusive) defaults when the file names no enctypes, so compare against
	// those to tell "set in the file" from "not set".
	gdef := krbconfig.New().LibDefaults
	tkt := DefaultEtypes
	if !slices.Equal(ld.DefaultTktEnctypes, gdef.DefaultTktEnctypes) {
		tkt = ld.DefaultTktEnctypeIDs
		if len(tkt) == 0 {
			return nil, fmt.Errorf("default_tkt_enctypes %q names no supported enctype", strings.Join(ld.DefaultTktEnctypes, " "))
		}
	}
	if !slices.Equal(ld.PermittedEnctypes, gdef.PermittedEnctypes) {
		permitted := ld.PermittedEnctypeIDs
		var keep []int32
		for _, e := range tkt {
			if slices.Contains(permitted, e) {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			return nil, errors.New("no enctype is both requested (default_tkt_enctypes) and permitted (permitted_enctypes)")
		}
		tkt = keep
	}
	c.Etypes = slices.Clone(tkt)
	return c, nil
}

// ApplyDefaults fills every unset field with its default. It never overrides a set value.
func (c *Config) ApplyDefaults() {
	if c.KDCs == nil {
		c.KDCs = map[string][]string{}
	}
	if c.UDPPreferenceLimit == 0 {
		c.UDPPreferenceLimit = DefaultUDPPreferenceLimit
	}
	if c.TicketLifetime == 0 {
		c.TicketLifetime = DefaultTicketLifetime
	}
	if len(c.Etypes) == 0 {
		c.Etypes = slices.Clone(DefaultEtypes)
	}
	if c.Clockskew == 0 {
		c.Clockskew = DefaultClockskew
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	for realm, kdcs := range c.KDCs {
		for i, k := range kdcs {
			kdcs[i] = withDefaultPort(k)
		}
		c.KDCs[realm] = kdcs
	}
}

// withDefaultPort appends the Kerberos port to an address that has none.
func withDefaultPort(addr string) string { return withPort(addr, DefaultKDCPort) }

// DefaultKpasswdPort is the port of the password-change service (RFC 3244).
const DefaultKpasswdPort = "464"

// withPort appends port to an address that has none.
func withPort(addr, port string) string {
	addr = strings.TrimSpace(addr)
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	// A bare host name, IPv4 address or IPv6 literal (with or without brackets).
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), port)
}

// Validate checks that every field holds a usable value. A missing default realm is allowed: it only matters when
// a principal is given without a realm, and the caller reports that.
func (c *Config) Validate() error {
	if strings.ContainsAny(c.Realm, " \t\r\n@") {
		return fmt.Errorf("client: invalid realm %q", c.Realm)
	}
	for realm, kdcs := range c.KDCs {
		if realm == "" {
			return errors.New("client: KDC list for an empty realm name")
		}
		for _, k := range kdcs {
			host, port, err := net.SplitHostPort(k)
			if err != nil || host == "" {
				return fmt.Errorf("client: realm %s: invalid KDC address %q (want host:port)", realm, k)
			}
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("client: realm %s: invalid KDC port in %q", realm, k)
			}
		}
	}
	if c.UDPPreferenceLimit < 1 || c.UDPPreferenceLimit > MaxUDPPreferenceLimit {
		return fmt.Errorf("client: udp_preference_limit %d out of range 1..%d", c.UDPPreferenceLimit, MaxUDPPreferenceLimit)
	}
	if c.TicketLifetime <= 0 {
		return fmt.Errorf("client: ticket lifetime %v must be positive", c.TicketLifetime)
	}
	if c.RenewLifetime < 0 {
		return fmt.Errorf("client: renewable lifetime %v must not be negative", c.RenewLifetime)
	}
	if c.Clockskew <= 0 {
		return fmt.Errorf("client: clockskew %v must be positive", c.Clockskew)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("client: KDC timeout %v must be positive", c.Timeout)
	}
	if len(c.Etypes) == 0 {
		return errors.New("client: no enctypes configured")
	}
	for _, e := range c.Etypes {
		if _, err := crypto.GetEtype(e); err != nil {
			return fmt.Errorf("client: enctype %d is not supported", e)
		}
	}
	return nil
}

// KDCsFor returns the configured KDC addresses of realm, in the order they are tried.
func (c *Config) KDCsFor(realm string) ([]string, error) {
	kdcs := c.KDCs[realm]
	if len(kdcs) == 0 {
		return nil, fmt.Errorf("client: no KDC configured for realm %q", realm)
	}
	return kdcs, nil
}

// Clone returns a deep copy, so a caller can adjust options (lifetimes, flags) for one request.
func (c *Config) Clone() *Config {
	n := *c
	n.Etypes = slices.Clone(c.Etypes)
	n.KDCs = make(map[string][]string, len(c.KDCs))
	for r, k := range c.KDCs {
		n.KDCs[r] = slices.Clone(k)
	}
	n.DomainRealm = maps.Clone(c.DomainRealm)
	n.KpasswdServers = make(map[string][]string, len(c.KpasswdServers))
	for r, k := range c.KpasswdServers {
		n.KpasswdServers[r] = slices.Clone(k)
	}
	return &n
}

// HostRealm returns the realm of a host from DomainRealm, as MIT looks it up: the host name itself, then each
// parent domain with and without its leading dot ("a.example.com", ".example.com", "example.com", ".com",
// "com"). ok is false when nothing matches (MIT then uses the referral realm, that is the client's).
func (c *Config) HostRealm(host string) (realm string, ok bool) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for {
		if r, ok := c.DomainRealm[h]; ok {
			return r, true
		}
		if strings.HasPrefix(h, ".") {
			h = h[1:]
			continue
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return "", false
		}
		h = h[i:]
	}
}
