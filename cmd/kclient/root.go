package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
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

// Main runs kclient with args and returns the exit code: 0 on success, 1 after printing one line to stderr.
func Main(ctx context.Context, args []string, env *Env) int {
	root := NewRootCmd(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(env.ErrOut, errorLine(err))
		return 1
	}
	return 0
}

// NewRootCmd builds the kclient command tree. The subcommands ticket, request and walkthrough will join login,
// list and destroy here.
func NewRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "kclient",
		Short:         "Kerberos v5 client: get, list and destroy tickets",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flag parsing errors become one "kclient: ..." line like every other error.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err: err}
	})
	root.AddCommand(NewCmdLogin(env, nil), NewCmdList(env, nil), NewCmdDestroy(env, nil))
	root.AddCommand(NewCmdTicket(env, nil), NewCmdRenew(env, nil))
	root.AddCommand(NewCmdRequest(env, nil))
	root.AddCommand(NewCmdWalkthrough(env, nil), NewCmdExplain(env, nil))
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

// errorLine renders err as the single stderr line: prefixed "kclient: ", without newlines.
func errorLine(err error) string {
	msg := err.Error()
	var ue *usageError
	if errors.As(err, &ue) {
		msg += " (see kclient --help)"
	}
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
	if !strings.HasPrefix(msg, "kclient: ") {
		msg = "kclient: " + msg
	}
	return msg
}
