package kdc

import (
	"bufio"
	"bytes"
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
		// AS-random patches a filler's number into one AS-REQ (every filler
		// has the same key, so its encrypted timestamp serves them all): each
		// request names a filler drawn at random from the 90% of the database
		// whose numbers have as many digits as n-1, so that beyond the record
		// cache's size most lookups read and decode the record from bbolt.
		lo := 1
		for lo*10 <= n-1 {
			lo *= 10
		}
		q := asReq(fillerName(lo), 18)
		q.PAData = types.PADataSequence{encTimestamp(b, fillerKey, r.clock.Now())}
		tmpl := marshalAS(b, q)
		at := bytes.Index(tmpl, []byte(fillerName(lo))) + len(fillerName(0)) - 1
		rng := rand.New(rand.NewSource(1))
		randomPkt := make([]byte, len(tmpl))
		random := func() []byte {
			copy(randomPkt, tmpl)
			strconv.AppendInt(randomPkt[at:at], int64(lo+rng.Intn(n-lo)), 10)
			return randomPkt
		}
		tgt, tpart := r.login(nil)
		tgsPkt := newTGS(r, tgt, tpart).marshal()
		tgsRep(b, r.exchange(tgsPkt), tpart.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if rep := r.exchange(random()); len(rep) == 0 || rep[0] != 0x6b {
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
				b.ReportMetric(rss["db"], "MB-db")
			})
		}
		run("AS-hot", func(int) []byte { return hotPkt })
		run("AS-random", func(int) []byte { return random() })
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
// /proc/self/status, and as "db" the resident part of the database file's
// mapping (kdc.db in /proc/self/smaps). Values that cannot be read are absent.
func readRSS() map[string]float64 {
	out := map[string]float64{}
	kB := func(v string) float64 {
		n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		return n / 1024
	}
	if f, err := os.Open("/proc/self/status"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && (k == "VmRSS" || k == "RssAnon" || k == "RssFile") {
				out[k] = kB(v)
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/self/smaps"); err == nil {
		s := bufio.NewScanner(f)
		inDB := false
		for s.Scan() {
			line := s.Text()
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.Contains(k, " ") {
				if inDB && k == "Rss" {
					out["db"] += kB(v)
				}
				continue
			}
			inDB = strings.HasSuffix(line, "/kdc.db") // a mapping's first line
		}
		f.Close()
	}
	return out
}
