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
