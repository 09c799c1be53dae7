package walkthrough

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/service"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// TestExplainMIT explains a login, a service ticket and an authenticated request against a real MIT krb5kdc
// (skipped when MIT's tools are missing, unless CI=true): the client view opens the timestamp, A, D, F, G and
// H, shows B and E sealed, and decodes what MIT sends that our KDC does not (FAST and cookie padata).
func TestExplainMIT(t *testing.T) {
	m := testenv.NewMITRealm(t, testenv.MITRealmOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	user, _ := client.ParsePrincipal(testenv.UserName, m.Name)
	svc, _ := client.ParsePrincipal("host/localhost", m.Name)
	c, err := client.New(&client.Config{Realm: m.Name, KDCs: map[string][]string{m.Name: {m.Addr}}})
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	as, login := explainLogin(ctx, t, c, user, testenv.UserPassword, &out)
	for _, s := range login.Steps {
		for _, c := range s.Checks {
			if c.Result == CheckFail && s.ID != "as-req-1" {
				t.Errorf("%s: failed check against MIT: %s", s.ID, c.Text)
			}
		}
	}
	flat := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{"PA-FX-FAST (136)", "PA-FX-COOKIE (133)", "sealed for krbtgt/MIT.TEST@MIT.TEST: the client cannot read this"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the MIT login explanation lacks %q", want)
		}
	}
	noSecrets(t, out.String(), testenv.UserPassword, as.Credential.Key.KeyValue)
	t.Logf("login --explain against MIT krb5kdc, first lines:\n%s", firstLines(out.String(), 20))
	if p := os.Getenv("WT_DUMP"); p != "" {
		os.WriteFile(p, out.Bytes(), 0o644)
	}

	out.Reset()
	tgs, _ := explainTGS(ctx, t, c, as, svc, &out)

	// The service: our acceptor with the keytab MIT's kadmin extracted.
	if m.Keytab == "" {
		t.Fatal("the MIT realm wrote no service keytab")
	}
	kt, err := service.LoadKeytab(m.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	acc, err := service.NewAcceptor(kt, service.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&service.SampleServer{Acceptor: acc, Logger: quiet}).Serve(sctx, ln) }()
	defer func() { stop(); <-done }()

	out.Reset()
	ex := NewExplainer(&out, ExplainOptions{Credentials: []ticket.Credential{as.Credential, tgs.Credential}})
	ap, err := client.NewAPRequest(tgs.Credential, client.APOptions{}) // one clock: see run.go on KDCOffset
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.GSSSample(ctx, ex.Conn(conn), ap, client.GSSSampleOptions{Message: []byte("hello MIT ticket")})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	ex.Close()
	rq := ex.Story()
	wantSteps(t, rq, "ap-req", "ap-rep", "wrap", "mic")
	wantPart(t, rq, "ap-req", "E", false)
	wantPart(t, rq, "ap-req", "G", true)
	wantPart(t, rq, "ap-rep", "H", true)
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
