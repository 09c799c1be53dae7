package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
)

// passwdEnv is a client environment for the in-process realm k, kpasswd_server included.
func passwdEnv(t *testing.T, k *testenv.InProcRealm) map[string]string {
	t.Helper()
	return map[string]string{"KRB5_CONFIG": testenv.EnvValue(k.Env(testenv.EnvOptions{}), "KRB5_CONFIG"),
		"KRB5CCNAME": "FILE:" + filepath.Join(t.TempDir(), "cc")}
}

func TestPasswd(t *testing.T) {
	k := startOwnKDC(t)
	env := passwdEnv(t, k)
	ctx := context.Background()
	if err := k.Store.CreatePolicy(ctx, &principal.Policy{Name: "p", MinLength: 8}); err != nil {
		t.Fatal(err)
	}
	if err := k.Store.Update(ctx, principal.MustParse("alice@"+ownRealmName), func(r *principal.Record) error { r.Policy = "p"; return nil }); err != nil {
		t.Fatal(err)
	}

	wantFailure(t, runKClient(t, env, "alicepw\nshort\nshort\n", "passwd", "alice"), "kclient: Password change rejected: Password is too short", false)
	wantFailure(t, runKClient(t, env, "alicepw\nNew-Passw0rd\nother\n", "passwd", "alice"), "kclient: Password mismatch while reading password", false)
	wantExit(t, runKClient(t, env, "wrong\nNew-Passw0rd\nNew-Passw0rd\n", "passwd", "alice"), cli.ExitAuth, "kclient: Password incorrect getting initial ticket", false)

	// --password-file instead of standard input.
	pf := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pf, []byte("alicepw\nNew-Passw0rd\nNew-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runKClient(t, env, "", "passwd", "alice", "--password-file", pf)
	if r.code != 0 || r.stdout != "Password changed.\n" {
		t.Fatalf("passwd: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runKClient(t, env, "alicepw\n", "login", "alice"); r.code != cli.ExitAuth {
		t.Errorf("old password: exit %d (%s)", r.code, r.stderr)
	}
	if r := runKClient(t, env, "New-Passw0rd\n", "login", "alice"); r.code != 0 {
		t.Errorf("new password: exit %d (%s)", r.code, r.stderr)
	}
}

// TestLoginChangesExpiredPassword: as kinit, kclient login answers
// KDC_ERR_KEY_EXPIRED by asking for a new password, changing it, and logging
// in with it.
func TestLoginChangesExpiredPassword(t *testing.T) {
	k := startOwnKDC(t)
	env := passwdEnv(t, k)
	ctx := context.Background()
	alice := principal.MustParse("alice@" + ownRealmName)
	if err := k.Store.Update(ctx, alice, func(r *principal.Record) error { r.PasswordExpires = time.Now().Add(-time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	r := runKClient(t, env, "alicepw\nNew-Passw0rd\nNew-Passw0rd\n", "login", "alice")
	if r.code != 0 || r.stderr != "Password expired.  You must change it now.\n" {
		t.Fatalf("login: exit %d, stderr %q", r.code, r.stderr)
	}
	rec, err := k.Store.Get(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.PasswordExpires.IsZero() || rec.KVNO() != 2 {
		t.Errorf("after the change: expires %v, kvno %d", rec.PasswordExpires, rec.KVNO())
	}
	if r := runKClient(t, env, "New-Passw0rd\n", "login", "alice"); r.code != 0 {
		t.Errorf("new password: exit %d (%s)", r.code, r.stderr)
	}
}

// TestPasswdUnreachable: no password-change server answers: one line, exit 4.
func TestPasswdUnreachable(t *testing.T) {
	k := startOwnKDC(t)
	conf := testenv.EnvValue(k.Env(testenv.EnvOptions{Kpasswd: "127.0.0.1:9"}), "KRB5_CONFIG")
	env := map[string]string{"KRB5_CONFIG": conf, "KRB5CCNAME": "FILE:" + filepath.Join(t.TempDir(), "cc")}
	r := runKClient(t, env, "alicepw\nNew-Passw0rd\nNew-Passw0rd\n", "passwd", "alice")
	wantExit(t, r, cli.ExitUnreachable, "kclient: Cannot contact any KDC or password-change server for realm '"+ownRealmName+"' changing password", true)
}
