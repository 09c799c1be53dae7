package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/ticket"
)

// FAST (RFC 6113) with MIT's tools: kinit -T ARMOR_CCACHE, the armor ticket
// from a host keytab login, as the MIT documentation sets it up.

// armorCache logs host/localhost in from the realm's keytab into a cache of
// its own and returns that cache's name, for kinit -T.
func armorCache(t *testing.T, r *Realm) string {
	t.Helper()
	env := r.Env(EnvOptions{})
	cc := "FILE:" + filepath.Join(filepath.Dir(CCachePath(env)), "armor.ccache")
	kinit := RequireTool(t, "kinit")
	if _, stderr, code := Run(t, env, "", kinit, "-k", "-t", r.Keytab, "-c", cc, r.Principal("host/localhost")); code != 0 {
		t.Fatalf("kinit -k -t %s host/localhost (armor): exit %d: %s", r.Keytab, code, strings.TrimSpace(stderr))
	}
	return cc
}

// TestMITKinitArmored: kinit -T logs alice in armored: the trace shows the
// request encoded into FAST from the first request (the armor ccache's TGT
// came with PA-FX-FAST in its encrypted-pa-data, RFC 6806 §11, so MIT recorded
// fast_avail in it), the FAST reply decoded and the reply key strengthened,
// with encrypted challenge as the pre-authentication and no fallback to an
// unarmored exchange. The reply says FAST is available too.
func TestMITKinitArmored(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	armor := armorCache(t, r)
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-T", armor, UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	trace := Trace(env)
	wantContains(t, "KRB5_TRACE", trace,
		"FAST armor ccache: "+armor,
		"fast_avail: yes",
		"Using FAST due to armor ccache negotiation result",
		"Encoding request body and padata into FAST request",
		"Decoding FAST response",
		"Preauth module encrypted_challenge (138)",
		"FAST reply key:",
		"FAST negotiation: available",
	)
	if strings.Contains(trace, "encrypted_timestamp") {
		t.Errorf("kinit -T pre-authenticated with the timestamp, outside the armor:\n%s", trace)
	}
	wantLog(t, r.Log, "client="+r.Principal(UserName))
}

// TestMITKinitArmoredWrongPassword: a wrong password inside FAST is
// "Password incorrect", from the armored KRB-ERROR.
func TestMITKinitArmoredWrongPassword(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	armor := armorCache(t, r)
	env := r.Env(EnvOptions{})
	_, stderr, code := mitKinit(t, env, "not-"+UserPassword, "-T", armor, UserName)
	if code == 0 {
		t.Fatal("kinit -T with a wrong password succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "Password incorrect")
	wantContains(t, "KRB5_TRACE", Trace(env), "Decoding FAST response")
	if _, err := os.Stat(CCachePath(env)); err == nil {
		t.Error("a failed kinit left a credential cache")
	}
}

// TestMITKvnoArmored: MIT kvno armors every TGS-REQ with the TGT (implicit
// armor, RFC 6113 §5.4.1.1); the KDC now answers inside the armor: the trace
// shows the FAST response decoded and the reply key strengthened.
func TestMITKvnoArmored(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, UserName)
	kvno := RequireTool(t, "kvno")
	if _, stderr, code := Run(t, env, "", kvno, "host/localhost"); code != 0 {
		t.Fatalf("kvno host/localhost: exit %d: %s", code, stderr)
	}
	wantContains(t, "KRB5_TRACE", Trace(env), "Decoding FAST response", "FAST reply key:")
	// An error inside the armor: MIT reports the inner code.
	_, stderr, code := Run(t, env, "", kvno, "nosuch/localhost")
	if code == 0 {
		t.Fatal("kvno for an unknown service succeeded")
	}
	wantContains(t, "kvno stderr", stderr, "not found in Kerberos database")
}

// TestMITKinitFASTRequired: with alice marked --requires-fast, an unarmored
// MIT kinit is refused with the policy error, kinit -T still logs in
// armored, and other principals still log in unarmored.
func TestMITKinitFASTRequired(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	out := r.mustKDC(t, "", "principal", "modify", UserName, "--requires-fast")
	wantContains(t, "principal modify", out, "requires FAST true")
	env := r.Env(EnvOptions{})
	_, stderr, code := mitKinit(t, env, UserPassword, UserName)
	if code == 0 {
		t.Fatal("unarmored kinit of a principal that requires FAST succeeded")
	}
	wantContains(t, "kinit stderr", stderr, "KDC policy rejects request")
	wantLog(t, r.Log, "result=FAST_REQUIRED")

	armor := armorCache(t, r) // host/localhost needs no FAST
	env = r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-T", armor, UserName)
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
	wantContains(t, "KRB5_TRACE", Trace(env), "Using FAST due to armor ccache negotiation result", "Decoding FAST response")
}

// TestHeimdalKinitArmored: Heimdal 7.8's kinit --fast-armor-cache logs alice
// in armored (it pre-authenticates with the encrypted timestamp inside FAST
// and uses no strengthen key, kdc/fast.go fastReply). Armor is proven by
// --requires-fast on alice: the unarmored Heimdal kinit is refused with the
// policy error, the armored one gets the TGT.
func TestHeimdalKinitArmored(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	out := r.mustKDC(t, "", "principal", "modify", UserName, "--requires-fast")
	wantContains(t, "principal modify", out, "requires FAST true")

	env := r.Env(EnvOptions{})
	_, stderr, code := heimdalKinitArgs(t, h, env, UserPassword, r.Principal(UserName))
	if code == 0 {
		t.Fatal("unarmored kinit.heimdal of a principal that requires FAST succeeded")
	}
	// Heimdal shows the KRB-ERROR's e-text rather than the code's text.
	wantContains(t, "kinit.heimdal stderr", stderr, "FAST_REQUIRED")
	wantLog(t, r.Log, "result=FAST_REQUIRED")

	armor := armorCache(t, r) // host/localhost needs no FAST
	env = r.Env(EnvOptions{})
	if _, stderr, code := heimdalKinitArgs(t, h, env, UserPassword, "--fast-armor-cache="+armor, r.Principal(UserName)); code != 0 {
		t.Fatalf("kinit.heimdal --fast-armor-cache: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")

	// A wrong password inside the armor is still refused.
	env = r.Env(EnvOptions{})
	_, stderr, code = heimdalKinitArgs(t, h, env, "not-"+UserPassword, "--fast-armor-cache="+armor, r.Principal(UserName))
	if code == 0 {
		t.Fatal("kinit.heimdal --fast-armor-cache with a wrong password succeeded")
	}
	wantContains(t, "kinit.heimdal stderr", stderr, "Password incorrect")
}

// TestHeimdalKgetcredAfterArmoredKinit: after kinit.heimdal
// --fast-armor-cache, Heimdal 7.8's kgetcred gets host/localhost from the same
// cache. A recorder between Heimdal and our KDC shows what went over the wire:
// the AS-REQs carried PA-FX-FAST (so the recorder sees armor when there is
// some). Heimdal 7.8 sends the TGS-REQ unarmored, PA-TGS-REQ only (no
// implicit TGT armor, RFC 6113 §5.4.1.1, unlike MIT kvno, TestMITKvnoArmored),
// and our KDC answers it with a plain TGS-REP. Should a later Heimdal armor
// it, the reply must come back inside the armor (PA-FX-FAST in the TGS-REP).
func TestHeimdalKgetcredAfterArmoredKinit(t *testing.T) {
	h := Heimdal(t)
	r := NewRealm(t, RealmOptions{})
	armor := armorCache(t, r)
	rec := recordKDC(t, r.Addr)
	env := r.Env(EnvOptions{KDC: rec.Addr})
	if _, stderr, code := heimdalKinitArgs(t, h, env, UserPassword, "--fast-armor-cache="+armor, r.Principal(UserName)); code != 0 {
		t.Fatalf("kinit.heimdal --fast-armor-cache: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	host := r.Principal("host/localhost")
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kgetcred"), host); code != 0 {
		t.Fatalf("kgetcred %s after an armored kinit: exit %d: %s", host, code, strings.TrimSpace(stderr))
	}
	stdout, stderr, code := Run(t, env, "", filepath.Join(h, "klist.heimdal"))
	if code != 0 {
		t.Fatalf("heimtools klist: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	wantContains(t, "Heimdal klist", stdout, "Principal: "+r.Principal(UserName), "krbtgt/"+r.Name+"@"+r.Name, host)
	tgsRequireLog(t, r.Log, "TGS_REQ", "client="+r.Principal(UserName), "service="+host, "result=ISSUE")

	var armoredAS, tgs int
	for _, x := range rec.Exchanges() {
		req, err := ticket.ParseKDCRequest(x.Req)
		if err != nil {
			t.Errorf("recorder: a %s request that is no KDC request: %v", x.Transport, err)
			continue
		}
		_, fast := req.PA(patype.PA_FX_FAST)
		switch req.MsgType {
		case msgtype.KRB_AS_REQ:
			if fast {
				armoredAS++
			}
		case msgtype.KRB_TGS_REQ:
			tgs++
			if ticket.MessageType(x.Rep) != asnAppTag.TGSREP {
				t.Errorf("TGS-REQ over %s (padata %v) answered by message type %d, not a TGS-REP", x.Transport, req.PATypes(), ticket.MessageType(x.Rep))
				continue
			}
			var rep messages.TGSRep
			if err := rep.Unmarshal(x.Rep); err != nil {
				t.Errorf("TGS-REP: %v", err)
				continue
			}
			repFAST := slices.ContainsFunc(rep.PAData, func(pa types.PAData) bool { return pa.PADataType == patype.PA_FX_FAST })
			switch {
			case fast && !repFAST:
				t.Errorf("Heimdal armored its TGS-REQ (padata %v) but the TGS-REP has no PA-FX-FAST: not answered inside the armor", req.PATypes())
			case !fast && repFAST:
				t.Errorf("unarmored TGS-REQ (padata %v) answered with PA-FX-FAST in the TGS-REP", req.PATypes())
			case fast:
				t.Logf("Heimdal armored its TGS-REQ over %s (padata %v); the TGS-REP is armored", x.Transport, req.PATypes())
			default:
				t.Logf("Heimdal sent its TGS-REQ unarmored over %s (padata %v); the TGS-REP is plain", x.Transport, req.PATypes())
			}
		}
	}
	if armoredAS == 0 {
		t.Errorf("the recorder saw no AS-REQ with PA-FX-FAST: kinit.heimdal --fast-armor-cache did not armor (or the recorder misses it)")
	}
	if tgs == 0 {
		t.Errorf("the recorder saw no TGS-REQ from kgetcred")
	}
}
