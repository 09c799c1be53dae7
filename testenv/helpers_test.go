package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// mitKinit runs MIT kinit ARGS... with the password piped on stdin.
func mitKinit(t *testing.T, env []string, password string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	kinit := RequireTool(t, "kinit")
	return Run(t, env, password+"\n", kinit, args...)
}

// mustMITKinit runs MIT kinit and fails the test unless it succeeds.
func mustMITKinit(t *testing.T, env []string, password string, args ...string) {
	t.Helper()
	if _, stderr, code := mitKinit(t, env, password, args...); code != 0 {
		t.Fatalf("kinit %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
}

// heimdalKinit runs Heimdal's kinit (from the tree h returned by Heimdal) for
// principal, with the password in a --password-file.
func heimdalKinit(t *testing.T, h string, env []string, password, principal string) (stdout, stderr string, code int) {
	t.Helper()
	pwfile := filepath.Join(t.TempDir(), "pw.txt")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Run(t, env, "", filepath.Join(h, "kinit.heimdal"), "--password-file="+pwfile, principal)
}

// mustHeimdalKinit runs Heimdal's kinit and fails the test unless it succeeds.
func mustHeimdalKinit(t *testing.T, h string, env []string, password, principal string) {
	t.Helper()
	if _, stderr, code := heimdalKinit(t, h, env, password, principal); code != 0 {
		t.Fatalf("kinit.heimdal: exit %d: %s", code, strings.TrimSpace(stderr))
	}
}

// mitKlist runs MIT `klist -f -e` and parses it.
func mitKlist(t *testing.T, env []string) *Klist {
	t.Helper()
	klist := RequireTool(t, "klist")
	stdout, stderr, code := Run(t, env, "", klist, "-f", "-e")
	if code != 0 {
		t.Fatalf("klist -f -e: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	k, err := ParseKlist(stdout)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// requireTGT checks that k holds a TGT for principal in realm with an AES
// enctype and at least the flags in want, and returns it.
func requireTGT(t *testing.T, k *Klist, principal, realm, want string) *KlistTicket {
	t.Helper()
	if k.Principal != principal {
		t.Errorf("klist: default principal %q, want %q", k.Principal, principal)
	}
	tgt := k.Ticket("krbtgt/" + realm + "@" + realm)
	if tgt == nil {
		t.Fatalf("klist: no krbtgt/%s@%s in %+v", realm, realm, k.Tickets)
	}
	if !strings.HasPrefix(tgt.SessionKey, "aes") || !strings.HasPrefix(tgt.TicketKey, "aes") {
		t.Errorf("klist -e: TGT enctypes (skey %q, tkt %q), want AES", tgt.SessionKey, tgt.TicketKey)
	}
	if !tgt.HasFlags(want) {
		t.Errorf("klist -f: TGT flags %q, want at least %q", tgt.Flags, want)
	}
	return tgt
}

// wantContains fails the test unless s contains every one of subs.
func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}
