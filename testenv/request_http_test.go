package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/ticket"
)

// `kclient request --http` (HTTP Negotiate, RFC 4559) against Apache httpd with
// mod_auth_gssapi, a real SPNEGO acceptor, and against fake servers that answer
// 200 without a valid mutual-authentication token.

// Apache paths on Debian (apache2, libapache2-mod-auth-gssapi).
const (
	apacheModules   = "/usr/lib/apache2/modules"
	apachePackages  = "apache2 libapache2-mod-auth-gssapi"
	apacheStartWait = 20 * time.Second
)

// apache is a private httpd serving one Negotiate-protected directory on
// 127.0.0.1.
type apache struct {
	Port int
	Dir  string
	proc *Process
}

// startApache runs `apache2 -f CONF -DFOREGROUND` on a free 127.0.0.1 port with
// mod_auth_gssapi and a copy of keytab (interop-peers.md §4). The workers run
// as www-data when we are root, so the directory is world-traversable and the
// keytab copy world-readable. Apache is stopped by PID in t.Cleanup.
func startApache(t *testing.T, env []string, keytab string) *apache {
	t.Helper()
	bin, err := LookTool("apache2")
	if err != nil {
		unavailable(t, "apache2 not found (install the Debian packages: apt-get install -y --no-install-recommends %s): %v", apachePackages, err)
	}
	for _, m := range []string{"mod_mpm_event.so", "mod_authn_core.so", "mod_authz_core.so", "mod_authz_user.so", "mod_auth_gssapi.so"} {
		if _, err := os.Stat(filepath.Join(apacheModules, m)); err != nil {
			unavailable(t, "Apache module %s missing (install the Debian packages: apt-get install -y --no-install-recommends %s): %v", m, apachePackages, err)
		}
	}
	// t.TempDir() is 0700 under a 0700 parent: make our own world-traversable one.
	dir, err := os.MkdirTemp("", "kerbkit-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{dir, filepath.Join(dir, "htdocs"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "htdocs", "index.txt"), []byte("hello negotiate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kt, err := os.ReadFile(keytab)
	if err != nil {
		t.Fatal(err)
	}
	ktCopy := filepath.Join(dir, "http.keytab")
	if err := os.WriteFile(ktCopy, kt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ktCopy, 0o644); err != nil {
		t.Fatal(err)
	}

	// The workers read krb5.conf too, and the client's is under a 0700 directory.
	conf, err := os.ReadFile(EnvValue(env, "KRB5_CONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	krb5Conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(krb5Conf, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	env = WithEnv(WithEnv(env, "KRB5_CONFIG", krb5Conf), "KRB5RCACHETYPE", "none")
	env = WithEnv(env, "KRB5_TRACE", filepath.Join(dir, "logs", "krb5.trace"))

	a := &apache{Dir: dir}
	for attempt := 1; ; attempt++ {
		a.Port, err = FreePort()
		if err != nil {
			t.Fatal(err)
		}
		conf := apacheConf(dir, fmt.Sprintf("127.0.0.1:%d", a.Port), "localhost", ktCopy)
		confPath := filepath.Join(dir, "httpd.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := StartProcess(env, bin, "-f", confPath, "-DFOREGROUND")
		if err != nil {
			t.Fatal(err)
		}
		a.proc = p
		if err = a.waitListening(); err == nil {
			break
		}
		_ = p.Stop(syscall.SIGTERM)
		if attempt == 3 {
			t.Fatalf("apache2: %v\n%s\n%s", err, p.Output(), readFile(filepath.Join(dir, "logs", "error.log")))
		}
		t.Logf("apache2 on port %d: %v; retrying on another port", a.Port, err)
	}
	t.Cleanup(func() {
		if err := a.proc.Stop(syscall.SIGTERM); err != nil {
			t.Logf("apache2 (pid %d) stop: %s", a.proc.PID(), describeExit(err))
		}
		if t.Failed() {
			t.Logf("---- apache error.log ----\n%s\n---- access.log ----\n%s\n---- KRB5_TRACE ----\n%s", tail(a.ErrorLog(), 12000),
				a.AccessLog(), tail(readFile(filepath.Join(a.Dir, "logs", "krb5.trace")), 8000))
		}
	})
	t.Logf("apache2 (pid %d) with mod_auth_gssapi on 127.0.0.1:%d", a.proc.PID(), a.Port)
	return a
}

// apacheConf is an httpd.conf for Apache with mod_auth_gssapi (interop-peers.md
// §4) rooted at dir (htdocs/ and logs/ inside), listening on listen as
// serverName, whose htdocs need Negotiate with the keys in keytab. The workers
// run as www-data.
func apacheConf(dir, listen, serverName, keytab string) string {
	return fmt.Sprintf(`ServerRoot "%[1]s"
PidFile %[1]s/httpd.pid
DefaultRuntimeDir %[1]s/logs
Listen %[2]s
ServerName %[5]s
User www-data
Group www-data
LoadModule mpm_event_module %[3]s/mod_mpm_event.so
LoadModule authn_core_module %[3]s/mod_authn_core.so
LoadModule authz_core_module %[3]s/mod_authz_core.so
LoadModule authz_user_module %[3]s/mod_authz_user.so
LoadModule auth_gssapi_module %[3]s/mod_auth_gssapi.so
ErrorLog %[1]s/logs/error.log
LogLevel info auth_gssapi:debug
LogFormat "%%h %%u \"%%r\" %%>s" simple
CustomLog %[1]s/logs/access.log simple
DocumentRoot %[1]s/htdocs
<Directory %[1]s/htdocs>
    AuthType GSSAPI
    AuthName "GSSAPI test"
    GssapiCredStore keytab:%[4]s
    GssapiAllowedMech krb5
    Require valid-user
</Directory>
`, dir, listen, apacheModules, keytab, serverName)
}

// waitListening waits until Apache accepts connections or exits.
func (a *apache) waitListening() error {
	deadline := time.Now().Add(apacheStartWait)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	for {
		if a.proc.Exited() {
			return fmt.Errorf("apache2 (pid %d) exited: %s", a.proc.PID(), describeExit(a.proc.waitErr))
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apache2 not answering on %s after %v", addr, apacheStartWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL returns http://localhost:PORT/path: the host name gives HTTP/localhost.
func (a *apache) URL(path string) string { return fmt.Sprintf("http://localhost:%d/%s", a.Port, path) }

// AccessLog and ErrorLog return Apache's logs so far.
func (a *apache) AccessLog() string { return readFile(filepath.Join(a.Dir, "logs", "access.log")) }
func (a *apache) ErrorLog() string  { return readFile(filepath.Join(a.Dir, "logs", "error.log")) }

// waitAccess waits up to 10s for the access log to contain sub (Apache writes
// it after the response).
func (a *apache) waitAccess(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.AccessLog(), sub) {
		if time.Now().After(deadline) {
			t.Errorf("apache access.log does not contain %q:\n%s", sub, a.AccessLog())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKclientRequestApache: HTTP/localhost tickets from our KDC, Apache
// mod_auth_gssapi (MIT GSS inside) accepts them and answers with its AP-REP in
// "WWW-Authenticate: Negotiate", which our client verifies.
func TestKclientRequestApache(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	keytab := filepath.Join(t.TempDir(), "http.keytab")
	r.ExportKeytab(t, keytab, "HTTP/localhost")
	a := startApache(t, env, keytab)
	alice, httpSvc := r.Principal(UserName), r.Principal("HTTP/localhost")

	t.Run("challenge", func(t *testing.T) {
		out := kclientRequestOK(t, env, alice, httpSvc, "--http", a.URL("index.txt"))
		wantContains(t, "kclient request output", out, "fetched from the KDC",
			"HTTP 200 from "+a.URL("index.txt")+" (Authorization sent after a 401 Negotiate challenge)",
			"final token: SPNEGO NegTokenResp accept-completed (krb5 1.2.840.113554.1.2.2)",
			"response body: 16 bytes")
		a.waitAccess(t, alice+` "GET /index.txt HTTP/1.1" 200`)
	})
	t.Run("preemptive", func(t *testing.T) {
		out := kclientRequestOK(t, env, alice, httpSvc, "--http", a.URL("index.txt"), "--preemptive")
		wantContains(t, "kclient request output", out, "from FILE:"+CCachePath(env), "(Authorization sent on the first request)")
	})
	t.Run("not-found", func(t *testing.T) {
		_, stderr, code := kclientRun(t, env, "", "request", "--http", a.URL("missing.txt"))
		if code != 1 || !strings.Contains(stderr, "404") {
			t.Errorf("exit %d, stderr %q; want 1 and the 404", code, stderr)
		}
	})
}

// fakeNegotiate is an HTTP server that challenges with Negotiate and then
// answers 200 with whatever final header final returns ("" for none): the
// server never proves anything, and our client must notice although curl
// does not (interop-peers.md §4).
func fakeNegotiate(t *testing.T, final func() string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.Header.Get("Authorization"), "Negotiate ") {
			w.Header().Set("WWW-Authenticate", "Negotiate")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if h := final(); h != "" {
			w.Header().Set("WWW-Authenticate", h)
		}
		fmt.Fprintln(w, "hello from an impostor")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// forgedAPRep is a well-formed NegTokenResp (accept-completed, krb5) around an
// AP-REP sealed in a key the impostor made up.
func forgedAPRep(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	rep, err := ticket.BuildAPRep(ticket.APRepPart{CTime: time.Now(), Cusec: 1, SeqNumber: 7, HasSeq: true},
		types.EncryptionKey{KeyType: 18, KeyValue: k})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: ticket.NegStateAcceptCompleted,
		SupportedMech: asn1.ObjectIdentifier(ticket.OIDKRB5), ResponseToken: ticket.FrameKRB5Token(ticket.TokIDAPRep, rep)})
	if err != nil {
		t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(tok)
}

// TestKclientRequestHTTPImpostor: 200 with no final token, a garbage one or a
// forged AP-REP must all fail, with one clear line.
func TestKclientRequestHTTPImpostor(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	mustKclient(t, env, UserPassword+"\n", "login", UserName)
	for _, tc := range []struct {
		name  string
		final func() string
		want  string
	}{
		{"missing", func() string { return "" }, `carries no "WWW-Authenticate: Negotiate <token>"`},
		{"garbage", func() string { return "Negotiate AAAA" }, "server did not prove its identity"},
		{"not-base64", func() string { return "Negotiate !!!" }, "not base64"},
		{"forged", func() string { return forgedAPRep(t) }, "AP-REP does not decrypt with the ticket session key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeNegotiate(t, tc.final)
			url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/index.txt"
			_, stderr, code := kclientRun(t, env, "", "request", "--http", url)
			if code != 3 { // authentication failure: the server did not prove itself
				t.Fatalf("kclient request --http against an impostor: exit %d, want 3", code)
			}
			line := strings.TrimSpace(stderr)
			if strings.Contains(line, "\n") || !strings.HasPrefix(line, "kclient: server did not prove its identity: ") {
				t.Errorf("stderr %q: want one line starting %q", stderr, "kclient: server did not prove its identity: ")
			}
			wantContains(t, "kclient stderr", line, tc.want)
		})
	}
}
