// Package metrics exports a KDC's counters to Prometheus, and serves them (with
// an optional pprof) on an HTTP listener of its own, apart from the Kerberos
// ports. The counters are read at scrape time from kdc.KDC.Stats and
// kdc.Server.Stats, so the request path pays nothing for them beyond the KDC's
// own atomic adds.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kerbkit/kerbkit/kdc"
)

// namespace prefixes every metric name.
const namespace = "kerbkit_kdc"

// Collector is a prometheus.Collector over a KDC and, optionally, its server.
type Collector struct {
	kdc    *kdc.KDC
	server *kdc.Server
	realm  string

	requests, latency, lookaside, dropped, storeErrors, lockouts, lockoutDropped, panics *prometheus.Desc
	tcpOpen, tcpAccepted, tcpRefused, tcpEvicted                                         *prometheus.Desc
}

// NewCollector returns a collector for k and srv (srv may be nil).
func NewCollector(k *kdc.KDC, srv *kdc.Server) *Collector {
	realm := prometheus.Labels{"realm": k.Realm()}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, realm)
	}
	return &Collector{kdc: k, server: srv, realm: k.Realm(),
		requests: d("requests_total", "Requests answered, by exchange (as, tgs), result (issued or the KRB-ERROR name) and KRB-ERROR code (0 when issued).",
			"exchange", "result", "code"),
		latency:        d("request_duration_seconds", "Time to answer a request that decoded, by exchange.", "exchange"),
		lookaside:      d("lookaside_hits_total", "Retransmitted requests answered from the lookaside cache (RFC 4120 §3.1.2)."),
		dropped:        d("dropped_total", "Packets that did not decode as a KDC request and got no reply."),
		storeErrors:    d("store_errors_total", "Requests that failed on the principal store."),
		lockouts:       d("lockouts_total", "Principals locked after failed pre-authentication."),
		lockoutDropped: d("lockout_failures_dropped_total", "Failed pre-authentications not counted toward a lockout because too many principals had failures waiting to be written."),
		panics:         d("panics_total", "Requests that panicked and were answered with KRB_ERR_GENERIC."),
		tcpOpen:        d("tcp_connections_open", "Open TCP connections."),
		tcpAccepted:    d("tcp_connections_accepted_total", "TCP connections accepted."),
		tcpRefused:     d("tcp_connections_refused_total", "TCP connections closed at once: over the caps with no idle one to evict, or large requests over the in-flight budget."),
		tcpEvicted:     d("tcp_connections_evicted_total", "Idle TCP connections closed to make room for new ones."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.latency, c.lookaside, c.dropped, c.storeErrors, c.lockouts, c.lockoutDropped,
		c.panics, c.tcpOpen, c.tcpAccepted, c.tcpRefused, c.tcpEvicted} {
		ch <- d
	}
}

// errorNames are the KRB-ERROR names for the result label, e.g.
// KDC_ERR_PREAUTH_REQUIRED, from gokrb5's table ("(25) KDC_ERR_... text").
var errorNames = func() [kdc.MaxCountedCode + 1]string {
	var names [kdc.MaxCountedCode + 1]string
	for code := range names {
		f := strings.Fields(errorcode.Lookup(int32(code)))
		if len(f) >= 2 && strings.HasPrefix(f[0], "(") {
			names[code] = f[1]
		} else {
			names[code] = "ERROR_" + strconv.Itoa(code)
		}
	}
	return names
}()

func errorName(code int32) string {
	if code >= 0 && int(code) < len(errorNames) {
		return errorNames[code]
	}
	return "ERROR_" + strconv.Itoa(int(code))
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.kdc.Stats()
	for _, x := range []kdc.Exchange{kdc.ExchangeAS, kdc.ExchangeTGS} {
		ex := x.String()
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(st.Issued[x]), ex, "issued", "0")
		for code, n := range st.Errors[x] {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), ex, errorName(code), strconv.Itoa(int(code)))
		}
		buckets := map[float64]uint64{}
		var cum, count uint64
		for i, b := range kdc.LatencyBuckets {
			cum += st.Latency[x][i]
			buckets[b.Seconds()] = cum
		}
		count = cum + st.Latency[x][len(kdc.LatencyBuckets)]
		ch <- prometheus.MustNewConstHistogram(c.latency, count, st.LatencySum[x].Seconds(), buckets, ex)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.lookaside, st.LookasideHits)
	counter(c.dropped, st.Dropped)
	counter(c.storeErrors, st.StoreErrors)
	counter(c.lockouts, st.Lockouts)
	counter(c.lockoutDropped, st.LockoutDropped)
	counter(c.panics, st.Panics)
	if c.server != nil {
		ss := c.server.Stats()
		ch <- prometheus.MustNewConstMetric(c.tcpOpen, prometheus.GaugeValue, float64(ss.TCPOpen))
		counter(c.tcpAccepted, ss.TCPAccepted)
		counter(c.tcpRefused, ss.TCPRefused)
		counter(c.tcpEvicted, ss.TCPEvicted)
	}
}

// Options configure a metrics listener.
type Options struct {
	// Pprof also serves net/http/pprof under /debug/pprof/ on the same
	// listener. Profiles show code and timing, never keys; still, keep the
	// listener where only operators reach it.
	Pprof bool
	// Logger gets the listener's own failures; nil discards.
	Logger *slog.Logger
	// Collectors are registered beside the KDC's (the store's gauges).
	Collectors []prometheus.Collector
	// Health, if set, is also served at /healthz, as on the admin listener.
	Health http.Handler
}

// Handler returns the HTTP handler for /metrics (and /debug/pprof/ with
// Options.Pprof): the KDC's collector, build information and the Go runtime's
// and process's collectors, on a registry of its own.
func Handler(k *kdc.KDC, srv *kdc.Server, o Options) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{NewCollector(k, srv), collectors.NewBuildInfoCollector(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, o.Collectors...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if o.Health != nil {
		mux.Handle("/healthz", o.Health)
	}
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux, nil
}

// Listener serves Handler on an address until its context is done.
type Listener struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port; port 0 picks one) for the metrics of k and srv.
func Listen(addr string, k *kdc.KDC, srv *kdc.Server, o Options) (*Listener, error) {
	h, err := Handler(k, srv, o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	if o.Logger != nil {
		hs.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	}
	return &Listener{ln: ln, srv: hs}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Serve serves until ctx is done, then shuts down within a few seconds.
func (l *Listener) Serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- l.srv.Serve(l.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
