package replay

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/clock"
)

func TestCacheExpiry(t *testing.T) {
	clk := clock.NewFrozen()
	c := New(Options{Now: clk.Now, Skew: time.Minute, Start: clk.Now().Add(-time.Hour)})
	ct := clk.Now()
	if err := c.Check("host/x@R", "alice@R", ct, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Check("host/x@R", "alice@R", ct, 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("second Check: %v, want ErrReplay", err)
	}
	// Distinct on every field of the key.
	for _, k := range []struct {
		s, c  string
		ct    time.Time
		cusec int
	}{
		{"host/y@R", "alice@R", ct, 1}, {"host/x@R", "alice@S", ct, 1}, {"host/x@R", "alice@R", ct.Add(time.Second), 1}, {"host/x@R", "alice@R", ct, 2},
		{"host/x@", "Ralice@R", ct, 1}, // no ambiguity from concatenation
	} {
		if err := c.Check(k.s, k.c, k.ct, k.cusec); err != nil {
			t.Errorf("%+v: %v", k, err)
		}
	}
	clk.Advance(2*time.Minute - time.Second)
	if err := c.Check("host/x@R", "alice@R", ct, 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("just before 2×skew: %v, want ErrReplay", err)
	}
	clk.Advance(time.Second)
	if err := c.Check("host/x@R", "alice@R", ct, 1); err != nil {
		t.Fatalf("after 2×skew: %v", err)
	}
	if n := c.Len(); n != 1 {
		t.Errorf("Len = %d after expiry, want 1", n)
	}
}

func TestCacheBeforeStart(t *testing.T) {
	clk := clock.NewFrozen()
	c := New(Options{Now: clk.Now})
	if !c.Start().Equal(clk.Now()) {
		t.Fatalf("Start %v, want the clock's now", c.Start())
	}
	// Made one second before the cache started: a previous instance may have
	// accepted it.
	if err := c.Check("s@R", "c@R", clk.Now().Add(-time.Second), 0); !errors.Is(err, ErrBeforeCache) {
		t.Fatalf("old authenticator: %v, want ErrBeforeCache", err)
	}
	now := clk.Now()
	if err := c.Check("s@R", "c@R", now.Truncate(time.Second), now.Nanosecond()/1000); err != nil {
		t.Fatalf("authenticator made at the start: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	clk := clock.NewFrozen()
	c := New(Options{Now: clk.Now, MaxEntries: 3, Skew: time.Minute, Start: clk.Now().Add(-time.Hour)})
	for i := 0; i < 3; i++ {
		if err := c.Check("s@R", "c@R", clk.Now(), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Check("s@R", "c@R", clk.Now(), 3); !errors.Is(err, ErrFull) {
		t.Fatalf("4th entry: %v, want ErrFull", err)
	}
	// A replay is still recognised as such when full.
	if err := c.Check("s@R", "c@R", clk.Now(), 0); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay when full: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if err := c.Check("s@R", "c@R", clk.Now(), 3); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestCacheQueueCompacts(t *testing.T) {
	clk := clock.NewFrozen()
	c := New(Options{Now: clk.Now, Skew: time.Second, Start: clk.Now().Add(-time.Hour)})
	for i := 0; i < 10000; i++ {
		if err := c.Check("s@R", fmt.Sprint("c", i), clk.Now(), 0); err != nil {
			t.Fatal(err)
		}
		clk.Advance(100 * time.Millisecond)
	}
	c.mu.Lock()
	q, m := len(c.queue)-c.head, len(c.seen)
	capQ := cap(c.queue)
	c.mu.Unlock()
	if m > 25 || q != m || capQ > 8192 {
		t.Fatalf("live %d, queue %d (cap %d): expired entries are kept", m, q, capQ)
	}
}

func TestCacheConcurrent(t *testing.T) {
	clk := clock.NewFrozen()
	c := New(Options{Now: clk.Now, Start: clk.Now().Add(-time.Hour)})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if c.Check("s@R", "c@R", clk.Now(), i) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if accepted != 500 {
		t.Fatalf("%d accepted, want 500 (each cusec once)", accepted)
	}
}
