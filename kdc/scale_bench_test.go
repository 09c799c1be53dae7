package kdc

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// BenchmarkScale measures the AS and TGS exchanges in process over databases of
// 1,000 and 100,000 principals, and 1,000,000 with KERBKIT_BENCH_1M=1 (loading
// it takes a minute). Each database is filled with BulkCreate.
//
//   - AS-hot: the same client every time (its record stays in the record cache);
//   - AS-random: a client drawn at random from the whole database each time, so
//     that beyond the record cache's size most lookups read and decode the
//     record from bbolt;
//   - TGS: alice's TGT for host/localhost.
//
// Each sub-benchmark reports the process's RSS after it ran (MB-RSS), and its
// two parts: MB-anon, the process's own memory (Go heap, record cache), and
// MB-file, the pages of the test binary and of the mapped database file it
// touched (page cache the kernel can reclaim). The memory of the bulk load is
// returned to the system before the exchanges run.
func BenchmarkScale(b *testing.B) {
	sizes := []int{1000, 100000}
	if os.Getenv("KERBKIT_BENCH_1M") != "" {
		sizes = append(sizes, 1000000)
	}
	for _, n := range sizes {
		r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
		fillerKey := loadFillers(b, r, n)
		ctx := context.Background()

		hot, _ := r.preauthASReq("alice", 18, 18)
		hotPkt := marshalAS(b, hot)
		// Requests for random fillers, made before the timer starts.
		rng := rand.New(rand.NewSource(1))
		random := make([][]byte, 2048)
		for i := range random {
			q := asReq(fillerName(rng.Intn(n)), 18)
			q.PAData = types.PADataSequence{encTimestamp(b, fillerKey, r.clock.Now())}
			random[i] = marshalAS(b, q)
		}
		tgt, tpart := r.login(nil)
		tgsPkt := newTGS(r, tgt, tpart).marshal()
		tgsRep(b, r.exchange(tgsPkt), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if rep := r.exchange(random[0]); len(rep) == 0 || rep[0] != 0x6b {
			b.Fatalf("a filler's AS-REQ was not answered with an AS-REP: %x", rep)
		}

		run := func(name string, pkt func(i int) []byte) {
			b.Run(fmt.Sprintf("%dk/%s", n/1000, name), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, ok := r.kdc.Handle(ctx, pkt(i), UDP, nil); !ok {
						b.Fatal("no reply")
					}
				}
				rss := readRSS()
				b.ReportMetric(rss["VmRSS"], "MB-RSS")
				b.ReportMetric(rss["RssAnon"], "MB-anon")
				b.ReportMetric(rss["RssFile"], "MB-file")
			})
		}
		run("AS-hot", func(int) []byte { return hotPkt })
		run("AS-random", func(i int) []byte { return random[i%len(random)] })
		run("TGS", func(int) []byte { return tgsPkt })
	}
}

func fillerName(i int) string { return "filler" + strconv.Itoa(i) }

// loadFillers adds n principals filler0 … filler<n-1>, each with one aes256
// key (the same value for all, so the benchmark can pre-authenticate as any
// of them) and the default flags, and returns that key.
func loadFillers(b *testing.B, r *testRealmEnv, n int) types.EncryptionKey {
	b.Helper()
	keys, err := principal.RandomKeys([]int32{18}, 1)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	recs := make([]*principal.Record, n)
	for i := range recs {
		name := principal.Name{Components: []string{fillerName(i)}, Realm: testRealm, Type: 1}
		recs[i] = principal.NewRecord(name, keys, now)
	}
	start := time.Now()
	if _, err := r.store.(*store.BoltStore).BulkCreate(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d principals loaded in %s", n, time.Since(start).Round(time.Millisecond))
	debug.FreeOSMemory() // the loaded records are garbage now: not the KDC's memory
	return keys[0].EncryptionKey()
}

// readRSS returns this process's VmRSS, RssAnon and RssFile in MB, from
// /proc/self/status (empty where it cannot be read).
func readRSS() map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || (k != "VmRSS" && k != "RssAnon" && k != "RssFile") {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		out[k] = kb / 1024
	}
	return out
}
