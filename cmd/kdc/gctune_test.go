package main

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

func TestGCPercentFor(t *testing.T) {
	const h, mb = gcHeadroom, 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 200},              // the goal is the headroom: 4 MB at 200%
		{1 * mb, 225},         // 9 MB: 4 MB x 2.25, not 8 MB over 1 MB (800%, goal 32 MB)
		{3 * mb, 266},         // 8 MB over 3 MB, rounded down
		{h / 2, 200},          // 8 MB over 4 MB
		{h / 16 * 15, 106},    // just under the headroom
		{h, 100},              // the headroom equals the live heap: Go's default
		{h / 1000 * 1001, 99}, // over the headroom: the headroom still
		{2 * h, 50},           // 16 MB grows by 8 MB
		{4 * h, 25},           // 32 MB grows by a quarter
		{1 << 30, 25},         // never below gcFloor
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}

// runtimeGoal is the heap goal the Go runtime derives from GOGC=p for a live
// heap (mgcpacer.go: the live heap grown by p%, at least heapMinimum scaled by
// p), leaving out stacks and globals.
func runtimeGoal(live uint64, p int) uint64 {
	return max(live+live*uint64(p)/100, heapMinimum*uint64(p)/100)
}

// TestGCPercentForGoal: for any live heap the goal is live+max(gcHeadroom,
// live/4), to within the percent's rounding.
func TestGCPercentForGoal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		live := rng.Uint64N(64 << 20)
		if i%2 == 0 {
			live = rng.Uint64N(2 * gcHeadroom)
		}
		want := live + max(gcHeadroom, live*gcFloor/100)
		slack := max(live, heapMinimum) / 100 // one percent point
		if got := runtimeGoal(live, gcPercentFor(live)); got > want || got+slack < want {
			t.Fatalf("live heap %d: goal %d, want %d (GOGC %d)", live, got, want, gcPercentFor(live))
		}
	}
}

// gcPercent is the GOGC in effect.
func gcPercent(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

func TestTuneGCLeavesOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := debug.SetGCPercent(123)
	defer debug.SetGCPercent(before)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tuneGC(ctx)
	if got := debug.SetGCPercent(before); got != 123 {
		t.Fatalf("with GOGC set, tuneGC changed the GC percent to %d", got)
	}
}

// TestTuneGCFollowsEachCollection: the target follows the live heap from one
// collection to the next, not from a reading taken every few seconds; when
// tuneGC ends, the GOGC it found is back and stays.
func TestTuneGCFollowsEachCollection(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tuneGC(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// waitPercent collects (bounded) until the GOGC in effect satisfies ok.
	waitPercent := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(gcPercent(t)) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: GOGC is %d", what, gcPercent(t))
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	// This test binary's live heap is a few MB: the headroom is over 100%.
	waitPercent("small heap", func(p int) bool { return p > 100 })
	// The runtime's goal is the live heap plus the headroom (the runtime adds
	// stacks and globals to the live heap), not a floor that GOGC lifted.
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if goal, live := s[0].Value.Uint64(), s[1].Value.Uint64(); goal > live+gcHeadroom+2<<20 {
		t.Fatalf("heap goal %d KB for a live heap of %d KB", goal>>10, live>>10)
	}

	// A live heap of twice the headroom grows by the headroom, not by itself
	// (Go's default), after one collection.
	big := make([]byte, 2*gcHeadroom)
	for i := range big {
		big[i] = byte(i)
	}
	waitPercent("heap over the headroom", func(p int) bool { return p >= gcFloor && p <= 50 })
	runtime.KeepAlive(big)
	big = nil
	waitPercent("heap small again", func(p int) bool { return p > 100 })

	cancel()
	<-done
	// Collections after the end leave GOGC alone.
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if p := gcPercent(t); p != 100 {
		t.Fatalf("after tuneGC ended the GC percent is %d, want the 100 it found", p)
	}
}

// TestServeStartsWithoutOpenGarbage: opening a large database checks every
// page; when serve is ready, what that allocated is collected and returned,
// not left in the heap under the collector's headroom.
func TestServeStartsWithoutOpenGarbage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kdc.db")
	s, err := store.Init(context.Background(), db, "BIG.TEST", principal.RealmPolicy{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := principal.RandomKeys([]int32{18}, 1)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*principal.Record, 50000)
	for i := range recs {
		recs[i] = principal.NewRecord(principal.Name{Components: []string{"u" + strconv.Itoa(i)}, Realm: "BIG.TEST", Type: 1}, keys, time.Now())
	}
	if _, err := s.BulkCreate(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs = nil
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(heap)
	before := heap[0].Value.Uint64()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &env{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{}, db: db}
	var atReady uint64
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, e, &serveOptions{listen: "127.0.0.1:0", logLevel: "error"}, func(string, string) {
			metrics.Read(heap)
			atReady = heap[0].Value.Uint64()
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The server's own live memory is a few hundred KB; the check of 50,000
	// records leaves several MB.
	if grew := int64(atReady) - int64(before); grew > 2<<20 {
		t.Fatalf("the heap grew by %d KB from opening to ready", grew>>10)
	}
}
