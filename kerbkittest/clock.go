package kerbkittest

import (
	"sync"
	"time"
)

// Clock is a settable clock for a realm's KDC: real time plus an offset that a
// test moves, so it can act "ten minutes later" (an expired ticket, a renewal)
// without sleeping. The zero value is real time. It is safe for concurrent use.
//
// Clients keep their own clocks: kerbkit's client and MIT kinit learn the KDC's
// time from its pre-authentication error and follow it, gokrb5 does not and
// fails with a clock skew error once the offset passes five minutes, as it
// would against a real KDC. Run MIT tools under faketime with the same offset
// to move them too.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is time.Now() plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Set puts the offset at d, e.g. back to what Offset returned earlier.
func (c *Clock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// Offset is how far the clock is ahead of real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}
