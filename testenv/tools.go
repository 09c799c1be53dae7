package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CommandTimeout bounds every command started by [Run].
const CommandTimeout = 60 * time.Second

// toolPackages names the Debian package that ships each peer binary, for the
// message printed when a tool is missing.
var toolPackages = map[string]string{
	"kinit":        "krb5-user",
	"klist":        "krb5-user",
	"kvno":         "krb5-user",
	"kdestroy":     "krb5-user",
	"ktutil":       "krb5-user",
	"krb5kdc":      "krb5-kdc",
	"kdb5_util":    "krb5-kdc",
	"kadmin.local": "krb5-admin-server",
	"gss-client":   "krb5-gss-samples",
	"gss-server":   "krb5-gss-samples",
	"apt-get":      "apt",
	"dpkg":         "dpkg",
}

// sbinDirs are searched after PATH: kdb5_util, krb5kdc and kadmin.local live in
// /usr/sbin, which is not on a non-root user's PATH on Debian.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// ciMode reports whether we run on CI, where a missing peer is a failure.
func ciMode() bool { return os.Getenv("CI") == "true" }

// LookTool finds an executable on PATH or in the sbin directories.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if !strings.Contains(name, "/") {
		for _, d := range sbinDirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s: executable not found in PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// RequireTool returns the path of the named peer binary. When it is missing the
// test is skipped with the Debian package to install, or fails when CI=true.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := LookTool(name)
	if err == nil {
		return p
	}
	if pkg := toolPackages[name]; pkg != "" {
		unavailable(t, "%s not found; install the Debian package %s (apt-get install -y %s): %v", name, pkg, pkg, err)
	} else {
		unavailable(t, "%s not found; install the package that ships it: %v", name, err)
	}
	return ""
}

// unavailable skips the test, or fails it when CI=true.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if ciMode() {
		t.Fatalf("CI=true, a missing peer is a failure: "+format, args...)
		return
	}
	t.Skipf(format, args...)
}

// Run runs name with args in env (nil inherits the test's environment), feeding
// stdin when it is not empty. It returns stdout, stderr and the exit code (-1 if
// the command could not be started or was killed). Each command is bounded by
// [CommandTimeout]; on timeout its process group is killed by PID. The command,
// its exit code and its output are written to the test log.
func Run(t testing.TB, env []string, stdin string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return RunTimeout(t, CommandTimeout, env, stdin, name, args...)
}

// RunTimeout is [Run] with an explicit bound.
func RunTimeout(t testing.TB, timeout time.Duration, env []string, stdin string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var outb, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &errb
	cmd.SysProcAttr = childAttr(true)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	code = exitCode(err)
	if ctx.Err() == context.DeadlineExceeded {
		code = -1
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	stdout, stderr = outb.String(), errb.String()
	t.Logf("$ %s %s  [rc=%d, %v]%s%s", filepath.Base(name), strings.Join(args, " "), code,
		time.Since(start).Round(time.Millisecond), indent("stdout", stdout), indent("stderr", stderr))
	if code == -1 {
		t.Logf("   %s: %v", filepath.Base(name), err)
	}
	return stdout, stderr, code
}

// exitCode maps the result of cmd.Run to an exit code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if c := ee.ExitCode(); c >= 0 {
			return c
		}
	}
	return -1
}

// indent formats captured output for the test log.
func indent(label, s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	const limit = 8000
	if len(s) > limit {
		s = s[:limit] + "\n…(truncated)"
	}
	return "\n   " + label + ":\n      " + strings.ReplaceAll(s, "\n", "\n      ")
}
