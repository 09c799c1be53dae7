package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// defaultKrb5Conf is read when KRB5_CONFIG is unset, if it exists.
const defaultKrb5Conf = "/etc/krb5.conf"

// defaultKeytab is kinit -k's keytab when neither -t nor KRB5_KTNAME names one.
const defaultKeytab = "/etc/krb5.keytab"

// LoginOptions are the flags and arguments of kclient login.
type LoginOptions struct {
	Env *Env

	Principal     string   // PRINCIPAL argument; empty: keytab's first principal, the cache's, or the login name
	UseKeytab     bool     // -k
	Keytab        string   // -t
	CCache        string   // -c
	Lifetime      string   // -l, MIT duration
	Renewable     string   // -r, MIT duration
	Forwardable   bool     // -f
	NoForwardable bool     // -F
	Proxiable     bool     // -p
	NoProxiable   bool     // -P
	NoAddresses   bool     // -A: tickets without addresses (always so; accepted as kinit does)
	StartTime     string   // -s: postdate, an MIT duration from now or a date
	Service       string   // -S: the service of the initial ticket instead of krbtgt/REALM
	Verbose       bool     // -V
	Realm         string   // --realm
	KDCs          []string // --kdc HOST:PORT, repeatable
	Renew         bool     // -R: renew the TGT in the cache instead (kinit -R)
	Validate      bool     // -v: validate the postdated TGT in the cache instead (kinit -v)
	Explain       bool     // --explain: explain every message (walkthrough.Explainer)

	// now is the clock for -s; nil means time.Now.
	now func() time.Time
}

// NewCmdLogin returns "kclient login". runF replaces the run function in tests; nil means loginRun.
func NewCmdLogin(env *Env, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "login [PRINCIPAL]",
		Short: "Get a ticket-granting ticket with a password or keytab (like kinit)",
		Long: `Get a ticket-granting ticket from the KDC (the AS exchange) and store it in a new credential cache.

The password is read without echo from the terminal, or as one line of standard input when it is not a terminal.
krb5.conf comes from KRB5_CONFIG (default /etc/krb5.conf when present); --realm and --kdc work without one.
The cache is -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>. In a DIR: collection, as with kinit, a login
reuses the cache that already holds the principal's tickets, or takes a new one when the primary cache holds
another principal's, and makes it the primary cache. Without PRINCIPAL: with -k the keytab's first principal,
else the principal of the cache, else the login name.

Ticket options follow kinit: -f/-F forwardable or not, -p/-P proxiable or not (overriding krb5.conf), -l and -r
lifetimes, -s a postdated ticket that starts later (validate it with -v once it has started), -S a ticket for
another service than krbtgt/REALM. Tickets never carry addresses; -A is accepted for kinit compatibility. -V
says which cache, principal and keytab are used, on standard error.
With -R the ticket-granting ticket already in the cache is renewed instead, as "kclient renew" does.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Principal = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if opts.Renew || opts.Validate {
				return loginReissue(cmd.Context(), opts)
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.UseKeytab, "keytab", "k", false, "use a keytab instead of a password")
	f.StringVarP(&opts.Keytab, "keytab-file", "t", "", "keytab file (implies -k; default KRB5_KTNAME, then "+defaultKeytab+")")
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.StringVarP(&opts.Lifetime, "lifetime", "l", "", "requested ticket lifetime, e.g. 10h, 1d, 30m, 3600")
	f.StringVarP(&opts.Renewable, "renewable", "r", "", "requested renewable lifetime, e.g. 7d")
	f.BoolVarP(&opts.Forwardable, "forwardable", "f", false, "request a forwardable ticket")
	f.BoolVarP(&opts.NoForwardable, "not-forwardable", "F", false, "do not request a forwardable ticket (overrides krb5.conf)")
	f.BoolVarP(&opts.Proxiable, "proxiable", "p", false, "request a proxiable ticket")
	f.BoolVarP(&opts.NoProxiable, "not-proxiable", "P", false, "do not request a proxiable ticket (overrides krb5.conf)")
	f.BoolVarP(&opts.NoAddresses, "no-addresses", "A", false, "request a ticket without addresses (what kclient always does)")
	f.StringVarP(&opts.StartTime, "start-time", "s", "", "postdate: the ticket starts after this duration (1h) or at this time (20261201090000)")
	f.StringVarP(&opts.Service, "service", "S", "", "get the initial ticket for this service instead of krbtgt/REALM")
	f.BoolVarP(&opts.Verbose, "verbose", "V", false, "say which cache, principal and keytab are used (on standard error)")
	f.StringVar(&opts.Realm, "realm", "", "default realm (overrides krb5.conf)")
	f.StringArrayVar(&opts.KDCs, "kdc", nil, "KDC address HOST:PORT for the principal's realm (repeatable; overrides krb5.conf)")
	f.BoolVarP(&opts.Renew, "renew", "R", false, "renew the ticket-granting ticket in the cache instead of getting a new one")
	f.BoolVarP(&opts.Validate, "validate", "v", false, "validate the postdated ticket-granting ticket in the cache (once it has started)")
	f.BoolVar(&opts.Explain, "explain", false, "explain every message, limited to what the client can decrypt")
	_ = cmd.MarkFlagFilename("keytab-file")
	return cmd
}

// verbosef writes a -V line to standard error.
func (o *LoginOptions) verbosef(format string, args ...any) {
	if o.Verbose {
		fmt.Fprintf(o.Env.ErrOut, format+"\n", args...)
	}
}

// checkLoginFlags refuses the flag combinations kinit refuses.
func checkLoginFlags(o *LoginOptions) error {
	switch {
	case o.Forwardable && o.NoForwardable:
		return cli.Usagef("Only one of -f and -F allowed")
	case o.Proxiable && o.NoProxiable:
		return cli.Usagef("Only one of -p and -P allowed")
	case o.Renew && o.Validate:
		return cli.Usagef("Only one of -R and -v allowed")
	}
	return nil
}

// loginReissue is login -R (kinit -R: renew the cache's ticket-granting ticket) and login -v (kinit -v:
// validate it). The options that shape a new ticket make no sense there and are refused.
func loginReissue(ctx context.Context, o *LoginOptions) error {
	if err := checkLoginFlags(o); err != nil {
		return err
	}
	flag := "-R renews"
	if o.Validate {
		flag = "-v validates"
	}
	if o.UseKeytab || o.Keytab != "" || o.Lifetime != "" || o.Renewable != "" || o.Forwardable || o.NoForwardable ||
		o.Proxiable || o.NoProxiable || o.StartTime != "" || o.Service != "" {
		return &usageError{err: fmt.Errorf("kclient: %s the ticket in the cache and takes none of -k, -t, -l, -r, -f, -F, -p, -P, -s, -S", flag)}
	}
	ro := &RenewOptions{Env: o.Env, Principal: o.Principal, CCache: o.CCache, Realm: o.Realm, KDCs: o.KDCs, Validate: o.Validate}
	if o.Verbose {
		ro.verbose = o.verbosef
	}
	if err := renewRun(ctx, ro); err != nil {
		return err
	}
	o.verbosef("Authenticated to Kerberos v5")
	return nil
}

// startTimeLayouts are the absolute times kinit -s takes (MIT's krb5_string_to_timestamp, in the C locale), in
// the order MIT tries them, then RFC 3339. dateless marks the layouts that name a time of today.
var startTimeLayouts = []struct {
	layout   string
	dateless bool
}{
	{"20060102150405", false}, {"2006.01.02.15.04.05", false}, {"060102150405", false}, {"06.01.02.15.04.05", false},
	{"0601021504", false}, {"150405", true}, {"1504", true}, {"15:04:05", true}, {"15:04", true},
	{"01/02/06:15:04:05", false}, {"02-Jan-2006:15:04:05", false}, {"02-Jan-2006:15:04", false},
	{time.RFC3339, false},
}

// parseStartTime reads kinit -s: an MIT duration from now (tried first, so "09:30" is nine and a half hours
// from now, as with kinit), else an absolute time in one of kinit's formats (local time; RFC 3339 may name its
// zone). A time in the past is returned as it is: kinit then asks for a ticket from then, which the KDC
// refuses once its lifetime has passed.
func parseStartTime(s string, now time.Time) (time.Time, error) {
	if d, err := client.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	in := strings.TrimSpace(s)
	for _, l := range startTimeLayouts {
		t, err := time.ParseInLocation(l.layout, in, time.Local)
		if err != nil {
			continue
		}
		if l.dateless {
			y, m, d := now.In(time.Local).Date()
			t = time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.Local)
		}
		return t, nil
	}
	return time.Time{}, cli.Usagef("Bad start time value %s (give a duration such as 1h, or a time such as 20261201090000)", s)
}

// loginCache is the cache a login writes, chosen as kinit chooses it.
type loginCache struct {
	name     ticket.CCacheName
	switchTo bool // make it the primary cache of its DIR: collection afterwards
	created  bool // a new cache file of the collection, removed if the login fails
}

// chooseLoginCache picks the output cache and, when none was given, the principal, as kinit does: -c as given;
// else the default cache when it holds the principal to use (or no principal was given and it holds one); in
// a DIR: collection, the cache that holds the principal already, or a new one when the primary cache holds
// someone else. It prints kinit -V's "Using ... cache" lines.
func chooseLoginCache(o *LoginOptions, princ *principal.Name, pickPrincipal func() (principal.Name, error)) (*loginCache, error) {
	if o.CCache != "" {
		n, err := ticket.ParseCCacheName(o.CCache, o.Env.UID)
		if err != nil {
			return nil, fmt.Errorf("kclient: %w", err)
		}
		o.verbosef("Using specified cache: %s", o.CCache)
		if princ.Realm == "" {
			if cc, err := ticket.ReadCCacheFile(n.Path); err == nil && !o.UseKeytab && o.Keytab == "" {
				*princ = cc.DefaultPrincipal
			} else if *princ, err = pickPrincipal(); err != nil {
				return nil, err
			}
		}
		return &loginCache{name: n}, nil
	}
	def, err := ticket.ParseCCacheName(ccacheName("", o.Env), o.Env.UID)
	if err != nil {
		return nil, fmt.Errorf("kclient: %w", err)
	}
	defCC, defErr := ticket.ReadCCacheFile(def.Path)
	if princ.Realm == "" {
		if defErr == nil && !o.UseKeytab && o.Keytab == "" {
			// The default cache's principal, in the default cache.
			*princ = defCC.DefaultPrincipal
			return &loginCache{name: def}, nil
		}
		if *princ, err = pickPrincipal(); err != nil {
			return nil, err
		}
	}
	if def.Type == "DIR" {
		if n, ok := findInCollection(def, *princ); ok {
			o.verbosef("Using existing cache: %s", n.Residual)
			return &loginCache{name: n, switchTo: true}, nil
		}
		if defErr == nil {
			n, err := ticket.NewCCacheInCollection(def)
			if err != nil {
				return nil, fmt.Errorf("kclient: while generating new ccache: %w", err)
			}
			o.verbosef("Using new cache: %s", n.Residual)
			return &loginCache{name: n, switchTo: true, created: true}, nil
		}
	}
	o.verbosef("Using default cache: %s", def.Residual)
	return &loginCache{name: def}, nil
}

// loginRun performs the AS exchange and writes a fresh credential cache holding the TGT.
func loginRun(ctx context.Context, o *LoginOptions) (err error) {
	if err := checkLoginFlags(o); err != nil {
		return err
	}
	now := time.Now
	if o.now != nil {
		now = o.now
	}
	cfg, err := loadConfig(o.Env)
	if err != nil {
		return err
	}
	if o.Realm != "" {
		cfg.Realm = o.Realm
	}
	if o.Lifetime != "" {
		d, err := client.ParseDuration(o.Lifetime)
		if err != nil || d <= 0 {
			return cli.Usagef("kclient: bad lifetime value %q (use e.g. 10h, 1d, 30m or seconds)", o.Lifetime)
		}
		cfg.TicketLifetime = d
	}
	if o.Renewable != "" {
		d, err := client.ParseDuration(o.Renewable)
		if err != nil || d <= 0 {
			return cli.Usagef("kclient: bad renewable lifetime value %q (use e.g. 7d, 12h or seconds)", o.Renewable)
		}
		cfg.RenewLifetime = d
	}
	var start time.Time
	if o.StartTime != "" {
		if start, err = parseStartTime(o.StartTime, now()); err != nil {
			return err
		}
	}
	switch {
	case o.Forwardable:
		cfg.Forwardable = true
	case o.NoForwardable:
		cfg.Forwardable = false
	}
	switch {
	case o.Proxiable:
		cfg.Proxiable = true
	case o.NoProxiable:
		cfg.Proxiable = false
	}

	useKeytab := o.UseKeytab || o.Keytab != ""
	var secret client.Secret
	var xo walkthrough.ExplainOptions // what --explain may decrypt with
	var princ principal.Name
	var ktPath string
	var kt *keytab.Keytab
	if useKeytab {
		ktPath = keytabPath(o.Keytab, o.Env.Getenv("KRB5_KTNAME"))
		if kt, err = client.LoadKeytab(ktPath); err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
		secret, xo.Keytab = client.KeytabSecret(kt), kt
	}
	if o.Principal != "" {
		if princ, err = client.ParsePrincipal(o.Principal, cfg.Realm); err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
	}
	// Without PRINCIPAL: the keytab's first principal, else (when no cache names one) the login name.
	pick := func() (principal.Name, error) {
		if useKeytab {
			ps := client.KeytabPrincipals(kt)
			if len(ps) == 0 {
				return principal.Name{}, fmt.Errorf("kclient: keytab %s has no entries", ktPath)
			}
			return ps[0], nil
		}
		u, err := user.Current()
		if err != nil || u.Username == "" {
			return principal.Name{}, errors.New("kclient: no principal given and the login name is unknown")
		}
		p, err := client.ParsePrincipal(u.Username, cfg.Realm)
		if err != nil {
			return principal.Name{}, fmt.Errorf("kclient: %w", err)
		}
		return p, nil
	}
	out, err := chooseLoginCache(o, &princ, pick)
	if err != nil {
		return err
	}
	if out.created {
		defer func() {
			if err != nil {
				os.Remove(out.name.Path)
			}
		}()
	}
	o.verbosef("Using principal: %s", princ)
	if o.Keytab != "" {
		o.verbosef("Using keytab: %s", o.Keytab)
	}
	var server principal.Name
	if o.Service != "" {
		// kinit -S: the service is in the client's realm, whatever realm the name gives.
		if server, err = client.ParsePrincipal(o.Service, princ.Realm); err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
		server.Realm = princ.Realm
	}
	if len(o.KDCs) > 0 {
		cfg.KDCs[princ.Realm] = append([]string(nil), o.KDCs...)
	}
	if len(cfg.KDCs[princ.Realm]) == 0 {
		return fmt.Errorf("kclient: no KDC known for realm '%s' (give --kdc HOST:PORT or a [realms] entry in krb5.conf)", princ.Realm)
	}

	c, err := client.New(cfg)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	if !useKeytab {
		pw, err := readPassword(o.Env, fmt.Sprintf("Password for %s: ", princ))
		if err != nil {
			return err
		}
		secret, xo.Password, xo.HasPassword = client.PasswordSecret(pw), pw, true
	}
	if o.Explain {
		ex := newExplainer(o.Env, xo)
		defer ex.Close()
		c.Trace = ex.Trace
	}
	res, err := c.Login(ctx, client.ASRequest{Client: princ, Secret: secret, Server: server, StartTime: start})
	if err != nil && isKeyExpired(err) && !useKeytab && len(cfg.KpasswdServers[princ.Realm]) > 0 {
		// As kinit: change the expired password now, then log in with the new one.
		nw, cerr := changeExpired(ctx, o.Env, c, princ, xo.Password)
		if cerr != nil {
			return cerr
		}
		secret, xo.Password = client.PasswordSecret(nw), nw
		res, err = c.Login(ctx, client.ASRequest{Client: princ, Secret: secret, Server: server, StartTime: start})
	}
	if err != nil {
		return loginError(err)
	}
	if err := client.StoreCCache(out.name, res.CCache()); err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	if out.switchTo {
		if err := ticket.SwitchCCache(out.name); err != nil {
			return fmt.Errorf("kclient: while switching to new ccache: %w", err)
		}
	}
	o.verbosef("Authenticated to Kerberos v5")
	return nil
}

// loadConfig reads krb5.conf from KRB5_CONFIG (a colon-separated list, first existing file wins) or
// /etc/krb5.conf; with no file at all it starts from an empty configuration, which --realm/--kdc complete.
func loadConfig(env *Env) (*client.Config, error) {
	list := env.Getenv("KRB5_CONFIG")
	if list == "" {
		list = defaultKrb5Conf
	}
	for _, p := range strings.Split(list, ":") {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			continue
		}
		cfg, err := client.LoadConfig(p)
		if err != nil {
			return nil, fmt.Errorf("kclient: %w", err)
		}
		return cfg, nil
	}
	cfg := &client.Config{}
	cfg.ApplyDefaults()
	return cfg, nil
}

// keytabPath picks -t, else KRB5_KTNAME, else the default keytab, and strips a FILE:/WRFILE: prefix.
func keytabPath(flag, envName string) string {
	p := flag
	if p == "" {
		p = envName
	}
	if p == "" {
		p = defaultKeytab
	}
	for _, pre := range []string{"FILE:", "WRFILE:"} {
		if strings.HasPrefix(p, pre) {
			return strings.TrimPrefix(p, pre)
		}
	}
	return p
}

// ccacheName picks -c, else KRB5CCNAME (empty means MIT's default, resolved by ticket.ResolveCCacheName).
func ccacheName(flag string, env *Env) string {
	if flag != "" {
		return flag
	}
	return env.Getenv("KRB5CCNAME")
}

// readCCache resolves the cache named by -c (see ccacheName) and reads it, returning its file. A missing cache
// is a userError "kclient: No credentials cache found (filename: PATH)", followed by " "+suffix when suffix is
// not empty.
func readCCache(env *Env, ccFlag, suffix string) (string, *ticket.CCache, error) {
	name, cc, err := readCCacheName(env, ccFlag, suffix)
	return name.Path, cc, err
}

// readCCacheName is readCCache returning the resolved name (FILE: or DIR:).
func readCCacheName(env *Env, ccFlag, suffix string) (ticket.CCacheName, *ticket.CCache, error) {
	name, err := ticket.ParseCCacheName(ccacheName(ccFlag, env), env.UID)
	if err != nil {
		return name, nil, fmt.Errorf("kclient: %w", err)
	}
	cc, err := ticket.ReadCCacheFile(name.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			msg := fmt.Sprintf("kclient: No credentials cache found (filename: %s)", name.Path)
			if suffix != "" {
				msg += " " + suffix
			}
			return name, nil, &userError{msg: msg, err: err}
		}
		return name, nil, fmt.Errorf("kclient: %w", err)
	}
	return name, cc, nil
}

// loginError turns an AS failure into kinit's wording: "<reason> while getting initial credentials".
func loginError(err error) error {
	var ke *client.KDCError
	var ue *client.UnreachableError
	switch {
	case errors.As(err, &ke):
		return &userError{msg: "kclient: " + ke.Text() + " while getting initial credentials", err: err}
	case errors.As(err, &ue):
		return &userError{msg: fmt.Sprintf("kclient: Cannot contact any KDC for realm '%s' while getting initial credentials (%s)", ue.Realm, ue.Detail()), err: err}
	case errors.Is(err, client.ErrReplyMismatch):
		return &userError{msg: fmt.Sprintf("kclient: KDC reply did not match expectations while getting initial credentials (%v)", err), err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &userError{msg: "kclient: interrupted while getting initial credentials", err: err}
	}
	return fmt.Errorf("kclient: %w", err)
}
