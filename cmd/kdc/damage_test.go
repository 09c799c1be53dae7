package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
)

// realmWithPrincipals makes a database with n principals through the CLI.
func realmWithPrincipals(t *testing.T, n int) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "kdc.db")
	if code, _, stderr := kdcRun(t, "", "init", "--realm", "KRB.TEST", "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	for i := 0; i < n; i++ {
		if code, _, stderr := kdcRun(t, "", "principal", "add", fmt.Sprintf("svc%03d/host", i), "--random-key", "--db", db); code != 0 {
			t.Fatal(stderr)
		}
	}
	return db
}

// wantOneLineFailure checks the CLI contract for a damaged database: non-zero,
// one line on stderr that says what to do, no stack trace.
func wantOneLineFailure(t *testing.T, what string, code int, stderr string) {
	t.Helper()
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "damaged") ||
		!strings.Contains(stderr, "restore it from a backup") || strings.Contains(stderr, "goroutine") {
		t.Fatalf("%s: code %d, stderr %q", what, code, stderr)
	}
}

// TestDamagedDatabaseCLI is the regression test of issue 8: a half-truncated
// database made kdc serve panic inside bbolt.
func TestDamagedDatabaseCLI(t *testing.T) {
	db := realmWithPrincipals(t, 60)
	if code, out, stderr := kdcRun(t, "", "check", "--db", db); code != 0 || !strings.Contains(out, "no damage found (62 principals)") {
		t.Fatalf("check of a good database: %d %q %q", code, out, stderr)
	}
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the file after its fifth page: the meta pages stay, most pages in
	// use are gone. (Half the file, as in issue 8, no longer cuts a page in
	// use since records are compact: bbolt grows the file ahead of its data.)
	if err := os.WriteFile(db, b[:5*4096], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0"},
		{"principal", "list"},
		{"check"},
		{"keytab", "svc001/host", "-o", filepath.Join(t.TempDir(), "kt")},
	} {
		code, _, stderr := kdcRun(t, "", append(args, "--db", db)...)
		wantOneLineFailure(t, "kdc "+strings.Join(args, " "), code, stderr)
	}
}

// TestDamageUnderARunningServer: pages damaged while kdc serve runs make admin
// commands fail with one line; the server stays up and keeps answering.
func TestDamageUnderARunningServer(t *testing.T) {
	db := realmWithPrincipals(t, 60)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	var logs strings.Builder
	e := &env{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &logs, db: db}
	go func() {
		done <- serve(ctx, e, &serveOptions{listen: "127.0.0.1:0", logLevel: "error"}, func(string, string) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	garbage := make([]byte, fi.Size()-2*4096)
	for i := range garbage {
		garbage[i] = 0xff
	}
	f.WriteAt(garbage, 2*4096)
	f.Close()

	code, _, stderr := kdcRun(t, "", "principal", "list", "--db", db)
	wantOneLineFailure(t, "principal list through the server", code, stderr)
	code, _, stderr = kdcRun(t, "", "check", "--db", db)
	wantOneLineFailure(t, "check through the server", code, stderr)
	if _, ok := kdc.DialAdmin(kdc.AdminSocketPath(db)); !ok {
		t.Fatal("the server died")
	}
}

func TestPurgeKeysCLI(t *testing.T) {
	db := realmWithPrincipals(t, 1)
	for i := 0; i < 3; i++ {
		if code, _, stderr := kdcRun(t, "", "principal", "passwd", "svc000/host", "--random-key", "--db", db); code != 0 {
			t.Fatal(stderr)
		}
	}
	if code, out, _ := kdcRun(t, "", "principal", "show", "svc000/host", "--db", db); code != 0 || !strings.Contains(out, "Old kvnos kept:    [3 2]") {
		t.Fatalf("show: %q", out)
	}
	if code, out, stderr := kdcRun(t, "", "principal", "purgekeys", "svc000/host", "--keep", "1", "--db", db); code != 0 ||
		out != "purged old keys of svc000/host@KRB.TEST: kvno 4 kept, and old kvnos [3]\n" {
		t.Fatalf("purgekeys --keep 1: %d %q %q", code, out, stderr)
	}
	if code, out, _ := kdcRun(t, "", "principal", "purgekeys", "svc000/host", "--db", db); code != 0 ||
		out != "purged old keys of svc000/host@KRB.TEST: kvno 4 kept\n" {
		t.Fatalf("purgekeys: %q", out)
	}
	if code, out, _ := kdcRun(t, "", "principal", "show", "svc000/host", "--db", db); code != 0 || strings.Contains(out, "Old kvnos") {
		t.Fatalf("show after purge: %q", out)
	}
}
