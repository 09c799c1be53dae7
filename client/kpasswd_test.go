package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
)

// TestChangePassword: against our KDC and kpasswd service, the old password
// stops working and the new one logs in; a policy refusal comes back as a
// *PasswordChangeError with MIT's text; a wrong old password fails the AS
// exchange.
func TestChangePassword(t *testing.T) {
	r := testenv.NewInProcRealm(t, testenv.InProcOptions{})
	cfg := realmConfig(r.Name, r.Addr)
	cfg.KpasswdServers = map[string][]string{r.Name: {r.KpasswdAddr}}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, _ := ParsePrincipal(testenv.UserName, r.Name)

	if err := r.Store.CreatePolicy(ctx, &principal.Policy{Name: "p", MinLength: 10}); err != nil {
		t.Fatal(err)
	}
	if err := r.Store.Update(ctx, alice, func(rec *principal.Record) error { rec.Policy = "p"; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = c.ChangePassword(ctx, ChangePasswordRequest{Client: alice, Old: PasswordSecret(testenv.UserPassword), New: "short"})
	var pe *PasswordChangeError
	if !errors.As(err, &pe) || pe.Code != KpasswdSoftError || err.Error() != "Password change rejected: Password is too short" {
		t.Fatalf("short password: %v", err)
	}
	var ke *KDCError
	if _, err := c.ChangePassword(ctx, ChangePasswordRequest{Client: alice, Old: PasswordSecret("wrong"), New: "long-enough-1"}); !errors.As(err, &ke) {
		t.Fatalf("wrong old password: %v", err)
	}
	res, err := c.ChangePassword(ctx, ChangePasswordRequest{Client: alice, Old: PasswordSecret(testenv.UserPassword), New: "long-enough-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != r.KpasswdAddr {
		t.Errorf("answered by %s", res.Server)
	}
	if _, err := c.Login(ctx, ASRequest{Client: alice, Secret: PasswordSecret(testenv.UserPassword)}); err == nil {
		t.Error("the old password still logs in")
	}
	if _, err := c.Login(ctx, ASRequest{Client: alice, Secret: PasswordSecret("long-enough-1")}); err != nil {
		t.Errorf("the new password: %v", err)
	}
}
