package testenv

import (
	"strings"
	"testing"
	"time"
)

// The TGS exchange of our KDC with MIT krb5 1.20 clients (krb5-user): kvno,
// kvno -k, kinit -R/-S/-s/-v, lifetimes. Tests that must move time use the
// in-process KDC with an injectable clock (NewInProcRealm) and run the MIT tool
// under faketime with the same offset; nothing sleeps.

// TestTGSMITKvnoTransport: MIT kvno and kvno -k get host/localhost service
// tickets from our KDC over UDP and over TCP (udp_preference_limit = 1); the
// transport is asserted from KRB5_TRACE and from the KDC's log line.
func TestTGSMITKvnoTransport(t *testing.T) {
	for _, tc := range []struct {
		name string
		tcp  bool
	}{{"UDP", false}, {"TCP", true}} {
		t.Run(tc.name, func(t *testing.T) {
			kvno := RequireTool(t, "kvno")
			r := NewRealm(t, RealmOptions{})
			host := r.Principal("host/localhost")
			transport := "transport=udp"
			if tc.tcp {
				transport = "transport=tcp"
			}
			checkTransport := func(t *testing.T, env []string, what string) {
				t.Helper()
				trace := Trace(env)
				if tc.tcp {
					wantContains(t, what+" KRB5_TRACE", trace, "Sending TCP request to stream "+r.Addr, "Received answer")
					if strings.Contains(trace, "UDP request") {
						t.Errorf("%s used UDP despite udp_preference_limit = 1:\n%s", what, tgsTraceExcerpt(trace))
					}
				} else {
					wantContains(t, what+" KRB5_TRACE", trace, "Sending initial UDP request to dgram "+r.Addr, "Received answer")
					if strings.Contains(trace, "TCP") {
						t.Errorf("%s used TCP (RESPONSE_TOO_BIG fallback?):\n%s", what, tgsTraceExcerpt(trace))
					}
				}
			}

			// Plain kvno: a fresh TGS exchange.
			env := r.Env(EnvOptions{ForceTCP: tc.tcp})
			mustMITKinit(t, env, UserPassword, UserName)
			ResetTrace(env)
			stdout, stderr, code := Run(t, env, "", kvno, "host/localhost")
			if code != 0 {
				t.Fatalf("kvno host/localhost: exit %d: %s\n%s", code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(env)))
			}
			if n := tgsKvnoOf(stdout, host); n != 1 {
				t.Errorf("kvno printed kvno %d for %s, want 1:\n%s", n, host, stdout)
			}
			checkTransport(t, env, "kvno")
			tgsRequireLog(t, r.Log, "TGS_REQ", transport, "service="+host, "result=ISSUE")

			// kvno -k on a fresh cache: the TGS exchange over the same transport,
			// then the ticket decrypts with the keytab from `kdc keytab`.
			env = r.Env(EnvOptions{ForceTCP: tc.tcp})
			mustMITKinit(t, env, UserPassword, UserName)
			ResetTrace(env)
			stdout, stderr, code = Run(t, env, "", kvno, "-k", r.Keytab, "host/localhost")
			if code != 0 {
				t.Fatalf("kvno -k %s host/localhost: exit %d: %s\n%s", r.Keytab, code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(env)))
			}
			wantContains(t, "kvno -k output", stdout, host+": kvno = 1, keytab entry valid")
			checkTransport(t, env, "kvno -k")
			k := mitKlist(t, env)
			st := tgsRequireTicket(t, k, host)
			if !strings.HasPrefix(st.TicketKey, "aes") || !strings.HasPrefix(st.SessionKey, "aes") {
				t.Errorf("service ticket enctypes (skey %q, tkt %q), want AES", st.SessionKey, st.TicketKey)
			}
			if strings.Contains(st.Flags, "I") {
				t.Errorf("TGS-issued ticket has the initial flag: %q", st.Flags)
			}
		})
	}
}

// TestTGSMITKvnoTenMinutesLater: a service ticket requested ten minutes after
// the TGT was issued. The TGS-REP must carry starttime (protocol-notes.md trap
// 1): without it MIT takes authtime, ten minutes old, and kvno fails with
// "Clock skew too great in KDC reply". The KDC clock is moved, not slept, and
// kvno runs under faketime with the same offset.
func TestTGSMITKvnoTenMinutesLater(t *testing.T) {
	kvno := RequireTool(t, "kvno")
	const later = 10 * time.Minute
	r := NewInProcRealm(t, InProcOptions{})
	host := r.Principal("host/localhost")
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, UserName)

	r.Clock.Advance(later)
	ResetTrace(env)
	stdout := tgsMustFaketime(t, r, env, later, kvno, "-k", r.Keytab, "host/localhost")
	wantContains(t, "kvno -k output", stdout, host+": kvno = 1, keytab entry valid")
	tgsRequireLog(t, r.Log, "TGS_REQ", "service="+host, "result=ISSUE")

	k := mitKlist(t, env)
	tgt := requireTGT(t, k, r.Principal(UserName), r.Name, "IA")
	st := tgsRequireTicket(t, k, host)
	tgtStart := tgsKlistTime(t, "TGT start", tgt.Start)
	svcStart := tgsKlistTime(t, "service ticket start", st.Start)
	tgsNear(t, "service ticket start − TGT start", svcStart.Sub(tgtStart), later, time.Minute)
	// The service ticket ends with the TGT (it cannot outlive it).
	if e, te := tgsKlistTime(t, "service end", st.Expires), tgsKlistTime(t, "TGT end", tgt.Expires); e.After(te) {
		t.Errorf("service ticket expires %s after the TGT (%s)", st.Expires, tgt.Expires)
	}
}

// TestTGSMITKinitRenew: kinit -R renews the TGT (TGS-REQ with RENEW): ten
// minutes later (moved KDC clock + faketime) klist shows a new "Valid starting",
// the same "renew until", and the old lifetime from the new start.
func TestTGSMITKinitRenew(t *testing.T) {
	kinit := RequireTool(t, "kinit")
	const later = 10 * time.Minute
	r := NewInProcRealm(t, InProcOptions{})
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-l", "1h", "-r", "2d", UserName)
	before := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "RIA")
	if before.RenewUntil == "" {
		t.Fatalf("kinit -r 2d: TGT has no renew until: %+v", before)
	}

	r.Clock.Advance(later)
	ResetTrace(env)
	tgsMustFaketime(t, r, env, later, kinit, "-R")
	tgsRequireLog(t, r.Log, "TGS_REQ", "service=krbtgt/"+r.Name+"@"+r.Name, "result=ISSUE", "renewed")
	after := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "R")
	if after.Start == before.Start {
		t.Errorf("kinit -R: Valid starting unchanged (%s)", after.Start)
	}
	oldStart, newStart := tgsKlistTime(t, "old start", before.Start), tgsKlistTime(t, "new start", after.Start)
	tgsNear(t, "renewed start − original start", newStart.Sub(oldStart), later, time.Minute)
	tgsNear(t, "renewed lifetime", tgsKlistTime(t, "new end", after.Expires).Sub(newStart), time.Hour, time.Minute)
	if after.RenewUntil != before.RenewUntil {
		t.Errorf("kinit -R: renew until %q, want unchanged %q", after.RenewUntil, before.RenewUntil)
	}
	// Renewal and validation keep the presented ticket's flags, less INVALID (MIT
	// kdc_util.c get_ticket_flags), INITIAL included.
	if after.Flags != before.Flags {
		t.Errorf("kinit -R: flags %q, want the original %q", after.Flags, before.Flags)
	}
}

// TestTGSMITKinitLifetimes: kinit -l and -r are honoured, and capped by the
// realm's max life and max renewable life (kdc init --max-life 10h
// --max-renew 7d).
func TestTGSMITKinitLifetimes(t *testing.T) {
	r := NewRealm(t, RealmOptions{MaxLife: "10h", MaxRenew: "7d"})
	for _, tc := range []struct {
		name        string
		args        []string
		life, renew time.Duration // 0 renew: not renewable
	}{
		{"l1h", []string{"-l", "1h"}, time.Hour, 0},
		{"r2d", []string{"-r", "2d"}, 10 * time.Hour, 48 * time.Hour},
		{"l1h_r2d", []string{"-l", "1h", "-r", "2d"}, time.Hour, 48 * time.Hour},
		{"capped", []string{"-l", "20h", "-r", "30d"}, 10 * time.Hour, 7 * 24 * time.Hour},
		// Regression (issue 8): renew-till equal to the end time gave no R flag.
		{"l5h_r5h", []string{"-l", "5h", "-r", "5h"}, 5 * time.Hour, 5 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := r.Env(EnvOptions{})
			mustMITKinit(t, env, UserPassword, append(tc.args, UserName)...)
			tgt := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "IA")
			start := tgsKlistTime(t, "start", tgt.Start)
			tgsNear(t, "lifetime", tgsKlistTime(t, "end", tgt.Expires).Sub(start), tc.life, time.Minute)
			switch {
			case tc.renew == 0 && tgt.RenewUntil != "":
				// kinit sends renewable-ok by default; the KDC may only grant it
				// when the requested till was cut, which -l 1h does not do.
				t.Errorf("kinit %s: unexpected renew until %s (flags %q)", strings.Join(tc.args, " "), tgt.RenewUntil, tgt.Flags)
			case tc.renew != 0:
				if tgt.RenewUntil == "" || !tgt.HasFlags("R") {
					t.Fatalf("kinit %s: TGT not renewable: %+v", strings.Join(tc.args, " "), tgt)
				}
				tgsNear(t, "renewable lifetime", tgsKlistTime(t, "renew until", tgt.RenewUntil).Sub(start), tc.renew, time.Minute)
			}
		})
	}
}

// TestTGSMITKinitService: kinit -S host/localhost gets a service ticket
// straight from the AS exchange: it is the only ticket in the cache, it has the
// initial flag, and it decrypts with the service keytab (kvno -k uses it from
// the cache).
func TestTGSMITKinitService(t *testing.T) {
	kvno := RequireTool(t, "kvno")
	r := NewRealm(t, RealmOptions{})
	host := r.Principal("host/localhost")
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-S", "host/localhost", UserName)
	tgsRequireLog(t, r.Log, "AS_REQ", "service="+host, "result=ISSUE")
	k := mitKlist(t, env)
	if k.Principal != r.Principal(UserName) {
		t.Errorf("klist: default principal %q, want %q", k.Principal, r.Principal(UserName))
	}
	if len(k.Tickets) != 1 || k.Tickets[0].Server != host {
		t.Fatalf("klist after kinit -S: want only %s, got %+v", host, k.Tickets)
	}
	if st := k.Tickets[0]; !st.HasFlags("IA") {
		t.Errorf("kinit -S ticket flags %q, want at least IA", st.Flags)
	}
	ResetTrace(env)
	stdout, stderr, code := Run(t, env, "", kvno, "-k", r.Keytab, "host/localhost")
	if code != 0 {
		t.Fatalf("kvno -k with the kinit -S ticket: exit %d: %s\n%s", code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(env)))
	}
	wantContains(t, "kvno -k output", stdout, host+": kvno = 1, keytab entry valid")
	if strings.Contains(Trace(env), "Sending request") {
		t.Errorf("kvno contacted the KDC instead of using the cached AS service ticket:\n%s", tgsTraceExcerpt(Trace(env)))
	}
}

// TestTGSMITPostdated: kinit -s 1h -l 2h gets a postdated, invalid TGT (klist
// flags d and i); kvno fails with it; 61 minutes later (moved KDC clock +
// faketime) kinit -v validates it (TGS-REQ with VALIDATE) and klist no longer
// shows i; then kvno works.
func TestTGSMITPostdated(t *testing.T) {
	kinit := RequireTool(t, "kinit")
	kvno := RequireTool(t, "kvno")
	const later = 61 * time.Minute
	r := NewInProcRealm(t, InProcOptions{})
	host := r.Principal("host/localhost")
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, "-s", "1h", "-l", "2h", UserName)
	tgt := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "di")
	start := tgsKlistTime(t, "start", tgt.Start)
	tgsNear(t, "postdated start − now", time.Until(start), time.Hour, time.Minute)
	tgsNear(t, "postdated lifetime", tgsKlistTime(t, "end", tgt.Expires).Sub(start), 2*time.Hour, time.Minute)

	// An invalid TGT is good for nothing but validation.
	ResetTrace(env)
	if _, stderr, code := Run(t, env, "", kvno, "host/localhost"); code == 0 {
		t.Errorf("kvno with a postdated, invalid TGT succeeded")
	} else {
		t.Logf("kvno with the invalid TGT failed as expected: %s", strings.TrimSpace(stderr))
	}

	r.Clock.Advance(later)
	ResetTrace(env)
	tgsMustFaketime(t, r, env, later, kinit, "-v")
	tgsRequireLog(t, r.Log, "TGS_REQ", "service=krbtgt/"+r.Name+"@"+r.Name, "result=ISSUE", "validated")
	valid := requireTGT(t, mitKlist(t, env), r.Principal(UserName), r.Name, "")
	if strings.Contains(valid.Flags, "i") {
		t.Errorf("TGT still invalid after kinit -v: flags %q", valid.Flags)
	}
	if valid.Start != tgt.Start || valid.Expires != tgt.Expires {
		t.Errorf("validation changed the times: %s–%s, was %s–%s", valid.Start, valid.Expires, tgt.Start, tgt.Expires)
	}

	ResetTrace(env)
	stdout := tgsMustFaketime(t, r, env, later, kvno, "-k", r.Keytab, "host/localhost")
	wantContains(t, "kvno -k output", stdout, host+": kvno = 1, keytab entry valid")
}
