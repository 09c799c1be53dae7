package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbkit/kerbkit/internal/cli"
)

func TestExamples(t *testing.T) {
	root := newRootCmd(&env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	for _, err := range cli.CheckExamples(root) {
		t.Error(err)
	}
	for _, path := range cli.Commands(root) {
		args := append(strings.Fields(path)[1:], "--help")
		code, out, _ := kdcRun(t, "", args...)
		if code != 0 || !strings.Contains(out, "\nExamples:\n") {
			t.Errorf("%s --help: exit %d, no Examples section:\n%s", path, code, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kdc.db")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, cli.ExitUsage, "kdc: unknown command \"frobnicate\" for \"kdc\" (see `kdc --help`)"},
		{[]string{"principal", "ad"}, cli.ExitUsage, "kdc: unknown command \"ad\" for \"kdc principal\" (did you mean add?) (see `kdc principal --help`)"},
		{[]string{"principal", "add", "--bogus", "--db", db}, cli.ExitUsage, "kdc: unknown flag: --bogus (see `kdc principal add --help`)"},
		{[]string{"principal", "show", "--db", db}, cli.ExitUsage, "kdc: accepts 1 arg(s), received 0 (see `kdc principal show --help`)"},
		{[]string{"init", "--db", db}, cli.ExitUsage, "kdc: --realm is required (see `kdc --help`)"},
		{[]string{"init", "--realm", "R", "--max-life", "forever", "--db", db}, cli.ExitUsage, "kdc: invalid argument"},
		{[]string{"principal", "list", "--db", db}, cli.ExitFailure, "kdc: "},
	} {
		code, _, stderr := kdcRun(t, "", c.args...)
		if code != c.code || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("kdc %v: exit %d, stderr %q; want exit %d, %q", c.args, code, stderr, c.code, c.want)
		}
	}
	// A group alone shows its help.
	if code, out, _ := kdcRun(t, "", "principal"); code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("kdc principal: exit %d\n%s", code, out)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, stderr := kdcRun(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "kdc") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), stderr)
		}
	}
	_, out, _ := kdcRun(t, "", "__complete", "principal", "")
	for _, want := range []string{"add\t", "passwd\t", "purgekeys\t"} {
		if !strings.Contains(out, want) {
			t.Errorf("completing kdc principal: no %q in\n%s", want, out)
		}
	}
	_, out, _ = kdcRun(t, "", "__complete", "principal", "add", "x", "--enctypes", "aes")
	if !strings.Contains(out, "aes256-cts-hmac-sha1-96\n") {
		t.Errorf("completing --enctypes: %q", out)
	}
}
