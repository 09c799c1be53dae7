package kdc

import (
	"crypto/sha256"
	"sync"
	"time"
)

// lookasideEntryOverhead is what an entry costs besides its reply bytes (the key,
// the map slot, the queue slot), for the byte budget.
const lookasideEntryOverhead = 96

// requestHash is the lookaside key: the SHA-256 of the request bytes, computed
// once per request.
type requestHash [32]byte

func hashRequest(pkt []byte) requestHash { return sha256.Sum256(pkt) }

// lookaside remembers recent replies by the exact request bytes, so that a
// retransmitted request gets the identical reply instead of being processed again
// (RFC 4120 §3.1.2, §3.3.2; MIT's lookaside cache in dispatch.c does the same).
//
// It is bounded three ways, so that an attacker sending distinct requests cannot
// make it hold more than it should: entries live ttl, there are at most max of
// them, and their replies take at most maxBytes. Expired entries are dropped by
// a sweep that runs while the cache is not empty, not only when a new reply
// comes in: memory goes back once an attack stops.
type lookaside struct {
	ttl      time.Duration
	max      int
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	entries map[requestHash]lookasideEntry
	order   []requestHash // insertion order, oldest first from head
	head    int
	bytes   int
	sweeper *time.Timer // pending sweep; nil when the cache is empty
}

type lookasideEntry struct {
	reply []byte
	at    time.Time
}

func newLookaside(ttl time.Duration, max, maxBytes int, now func() time.Time) *lookaside {
	return &lookaside{ttl: ttl, max: max, maxBytes: maxBytes, now: now, entries: make(map[requestHash]lookasideEntry)}
}

func (l *lookaside) get(h requestHash) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[h]
	if !ok || l.now().Sub(e.at) > l.ttl {
		return nil, false
	}
	return e.reply, true
}

func (l *lookaside) put(h requestHash, reply []byte) {
	cost := len(reply) + lookasideEntryOverhead
	if cost > l.maxBytes {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.entries[h]; ok {
		// A retransmission processed again (it raced the first reply): keep
		// the newest reply in the same queue slot.
		l.bytes += len(reply) - len(old.reply)
		l.entries[h] = lookasideEntry{reply: reply, at: now}
		return
	}
	l.unsafeDropExpired(now)
	for len(l.entries) > 0 && (len(l.entries) >= l.max || l.bytes+cost > l.maxBytes) {
		l.unsafeDropOldest()
	}
	l.entries[h] = lookasideEntry{reply: reply, at: now}
	l.order = append(l.order, h)
	l.bytes += cost
	if l.sweeper == nil {
		l.sweeper = time.AfterFunc(l.sweepEvery(), l.sweep)
	}
}

// sweepEvery is the sweep period: a quarter of the ttl, at least a second.
func (l *lookaside) sweepEvery() time.Duration {
	return max(l.ttl/4, time.Second)
}

// sweep drops expired entries and runs again while any remain.
func (l *lookaside) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsafeDropExpired(l.now())
	if len(l.entries) == 0 {
		l.sweeper = nil
		return
	}
	l.sweeper.Reset(l.sweepEvery())
}

// unsafeDropExpired drops entries older than ttl from the front of the queue.
// l.mu must be held.
func (l *lookaside) unsafeDropExpired(now time.Time) {
	for l.head < len(l.order) {
		e, ok := l.entries[l.order[l.head]]
		if ok && now.Sub(e.at) <= l.ttl {
			break
		}
		l.unsafeDropOldest()
	}
}

// unsafeDropOldest removes the oldest entry. l.mu must be held.
func (l *lookaside) unsafeDropOldest() {
	h := l.order[l.head]
	l.order[l.head] = requestHash{}
	l.head++
	if e, ok := l.entries[h]; ok {
		l.bytes -= len(e.reply) + lookasideEntryOverhead
		delete(l.entries, h)
	}
	// Compact the queue once its dead front is the larger half, so it never
	// holds more than twice the live entries.
	if l.head > len(l.order)/2 {
		n := copy(l.order, l.order[l.head:])
		clear(l.order[n:])
		l.order, l.head = l.order[:n], 0
	}
	if len(l.entries) == 0 {
		l.head = 0
		l.order = l.order[:0]
		if cap(l.order) > 1024 {
			l.order = nil // give a big queue back once an attack is over
		}
	}
}

// stats reports the number of entries and the bytes they take, for tests and
// metrics.
func (l *lookaside) stats() (entries, bytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries), l.bytes
}
