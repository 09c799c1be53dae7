package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/store"
)

// env holds what every command needs from the process: its streams and the
// database path flag.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	db             string
	dbFlags        dbFlags
	// auditLog is --audit-log (audit.go).
	auditLog string
}

// dbFlags are the root flags that say how to open the database besides
// --db: the master key file (required for etcd) and the etcd connection.
type dbFlags struct {
	masterKey        string
	etcdCA           string
	etcdCert         string
	etcdKey          string
	etcdUser         string
	etcdPasswordFile string
}

// envPassword is the variable that may carry the etcd password (never argv).
const envPassword = "KERBKIT_ETCD_PASSWORD"

// openOptions turns the root flags into store options; log gets the etcd
// backend's events.
func (e *env) openOptions(log *slog.Logger) (store.OpenOptions, error) {
	f := e.dbFlags
	o := store.OpenOptions{MasterKeyPath: f.masterKey}
	if !store.IsEtcdURL(e.db) {
		if f.etcdCA != "" || f.etcdCert != "" || f.etcdKey != "" || f.etcdUser != "" || f.etcdPasswordFile != "" {
			return o, cli.Usagef("kdc: the --etcd-* flags need --db etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
		}
		return o, nil
	}
	if f.masterKey == "" {
		return o, cli.Usagef("kdc: an etcd database needs --master-key FILE (env KERBKIT_MASTER_KEY): the realm's master key, one copy per KDC")
	}
	o.Etcd = store.EtcdOptions{CACert: f.etcdCA, Cert: f.etcdCert, Key: f.etcdKey, Username: f.etcdUser, Logger: log}
	if f.etcdUser != "" {
		switch {
		case f.etcdPasswordFile != "":
			pw, err := store.ReadPasswordFile(f.etcdPasswordFile)
			if err != nil {
				return o, err
			}
			o.Etcd.Password = pw
		case os.Getenv(envPassword) != "":
			o.Etcd.Password = os.Getenv(envPassword)
		default:
			return o, cli.Usagef("kdc: --etcd-user needs its password in --etcd-password-file FILE or $%s", envPassword)
		}
	} else if f.etcdPasswordFile != "" {
		return o, cli.Usagef("kdc: --etcd-password-file needs --etcd-user")
	}
	return o, nil
}

// openDB opens --db (bbolt file or etcd); noWatch for one-shot commands.
func (e *env) openDB(ctx context.Context, log *slog.Logger, noWatch bool) (store.DB, error) {
	o, err := e.openOptions(log)
	if err != nil {
		return nil, err
	}
	o.Etcd.NoWatch = noWatch
	return store.OpenDB(ctx, e.db, o)
}

// run builds the command tree, executes it and maps the outcome to an exit code:
// 0 on success; otherwise one line on stderr and 2 for a usage error (cli.ExitUsage),
// 1 for any other failure.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "kdc: "+strings.TrimPrefix(err.Error(), "kdc: ")+cli.HelpHint(err, "kdc"))
		if cli.IsUsage(err) {
			return cli.ExitUsage
		}
		return cli.ExitFailure
	}
	return cli.ExitOK
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "kdc",
		Short:         "A Kerberos v5 KDC on a bbolt database",
		Long:          "A Kerberos v5 KDC on a bbolt database.\n\nExit status: 0 success, 1 failure, 2 usage error (unknown command or flag, bad argument).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defDB := os.Getenv("KERBKIT_DB")
	if defDB == "" {
		defDB = "kdc.db"
	}
	root.PersistentFlags().StringVar(&e.db, "db", defDB, "principal database: a bbolt file, or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (env KERBKIT_DB)")
	pf := root.PersistentFlags()
	pf.StringVar(&e.dbFlags.masterKey, "master-key", os.Getenv("KERBKIT_MASTER_KEY"), "master key file (default FILE.mkey beside a bbolt file; required for etcd) (env KERBKIT_MASTER_KEY)")
	pf.StringVar(&e.dbFlags.etcdCA, "etcd-ca", os.Getenv("KERBKIT_ETCD_CA"), "PEM CA certificate of the etcd servers; turns on TLS (env KERBKIT_ETCD_CA)")
	pf.StringVar(&e.dbFlags.etcdCert, "etcd-cert", os.Getenv("KERBKIT_ETCD_CERT"), "PEM client certificate for etcd (env KERBKIT_ETCD_CERT)")
	pf.StringVar(&e.dbFlags.etcdKey, "etcd-key", os.Getenv("KERBKIT_ETCD_KEY"), "PEM key of --etcd-cert (env KERBKIT_ETCD_KEY)")
	pf.StringVar(&e.dbFlags.etcdUser, "etcd-user", os.Getenv("KERBKIT_ETCD_USER"), "etcd user name; the password comes from --etcd-password-file or $"+envPassword+" (env KERBKIT_ETCD_USER)")
	pf.StringVar(&e.dbFlags.etcdPasswordFile, "etcd-password-file", os.Getenv("KERBKIT_ETCD_PASSWORD_FILE"), "file whose first line is the etcd password, mode 0600 (env KERBKIT_ETCD_PASSWORD_FILE)")
	pf.StringVar(&e.auditLog, "audit-log", os.Getenv("KERBKIT_AUDIT_LOG"), "audit log of admin changes and lockouts, one JSON line each (default FILE.audit.log beside a bbolt file, none for etcd; 'none' turns it off) (env KERBKIT_AUDIT_LOG)")
	for _, f := range []string{"audit-log", "master-key", "etcd-ca", "etcd-cert", "etcd-key", "etcd-password-file"} {
		_ = root.MarkPersistentFlagFilename(f)
	}
	root.AddCommand(newInitCmd(e), newServeCmd(e), newPrincipalCmd(e), newKeytabCmd(e), newDevCmd(e), newCheckCmd(e), newProbeCmd(e), newDumpCmd(e), newLoadCmd(e), newTrustCmd(e), newPolicyCmd(e))
	// Flag, argument and unknown-command errors are usage errors (exit 2, "see `kdc ... --help`"); examples;
	// shell completion.
	cli.Prepare(root, examples)
	return root
}

// readSecret reads a password: from the terminal without echo (twice when
// confirm is set), or else one line of stdin. It never comes from argv unless the
// user chose --password.
func readSecret(e *env, prompt string, confirm bool) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt+": ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("kdc: reading password: %w", err)
		}
		if confirm {
			fmt.Fprint(e.stderr, "Verify "+strings.ToLower(prompt[:1])+prompt[1:]+": ")
			again, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(e.stderr)
			if err != nil {
				return "", fmt.Errorf("kdc: reading password: %w", err)
			}
			if string(again) != string(pw) {
				return "", errors.New("kdc: passwords do not match")
			}
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("kdc: no password on stdin (give one line, or use --random-key)")
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("kdc: empty password")
	}
	return pw, nil
}
