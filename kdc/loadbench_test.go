package kdc

import (
	"net"
	"testing"
	"time"
)

// BenchmarkUDPLoopbackAS measures pre-authenticated AS exchanges through the
// real server over loopback UDP, with parallel clients (b.RunParallel, one
// socket each). The lookaside cache is off so every request is processed.
// Reports requests per second of wall time.
func BenchmarkUDPLoopbackAS(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	r.serve()
	req, _ := r.preauthASReq("alice", 18)
	pkt := marshalAS(b, req)
	b.SetParallelism(4)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", r.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 65536)
		for pb.Next() {
			if _, err := c.Write(pkt); err != nil {
				b.Error(err)
				return
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
