package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// result is the outcome of one in-process kclient run.
type result struct {
	code           int
	stdout, stderr string
}

// runKClient runs kclient in-process with the given environment variables and standard input.
func runKClient(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &Env{
		In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut,
		Getenv: func(k string) string { return env[k] },
		UID:    os.Getuid(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, args, e)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// wantFailure checks exit status 1 (cli.ExitFailure) and exactly one stderr line equal to (or starting with)
// want.
func wantFailure(t *testing.T, r result, want string, prefixOnly bool) {
	t.Helper()
	wantExit(t, r, cli.ExitFailure, want, prefixOnly)
}

// wantExit checks exit status code and exactly one stderr line equal to (or starting with) want.
func wantExit(t *testing.T, r result, code int, want string, prefixOnly bool) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if prefixOnly && !strings.HasPrefix(line, want) || !prefixOnly && line != want {
		t.Errorf("stderr %q, want %q", line, want)
	}
}

// wantContains fails the test unless s, the output of what, contains every one of subs.
func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

// wantListAsKlist checks that `kclient list ARGS...` with env succeeds and prints exactly klist, what MIT klist
// printed for the same cache.
func wantListAsKlist(t *testing.T, env map[string]string, klist string, args ...string) {
	t.Helper()
	list := runKClient(t, env, "", append([]string{"list"}, args...)...)
	if list.code != 0 || list.stdout != klist {
		t.Errorf("kclient list differs from klist:\n--- kclient (exit %d, %s)\n%s--- klist\n%s", list.code, list.stderr, list.stdout, klist)
	}
}

// startMITRealm starts a throw-away MIT krb5kdc realm KRB.TEST (testenv.NewMITRealm) with alice/alicepw
// (requires preauth) and svc/client (random keys, in r.Keytab).
func startMITRealm(t *testing.T) *testenv.MITRealm {
	t.Helper()
	return testenv.NewMITRealm(t, testenv.MITRealmOptions{
		Name: "KRB.TEST",
		Enctypes: "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal " +
			"aes256-cts-hmac-sha384-192:normal aes128-cts-hmac-sha256-128:normal",
		Principals:       []testenv.Principal{{Name: "alice", Password: "alicepw"}, {Name: "svc/client", RandomKey: true}},
		KeytabPrincipals: []string{"svc/client"},
	})
}

// mitClient runs an MIT client tool with env added to the test's environment, stdin as its input and a time
// limit; it returns the combined output and the error, for tests that expect failures too.
func mitClient(t *testing.T, env []string, stdin, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.RequireTool(t, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mitCmd runs an MIT client tool as mitClient does and fails the test if it fails.
func mitCmd(t *testing.T, env []string, stdin, name string, args ...string) string {
	t.Helper()
	out, err := mitClient(t, env, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

func TestLoginMIT(t *testing.T) {
	r := startMITRealm(t)
	mitEnv := r.Env(testenv.EnvOptions{})
	dir := t.TempDir()
	env := map[string]string{"KRB5_CONFIG": r.Conf, "KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc")}

	t.Run("password then MIT klist", func(t *testing.T) {
		res := runKClient(t, env, "alicepw\nnot read\n", "login", "alice")
		if res.code != 0 || res.stdout != "" || res.stderr != "" {
			t.Fatalf("login: %+v", res)
		}
		path := filepath.Join(dir, "cc")
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("cache file: %v %v", fi, err)
		}
		cc, err := ticket.ReadCCacheFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Version != 4 || cc.DefaultPrincipal.String() != "alice@KRB.TEST" || len(cc.Credentials) != 1 || cc.KDCOffset != 0 {
			t.Errorf("cache %+v", cc)
		}
		klist := mitCmd(t, mitEnv, "", "klist", "-f", "-e", env["KRB5CCNAME"])
		wantContains(t, "klist output", klist, "Default principal: alice@KRB.TEST", "krbtgt/KRB.TEST@KRB.TEST",
			"Flags: RIA", "Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96")
		// kclient list prints exactly what MIT klist prints.
		wantListAsKlist(t, env, klist, "-f", "-e")
		// MIT kvno can use the TGT for a TGS exchange.
		if out := mitCmd(t, mitEnv, "", "kvno", "-c", env["KRB5CCNAME"], "svc/client"); !strings.Contains(out, "kvno = ") {
			t.Errorf("kvno: %s", out)
		}
	})

	t.Run("MIT kinit cache", func(t *testing.T) {
		mitCC := "FILE:" + filepath.Join(dir, "mitcc")
		mitCmd(t, mitEnv, "alicepw\n", "kinit", "-f", "-c", mitCC, "alice")
		wantListAsKlist(t, env, mitCmd(t, mitEnv, "", "klist", "-f", "-e", mitCC), "-f", "-e", "-c", mitCC)
		plain := runKClient(t, env, "", "list", "-c", mitCC)
		if klist := mitCmd(t, mitEnv, "", "klist", mitCC); plain.stdout != klist {
			t.Errorf("plain list differs:\n%s---\n%s", plain.stdout, klist)
		}
		if strings.Contains(plain.stdout, "X-CACHECONF") {
			t.Errorf("config entries shown:\n%s", plain.stdout)
		}
	})

	t.Run("options", func(t *testing.T) {
		cc := filepath.Join(dir, "opts")
		res := runKClient(t, env, "alicepw\n", "login", "-f", "-l", "1h", "-r", "2d", "-c", cc, "alice@KRB.TEST")
		if res.code != 0 {
			t.Fatalf("login: %+v", res)
		}
		c, err := ticket.ReadCCacheFile(cc)
		if err != nil {
			t.Fatal(err)
		}
		cred := c.Credentials[0]
		if cred.Flags&ticket.FlagForwardable == 0 || cred.Flags&ticket.FlagRenewable == 0 {
			t.Errorf("flags %s", ticket.FlagString(cred.Flags))
		}
		if d := cred.EndTime.Sub(cred.StartTime); d != time.Hour {
			t.Errorf("lifetime %v", d)
		}
		if d := cred.RenewTill.Sub(cred.StartTime); d != 48*time.Hour {
			t.Errorf("renewable %v", d)
		}
	})

	t.Run("keytab", func(t *testing.T) {
		cc := filepath.Join(dir, "kt")
		res := runKClient(t, env, "", "login", "-k", "-t", r.Keytab, "-c", cc)
		if res.code != 0 {
			t.Fatalf("login -k: %+v", res)
		}
		c, err := ticket.ReadCCacheFile(cc)
		if err != nil || c.DefaultPrincipal.String() != "svc/client@KRB.TEST" {
			t.Fatalf("cache %v %v", c, err)
		}
		// KRB5_KTNAME supplies the keytab when -t is absent.
		kenv := map[string]string{"KRB5_CONFIG": r.Conf, "KRB5_KTNAME": "FILE:" + r.Keytab}
		if res := runKClient(t, kenv, "", "login", "-k", "-c", cc, "svc/client"); res.code != 0 {
			t.Fatalf("login -k with KRB5_KTNAME: %+v", res)
		}
	})

	t.Run("no krb5.conf", func(t *testing.T) {
		cc := filepath.Join(dir, "noconf")
		nenv := map[string]string{"KRB5_CONFIG": filepath.Join(dir, "does-not-exist.conf")}
		res := runKClient(t, nenv, "alicepw\n", "login", "--realm", "KRB.TEST", "--kdc", r.Addr, "-c", cc, "alice")
		if res.code != 0 {
			t.Fatalf("login: %+v", res)
		}
		// Without --kdc there is nothing to talk to.
		res = runKClient(t, nenv, "alicepw\n", "login", "--realm", "KRB.TEST", "-c", cc, "alice")
		wantFailure(t, res, "kclient: no KDC known for realm 'KRB.TEST'", true)
		// Without a realm anywhere the principal cannot be completed.
		res = runKClient(t, nenv, "alicepw\n", "login", "--kdc", r.Addr, "-c", cc, "alice")
		wantFailure(t, res, "kclient: client: principal \"alice\" has no realm", true)
	})

	t.Run("failures", func(t *testing.T) {
		cc := filepath.Join(dir, "fail")
		fenv := map[string]string{"KRB5_CONFIG": r.Conf, "KRB5CCNAME": cc}
		wantExit(t, runKClient(t, fenv, "wrong\n", "login", "alice"), cli.ExitAuth,
			"kclient: Password incorrect while getting initial credentials", false)
		wantExit(t, runKClient(t, fenv, "x\n", "login", "nobody"), cli.ExitAuth,
			"kclient: Client 'nobody@KRB.TEST' not found in Kerberos database while getting initial credentials", false)
		if _, err := os.Stat(cc); !os.IsNotExist(err) {
			t.Errorf("failed logins left a cache: %v", err)
		}
		wantFailure(t, runKClient(t, fenv, "", "login", "alice"), "kclient: no password on standard input", false)
		wantExit(t, runKClient(t, fenv, "alicepw\n", "login", "-l", "forever", "alice"), cli.ExitUsage, "kclient: bad lifetime value \"forever\"", true)
		wantExit(t, runKClient(t, fenv, "alicepw\n", "login", "--kdc", "127.0.0.1:1", "alice"), cli.ExitUnreachable,
			"kclient: Cannot contact any KDC for realm 'KRB.TEST' while getting initial credentials (udp 127.0.0.1:1:", true)
	})
}

func TestListAndDestroy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cc")
	env := map[string]string{"KRB5CCNAME": "FILE:" + path}

	wantFailure(t, runKClient(t, env, "", "list"), "kclient: No credentials cache found (filename: "+path+")", false)
	// Like kdestroy, destroying a cache that is not there says so and succeeds.
	wantExit(t, runKClient(t, env, "", "destroy"), cli.ExitOK, "kclient: No credentials cache found while destroying cache", false)

	cc := &ticket.CCache{Version: 4, DefaultPrincipal: princ("alice", "R"), Credentials: []ticket.Credential{sampleCred()}}
	if err := ticket.WriteCCacheFile(path, cc); err != nil {
		t.Fatal(err)
	}
	if res := runKClient(t, env, "", "list"); res.code != 0 || !strings.Contains(res.stdout, "krbtgt/R@R") {
		t.Fatalf("list: %+v", res)
	}
	// destroy overwrites the file before removing it: a second link to it sees only zeros.
	link := filepath.Join(dir, "link")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	if res := runKClient(t, env, "", "destroy"); res.code != 0 || res.stdout != "" || res.stderr != "" {
		t.Fatalf("destroy: %+v", res)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("cache still there: %v", err)
	}
	b, err := os.ReadFile(link)
	if err != nil || len(b) == 0 || bytes.Count(b, []byte{0}) != len(b) {
		t.Errorf("destroyed cache content not zeroed (%d bytes, err %v)", len(b), err)
	}
	if res := runKClient(t, env, "", "list", "-c", "MEMORY:x"); res.code != 1 || !strings.Contains(res.stderr, "not supported") {
		t.Errorf("MEMORY cache: %+v", res)
	}
}

func TestUsageErrors(t *testing.T) {
	wantExit(t, runKClient(t, nil, "", "login", "--bogus"), cli.ExitUsage, "kclient: unknown flag: --bogus (see kclient --help)", false)
	wantExit(t, runKClient(t, nil, "", "list", "a", "b"), cli.ExitUsage, "kclient: accepts at most 1 arg(s), received 2 (see kclient --help)", false)
	wantExit(t, runKClient(t, nil, "", "login", "a", "b"), cli.ExitUsage, "kclient: accepts at most 1 arg(s), received 2 (see kclient --help)", false)
	wantExit(t, runKClient(t, nil, "", "lgoin"), cli.ExitUsage, "kclient: unknown command \"lgoin\" for \"kclient\" (did you mean login?) (see kclient --help)", false)
	wantExit(t, runKClient(t, nil, "", "destroy", "extra"), cli.ExitUsage, "kclient: unknown command \"extra\" for \"kclient destroy\" (see kclient --help)", false)
	if res := runKClient(t, nil, "", "--help"); res.code != 0 || !strings.Contains(res.stdout, "login") {
		t.Errorf("help: %+v", res)
	}
}

func princ(name, realm string) principal.Name {
	return principal.Name{Components: strings.Split(name, "/"), Realm: realm, Type: 1}
}

// sampleCred is a TGT-like credential with fixed times and an aes256 ticket.
func sampleCred() ticket.Credential {
	start := time.Date(2026, 11, 25, 2, 24, 57, 0, time.UTC)
	return ticket.Credential{
		Client: princ("alice", "R"), Server: princ("krbtgt/R", "R"),
		Key:      types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)},
		AuthTime: start, StartTime: start, EndTime: start.Add(10 * time.Hour), RenewTill: start.Add(24 * time.Hour),
		Flags:  ticket.FlagRenewable | ticket.FlagInitial | ticket.FlagPreAuthent,
		Ticket: encodeTicket(18),
	}
}

// encodeTicket returns a DER Ticket for krbtgt/R@R whose enc-part has the given enctype.
func encodeTicket(etype int32) []byte {
	tkt := messages.Ticket{TktVNO: 5, Realm: "R", SName: types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "R"}},
		EncPart: types.EncryptedData{EType: etype, KVNO: 1, Cipher: []byte{1, 2, 3}}}
	b, err := tkt.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}
