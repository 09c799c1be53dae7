package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProbe: `kdc probe` gets a Kerberos answer over UDP and TCP from a running
// KDC, by explicit address and by default from realm.json in $KERBKIT_OUT (the
// container's health check); at debug level the KDC logs each probe as an
// unknown client, each a fresh request.
func TestProbe(t *testing.T) {
	out := t.TempDir()
	d := startDev(t, "dev", "--json", "--dir", t.TempDir(), "--out", out, "--realm", "PROBE.TEST", "--log-level", "debug")

	code, stdout, stderr := kdcRun(t, "", "probe", d.info.Listen, "--realm", "PROBE.TEST")
	if code != 0 {
		t.Fatalf("kdc probe %s: exit %d: %s", d.info.Listen, code, stderr)
	}
	for _, s := range []string{"KDC " + d.info.Listen + " for PROBE.TEST answers:", "udp: KRB-ERROR KDC_ERR_C_PRINCIPAL_UNKNOWN", "tcp: KRB-ERROR KDC_ERR_C_PRINCIPAL_UNKNOWN"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("probe output lacks %q: %q", s, stdout)
		}
	}
	t.Setenv("KERBKIT_OUT", out)
	t.Setenv("KERBKIT_LISTEN", "127.0.0.1:1") // realm.json wins over it
	code, stdout, stderr = kdcRun(t, "", "probe", "--transport", "tcp")
	if code != 0 || !strings.Contains(stdout, "for PROBE.TEST answers: tcp: KRB-ERROR") || strings.Contains(stdout, "udp") {
		t.Errorf("kdc probe with realm.json: exit %d, %q %q", code, stdout, stderr)
	}
	// Each probe is a fresh request (no lookaside answer); the KDC logs a request
	// before it replies, so all three lines are there.
	if n := strings.Count(d.stderr.String(), "client=kerbkit-probe@PROBE.TEST"); n != 3 {
		t.Errorf("KDC logged %d probe requests, want 3:\n%s", n, d.stderr.String())
	}
	if strings.Contains(d.stderr.String(), "LOOKASIDE") {
		t.Errorf("a probe was answered from the lookaside cache:\n%s", d.stderr.String())
	}
}

// TestProbeFailures: no KDC, a silent one and one that answers garbage each
// fail with exit 1 and one line naming the address and transport.
func TestProbeFailures(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	junk, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	go func() {
		for {
			c, err := junk.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0, 0, 0, 4, 'j', 'u', 'n', 'k'})
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"probe", silent.LocalAddr().String(), "--transport", "udp", "--timeout", "200ms"}, "over udp: no answer within 200ms"},
		{[]string{"probe", junk.Addr().String(), "--transport", "tcp"}, "over tcp: the answer (4 bytes) is neither a KRB-ERROR nor an AS-REP"},
		{[]string{"probe", closedAddr, "--transport", "tcp"}, "probe " + closedAddr + " over tcp: dial tcp"},
		{[]string{"probe", "127.0.0.1:88", "--transport", "sctp"}, `--transport "sctp": want udp or tcp`},
		{[]string{"probe", "--timeout", "0s"}, "--timeout must be positive"},
	} {
		code, stdout, stderr := kdcRun(t, "", c.args...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("kdc %v: exit %d, stdout %q, stderr %q; want 1 and one line with %q", c.args, code, stdout, stderr, c.want)
		}
	}
}

// TestProbeNotLogged: at the default log level the KDC keeps probes out of its
// log, while a login for another unknown client is logged as ever.
func TestProbeNotLogged(t *testing.T) {
	d := startDev(t, "dev", "--json")
	if code, stdout, stderr := kdcRun(t, "", "probe", d.info.Listen, "--realm", d.info.Realm); code != 0 {
		t.Fatalf("kdc probe: exit %d %s %s", code, stdout, stderr)
	}
	// An AS-REQ for another unknown client, sent the probe's way.
	req, err := probeRequest(d.info.Realm, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probeExchange(context.Background(), "udp", d.info.Listen, req, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	log := d.stderr.String()
	if strings.Contains(log, probeClient) {
		t.Errorf("the KDC logged a probe at info level:\n%s", log)
	}
	if !strings.Contains(log, "client=nobody@"+d.info.Realm) || !strings.Contains(log, "result=CLIENT_NOT_FOUND") {
		t.Errorf("the KDC did not log an unknown client's AS_REQ:\n%s", log)
	}
}
