package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
)

// KDC replicas on a real three-member etcd cluster (issue 13): `kdc serve`
// processes sharing etcd://.../PREFIX, driven by MIT kinit and kclient with a
// krb5.conf that lists every replica.

const replicaRealm = "REPLICA.TEST"

// replica is one `kdc serve` on the cluster.
type replica struct {
	name   string
	addr   string // Kerberos UDP and TCP
	health string // http://.../healthz
	proc   *Process
}

type replicaSet struct {
	t        *testing.T
	kdc      string
	kclient  string
	cluster  *etcdtest.Cluster
	url, mk  string
	replicas []*replica
	dir      string
}

func newReplicaSet(t *testing.T, n int) *replicaSet {
	t.Helper()
	kdcBin, kclientBin := Binaries(t)
	c := etcdtest.Start(t, 3)
	rs := &replicaSet{t: t, kdc: kdcBin, kclient: kclientBin, cluster: c, dir: t.TempDir()}
	rs.url = c.URL("kerbkit")
	rs.mk = filepath.Join(rs.dir, "realm.mkey")
	rs.admin("", "init", "--realm", replicaRealm)
	for i := range n {
		rs.replicas = append(rs.replicas, rs.startReplica(fmt.Sprintf("kdc%c", 'a'+i)))
	}
	return rs
}

var replicaListeningRE = regexp.MustCompile(`listening on (\S+) \(udp, tcp\)`)
var replicaHealthRE = regexp.MustCompile(`health on (http://\S+/healthz)`)

func (rs *replicaSet) startReplica(name string) *replica {
	t := rs.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freeUDPTCPPort(t))
		p, err := StartProcess(os.Environ(), rs.kdc, "serve", "--db", rs.url, "--master-key", rs.mk,
			"--listen", addr, "--admin-listen", "127.0.0.1:0", "--kpasswd-listen", "none", "--log-level", "warn")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop(syscall.SIGTERM) })
		if _, err := p.WaitOutput(replicaListeningRE, 30*time.Second); err != nil {
			if p.Exited() && attempt < 2 && strings.Contains(p.Output(), "in use") {
				continue // the port was taken between the probe and the bind
			}
			t.Fatalf("%s: %v\n%s", name, err, p.Output())
		}
		m := replicaHealthRE.FindStringSubmatch(p.Output())
		if m == nil {
			t.Fatalf("%s: no health address:\n%s", name, p.Output())
		}
		return &replica{name: name, addr: addr, health: m[1], proc: p}
	}
}

// freeUDPTCPPort returns a port free for UDP and TCP on 127.0.0.1 (a clash
// later fails the start, not the test's logic), below the kernel's ephemeral
// range when there is room. A replica the tests kill leaves its port free, and
// the kernel may then hand it out as the local port of a client's socket to
// that very address. MIT kinit connects its UDP socket, so it can send its
// AS-REQ to itself and read it back: the likely cause of a kinit that failed
// with "Invalid message type" once in CI, after both kills.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	if lo, ok := ephemeralLow(); ok && lo > 12000 {
		for i := 0; i < 200; i++ {
			if p := 10000 + rand.IntN(lo-10000); portFree(p) {
				return p
			}
		}
	}
	return etcdtest.FreePort(t)
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	lo, err := strconv.Atoi(f[0])
	return lo, err == nil
}

// portFree reports whether port can be bound on 127.0.0.1 for TCP and UDP.
func portFree(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// admin runs a kdc administration command against the etcd database.
func (rs *replicaSet) admin(stdin string, args ...string) (string, string, int) {
	rs.t.Helper()
	args = append(args, "--db", rs.url, "--master-key", rs.mk)
	out, errOut, code := RunTimeout(rs.t, 30*time.Second, nil, stdin, rs.kdc, args...)
	return out, errOut, code
}

func (rs *replicaSet) mustAdmin(stdin string, args ...string) string {
	rs.t.Helper()
	out, errOut, code := rs.admin(stdin, args...)
	if code != 0 {
		rs.t.Fatalf("kdc %v: exit %d: %s", args, code, strings.TrimSpace(errOut))
	}
	return out
}

// clientEnv writes a krb5.conf listing the given replicas in order and
// returns the environment of a client using it.
func (rs *replicaSet) clientEnv(name string, reps ...*replica) []string {
	rs.t.Helper()
	dir := filepath.Join(rs.dir, "client-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		rs.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n    default_realm = %s\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n    rdns = false\n", replicaRealm)
	fmt.Fprintf(&b, "[realms]\n    %s = {\n", replicaRealm)
	for _, r := range reps {
		fmt.Fprintf(&b, "        kdc = %s\n", r.addr)
	}
	fmt.Fprintf(&b, "    }\n")
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		rs.t.Fatal(err)
	}
	return ClientEnviron(map[string]string{"KRB5_CONFIG": conf, "KRB5CCNAME": "FILE:" + filepath.Join(dir, "ccache")})
}

func (r *replica) healthReport(t *testing.T) map[string]any {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.health)
	if err != nil {
		t.Fatalf("%s health: %v", r.name, err)
	}
	defer resp.Body.Close()
	var h map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("%s health: %v", r.name, err)
	}
	return h
}

// kinitUntil retries MIT kinit (bounded) until it succeeds: for a change that
// is still on its way to a replica.
func kinitUntil(t *testing.T, env []string, password, principal string) {
	t.Helper()
	var stderr string
	for range 50 {
		var code int
		if _, stderr, code = mitKinit(t, env, password, principal); code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kinit %s: %s", principal, strings.TrimSpace(stderr))
}

// TestReplicasOnEtcd: three KDCs on a three-member etcd cluster.
//   - a principal added through etcd (kdc principal add) logs in through
//     replica B (MIT kinit) and replica C (kclient);
//   - the etcd leader is killed: logins go on; an admin write succeeds after
//     the election;
//   - every etcd member is stopped: logins go on from memory, an admin write
//     fails with one clear line, the health report says degraded; etcd comes
//     back: the replicas catch up without a restart.
func TestReplicasOnEtcd(t *testing.T) {
	RequireTool(t, "kinit")
	rs := newReplicaSet(t, 3)
	a, b, c := rs.replicas[0], rs.replicas[1], rs.replicas[2]

	rs.mustAdmin("alice-pw\n", "principal", "add", "alice")
	envB := rs.clientEnv("b", b)
	kinitUntil(t, envB, "alice-pw", "alice")
	envC := rs.clientEnv("c", c)
	out, stderr, code := RunTimeout(t, 30*time.Second, envC, "alice-pw\n", rs.kclient, "login", "alice")
	if code != 0 {
		t.Fatalf("kclient login through replica C: exit %d: %s%s", code, out, stderr)
	}

	// The leader dies; logins through every replica go on.
	envAll := rs.clientEnv("all", a, b, c)
	leader, err := rs.cluster.Leader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	for _, r := range rs.replicas {
		mustMITKinit(t, rs.clientEnv("only-"+r.name, r), "alice-pw", "alice")
	}
	var addErr string
	added := false
	for range 10 {
		_, e, code := rs.admin("bob-pw\n", "principal", "add", "bob")
		if code == 0 {
			added = true
			break
		}
		addErr = e
		time.Sleep(200 * time.Millisecond)
	}
	if !added {
		t.Fatalf("admin write after the leader died: %s", addErr)
	}
	kinitUntil(t, rs.clientEnv("only-a", a), "bob-pw", "bob")
	rs.cluster.Restart(leader)
	if err := rs.cluster.WaitHealthy(etcdtest.StartTimeout); err != nil {
		t.Fatal(err)
	}

	// etcd down entirely.
	for _, m := range rs.cluster.Members {
		m.Kill()
	}
	mustMITKinit(t, envAll, "alice-pw", "alice")
	mustMITKinit(t, rs.clientEnv("only-c", c), "bob-pw", "bob")
	_, stderr, code = rs.admin("carol-pw\n", "principal", "add", "carol")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "etcd unreachable") {
		t.Fatalf("admin write with etcd down: exit %d, stderr %q; want exit 1 and one line naming etcd", code, stderr)
	}
	t.Logf("admin write with etcd down: %s", strings.TrimSpace(stderr))
	deadline := time.Now().Add(10 * time.Second)
	for a.healthReport(t)["status"] != "degraded" {
		if time.Now().After(deadline) {
			t.Fatalf("health of %s with etcd down: %v", a.name, a.healthReport(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := a.proc.Output(); !strings.Contains(out, "etcd unreachable; serving logins from memory") {
		t.Errorf("%s logged nothing about the outage:\n%s", a.name, out)
	}
	for _, m := range rs.cluster.Members {
		rs.cluster.Restart(m)
	}
	if err := rs.cluster.WaitHealthy(etcdtest.StartTimeout); err != nil {
		t.Fatal(err)
	}
	rs.mustAdmin("carol-pw\n", "principal", "add", "carol")
	for _, r := range rs.replicas {
		kinitUntil(t, rs.clientEnv("only-"+r.name, r), "carol-pw", "carol")
	}
	for _, r := range rs.replicas {
		if h := r.healthReport(t); h["status"] != "ok" {
			t.Errorf("%s after the outage: %v", r.name, h)
		}
	}
}

// loadGenerator builds the load generator for the replicas: the independent
// ../shared/tools/kdcload (beside the repository, or beside its parent for a
// worktree) when it is there, otherwise the project's own bench/loadgen (the
// same fresh closed-loop AS requests, one worker each), so that the test runs
// on a machine without the shared tools too. args gives the command line that
// drives one replica at addr for window.
func loadGenerator(t *testing.T) (bin string, args func(addr, label string, window time.Duration) []string) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goTool, err := goCommand()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "bench", "loadgen")
	args = func(addr, _ string, window time.Duration) []string {
		return []string{"--kdc", addr, "--realm", replicaRealm, "--user", "load", "--password", "Load-pw-1",
			"--mode", "as", "--conc", "1", "--warmup", "0s", "--duration", window.String(), "--timeout", "500ms"}
	}
	for _, d := range []string{os.Getenv("KERBKIT_SHARED_DIR"), filepath.Join(root, "..", "shared"), filepath.Join(root, "..", "..", "shared")} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "tools", "kdcload", "main.go")); err == nil {
			src = filepath.Join(d, "tools", "kdcload")
			args = func(addr, label string, window time.Duration) []string {
				return []string{"--kdc", addr, "--realm", replicaRealm, "--user", "load", "--password", "Load-pw-1",
					"--mode", "as", "--concurrency", "1", "--duration", window.String(), "--timeout", "500ms", "--label", label}
			}
			break
		}
	}
	bin = filepath.Join(t.TempDir(), filepath.Base(src))
	// shared/ may be read-only: build with the module cache, write only bin.
	if _, stderr, code := RunTimeout(t, 5*time.Minute, append(os.Environ(), "GOFLAGS=-mod=mod"), "", goTool, "-C", src, "build", "-o", bin, "."); code != 0 {
		t.Fatalf("building the load generator %s: %s", src, stderr)
	}
	t.Logf("load generator: %s", src)
	return bin, args
}

var kdcloadResultRE = regexp.MustCompile(`RESULT .*`)

// TestReplicasFailoverUnderLoad: kdcload drives every replica while MIT kinit,
// with a krb5.conf listing all three, logs in again and again; replicas A and
// then B are killed with SIGKILL. Every kinit succeeds (through the next
// replica); the test reports kinit's latency around each kill (the failover
// time) and kdcload's error counts.
func TestReplicasFailoverUnderLoad(t *testing.T) {
	kinit := RequireTool(t, "kinit")
	load, loadArgs := loadGenerator(t)
	rs := newReplicaSet(t, 3)
	rs.mustAdmin("alice-pw\n", "principal", "add", "alice")
	rs.mustAdmin("Load-pw-1\n", "principal", "add", "load")
	envAll := rs.clientEnv("all", rs.replicas...)
	kinitUntil(t, envAll, "alice-pw", "alice")

	const window = 12 * time.Second
	var loads []*Process
	for _, r := range rs.replicas {
		p, err := StartProcess(os.Environ(), load, loadArgs(r.addr, r.name, window)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop(syscall.SIGTERM) })
		loads = append(loads, p)
	}

	type attempt struct {
		at   time.Duration
		took time.Duration
		err  string
	}
	var (
		mu       sync.Mutex
		attempts []attempt
		kills    []time.Duration
	)
	start := time.Now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 500; i++ { // bounded in count and by the window
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			out, err := quietKinit(kinit, envAll, "alice-pw", "alice")
			a := attempt{at: t0.Sub(start), took: time.Since(t0)}
			if err != nil {
				a.err = fmt.Sprintf("%v: %s", err, strings.TrimSpace(out))
			}
			mu.Lock()
			attempts = append(attempts, a)
			mu.Unlock()
		}
	}()
	for i, r := range rs.replicas[:2] {
		time.Sleep(window / 4)
		mu.Lock()
		kills = append(kills, time.Since(start))
		mu.Unlock()
		if err := r.proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill -9 %s (%d of 2) at %v", r.name, i+1, time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(window / 4)
	close(stop)
	<-done

	failed := 0
	var before, after []time.Duration
	for _, a := range attempts {
		if a.err != "" {
			failed++
			t.Errorf("kinit at %v failed: %s", a.at, a.err)
		}
		if a.at < kills[0] {
			before = append(before, a.took)
		} else {
			after = append(after, a.took)
		}
	}
	// The first kinit that started after each kill.
	var firstAfter []string
	for _, k := range kills {
		for _, a := range attempts {
			if a.at >= k {
				firstAfter = append(firstAfter, a.took.Round(time.Millisecond).String())
				break
			}
		}
	}
	t.Logf("FAILOVER kinit attempts=%d failed=%d median_before_kills=%v median_after=%v max_after=%v first_after_each_kill=%v",
		len(attempts), failed, median(before), median(after), maxDur(after), firstAfter)
	for _, p := range loads {
		_, _ = p.Wait(window + 10*time.Second)
		if m := kdcloadResultRE.FindString(p.Output()); m != "" {
			t.Logf("%s", m)
		} else {
			t.Logf("kdcload without RESULT:\n%s", tail(p.Output(), 10))
		}
	}
	if rs.replicas[2].proc.Exited() {
		t.Fatalf("the surviving replica exited:\n%s", rs.replicas[2].proc.Output())
	}
}

// quietKinit runs kinit without logging it (the load loop runs it hundreds
// of times), bounded by CommandTimeout.
func quietKinit(kinit string, env []string, password, principal string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kinit, principal)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}

func maxDur(d []time.Duration) time.Duration {
	var m time.Duration
	for _, x := range d {
		m = max(m, x)
	}
	return m.Round(time.Millisecond)
}
