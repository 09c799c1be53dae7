package walkthrough

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/testenv"
)

// mitScene is a failure story's realm with a krb5.conf and a credential cache for MIT's tools.
type mitScene struct {
	o   RunOptions
	env *realmEnv
	cli []string // the MIT clients' environment
}

func newMITScene(t *testing.T, spec realmSpec, kdcAddr func(*realmEnv) string) *mitScene {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), captureTimeout)
	defer cancel()
	o := RunOptions{TempDir: t.TempDir()}
	o.defaults()
	env, err := startRealm(ctx, o, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	addr := env.kdcAddr
	if kdcAddr != nil {
		addr = kdcAddr(env)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, []byte(testenv.KRB5Conf(o.Realm, addr, testenv.EnvOptions{})), 0o600); err != nil {
		t.Fatal(err)
	}
	return &mitScene{o: o, env: env, cli: testenv.ClientEnviron(map[string]string{
		"KRB5_CONFIG": conf, "KRB5CCNAME": "FILE:" + filepath.Join(dir, "cc"), "KRB5RCACHETYPE": "none"})}
}

func (m *mitScene) kinit(t *testing.T, password string) (string, int) {
	t.Helper()
	_, stderr, code := testenv.Run(t, m.cli, password+"\n", testenv.RequireTool(t, "kinit"), m.o.User)
	return stderr, code
}

// gssClient runs MIT's gss-client against the realm's GSS sample service.
func (m *mitScene) gssClient(t *testing.T) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(m.env.svcAddr)
	stdout, stderr, _ := testenv.Run(t, m.cli, "", testenv.RequireTool(t, "gss-client"), "-port", port, host, "host@localhost", "hi")
	return stdout + stderr
}

// mitLine returns the part of a Failure.MIT line that MIT's tool prints (after "tool, ...: ").
func mitLine(line string) string {
	if i := strings.Index(line, ": GSS-API error"); i >= 0 {
		return line[i+2:]
	}
	return line
}

// TestScenariosMIT checks the failure stories' words for MIT's client tools against the real tools, run in the
// same situation against our KDC and our service (skipped without MIT's tools, unless CI=true): kinit with a
// wrong password, kvno with an expired TGT (its clock moved with faketime), kvno through the proxy that changes
// the TGT, gss-client against a service whose keytab is stale and against one whose clock is fast.
func TestScenariosMIT(t *testing.T) {
	testenv.RequireTool(t, "kinit")
	stories := runScenarios(t)
	t.Run("wrong-password", func(t *testing.T) {
		m := newMITScene(t, realmSpec{}, nil)
		stderr, code := m.kinit(t, mistype(m.o.Password))
		if want := stories["wrong-password"].Failure.MIT[0]; code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("kinit: exit %d %q, the story says %q", code, stderr, want)
		}
	})
	t.Run("expired-tgt", func(t *testing.T) {
		faketime := testenv.RequireTool(t, "faketime")
		m := newMITScene(t, realmSpec{}, nil)
		if stderr, code := m.kinit(t, m.o.Password); code != 0 {
			t.Fatalf("kinit: %d %s", code, stderr)
		}
		_, stderr, _ := testenv.Run(t, m.cli, "", faketime, "+11 hours", testenv.RequireTool(t, "kvno"), m.o.Service)
		want := strings.TrimSuffix(stories["expired-tgt"].Failure.MIT[0], " (kvno too refuses before sending)")
		if !strings.Contains(stderr, want) {
			t.Errorf("kvno 11 hours later: %q, the story says %q", stderr, want)
		}
	})
	t.Run("tampered-ticket", func(t *testing.T) {
		var px *tamperProxy
		m := newMITScene(t, realmSpec{}, func(e *realmEnv) string {
			var err error
			if px, err = startTamperProxy(e.kdcAddr, NewRecorder(Options{})); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(px.close)
			return px.addr
		})
		if stderr, code := m.kinit(t, m.o.Password); code != 0 {
			t.Fatalf("kinit through the proxy (AS-REQs pass unchanged): %d %s", code, stderr)
		}
		_, stderr, _ := testenv.Run(t, m.cli, "", testenv.RequireTool(t, "kvno"), m.o.Service)
		if want := stories["tampered-ticket"].Failure.MIT[0]; !strings.Contains(stderr, want) {
			t.Errorf("kvno with a changed TGT: %q, the story says %q", stderr, want)
		}
	})
	t.Run("stale-keytab", func(t *testing.T) {
		testenv.RequireTool(t, "gss-client")
		m := newMITScene(t, realmSpec{}, nil)
		if _, err := m.env.admin.ChangeKeys(context.Background(), m.o.Service, "", true); err != nil {
			t.Fatal(err)
		}
		if stderr, code := m.kinit(t, m.o.Password); code != 0 {
			t.Fatalf("kinit: %d %s", code, stderr)
		}
		out := m.gssClient(t)
		if want := mitLine(stories["stale-keytab"].Failure.MIT[1]); !strings.Contains(out, want) {
			t.Errorf("gss-client: %q, the story says %q", out, want)
		}
	})
	t.Run("clock-skew", func(t *testing.T) {
		testenv.RequireTool(t, "gss-client")
		fast := func() time.Time { return time.Now().Add(10 * time.Minute) }
		m := newMITScene(t, realmSpec{serviceNow: fast}, nil)
		if stderr, code := m.kinit(t, m.o.Password); code != 0 {
			t.Fatalf("kinit: %d %s", code, stderr)
		}
		out := m.gssClient(t)
		if want := mitLine(stories["clock-skew"].Failure.MIT[1]); !strings.Contains(out, want) {
			t.Errorf("gss-client: %q, the story says %q", out, want)
		}
	})
}
