package client

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/testenv"
)

// startMITRealm starts a throw-away MIT krb5kdc realm KRB.TEST (testenv.NewMITRealm) with alice/alicepw
// (requires preauth), dave/davepw (preauth, salt without realm), erin/erinpw (no preauth, salt without realm),
// svc/client (random keys, in r.Keytab), and krbtgt's keys in r.Dir/krbtgt.keytab so tests can open TGTs.
func startMITRealm(t *testing.T) *testenv.MITRealm {
	t.Helper()
	norealm := []string{"-e", "aes256-cts-hmac-sha1-96:norealm"}
	r := testenv.NewMITRealm(t, testenv.MITRealmOptions{
		Name: "KRB.TEST",
		Enctypes: "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal " +
			"aes256-cts-hmac-sha384-192:normal aes128-cts-hmac-sha256-128:normal",
		Principals: []testenv.Principal{
			{Name: "alice", Password: "alicepw"},
			{Name: "dave", Password: "davepw", Args: norealm},
			{Name: "erin", Password: "erinpw", Args: append([]string{"-requires_preauth"}, norealm...)},
			{Name: "svc/client", RandomKey: true},
		},
		KeytabPrincipals: []string{"svc/client"},
	})
	r.KadminLocal(t, "", "ktadd -norandkey -k "+filepath.Join(r.Dir, "krbtgt.keytab")+" krbtgt/"+r.Name)
	return r
}

// realmConfig returns a client Config for the realm with its one KDC at addr (no krb5.conf involved).
func realmConfig(realm, addr string) *Config {
	c := &Config{Realm: realm, KDCs: map[string][]string{realm: {addr}}, Timeout: 5 * time.Second}
	c.ApplyDefaults()
	return c
}
