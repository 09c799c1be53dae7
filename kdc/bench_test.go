package kdc

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/types"
)

// BenchmarkASPreauth measures one pre-authenticated AS exchange in process: decode,
// store lookups, PA-ENC-TIMESTAMP decryption, ticket and reply encryption and
// encoding. The lookaside cache is off so every iteration does the full work.
func BenchmarkASPreauth(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	req, _ := r.preauthASReq("alice", 18, 18)
	pkt := marshalAS(b, req)
	benchHandle(b, r.kdc, pkt)
}

// BenchmarkASPreauthEncPARep is BenchmarkASPreauth with the empty
// PA-REQ-ENC-PA-REP that MIT and Heimdal kinit send: the reply adds the
// checksum over the request (RFC 6806 §11).
func BenchmarkASPreauthEncPARep(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	req, _ := r.preauthASReq("alice", 18, 18)
	req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_REQ_ENC_PA_REP})
	pkt := marshalAS(b, req)
	benchHandle(b, r.kdc, pkt)
}

// BenchmarkASPreauthNoLog is BenchmarkASPreauth with the log off
// (slog.DiscardHandler): the difference is what the per-request log line costs
// (the other benchmarks format it into io.Discard with slog's TextHandler, the
// handler of kdc serve).
func BenchmarkASPreauthNoLog(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1; c.Logger = slog.New(slog.DiscardHandler) })
	req, _ := r.preauthASReq("alice", 18, 18)
	pkt := marshalAS(b, req)
	benchHandle(b, r.kdc, pkt)
}

// BenchmarkPreauthRequired measures the cheapest decoded path: a KRB-ERROR with
// METHOD-DATA.
func BenchmarkPreauthRequired(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	pkt := marshalAS(b, asReq("alice", 18))
	benchHandle(b, r.kdc, pkt)
}

// BenchmarkTGS measures one TGS exchange in process: TGT decryption with the
// krbtgt key, authenticator decryption and checksum with the session key, service
// ticket and reply encryption and encoding. The lookaside cache is off and the
// KDC keeps no replay cache, so the same request is answered in full each time.
func BenchmarkTGS(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	tgt, tpart := r.login(nil)
	pkt := newTGS(r, tgt, tpart).marshal()
	tgsRep(b, r.exchange(pkt), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	benchHandle(b, r.kdc, pkt)
}

// BenchmarkASPreauthParallel is BenchmarkASPreauth from GOMAXPROCS goroutines
// at once: with -cpu 1,2 it shows whether the request path scales across
// cores (no global lock: the key cache is sharded, the record cache is a
// sync.Map, the lookaside is off here). ns/op is wall time per request over
// all cores, so it halves when two cores double the throughput.
func BenchmarkASPreauthParallel(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	req, _ := r.preauthASReq("alice", 18, 18)
	pkt := marshalAS(b, req)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := r.kdc.Handle(ctx, pkt, UDP, nil); !ok {
				b.Error("no reply")
				return
			}
		}
	})
}

// BenchmarkTGSParallel is BenchmarkTGS from GOMAXPROCS goroutines at once.
func BenchmarkTGSParallel(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	tgt, tpart := r.login(nil)
	pkt := newTGS(r, tgt, tpart).marshal()
	tgsRep(b, r.exchange(pkt), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := r.kdc.Handle(ctx, pkt, UDP, nil); !ok {
				b.Error("no reply")
				return
			}
		}
	})
}

// BenchmarkASPreauthParallelLookaside is BenchmarkASPreauthParallel with the
// lookaside cache on, as kdc serve runs: every request looks its hash up and
// stores its reply. The requests are 16,384 distinct ones in turn, more than
// the cache holds, so every lookup misses and every store evicts, as under a
// load of fresh requests.
func BenchmarkASPreauthParallelLookaside(b *testing.B) {
	r := newTestRealm(b)
	pkts := make([][]byte, 1<<14)
	for i := range pkts {
		req, _ := r.preauthASReq("alice", 18, 18)
		pkts[i] = marshalAS(b, req)
	}
	ctx := context.Background()
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pkt := pkts[next.Add(1)%uint64(len(pkts))]
			if _, ok := r.kdc.Handle(ctx, pkt, UDP, nil); !ok {
				b.Error("no reply")
				return
			}
		}
	})
}

// benchHandle answers pkt b.N times over UDP, reporting allocations, with the
// timer started after the caller's setup.
func benchHandle(b *testing.B, k *KDC, pkt []byte) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := k.Handle(ctx, pkt, UDP, nil); !ok {
			b.Fatal("no reply")
		}
	}
}
