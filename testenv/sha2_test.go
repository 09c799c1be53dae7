package testenv

import (
	"regexp"
	"strings"
	"testing"
)

// TestSHA2SessionKeysEndToEnd runs a whole login, service ticket and mutual
// authentication with aes256-cts-hmac-sha384-192 (RFC 8009) as the only
// enctype MIT's clients may use. gokrb5 makes 24-byte random keys of that type
// and then refuses them, which broke session keys and subkeys of enctype 20.
func TestSHA2SessionKeysEndToEnd(t *testing.T) {
	kinit := RequireTool(t, "kinit")
	klist := RequireTool(t, "klist")
	gssClient := RequireTool(t, "gss-client")
	const sha384 = "aes256-cts-hmac-sha384-192"
	r, env := serviceRealm(t, EnvOptions{Libdefaults: []string{
		"default_tkt_enctypes = " + sha384, "default_tgs_enctypes = " + sha384, "permitted_enctypes = " + sha384,
	}})
	ks := startKservice(t, r.Keytab, "--service", "host@localhost")
	if _, stderr, code := Run(t, env, UserPassword+"\n", kinit, "alice"); code != 0 {
		t.Fatalf("kinit: %s", stderr)
	}
	stdout, stderr, code := Run(t, env, "", gssClient, "-port", ks.gssPort, "localhost", "host@localhost", "sha2 hello")
	if code != 0 || !strings.Contains(stdout, "Signature verified") {
		t.Fatalf("gss-client with %s: exit %d\n%s%s", sha384, code, stdout, stderr)
	}
	if _, err := ks.proc.WaitOutput(regexp.MustCompile(`received message: \\"sha2 hello\\"`), StartTimeout); err != nil {
		t.Errorf("kservice did not log the message: %v", err)
	}
	out, _, _ := Run(t, env, "", klist, "-e")
	// Both the TGT's and the service ticket's session keys are aes256-sha384.
	if n := strings.Count(out, "Etype (skey, tkt): "+sha384); n != 2 {
		t.Fatalf("klist -e shows %d %s session keys, want 2:\n%s", n, sha384, out)
	}
	wantContains(t, "KRB5_TRACE", Trace(env), "Read AP-REP", "subkey aes256-sha2/")
}
