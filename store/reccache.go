package store

import (
	"sync"
	"sync/atomic"

	"github.com/kerbkit/kerbkit/principal"
)

// recordCache holds decoded records, at most MaxCachedRecords of them, for a
// store whose records are read far more often than written. It is coherent
// when every write calls invalidate after it is visible to readers, and every
// reader takes generation before it reads what it will fill.
type recordCache struct {
	cache    sync.Map // name key → *principal.Record, never modified once stored
	cached   atomic.Int64
	ring     []string      // keys in fill order, at most MaxCachedRecords; under mu
	ringHead int           // oldest fill once ring is full
	mu       sync.Mutex    // orders fills against invalidations
	gen      atomic.Uint64 // bumped by every invalidation, under mu
}

// load returns the cached record of key.
func (c *recordCache) load(key string) (*principal.Record, bool) {
	if v, ok := c.cache.Load(key); ok {
		return v.(*principal.Record), true
	}
	return nil, false
}

// generation is what fill compares to know whether an invalidation came in
// between: read it before reading the record.
func (c *recordCache) generation() uint64 { return c.gen.Load() }

// fill caches rec unless an invalidation happened since gen was read: the
// record may then be older than what the write left behind.
func (c *recordCache) fill(key string, gen uint64, rec *principal.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if _, loaded := c.cache.LoadOrStore(key, rec); loaded {
		return
	}
	c.cached.Add(1)
	// The ring remembers fill order; once it is full, the oldest fill makes
	// room (first in, first out: a hot record is dropped at most once per
	// MaxCachedRecords misses, and comes back at the next lookup).
	if len(c.ring) < MaxCachedRecords {
		c.ring = append(c.ring, key)
		return
	}
	if _, ok := c.cache.LoadAndDelete(c.ring[c.ringHead]); ok {
		c.cached.Add(-1)
	}
	c.ring[c.ringHead] = key
	c.ringHead = (c.ringHead + 1) % len(c.ring)
}

// invalidate drops key (every key if key is "") after a write is visible.
func (c *recordCache) invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if key == "" {
		c.cache.Clear()
		c.cached.Store(0)
		c.ring, c.ringHead = c.ring[:0], 0
		return
	}
	if _, ok := c.cache.LoadAndDelete(key); ok {
		c.cached.Add(-1)
	}
}
