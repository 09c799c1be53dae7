package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcHeadroom is how far the heap may grow past the live heap before the
// collector runs, at the least. A KDC's live heap is small (the lookaside cache
// of recent replies, the decoded-record cache and a few buffers: about 10 MB
// under load) while every request allocates a few KB. With Go's default the
// collector ran about 70 times a second at 35,000 requests/s when the live heap
// was 3 MB, and a fifth of the KDC's CPU went to it (mark workers, write
// barriers, assists). A fixed headroom bounds that in memory instead. Measured
// under a saturating AS load (GODEBUG=gctrace=1, live heap 10 MB): 16 MB of
// headroom cost 1% of the KDC's CPU in the collector, 8 MB also 1% (twice the
// cycles, each about 2 ms of CPU), 4 MB 3%, 2 MB 6%.
const gcHeadroom = 8 << 20

// heapMinimum is the Go runtime's smallest heap goal at GOGC=100 (its
// defaultHeapMinimum). It scales with GOGC: at GOGC=1600 no collection runs
// before the heap reaches 64 MB, however small the live heap.
const heapMinimum = 4 << 20

// gcFloor is the smallest GOGC the tuner sets: a live heap over
// gcHeadroom*100/gcFloor (32 MB) grows by a quarter of itself before the next
// collection, not by the headroom alone.
const gcFloor = 25

// gcPercentFor is the GOGC that lets a heap of live bytes grow by
// max(gcHeadroom, live*gcFloor/100) before the next collection: never so high
// that the runtime's floor (heapMinimum scaled by GOGC) lifts the goal over
// live+gcHeadroom. It used to let the heap double once the live heap passed
// the headroom (Go's default, 100): under loads that filled the lookaside
// cache (a live heap of 11 MB) the goal was 23 MB instead of 19, and the KDC
// peaked at 52 MB resident instead of 47 (AS and TGS, UDP and TCP, in turn).
func gcPercentFor(live uint64) int {
	p := (live + gcHeadroom) * 100 / heapMinimum
	if live > 0 {
		p = min(p, gcHeadroom*100/live)
	}
	return int(max(p, gcFloor))
}

// tuneGC keeps the collector's target at the live heap plus gcHeadroom until
// ctx is done, then puts back the GOGC it found. The live heap is read, and
// GOGC set from it, at once and again after every collection. (GOGC used to be
// set every 2 s, from 1600% at start: with the runtime's floor scaled by it, a
// KDC just started on 100,000 principals reached 164 MB resident under load.)
// It does nothing when the operator set GOGC (or GOMEMLIMIT): theirs wins.
func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	t := &gcTuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.mu.Lock()
	t.last = debug.SetGCPercent(gcPercentFor(0))
	t.unsafeRetune()
	t.mu.Unlock()
	t.armAfterNextGC()
	<-ctx.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(t.last)
}

// gcTuner is tuneGC's state, shared with the cleanup that runs after each
// collection.
type gcTuner struct {
	mu      sync.Mutex
	sample  []metrics.Sample
	last    int  // the GOGC found, put back at the end
	stopped bool // tuneGC has returned: leave GOGC alone
}

// gcSentinel is allocated for one collection to find unreachable. It holds a
// pointer so that it is not combined with other small objects by the tiny
// allocator, whose blocks are freed only together.
type gcSentinel struct{ _ *byte }

// armAfterNextGC makes the next collection retune and re-arm: a cleanup
// (runtime.AddCleanup) runs once its object has been found unreachable, that is
// after the next collection cycle.
func (t *gcTuner) armAfterNextGC() {
	runtime.AddCleanup(new(gcSentinel), func(t *gcTuner) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		t.unsafeRetune()
		t.armAfterNextGC()
	}, t)
}

// unsafeRetune sets GOGC from the live heap the last collection found; t.mu
// must be held.
func (t *gcTuner) unsafeRetune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		debug.SetGCPercent(gcPercentFor(t.sample[0].Value.Uint64()))
	}
}
