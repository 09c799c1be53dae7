package store

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"
)

// BenchmarkEtcdPropagation measures how long a change made through one store
// (one KDC) takes to reach the memory of two others on a three-member
// cluster: from the start of the write to the moment the last of them serves
// the new record. It reports p50 and p99 (ns) of that time.
//
//	go test ./store -run x -bench EtcdPropagation -benchtime 200x
func BenchmarkEtcdPropagation(b *testing.B) {
	c := etcdtest.Start(b, 3)
	url := c.URL("bench")
	mk := filepath.Join(b.TempDir(), "realm.mkey")
	ctx := context.Background()
	if err := InitEtcd(ctx, url, mk, "ETCD.TEST", principal.RealmPolicy{}, EtcdOptions{}, time.Now()); err != nil {
		b.Fatal(err)
	}
	open := func() *EtcdStore {
		s, err := OpenEtcd(ctx, url, mk, EtcdOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	w, r1, r2 := open(), open(), open()
	n := principal.Name{Realm: "ETCD.TEST", Components: []string{"prop"}}
	keys, _ := principal.RandomKeys(principal.DefaultEnctypes, 1)
	if err := w.Create(ctx, principal.NewRecord(n, keys, time.Now())); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := time.Duration(i+1) * time.Second
		start := time.Now()
		if err := w.Update(ctx, n, func(r *principal.Record) error { r.MaxLife = want; return nil }); err != nil {
			b.Fatal(err)
		}
		for _, s := range []*EtcdStore{r1, r2} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				if rec, _ := s.Get(ctx, n); rec != nil && rec.MaxLife == want {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("change not propagated within 10s")
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
}
