package kdc

import (
	"crypto/sha256"
	"sync"
	"time"
)

// lookaside remembers recent replies by the exact request bytes, so that a
// retransmitted request gets the identical reply instead of being processed again
// (RFC 4120 §3.1.2, §3.3.2; MIT's lookaside cache in dispatch.c does the same).
type lookaside struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]lookasideEntry
	order   [][32]byte // insertion order, oldest first, for eviction
}

type lookasideEntry struct {
	reply []byte
	at    time.Time
}

func newLookaside(ttl time.Duration, max int, now func() time.Time) *lookaside {
	return &lookaside{ttl: ttl, max: max, now: now, entries: make(map[[32]byte]lookasideEntry)}
}

func (l *lookaside) get(req []byte) ([]byte, bool) {
	h := sha256.Sum256(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[h]
	if !ok || l.now().Sub(e.at) > l.ttl {
		return nil, false
	}
	return e.reply, true
}

func (l *lookaside) put(req, reply []byte) {
	h := sha256.Sum256(req)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Drop expired entries from the front, then the oldest ones over the cap.
	for len(l.order) > 0 {
		oldest := l.order[0]
		e, ok := l.entries[oldest]
		if ok && now.Sub(e.at) <= l.ttl && len(l.entries) < l.max {
			break
		}
		delete(l.entries, oldest)
		l.order = l.order[1:]
	}
	if _, ok := l.entries[h]; !ok {
		l.order = append(l.order, h)
	}
	l.entries[h] = lookasideEntry{reply: reply, at: now}
}
