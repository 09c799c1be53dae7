package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
)

// TestPolicyCLI runs the policy commands against a serving KDC (through its
// admin socket): add, modify, show, list, delete, principal add|modify
// --policy, passwd with the policy and --ignore-policy, unlock.
func TestPolicyCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kdc.db")
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	serveFor(t, db)
	if _, ok := kdc.DialAdmin(kdc.AdminSocketPath(db)); !ok {
		t.Fatal("no admin socket")
	}
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"policy", "list"}, 0, "default\n"},
		{"", []string{"policy", "show", "default"}, 0, "Max failures:       10"},
		{"", []string{"policy", "add", "strict", "--min-length", "10", "--min-classes", "3", "--history", "2", "--max-life", "90d",
			"--max-failures", "3", "--failure-interval", "15m", "--lockout-duration", "0"}, 0, "Lockout duration:   until unlocked"},
		{"", []string{"policy", "add", "strict"}, cli.ExitFailure, "already exists"},
		{"", []string{"policy", "add", "bad", "--min-classes", "7"}, cli.ExitUsage, "min classes must be 0..5"},
		{"", []string{"policy", "add", "bad", "--max-life", "soon"}, cli.ExitUsage, "--max-life"},
		{"", []string{"policy", "modify", "strict"}, cli.ExitUsage, "nothing to change"},
		{"", []string{"policy", "modify", "nope", "--min-length", "3"}, cli.ExitFailure, "not found"},
		{"", []string{"policy", "modify", "strict", "--min-length", "12"}, 0, "Min length:         12"},
		{"", []string{"policy", "list"}, 0, "default\nstrict\n"},
		{"Short1!\n", []string{"principal", "add", "carol", "--policy", "strict"}, cli.ExitFailure, "Password is too short"},
		{"alllowercaseletters\n", []string{"principal", "add", "carol", "--policy", "strict"}, cli.ExitFailure, "Password does not contain enough character classes"},
		{"Good-Password-1\n", []string{"principal", "add", "carol", "--policy", "nope"}, cli.ExitFailure, "not found"},
		{"Good-Password-1\n", []string{"principal", "add", "carol", "--policy", "strict"}, 0, "policy strict)"},
		{"alicepw\n", []string{"principal", "add", "alice"}, 0, "policy default)"},
		{"davepw\n", []string{"principal", "add", "dave", "--no-policy"}, 0, "policy none)"},
		{"", []string{"principal", "show", "carol"}, 0, "Policy:            strict"},
		{"Good-Password-1\n", []string{"principal", "passwd", "carol"}, cli.ExitFailure, "Password has been used before"},
		{"Good-Password-1\n", []string{"principal", "passwd", "carol", "--ignore-policy"}, 0, "kvno 2"},
		{"Other-Password-2\n", []string{"principal", "passwd", "carol"}, 0, "kvno 3"},
		{"", []string{"principal", "modify", "alice", "--policy", "strict"}, 0, "policy: strict"},
		{"", []string{"principal", "modify", "alice", "--policy", "nope"}, cli.ExitFailure, "not found"},
		{"", []string{"policy", "delete", "strict"}, cli.ExitFailure, "policy in use"},
		{"", []string{"principal", "modify", "alice", "--no-policy"}, 0, "policy: none"},
		{"", []string{"principal", "unlock", "carol"}, 0, "unlocked carol@KRB.TEST"},
		{"", []string{"principal", "unlock", "nobody"}, cli.ExitFailure, "not found"},
		{"", []string{"principal", "show", "carol"}, 0, "Lockout:           not locked"},
		{"", []string{"principal", "delete", "carol"}, 0, "deleted"},
		{"", []string{"policy", "delete", "strict"}, 0, "deleted policy strict"},
		{"", []string{"policy", "show", "strict"}, cli.ExitFailure, "not found"},
	} {
		code, out, stderr := kdcRun(t, c.stdin, append(c.args, "--db", db)...)
		got := out
		if c.code != 0 {
			got = stderr
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Fatalf("%v: code %d, stdout %q, stderr %q; want code %d and %q", c.args, code, out, stderr, c.code, c.want)
		}
		if c.stdin != "" && strings.Contains(out+stderr, strings.TrimSpace(c.stdin)) {
			t.Fatalf("%v printed the password", c.args)
		}
	}
	if _, err := os.Stat(kdc.AdminSocketPath(db)); err != nil {
		t.Fatal("the commands did not go through the admin socket")
	}
	// Every change is in the audit log beside the database, with the
	// admin's uid and the socket, and no password in it.
	b, err := os.ReadFile(db + ".audit.log")
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	uid := fmt.Sprintf(`"who":"uid:%d"`, os.Getuid())
	for _, want := range []string{`"what":"policy-add","target":"strict"`, `"what":"policy-modify","target":"strict"`,
		`"what":"principal-add","target":"carol@KRB.TEST"`, `"what":"principal-passwd","target":"carol@KRB.TEST"`,
		`"what":"principal-unlock","target":"carol@KRB.TEST"`, `"what":"policy-delete","target":"strict"`,
		`"what":"principal-modify","target":"alice@KRB.TEST"`, `Password is too short"}`, uid, `"from":"admin-socket `} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
	for _, secret := range []string{"Good-Password-1", "Other-Password-2", "alicepw", "Short1!", "davepw"} {
		if strings.Contains(log, secret) {
			t.Fatalf("audit log holds a password: %s", secret)
		}
	}
	if strings.Contains(log, `"what":"principal-show"`) || strings.Contains(log, "policy-list") {
		t.Fatal("reads are audited")
	}
	fi, _ := os.Stat(db + ".audit.log")
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode %v", fi.Mode())
	}
}

// TestAuditWithoutServer: the commands on a database no server holds write
// the same audit lines, from "database PATH"; keytab export is audited with
// no key in the line; --audit-log none writes nothing.
func TestAuditWithoutServer(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "kdc.db")
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	kt := filepath.Join(dir, "svc.keytab")
	for _, args := range [][]string{
		{"principal", "add", "host/svc", "--random-key"},
		{"keytab", "host/svc", "-o", kt},
		{"trust", "add", "OTHER.TEST", "--direction", "out"},
		{"principal", "delete", "host/svc"},
	} {
		if code, _, stderr := kdcRun(t, testTrustPassword+"\n", append(args, "--db", db)...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	if code, _, stderr := kdcRun(t, "", "principal", "add", "x", "--random-key", "--db", db, "--audit-log", "none"); code != 0 {
		t.Fatal(stderr)
	}
	b, err := os.ReadFile(db + ".audit.log")
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{`"what":"principal-add","target":"host/svc@KRB.TEST"`, `"what":"keytab-export","target":"host/svc"`,
		`"what":"trust-add","target":"OTHER.TEST"`, `"what":"principal-delete","target":"host/svc"`, `"from":"database ` + db} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, testTrustPassword) || strings.Contains(log, `"target":"x@KRB.TEST"`) {
		t.Fatalf("audit log:\n%s", log)
	}
	k, err := keytab.Load(kt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range k.Entries {
		for _, enc := range []string{string(e.Key.KeyValue), base64.StdEncoding.EncodeToString(e.Key.KeyValue), hex.EncodeToString(e.Key.KeyValue)} {
			if strings.Contains(log, enc) {
				t.Fatal("a key in the audit log")
			}
		}
	}
	if strings.Count(log, "\n") != 4 {
		t.Fatalf("want 4 lines:\n%s", log)
	}
}
