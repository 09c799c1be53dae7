package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
)

// Env is what the commands take from the process: standard streams, environment variables and the user id.
// Tests build their own.
type Env struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Getenv reads an environment variable (KRB5_CONFIG, KRB5CCNAME, KRB5_KTNAME).
	Getenv func(string) string
	// UID is the user id used for the default credential cache name /tmp/krb5cc_<uid>.
	UID int
}

// DefaultEnv returns the process's real environment.
func DefaultEnv() *Env {
	return &Env{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, Getenv: os.Getenv, UID: os.Getuid()}
}

// Main runs kclient with args and returns the exit code (see exitCode) after printing one line to stderr for a
// failure.
func Main(ctx context.Context, args []string, env *Env) int {
	root := NewRootCmd(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var se *statusError
		if !errors.As(err, &se) || se.msg != "" {
			fmt.Fprintln(env.ErrOut, errorLine(err))
		}
		return exitCode(err)
	}
	return 0
}

// NewRootCmd builds the kclient command tree.
func NewRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "kclient",
		Short:         "Kerberos v5 client: get, list and destroy tickets",
		Long:          "Kerberos v5 client: get, list and destroy tickets, like MIT's kinit, klist, kvno and kdestroy.\n\n" + cli.ExitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.ErrOut)
	root.AddCommand(NewCmdLogin(env, nil), NewCmdList(env, nil), NewCmdDestroy(env, nil))
	root.AddCommand(NewCmdTicket(env, nil), NewCmdRenew(env, nil))
	root.AddCommand(NewCmdRequest(env, nil), NewCmdPasswd(env, nil))
	root.AddCommand(NewCmdWalkthrough(env, nil), NewCmdExplain(env, nil))
	// Flag, argument and unknown-command errors become one "kclient: ..." line and exit 2; examples; completion.
	cli.Prepare(root, examples)
	return root
}

// usageError is a command-line mistake (unknown flag, bad argument count).
type usageError struct{ err error }

// Error implements error.
func (e *usageError) Error() string { return e.err.Error() }

// Unwrap returns the flag parser's error.
func (e *usageError) Unwrap() error { return e.err }

// userError carries the one line shown to the user while keeping the full cause for errors.Is/As.
type userError struct {
	msg string
	err error
}

// Error implements error with the user-facing line.
func (e *userError) Error() string { return e.msg }

// Unwrap returns the underlying cause.
func (e *userError) Unwrap() error { return e.err }

// statusError ends a command with an exit code and msg as its one stderr line, or no line at all when msg is
// empty (list -s, which reports by exit status alone).
type statusError struct {
	code int
	msg  string
	err  error
}

// Error implements error.
func (e *statusError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *statusError) Unwrap() error { return e.err }

// exitCode maps a command's error to kclient's exit status (cli.Exit*): 2 for a usage error, 3 when the KDC
// (or a service) refused, a ticket did not verify or a server did not prove itself, 4 when no KDC answered, 1
// for everything else.
func exitCode(err error) int {
	var se *statusError
	var ue *usageError
	var ke *client.KDCError
	var unreach *client.UnreachableError
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ue), cli.IsUsage(err):
		return cli.ExitUsage
	case errors.As(err, &ke), errors.Is(err, client.ErrServerNotProven), errors.Is(err, client.ErrNegotiateRejected):
		return cli.ExitAuth
	case errors.As(err, &unreach):
		return cli.ExitUnreachable
	}
	return cli.ExitFailure
}

// errorLine renders err as the single stderr line: prefixed "kclient: ", without newlines.
func errorLine(err error) string {
	msg := err.Error()
	var ue *usageError
	if errors.As(err, &ue) || cli.IsUsage(err) {
		msg += " (see kclient --help)"
	}
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
	if !strings.HasPrefix(msg, "kclient: ") {
		msg = "kclient: " + msg
	}
	return msg
}
