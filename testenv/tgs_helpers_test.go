package testenv

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the TGS interop tests (tgs_*_test.go).

// tgsKlistTimeLayout is MIT klist's date format under LC_ALL=C ("%x %X").
const tgsKlistTimeLayout = "01/02/06 15:04:05"

// tgsKlistTime parses a klist date (local time, as klist prints it).
func tgsKlistTime(t *testing.T, what, s string) time.Time {
	t.Helper()
	ts, err := time.ParseInLocation(tgsKlistTimeLayout, s, time.Local)
	if err != nil {
		t.Fatalf("klist %s %q: %v", what, s, err)
	}
	return ts
}

// tgsNear fails the test unless got is within tol of want.
func tgsNear(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if d := got - want; d > tol || d < -tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}

// tgsRequireTicket returns the klist entry for server or fails the test.
func tgsRequireTicket(t *testing.T, k *Klist, server string) *KlistTicket {
	t.Helper()
	tk := k.Ticket(server)
	if tk == nil {
		t.Fatalf("klist: no ticket for %s in %+v", server, k.Tickets)
	}
	return tk
}

// tgsFaketime runs name args... under `faketime -f +OFFSET`, so the peer's clock
// agrees with an in-process KDC whose Clock was advanced by offset.
func tgsFaketime(t *testing.T, env []string, stdin string, offset time.Duration, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ft, err := LookTool("faketime")
	if err != nil {
		unavailable(t, "faketime not found; install the Debian package faketime (apt-get install -y faketime): %v", err)
	}
	return Run(t, env, stdin, ft, append([]string{"-f", tgsFaketimeSpec(offset), name}, args...)...)
}

// tgsMustFaketime is tgsFaketime for commands that must succeed: on failure the
// test stops with their stderr, the KRB5_TRACE excerpt and r's KDC log.
func tgsMustFaketime(t *testing.T, r *InProcRealm, env []string, offset time.Duration, name string, args ...string) (stdout string) {
	t.Helper()
	stdout, stderr, code := tgsFaketime(t, env, "", offset, name, args...)
	if code != 0 {
		t.Fatalf("faketime -f %s %s %s: exit %d: %s\nKRB5_TRACE excerpt:\n%s\nKDC log:\n%s", tgsFaketimeSpec(offset), filepath.Base(name),
			strings.Join(args, " "), code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(env)), tail(r.Log(), 4000))
	}
	return stdout
}

// tgsFaketimeSpec renders a libfaketime relative offset: "+10m", or seconds.
func tgsFaketimeSpec(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%+dm", int64(d/time.Minute))
	}
	return fmt.Sprintf("%+d", int64(d/time.Second))
}

// tgsTraceExcerpt returns the lines of a KRB5_TRACE that matter when a TGS
// exchange fails: requests, replies, errors and the decisive checks.
func tgsTraceExcerpt(trace string) string {
	var out []string
	for _, l := range strings.Split(trace, "\n") {
		for _, k := range []string{"Sending", "Received", "TGS", "error", "Error", "skew", "Skew", "Getting credentials",
			"Retrieving", "Response was", "Decoding", "reply", "Validat", "Renew", "Terminating"} {
			if strings.Contains(l, k) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// tgsLogLines returns the KDC log lines that contain every one of subs.
func tgsLogLines(log string, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		ok := l != ""
		for _, s := range subs {
			if !strings.Contains(l, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// tgsRequireLog fails the test unless some KDC log line contains every one of
// subs, waiting up to logWait for the log to catch up, and returns the
// matching lines.
func tgsRequireLog(t *testing.T, log func() string, subs ...string) []string {
	t.Helper()
	lines := waitLogLines(log, subs...)
	if len(lines) == 0 {
		t.Errorf("KDC log has no line with all of %q:\n%s", subs, tail(log(), 6000))
	}
	return lines
}

// tgsKvnoRE matches kvno's (and kclient ticket's) "PRINC: kvno = N".
var tgsKvnoRE = regexp.MustCompile(`(?m)^(\S+): kvno = ([0-9]+)`)

// tgsKvnoOf returns the kvno printed for princ, or -1.
func tgsKvnoOf(out, princ string) int {
	for _, m := range tgsKvnoRE.FindAllStringSubmatch(out, -1) {
		if m[1] == princ {
			var n int
			fmt.Sscan(m[2], &n)
			return n
		}
	}
	return -1
}

// tgsKclientHas skips the test unless our kclient has the subcommand (ticket and
// renew are being added while these tests are written).
func tgsKclientHas(t *testing.T, sub string) {
	t.Helper()
	_, kclient := Binaries(t)
	stdout, _, _ := Run(t, ClientEnviron(nil), "", kclient, "--help")
	if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(sub) + `\s`).MatchString(stdout) {
		t.Skipf("kclient has no %q subcommand yet (kclient --help lists none); skipping until cmd/kclient gains it", sub)
	}
}

// logWait bounds how long waitLogLines waits for the KDC's log to catch up.
const logWait = 3 * time.Second

// waitLogLines is tgsLogLines on the KDC log that log returns, waiting up to
// logWait for a first match: the KDC's log reaches the test through a pipe,
// which can lag the client's exit on a loaded machine.
// logWith returns the KDC's log once it contains every one of subs, or as it is
// after logWait: the last lines reach the test through a pipe, after the
// client that caused them may have exited.
func logWith(log func() string, subs ...string) string {
	deadline := time.Now().Add(logWait)
	for {
		l := log()
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all || time.Now().After(deadline) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantLog fails t unless the KDC's log comes to contain every one of subs
// within logWait.
func wantLog(t *testing.T, log func() string, subs ...string) {
	t.Helper()
	wantContains(t, "KDC log", logWith(log, subs...), subs...)
}

func waitLogLines(log func() string, subs ...string) []string {
	deadline := time.Now().Add(logWait)
	for {
		lines := tgsLogLines(log(), subs...)
		if len(lines) > 0 || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}
