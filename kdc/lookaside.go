package kdc

import (
	"crypto/sha256"
	"hash/maphash"
	"sync"
	"time"
)

// lookasideEntryOverhead is what an entry costs besides its reply bytes, for
// the byte budget: its ring slot (80 bytes), two to four table slots (4 bytes
// each) and the rounding of the reply's allocation to a size class;
// TestLookasideMemoryIsItsBudget measures it.
const lookasideEntryOverhead = 112

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
//
// Entries sit in a ring in insertion order (they leave oldest first, by age
// or by the bounds), found through an open-addressing table of ring
// positions. A Go map of hash to reply and a queue of hashes took about 350
// bytes per entry beyond the reply once inserts and deletes had churned the
// map (its table grows and never shrinks): 3.5 MB at the 10,000 entries a
// loaded KDC holds. This takes about 100.
type lookaside struct {
	ttl      time.Duration
	max      int
	maxBytes int
	now      func() time.Time
	seed     maphash.Seed // the table's hash: clients choose the request hashes

	mu      sync.Mutex
	ring    []lookasideSlot // n slots from head on (circular), oldest first
	head    int
	n       int
	table   []uint32 // ring position+1 of each entry, 0 for none; at least twice len(ring)
	bytes   int
	sweeper *time.Timer // pending sweep; nil when the cache is empty
}

type lookasideSlot struct {
	h     requestHash
	reply []byte // the caller's, never written again
	at    time.Time
}

func newLookaside(ttl time.Duration, max, maxBytes int, now func() time.Time) *lookaside {
	if max < 1 {
		max = 1
	}
	return &lookaside{ttl: ttl, max: max, maxBytes: maxBytes, now: now, seed: maphash.MakeSeed()}
}

// home is where the search for h in the table starts. len(l.table) must be a
// power of two.
func (l *lookaside) home(h *requestHash) int {
	return int(maphash.Bytes(l.seed, h[:]) & uint64(len(l.table)-1))
}

// unsafeFind returns the table index of h's entry and true, or the empty
// table index where h would go and false. l.mu must be held.
func (l *lookaside) unsafeFind(h *requestHash) (int, bool) {
	if len(l.table) == 0 {
		return 0, false
	}
	mask := len(l.table) - 1
	i := l.home(h)
	for l.table[i] != 0 {
		if l.ring[l.table[i]-1].h == *h {
			return i, true
		}
		i = (i + 1) & mask
	}
	return i, false
}

// unsafeUnindex empties table index i, moving back the entries after it that
// would no longer be found past the hole (deletion under linear probing).
// l.mu must be held.
func (l *lookaside) unsafeUnindex(i int) {
	mask := len(l.table) - 1
	l.table[i] = 0
	for j := (i + 1) & mask; l.table[j] != 0; j = (j + 1) & mask {
		k := l.home(&l.ring[l.table[j]-1].h)
		// The entry at j stays if its home lies cyclically in (i, j].
		if (i < j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		l.table[i], l.table[j] = l.table[j], 0
		i = j
	}
}

// get returns the reply kept for h. The caller must not modify it.
func (l *lookaside) get(h requestHash) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.unsafeFind(&h)
	if !ok {
		return nil, false
	}
	s := &l.ring[l.table[i]-1]
	if l.now().Sub(s.at) > l.ttl {
		return nil, false
	}
	return s.reply, true
}

// put keeps reply for h. The cache owns it from then on: the caller must not
// modify it.
func (l *lookaside) put(h requestHash, reply []byte) {
	cost := len(reply) + lookasideEntryOverhead
	if cost > l.maxBytes {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.unsafeFind(&h); ok {
		// A retransmission processed again (it raced the first reply): keep
		// the newest reply in the same ring slot.
		s := &l.ring[l.table[i]-1]
		l.bytes += len(reply) - len(s.reply)
		s.reply, s.at = reply, now
		return
	}
	l.unsafeDropExpired(now)
	for l.n > 0 && (l.n >= l.max || l.bytes+cost > l.maxBytes) {
		l.unsafeDropOldest()
	}
	if l.n == len(l.ring) {
		l.unsafeGrow()
	}
	pos := (l.head + l.n) % len(l.ring)
	l.ring[pos] = lookasideSlot{h: h, reply: reply, at: now}
	l.n++
	i, _ := l.unsafeFind(&h)
	l.table[i] = uint32(pos + 1)
	l.bytes += cost
	if l.sweeper == nil {
		l.sweeper = time.AfterFunc(l.sweepEvery(), l.sweep)
	}
}

// unsafeGrow doubles the ring, up to max slots, keeping the order, and
// rebuilds the table for it. l.mu must be held.
func (l *lookaside) unsafeGrow() {
	ring := make([]lookasideSlot, min(max(2*len(l.ring), 16), l.max))
	n := copy(ring, l.ring[l.head:])
	copy(ring[n:], l.ring[:l.head])
	l.ring, l.head = ring, 0
	size := 32
	for size < 2*len(ring) {
		size *= 2
	}
	l.table = make([]uint32, size)
	for pos := 0; pos < l.n; pos++ {
		i, _ := l.unsafeFind(&l.ring[pos].h)
		l.table[i] = uint32(pos + 1)
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
	if l.n == 0 {
		l.sweeper = nil
		return
	}
	l.sweeper.Reset(l.sweepEvery())
}

// unsafeDropExpired drops entries older than ttl from the front of the ring.
// l.mu must be held.
func (l *lookaside) unsafeDropExpired(now time.Time) {
	for l.n > 0 && now.Sub(l.ring[l.head].at) > l.ttl {
		l.unsafeDropOldest()
	}
}

// unsafeDropOldest removes the oldest entry. l.mu must be held.
func (l *lookaside) unsafeDropOldest() {
	s := &l.ring[l.head]
	if i, ok := l.unsafeFind(&s.h); ok {
		l.unsafeUnindex(i)
	}
	l.bytes -= len(s.reply) + lookasideEntryOverhead
	*s = lookasideSlot{}
	l.head = (l.head + 1) % len(l.ring)
	l.n--
	if l.n == 0 {
		l.head = 0
		if len(l.ring) > 64 {
			l.ring, l.table = nil, nil // give a big ring back once an attack is over
		}
	}
}

// stats reports the number of entries and the bytes they take, for tests and
// metrics.
func (l *lookaside) stats() (entries, bytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.bytes
}

// lookasideShards is how many parts the KDC's lookaside cache is split into,
// by request hash.
const lookasideShards = 16

// shardedLookaside is the KDC's lookaside cache: lookasideShards lookasides,
// each with its own lock and a sixteenth of the bounds. Every request looks its
// hash up and stores its reply, and one lock for all of them was the one lock
// every request took on every core. A retransmission has the same hash, so it
// finds its reply in the same part. A client can make its requests land in one
// part by choosing their bytes; it then evicts only that part's replies.
type shardedLookaside struct {
	shards [lookasideShards]*lookaside
}

func newShardedLookaside(ttl time.Duration, max, maxBytes int, now func() time.Time) *shardedLookaside {
	s := &shardedLookaside{}
	for i := range s.shards {
		s.shards[i] = newLookaside(ttl, max/lookasideShards, maxBytes/lookasideShards, now)
	}
	return s
}

// shard is h's part: the first byte of a SHA-256, uniform over the parts.
func (s *shardedLookaside) shard(h *requestHash) *lookaside {
	return s.shards[int(h[0])%lookasideShards]
}

func (s *shardedLookaside) get(h requestHash) ([]byte, bool) { return s.shard(&h).get(h) }

func (s *shardedLookaside) put(h requestHash, reply []byte) { s.shard(&h).put(h, reply) }

// stats sums the parts' entries and bytes.
func (s *shardedLookaside) stats() (entries, bytes int) {
	for _, l := range s.shards {
		n, b := l.stats()
		entries, bytes = entries+n, bytes+b
	}
	return entries, bytes
}
