package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/testenv"
)

// The tests in this file run MIT kinit and kvno and kclient login and ticket with the same flags against the
// same KDC (ours, in process), each into a cache of its own, and compare what they print and what MIT klist
// shows of the two caches, with the times and the cache names set aside.

// parityRealm is an in-process realm PARITY.TEST with alice, bob, host/localhost, HTTP/localhost and
// host/nodots (a host [domain_realm] does not map), and a krb5.conf with forwardable and proxiable on, so that
// -F and -P have something to turn off.
type parityRealm struct {
	*testenv.InProcRealm
	conf string // krb5.conf
}

func startParityRealm(t *testing.T) *parityRealm {
	t.Helper()
	r := testenv.NewInProcRealm(t, testenv.InProcOptions{Name: "PARITY.TEST",
		Principals: []testenv.Principal{
			{Name: "alice", Password: "alice-pw"}, {Name: "bob", Password: "bob-pw"},
			{Name: "host/localhost", RandomKey: true}, {Name: "HTTP/localhost", RandomKey: true}, {Name: "host/nodots", RandomKey: true},
		},
		KeytabPrincipals: []string{"host/localhost", "host/nodots"},
	})
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	text := testenv.KRB5Conf(r.Name, r.Addr, testenv.EnvOptions{Forwardable: true, Libdefaults: []string{"proxiable = true"}})
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return &parityRealm{InProcRealm: r, conf: conf}
}

// timesRE matches klist's dates; cacheRE the per-run cache paths and DIR: cache file names.
var (
	timesRE = regexp.MustCompile(`\d\d/\d\d/\d\d \d\d:\d\d:\d\d`)
	tktRE   = regexp.MustCompile(`/tkt[A-Za-z0-9_]+`)
)

// mask replaces what legitimately differs between two runs: times, the given paths, random cache file names.
func mask(s string, paths map[string]string) string {
	for p, with := range paths {
		s = strings.ReplaceAll(s, p, with)
	}
	s = tktRE.ReplaceAllString(s, "/tktNEW")
	return timesRE.ReplaceAllString(s, "TIME")
}

// withoutPrompt drops kinit's password prompt, which MIT writes to standard output even when standard input is
// not a terminal (kclient prompts only on a terminal).
func withoutPrompt(s string) string {
	return regexp.MustCompile(`Password for [^ ]+: \n?`).ReplaceAllString(s, "")
}

// kinitBoth runs kinit ARGS and kclient login ARGS, with the password on stdin, each with its own KRB5CCNAME,
// and compares their output and exit status; it returns both runs.
func (r *parityRealm) kinitBoth(t *testing.T, what, password, mitCC, ourCC string, args ...string) (got, mit result) {
	t.Helper()
	mitEnv := map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": mitCC, "KRB5RCACHETYPE": "none"}
	ourEnv := map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": ourCC}
	mit = mitRunStdin(t, mitEnv, password+"\n", "kinit", args...)
	got = runKClient(t, ourEnv, password+"\n", append([]string{"login"}, args...)...)
	paths := map[string]string{strings.TrimPrefix(strings.TrimPrefix(mitCC, "DIR:"), "FILE:"): "CACHE", strings.TrimPrefix(strings.TrimPrefix(ourCC, "DIR:"), "FILE:"): "CACHE"}
	mit.stdout = withoutPrompt(mit.stdout)
	if g, m := mask(got.stdout, paths), mask(mit.stdout, paths); g != m {
		t.Errorf("%s: stdout %q, kinit %q", what, g, m)
	}
	if g, m := mask(stripProgram(got.stderr), paths), mask(stripProgram(mit.stderr), paths); g != m {
		t.Errorf("%s: stderr differs\n--- kclient\n%s--- kinit\n%s", what, g, m)
	}
	if (got.code == 0) != (mit.code == 0) {
		t.Errorf("%s: exit %d, kinit %d", what, got.code, mit.code)
	}
	return got, mit
}

// klistSame compares MIT klist ARGS of two caches, times and cache names aside.
func (r *parityRealm) klistSame(t *testing.T, what, mitCC, ourCC string, args ...string) string {
	t.Helper()
	env := func(cc string) map[string]string { return map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": cc} }
	m, g := mitRun(t, env(mitCC), "klist", args...), mitRun(t, env(ourCC), "klist", args...)
	paths := map[string]string{strings.TrimPrefix(strings.TrimPrefix(mitCC, "DIR:"), "FILE:"): "CACHE", strings.TrimPrefix(strings.TrimPrefix(ourCC, "DIR:"), "FILE:"): "CACHE"}
	if mg, gg := mask(m.stdout, paths), mask(g.stdout, paths); mg != gg || m.code != g.code {
		t.Errorf("%s: klist %v of kclient's cache differs from kinit's:\n--- kclient's (exit %d)\n%s--- kinit's (exit %d)\n%s", what, args, g.code, gg, m.code, mg)
	}
	return g.stdout
}

// mitRunStdin is mitRun with standard input.
func mitRunStdin(t *testing.T, env map[string]string, stdin, name string, args ...string) result {
	t.Helper()
	return mitRunIn(t, env, stdin, name, args...)
}

func TestLoginFlagsMatchKinit(t *testing.T) {
	testenv.RequireTool(t, "kinit")
	r := startParityRealm(t)
	dir := t.TempDir()
	for i, c := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"-p proxiable", []string{"-p"}},
		{"-P not proxiable", []string{"-P"}},
		{"-F not forwardable", []string{"-F"}},
		{"-f -P", []string{"-f", "-P"}},
		{"-A addressless", []string{"-A"}},
		{"-S service", []string{"-S", "host/localhost"}},
		{"-S service with a realm", []string{"-S", "HTTP/localhost@ELSEWHERE"}},
		{"-s postdated", []string{"-s", "1h", "-l", "2h"}},
		{"-s a time in the past", []string{"-s", "20200101000000", "-l", "2h"}},
		{"-r renewable, -l", []string{"-r", "2d", "-l", "5h", "-F", "-P"}},
	} {
		mitCC := "FILE:" + filepath.Join(dir, "mit"+string(rune('a'+i)))
		ourCC := "FILE:" + filepath.Join(dir, "our"+string(rune('a'+i)))
		got, mit := r.kinitBoth(t, c.name, "alice-pw", mitCC, ourCC, append(c.args, "alice")...)
		if got.code != 0 || mit.code != 0 {
			continue // compared by kinitBoth
		}
		listing := r.klistSame(t, c.name, mitCC, ourCC, "-f", "-e")
		t.Logf("%s:\n%s", c.name, listing)
	}
	// The postdated ticket starts an hour from now and lasts two.
	cc := readCache(t, filepath.Join(dir, "our"+string(rune('a'+8))))
	tgt := cc.Credentials[0]
	if d := time.Until(tgt.StartTime); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("-s 1h: starts in %v", d)
	}
	if d := tgt.EndTime.Sub(tgt.StartTime); d != 2*time.Hour {
		t.Errorf("-s 1h -l 2h: lasts %v", d)
	}
}

func TestLoginFlagErrorsMatchKinit(t *testing.T) {
	testenv.RequireTool(t, "kinit")
	r := startParityRealm(t)
	dir := t.TempDir()
	for _, args := range [][]string{{"-f", "-F"}, {"-p", "-P"}, {"-s", "soon"}} {
		env := map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": filepath.Join(dir, "cc")}
		mit := mitRunStdin(t, env, "alice-pw\n", "kinit", append(args, "alice")...)
		got := runKClient(t, env, "alice-pw\n", append([]string{"login"}, append(args, "alice")...)...)
		// kinit prints its one-line complaint and then its usage; kclient the complaint alone. Both exit 2.
		first := strings.SplitN(mit.stderr, "\n", 2)[0]
		if got.code != 2 || mit.code != 2 || !strings.HasPrefix(stripProgram(got.stderr), first) {
			t.Errorf("login %v: exit %d %q; kinit exit %d, first line %q", args, got.code, got.stderr, mit.code, first)
		}
	}
	// Validating a postdated ticket before it starts: the KDC refuses both.
	mitCC, ourCC := filepath.Join(dir, "mit-post"), filepath.Join(dir, "our-post")
	r.kinitBoth(t, "-s 1h", "alice-pw", mitCC, ourCC, "-s", "1h", "alice")
	got, mit := r.kinitBoth(t, "-v too early", "", mitCC, ourCC, "-v")
	if mit.code == 0 || got.code != 3 || !strings.Contains(got.stderr, "Ticket not yet valid while validating credentials") {
		t.Errorf("login -v before the start: exit %d %q (kinit exit %d %q)", got.code, got.stderr, mit.code, mit.stderr)
	}
}

func TestLoginVerboseMatchesKinit(t *testing.T) {
	testenv.RequireTool(t, "kinit")
	r := startParityRealm(t)
	dir := t.TempDir()
	mitCC, ourCC := "FILE:"+filepath.Join(dir, "mit"), "FILE:"+filepath.Join(dir, "our")
	r.kinitBoth(t, "-V", "alice-pw", mitCC, ourCC, "-V", "alice")
	r.kinitBoth(t, "-V, no principal: the cache's", "alice-pw", mitCC, ourCC, "-V")
	r.kinitBoth(t, "-V -r (renewable)", "alice-pw", mitCC, ourCC, "-V", "-r", "1d", "alice")
	r.kinitBoth(t, "-V -R", "", mitCC, ourCC, "-V", "-R")
	r.kinitBoth(t, "-V -R PRINCIPAL", "", mitCC, ourCC, "-V", "-R", "alice")
	r.kinitBoth(t, "-V -k -t", "", mitCC, ourCC, "-V", "-k", "-t", r.Keytab, "host/localhost")
	r.kinitBoth(t, "-V -c", "alice-pw", filepath.Join(dir, "mit-c"), filepath.Join(dir, "our-c"), "-V", "-c", filepath.Join(dir, "c"), "alice")
	r.kinitBoth(t, "-V wrong password", "wrong", mitCC, ourCC, "-V", "alice")
}

func TestLoginIntoCollectionMatchesKinit(t *testing.T) {
	testenv.RequireTool(t, "kinit")
	r := startParityRealm(t)
	mitDir, ourDir := filepath.Join(t.TempDir(), "mit"), filepath.Join(t.TempDir(), "our")
	mitCC, ourCC := "DIR:"+mitDir, "DIR:"+ourDir
	steps := []struct {
		what, user, password string
	}{
		{"alice into an empty collection: the primary cache", "alice", "alice-pw"},
		{"bob: a new cache, made primary", "bob", "bob-pw"},
		{"alice again: her cache, made primary again", "alice", "alice-pw"},
		{"bob again", "bob", "bob-pw"},
	}
	for _, s := range steps {
		r.kinitBoth(t, s.what, s.password, mitCC, ourCC, "-V", s.user)
		r.klistSame(t, s.what, mitCC, ourCC, "-l")
		r.klistSame(t, s.what, mitCC, ourCC)
	}
	// kclient's own listing of its collection is MIT's listing of it.
	env := map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": ourCC}
	sameAsMIT(t, "list -l of the collection", runKClient(t, env, "", "list", "-l"), mitRun(t, env, "klist", "-l"), true)
	sameAsMIT(t, "list -A of the collection", runKClient(t, env, "", "list", "-A"), mitRun(t, env, "klist", "-A"), true)
}

func TestParseStartTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.Local)
	for in, want := range map[string]time.Time{
		"1h": now.Add(time.Hour),
		"90": now.Add(90 * time.Second),
		// Durations come first, as with kinit: these read as durations, not times of day.
		"093000":   now.Add(93000 * time.Second),
		"09:30":    now.Add(9*time.Hour + 30*time.Minute),
		"09:30:00": now.Add(9*time.Hour + 30*time.Minute),
		"25:00":    now.Add(25 * time.Hour),
		// Absolute times in kinit's formats.
		"20261201093000":       time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"2026.12.01.09.30.00":  time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"261201093000":         time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"26.12.01.09.30.00":    time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"2612010930":           time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"12/01/26:09:30:00":    time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"01-Dec-2026:09:30:00": time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"01-Dec-2026:09:30":    time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		"2026-12-01T09:30:00Z": time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		"20200101000000":       time.Date(2020, 1, 1, 0, 0, 0, 0, time.Local), // in the past: as given
	} {
		got, err := parseStartTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseStartTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"soon", "2026-13-01", "", "12/01/26"} {
		if _, err := parseStartTime(in, now); err == nil {
			t.Errorf("parseStartTime(%q): no error", in)
		}
	}
}

func TestTicketFlagsMatchKvno(t *testing.T) {
	testenv.RequireTool(t, "kvno")
	testenv.RequireTool(t, "kinit")
	r := startParityRealm(t)
	dir := t.TempDir()
	tgtCache := filepath.Join(dir, "tgt")
	if m := mitRunStdin(t, map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": tgtCache}, "alice-pw\n", "kinit", "alice"); m.code != 0 {
		t.Fatalf("kinit: %+v", m)
	}
	tgt, err := os.ReadFile(tgtCache)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.keytab")
	for i, c := range []struct {
		name string
		args []string
	}{
		{"-k: the keytab holds the key", []string{"-k", r.Keytab, "host/localhost"}},
		{"-k FILE:", []string{"-k", "FILE:" + r.Keytab, "host/nodots"}},
		{"-k: the keytab lacks the key", []string{"-k", r.Keytab, "HTTP/localhost"}},
		{"-k: no such keytab", []string{"-k", missing, "host/localhost"}},
		{"-q -k: the keytab lacks the key", []string{"-q", "-k", r.Keytab, "HTTP/localhost"}},
		{"-e aes128", []string{"-e", "aes128-cts-hmac-sha1-96", "host/localhost"}},
		{"-e alias", []string{"-e", "aes128-cts", "HTTP/localhost"}},
		{"-e and -k", []string{"-e", "aes128-cts-hmac-sha1-96", "-k", r.Keytab, "host/localhost"}},
		{"-S host localhost", []string{"-S", "host", "localhost"}},
		{"-S host, upper case and a trailing dot", []string{"-S", "host", "LocalHost."}},
		{"-S for a host [domain_realm] does not map", []string{"-S", "host", "nodots"}},
		{"-S and -k for that host", []string{"-S", "host", "-k", r.Keytab, "nodots"}},
		{"-S, two hosts", []string{"-S", "HTTP", "localhost", "localhost."}},
		{"-q", []string{"-q", "host/localhost"}},
		{"two services", []string{"host/localhost", "HTTP/localhost"}},
		{"unknown service", []string{"nope/localhost"}},
	} {
		mitCC, ourCC := filepath.Join(dir, fmt.Sprintf("mit%d", i)), filepath.Join(dir, fmt.Sprintf("our%d", i))
		for _, p := range []string{mitCC, ourCC} {
			if err := os.WriteFile(p, tgt, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mit := mitRun(t, map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": mitCC}, "kvno", c.args...)
		got := runKClient(t, map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": ourCC}, "", append([]string{"ticket"}, c.args...)...)
		// Same output; the exit status differs on failure by design (kvno: 1; kclient: 3 when the KDC or the
		// keytab refused, 1 otherwise).
		sameAsMIT(t, "ticket "+c.name, got, mit, false)
		if (got.code == 0) != (mit.code == 0) {
			t.Errorf("ticket %s: exit %d, kvno %d", c.name, got.code, mit.code)
		}
		r.klistSame(t, "ticket "+c.name, mitCC, ourCC, "-e")
	}
	// A bad enctype: kvno's words (kclient adds the list it knows), a usage error.
	cc := filepath.Join(dir, "bad-etype")
	if err := os.WriteFile(cc, tgt, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KRB5_CONFIG": r.conf, "KRB5CCNAME": cc}
	mit := mitRun(t, env, "kvno", "-e", "rot13", "host/localhost")
	got := runKClient(t, env, "", "ticket", "-e", "rot13", "host/localhost")
	if mit.code == 0 || got.code != 2 || !strings.HasPrefix(stripProgram(got.stderr), strings.TrimSpace(stripProgram(mit.stderr))) {
		t.Errorf("ticket -e rot13: exit %d %q; kvno exit %d %q", got.code, got.stderr, mit.code, mit.stderr)
	}
}

// TestLoginValidateMatchesKinit: a ticket postdated by 90 seconds, validated once the KDC's clock has passed its
// start (moved four minutes, within the five-minute clock skew, so both clients still agree with the KDC; the
// margin allows a loaded machine 2.5 minutes between the logins and the validations): kinit -v and kclient
// login -v both turn it valid, keeping its times.
func TestLoginValidateMatchesKinit(t *testing.T) {
	testenv.RequireTool(t, "kinit")
	r := startParityRealm(t)
	dir := t.TempDir()
	mitCC, ourCC := filepath.Join(dir, "mit"), filepath.Join(dir, "our")
	r.kinitBoth(t, "-s 90s", "alice-pw", mitCC, ourCC, "-s", "90s", "-l", "1h", "alice")
	before := r.klistSame(t, "-s 90s", mitCC, ourCC, "-f")
	if !strings.Contains(before, "Flags: FPDdiIA") {
		t.Fatalf("postdated TGT:\n%s", before)
	}
	r.Clock.Advance(4 * time.Minute)
	got, mit := r.kinitBoth(t, "-v -V", "", mitCC, ourCC, "-v", "-V")
	if got.code != 0 || mit.code != 0 {
		t.Fatalf("validate: kclient %+v, kinit %+v", got, mit)
	}
	after := r.klistSame(t, "-v", mitCC, ourCC, "-f")
	if !strings.Contains(after, "Flags: FPDdIA") {
		t.Errorf("validated TGT still invalid:\n%s", after)
	}
	if timesRE.FindString(before) != timesRE.FindString(after) {
		t.Errorf("validation moved the start: before\n%s\nafter\n%s", before, after)
	}
}
