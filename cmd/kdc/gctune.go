package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is how far the heap may grow past the live heap before the
// collector runs, at the least. A KDC's live heap is small (the decoded-record
// cache and a few buffers: a few MB) while every request allocates a few KB, so
// with Go's default GOGC=100 the collector ran about 70 times a second at
// 35,000 requests/s, and a fifth of the KDC's CPU went to it (mark workers,
// write barriers, assists). A fixed headroom bounds what it costs in memory
// instead: at most gcHeadroom more than GOGC=100 would hold.
const gcHeadroom = 16 << 20

// maxGCPercent caps the percentage tuneGC sets for a tiny live heap.
const maxGCPercent = 1600

// gcPercentFor is the GOGC that lets a heap of live bytes grow by
// max(live, gcHeadroom) before the next collection (never under Go's 100).
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	p := gcHeadroom * 100 / live
	return int(min(max(p, 100), maxGCPercent))
}

// tuneGC keeps the collector's target at the live heap plus gcHeadroom,
// re-reading the live heap every period, until ctx is done. It does nothing
// when the operator set GOGC (or GOMEMLIMIT): theirs wins.
func tuneGC(ctx context.Context, period time.Duration) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := debug.SetGCPercent(gcPercentFor(0))
	defer debug.SetGCPercent(last)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetGCPercent(gcPercentFor(sample[0].Value.Uint64()))
		}
	}
}
