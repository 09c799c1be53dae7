package kdc

import (
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
)

// The KDC counts what it does in plain atomic counters, so that the request path
// pays a few atomic adds and nothing else, and no metrics library is linked into
// programs that embed the KDC. Package kdc/metrics exports them to Prometheus.

// Exchange indexes the per-exchange counters.
type Exchange int

// Exchanges.
const (
	ExchangeAS Exchange = iota
	ExchangeTGS
	numExchanges
)

// String is the exchange's label: "as" or "tgs".
func (e Exchange) String() string {
	if e == ExchangeTGS {
		return "tgs"
	}
	return "as"
}

// MaxCountedCode is the largest KRB-ERROR code counted on its own; larger codes
// (there are none in RFC 4120) are counted as KRB_ERR_GENERIC.
const MaxCountedCode = 127

// LatencyBuckets are the upper bounds of the request latency histogram: from
// "answered from the caches" to "something is wrong".
var LatencyBuckets = []time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond, time.Second,
}

// stats are the KDC's counters.
type stats struct {
	issued   [numExchanges]atomic.Uint64
	errors   [numExchanges][MaxCountedCode + 1]atomic.Uint64
	latency  [numExchanges][13]atomic.Uint64 // len(LatencyBuckets)+1, the last is +Inf
	latSumNs [numExchanges]atomic.Uint64
	// lookasideHits are retransmissions answered from the lookaside cache.
	lookasideHits atomic.Uint64
	// dropped are packets that did not decode (no reply).
	dropped atomic.Uint64
	// storeErrors are requests that failed on the principal store.
	storeErrors atomic.Uint64
	// lockouts are principals locked by failed pre-authentication.
	lockouts atomic.Uint64
	// lockoutDropped are failed pre-authentications not counted because
	// too many principals had failures waiting to be written.
	lockoutDropped atomic.Uint64
}

// observe counts one answered request.
func (s *stats) observe(msgType int, ke *Error, took time.Duration) {
	x := ExchangeAS
	if msgType == msgtype.KRB_TGS_REQ {
		x = ExchangeTGS
	}
	if ke == nil {
		s.issued[x].Add(1)
	} else {
		code := ke.Code
		if code < 0 || code > MaxCountedCode {
			code = 50 // KRB_ERR_GENERIC
		}
		s.errors[x][code].Add(1)
		if ke.Status == "DB_ERROR" {
			s.storeErrors.Add(1)
		}
	}
	i := 0
	for i < len(LatencyBuckets) && took > LatencyBuckets[i] {
		i++
	}
	s.latency[x][i].Add(1)
	s.latSumNs[x].Add(uint64(took))
}

// Stats is a snapshot of the KDC's counters since it started.
type Stats struct {
	// Issued counts requests answered with a ticket, per exchange.
	Issued [numExchanges]uint64
	// Errors counts requests answered with a KRB-ERROR, per exchange and code.
	Errors [numExchanges]map[int32]uint64
	// Latency counts requests per exchange by LatencyBuckets (the last entry
	// is over the largest bucket); LatencySum is their total time.
	Latency    [numExchanges][]uint64
	LatencySum [numExchanges]time.Duration
	// LookasideHits counts retransmissions answered from the lookaside cache.
	LookasideHits uint64
	// Dropped counts packets that did not decode and got no reply.
	Dropped uint64
	// StoreErrors counts requests that failed on the principal store.
	StoreErrors uint64
	// Lockouts counts principals locked by failed pre-authentication.
	Lockouts uint64
	// LockoutDropped counts failed pre-authentications not counted because
	// MaxPendingLockouts principals had failures waiting to be written.
	LockoutDropped uint64
	// Panics counts requests that panicked and were answered with
	// KRB_ERR_GENERIC.
	Panics uint64
}

// Stats returns the KDC's counters.
func (k *KDC) Stats() Stats {
	s := &k.stats
	var out Stats
	for x := range numExchanges {
		out.Issued[x] = s.issued[x].Load()
		out.Errors[x] = map[int32]uint64{}
		for code := range s.errors[x] {
			if n := s.errors[x][code].Load(); n > 0 {
				out.Errors[x][int32(code)] = n
			}
		}
		out.Latency[x] = make([]uint64, len(s.latency[x]))
		for i := range s.latency[x] {
			out.Latency[x][i] = s.latency[x][i].Load()
		}
		out.LatencySum[x] = time.Duration(s.latSumNs[x].Load())
	}
	out.LookasideHits = s.lookasideHits.Load()
	out.Dropped = s.dropped.Load()
	out.StoreErrors = s.storeErrors.Load()
	out.Lockouts = s.lockouts.Load()
	out.LockoutDropped = s.lockoutDropped.Load()
	out.Panics = uint64(k.panics.Load())
	return out
}

// ServerStats is a snapshot of a Server's connection counters.
type ServerStats struct {
	// TCPOpen is the number of open TCP connections.
	TCPOpen int64
	// TCPAccepted counts TCP connections accepted.
	TCPAccepted uint64
	// TCPRefused counts TCP connections closed at once (over the caps with
	// nothing idle to evict, or large requests over the in-flight budget).
	TCPRefused uint64
	// TCPEvicted counts idle TCP connections closed to make room.
	TCPEvicted uint64
}

// Stats returns the server's connection counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{TCPOpen: s.conns.Load(), TCPAccepted: s.accepted.Load(),
		TCPRefused: s.refused.Load(), TCPEvicted: s.evicted.Load()}
}
