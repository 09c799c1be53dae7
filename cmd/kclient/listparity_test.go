package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// The tests in this file run MIT's klist (and kdestroy) and kclient on the same caches and keytabs and compare
// standard output byte for byte, the exit status, and standard error with the program name set aside.

// mitRun runs an MIT tool with the test's environment less every KRB5* variable, plus env, and returns its
// output and exit status.
func mitRun(t *testing.T, env map[string]string, name string, args ...string) result {
	t.Helper()
	return mitRunIn(t, env, "", name, args...)
}

// mitRunIn is mitRun with standard input.
func mitRunIn(t *testing.T, env map[string]string, stdin, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.RequireTool(t, name), args...)
	vars := map[string]string{"KRB5_CONFIG": os.DevNull}
	for k, v := range env {
		vars[k] = v
	}
	cmd.Env = testenv.ClientEnviron(vars)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// sameAsMIT compares a kclient run with an MIT one: stdout byte for byte, stderr after the "kclient: " and
// "klist: " (or kdestroy, kvno, kinit) prefixes, and the exit status when wantCode is true.
func sameAsMIT(t *testing.T, what string, got, mit result, wantCode bool) {
	t.Helper()
	if got.stdout != mit.stdout {
		t.Errorf("%s: stdout differs\n--- kclient (exit %d)\n%s--- MIT (exit %d)\n%s", what, got.code, got.stdout, mit.code, mit.stdout)
	}
	if g, m := stripProgram(got.stderr), stripProgram(mit.stderr); g != m {
		t.Errorf("%s: stderr differs\n--- kclient\n%s--- MIT\n%s", what, g, m)
	}
	if wantCode && got.code != mit.code {
		t.Errorf("%s: exit %d, MIT %d (stderr %q)", what, got.code, mit.code, got.stderr)
	}
}

// stripProgram removes the program name that starts the lines of an error output.
func stripProgram(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		for _, p := range []string{"kclient: ", "klist: ", "kdestroy: ", "kvno: ", "kinit: "} {
			lines[i] = strings.TrimPrefix(lines[i], p)
		}
		_ = l
	}
	return strings.Join(lines, "\n")
}

// writeCache writes a cache for client with the given credentials.
func writeCache(t *testing.T, path string, client principal.Name, creds ...ticket.Credential) {
	t.Helper()
	if err := ticket.WriteCCacheFile(path, &ticket.CCache{Version: 4, DefaultPrincipal: client, Credentials: creds}); err != nil {
		t.Fatal(err)
	}
}

// credAt is sampleCred for client and server, valid from start for life.
func credAt(client, server principal.Name, start time.Time, life time.Duration) ticket.Credential {
	c := sampleCred()
	c.Client, c.Server = client, server
	c.AuthTime, c.StartTime, c.EndTime, c.RenewTill = start, start, start.Add(life), time.Time{}
	c.Flags = ticket.FlagInitial | ticket.FlagPreAuthent
	return c
}

func TestListStatusMatchesKlist(t *testing.T) {
	testenv.RequireTool(t, "klist")
	dir := t.TempDir()
	now := time.Now()
	alice, tgs, host := princ("alice", "R"), princ("krbtgt/R", "R"), princ("host/x", "R")
	conf := ticket.Credential{Client: alice, Server: principal.Name{Components: []string{"krb5_ccache_conf_data", "pa_type", "krbtgt/R@R"}, Realm: ticket.ConfigRealm},
		Ticket: []byte("2")}
	cases := []struct {
		name  string
		creds []ticket.Credential // nil: no file; empty: a file with no credentials
	}{
		{"valid TGT", []ticket.Credential{credAt(alice, tgs, now.Add(-time.Hour), 10*time.Hour)}},
		{"expired TGT, valid service ticket", []ticket.Credential{credAt(alice, tgs, now.Add(-11*time.Hour), 10*time.Hour), credAt(alice, host, now, time.Hour)}},
		{"no TGT, valid service ticket", []ticket.Credential{conf, credAt(alice, host, now.Add(-time.Minute), time.Hour)}},
		{"no TGT, expired service ticket", []ticket.Credential{credAt(alice, host, now.Add(-2*time.Hour), time.Hour)}},
		{"foreign-realm TGT only", []ticket.Credential{credAt(alice, princ("krbtgt/OTHER", "R"), now, time.Hour)}},
		{"only configuration entries", []ticket.Credential{conf}},
		{"no credentials", []ticket.Credential{}},
		{"no cache", nil},
	}
	for i, c := range cases {
		path := filepath.Join(dir, "cc"+string(rune('a'+i)))
		if c.creds != nil {
			writeCache(t, path, alice, c.creds...)
		}
		mit := mitRun(t, nil, "klist", "-s", "FILE:"+path)
		got := runKClient(t, nil, "", "list", "-s", "FILE:"+path)
		sameAsMIT(t, "list -s: "+c.name, got, mit, true)
		if got.code != 0 && got.code != 1 {
			t.Errorf("%s: exit %d", c.name, got.code)
		}
	}
	// A file that is not a cache: both fail silently.
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a cache"), 0o600); err != nil {
		t.Fatal(err)
	}
	sameAsMIT(t, "list -s: junk", runKClient(t, nil, "", "list", "-s", junk), mitRun(t, nil, "klist", "-s", junk), true)
}

// parityKeytab writes a keytab with several principals, kvnos (one above 255) and enctypes.
func parityKeytab(t *testing.T, path string) {
	t.Helper()
	ts := time.Date(2026, 11, 25, 2, 24, 57, 0, time.UTC)
	key := func(etype int32, n int) types.EncryptionKey {
		return types.EncryptionKey{KeyType: etype, KeyValue: bytes.Repeat([]byte{byte(etype)}, n)}
	}
	entries := []ticket.KeytabEntry{
		{Principal: princ("host/localhost", "R"), Timestamp: ts, KVNO: 2, Key: key(18, 32)},
		{Principal: princ("host/localhost", "R"), Timestamp: ts, KVNO: 2, Key: key(17, 16)},
		{Principal: princ("host/localhost", "R"), Timestamp: ts.Add(-48 * time.Hour), KVNO: 1, Key: key(20, 32)},
		{Principal: princ("HTTP/www.example.com", "EXAMPLE.COM"), Timestamp: ts.Add(time.Minute), KVNO: 300, Key: key(19, 16)},
		{Principal: principal.Name{Components: []string{"we/ird", "na@me"}, Realm: "R"}, Timestamp: ts, KVNO: 7, Key: key(23, 16)},
	}
	if err := ticket.WriteKeytabFile(path, entries); err != nil {
		t.Fatal(err)
	}
}

func TestListKeytabMatchesKlist(t *testing.T) {
	testenv.RequireTool(t, "klist")
	dir := t.TempDir()
	kt := filepath.Join(dir, "service.keytab")
	parityKeytab(t, kt)
	tz := map[string]string{"TZ": "UTC"}
	for _, flags := range [][]string{nil, {"-t"}, {"-e"}, {"-K"}, {"-t", "-e"}, {"-e", "-K"}, {"-t", "-e", "-K"}} {
		for _, name := range []string{kt, "FILE:" + kt} {
			args := append(append([]string{"-k"}, flags...), name)
			mit := mitRun(t, tz, "klist", args...)
			got := runKClientTZ(t, nil, append([]string{"list"}, args...)...)
			sameAsMIT(t, "list "+strings.Join(args, " "), got, mit, true)
		}
	}
	// KRB5_KTNAME is the default keytab.
	env := map[string]string{"KRB5_KTNAME": "FILE:" + kt, "TZ": "UTC"}
	sameAsMIT(t, "list -k with KRB5_KTNAME", runKClientTZ(t, env, "list", "-k", "-e"), mitRun(t, env, "klist", "-k", "-e"), true)
	// A keytab that is not there: the name is printed, then the error.
	missing := filepath.Join(dir, "missing.keytab")
	mit := mitRun(t, nil, "klist", "-k", missing)
	got := runKClient(t, nil, "", "list", "-k", missing)
	sameAsMIT(t, "list -k missing", got, mit, true)
}

// runKClientTZ runs kclient with times shown in UTC (as MIT klist with TZ=UTC).
func runKClientTZ(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	old := time.Local
	time.Local = time.UTC
	defer func() { time.Local = old }()
	return runKClient(t, env, "", args...)
}

// parityCollection makes a DIR collection: alice (valid, the primary), bob (expired) and carol (valid), a file
// that is not a cache and a file that is not a cache name; it returns the directory.
func parityCollection(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "collection")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	for _, c := range []struct {
		file, user string
		start      time.Time
	}{
		{"tktbob", "bob", now.Add(-20 * time.Hour)},
		{"tktalice", "alice", now.Add(-time.Hour)},
		{"tkt", "a-principal-name-longer-than-thirty-characters", now},
	} {
		p := princ(c.user, "R")
		writeCache(t, filepath.Join(dir, c.file), p, credAt(p, princ("krbtgt/R", "R"), c.start, 10*time.Hour), credAt(p, princ("host/x", "R"), c.start, 5*time.Hour))
	}
	if err := os.WriteFile(filepath.Join(dir, "tktjunk"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notacache"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "primary"), []byte("tktalice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestListCollectionMatchesKlist(t *testing.T) {
	testenv.RequireTool(t, "klist")
	dir := parityCollection(t)
	for _, name := range []string{"DIR:" + dir, "DIR::" + filepath.Join(dir, "tktbob"), "FILE:" + filepath.Join(dir, "tktalice"), "FILE:" + filepath.Join(dir, "none")} {
		env := map[string]string{"KRB5CCNAME": name}
		for _, args := range [][]string{{"-l"}, {"-A"}, {"-A", "-f", "-e"}, {"-s", "-A"}, {"-s"}, nil} {
			what := "KRB5CCNAME=" + name + " list " + strings.Join(args, " ")
			got, mit := runKClient(t, env, "", append([]string{"list"}, args...)...), mitRun(t, env, "klist", args...)
			if strings.Contains(mit.stderr, "tktjunk") {
				// -A on the collection meets the file that is not a cache: both name it on one line, each
				// in its own words, and go on.
				if strings.Count(got.stderr, "\n") != 1 || !strings.Contains(got.stderr, filepath.Join(dir, "tktjunk")) {
					t.Errorf("%s: stderr %q, want one line about tktjunk (MIT: %q)", what, got.stderr, mit.stderr)
				}
				got.stderr, mit.stderr = "", ""
			}
			sameAsMIT(t, what, got, mit, true)
		}
		// The name given on the command line instead of KRB5CCNAME.
		sameAsMIT(t, "list -l "+name, runKClient(t, nil, "", "list", "-l", name), mitRun(t, nil, "klist", "-l", name), true)
	}
	// An empty collection: the header only, exit 1.
	empty := "DIR:" + t.TempDir()
	sameAsMIT(t, "list -l (empty)", runKClient(t, nil, "", "list", "-l", empty), mitRun(t, nil, "klist", "-l", empty), true)
}

func TestListFlagCombinations(t *testing.T) {
	// klist refuses these; kclient too, as usage errors (exit 2).
	for _, args := range [][]string{
		{"-k", "-f"}, {"-k", "-s"}, {"-k", "-l"}, {"-k", "-A"}, {"-t"}, {"-K"}, {"-l", "-A"}, {"-l", "-s"},
		{"-c", "FILE:/x", "FILE:/y"},
	} {
		r := runKClient(t, nil, "", append([]string{"list"}, args...)...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("list %v: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
}

// copyDir copies the regular files of src into a new directory and returns it.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// dirNames lists a directory's file names, sorted, with each file's content when it is small (the primary).
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if n == "primary" {
			b, _ := os.ReadFile(filepath.Join(dir, n))
			n += "=" + strings.TrimSpace(string(b))
		}
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

func TestDestroyMatchesKdestroy(t *testing.T) {
	testenv.RequireTool(t, "kdestroy")
	orig := parityCollection(t)
	// tktjunk is not a cache; MIT's kdestroy -A removes it as it removes every cache file, and so does kclient.
	for _, c := range []struct {
		name string
		args []string
	}{
		{"default (the primary)", nil},
		{"quiet", []string{"-q"}},
		{"all", []string{"-A"}},
		{"all, quiet", []string{"-A", "-q"}},
		{"principal", []string{"-p", "bob@R"}},
		{"principal not in the collection", []string{"-p", "nobody@R"}},
		{"cache named with -c", []string{"-c", "DIR::" + filepath.Join(orig, "tktbob")}},
	} {
		mitDir, ourDir := copyDir(t, orig), copyDir(t, orig)
		fix := func(args []string, dir string) []string {
			out := make([]string, len(args))
			for i, a := range args {
				out[i] = strings.ReplaceAll(a, orig, dir)
			}
			return out
		}
		mit := mitRun(t, map[string]string{"KRB5CCNAME": "DIR:" + mitDir}, "kdestroy", fix(c.args, mitDir)...)
		got := runKClient(t, map[string]string{"KRB5CCNAME": "DIR:" + ourDir}, "", append([]string{"destroy"}, fix(c.args, ourDir)...)...)
		sameAsMIT(t, "destroy "+c.name, got, mit, true)
		if m, g := dirNames(t, mitDir), dirNames(t, ourDir); m != g {
			t.Errorf("destroy %s: left %q, kdestroy left %q", c.name, g, m)
		}
	}
	// No cache at all: both say so and succeed.
	none := map[string]string{"KRB5CCNAME": "FILE:" + filepath.Join(t.TempDir(), "none")}
	sameAsMIT(t, "destroy (no cache)", runKClient(t, none, "", "destroy"), mitRun(t, none, "kdestroy"), true)
	sameAsMIT(t, "destroy -q (no cache)", runKClient(t, none, "", "destroy", "-q"), mitRun(t, none, "kdestroy", "-q"), true)
	// A FILE cache: destroy -A removes it.
	file := filepath.Join(t.TempDir(), "cc")
	writeCache(t, file, princ("alice", "R"), sampleCred())
	if r := runKClient(t, map[string]string{"KRB5CCNAME": "FILE:" + file}, "", "destroy", "-A"); r.code != 0 || r.stderr != "" {
		t.Errorf("destroy -A of a FILE cache: %+v", r)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("destroy -A left %s", file)
	}
	// A cache that cannot be removed (here a directory): the reason, then kdestroy's "NOT destroyed" line, with
	// bells unless -q, and exit 1. The reasons are each program's own words.
	stuck := filepath.Join(t.TempDir(), "stuck")
	if err := os.MkdirAll(filepath.Join(stuck, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, q := range [][]string{nil, {"-q"}} {
		args := append([]string{"-c", "FILE:" + stuck}, q...)
		mit, got := mitRun(t, nil, "kdestroy", args...), runKClient(t, nil, "", append([]string{"destroy"}, args...)...)
		ml, gl := strings.Split(mit.stderr, "\n"), strings.Split(got.stderr, "\n")
		if got.code != 1 || mit.code != 1 || len(gl) != 3 || len(ml) != 3 || gl[1] != ml[1] || !strings.HasSuffix(gl[0], " while destroying cache") {
			t.Errorf("destroy %v of a directory: exit %d %q; kdestroy exit %d %q", args, got.code, got.stderr, mit.code, mit.stderr)
		}
	}
	// -A and -p exclude each other (kdestroy: usage, exit 2).
	mit := mitRun(t, none, "kdestroy", "-A", "-p", "x@R")
	got := runKClient(t, none, "", "destroy", "-A", "-p", "x@R")
	if mit.code != 2 || got.code != 2 || !strings.Contains(got.stderr, "-A option is exclusive with -p option") {
		t.Errorf("destroy -A -p: exit %d (%q), kdestroy exit %d", got.code, got.stderr, mit.code)
	}
}

func TestListKeytabNotAKeytab(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.keytab")
	if err := os.WriteFile(junk, []byte("\x05\x02 not a keytab at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runKClient(t, nil, "", "list", "-k", junk)
	if r.stdout != "Keytab name: FILE:"+junk+"\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	wantFailure(t, r, "kclient: ticket: malformed keytab "+junk, true)
	if strings.Contains(r.stderr, "not a keytab at all") {
		t.Errorf("the file's bytes reached the error: %q", r.stderr)
	}
}
