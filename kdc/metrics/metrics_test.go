package metrics

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
)

// realm starts a KDC with alice on 127.0.0.1 and a metrics listener, and
// returns a client for it and the metrics URL.
func realm(t *testing.T, pprof bool) (*client.Client, string) {
	c, url, _ := realmAt(t, pprof)
	return c, url
}

// realmAt is realm that also returns the KDC's address.
func realmAt(t *testing.T, pprof bool) (*client.Client, string, string) {
	t.Helper()
	db, err := store.Init(context.Background(), filepath.Join(t.TempDir(), "kdc.db"), "M.TEST", principal.RealmPolicy{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := (&kdc.LocalAdmin{Store: db}).Add(context.Background(), kdc.AddRequest{Name: "alice", Password: "alicepw"}); err != nil {
		t.Fatal(err)
	}
	k, err := kdc.New(kdc.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	srv := kdc.NewServer(k, nil)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ml, err := Listen("127.0.0.1:0", k, srv, Options{Pprof: pprof})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { srv.Serve(ctx); done <- struct{}{} }()
	go func() { ml.Serve(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	c, err := client.New(&client.Config{Realm: "M.TEST", KDCs: map[string][]string{"M.TEST": {srv.Addr()}}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, "http://" + ml.Addr(), srv.Addr()
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// value returns the sample of the metric line that starts with series.
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCountersMove: a scrape of a loaded KDC shows its counters moving (issue
// 11): issued and refused requests by code, latency, lookaside hits, TCP
// connections.
func TestCountersMove(t *testing.T) {
	c, url := realm(t, false)
	before := scrape(t, url)
	ctx := context.Background()
	alice, _ := client.ParsePrincipal("alice", "M.TEST")
	const logins = 5
	for i := 0; i < logins; i++ {
		if _, err := c.Login(ctx, client.ASRequest{Client: alice, Secret: client.PasswordSecret("alicepw")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Login(ctx, client.ASRequest{Client: alice, Secret: client.PasswordSecret("wrong")}); err == nil {
		t.Fatal("a wrong password logged in")
	}
	after := scrape(t, url)

	const as = `kerbkit_kdc_requests_total{code="%s",exchange="as",realm="M.TEST",result="%s"}`
	series := func(code, result string) string {
		return strings.NewReplacer("%s", code).Replace(strings.Replace(as, `result="%s"`, `result="`+result+`"`, 1))
	}
	for _, tc := range []struct {
		series  string
		atLeast float64
	}{
		{series("0", "issued"), logins},
		{series("25", "KDC_ERR_PREAUTH_REQUIRED"), logins + 1},
		{series("24", "KDC_ERR_PREAUTH_FAILED"), 1},
		{`kerbkit_kdc_request_duration_seconds_count{exchange="as",realm="M.TEST"}`, 2*logins + 2},
	} {
		if d := value(t, after, tc.series) - value(t, before, tc.series); d < tc.atLeast {
			t.Errorf("%s moved by %v, want at least %v\n%s", tc.series, d, tc.atLeast, after)
		}
	}
	if !strings.Contains(after, `kerbkit_kdc_request_duration_seconds_bucket{exchange="as",realm="M.TEST",le="0.001"}`) {
		t.Errorf("no latency histogram buckets")
	}
	if !strings.Contains(after, "go_build_info") || !strings.Contains(after, "process_resident_memory_bytes") {
		t.Errorf("no build or process metrics")
	}
}

// TestLookasideAndTCPCounters: a retransmission, garbage and TCP connections
// show up.
func TestLookasideAndTCPCounters(t *testing.T) {
	_, url, addr := realmAt(t, false)
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{PVNO: 5, MsgType: msgtype.KRB_AS_REQ,
		ReqBody: messages.KDCReqBody{KDCOptions: types.NewKrbFlags(), Realm: "M.TEST",
			CName: types.NewPrincipalName(1, "alice"), SName: types.NewPrincipalName(2, "krbtgt/M.TEST"),
			Till: time.Now().Add(time.Hour).UTC().Truncate(time.Second), Nonce: 42, EType: []int32{18}}}}
	pkt, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The same request twice (the second is a retransmission), then garbage.
	for _, msg := range [][]byte{pkt, pkt, {0x6a, 0x01, 0x00}} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
		conn.Write(append(frame, msg...))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 4))
		conn.Close()
	}
	text := scrape(t, url)
	for series, want := range map[string]float64{
		`kerbkit_kdc_lookaside_hits_total{realm="M.TEST"}`:                                                     1,
		`kerbkit_kdc_dropped_total{realm="M.TEST"}`:                                                            1,
		`kerbkit_kdc_tcp_connections_accepted_total{realm="M.TEST"}`:                                           3,
		`kerbkit_kdc_requests_total{code="25",exchange="as",realm="M.TEST",result="KDC_ERR_PREAUTH_REQUIRED"}`: 1,
	} {
		if v := value(t, text, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
}

// TestPprofOnlyWhenAsked: /debug/pprof/ is served with Options.Pprof only.
func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		_, url := realm(t, on)
		resp, err := http.Get(url + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.StatusCode == 200; got != on {
			t.Errorf("pprof %v: status %d", on, resp.StatusCode)
		}
	}
}

// TestDashboardNamesExist keeps docs/grafana-kdc.json in step with the
// metrics: every kerbkit_kdc_ name it queries is in a scrape.
func TestDashboardNamesExist(t *testing.T) {
	dash, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana-kdc.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, url := realm(t, false)
	text := scrape(t, url)
	names := regexp.MustCompile(`kerbkit_kdc_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) == 0 {
		t.Fatal("the dashboard queries no kerbkit metric")
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count")
		if !strings.Contains(text, "# TYPE "+base+" ") {
			t.Errorf("the dashboard queries %s, which the KDC does not export", n)
		}
	}
}
