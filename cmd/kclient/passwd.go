package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
)

// PasswdOptions are the flags and arguments of kclient passwd.
type PasswdOptions struct {
	Env *Env

	Principal    string   // PRINCIPAL argument; empty: the login name
	Realm        string   // --realm
	KDCs         []string // --kdc HOST:PORT
	Kpasswd      []string // --kpasswd-server HOST:PORT
	PasswordFile string   // --password-file: the three lines instead of standard input
}

// NewCmdPasswd returns "kclient passwd". runF replaces the run function in tests; nil means passwdRun.
func NewCmdPasswd(env *Env, runF func(context.Context, *PasswdOptions) error) *cobra.Command {
	opts := &PasswdOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "passwd [PRINCIPAL]",
		Short: "Change a password (like kpasswd)",
		Long: `Change your Kerberos password with the realm's password-change service (kpasswd, RFC 3244).

The current password gets an initial ticket for kadmin/changepw (the AS exchange); the new password then goes
to the kpasswd_server of krb5.conf (else admin_server on port 464), sealed in a KRB-PRIV. Passwords are read
without echo from the terminal, or as three lines (current, new, new again) of standard input or of
--password-file when that is given; never from the command line. The server's answer is printed: "Password
changed." or why not (a policy's reason, such as "Password is too short").`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Principal = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return passwdRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Realm, "realm", "", "default realm (overrides krb5.conf)")
	f.StringArrayVar(&opts.KDCs, "kdc", nil, "KDC address HOST:PORT for the principal's realm (repeatable; overrides krb5.conf)")
	f.StringArrayVar(&opts.Kpasswd, "kpasswd-server", nil, "password-change server HOST:PORT (repeatable; overrides krb5.conf)")
	f.StringVar(&opts.PasswordFile, "password-file", "", "read the current and the new password (twice), one a line, from this file (- for standard input)")
	_ = cmd.MarkFlagFilename("password-file")
	return cmd
}

// passwdRun is kclient passwd.
func passwdRun(ctx context.Context, o *PasswdOptions) error {
	cfg, err := loadConfig(o.Env)
	if err != nil {
		return err
	}
	if o.Realm != "" {
		cfg.Realm = o.Realm
	}
	name := o.Principal
	if name == "" {
		u, err := user.Current()
		if err != nil || u.Username == "" {
			return cli.Usagef("kclient: no principal given and the login name is unknown")
		}
		name = u.Username
	}
	princ, err := client.ParsePrincipal(name, cfg.Realm)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	if len(o.KDCs) > 0 {
		cfg.KDCs[princ.Realm] = append([]string(nil), o.KDCs...)
	}
	if len(o.Kpasswd) > 0 {
		if cfg.KpasswdServers == nil {
			cfg.KpasswdServers = map[string][]string{}
		}
		cfg.KpasswdServers[princ.Realm] = append([]string(nil), o.Kpasswd...)
	}
	if len(cfg.KDCs[princ.Realm]) == 0 {
		return fmt.Errorf("kclient: no KDC known for realm '%s' (give --kdc HOST:PORT or a [realms] entry in krb5.conf)", princ.Realm)
	}
	if len(cfg.KpasswdServers[princ.Realm]) == 0 {
		return fmt.Errorf("kclient: no password-change server known for realm '%s' (give --kpasswd-server HOST:PORT or kpasswd_server in krb5.conf)", princ.Realm)
	}
	env := o.Env
	if o.PasswordFile != "" && o.PasswordFile != "-" {
		f, err := os.Open(o.PasswordFile)
		if err != nil {
			return fmt.Errorf("kclient: --password-file: %w", err)
		}
		defer f.Close()
		e := *o.Env
		e.In = f
		env = &e
	}
	c, err := client.New(cfg)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	old, err := readPassword(env, fmt.Sprintf("Password for %s: ", princ))
	if err != nil {
		return err
	}
	nw, err := readNewPassword(env)
	if err != nil {
		return err
	}
	if _, err := c.ChangePassword(ctx, client.ChangePasswordRequest{Client: princ, Old: client.PasswordSecret(old), New: nw}); err != nil {
		return changeError(err)
	}
	fmt.Fprintln(o.Env.Out, "Password changed.")
	return nil
}

// readNewPassword asks for the new password twice, as kpasswd and kinit do.
func readNewPassword(env *Env) (string, error) {
	nw, err := readPassword(env, "Enter new password: ")
	if err != nil {
		return "", err
	}
	again, err := readPassword(env, "Enter it again: ")
	if err != nil {
		return "", err
	}
	if nw != again {
		return "", &userError{msg: "kclient: Password mismatch while reading password"}
	}
	if nw == "" {
		return "", &userError{msg: "kclient: Empty password while reading password"}
	}
	return nw, nil
}

// changeError is the one line for a failed change: the server's refusal as
// MIT kpasswd prints it, or why the kadmin/changepw ticket was not had.
func changeError(err error) error {
	var pe *client.PasswordChangeError
	if errors.As(err, &pe) {
		return &userError{msg: "kclient: " + pe.Error(), err: err}
	}
	var ke *client.KDCError
	if errors.As(err, &ke) {
		return &userError{msg: "kclient: " + ke.Text() + " getting initial ticket", err: err}
	}
	var ue *client.UnreachableError
	if errors.As(err, &ue) {
		return &userError{msg: fmt.Sprintf("kclient: Cannot contact any KDC or password-change server for realm '%s' changing password (%s)", ue.Realm, ue.Detail()), err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &userError{msg: "kclient: interrupted changing password", err: err}
	}
	return fmt.Errorf("kclient: changing password: %w", err)
}

// isKeyExpired reports a KDC_ERR_KEY_EXPIRED answer: the password must be changed.
func isKeyExpired(err error) bool {
	var ke *client.KDCError
	return errors.As(err, &ke) && ke.Code == errorcode.KDC_ERR_KEY_EXPIRED
}

// changeExpired is what kinit does on KDC_ERR_KEY_EXPIRED: say so, ask for a
// new password, change it with the old one and return the new one for the
// login to try again.
func changeExpired(ctx context.Context, env *Env, c *client.Client, princ principal.Name, old string) (string, error) {
	fmt.Fprintln(env.ErrOut, "Password expired.  You must change it now.")
	nw, err := readNewPassword(env)
	if err != nil {
		return "", err
	}
	if _, err := c.ChangePassword(ctx, client.ChangePasswordRequest{Client: princ, Old: client.PasswordSecret(old), New: nw}); err != nil {
		return "", changeError(err)
	}
	return nw, nil
}
