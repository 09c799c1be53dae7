// Package realmtest shows how a Go project outside kerbkit tests its Kerberos
// code against throw-away realms: it imports only the documented test API,
// github.com/kerbkit/kerbkit/kerbkittest, next to gokrb5 and the standard
// library. Its one test runs many realms at once, in parallel, each with a
// user and an HTTP service, and logs in to each with gokrb5 and with MIT's
// kinit.
package realmtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/goidentity/v6"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/kerbkit/kerbkit/kerbkittest"
)

// realms is how many realms run at once.
const realms = 32

// commandTimeout bounds every MIT command.
const commandTimeout = 60 * time.Second

// gatherTimeout bounds the wait for every realm to be up at once.
const gatherTimeout = 3 * time.Minute

// TestParallelRealms starts the realms in parallel subtests. In each one, a
// gokrb5 client logs in as alice and authenticates to an HTTP service that
// uses gokrb5's SPNEGO handler with the keytab the realm exported; MIT kinit
// logs alice in too, and MIT kvno verifies her service ticket with the same
// keytab.
//
// With -parallel 32 (or more) every realm is up before any logs in, so all 32
// serve at the same moment, each on its own port; with go test's default
// (-parallel GOMAXPROCS) they take turns.
func TestParallelRealms(t *testing.T) {
	kinit, kvno := mitTool(t, "kinit"), mitTool(t, "kvno")
	together := parallelism() >= realms
	var (
		mu    sync.Mutex
		addrs = map[string]string{} // KDC address -> realm
		up    = make(chan struct{}) // closed once every realm is up (together only)
	)
	t.Run("all", func(t *testing.T) {
		for i := range realms {
			t.Run(fmt.Sprintf("realm%02d", i), func(t *testing.T) {
				t.Parallel()
				name := fmt.Sprintf("R%02d.TEST", i)
				password := fmt.Sprintf("alice-pw-%d", i)
				realm := kerbkittest.New(t, kerbkittest.Options{Realm: name})
				alice := realm.AddUser("alice", password)
				ktPath := realm.AddService("HTTP/localhost")

				mu.Lock()
				if other, ok := addrs[realm.KDCAddr]; ok {
					t.Errorf("%s and %s share the KDC address %s", name, other, realm.KDCAddr)
				}
				addrs[realm.KDCAddr] = name
				if len(addrs) == realms {
					close(up)
				}
				mu.Unlock()
				if together {
					select {
					case <-up:
					case <-time.After(gatherTimeout):
						t.Fatalf("not all %d realms were up within %v", realms, gatherTimeout)
					}
				}

				t.Run("gokrb5", func(t *testing.T) { gokrb5Login(t, realm, ktPath, alice) })
				t.Run("MIT kinit", func(t *testing.T) { mitLogin(t, realm, kinit, kvno, ktPath, password) })
			})
		}
	})
	if len(addrs) != realms {
		t.Errorf("%d realms came up, want %d", len(addrs), realms)
	}
	if together {
		t.Logf("%d realms served at the same time, on %d ports", realms, len(addrs))
	}
}

// parallelism is go test's -parallel value.
func parallelism() int {
	if f := flag.Lookup("test.parallel"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if n, ok := g.Get().(int); ok {
				return n
			}
		}
	}
	return 1
}

// gokrb5Login authenticates alice to a gokrb5 SPNEGO service over HTTP.
func gokrb5Login(t *testing.T, realm *kerbkittest.Realm, ktPath, alice string) {
	kt, err := keytab.Load(ktPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(spnego.SPNEGOKRB5Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := goidentity.FromHTTPRequestContext(r)
		if id == nil {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello %s@%s", id.UserName(), id.Domain())
	}), kt))
	defer srv.Close()

	cl := realm.GoKRB5Client("alice")
	resp, err := spnego.NewClient(cl, nil, "HTTP/localhost").Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "hello "+alice {
		t.Errorf("GET %s: %d %q, want 200 %q", srv.URL, resp.StatusCode, body, "hello "+alice)
	}
}

// mitLogin runs MIT kinit and kvno -k against the realm.
func mitLogin(t *testing.T, realm *kerbkittest.Realm, kinit, kvno, ktPath, password string) {
	ccache := filepath.Join(t.TempDir(), "ccache")
	env := append(realm.Environ(ccache), "LC_ALL=C")
	run(t, env, password+"\n", kinit, "alice")
	cc, err := credentials.LoadCCache(ccache)
	if err != nil {
		t.Fatalf("kinit wrote no cache gokrb5 can read: %v", err)
	}
	if got := cc.DefaultPrincipal.PrincipalName.PrincipalNameString() + "@" + cc.DefaultPrincipal.Realm; got != realm.Principal("alice") {
		t.Errorf("kinit cache principal %s", got)
	}
	out := run(t, env, "", kvno, "-k", ktPath, "HTTP/localhost")
	if want := "HTTP/localhost@" + realm.Name + ": kvno = 1, keytab entry valid\n"; out != want {
		t.Errorf("kvno -k: %q, want %q", out, want)
	}
}

// run runs an MIT command with env and stdin, bounded by commandTimeout, and
// returns its standard output; a failure fails the test.
func run(t *testing.T, env []string, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// mitTool finds an MIT client tool. Without it the test is skipped, except on
// CI (CI=true), where a missing peer is a failure.
func mitTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s is missing (Debian: apt-get install krb5-user): %v", name, err)
	}
	t.Skipf("%s not found (Debian: apt-get install krb5-user): %v", name, err)
	return ""
}
