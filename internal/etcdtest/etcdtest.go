// Package etcdtest runs a real etcd cluster on loopback for tests: Debian's
// etcd-server binary (`etcd` on PATH, or ETCD_BIN), one process per member,
// each on free 127.0.0.1 ports with its data in the test's temporary directory.
// Without the binary a test skips, except when CI=true, where it fails.
package etcdtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// StartTimeout bounds how long a cluster may take to elect a leader.
const StartTimeout = 30 * time.Second

// Member is one etcd process of a Cluster.
type Member struct {
	Name       string
	ClientURL  string // http://127.0.0.1:PORT
	PeerURL    string
	DataDir    string
	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{}
	log        *bytes.Buffer
	extraFlags []string
}

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	Members []*Member
	initial string
	tls     *TLSFiles
}

// Options shape a cluster; the zero value is plain HTTP, no extra flags.
type Options struct {
	// TLS, if set, makes the client URLs https with these files and
	// requires client certificates.
	TLS *TLSFiles
	// Flags are added to every member's command line.
	Flags []string
}

// Binary returns the etcd binary to run, or skips t (fails it on CI).
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		var err error
		bin, err = exec.LookPath("etcd")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("etcdtest: no etcd binary on PATH (apt-get install etcd-server): %v", err)
			}
			t.Skipf("etcdtest: no etcd binary on PATH (apt-get install etcd-server); skipping")
		}
	}
	return bin
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts an n-member cluster and waits until it has a leader. The
// cluster is killed when the test ends.
func Start(t testing.TB, n int, extraFlags ...string) *Cluster {
	t.Helper()
	return StartWith(t, n, Options{Flags: extraFlags})
}

// StartWith is Start with options.
func StartWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	c := &Cluster{t: t, tls: o.TLS}
	scheme := "http://"
	extraFlags := o.Flags
	if o.TLS != nil {
		scheme = "https://"
		extraFlags = append(extraFlags, "--cert-file", o.TLS.ServerCert, "--key-file", o.TLS.ServerKey,
			"--trusted-ca-file", o.TLS.CA, "--client-cert-auth")
	}
	// A free port found now may be taken by another test before etcd binds
	// it: a member that exits at once gets the whole cluster restarted on
	// new ports (bounded).
	for attempt := 0; ; attempt++ {
		c.Members = nil
		var initial []string
		for i := 0; i < n; i++ {
			m := &Member{
				Name:       fmt.Sprintf("m%d", i),
				ClientURL:  fmt.Sprintf("%s127.0.0.1:%d", scheme, FreePort(t)),
				PeerURL:    fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
				DataDir:    filepath.Join(dir, fmt.Sprintf("try%d-m%d", attempt, i)),
				extraFlags: extraFlags,
			}
			c.Members = append(c.Members, m)
			initial = append(initial, m.Name+"="+m.PeerURL)
		}
		c.initial = strings.Join(initial, ",")
		for _, m := range c.Members {
			if err := c.start(bin, m, "new"); err != nil {
				t.Fatal(err)
			}
		}
		members := c.Members
		t.Cleanup(func() {
			for _, m := range members {
				m.Kill()
			}
		})
		err := c.WaitHealthy(StartTimeout)
		if err == nil {
			break
		}
		exited := false
		for _, m := range c.Members {
			exited = exited || !m.Running()
		}
		if !exited || attempt == 2 {
			c.DumpLogs()
			t.Fatal(err)
		}
		t.Logf("etcdtest: a member exited at start (a port taken meanwhile?); starting again on new ports: %v", err)
		for _, m := range c.Members {
			m.Kill()
		}
	}
	return c
}

func (c *Cluster) start(bin string, m *Member, state string) error {
	args := []string{
		"--name", m.Name, "--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "kerbkit-test",
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--logger", "zap", "--log-level", "warn",
	}
	args = append(args, m.extraFlags...)
	cmd := exec.Command(bin, args...)
	m.log = &bytes.Buffer{}
	cmd.Stdout = &lockedWriter{w: m.log, mu: &m.mu}
	cmd.Stderr = cmd.Stdout
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	return nil
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		return len(p), nil // bounded
	}
	return l.w.Write(p)
}

// Kill sends SIGKILL to the member and waits for it to exit.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Restart starts a killed member again on its data directory.
func (c *Cluster) Restart(m *Member) {
	c.t.Helper()
	if m.Running() {
		c.t.Fatalf("etcdtest: %s is running", m.Name)
	}
	if err := c.start(Binary(c.t), m, "existing"); err != nil {
		c.t.Fatal(err)
	}
}

func (m *Member) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(m.ClientURL, "http://"), "https://")
}

// Endpoints lists the client addresses (HOST:PORT) of every member.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.hostPort())
	}
	return out
}

// URL returns the kerbkit database argument etcd://H:P,H:P/prefix for the
// cluster.
func (c *Cluster) URL(prefix string) string {
	return "etcd://" + strings.Join(c.Endpoints(), ",") + "/" + strings.TrimPrefix(prefix, "/")
}

// Client returns a client of the running members, closed at the end of the test.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	return c.ClientAs("", "")
}

// ClientAs is Client with etcd's user and password authentication.
func (c *Cluster) ClientAs(user, password string) *clientv3.Client {
	c.t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: c.tls.clientTLS(), Username: user, Password: password})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// status returns the member's view of the leader (member ID) and its own ID.
func (m *Member) status(ctx context.Context, tc *tls.Config) (self, leader uint64, err error) {
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{m.hostPort()}, DialTimeout: time.Second, Logger: zap.NewNop(), TLS: tc})
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := cl.Status(ctx, m.hostPort())
	if err != nil {
		return 0, 0, err
	}
	return st.Header.MemberId, st.Leader, nil
}

// Leader returns the member that leads, waiting up to timeout for one.
func (c *Cluster) Leader(timeout time.Duration) (*Member, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ids := map[uint64]*Member{}
		var leader uint64
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			self, l, err := m.status(context.Background(), c.tls.clientTLS())
			if err != nil {
				continue
			}
			ids[self] = m
			if l != 0 {
				leader = l
			}
		}
		if m, ok := ids[leader]; ok && leader != 0 {
			return m, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("etcdtest: no leader within %v", timeout)
}

// WaitHealthy waits until a linearizable read succeeds through every running member.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		ep := m.hostPort()
		for {
			err := func() error {
				cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second, Logger: zap.NewNop(), TLS: c.tls.clientTLS()})
				if err != nil {
					return err
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err = cl.Get(ctx, "health")
				return err
			}()
			if err == nil {
				break
			}
			if !m.Running() {
				return fmt.Errorf("etcdtest: %s exited: %w", m.Name, err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcdtest: %s not healthy within %v: %w", m.Name, timeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// DumpLogs writes every member's output to the test log.
func (c *Cluster) DumpLogs() {
	for _, m := range c.Members {
		m.mu.Lock()
		c.t.Logf("etcd %s:\n%s", m.Name, m.log.String())
		m.mu.Unlock()
	}
}
