// Package clock is the settable clock of the project's in-process realms: real
// time plus an offset a test moves, so that it can act "ten minutes later" (an
// expired ticket, a renewal) without sleeping.
package clock

import (
	"sync"
	"time"
)

// Offset is real time plus an offset. The zero value is real time. It is safe
// for concurrent use.
type Offset struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is time.Now() plus the offset.
func (c *Offset) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Offset) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Set puts the offset at d, e.g. back to what Offset returned earlier.
func (c *Offset) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// Offset is how far the clock is ahead of real time.
func (c *Offset) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Frozen is a clock that stands still until a test moves it: for code whose
// expiry and window arithmetic must be exact. It is safe for concurrent use.
type Frozen struct {
	mu sync.Mutex
	t  time.Time
}

// NewFrozen returns a clock stopped at the current time, in UTC, truncated to
// the microsecond (the resolution of Kerberos timestamps with cusec).
func NewFrozen() *Frozen { return &Frozen{t: time.Now().UTC().Truncate(time.Microsecond)} }

// Now is the clock's current reading.
func (c *Frozen) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Frozen) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
