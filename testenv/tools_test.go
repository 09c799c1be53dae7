package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recordingTB captures Skipf/Fatalf instead of acting on them.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func TestRequireToolMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			t.Setenv("PATH", t.TempDir())
			rec := &recordingTB{TB: t}
			if p := RequireTool(rec, "kinit-does-not-exist"); p != "" {
				t.Fatalf("RequireTool found %q", p)
			}
			msg := rec.skipped
			if ci == "true" {
				msg = rec.fatal
				if rec.skipped != "" {
					t.Errorf("CI=true skipped instead of failing: %s", rec.skipped)
				}
			} else if rec.fatal != "" {
				t.Errorf("CI unset failed instead of skipping: %s", rec.fatal)
			}
			if !strings.Contains(msg, "kinit-does-not-exist not found") {
				t.Errorf("message %q does not name the tool", msg)
			}
		})
	}
	t.Setenv("CI", "")
	rec := &recordingTB{TB: t}
	RequireTool(rec, "klist-missing")
	toolPackages["klist-missing"] = "krb5-user"
	defer delete(toolPackages, "klist-missing")
	RequireTool(rec, "klist-missing")
	if !strings.Contains(rec.skipped, "apt-get install -y krb5-user") {
		t.Errorf("skip message %q does not name the Debian package", rec.skipped)
	}
}

func TestRun(t *testing.T) {
	stdout, stderr, code := Run(t, nil, "hello\n", "/bin/sh", "-c", "read x; echo out:$x; echo err >&2; exit 3")
	if stdout != "out:hello\n" || stderr != "err\n" || code != 3 {
		t.Errorf("Run = %q, %q, %d", stdout, stderr, code)
	}
	_, _, code = RunTimeout(t, 200_000_000, nil, "", "/bin/sh", "-c", "sleep 30")
	if code != -1 {
		t.Errorf("timed-out command: code %d, want -1", code)
	}
}
