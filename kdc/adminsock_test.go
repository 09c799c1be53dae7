package kdc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
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
			remote[i].KVNO != local[i].KVNO || !reflect.DeepEqual(remote[i].Principal, local[i].Principal) || len(remote[i].Key.KeyValue) == 0 {
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

// serveAdmin serves a on a new admin socket until the test ends.
func serveAdmin(t *testing.T, a Admin, edit func(*AdminServer)) *AdminClient {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kdc.db.sock")
	srv, err := ListenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, a, slog.New(slog.NewTextHandler(io.Discard, nil))); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	c, ok := DialAdmin(path)
	if !ok {
		t.Fatal("admin socket does not answer")
	}
	return c
}

// TestAdminRefusalIsReported is the regression test of issue 8: a uid the
// socket refuses saw "write: broken pipe" instead of the refusal.
func TestAdminRefusalIsReported(t *testing.T) {
	r := newTestRealm(t)
	c := serveAdmin(t, r.admin, func(s *AdminServer) { s.allowUID = func(uint32) bool { return false } })
	// A request larger than the socket buffer: the client is still writing
	// when the server answers, as with `kdc keytab` of many principals.
	names := make([]string, 20000)
	for i := range names {
		names[i] = fmt.Sprintf("host/h%05d.example.com", i)
	}
	for _, req := range [][]string{{"host/localhost"}, names} {
		_, err := c.Keytab(context.Background(), req)
		if err == nil || !strings.Contains(err.Error(), "may not administer this database") {
			t.Fatalf("keytab of %d names: %v, want the refusal", len(req), err)
		}
	}
}

// panickyAdmin is an Admin whose List panics, as a damaged store could make it.
type panickyAdmin struct{ *LocalAdmin }

func (panickyAdmin) List(context.Context) ([]string, error) { panic("invalid page type: 0: 4") }

// TestAdminPanicDoesNotKillTheServer: a panic inside an admin operation
// becomes that request's error and the server keeps answering.
func TestAdminPanicDoesNotKillTheServer(t *testing.T) {
	r := newTestRealm(t)
	c := serveAdmin(t, panickyAdmin{r.admin}, nil)
	if _, err := c.List(context.Background()); err == nil || !strings.Contains(err.Error(), "failed inside the server") {
		t.Fatalf("List: %v", err)
	}
	if _, err := c.Show(context.Background(), "alice"); err != nil {
		t.Fatalf("the server stopped answering after a panic: %v", err)
	}
}

func TestPurgeKeys(t *testing.T) {
	r := newTestRealm(t)
	c := serveAdmin(t, r.admin, nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.ChangeKeys(ctx, "host/localhost", "", true); err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.Show(ctx, "host/localhost")
	if err != nil || info.KVNO != 4 || len(info.OldKVNOs) != principal.KeepOldKeys {
		t.Fatalf("before purge: %+v %v", info, err)
	}
	info, err = c.PurgeKeys(ctx, "host/localhost", 1)
	if err != nil || info.KVNO != 4 || len(info.OldKVNOs) != 1 || info.OldKVNOs[0] != 3 {
		t.Fatalf("purgekeys --keep 1: %+v %v", info, err)
	}
	info, err = r.admin.PurgeKeys(ctx, "host/localhost", 0)
	if err != nil || info.KVNO != 4 || len(info.OldKVNOs) != 0 || len(info.Enctypes) != len(principal.DefaultEnctypes) {
		t.Fatalf("purgekeys --keep 0: %+v %v", info, err)
	}
	if _, err := c.PurgeKeys(ctx, "host/localhost", -1); err == nil {
		t.Fatal("negative --keep accepted")
	}
}

// TestAdminSocketKeytabWireForm pins the JSON of a keytab entry on the admin socket. It is the form the
// socket carried when entries held gokrb5's PrincipalName next to a realm, so a `kdc keytab` and a running
// server from builds on either side of the change to principal.Name still understand each other, and the
// name type crosses the socket.
func TestAdminSocketKeytabWireForm(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := ticket.KeytabEntry{Principal: principal.Name{Components: []string{"host", "localhost"}, Realm: "KRB.TEST", Type: 3},
		Timestamp: ts, KVNO: 7, Key: types.EncryptionKey{KeyType: 18, KeyValue: []byte{0, 1, 2}}}
	const want = `{"principal":{"Realm":"KRB.TEST","Name":{"NameType":3,"NameString":["host","localhost"]}},` +
		`"timestamp":"2026-01-02T03:04:05Z","kvno":7,"etype":18,"key":"AAEC"}`
	got, err := json.Marshal(wireKeytabEntry{Principal: toWirePrincipal(e.Principal), Timestamp: e.Timestamp, KVNO: e.KVNO,
		Etype: e.Key.KeyType, Key: e.Key.KeyValue})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("wire form\n got %s\nwant %s", got, want)
	}
	// The earlier entry type, marshalled as it was: realm plus gokrb5's PrincipalName.
	old, err := json.Marshal(struct {
		Realm string
		Name  types.PrincipalName
	}{"KRB.TEST", types.PrincipalName{NameType: 3, NameString: []string{"host", "localhost"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, string(old)) {
		t.Errorf("the old principal form %s is not the one on the wire", old)
	}
	var back wireKeytabEntry
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	if p := back.Principal.name(); !reflect.DeepEqual(p, e.Principal) {
		t.Errorf("read back %+v, want %+v", p, e.Principal)
	}
}
