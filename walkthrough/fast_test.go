package walkthrough

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// The committed capture of an armored login (made by TestCaptureFAST with -update): in a realm of our KDC, MIT
// kinit -k logs host/localhost in from its keytab into an armor cache, kinit -T logs alice in inside that
// armor (RFC 6113), and kvno host/localhost armors its TGS-REQ with alice's TGT. The keytab holds the realm's
// krbtgt key and host/localhost's key; alice's password is testenv.UserPassword.
const (
	fastCapture = "testdata/fast-armored-kinit.pcap"
	fastKeytab  = "testdata/fast-armored-kinit.keytab"
	fastGolden  = "testdata/fast-armored-kinit.txt"
)

// TestCaptureFAST, live: tcpdump of MIT kinit -k (the armor ticket), kinit -T (the armored login) and kvno
// against an in-process realm of ours. With -update the capture and keytab become testdata.
func TestCaptureFAST(t *testing.T) {
	kinit, kvno := testenv.RequireTool(t, "kinit"), testenv.RequireTool(t, "kvno")
	r := testenv.NewInProcRealm(t, testenv.InProcOptions{})
	entries, err := r.Admin.Keytab(context.Background(), []string{"krbtgt/" + r.Name, "host/localhost"})
	if err != nil {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "realm.keytab")
	if err := ticket.WriteKeytabFile(kt, entries); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostKT := filepath.Join(dir, "host.keytab")
	if err := r.ExportKeytab(hostKT, "host/localhost"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, []byte(testenv.KRB5Conf(r.Name, r.Addr, testenv.EnvOptions{})), 0o600); err != nil {
		t.Fatal(err)
	}
	armor := "FILE:" + filepath.Join(dir, "armor-cc")
	env := testenv.ClientEnviron(map[string]string{"KRB5_CONFIG": conf, "KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc"),
		"KRB5RCACHETYPE": "none"})
	_, port, _ := net.SplitHostPort(r.Addr)
	td := startTcpdump(t, "port "+port)
	runOK(t, env, "", kinit, "-k", "-t", hostKT, "-c", armor, "host/localhost")
	runOK(t, env, testenv.UserPassword+"\n", kinit, "-T", armor, testenv.UserName)
	runOK(t, env, "", kvno, "host/localhost")
	file := td.stop(t)
	checkFASTStory(t, explainFile(t, file, kt, testenv.UserPassword))
	keepCapture(t, file, kt, fastCapture, fastKeytab)
}

// fastSteps are the steps of the armored login's capture: host/localhost's kinit -k (the armor ticket, whose
// AS-REP says that the KDC speaks FAST: PA-FX-FAST in its encrypted-pa-data, RFC 6806 §11), alice's kinit -T
// (armored from the first request, as the armor cache records that FAST is available; the second time with the
// encrypted challenge), and kvno's armored TGS exchange.
var fastSteps = []string{"as-req-1", "preauth-required", "s2k", "as-req-2", "as-rep",
	"as-req-3", "preauth-required-2", "s2k-2", "as-req-4", "as-rep-2", "tgs-req", "tgs-rep"}

// partNamed returns the part of step id whose name starts with name, or nil.
func partNamed(st *Story, id, name string) *Part {
	s := st.Step(id)
	if s == nil {
		return nil
	}
	for i := range s.Parts {
		if strings.HasPrefix(s.Parts[i].Name, name) {
			return &s.Parts[i]
		}
	}
	return nil
}

// wantFASTPart checks that a part is in the story, opened or not, with the key usage given and a key owner
// that contains owner.
func wantFASTPart(t *testing.T, st *Story, id, name string, opened bool, usage int, owner string) *Part {
	t.Helper()
	p := partNamed(st, id, name)
	switch {
	case p == nil:
		t.Errorf("%s: no part %q", id, name)
		return nil
	case p.Opened != opened:
		t.Errorf("%s part %q: opened %v, want %v (%s)", id, name, p.Opened, opened, p.Reason)
	case !opened && (p.Reason == "" || p.SealedFor == ""):
		t.Errorf("%s part %q stays sealed without saying for whom and why", id, name)
	}
	if p.Key.Usage != usage || !strings.Contains(p.Key.Owner, owner) {
		t.Errorf("%s part %q: key %q usage %d, want usage %d and an owner with %q", id, name, p.Key.Owner, p.Key.Usage, usage, owner)
	}
	return p
}

// checkFASTStory checks the explanation of the armored login with every key given: each part of the armor
// opens with the key that protects it, each check passes (but the client's note that the AS refused the rounds
// it answered with PREAUTH_REQUIRED), and no key value is shown.
func checkFASTStory(t *testing.T, st *Story) {
	t.Helper()
	wantSteps(t, st, fastSteps...)
	wantOpened(t, st, "pre", "A", "B", "C", "D", "E", "F")
	if s := st.Step("s2k"); s == nil || !strings.Contains(s.Title, "keytab") {
		t.Errorf("host/localhost's key is not taken from the keytab: %+v", s)
	}
	if p := partNamed(st, "as-rep", "enc-part (EncASRepPart)"); p == nil || !strings.Contains(p.Key.Owner, "kept in its keytab") {
		t.Errorf("host/localhost's A is not shown sealed in its keytab key: %+v", p)
	}
	for _, id := range []string{"as-req-3", "as-req-4"} {
		wantFASTPart(t, st, id, "armor ticket enc-part", true, 2, "krbtgt/KERBKIT.TEST@KERBKIT.TEST's long-term key")
		wantFASTPart(t, st, id, "armor authenticator", true, 11, "the armor ticket's session key")
		wantFASTPart(t, st, id, "req-checksum", true, usageFastReqChecksum, "the FAST armor key")
		wantFASTPart(t, st, id, "enc-fast-req", true, usageFastEnc, "the FAST armor key")
		if s := st.Step(id); !hasCheck(s, CheckPass, "the req-checksum verifies with the armor key") || !strings.Contains(s.Title, "armored with FAST") {
			t.Errorf("%s: %q, req-checksum not verified", id, s.Title)
		}
	}
	wantFASTPart(t, st, "as-req-4", "padata PA-ENCRYPTED-CHALLENGE", true, usageEncChallengeClient, "the client challenge key")
	s4 := st.Step("as-req-4")
	if !hasCheck(s4, CheckPass, "the challenge's time is within") || !hasCheck(s4, CheckPass, "is echoed inside the armor (PA-FX-COOKIE)") ||
		!hasNote(s4, "offline") {
		t.Errorf("as-req-4: the challenge's time, the cookie's echo or the note on offline guessing is missing")
	}
	if !hasNote(st.Step("as-req-3"), "The armor key mixes two keys") {
		t.Errorf("as-req-3: no note on why the armor key mixes two keys")
	}
	e := wantFASTPart(t, st, "preauth-required-2", "e-data PA-FX-FAST", true, usageFastRep, "the FAST armor key")
	if e != nil && (!hasField(e.Fields, "the real KRB-ERROR, inside the armor") || !hasField(e.Fields, "KDC_ERR_PREAUTH_REQUIRED") || !hasField(e.Fields, `"kerbkit"`)) {
		t.Errorf("the armored error does not show the inner KRB-ERROR and the cookie: %+v", e.Fields)
	}
	if s := st.Step("preauth-required-2"); !hasCheck(s, CheckPass, "offers PA-ENCRYPTED-CHALLENGE (138)") || !hasCheck(s, CheckPass, "PA-FX-ERROR holds the real KRB-ERROR") {
		t.Errorf("preauth-required-2: checks %+v", s.Checks)
	}
	wantFASTPart(t, st, "as-rep-2", "padata PA-FX-FAST", true, usageFastRep, "the FAST armor key")
	wantFASTPart(t, st, "as-rep-2", "ticket-checksum", true, usageFastFinished, "the FAST armor key")
	wantFASTPart(t, st, "as-rep-2", "PA-ENCRYPTED-CHALLENGE from the KDC", true, usageEncChallengeKDC, "the KDC challenge key")
	wantFASTPart(t, st, "as-rep-2", "enc-part (EncASRepPart)", true, 3, "the strengthened reply key: KRB-FX-CF2(the strengthen-key")
	if s := st.Step("as-rep-2"); !hasCheck(s, CheckPass, "the ticket-checksum in KrbFastFinished verifies") || !hasCheck(s, CheckPass, "the KDC's encrypted challenge decrypts") {
		t.Errorf("as-rep-2: the ticket-checksum or the KDC's challenge not verified")
	}
	// kvno's TGS-REQ is armored with alice's TGT: its reply carries KrbFastFinished too, over ticket E.
	wantFASTPart(t, st, "tgs-rep", "ticket-checksum (KrbFastFinished, over ticket E)", true, usageFastFinished, "the FAST armor key")
	for _, s := range st.Steps {
		for _, c := range s.Checks {
			if c.Result == CheckFail && !strings.Contains(c.Text, "refused it with KDC_ERR_PREAUTH_REQUIRED") {
				t.Errorf("%s: failed check in a good capture: %s", s.ID, c.Text)
			}
		}
		for _, p := range s.Parts {
			if p.Key.Value != "" {
				t.Errorf("%s part %q: a capture's explanation shows a key value", s.ID, p.Name)
			}
		}
	}
}

// TestExplainCaptureFAST explains the committed capture of an armored login and keeps its text rendering in
// testdata (refreshed with -update).
func TestExplainCaptureFAST(t *testing.T) {
	st := explainFile(t, fastCapture, fastKeytab, testenv.UserPassword)
	checkFASTStory(t, st)
	kt, err := client.LoadKeytab(fastKeytab)
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, e := range kt.Entries {
		keys = append(keys, e.Key.KeyValue)
	}
	wantTextGolden(t, st, fastGolden, testenv.UserPassword, keys...)
}

// TestExplainCaptureFASTFewerKeys: without krbtgt's key the armor ticket stays sealed, but its session key,
// learned from host/localhost's own AS-REP earlier in the capture, still opens the armor; with the password only,
// the armor and what it seals stay sealed, each part saying why, and nothing fails to be explained.
func TestExplainCaptureFASTFewerKeys(t *testing.T) {
	full, err := client.LoadKeytab(fastKeytab)
	if err != nil {
		t.Fatal(err)
	}
	var host []ticket.KeytabEntry
	for _, e := range full.Entries {
		if e.Principal.Components[0] == "host" {
			host = append(host, ticket.KeytabEntry{Principal: principal.Name{Realm: e.Principal.Realm, Components: e.Principal.Components},
				Timestamp: e.Timestamp, KVNO: e.KVNO, Key: e.Key})
		}
	}
	path := filepath.Join(t.TempDir(), "host.keytab")
	if err := ticket.WriteKeytabFile(path, host); err != nil {
		t.Fatal(err)
	}
	st := explainFile(t, fastCapture, path, testenv.UserPassword)
	wantSteps(t, st, fastSteps...)
	wantFASTPart(t, st, "as-req-3", "armor ticket enc-part", false, 2, "krbtgt/KERBKIT.TEST@KERBKIT.TEST's long-term key")
	wantFASTPart(t, st, "as-req-3", "armor authenticator", true, 11, "the armor ticket's session key")
	wantFASTPart(t, st, "as-req-4", "padata PA-ENCRYPTED-CHALLENGE", true, usageEncChallengeClient, "the client challenge key")
	wantFASTPart(t, st, "as-rep-2", "enc-part (EncASRepPart)", true, 3, "the strengthened reply key")

	pw := explainFile(t, fastCapture, "", testenv.UserPassword)
	// The password is tried on host/localhost's login too, and does not fit; alice's salt travels only inside
	// the armor, which the password alone does not open, so her key is never made.
	wantSteps(t, pw, slices.DeleteFunc(slices.Clone(fastSteps), func(id string) bool { return id == "s2k-2" })...)
	for _, c := range []struct{ id, name string }{
		{"as-req-3", "armor authenticator"}, {"as-req-3", "enc-fast-req"}, {"preauth-required-2", "e-data PA-FX-FAST"},
		{"as-rep-2", "padata PA-FX-FAST"}, {"as-rep-2", "enc-part (EncASRepPart)"},
	} {
		if p := partNamed(pw, c.id, c.name); p == nil || p.Opened || p.Reason == "" {
			t.Errorf("password only: %s part %q should stay sealed with a reason: %+v", c.id, c.name, p)
		}
	}
	if p := partNamed(pw, "as-req-3", "armor authenticator"); p != nil && !strings.Contains(p.Reason, "--keytab") {
		t.Errorf("the sealed armor authenticator does not say what would open it: %q", p.Reason)
	}
	if p := partNamed(pw, "as-rep-2", "padata PA-FX-FAST"); p != nil && p.CipherSize == 0 {
		t.Errorf("the sealed KrbFastResponse does not say how big it is")
	}

	none := explainFile(t, fastCapture, "", "")
	if len(none.Steps) != len(fastSteps)-2 { // no key-making steps without keys
		t.Errorf("without keys: steps %v", stepIDs(none))
	}
	for _, s := range none.Steps {
		for _, p := range s.Parts {
			if p.Opened || p.Reason == "" {
				t.Errorf("without keys: %s part %q opened %v, reason %q", s.ID, p.Name, p.Opened, p.Reason)
			}
		}
	}
}

// TestFASTMalformed: truncated, garbage and altered PA-FX-FAST values in an armored AS-REQ, its KRB-ERROR and
// its AS-REP never make the recorder panic; the request is still explained, with what did not open sealed.
func TestFASTMalformed(t *testing.T) {
	d := captureMessages(t, fastCapture)
	// The armored AS-REQ with the encrypted challenge, and the first AS-REP (host/localhost's: the armor ticket's).
	var req, armorRep []byte
	for _, m := range d.msgs {
		switch ticket.MessageType(m.data) {
		case msgtype.KRB_AS_REQ:
			if bytes.Contains(m.data, []byte{0xa1, 0x04, 0x02, 0x02, 0x00, 0x88}) && len(m.data) > 1000 {
				req = m.data
			}
		case msgtype.KRB_AS_REP:
			if armorRep == nil {
				armorRep = m.data
			}
		}
	}
	if req == nil || armorRep == nil {
		t.Fatal("no armored AS-REQ or AS-REP in the capture")
	}
	var as messages.ASReq
	if err := as.Unmarshal(req); err != nil {
		t.Fatal(err)
	}
	var good []byte
	for _, pa := range as.PAData {
		if pa.PADataType == paFXFast {
			good = pa.PADataValue
		}
	}
	flip := bytes.Clone(good)
	flip[len(flip)-20] ^= 0x40
	values := map[string][]byte{
		"garbage":    []byte("not DER at all, just bytes"),
		"one byte":   {0xa0},
		"no armor":   {0xa0, 0x03, 0x30, 0x01, 0x00},
		"half":       good[:len(good)/2],
		"all but 1":  good[:len(good)-1],
		"flipped":    flip,
		"zero bytes": bytes.Repeat([]byte{0}, 64),
	}
	kt, err := client.LoadKeytab(fastKeytab)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			bad := as
			bad.PAData = types.PADataSequence{{PADataType: paFXFast, PADataValue: v}}
			b, err := bad.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			errData, err := (&messages.KRBError{PVNO: 5, MsgType: msgtype.KRB_ERROR, ErrorCode: 25, Realm: "KERBKIT.TEST",
				EData: mustMethodData(t, v)}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			rec := NewRecorder(Options{View: ViewCapture, RealmKey: keytabKeys(kt), Password: testenv.UserPassword, HasPassword: true})
			rec.Add(Wire{Data: req, Sent: true})
			rec.Add(Wire{Data: armorRepWithFAST(t, armorRep, v)})
			rec.Add(Wire{Data: b, Sent: true})
			rec.Add(Wire{Data: errData})
			rec.Flush()
			steps := rec.Steps()
			if len(steps) < 3 {
				t.Fatalf("%d steps", len(steps))
			}
			s := steps[len(steps)-2]
			if s.Message != "AS-REQ" || len(s.Parts) == 0 {
				t.Fatalf("the malformed request is not explained: %+v", s)
			}
			for _, p := range s.Parts {
				if name != "flipped" && p.Name == "enc-fast-req (KrbFastReq)" && p.Opened {
					t.Errorf("%s: enc-fast-req opened", name)
				}
				if !p.Opened && p.Reason == "" {
					t.Errorf("%s: part %q sealed without a reason", name, p.Name)
				}
			}
		})
	}
}

// mustMethodData encodes METHOD-DATA holding one PA-FX-FAST of value v.
func mustMethodData(t *testing.T, v []byte) []byte {
	t.Helper()
	b, err := ticket.MethodData(types.PAData{PADataType: paFXFast, PADataValue: v})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// armorRepWithFAST returns an AS-REP with its padata replaced by one PA-FX-FAST of value v.
func armorRepWithFAST(t *testing.T, rep, v []byte) []byte {
	t.Helper()
	var r messages.ASRep
	if err := r.Unmarshal(rep); err != nil {
		t.Fatal(err)
	}
	r.PAData = types.PADataSequence{{PADataType: paFXFast, PADataValue: v}}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
