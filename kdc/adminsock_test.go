package kdc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/kerbkit/kerbkit/principal"
)

func TestAdminSocketRoundTrip(t *testing.T) {
	r := newTestRealm(t)
	path := filepath.Join(t.TempDir(), "kdc.db.sock")
	srv, err := ListenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, r.admin, slog.New(slog.NewTextHandler(io.Discard, nil))); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := ListenAdmin(path); err == nil {
		t.Fatal("a second server took over a live admin socket")
	}

	c, ok := DialAdmin(path)
	if !ok {
		t.Fatal("admin socket does not answer")
	}
	// Key bytes must survive the socket exactly (gokrb5's key type hides them from JSON).
	local, err := r.admin.Keytab(ctx, []string{"host/localhost"})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := c.Keytab(ctx, []string{"host/localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(remote) != len(local) || len(remote) == 0 {
		t.Fatalf("got %d entries, want %d", len(remote), len(local))
	}
	for i := range local {
		if !bytes.Equal(remote[i].Key.KeyValue, local[i].Key.KeyValue) || remote[i].Key.KeyType != local[i].Key.KeyType ||
			remote[i].KVNO != local[i].KVNO || !remote[i].Principal.Equal(local[i].Principal) || len(remote[i].Key.KeyValue) == 0 {
			t.Fatalf("entry %d differs across the socket", i)
		}
	}

	if _, err := c.Add(ctx, AddRequest{Name: "dave", Password: "davepw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Get(ctx, principal.MustParse("dave@KRB.TEST")); err != nil {
		t.Fatalf("add through the socket not in the store: %v", err)
	}
	if _, err := c.Add(ctx, AddRequest{Name: "dave", Password: "x"}); !errors.Is(err, principal.ErrExists) {
		t.Fatalf("duplicate add: %v, want ErrExists", err)
	}
	if _, err := c.Show(ctx, "nobody"); !errors.Is(err, principal.ErrNotFound) {
		t.Fatalf("show unknown: %v, want ErrNotFound", err)
	}
	info, err := c.ChangeKeys(ctx, "dave", "", true)
	if err != nil || info.KVNO != 2 || len(info.OldKVNOs) != 1 {
		t.Fatalf("passwd through the socket: %+v %v", info, err)
	}
}
