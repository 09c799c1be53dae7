// Package replay is the replay cache of authenticators (RFC 4120 §3.2.3)
// shared by the service acceptor and the KDC's kpasswd service; package
// service re-exports it as ReplayCache.
package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// DefaultSkew is the allowed clock difference between client and service
// (RFC 4120 §1.6 suggests 5 minutes; MIT's clockskew default).
const DefaultSkew = 5 * time.Minute

// DefaultSize caps the entries of a Cache. With entries kept
// for 2×skew (10 minutes) it allows about 430 authentications a second
// sustained, in roughly 20 MiB.
const DefaultSize = 1 << 18

// Replay cache verdicts.
var (
	// ErrReplay: the same authenticator (server, client, ctime, cusec) was
	// already accepted within the skew window (KRB_AP_ERR_REPEAT).
	ErrReplay = errors.New("replay: authenticator replayed")
	// ErrBeforeCache: the authenticator was made before this cache started,
	// so a previous instance may have accepted it (see Cache).
	ErrBeforeCache = errors.New("replay: authenticator predates the replay cache")
	// ErrFull: the cache is at its bound with nothing expired; the
	// request is refused rather than forgetting an entry still in its window.
	ErrFull = errors.New("replay: replay cache full")
)

// Options configure New. The zero value means defaults.
type Options struct {
	Skew       time.Duration    // default DefaultSkew; entries live 2×Skew
	MaxEntries int              // default DefaultSize
	Now        func() time.Time // default time.Now
	// Start is the instant before which authenticators are refused (default:
	// Now() at creation). Set it earlier only when no earlier instance of the
	// service can have accepted authenticators made since then.
	Start time.Time
}

// Cache remembers the authenticators a service accepted (RFC 4120 §3.2.3),
// keyed by (server principal, client principal with realm, ctime, cusec) — a
// hash of them, so entries have a fixed size. An entry lives 2×skew after it
// was added: long enough that the same authenticator can no longer pass the
// skew check when it expires (its ctime is at most skew ahead of the time it
// was added, and is accepted up to skew after ctime). The cache is safe for
// concurrent use and bounded: when full with nothing expired it refuses new
// authenticators (fail closed) instead of dropping live entries.
//
// After a restart: the cache is in memory only, so RFC 4120 §3.2.3 says to
// reject every request for one skew interval after losing it. This cache does
// something narrower with the same effect: it refuses any authenticator whose
// ctime is before the cache's start. Everything a previous instance could have
// seen was made before this one started, so nothing captured before a restart
// can be replayed after it; fresh authenticators from clients whose clocks are
// not behind ours are accepted at once. A client whose clock runs d behind
// ours is refused for the first d after a restart (at most the skew); it can
// simply retry. Services sharing a principal must share one cache.
type Cache struct {
	window time.Duration
	max    int
	now    func() time.Time
	start  time.Time

	mu    sync.Mutex
	seen  map[replayKey]int64 // key -> expiry (unix nanoseconds)
	queue []replayEntry       // insertion order, for expiry
	head  int
}

type replayKey [16]byte

type replayEntry struct {
	key    replayKey
	expiry int64
}

// New returns an empty cache.
func New(o Options) *Cache {
	if o.Skew <= 0 {
		o.Skew = DefaultSkew
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Start.IsZero() {
		o.Start = o.Now()
	}
	return &Cache{
		window: 2 * o.Skew, max: o.MaxEntries, now: o.Now, start: o.Start,
		seen: make(map[replayKey]int64),
	}
}

// Start returns the instant before which authenticators are refused.
func (c *Cache) Start() time.Time { return c.start }

// Len returns the number of live entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.now().UnixNano())
	return len(c.seen)
}

// Check records the authenticator (server, client, ctime, cusec), or returns
// ErrReplay if it was recorded before, ErrBeforeCache if it predates the
// cache, or ErrFull. server and client are full principal names
// with realms.
func (c *Cache) Check(server, client string, ctime time.Time, cusec int) error {
	at := ctime.Truncate(time.Second).Add(time.Duration(cusec) * time.Microsecond)
	if at.Before(c.start.Truncate(time.Microsecond)) {
		return ErrBeforeCache
	}
	k := makeReplayKey(server, client, ctime, cusec)
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if exp, ok := c.seen[k]; ok && exp > now {
		return ErrReplay
	}
	if len(c.seen) >= c.max {
		return ErrFull
	}
	exp := now + int64(c.window)
	c.seen[k] = exp
	c.queue = append(c.queue, replayEntry{key: k, expiry: exp})
	return nil
}

// expire drops entries whose time is up, oldest first. c.mu is held.
func (c *Cache) expire(now int64) {
	for c.head < len(c.queue) && c.queue[c.head].expiry <= now {
		e := c.queue[c.head]
		if exp, ok := c.seen[e.key]; ok && exp == e.expiry {
			delete(c.seen, e.key)
		}
		c.queue[c.head] = replayEntry{}
		c.head++
	}
	// Compact when the dead prefix dominates, so the slice does not grow
	// without bound.
	if c.head > 1024 && c.head*2 > len(c.queue) {
		c.queue = append(c.queue[:0:0], c.queue[c.head:]...)
		c.head = 0
	}
}

func makeReplayKey(server, client string, ctime time.Time, cusec int) replayKey {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(server)))
	h.Write(n[:])
	h.Write([]byte(server))
	binary.BigEndian.PutUint64(n[:], uint64(len(client)))
	h.Write(n[:])
	h.Write([]byte(client))
	binary.BigEndian.PutUint64(n[:], uint64(ctime.Unix()))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(cusec))
	h.Write(n[:])
	var k replayKey
	copy(k[:], h.Sum(nil))
	return k
}
