// Package cli holds what the kdc, kclient and kservice commands share: their
// exit codes, the usage-error type, and the preparation of a cobra command
// tree (usage errors, examples, shell completion).
package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of kdc, kclient and kservice. Every failure also prints one line
// on standard error.
const (
	// ExitOK: success.
	ExitOK = 0
	// ExitFailure: any other failure (a file that cannot be read, a service
	// that cannot listen, no credentials cache, ...).
	ExitFailure = 1
	// ExitUsage: the command line is wrong: an unknown command or flag, a
	// missing or extra argument, a bad flag value or combination.
	ExitUsage = 2
	// ExitAuth: authentication failed: the KDC refused the request (wrong
	// password, unknown principal, expired ticket, policy), or a ticket or
	// keytab did not verify.
	ExitAuth = 3
	// ExitUnreachable: no KDC of the realm answered.
	ExitUnreachable = 4
)

// ExitCodesHelp documents the exit codes, for the --help of each command.
const ExitCodesHelp = `Exit status: 0 success, 1 failure, 2 usage error (unknown command or flag, bad argument),
3 authentication failure (the KDC refused, or a ticket or keytab did not verify), 4 no KDC reachable.`

// UsageError is a command-line mistake: an unknown command or flag, a wrong
// number of arguments, a bad flag value or combination. It exits with
// ExitUsage.
type UsageError struct {
	Err error
	// Command is the path of the command whose line was wrong ("kdc principal
	// add"), when known, for a "see ... --help" hint.
	Command string
}

// Error implements error.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}

// HelpHint returns " (see `COMMAND --help`)" for a usage error, naming the
// command whose line was wrong (else root), and "" for any other error.
func HelpHint(err error, root string) string {
	var ue *UsageError
	if !errors.As(err, &ue) {
		return ""
	}
	c := ue.Command
	if c == "" {
		c = root
	}
	return " (see `" + c + " --help`)"
}

// Prepare readies a command tree before it runs:
//
//   - flag errors, positional-argument errors and unknown subcommands become
//     UsageErrors (a command that only groups others shows its help when run
//     alone);
//   - every command without an Example gets the one examples lists for its
//     path ("kclient login"), indented as cobra shows it;
//   - shell completion ("NAME completion bash|zsh|fish|powershell") is on.
func Prepare(root *cobra.Command, examples map[string]string) {
	root.CompletionOptions.DisableDefaultCmd = false
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &UsageError{Err: err, Command: c.CommandPath()} })
	walk(root, func(c *cobra.Command) {
		if ex, ok := examples[c.CommandPath()]; ok && c.Example == "" {
			c.Example = indent(ex)
		}
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = unknownSubcommand
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		case c.Args != nil:
			orig := c.Args
			c.Args = func(c *cobra.Command, args []string) error {
				if err := orig(c, args); err != nil {
					return &UsageError{Err: err, Command: c.CommandPath()}
				}
				return nil
			}
		}
	})
}

// unknownSubcommand is the argument check of a command that only groups
// others: any argument left is an unknown subcommand.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's own default for its suggestions
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return &UsageError{Err: errors.New(msg), Command: c.CommandPath()}
}

// walk calls fn for c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// indent formats an example block as cobra prints Example: two spaces in.
func indent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}

// Commands lists the paths of the commands of the tree that users run (not
// help, not completion), sorted: what examples must cover.
func Commands(root *cobra.Command) []string {
	var out []string
	walk(root, func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || (c.HasParent() && c.Parent().Name() == "completion") {
			return
		}
		out = append(out, c.CommandPath())
	})
	sort.Strings(out)
	return out
}

// CheckExamples checks the examples of a tree: every command users run has
// one, and every example line that runs this program (it starts with the
// root's name) names an existing command with flags it has and a number of
// arguments it takes. It returns one error per problem.
func CheckExamples(root *cobra.Command) []error {
	var errs []error
	byPath := map[string]*cobra.Command{}
	walk(root, func(c *cobra.Command) { byPath[c.CommandPath()] = c })
	for _, path := range Commands(root) {
		c := byPath[path]
		if strings.TrimSpace(c.Example) == "" {
			errs = append(errs, fmt.Errorf("%s: no Example", path))
			continue
		}
		for _, line := range strings.Split(c.Example, "\n") {
			words := shellWords(line)
			if len(words) == 0 || words[0] != root.Name() {
				continue
			}
			if err := parseOnly(root, words[1:]); err != nil {
				errs = append(errs, fmt.Errorf("%s: example %q: %w", path, strings.TrimSpace(line), err))
			}
		}
	}
	return errs
}

// parseOnly resolves args to a command and parses its flags and arguments as
// Execute would, without running anything.
func parseOnly(root *cobra.Command, args []string) error {
	c, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if err := c.ParseFlags(rest); err != nil {
		return err
	}
	if c.HasSubCommands() && !c.Runnable() && len(c.Flags().Args()) > 0 {
		return unknownSubcommand(c, c.Flags().Args())
	}
	return c.ValidateArgs(c.Flags().Args())
}

// shellWords splits one line of an example as a POSIX shell would split a
// simple command: quotes and backslashes, up to a comment, pipe, redirection,
// separator or background "&". A "$(...)" or "$VAR" stays one word.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				cur.WriteByte(line[i])
			}
		case ch == '\\' && i+1 < len(line):
			inWord = true
			i++
			cur.WriteByte(line[i])
		case ch == ' ' || ch == '\t':
			flush()
		case strings.IndexByte("#|&;<>", ch) >= 0 && !inWord:
			flush()
			return words
		case strings.IndexByte("|&;<>", ch) >= 0:
			flush()
			return words
		default:
			inWord = true
			cur.WriteByte(ch)
		}
	}
	flush()
	return words
}
