package kerbkittest_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/kerbkit/kerbkit/kerbkittest"
	"github.com/kerbkit/kerbkit/service"
)

// An HTTP service protected by SPNEGO (HTTP Negotiate, RFC 4559), tested with a
// gokrb5 client. In a test, use kerbkittest.New(t, ...) instead of Start.
func Example_httpSPNEGOService() {
	realm, err := kerbkittest.Start("", kerbkittest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer realm.Close()
	realm.AddUser("alice", "alice-password")
	keytab := realm.AddService("HTTP/localhost")

	// The service under test reads its keytab like any Kerberos service.
	kt, err := service.LoadKeytab(keytab)
	if err != nil {
		log.Fatal(err)
	}
	acceptor, err := service.NewAcceptor(kt, service.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(service.Negotiate(acceptor, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := service.FromRequest(r)
		fmt.Fprintf(w, "hello %s", c.Client)
	})))
	defer srv.Close()

	// The client side: gokrb5's SPNEGO client, logged in as alice.
	cl := realm.GoKRB5Client("alice")
	defer cl.Destroy()
	resp, err := spnego.NewClient(cl, nil, "HTTP/localhost").Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello alice@KERBKIT.TEST
}

// A program that uses gokrb5: a logged-in client, a service ticket, and a
// credential cache written by kerbkit's client read back by gokrb5.
func Example_goKRB5Client() {
	realm, err := kerbkittest.Start("", kerbkittest.Options{Realm: "EXAMPLE.TEST"})
	if err != nil {
		log.Fatal(err)
	}
	defer realm.Close()
	realm.AddUser("alice", "alice-password")
	realm.AddService("host/localhost")

	cl := realm.GoKRB5Client("alice")
	defer cl.Destroy()
	tkt, _, err := cl.GetServiceTicket("host/localhost")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("service ticket for", tkt.SName.PrincipalNameString(), "in", tkt.Realm)

	cc, err := credentials.LoadCCache(realm.Login("alice"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cache of", cc.DefaultPrincipal.PrincipalName.PrincipalNameString(), "for", cc.DefaultPrincipal.Realm)
	// Output:
	// service ticket for host/localhost in EXAMPLE.TEST
	// cache of alice for EXAMPLE.TEST
}

// kinit runs MIT kinit for user, the password on its standard input, with the
// environment env: the code under test of the next example.
func kinit(ctx context.Context, env []string, user, password string) error {
	cmd := exec.CommandContext(ctx, "kinit", user)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kinit: %v: %s", err, out)
	}
	return nil
}

// A program that shells out to MIT kinit: hand it the realm's krb5.conf and a
// credential cache of its own through the child's environment (Environ); the
// test process's environment stays as it is. It needs MIT's kinit installed
// (Debian: krb5-user), so this example is not run by go test.
func Example_mitKinit() {
	realm, err := kerbkittest.Start("", kerbkittest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer realm.Close()
	realm.AddUser("alice", "alice-password")

	ccache := filepath.Join(realm.Dir, "kinit.ccache")
	if err := kinit(context.Background(), realm.Environ(ccache), "alice", "alice-password"); err != nil {
		log.Fatal(err)
	}
	cc, err := credentials.LoadCCache(ccache)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cc.DefaultPrincipal.PrincipalName.PrincipalNameString())
}
