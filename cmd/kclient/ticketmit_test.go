package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// TestTicketMIT: kclient login + kclient ticket against a real MIT krb5kdc, then MIT kvno -k checks the cached
// service ticket with the MIT keytab (without fetching a new one), and MIT klist lists everything we wrote.
func TestTicketMIT(t *testing.T) {
	r := startMITRealm(t)
	kt := filepath.Join(r.Dir, "host.keytab")
	r.KadminLocal(t, "", "addprinc -randkey host/localhost")
	r.KadminLocal(t, "", "ktadd -k "+kt+" host/localhost")
	r.KadminLocal(t, "", "addprinc -randkey HTTP/localhost")
	dir := t.TempDir()
	ccPath := filepath.Join(dir, "cc")
	env := map[string]string{"KRB5_CONFIG": r.Conf, "KRB5CCNAME": "FILE:" + ccPath}
	mitEnv := testenv.WithEnv(r.Env(testenv.EnvOptions{}), "KRB5CCNAME", "FILE:"+ccPath)

	if res := runKClient(t, env, "alicepw\n", "login", "alice"); res.code != 0 {
		t.Fatalf("login: %+v", res)
	}
	res := runKClient(t, env, "", "ticket", "host/localhost", "svc/client")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("ticket: %+v", res)
	}
	// The kvno printed is the one MIT's keytab holds for host/localhost (2 after ktadd re-randomised the keys).
	want := regexp.MustCompile(`^host/localhost@KRB\.TEST: kvno = (\d+)\nsvc/client@KRB\.TEST: kvno = (\d+)\n$`)
	m := want.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("stdout %q", res.stdout)
	}
	klistK, err := mitClient(t, mitEnv, "", "klist", "-k", kt)
	if err != nil || !regexp.MustCompile(`(?m)^\s+`+m[1]+` host/localhost@KRB\.TEST$`).MatchString(klistK) {
		t.Errorf("kvno %s not in the keytab: %v\n%s", m[1], err, klistK)
	}
	cc := readCache(t, ccPath)
	if len(cc.Credentials) != 3 {
		t.Fatalf("cache holds %d credentials", len(cc.Credentials))
	}

	// MIT kvno -k uses OUR cached ticket: it is found in the cache (trace), nothing is sent, the cache is unchanged.
	before, _ := os.ReadFile(ccPath)
	trace := filepath.Join(dir, "trace.log")
	out, err := mitClient(t, append(mitEnv, "KRB5_TRACE="+trace), "", "kvno", "-k", kt, "host/localhost")
	if err != nil || !strings.Contains(out, "host/localhost@KRB.TEST: kvno = "+m[1]+", keytab entry valid") {
		t.Errorf("MIT kvno -k: %v\n%s", err, out)
	}
	checkNoTGSRequest(t, trace, "alice@KRB.TEST -> host/localhost@KRB.TEST")
	if after, _ := os.ReadFile(ccPath); string(after) != string(before) {
		t.Errorf("MIT kvno changed the cache (it fetched a ticket)")
	}

	// MIT klist lists every ticket in the cache, exactly as kclient list does.
	klist, err := mitClient(t, mitEnv, "", "klist", "-f", "-e")
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, klist)
	}
	wantContains(t, "klist", klist, "Default principal: alice@KRB.TEST", "  krbtgt/KRB.TEST@KRB.TEST\n", "  host/localhost@KRB.TEST\n",
		"  svc/client@KRB.TEST\n")
	wantListAsKlist(t, env, klist, "-f", "-e")

	t.Run("errors", func(t *testing.T) {
		wantExit(t, runKClient(t, env, "", "ticket", "host/nope"), cli.ExitAuth,
			"kclient: Server host/nope@KRB.TEST not found in Kerberos database while getting credentials for host/nope@KRB.TEST", false)
	})

	t.Run("renew", func(t *testing.T) {
		old := findCred(t, readCache(t, ccPath), "krbtgt/KRB.TEST@KRB.TEST")
		if res := runKClient(t, env, "", "renew"); res.code != 0 {
			t.Fatalf("renew: %+v", res)
		}
		cc := readCache(t, ccPath)
		n := findCred(t, cc, "krbtgt/KRB.TEST@KRB.TEST")
		if !n.RenewTill.Equal(old.RenewTill) || n.StartTime.Before(old.StartTime) || string(n.Ticket) == string(old.Ticket) ||
			len(cc.Credentials) != 3 {
			t.Errorf("renewed %v-%v till %v; old %v-%v till %v; %d credentials", n.StartTime, n.EndTime, n.RenewTill,
				old.StartTime, old.EndTime, old.RenewTill, len(cc.Credentials))
		}
		if res := runKClient(t, env, "", "login", "-R", "alice"); res.code != 0 {
			t.Fatalf("login -R: %+v", res)
		}
		// MIT kvno can use the renewed TGT for a TGS exchange of its own.
		if out, err := mitClient(t, mitEnv, "", "kvno", "HTTP/localhost"); err != nil || !strings.Contains(out, "HTTP/localhost@KRB.TEST: kvno = ") {
			t.Errorf("MIT kvno with the renewed TGT: %v\n%s", err, out)
		}
	})

	t.Run("TCP only", func(t *testing.T) {
		front := startTCPOnlyFront(t, func(req []byte) []byte { return forwardTCP(r.Addr, req) })
		tmitEnv := r.Env(testenv.EnvOptions{KDC: front.Addr, ForceTCP: true})
		tcc := filepath.Join(dir, "tcp-cc")
		tenv := map[string]string{"KRB5_CONFIG": testenv.EnvValue(tmitEnv, "KRB5_CONFIG"), "KRB5CCNAME": tcc}
		if res := runKClient(t, tenv, "alicepw\n", "login", "alice"); res.code != 0 {
			t.Fatalf("login over TCP: %+v", res)
		}
		if res := runKClient(t, tenv, "", "ticket", "host/localhost"); res.code != 0 {
			t.Fatalf("ticket over TCP: %+v", res)
		}
		if front.udpSeen.Load() != 0 || front.tgsSeen.Load() != 1 {
			t.Errorf("UDP datagrams %d, TGS-REQs over TCP %d", front.udpSeen.Load(), front.tgsSeen.Load())
		}
		cc := readCache(t, tcc)
		svc := findCred(t, cc, "host/localhost@KRB.TEST")
		out, err := mitClient(t, testenv.WithEnv(tmitEnv, "KRB5CCNAME", "FILE:"+tcc), "", "kvno", "-k", kt, "host/localhost")
		if err != nil || !strings.Contains(out, "keytab entry valid") {
			t.Errorf("MIT kvno -k on the TCP cache: %v\n%s", err, out)
		}
		if svc.Flags&ticket.FlagInitial != 0 {
			t.Errorf("service ticket flags %s", ticket.FlagString(svc.Flags))
		}
	})
}
