package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// `kclient request` (messages G and H) against MIT's gss-server, the acceptor of
// krb5-gss-samples, with tickets from our KDC and from a real MIT KDC.

// gssLauncher is a loopback inetd for `gss-server -inetd`: gss-server -port
// binds INADDR_ANY, so instead we accept on 127.0.0.1 and hand each connection
// to a fresh gss-server as its fd 0 (interop-peers.md §3).
type gssLauncher struct {
	Addr    string // 127.0.0.1:PORT
	LogFile string // gss-server -logfile

	ln   *net.TCPListener
	done chan struct{}

	mu      sync.Mutex
	running *exec.Cmd
	served  int
}

// Bounds of the launcher.
const (
	gssServerMaxConns = 20               // connections served before the listener closes
	gssServerIdle     = 3 * time.Minute  // the listener closes after this long without a connection
	gssServerRunLimit = 30 * time.Second // one gss-server is killed after this long
)

// startGSSServer starts the launcher for `gss-server -inetd -keytab KEYTAB
// -logfile LOG SERVICE` in env (KRB5RCACHETYPE=none is added). Everything is
// stopped by PID in t.Cleanup.
func startGSSServer(t *testing.T, env []string, keytab, service string) *gssLauncher {
	t.Helper()
	gssServer := RequireTool(t, "gss-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gssLauncher{
		Addr:    l.Addr().String(),
		LogFile: filepath.Join(t.TempDir(), "gss-server.log"),
		ln:      l.(*net.TCPListener),
		done:    make(chan struct{}),
	}
	env = WithEnv(env, "KRB5RCACHETYPE", "none")
	env = WithEnv(env, "KRB5_TRACE", g.LogFile+".trace")
	args := []string{"-inetd", "-keytab", keytab, "-logfile", g.LogFile, service}
	go g.serve(t, env, gssServer, args)
	t.Cleanup(func() {
		g.ln.Close()
		g.mu.Lock()
		if g.running != nil && g.running.Process != nil {
			_ = killGroup(g.running.Process.Pid)
		}
		g.mu.Unlock()
		select {
		case <-g.done:
		case <-time.After(StopGrace):
			t.Errorf("gss-server launcher did not stop within %v", StopGrace)
		}
		if t.Failed() {
			t.Logf("---- gss-server log ----\n%s\n%s", tail(readFile(g.LogFile), 12000), tail(readFile(g.LogFile+".trace"), 12000))
		}
	})
	t.Logf("gss-server -inetd launcher on %s: %s %s", g.Addr, gssServer, strings.Join(args, " "))
	return g
}

// serve accepts connections one at a time and runs gss-server on each.
func (g *gssLauncher) serve(t *testing.T, env []string, gssServer string, args []string) {
	defer close(g.done)
	for i := 0; i < gssServerMaxConns; i++ {
		_ = g.ln.SetDeadline(time.Now().Add(gssServerIdle))
		conn, err := g.ln.AcceptTCP()
		if err != nil {
			return
		}
		f, err := conn.File() // a dup of the socket, blocking, for the child's fd 0
		conn.Close()
		if err != nil {
			t.Logf("gss-server launcher: %v", err)
			continue
		}
		cmd := exec.Command(gssServer, args...)
		cmd.Env = env
		cmd.Stdin = f
		cmd.SysProcAttr = childAttr(true)
		err = cmd.Start()
		f.Close()
		if err != nil {
			t.Logf("gss-server launcher: start: %v", err)
			continue
		}
		g.mu.Lock()
		g.running = cmd
		g.served++
		g.mu.Unlock()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err = <-exited:
		case <-time.After(gssServerRunLimit):
			_ = killGroup(cmd.Process.Pid)
			err = fmt.Errorf("killed after %v: %v", gssServerRunLimit, <-exited)
		}
		g.mu.Lock()
		g.running = nil
		g.mu.Unlock()
		if err != nil {
			t.Logf("gss-server (pid %d): %s", cmd.Process.Pid, describeExit(err))
		}
	}
}

// Log returns gss-server's log so far.
func (g *gssLauncher) Log() string { return readFile(g.LogFile) }

// waitLog waits up to 10s for gss-server's log to contain sub (the child may
// still be writing when the client has finished).
func (g *gssLauncher) waitLog(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.Log(), sub) {
		if time.Now().After(deadline) {
			t.Errorf("gss-server log does not contain %q:\n%s", sub, g.Log())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kclientRequestOK runs `kclient request ARGS...`, requires exit 0, and checks the
// lines that say what was proven.
func kclientRequestOK(t *testing.T, env []string, client, server string, args ...string) string {
	t.Helper()
	out := mustKclient(t, env, "", append([]string{"request"}, args...)...)
	wantContains(t, "kclient request output", out,
		"authenticated as "+client+" to "+server+" (mutual: server proved it holds the service key)",
		"matches our authenticator")
	return out
}

// TestKclientRequestGSSServerOurKDC: tickets from our KDC, AP-REQ from our
// client, MIT gss-server (with the keytab from `kdc keytab`) verifies it and
// answers with its AP-REP, which our client verifies; then a sealed message and
// the server's MIC.
func TestKclientRequestGSSServerOurKDC(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	// A keytab exported separately for the acceptor, as the brief's flow does.
	keytab := filepath.Join(t.TempDir(), "host.keytab")
	r.ExportKeytab(t, keytab, "host/localhost")
	g := startGSSServer(t, env, keytab, "host@localhost")
	alice, host := r.Principal(UserName), r.Principal("host/localhost")

	t.Run("krb5", func(t *testing.T) {
		out := kclientRequestOK(t, env, alice, host, "host/localhost", "--addr", g.Addr, "--message", "hello from kerbkit")
		wantContains(t, "kclient request output", out,
			"fetched from the KDC (TGS exchange) and added to FILE:"+CCachePath(env),
			"acceptor subkey aes", `sent wrapped message "hello from kerbkit" (sealed); server MIC verified`)
		g.waitLog(t, `Received message: "hello from kerbkit"`)
		// MIT klist reads the service ticket we added to the cache.
		if mitKlist(t, env).Ticket(host) == nil {
			t.Errorf("klist: no %s in the cache after kclient request", host)
		}
	})
	t.Run("spnego-hostbased", func(t *testing.T) {
		out := kclientRequestOK(t, env, alice, host, "host@localhost", "--spnego", "--addr", g.Addr, "--message", "hello via spnego")
		wantContains(t, "kclient request output", out, "from FILE:"+CCachePath(env),
			"SPNEGO: negState accept-completed, mechanism krb5 1.2.840.113554.1.2.2", "server MIC verified")
		g.waitLog(t, `Received message: "hello via spnego"`)
	})
	t.Run("no-message", func(t *testing.T) {
		out := kclientRequestOK(t, env, alice, host, "host/localhost", "--addr", g.Addr, "--no-message")
		if strings.Contains(out, "sent wrapped message") {
			t.Errorf("--no-message sent a message:\n%s", out)
		}
	})
	t.Run("wrong-service-key", func(t *testing.T) {
		// A fresh key for host/localhost in a second realm: the acceptor cannot decrypt our ticket.
		r2 := NewRealm(t, RealmOptions{Name: r.Name})
		g2 := startGSSServer(t, env, r2.Keytab, "host@localhost")
		_, stderr, code := kclientRun(t, env, "", "request", "host/localhost", "--addr", g2.Addr, "--timeout", "20s")
		if code != 3 { // authentication failure (cmd/kclient's exit codes)
			t.Fatalf("kclient request against an acceptor with the wrong key: exit %d, want 3", code)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "kclient: ") {
			t.Errorf("want one kclient: line on stderr, got %q", stderr)
		}
		wantContains(t, "kclient request stderr", stderr, "server host/localhost@"+r.Name+" rejected our authentication: Decrypt integrity check failed")
	})
}

// TestKclientRequestGSSServerMITKDC: the same against a real MIT KDC and its
// ktadd keytab; once with a service ticket MIT kvno put in the cache, once with
// one our client fetches.
func TestKclientRequestGSSServerMITKDC(t *testing.T) {
	m := NewMITRealm(t, MITRealmOptions{})
	alice, host := m.Principal(UserName), m.Principal("host/localhost")
	g := startGSSServer(t, m.Env(EnvOptions{}), m.Keytab, "host@localhost")

	t.Run("kvno-ticket", func(t *testing.T) {
		env := m.Env(EnvOptions{})
		mustMITKinit(t, env, UserPassword, UserName)
		kvno := RequireTool(t, "kvno")
		if _, stderr, code := Run(t, env, "", kvno, "host/localhost"); code != 0 {
			t.Fatalf("kvno host/localhost: exit %d: %s", code, stderr)
		}
		out := kclientRequestOK(t, env, alice, host, "host/localhost", "--addr", g.Addr, "--message", "ticket from MIT kvno")
		wantContains(t, "kclient request output", out, "from FILE:"+CCachePath(env), "server MIC verified")
		g.waitLog(t, `Received message: "ticket from MIT kvno"`)
	})
	t.Run("fetched", func(t *testing.T) {
		env := m.Env(EnvOptions{})
		mustKclient(t, env, UserPassword+"\n", "login", UserName)
		out := kclientRequestOK(t, env, alice, host, "host@localhost", "--spnego", "--addr", g.Addr, "--message", "ticket from kclient")
		wantContains(t, "kclient request output", out, "fetched from the KDC", "server MIC verified")
		g.waitLog(t, `Received message: "ticket from kclient"`)
	})
}

// TestKclientRequestNoServer: a closed port fails with one line, quickly.
func TestKclientRequestNoServer(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, stderr, code := kclientRun(t, env, "", "request", "host/localhost", "--addr", addr)
	if code != 1 || !strings.Contains(stderr, "connect to "+addr) {
		t.Errorf("exit %d, stderr %q; want 1 and a connect error", code, stderr)
	}
	if _, err := os.Stat(CCachePath(env)); errors.Is(err, os.ErrNotExist) {
		t.Error("the cache vanished")
	}
}
