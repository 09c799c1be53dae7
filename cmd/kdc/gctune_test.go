package main

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, maxGCPercent},
		{1 << 20, maxGCPercent},        // 16 MB headroom on 1 MB would be 1600%
		{2 << 20, 800},                 // 16 MB on 2 MB
		{8 << 20, 200},                 // 16 MB on 8 MB
		{16 << 20, 100},                // the headroom equals the live heap: Go's default
		{1 << 30, 100},                 // never below Go's default
		{(16 << 20) / 3, 300},          // rounded down
		{(16 << 20) / 16 * 15, 106},    // just under the headroom
		{(16 << 20) / 100 * 1, 1600},   // capped
		{(16 << 20) / 1000 * 999, 100}, // 100.1% rounds to 100
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}

func TestTuneGCLeavesOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := debug.SetGCPercent(123)
	defer debug.SetGCPercent(before)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tuneGC(ctx, time.Millisecond)
	if got := debug.SetGCPercent(before); got != 123 {
		t.Fatalf("with GOGC set, tuneGC changed the GC percent to %d", got)
	}
}

func TestTuneGCSetsAndRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tuneGC(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		if p > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tuneGC did not raise the GC percent above 100 for this test's small heap")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if p := debug.SetGCPercent(before); p != 100 {
		t.Fatalf("after tuneGC ended the GC percent is %d, want the 100 it found", p)
	}
}
