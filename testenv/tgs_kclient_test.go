package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/ticket"
)

// Our client's TGS exchange (kclient ticket, kclient renew, kclient login -R)
// against a real MIT krb5kdc and against our KDC, checked with MIT's tools.

// tgsKlistCoversCache fails the test unless MIT klist lists every credential
// of the cache file (configuration entries excepted) and nothing else.
func tgsKlistCoversCache(t *testing.T, env []string, k *Klist) {
	t.Helper()
	cc, err := ticket.ReadCCacheFile(CCachePath(env))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range cc.Credentials {
		if !c.IsConfig() {
			want[c.Server.String()] = true
		}
	}
	got := map[string]bool{}
	for _, tk := range k.Tickets {
		got[tk.Server] = true
	}
	for s := range want {
		if !got[s] {
			t.Errorf("MIT klist does not list %s, which is in the cache kclient wrote (klist lists %v)", s, got)
		}
	}
	for s := range got {
		if !want[s] {
			t.Errorf("MIT klist lists %s, which our ccache parser does not see (cache holds %v)", s, want)
		}
	}
	if cc.DefaultPrincipal.String() != k.Principal {
		t.Errorf("cache default principal %s, MIT klist says %s", cc.DefaultPrincipal, k.Principal)
	}
}

// tgsKvnoFromCache runs MIT kvno -k KEYTAB SERVICE, requires "keytab entry
// valid" with the given kvno, and requires that kvno used the ticket already in
// the cache (no request to the KDC in KRB5_TRACE).
func tgsKvnoFromCache(t *testing.T, env []string, keytab, service, princ string, kvno int) {
	t.Helper()
	tool := RequireTool(t, "kvno")
	ResetTrace(env)
	stdout, stderr, code := Run(t, env, "", tool, "-k", keytab, service)
	if code != 0 {
		t.Fatalf("kvno -k %s %s on kclient's cache: exit %d: %s\n%s", keytab, service, code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(env)))
	}
	wantContains(t, "kvno -k output", stdout, princ+": kvno = ", "keytab entry valid")
	if n := tgsKvnoOf(stdout, princ); n != kvno {
		t.Errorf("kvno -k printed kvno %d for %s, want %d", n, princ, kvno)
	}
	if strings.Contains(Trace(env), "Sending request") {
		t.Errorf("kvno fetched a new ticket instead of using the one kclient stored:\n%s", tgsTraceExcerpt(Trace(env)))
	}
}

// tgsKeytabKVNO returns the highest kvno of princ in an MIT keytab (klist -k).
func tgsKeytabKVNO(t *testing.T, env []string, keytab, princ string) int {
	t.Helper()
	klist := RequireTool(t, "klist")
	stdout, stderr, code := Run(t, env, "", klist, "-k", keytab)
	if code != 0 {
		t.Fatalf("klist -k %s: exit %d: %s", keytab, code, strings.TrimSpace(stderr))
	}
	best := -1
	for _, l := range strings.Split(stdout, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == princ {
			var n int
			if _, err := fmt.Sscan(f[0], &n); err == nil && n > best {
				best = n
			}
		}
	}
	if best < 0 {
		t.Fatalf("klist -k %s lists no %s:\n%s", keytab, princ, stdout)
	}
	return best
}

// TestTGSKclientTicketMITKDC: kclient login + kclient ticket host/localhost
// HTTP/localhost against a real MIT krb5kdc. kclient prints the kvno of the
// service keys (what ktadd left in the keytab); MIT kvno -k with the MIT keytab
// accepts the host/localhost ticket from our cache ("keytab entry valid")
// without asking the KDC again; MIT klist lists every ticket we wrote.
func TestTGSKclientTicketMITKDC(t *testing.T) {
	tgsKclientHas(t, "ticket")
	m := NewMITRealm(t, MITRealmOptions{})
	host, http := m.Principal("host/localhost"), m.Principal("HTTP/localhost")
	env := m.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	out := mustKclient(t, env, "", "ticket", "host/localhost", "HTTP/localhost")
	wantKVNO := tgsKeytabKVNO(t, env, m.Keytab, host)
	if n := tgsKvnoOf(out, host); n != wantKVNO {
		t.Errorf("kclient ticket printed kvno %d for %s, the MIT keytab holds kvno %d:\n%s", n, host, wantKVNO, out)
	}
	if n := tgsKvnoOf(out, http); n != tgsKeytabKVNO(t, env, m.Keytab, http) {
		t.Errorf("kclient ticket printed kvno %d for %s:\n%s", n, http, out)
	}
	if !strings.Contains(m.Log(), "for "+host) || !strings.Contains(m.Log(), "TGS_REQ") {
		t.Errorf("MIT KDC log shows no TGS_REQ for %s:\n%s", host, tail(m.Log(), 4000))
	}

	k := mitKlist(t, env)
	requireTGT(t, k, m.Principal(UserName), m.Name, "IA")
	for _, p := range []string{host, http} {
		st := tgsRequireTicket(t, k, p)
		if !strings.HasPrefix(st.TicketKey, "aes") || !strings.HasPrefix(st.SessionKey, "aes") {
			t.Errorf("%s enctypes (skey %q, tkt %q), want AES", p, st.SessionKey, st.TicketKey)
		}
		if strings.Contains(st.Flags, "I") {
			t.Errorf("%s from the TGS has the initial flag: %q", p, st.Flags)
		}
	}
	tgsKlistCoversCache(t, env, k)
	tgsKvnoFromCache(t, env, m.Keytab, "host/localhost", host, wantKVNO)
}

// TestTGSKclientTicketOurKDC: kclient login + kclient ticket host/localhost
// against our KDC; MIT kvno -k with the keytab from `kdc keytab` accepts the
// ticket from our cache; MIT klist lists every ticket we wrote.
func TestTGSKclientTicketOurKDC(t *testing.T) {
	tgsKclientHas(t, "ticket")
	r := NewRealm(t, RealmOptions{})
	host := r.Principal("host/localhost")
	env := r.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	out := mustKclient(t, env, "", "ticket", "host/localhost")
	if n := tgsKvnoOf(out, host); n != 1 {
		t.Errorf("kclient ticket printed kvno %d for %s, want 1:\n%s", n, host, out)
	}
	tgsRequireLog(t, r.Log, "TGS_REQ", "service="+host, "result=ISSUE")
	k := mitKlist(t, env)
	requireTGT(t, k, r.Principal(UserName), r.Name, "IA")
	tgsRequireTicket(t, k, host)
	tgsKlistCoversCache(t, env, k)
	tgsKvnoFromCache(t, env, r.Keytab, "host/localhost", host, 1)
}

// TestTGSKclientRenew: kclient login -l 1h -r 2d, then (KDC clock moved two
// minutes, within the skew, since faketime cannot move a Go binary's clock)
// kclient renew and kclient login -R each renew the TGT: MIT klist shows a new
// Valid starting, the same renew until, and the one-hour lifetime from the new
// start.
func TestTGSKclientRenew(t *testing.T) {
	tgsKclientHas(t, "renew")
	const step = 2 * time.Minute
	r := NewInProcRealm(t, InProcOptions{})
	env := r.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", "-l", "1h", "-r", "2d", UserName)
	prev := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "RIA")
	if prev.RenewUntil == "" {
		t.Fatalf("kclient login -r 2d: TGT has no renew until: %+v", prev)
	}
	tgsNear(t, "renewable lifetime", tgsKlistTime(t, "renew until", prev.RenewUntil).Sub(tgsKlistTime(t, "start", prev.Start)), 48*time.Hour, time.Minute)
	renewUntil := prev.RenewUntil

	for _, args := range [][]string{{"renew"}, {"login", "-R"}} {
		r.Clock.Advance(step)
		mustKclient(t, env, "", args...)
		cur := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "R")
		start := tgsKlistTime(t, "new start", cur.Start)
		tgsNear(t, "kclient "+strings.Join(args, " ")+": start moved by", start.Sub(tgsKlistTime(t, "old start", prev.Start)), step, 30*time.Second)
		tgsNear(t, "kclient "+strings.Join(args, " ")+": lifetime", tgsKlistTime(t, "new end", cur.Expires).Sub(start), time.Hour, time.Minute)
		if cur.RenewUntil != renewUntil {
			t.Errorf("kclient %s: renew until %q, want unchanged %q", strings.Join(args, " "), cur.RenewUntil, renewUntil)
		}
		prev = cur
	}
	if n := len(tgsLogLines(r.Log(), "TGS_REQ", "result=ISSUE", "renewed")); n != 2 {
		t.Errorf("KDC log shows %d renewals, want 2:\n%s", n, tail(r.Log(), 4000))
	}
}
