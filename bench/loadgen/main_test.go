package main

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/kerbkittest"
)

// TestSweep: every principal of the sweep gets KDC_ERR_PREAUTH_REQUIRED from a
// real KDC, over UDP and TCP, and a name the realm does not hold makes the
// sweep fail.
func TestSweep(t *testing.T) {
	r := kerbkittest.New(t, kerbkittest.Options{})
	for i := 0; i < 5; i++ {
		r.AddUser("sweep"+strconv.Itoa(i), "Sweep-pw-"+strconv.Itoa(i))
	}
	for _, proto := range []string{"udp", "tcp"} {
		o := options{kdc: r.KDCAddr, realm: r.Name, user: "sweep", mode: "sweep", proto: proto, conc: 3, count: 5}
		if err := run(o); err != nil {
			t.Fatalf("sweep over %s: %v", proto, err)
		}
		o.count = 6 // sweep5 does not exist
		if err := run(o); err == nil || !strings.Contains(err.Error(), "1 of 6") {
			t.Fatalf("sweep over %s with a missing principal: %v", proto, err)
		}
	}
	for _, n := range []int{0, -1, 10_000_001} {
		if err := run(options{kdc: r.KDCAddr, realm: r.Name, user: "sweep", mode: "sweep", proto: "udp", conc: 1, count: n}); err == nil {
			t.Errorf("--count %d accepted", n)
		}
	}
}

// TestArrivalTimes: the kernel's arrival time of a reply is read over UDP and
// over TCP (there of the reply's last bytes), lies after the request was sent
// plus the peer's delay, and before the read returned.
func TestArrivalTimes(t *testing.T) {
	const delay = 20 * time.Millisecond
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		b := make([]byte, 100)
		n, a, err := pc.ReadFrom(b)
		if err != nil {
			return
		}
		time.Sleep(delay)
		pc.WriteTo(b[:n], a)
	}()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stampArrivals(c)
	sent := time.Now()
	rep, arrived, err := exchangeUDP(c, []byte("ping"), make([]byte, 100), 5*time.Second)
	read := time.Now()
	if err != nil || string(rep) != "ping" {
		t.Fatalf("udp: %q, %v", rep, err)
	}
	checkArrival(t, "udp", sent, arrived, read, delay)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 8)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		time.Sleep(delay)
		c.Write(b[:4]) // the length first, the body later: the time is the body's
		time.Sleep(delay)
		c.Write(b[4:])
	}()
	sent = time.Now()
	rep, arrived, err = exchangeTCP(ln.Addr().String(), []byte("ping"), make([]byte, 100), 5*time.Second)
	read = time.Now()
	if err != nil || string(rep) != "ping" {
		t.Fatalf("tcp: %q, %v", rep, err)
	}
	checkArrival(t, "tcp", sent, arrived, read, 2*delay)
}

func checkArrival(t *testing.T, proto string, sent, arrived, read time.Time, delay time.Duration) {
	t.Helper()
	if arrived.IsZero() {
		t.Fatalf("%s: no arrival time", proto)
	}
	if d := arrived.Sub(sent.Round(0)); d < delay {
		t.Errorf("%s: arrived %s after the send, before the peer's %s delay was over", proto, d, delay)
	}
	if arrived.After(read.Round(0)) {
		t.Errorf("%s: arrived %s after the read returned", proto, arrived.Sub(read.Round(0)))
	}
}

// TestCPUTime: client_cpu's clock counts work, not waiting.
func TestCPUTime(t *testing.T) {
	c0 := cpuTime()
	time.Sleep(100 * time.Millisecond)
	slept := cpuTime() - c0
	if slept > 50*time.Millisecond {
		t.Errorf("100 ms of sleep counted %s of CPU", slept)
	}
	// Work until the clock shows 30 ms of it, for at most 10 s of wall time.
	c0 = cpuTime()
	x := uint64(1)
	for w0 := time.Now(); cpuTime()-c0 < 30*time.Millisecond; {
		if time.Since(w0) > 10*time.Second {
			t.Fatalf("10 s of work counted %s of CPU (x=%d)", cpuTime()-c0, x)
		}
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
}
