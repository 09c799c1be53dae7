package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"
)

// TestEtcdTLSAndAuth: a cluster that speaks only TLS, asks for client
// certificates and has etcd's authentication on. The store connects with the
// CA, a client certificate and a user with a password; without the
// certificate, or with a wrong password, it fails with a clear error that
// does not carry the password.
func TestEtcdTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	files := etcdtest.NewTLSFiles(t, dir)
	c := etcdtest.StartWith(t, 3, etcdtest.Options{TLS: &files})
	ctx := context.Background()
	cl := c.Client()
	// etcd's authentication: root (needed to enable it) and a kerbkit user
	// whose role may use only its prefix.
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cl.UserAdd(ctx, "root", "root-pw-1"))
	must(cl.UserGrantRole(ctx, "root", "root"))
	must(cl.RoleAdd(ctx, "kerbkit"))
	must(cl.RoleGrantPermission(ctx, "kerbkit", "/realm/", "/realm0", 2)) // READWRITE on the prefix
	must(cl.UserAdd(ctx, "kdc", "kdc-pw-1"))
	must(cl.UserGrantRole(ctx, "kdc", "kerbkit"))
	must(cl.AuthEnable(ctx))

	url := c.URL("realm")
	mk := filepath.Join(dir, "realm.mkey")
	o := EtcdOptions{CACert: files.CA, Cert: files.ClientCert, Key: files.ClientKey, Username: "kdc", Password: "kdc-pw-1"}
	if err := InitEtcd(ctx, url, mk, "ETCD.TEST", principal.RealmPolicy{}, o, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := OpenEtcd(ctx, url, mk, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(ctx, newUser(t, "alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, principal.Name{Realm: "ETCD.TEST", Components: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}

	for name, bad := range map[string]EtcdOptions{
		"wrong password":     {CACert: files.CA, Cert: files.ClientCert, Key: files.ClientKey, Username: "kdc", Password: "not-the-pw"},
		"no client cert":     {CACert: files.CA, Username: "kdc", Password: "kdc-pw-1"},
		"no TLS":             {Username: "kdc", Password: "kdc-pw-1"},
		"outside its prefix": o,
	} {
		target := url
		if name == "outside its prefix" {
			target = c.URL("elsewhere")
		}
		short, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := OpenEtcd(short, target, mk, bad)
		cancel()
		if err == nil {
			t.Errorf("%s: opened", name)
			continue
		}
		if strings.Contains(err.Error(), "not-the-pw") || strings.Contains(err.Error(), "kdc-pw-1") {
			t.Errorf("%s: the error carries the password: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
