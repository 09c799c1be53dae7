package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kerbkit/kerbkit/store"
	"github.com/prometheus/client_golang/prometheus"
)

// healthReport is what GET /healthz on --admin-listen (and --metrics-listen)
// answers, as JSON.
type healthReport struct {
	// Status is "ok", or "degraded" when the store does not answer: logins
	// go on from memory, administrative changes fail.
	Status  string       `json:"status"`
	Realm   string       `json:"realm"`
	Listen  string       `json:"listen"`
	Uptime  float64      `json:"uptime_s"`
	Started time.Time    `json:"started"`
	Store   store.Health `json:"store"`
}

// healthHandler serves the health report. It answers 200 while the KDC
// serves (a KDC cut off from etcd still answers logins); with ?strict it
// answers 503 when the store is unreachable.
func healthHandler(db store.DB, listen string, started time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := healthReport{Status: "ok", Realm: db.Realm(), Listen: listen, Started: started.UTC(),
			Uptime: time.Since(started).Round(time.Millisecond).Seconds(), Store: db.Health()}
		code := http.StatusOK
		if !h.Store.Reachable {
			h.Status = "degraded"
			if r.URL.Query().Has("strict") {
				code = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(h)
	})
}

// adminListener serves the health report on its own address.
type adminListener struct {
	ln  net.Listener
	srv *http.Server
}

func listenAdminHTTP(addr string, h http.Handler, log *slog.Logger) (*adminListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kdc: --admin-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return &adminListener{ln: ln, srv: hs}, nil
}

func (a *adminListener) Addr() string { return a.ln.Addr().String() }

// Serve serves until ctx is done.
func (a *adminListener) Serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- a.srv.Serve(a.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("kdc: admin listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// storeCollector exports the store's health as Prometheus gauges, so
// /metrics and /healthz tell the same story.
type storeCollector struct {
	db                              store.DB
	reachable, cacheRev, lag, count *prometheus.Desc
}

func newStoreCollector(db store.DB) *storeCollector {
	l := prometheus.Labels{"backend": db.Health().Backend}
	return &storeCollector{db: db,
		reachable: prometheus.NewDesc("kerbkit_store_reachable", "1 when the principal store answers; 0 while the KDC serves from memory only.", nil, l),
		cacheRev:  prometheus.NewDesc("kerbkit_store_cache_revision", "etcd revision the KDC's in-memory records reflect (0 for bbolt).", nil, l),
		lag:       prometheus.NewDesc("kerbkit_store_lag_revisions", "How many etcd revisions memory trails the store by.", nil, l),
		count:     prometheus.NewDesc("kerbkit_store_records", "Records held in memory (etcd).", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.reachable
	ch <- c.cacheRev
	ch <- c.lag
	ch <- c.count
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.db.Health()
	r := 0.0
	if h.Reachable {
		r = 1
	}
	ch <- prometheus.MustNewConstMetric(c.reachable, prometheus.GaugeValue, r)
	ch <- prometheus.MustNewConstMetric(c.cacheRev, prometheus.GaugeValue, float64(h.CacheRevision))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(h.LagRevisions))
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(h.Records))
}
