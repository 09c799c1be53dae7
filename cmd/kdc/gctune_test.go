package main

import (
	"context"
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
