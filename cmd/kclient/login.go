package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
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

	Principal   string   // PRINCIPAL argument; empty: keytab's first principal or the login name
	UseKeytab   bool     // -k
	Keytab      string   // -t
	CCache      string   // -c
	Lifetime    string   // -l, MIT duration
	Renewable   string   // -r, MIT duration
	Forwardable bool     // -f
	Realm       string   // --realm
	KDCs        []string // --kdc HOST:PORT, repeatable
	Renew       bool     // -R: renew the TGT in the cache instead (kinit -R)
	Explain     bool     // --explain: explain every message (walkthrough.Explainer)
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
The cache is -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>.
With -R the ticket-granting ticket already in the cache is renewed instead, as "kclient renew" does.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Principal = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if opts.Renew {
				return loginRenew(cmd.Context(), opts)
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
	f.StringVar(&opts.Realm, "realm", "", "default realm (overrides krb5.conf)")
	f.StringArrayVar(&opts.KDCs, "kdc", nil, "KDC address HOST:PORT for the principal's realm (repeatable; overrides krb5.conf)")
	f.BoolVarP(&opts.Renew, "renew", "R", false, "renew the ticket-granting ticket in the cache instead of getting a new one")
	f.BoolVar(&opts.Explain, "explain", false, "explain every message, limited to what the client can decrypt")
	return cmd
}

// loginRenew is login -R (kinit -R): renew the cache's ticket-granting ticket. The options that shape a new
// ticket make no sense there and are refused.
func loginRenew(ctx context.Context, o *LoginOptions) error {
	if o.UseKeytab || o.Keytab != "" || o.Lifetime != "" || o.Renewable != "" || o.Forwardable {
		return &usageError{err: errors.New("kclient: -R renews the ticket in the cache and takes none of -k, -t, -l, -r, -f")}
	}
	return renewRun(ctx, &RenewOptions{Env: o.Env, Principal: o.Principal, CCache: o.CCache, Realm: o.Realm, KDCs: o.KDCs})
}

// loginRun performs the AS exchange and writes a fresh credential cache holding the TGT.
func loginRun(ctx context.Context, o *LoginOptions) error {
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
			return fmt.Errorf("kclient: bad lifetime value %q (use e.g. 10h, 1d, 30m or seconds)", o.Lifetime)
		}
		cfg.TicketLifetime = d
	}
	if o.Renewable != "" {
		d, err := client.ParseDuration(o.Renewable)
		if err != nil || d <= 0 {
			return fmt.Errorf("kclient: bad renewable lifetime value %q (use e.g. 7d, 12h or seconds)", o.Renewable)
		}
		cfg.RenewLifetime = d
	}
	if o.Forwardable {
		cfg.Forwardable = true
	}

	useKeytab := o.UseKeytab || o.Keytab != ""
	var secret client.Secret
	var xo walkthrough.ExplainOptions // what --explain may decrypt with
	var princ principal.Name
	if useKeytab {
		path := keytabPath(o.Keytab, o.Env.Getenv("KRB5_KTNAME"))
		kt, err := client.LoadKeytab(path)
		if err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
		secret, xo.Keytab = client.KeytabSecret(kt), kt
		if o.Principal == "" {
			ps := client.KeytabPrincipals(kt)
			if len(ps) == 0 {
				return fmt.Errorf("kclient: keytab %s has no entries", path)
			}
			princ = ps[0]
		}
	}
	if o.Principal != "" {
		princ, err = client.ParsePrincipal(o.Principal, cfg.Realm)
		if err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
	} else if !useKeytab {
		u, err := user.Current()
		if err != nil || u.Username == "" {
			return errors.New("kclient: no principal given and the login name is unknown")
		}
		princ, err = client.ParsePrincipal(u.Username, cfg.Realm)
		if err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
	}
	if len(o.KDCs) > 0 {
		cfg.KDCs[princ.Realm] = append([]string(nil), o.KDCs...)
	}
	if len(cfg.KDCs[princ.Realm]) == 0 {
		return fmt.Errorf("kclient: no KDC known for realm '%s' (give --kdc HOST:PORT or a [realms] entry in krb5.conf)", princ.Realm)
	}

	ccPath, err := ticket.ResolveCCacheName(ccacheName(o.CCache, o.Env), o.Env.UID)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
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
	res, err := c.Login(ctx, client.ASRequest{Client: princ, Secret: secret})
	if err != nil {
		return loginError(err)
	}
	cc := &ticket.CCache{
		Version:          4,
		KDCOffset:        res.KDCOffset,
		DefaultPrincipal: res.Credential.Client,
		Credentials:      []ticket.Credential{res.Credential},
	}
	if err := ticket.WriteCCacheFile(ccPath, cc); err != nil {
		return fmt.Errorf("kclient: storing credentials in FILE:%s: %w", ccPath, err)
	}
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

// readCCache resolves the cache named by -c (see ccacheName) and reads it. A missing cache is a userError
// "kclient: No credentials cache found (filename: PATH)", followed by " "+suffix when suffix is not empty.
func readCCache(env *Env, ccFlag, suffix string) (string, *ticket.CCache, error) {
	path, err := ticket.ResolveCCacheName(ccacheName(ccFlag, env), env.UID)
	if err != nil {
		return "", nil, fmt.Errorf("kclient: %w", err)
	}
	cc, err := ticket.ReadCCacheFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			msg := fmt.Sprintf("kclient: No credentials cache found (filename: %s)", path)
			if suffix != "" {
				msg += " " + suffix
			}
			return "", nil, &userError{msg: msg, err: err}
		}
		return "", nil, fmt.Errorf("kclient: %w", err)
	}
	return path, cc, nil
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
