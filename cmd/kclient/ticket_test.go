package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// ownRealmName is the realm of the in-process KDC.
const ownRealmName = "KRB.TEST"

// startOwnKDC starts our KDC in-process (testenv.NewInProcRealm) with alice/alicepw and host/localhost (random
// keys, in k.Keytab), stopped at cleanup.
func startOwnKDC(t *testing.T) *testenv.InProcRealm {
	t.Helper()
	return testenv.NewInProcRealm(t, testenv.InProcOptions{Name: ownRealmName,
		Policy:     principal.RealmPolicy{MaxLife: 10 * time.Hour, MaxRenew: 7 * 24 * time.Hour},
		Principals: []testenv.Principal{{Name: "alice", Password: "alicepw"}, {Name: "host/localhost", RandomKey: true}}})
}

// readCache reads a cache file or fails the test.
func readCache(t *testing.T, path string) *ticket.CCache {
	t.Helper()
	cc, err := ticket.ReadCCacheFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// findCred returns the cache entry for server, failing the test when there is none.
func findCred(t *testing.T, cc *ticket.CCache, server string) ticket.Credential {
	t.Helper()
	for _, c := range cc.Credentials {
		if c.Server.String() == server {
			return c
		}
	}
	t.Fatalf("cache has no credential for %s", server)
	return ticket.Credential{}
}

// tcpOnlyFront listens on 127.0.0.1 for TCP Kerberos frames and answers each with handle; on the same port a UDP
// socket only counts the datagrams it receives (and never answers), so tests can prove the client used TCP.
type tcpOnlyFront struct {
	Addr     string
	udpSeen  atomic.Int64
	tgsSeen  atomic.Int64 // TGS-REQs received over TCP
	asSeen   atomic.Int64 // AS-REQs received over TCP
	handle   func([]byte) []byte
	listener net.Listener
	udp      net.PacketConn
	wg       sync.WaitGroup
}

func startTCPOnlyFront(t *testing.T, handle func([]byte) []byte) *tcpOnlyFront {
	t.Helper()
	f := &tcpOnlyFront{handle: handle}
	for i := 0; ; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenPacket("udp", l.Addr().String())
		if err == nil {
			f.listener, f.udp = l, u
			break
		}
		l.Close()
		if i == 20 {
			t.Fatalf("no free TCP+UDP port: %v", err)
		}
	}
	f.Addr = f.listener.Addr().String()
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 65536)
		for {
			if _, _, err := f.udp.ReadFrom(buf); err != nil {
				return
			}
			f.udpSeen.Add(1)
		}
	}()
	go func() {
		defer f.wg.Done()
		for {
			c, err := f.listener.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var hdr [4]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint32(hdr[:])&0xffffff)
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				switch ticket.MessageType(req) {
				case 10:
					f.asSeen.Add(1)
				case 12:
					f.tgsSeen.Add(1)
				}
				rep := f.handle(req)
				if rep == nil {
					return
				}
				_, _ = c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(rep))))
				_, _ = c.Write(rep)
			}()
		}
	}()
	t.Cleanup(func() {
		f.listener.Close()
		f.udp.Close()
		f.wg.Wait()
	})
	return f
}

// forwardTCP sends one framed request to a KDC over TCP and returns the reply (nil on failure).
func forwardTCP(addr string, req []byte) []byte {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(req))), req...)); err != nil {
		return nil
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil
	}
	rep := make([]byte, binary.BigEndian.Uint32(hdr[:])&0xffffff)
	if _, err := io.ReadFull(c, rep); err != nil {
		return nil
	}
	return rep
}

func TestTicketOwnKDC(t *testing.T) {
	k := startOwnKDC(t)
	dir := t.TempDir()
	ccPath := filepath.Join(dir, "cc")
	mitEnv := testenv.WithEnv(k.Env(testenv.EnvOptions{}), "KRB5CCNAME", "FILE:"+ccPath)
	env := map[string]string{"KRB5_CONFIG": testenv.EnvValue(mitEnv, "KRB5_CONFIG"), "KRB5CCNAME": "FILE:" + ccPath}

	if res := runKClient(t, env, "alicepw\n", "login", "alice"); res.code != 0 {
		t.Fatalf("login: %+v", res)
	}
	tgt := findCred(t, readCache(t, ccPath), "krbtgt/KRB.TEST@KRB.TEST")

	t.Run("ticket", func(t *testing.T) {
		res := runKClient(t, env, "", "ticket", "host/localhost")
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("ticket: %+v", res)
		}
		cc := readCache(t, ccPath)
		if len(cc.Credentials) != 2 || cc.DefaultPrincipal.String() != "alice@KRB.TEST" {
			t.Fatalf("cache holds %d credentials for %s", len(cc.Credentials), cc.DefaultPrincipal)
		}
		if fi, err := os.Stat(ccPath); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("cache mode %v %v", fi, err)
		}
		if c := findCred(t, cc, "krbtgt/KRB.TEST@KRB.TEST"); string(c.Ticket) != string(tgt.Ticket) {
			t.Errorf("the TGT changed")
		}
		svc := findCred(t, cc, "host/localhost@KRB.TEST")
		var tkt messages.Ticket
		if err := tkt.Unmarshal(svc.Ticket); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("host/localhost@KRB.TEST: kvno = %d\n", tkt.EncPart.KVNO); res.stdout != want || tkt.EncPart.KVNO < 1 {
			t.Errorf("stdout %q, want %q", res.stdout, want)
		}
		// The ticket decrypts with the service key exported by the KDC.
		entries, err := k.Admin.Keytab(context.Background(), []string{"host/localhost"})
		if err != nil {
			t.Fatal(err)
		}
		opened := false
		for _, e := range entries {
			if e.Key.KeyType == tkt.EncPart.EType && int(e.KVNO) == tkt.EncPart.KVNO {
				etp, err := ticket.OpenTicket(tkt, e.Key)
				if err != nil {
					t.Fatalf("service ticket does not open with the keytab key: %v", err)
				}
				opened = string(etp.Key.KeyValue) == string(svc.Key.KeyValue) && etp.CName.NameString[0] == "alice"
			}
		}
		if !opened {
			t.Errorf("service ticket not opened or session key/client wrong")
		}
		if svc.Flags&ticket.FlagInitial != 0 || svc.Flags&ticket.FlagPreAuthent == 0 || svc.EndTime.After(tgt.EndTime) ||
			svc.StartTime.Before(tgt.StartTime) || !svc.AuthTime.Equal(tgt.AuthTime) {
			t.Errorf("service ticket flags %s times %v %v-%v", ticket.FlagString(svc.Flags), svc.AuthTime, svc.StartTime, svc.EndTime)
		}

		// MIT klist lists both tickets, exactly as kclient list does. (A nested test: without the MIT tools only
		// this part is skipped.)
		t.Run("MIT klist and kvno", func(t *testing.T) {
			klist, err := mitClient(t, mitEnv, "", "klist", "-f", "-e", "FILE:"+ccPath)
			if err != nil {
				t.Fatalf("klist: %v\n%s", err, klist)
			}
			wantContains(t, "klist", klist, "krbtgt/KRB.TEST@KRB.TEST", "host/localhost@KRB.TEST", "Flags: RA\n",
				"Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96")
			wantListAsKlist(t, env, klist, "-f", "-e")
			// MIT kvno finds our cached ticket and decrypts it with the keytab.
			kt := k.Keytab
			before, _ := os.ReadFile(ccPath)
			trace := filepath.Join(dir, "trace.log")
			out, err := mitClient(t, append(mitEnv, "KRB5_TRACE="+trace), "", "kvno", "-k", kt, "host/localhost")
			if err != nil || !strings.Contains(out, "keytab entry valid") {
				t.Errorf("MIT kvno -k: %v\n%s", err, out)
			}
			checkNoTGSRequest(t, trace, "alice@KRB.TEST -> host/localhost@KRB.TEST")
			if after, _ := os.ReadFile(ccPath); string(after) != string(before) {
				t.Errorf("MIT kvno changed the cache (it fetched a ticket)")
			}
		})
	})

	// Regression (issue 8): an expired TGT in the cache is reported as such,
	// before any request (the KDC would still honour these ticket bytes, so a
	// request would succeed).
	t.Run("expired TGT", func(t *testing.T) {
		expired := filepath.Join(dir, "expired")
		cc := readCache(t, ccPath)
		for i := range cc.Credentials {
			if cc.Credentials[i].Server.String() == "krbtgt/KRB.TEST@KRB.TEST" {
				cc.Credentials[i].EndTime = time.Now().Add(-time.Minute)
			}
		}
		if err := ticket.WriteCCacheFile(expired, cc); err != nil {
			t.Fatal(err)
		}
		res := runKClient(t, env, "", "ticket", "-c", expired, "host/localhost")
		if res.code == 0 || !strings.Contains(res.stderr, "kclient: Ticket expired while getting credentials") ||
			!strings.Contains(res.stderr, "log in again") || strings.Count(res.stderr, "\n") != 1 {
			t.Fatalf("ticket with an expired TGT: %+v", res)
		}
		if got := readCache(t, expired); len(got.Credentials) != len(cc.Credentials) {
			t.Errorf("the cache changed: %d credentials", len(got.Credentials))
		}
	})

	t.Run("errors", func(t *testing.T) {
		wantExit(t, runKClient(t, env, "", "ticket", "host/nope"), cli.ExitAuth,
			"kclient: Server host/nope@KRB.TEST not found in Kerberos database while getting credentials for host/nope@KRB.TEST", false)
		// Several services: the one before the failure is printed and kept.
		other := filepath.Join(dir, "multi")
		copyFile(t, ccPath, other)
		res := runKClient(t, env, "", "ticket", "-c", other, "host/localhost@KRB.TEST", "nope/x", "host/localhost")
		wantExit(t, res, cli.ExitAuth, "kclient: Server nope/x@KRB.TEST not found in Kerberos database while getting credentials for nope/x@KRB.TEST", false)
		if !strings.HasPrefix(res.stdout, "host/localhost@KRB.TEST: kvno = ") || strings.Count(res.stdout, "\n") != 1 {
			t.Errorf("stdout %q", res.stdout)
		}
		findCred(t, readCache(t, other), "host/localhost@KRB.TEST")

		missing := filepath.Join(dir, "missing")
		wantFailure(t, runKClient(t, env, "", "ticket", "-c", missing, "host/localhost"),
			"kclient: No credentials cache found (filename: "+missing+") while getting credentials", false)
		wantExit(t, runKClient(t, env, "", "ticket"), cli.ExitUsage, "kclient: requires at least 1 arg(s), only received 0 (see kclient --help)", false)
		// A cache without a TGT.
		noTGT := filepath.Join(dir, "notgt")
		cc := readCache(t, ccPath)
		cc.Credentials = []ticket.Credential{findCred(t, cc, "host/localhost@KRB.TEST")}
		if err := ticket.WriteCCacheFile(noTGT, cc); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, runKClient(t, env, "", "ticket", "-c", noTGT, "host/localhost"),
			"kclient: No ticket-granting ticket for alice@KRB.TEST in FILE:"+noTGT+" while getting credentials (run kclient login)", false)
		// No krb5.conf at all: --realm and --kdc are enough.
		nenv := map[string]string{"KRB5_CONFIG": filepath.Join(dir, "none.conf"), "KRB5CCNAME": other}
		if res := runKClient(t, nenv, "", "ticket", "--realm", ownRealmName, "--kdc", k.Addr, "host/localhost"); res.code != 0 {
			t.Errorf("ticket without krb5.conf: %+v", res)
		}
		wantFailure(t, runKClient(t, nenv, "", "ticket", "host/localhost"),
			"kclient: no KDC known for realm 'KRB.TEST' (give --kdc HOST:PORT or a [realms] entry in krb5.conf)", false)
		wantExit(t, runKClient(t, nenv, "", "ticket", "--kdc", "127.0.0.1:1", "host/localhost"), cli.ExitUnreachable,
			"kclient: Cannot contact any KDC for realm 'KRB.TEST' while getting credentials for host/localhost@KRB.TEST (udp 127.0.0.1:1:", true)
	})

	t.Run("renew", func(t *testing.T) {
		old := findCred(t, readCache(t, ccPath), "krbtgt/KRB.TEST@KRB.TEST")
		if old.Flags&ticket.FlagRenewable == 0 {
			t.Fatalf("TGT not renewable: %s", ticket.FlagString(old.Flags))
		}
		defer k.Clock.Set(k.Clock.Offset()) // put the KDC's clock back afterwards
		k.Clock.Advance(90 * time.Second)
		if res := runKClient(t, env, "", "renew"); res.code != 0 || res.stdout != "" || res.stderr != "" {
			t.Fatalf("renew: %+v", res)
		}
		cc := readCache(t, ccPath)
		n := findCred(t, cc, "krbtgt/KRB.TEST@KRB.TEST")
		if !n.StartTime.After(old.StartTime.Add(80*time.Second)) || !n.EndTime.After(old.EndTime.Add(80*time.Second)) ||
			!n.RenewTill.Equal(old.RenewTill) || string(n.Ticket) == string(old.Ticket) {
			t.Errorf("renewed %v-%v till %v, old %v-%v till %v", n.StartTime, n.EndTime, n.RenewTill, old.StartTime, old.EndTime, old.RenewTill)
		}
		if len(cc.Credentials) != 2 || cc.Credentials[0].Server.String() != "krbtgt/KRB.TEST@KRB.TEST" {
			t.Errorf("cache after renew: %d credentials, first %s", len(cc.Credentials), cc.Credentials[0].Server)
		}
		// login -R does the same, and the renewed TGT gets service tickets.
		k.Clock.Advance(90 * time.Second)
		if res := runKClient(t, env, "", "login", "-R"); res.code != 0 {
			t.Fatalf("login -R: %+v", res)
		}
		n2 := findCred(t, readCache(t, ccPath), "krbtgt/KRB.TEST@KRB.TEST")
		if !n2.StartTime.After(n.StartTime.Add(80*time.Second)) || !n2.RenewTill.Equal(old.RenewTill) {
			t.Errorf("login -R: %v-%v till %v", n2.StartTime, n2.EndTime, n2.RenewTill)
		}
		if res := runKClient(t, env, "", "ticket", "host/localhost"); res.code != 0 {
			t.Errorf("ticket after renew: %+v", res)
		}
		t.Run("MIT klist", func(t *testing.T) {
			if out, err := mitClient(t, mitEnv, "", "klist", "FILE:"+ccPath); err != nil || !strings.Contains(out, "  krbtgt/KRB.TEST@KRB.TEST\n") ||
				!strings.Contains(out, "  host/localhost@KRB.TEST\n") {
				t.Errorf("klist after renew: %v\n%s", err, out)
			}
		})
		wantFailure(t, runKClient(t, env, "", "login", "-R", "bob"),
			"kclient: the cache FILE:"+ccPath+" holds tickets for alice@KRB.TEST, not bob@KRB.TEST", false)
		wantExit(t, runKClient(t, env, "", "login", "-R", "-k"), cli.ExitUsage,
			"kclient: -R renews the ticket in the cache and takes none of -k, -t, -l, -r, -f, -F, -p, -P, -s, -S (see kclient --help)", false)

		// A ticket that is not renewable gets a clear error and the cache is left alone.
		short := filepath.Join(dir, "short")
		if res := runKClient(t, env, "alicepw\n", "login", "-l", "1h", "-c", short, "alice"); res.code != 0 {
			t.Fatalf("login -l 1h: %+v", res)
		}
		before, _ := os.ReadFile(short)
		wantFailure(t, runKClient(t, env, "", "renew", "-c", short),
			"kclient: Ticket krbtgt/KRB.TEST@KRB.TEST is not renewable (log in with -r to get a renewable ticket) while renewing credentials", false)
		if after, _ := os.ReadFile(short); string(after) != string(before) {
			t.Errorf("failed renew changed the cache")
		}
		// A renew-till in the past (edited into the cache) is refused before anything is sent.
		cc = readCache(t, short)
		cc.Credentials[0].Flags |= ticket.FlagRenewable
		cc.Credentials[0].RenewTill = time.Now().Add(-time.Minute).Truncate(time.Second)
		if err := ticket.WriteCCacheFile(short, cc); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, runKClient(t, env, "", "renew", "-c", short),
			"kclient: Ticket krbtgt/KRB.TEST@KRB.TEST could be renewed only until ", true)
	})

	t.Run("TCP only", func(t *testing.T) {
		front := startTCPOnlyFront(t, func(req []byte) []byte {
			rep, _ := k.KDC.Handle(context.Background(), req, kdc.TCP, nil)
			return rep
		})
		tconf := testenv.EnvValue(k.Env(testenv.EnvOptions{KDC: front.Addr, ForceTCP: true}), "KRB5_CONFIG")
		tcc := filepath.Join(dir, "tcp-cc")
		tenv := map[string]string{"KRB5_CONFIG": tconf, "KRB5CCNAME": tcc}
		if res := runKClient(t, tenv, "alicepw\n", "login", "alice"); res.code != 0 {
			t.Fatalf("login over TCP: %+v", res)
		}
		if res := runKClient(t, tenv, "", "ticket", "host/localhost"); res.code != 0 || !strings.HasPrefix(res.stdout, "host/localhost@KRB.TEST: kvno = ") {
			t.Fatalf("ticket over TCP: %+v", res)
		}
		if res := runKClient(t, tenv, "", "renew"); res.code != 0 {
			t.Fatalf("renew over TCP: %+v", res)
		}
		if front.udpSeen.Load() != 0 || front.tgsSeen.Load() != 2 || front.asSeen.Load() < 1 {
			t.Errorf("UDP datagrams %d, TGS-REQs over TCP %d, AS-REQs over TCP %d", front.udpSeen.Load(), front.tgsSeen.Load(), front.asSeen.Load())
		}
		if len(readCache(t, tcc).Credentials) != 2 {
			t.Errorf("TCP cache does not hold two credentials")
		}
	})

	t.Run("KDC clock ahead", func(t *testing.T) {
		// Twice the clock skew: ticket and renew work only through the KDC offset login stored in the cache.
		defer k.Clock.Set(k.Clock.Offset())
		k.Clock.Advance(10 * time.Minute)
		scc := filepath.Join(dir, "skew")
		if res := runKClient(t, env, "alicepw\n", "login", "-c", scc, "alice"); res.code != 0 {
			t.Fatalf("login: %+v", res)
		}
		if off := readCache(t, scc).KDCOffset; off < 9*time.Minute || off > 11*time.Minute {
			t.Fatalf("cache KDC offset %v", off)
		}
		if res := runKClient(t, env, "", "ticket", "-c", scc, "host/localhost"); res.code != 0 {
			t.Errorf("ticket: %+v", res)
		}
		if res := runKClient(t, env, "", "renew", "-c", scc); res.code != 0 {
			t.Errorf("renew: %+v", res)
		}
		if cc := readCache(t, scc); len(cc.Credentials) != 2 || cc.KDCOffset < 9*time.Minute {
			t.Errorf("cache after ticket and renew: %d credentials, offset %v", len(cc.Credentials), cc.KDCOffset)
		}
	})
}

// checkNoTGSRequest fails unless an MIT KRB5_TRACE log shows that the tool took the ticket for creds
// ("client -> server") from the cache and sent no request to a KDC.
func checkNoTGSRequest(t *testing.T, trace, creds string) {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatalf("KRB5_TRACE log: %v", err)
	}
	log := string(b)
	if strings.Contains(log, "Sending request") || strings.Contains(log, "Requesting tickets") {
		t.Errorf("MIT kvno contacted the KDC instead of using the cached ticket:\n%s", log)
	}
	if !regexp.MustCompile(`Retrieving ` + regexp.QuoteMeta(creds) + ` from FILE:\S+ with result: 0/Success`).MatchString(log) {
		t.Errorf("MIT kvno did not retrieve the ticket from the cache:\n%s", log)
	}
}

// copyFile copies a file with mode 0600.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
