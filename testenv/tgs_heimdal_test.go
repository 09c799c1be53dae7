package testenv

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTGSHeimdalKgetcredTimes: Heimdal 7.8 kinit.heimdal + kgetcred against our
// KDC. kgetcred sends from = till = 19700101000000Z ("as long as policy
// allows", protocol-notes.md trap 6) and a nonce that is often negative (trap
// 7). Heimdal's klist and MIT's klist show the service ticket, valid from now
// for the TGT's lifetime (not already expired), and MIT kvno -k accepts the
// ticket Heimdal stored, from the same cache, without a new TGS exchange.
func TestTGSHeimdalKgetcredTimes(t *testing.T) {
	h := Heimdal(t)
	kvno := RequireTool(t, "kvno")
	r := NewRealm(t, RealmOptions{})
	host := r.Principal("host/localhost")
	env := r.Env(EnvOptions{})
	mustHeimdalKinit(t, h, env, UserPassword, r.Principal(UserName))
	if _, stderr, code := Run(t, env, "", filepath.Join(h, "kgetcred"), host); code != 0 {
		t.Fatalf("kgetcred %s: exit %d: %s\nKDC log:\n%s", host, code, strings.TrimSpace(stderr), tail(r.Log(), 4000))
	}
	tgsRequireLog(t, r.Log, "TGS_REQ", "service="+host, "result=ISSUE")

	stdout, stderr, code := Run(t, env, "", filepath.Join(h, "klist.heimdal"))
	if code != 0 {
		t.Fatalf("heimtools klist: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	wantContains(t, "Heimdal klist", stdout, "Principal: "+r.Principal(UserName), "krbtgt/"+r.Name+"@"+r.Name, host)
	if strings.Contains(stdout, ">>>Expired<<<") {
		t.Errorf("Heimdal klist shows an expired ticket (till=epoch taken literally?):\n%s", stdout)
	}

	k := mitKlist(t, env)
	tgt := requireTGT(t, k, r.Principal(UserName), r.Name, "IA")
	st := tgsRequireTicket(t, k, host)
	start, end := tgsKlistTime(t, "service start", st.Start), tgsKlistTime(t, "service end", st.Expires)
	tgsNear(t, "service ticket start − now", time.Until(start), 0, time.Minute)
	if end.Before(time.Now().Add(time.Hour)) {
		t.Errorf("service ticket from kgetcred expires %s, less than an hour from now (till=epoch must mean policy max)", st.Expires)
	}
	if te := tgsKlistTime(t, "TGT end", tgt.Expires); end.After(te) {
		t.Errorf("service ticket expires %s, after its TGT (%s)", st.Expires, tgt.Expires)
	}

	// MIT kvno -k reads the ticket Heimdal stored (same FILE ccache format) and
	// decrypts it with the keytab from `kdc keytab`.
	ResetTrace(env)
	stdout, stderr, code = Run(t, env, "", kvno, "-k", r.Keytab, "host/localhost")
	if code != 0 {
		t.Fatalf("kvno -k on Heimdal's cache: exit %d: %s\n%s", code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(env)))
	}
	wantContains(t, "kvno -k output", stdout, host+": kvno = 1, keytab entry valid")
	if strings.Contains(Trace(env), "Sending request") {
		t.Errorf("kvno made a new TGS request instead of using the ticket from kgetcred:\n%s", tgsTraceExcerpt(Trace(env)))
	}
}
