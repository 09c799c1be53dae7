package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kerbkit/kerbkit/internal/cli"
)

// env holds what every command needs from the process: its streams and the
// database path flag.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	db             string
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
	root.PersistentFlags().StringVar(&e.db, "db", defDB, "principal database file (env KERBKIT_DB)")
	root.AddCommand(newInitCmd(e), newServeCmd(e), newPrincipalCmd(e), newKeytabCmd(e), newDevCmd(e), newCheckCmd(e), newProbeCmd(e))
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
