package cli

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// tree builds "prog" with a group "grp" holding "leaf NAME [-f]".
func tree() *cobra.Command {
	root := &cobra.Command{Use: "prog", SilenceUsage: true, SilenceErrors: true}
	grp := &cobra.Command{Use: "grp", Short: "a group"}
	leaf := &cobra.Command{Use: "leaf NAME", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	leaf.Flags().BoolP("force", "f", false, "")
	grp.AddCommand(leaf)
	root.AddCommand(grp)
	return root
}

func run(root *cobra.Command, args ...string) (string, error) {
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestPrepareUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `unknown command "nope" for "prog"`},
		{[]string{"grp", "lef"}, `unknown command "lef" for "prog grp" (did you mean leaf?)`},
		{[]string{"grp", "leaf"}, "accepts 1 arg(s), received 0"},
		{[]string{"grp", "leaf", "a", "--bogus"}, "unknown flag: --bogus"},
	} {
		root := tree()
		Prepare(root, nil)
		_, err := run(root, c.args...)
		if !IsUsage(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (usage %v), want a usage error with %q", c.args, err, IsUsage(err), c.want)
		}
	}
	// A group alone shows its help and succeeds; a good command line runs.
	root := tree()
	Prepare(root, nil)
	if out, err := run(root, "grp"); err != nil || !strings.Contains(out, "leaf") {
		t.Errorf("group alone: %v, %q", err, out)
	}
	root = tree()
	Prepare(root, nil)
	if _, err := run(root, "grp", "leaf", "x", "-f"); err != nil {
		t.Errorf("good command line: %v", err)
	}
	// Shell completion is available.
	root = tree()
	Prepare(root, nil)
	if out, err := run(root, "completion", "bash"); err != nil || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: %v, %.80q", err, out)
	}
}

func TestCheckExamples(t *testing.T) {
	root := tree()
	Prepare(root, map[string]string{
		"prog":          "prog grp leaf alice",
		"prog grp":      "prog grp leaf -f alice   # force\nprog grp leaf --nope x",
		"prog grp leaf": "prog grp leaf\necho prog grp leaf --nope # not this program",
	})
	got := CheckExamples(root)
	var msgs []string
	for _, e := range got {
		msgs = append(msgs, e.Error())
	}
	want := []string{
		`prog grp: example "prog grp leaf --nope x": unknown flag: --nope`,
		`prog grp leaf: example "prog grp leaf": accepts 1 arg(s), received 0`,
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("CheckExamples:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	// Commands without an example are reported.
	root = tree()
	Prepare(root, nil)
	if got := CheckExamples(root); len(got) != 3 || !strings.HasSuffix(got[0].Error(), "no Example") {
		t.Errorf("no examples: %v", got)
	}
	if c, _, _ := root.Find([]string{"grp"}); c.Example != "" {
		t.Error("example set without one given")
	}
}

func TestShellWords(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"  kclient login -l 1h alice   # comment", []string{"kclient", "login", "-l", "1h", "alice"}},
		{`kvno -k "$(dirname "$KRB5_CONFIG")/service.keytab" host/x`, []string{"kvno", "-k", `$(dirname $KRB5_CONFIG)/service.keytab`, "host/x"}},
		{"kdc principal add bob < pw.txt", []string{"kdc", "principal", "add", "bob"}},
		{"kservice --keytab kt --listen 127.0.0.1:0 &", []string{"kservice", "--keytab", "kt", "--listen", "127.0.0.1:0"}},
		{`a 'b c' d\ e x#y`, []string{"a", "b c", "d e", "x#y"}},
		{"", nil},
	} {
		if got := shellWords(c.line); !slices.Equal(got, c.want) {
			t.Errorf("shellWords(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}

func TestHelpHint(t *testing.T) {
	root := tree()
	Prepare(root, nil)
	_, err := run(root, "grp", "leaf", "--bogus", "x")
	if got := HelpHint(err, "prog"); got != " (see `prog grp leaf --help`)" {
		t.Errorf("HelpHint = %q", got)
	}
	if got := HelpHint(Usagef("bad"), "prog"); got != " (see `prog --help`)" {
		t.Errorf("HelpHint of Usagef = %q", got)
	}
	if got := HelpHint(errors.New("other"), "prog"); got != "" {
		t.Errorf("HelpHint of another error = %q", got)
	}
}
