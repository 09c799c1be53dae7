package client

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"

	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

func TestLoginToCCache(t *testing.T) {
	r := testenv.NewInProcRealm(t, testenv.InProcOptions{})
	c, err := New(realmConfig(r.Name, r.Addr))
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := ParsePrincipal(testenv.UserName, r.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "cc")

	res, err := c.LoginToCCache(ctx, ASRequest{Client: alice, Secret: PasswordSecret(testenv.UserPassword)}, "FILE:"+path)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ticket.ReadCCacheFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !cc.DefaultPrincipal.Equal(alice) || len(cc.Credentials) != 1 || !cc.Credentials[0].Server.Equal(TGSPrincipal(r.Name)) ||
		!bytes.Equal(cc.Credentials[0].Ticket, res.Credential.Ticket) {
		t.Errorf("cache holds %s: %+v", cc.DefaultPrincipal, cc.Credentials)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v", fi.Mode())
	}

	// A failed login leaves the cache as it was.
	before, _ := os.ReadFile(path)
	_, err = c.LoginToCCache(ctx, ASRequest{Client: alice, Secret: PasswordSecret("wrong")}, path)
	var ke *KDCError
	if !errors.As(err, &ke) {
		t.Fatalf("wrong password: %v, want a KDCError", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed login changed the cache")
	}

	// A DIR: collection gets its primary cache, the directory made on the way.
	col := filepath.Join(dir, "collection")
	if _, err := c.LoginToCCache(ctx, ASRequest{Client: alice, Secret: PasswordSecret(testenv.UserPassword)}, "DIR:"+col); err != nil {
		t.Fatal(err)
	}
	if cc, err := ticket.ReadCCacheFile(filepath.Join(col, "tkt")); err != nil || !cc.DefaultPrincipal.Equal(alice) {
		t.Errorf("DIR: primary cache: %v, %v", cc, err)
	}

	// Unsupported cache types fail before anything is sent.
	if _, err := c.LoginToCCache(ctx, ASRequest{Client: alice, Secret: PasswordSecret(testenv.UserPassword)}, "KEYRING:persistent:0"); !errors.Is(err, ticket.ErrUnsupportedCCacheType) {
		t.Errorf("KEYRING: %v", err)
	}
}

// TestPostdatedLogin asks for a ticket starting in an hour (kinit -s) from our KDC and MIT's: both issue it
// postdated and invalid, starting when asked, with the lifetime counted from the start.
func TestPostdatedLogin(t *testing.T) {
	own := testenv.NewInProcRealm(t, testenv.InProcOptions{})
	mit := startMITRealm(t)
	for _, k := range []struct {
		name, realm, addr, user, password string
	}{
		{"kerbkit", own.Name, own.Addr, testenv.UserName, testenv.UserPassword},
		{"MIT", mit.Name, mit.Addr, "alice", "alicepw"},
	} {
		t.Run(k.name, func(t *testing.T) {
			cfg := realmConfig(k.realm, k.addr)
			cfg.TicketLifetime = 2 * time.Hour
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := ParsePrincipal(k.user, k.realm)
			start := time.Now().Add(time.Hour).Truncate(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := c.Login(ctx, ASRequest{Client: p, Secret: PasswordSecret(k.password), StartTime: start})
			if err != nil {
				t.Fatal(err)
			}
			cred := res.Credential
			if !cred.StartTime.Equal(start) {
				t.Errorf("starttime %v, want %v", cred.StartTime, start)
			}
			if want := ticket.FlagPostdated | ticket.FlagInvalid; cred.Flags&want != want {
				t.Errorf("flags %s, want d and i", ticket.FlagString(cred.Flags))
			}
			if life := cred.EndTime.Sub(cred.StartTime); life != 2*time.Hour {
				t.Errorf("lifetime from the start %v, want 2h", life)
			}
			// A start time in the past is not postdating: the ticket is valid now, until start + lifetime.
			past := time.Now().Add(-time.Hour).Truncate(time.Second)
			res, err = c.Login(ctx, ASRequest{Client: p, Secret: PasswordSecret(k.password), StartTime: past})
			if err != nil {
				t.Fatal(err)
			}
			if res.Credential.Flags&(ticket.FlagPostdated|ticket.FlagInvalid) != 0 {
				t.Errorf("start time in the past: flags %s", ticket.FlagString(res.Credential.Flags))
			}
			if end := past.Add(2 * time.Hour); res.Credential.EndTime.After(end) {
				t.Errorf("start an hour ago, 2h lifetime: ends %v, after %v", res.Credential.EndTime, end)
			}
			// So long ago that start + lifetime has passed: our KDC says the ticket would never be valid; MIT's
			// issues one that ends before it starts, which the client refuses.
			_, err = c.Login(ctx, ASRequest{Client: p, Secret: PasswordSecret(k.password), StartTime: time.Now().Add(-3 * time.Hour)})
			var ke *KDCError
			if !(errors.As(err, &ke) && ke.Code == errorcode.KDC_ERR_NEVER_VALID) && !(k.name == "MIT" && errors.Is(err, ErrReplyMismatch)) {
				t.Errorf("start 3h ago, 2h lifetime: %v, want KDC_ERR_NEVER_VALID", err)
			}
		})
	}
}
