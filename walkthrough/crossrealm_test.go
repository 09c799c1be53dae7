package walkthrough

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// The committed capture of a cross-realm kvno (made by TestCaptureCrossRealm with -update): MIT kinit alice in
// KERBKIT.TEST, then kvno host/svc.other.test, which KERBKIT.TEST's KDC (ours) refers to OTHER.TEST (ours
// too); the keytab holds both realms' krbtgt keys, the inter-realm key and the service's key.
const (
	crossCapture = "testdata/crossrealm-referral.pcap"
	crossKeytab  = "testdata/crossrealm-referral.keytab"
	crossGolden  = "testdata/crossrealm-referral.txt"
	crossOther   = "OTHER.TEST"
	crossSecret  = "cross-realm shared secret 14"
)

// checkCrossStory checks the explanation of a cross-realm referral: every part opened, the referral named as
// such, and the inter-realm key shown as the key of the cross-realm TGT, both where it is issued and where it
// is presented.
func checkCrossStory(t *testing.T, st *Story) {
	t.Helper()
	wantSteps(t, st, "as-req-1", "preauth-required", "s2k", "as-req-2", "as-rep", "tgs-req", "tgs-rep", "tgs-req-2", "tgs-rep-2")
	wantOpened(t, st, "pre", "A", "B", "C", "D", "E", "F")
	inter := "krbtgt/" + crossOther + "@" + testenv.DefaultRealmName + "'s long-term key: the inter-realm key realms"
	ref := st.Step("tgs-rep")
	if ref == nil || !strings.Contains(ref.Title, "a referral") {
		t.Fatalf("first TGS-REP is not explained as a referral: %+v", ref)
	}
	for _, id := range []string{"tgs-rep", "tgs-req-2"} {
		found := false
		for _, p := range st.Step(id).Parts {
			if (p.Letter == "E" || p.Letter == "C") && strings.HasPrefix(p.Key.Owner, inter) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no part sealed in the inter-realm key (%q...)", id, inter)
		}
	}
	if s := st.Step("tgs-req-2"); s == nil || !strings.Contains(s.Title, "to realm "+crossOther) {
		t.Errorf("second TGS-REQ: %+v", s)
	}
	for _, s := range st.Steps {
		for _, c := range s.Checks {
			if c.Result == CheckFail && s.ID != "as-req-1" {
				t.Errorf("%s: failed check in a good capture: %s", s.ID, c.Text)
			}
		}
	}
}

// TestExplainCaptureCrossRealm explains the committed cross-realm capture and keeps its text rendering in
// testdata (refreshed with -update).
func TestExplainCaptureCrossRealm(t *testing.T) {
	st := explainFile(t, crossCapture, crossKeytab, testenv.UserPassword)
	checkCrossStory(t, st)
	wantTextGolden(t, st, crossGolden, testenv.UserPassword)
}

// wantTextGolden renders a capture's story as text, checks that it shows neither the password nor any of the keys,
// and compares it with the golden file (written instead with -update).
func wantTextGolden(t *testing.T, st *Story, golden, password string, keys ...[]byte) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteText(&b, st, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	noSecrets(t, b.String(), password, keys...)
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	regen := "regenerate with: go test ./walkthrough -run " + t.Name() + " -update"
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (%s)", err, regen)
	}
	if d := firstDiff(normalize(b.String()), normalize(string(want))); d != "" {
		t.Errorf("%s is out of date (%s)\n%s", golden, regen, d)
	}
}

// TestCaptureCrossRealm, live: two realms of ours that trust each other, tcpdump on both KDCs' ports, MIT kinit
// and kvno of a service of the other realm asked by its name alone (no [domain_realm] entry: the first KDC
// refers it). With -update the capture and keytab become testdata.
func TestCaptureCrossRealm(t *testing.T) {
	kinit, kvno := testenv.RequireTool(t, "kinit"), testenv.RequireTool(t, "kvno")
	a := testenv.NewInProcRealm(t, testenv.InProcOptions{})
	b := testenv.NewInProcRealm(t, testenv.InProcOptions{Name: crossOther,
		Principals: []testenv.Principal{{Name: "host/svc.other.test", RandomKey: true}}, KeytabPrincipals: []string{}})
	ctx := context.Background()
	for _, x := range []struct {
		r     *testenv.InProcRealm
		other string
	}{{a, crossOther}, {b, a.Name}} {
		if _, err := x.r.Admin.TrustAdd(ctx, kdc.TrustRequest{Realm: x.other, Password: crossSecret}); err != nil {
			t.Fatal(err)
		}
	}
	ea, err := a.Admin.Keytab(ctx, []string{"krbtgt/" + a.Name, "krbtgt/" + crossOther})
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.Admin.Keytab(ctx, []string{"host/svc.other.test"})
	if err != nil {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "realms.keytab")
	if err := ticket.WriteKeytabFile(kt, append(ea, eb...)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := testenv.KRB5Conf(a.Name, a.Addr, testenv.EnvOptions{}) +
		"[realms]\n    " + crossOther + " = {\n        kdc = " + b.Addr + "\n    }\n"
	if err := os.WriteFile(filepath.Join(dir, "krb5.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testenv.ClientEnviron(map[string]string{"KRB5_CONFIG": filepath.Join(dir, "krb5.conf"),
		"KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc"), "KRB5RCACHETYPE": "none"})
	_, pa, _ := net.SplitHostPort(a.Addr)
	_, pb, _ := net.SplitHostPort(b.Addr)
	td := startTcpdump(t, "port "+pa+" or port "+pb)
	runOK(t, env, testenv.UserPassword+"\n", kinit, testenv.UserName)
	runOK(t, env, "", kvno, "host/svc.other.test")
	file := td.stop(t)
	checkCrossStory(t, explainFile(t, file, kt, testenv.UserPassword))
	keepCapture(t, file, kt, crossCapture, crossKeytab)
}
