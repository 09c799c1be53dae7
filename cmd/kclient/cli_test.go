package main

import (
	"strings"
	"testing"

	"github.com/kerbkit/kerbkit/internal/cli"
)

func TestExamples(t *testing.T) {
	root := NewRootCmd(&Env{Getenv: func(string) string { return "" }})
	for _, err := range cli.CheckExamples(root) {
		t.Error(err)
	}
	// Every command's --help shows its examples.
	for _, path := range cli.Commands(root) {
		args := append(strings.Fields(path)[1:], "--help")
		r := runKClient(t, nil, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "\nExamples:\n") {
			t.Errorf("%s --help: exit %d, no Examples section:\n%s", path, r.code, r.stdout)
		}
	}
	if r := runKClient(t, nil, "", "--help"); !strings.Contains(r.stdout, "Exit status: 0 success, 1 failure, 2 usage error") {
		t.Errorf("kclient --help does not document the exit codes:\n%s", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runKClient(t, nil, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "kclient") || len(r.stdout) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, r.code, len(r.stdout), r.stderr)
		}
	}
	// Subcommands, flags, and enctype names for ticket -e.
	r := runKClient(t, nil, "", "__complete", "")
	for _, want := range []string{"login\t", "list\t", "ticket\t", "destroy\t"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("completing a command: no %q in\n%s", want, r.stdout)
		}
	}
	r = runKClient(t, nil, "", "__complete", "ticket", "-e", "aes")
	if !strings.Contains(r.stdout, "aes256-cts-hmac-sha1-96\n") || !strings.Contains(r.stdout, "aes128-cts-hmac-sha256-128\n") {
		t.Errorf("completing ticket -e: %q", r.stdout)
	}
	r = runKClient(t, nil, "", "__complete", "login", "--not-")
	if !strings.Contains(r.stdout, "--not-forwardable") || !strings.Contains(r.stdout, "--not-proxiable") {
		t.Errorf("completing login flags: %q", r.stdout)
	}
}
