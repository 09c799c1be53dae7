package main

import (
	"strconv"
	"strings"
	"testing"

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
