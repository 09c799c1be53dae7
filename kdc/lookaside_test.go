package kdc

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// lookasideModel is the lookaside's contract written plainly: a list in
// insertion order, searched from end to end.
type lookasideModel struct {
	ttl           time.Duration
	max, maxBytes int
	entries       []modelEntry
	bytes         int
}

type modelEntry struct {
	h     requestHash
	reply []byte
	at    time.Time
}

func (m *lookasideModel) find(h requestHash) int {
	for i, e := range m.entries {
		if e.h == h {
			return i
		}
	}
	return -1
}

func (m *lookasideModel) get(h requestHash, now time.Time) ([]byte, bool) {
	i := m.find(h)
	if i < 0 || now.Sub(m.entries[i].at) > m.ttl {
		return nil, false
	}
	return m.entries[i].reply, true
}

func (m *lookasideModel) put(h requestHash, reply []byte, now time.Time) {
	cost := len(reply) + lookasideEntryOverhead
	if cost > m.maxBytes {
		return
	}
	reply = append([]byte(nil), reply...)
	if i := m.find(h); i >= 0 {
		m.bytes += len(reply) - len(m.entries[i].reply)
		m.entries[i].reply, m.entries[i].at = reply, now
		return
	}
	for len(m.entries) > 0 && now.Sub(m.entries[0].at) > m.ttl {
		m.dropOldest()
	}
	for len(m.entries) > 0 && (len(m.entries) >= m.max || m.bytes+cost > m.maxBytes) {
		m.dropOldest()
	}
	m.entries = append(m.entries, modelEntry{h, reply, now})
	m.bytes += cost
}

func (m *lookasideModel) dropOldest() {
	m.bytes -= len(m.entries[0].reply) + lookasideEntryOverhead
	m.entries = m.entries[1:]
}

// TestLookasideMatchesModel: random puts, retransmitted puts, gets and the
// passing of time, with the ring wrapping and growing many times, give what
// the plain list gives; a reply handed out stays intact after its entry is
// evicted.
func TestLookasideMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for round := 0; round < 50; round++ {
		now := time.Unix(1_700_000_000, 0)
		clock := func() time.Time { return now }
		max := 1 + rng.IntN(64)
		maxBytes := lookasideEntryOverhead + 1 + rng.IntN(40<<10)
		ttl := time.Duration(1+rng.IntN(50)) * time.Second
		l := newLookaside(ttl, max, maxBytes, clock)
		m := &lookasideModel{ttl: ttl, max: max, maxBytes: maxBytes}
		keys := 1 + rng.IntN(3*max)
		type handed struct{ got, want []byte }
		var out []handed
		for op := 0; op < 3000; op++ {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(rng.IntN(keys)))
			h := hashRequest(k[:])
			switch r := rng.IntN(10); {
			case r < 5:
				n := rng.IntN(600)
				if rng.IntN(50) == 0 {
					n = 1<<10 + rng.IntN(64<<10)
				}
				reply := make([]byte, n)
				for i := range reply {
					reply[i] = byte(rng.Uint32())
				}
				l.put(h, reply)
				m.put(h, reply, now)
			case r < 9:
				got, ok := l.get(h)
				want, wok := m.get(h, now)
				if ok != wok || !bytes.Equal(got, want) {
					t.Fatalf("round %d op %d: get = %d bytes, %v; want %d bytes, %v", round, op, len(got), ok, len(want), wok)
				}
				if ok && len(out) < 200 {
					out = append(out, handed{got, append([]byte(nil), want...)})
				}
			default:
				now = now.Add(time.Duration(rng.IntN(int(ttl/time.Millisecond))) * time.Millisecond / 4)
			}
			if n, b := l.stats(); n != len(m.entries) || b != m.bytes {
				t.Fatalf("round %d op %d: %d entries, %d bytes; want %d, %d", round, op, n, b, len(m.entries), m.bytes)
			}
		}
		for i, h := range out {
			if !bytes.Equal(h.got, h.want) {
				t.Fatalf("round %d: reply %d handed out changed after its entry was gone", round, i)
			}
		}
	}
}

// TestLookasideMemoryIsItsBudget: a full cache holds on the heap about the
// bytes it counts against its budget. The map of hash to reply it replaced
// took about 350 bytes per entry beyond the reply under churn, and counted 96.
func TestLookasideMemoryIsItsBudget(t *testing.T) {
	const entries, replyLen, churn = DefaultLookasideEntries, 700, 10
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	l := newLookaside(time.Hour, entries, DefaultLookasideBytes, time.Now)
	before := heap()
	// Ten times over, so that the index has lived through evictions (the old
	// map grew under this churn). Each reply is a new allocation, as the
	// KDC's are.
	for i := 0; i < churn*entries; i++ {
		reply := make([]byte, replyLen)
		binary.BigEndian.PutUint64(reply, uint64(i))
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		l.put(hashRequest(k[:]), reply)
	}
	grew := heap() - before
	n, counted := l.stats()
	runtime.KeepAlive(l)
	perEntry := (int(grew) - n*replyLen) / n
	t.Logf("%d entries of %d bytes: heap +%d KB, counted %d KB; %d bytes per entry beyond the reply (counted: %d)",
		n, replyLen, grew>>10, counted>>10, perEntry, lookasideEntryOverhead)
	if n != entries {
		t.Fatalf("%d entries, want %d", n, entries)
	}
	if perEntry > lookasideEntryOverhead {
		t.Errorf("an entry takes %d bytes beyond its reply; the budget counts %d", perEntry, lookasideEntryOverhead)
	}
}

// BenchmarkLookasidePutGet is the cache's work per request in a loaded KDC:
// a miss, then a put of a fresh reply into a full cache.
func BenchmarkLookasidePutGet(b *testing.B) {
	l := newLookaside(time.Hour, DefaultLookasideEntries, DefaultLookasideBytes, time.Now)
	reply := make([]byte, 700)
	var k [8]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint64(k[:], uint64(i))
		h := hashRequest(k[:])
		if _, ok := l.get(h); ok {
			b.Fatal("hit")
		}
		l.put(h, reply)
	}
}

// TestShardedLookaside: the KDC's lookaside cache is split by request hash;
// together the parts keep the bounds of one cache, keep the newest replies,
// answer a retransmission from its part, and one part's lock does not stop
// another's lookups.
func TestShardedLookaside(t *testing.T) {
	const replyLen = 700
	s := newShardedLookaside(time.Hour, DefaultLookasideEntries, DefaultLookasideBytes, time.Now)
	hash := func(i int) requestHash {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		return hashRequest(k[:])
	}
	const total = 3 * DefaultLookasideEntries
	for i := 0; i < total; i++ {
		reply := make([]byte, replyLen)
		binary.BigEndian.PutUint64(reply, uint64(i))
		s.put(hash(i), reply)
	}
	n, b := s.stats()
	if n > DefaultLookasideEntries || b > DefaultLookasideBytes {
		t.Fatalf("%d entries, %d bytes: over the bounds %d and %d", n, b, DefaultLookasideEntries, DefaultLookasideBytes)
	}
	if n < DefaultLookasideEntries*9/10 {
		t.Errorf("only %d entries kept of %d", n, DefaultLookasideEntries)
	}
	for _, l := range s.shards {
		if e, _ := l.stats(); e > DefaultLookasideEntries/lookasideShards {
			t.Errorf("a part holds %d entries, over its %d", e, DefaultLookasideEntries/lookasideShards)
		}
	}
	for i := total - 1000; i < total; i++ { // the newest, ~62 per part, are all kept
		r, ok := s.get(hash(i))
		if !ok || binary.BigEndian.Uint64(r) != uint64(i) {
			t.Fatalf("request %d: reply %v, %v", i, ok, r)
		}
	}
	// Two requests in different parts: one part's lock held does not stop
	// the other's lookup.
	a, other := hash(total-1), -1
	for i := total - 2; i >= total-1000; i-- {
		if h := hash(i); s.shard(&h) != s.shard(&a) {
			other = i
			break
		}
	}
	if other < 0 {
		t.Fatal("no two requests in different parts")
	}
	held := s.shard(&a)
	held.mu.Lock()
	done := make(chan bool, 1)
	go func() { _, ok := s.get(hash(other)); done <- ok }()
	select {
	case ok := <-done:
		held.mu.Unlock()
		if !ok {
			t.Error("the other part lost its reply")
		}
	case <-time.After(10 * time.Second):
		held.mu.Unlock()
		<-done
		t.Fatal("a lookup waited for another part's lock")
	}
}

// TestShardedLookasideGivesRingsBack: once an attack's replies have expired,
// every part gives its ring and table back (a part holds at most 625 entries,
// so a threshold of 1024 slots never let go).
func TestShardedLookasideGivesRingsBack(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newShardedLookaside(time.Minute, DefaultLookasideEntries, DefaultLookasideBytes, clock)
	for i := 0; i < 2*DefaultLookasideEntries; i++ {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		s.put(hashRequest(k[:]), make([]byte, 300))
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	for i, l := range s.shards {
		l.sweep()
		l.mu.Lock()
		kept := len(l.ring) + len(l.table)
		l.mu.Unlock()
		if kept != 0 {
			t.Errorf("part %d keeps %d ring and table slots after its entries expired", i, kept)
		}
	}
}
