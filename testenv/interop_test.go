package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interop matrix: real peers × KDC × transport × enctype, one row each,
// written once against an interopSite and run on two sites: "native" (peers
// installed on this host, everything on 127.0.0.1 and localhost) and "docker"
// (peers in containers on a user-defined network, with host names that only
// the network's DNS knows). Both sites give the same rows.
//
// `go run ./testenv/cmd/interop [--docker]` runs TestInteropMatrix and prints
// the table; with $KERBKIT_INTEROP_REPORT set each row appends its result as
// one JSON line to that file, with the peer's own error and KRB5_TRACE when it
// failed.

// interopSite is where the matrix runs.
type interopSite interface {
	// Realms starts our KDC and an MIT krb5kdc, each with its users (password
	// UserPassword), services and acceptors, for the whole matrix (cleaned up
	// with t).
	Realms(t *testing.T, ourUsers, mitUsers []string) (ours, mit *siteRealm)
	// Client returns a fresh client of realm r: its own krb5.conf from o, its
	// own credential cache and KRB5_TRACE.
	Client(t *testing.T, r *siteRealm, o EnvOptions) siteClient
}

// siteRealm is a running realm of a site.
type siteRealm struct {
	Kind    string   // "kerbkit" or "MIT"
	Name    string   // realm name
	KDC     string   // HOST:PORT clients are configured with
	Domains []string // [domain_realm] entries for the realm's hosts
	// Acceptors, nil where the realm has none.
	KService  *siteService // our sample service: GSS sample protocol and HTTP Negotiate
	GSSServer *siteService // MIT gss-server
	Apache    *siteService // Apache httpd with mod_auth_gssapi
	// Log returns the KDC's log so far.
	Log func() string
}

// siteService is an acceptor with keys for host/HOST and HTTP/HOST.
type siteService struct {
	Host    string // the host name clients use, and the host of its SPNs
	GSSAddr string // HOST:PORT of the GSS sample protocol, "" if none
	GSSPort string
	URL     string // base URL of HTTP Negotiate ("http://HOST:PORT/"), "" if none
	Keytab  string // a keytab with its keys, as a path on the client
	// Log returns what the acceptor logged so far.
	Log func(t *testing.T) string
}

// siteClient runs peer tools for one client environment.
type siteClient interface {
	// Run runs tool (kinit, klist, kvno, gss-client, curl or kclient) with args.
	Run(t *testing.T, stdin, tool string, args ...string) (stdout, stderr string, code int)
	// Trace returns the client's KRB5_TRACE so far.
	Trace(t *testing.T) string
}

// Enctypes of the matrix: each row allows its clients exactly one.
var interopEnctypes = map[string]string{
	"aes-sha1": "aes256-cts-hmac-sha1-96",
	"aes-sha2": "aes256-cts-hmac-sha384-192",
}

// interopRow is one line of the table.
type interopRow struct {
	Check     string // what is checked, e.g. "login"
	Peer      string // the real peer and, for services, the acceptor
	KDC       string // "kerbkit" or "MIT"
	Transport string // "udp" or "tcp"
	Enctype   string // a key of interopEnctypes
	run       func(x *rowCtx) error
}

// interopChecks are the checks; each runs over both transports and enctypes.
var interopChecks = []struct {
	check, peer, kdc string
	run              func(x *rowCtx) error
}{
	{"login", "MIT kinit", "kerbkit", checkKinitLogin},
	{"wrong password", "MIT kinit", "kerbkit", checkKinitWrongPassword},
	{"keytab login", "MIT kinit -k", "kerbkit", checkKinitKeytab},
	{"service ticket", "MIT kvno -k", "kerbkit", checkKvnoKeytab},
	{"renew", "MIT kinit -R", "kerbkit", checkKinitRenew},
	{"gss mutual", "MIT gss-client -> kservice", "kerbkit", checkGSSClientKservice},
	{"gss mutual", "kclient -> MIT gss-server", "kerbkit", checkKclientGSSServer},
	{"http negotiate", "curl -> kservice", "kerbkit", checkCurlKservice},
	{"http negotiate", "curl -> Apache mod_auth_gssapi", "kerbkit", checkCurlApache},
	{"http mutual", "kclient -> Apache mod_auth_gssapi", "kerbkit", checkKclientApache},
	{"login", "kclient", "MIT", checkKclientLogin},
	{"service ticket", "kclient ticket + MIT kvno -k", "MIT", checkKclientTicket},
	{"gss mutual", "kclient -> MIT gss-server", "MIT", checkKclientGSSServer},
	{"login", "MIT kinit (harness)", "MIT", checkKinitLogin},
}

// interopRows expands the checks over transports and enctypes.
func interopRows() []interopRow {
	var rows []interopRow
	for _, c := range interopChecks {
		for _, tr := range []string{"udp", "tcp"} {
			for _, et := range []string{"aes-sha1", "aes-sha2"} {
				rows = append(rows, interopRow{Check: c.check, Peer: c.peer, KDC: c.kdc, Transport: tr, Enctype: et, run: c.run})
			}
		}
	}
	return rows
}

// Name is the row's subtest name, KDC/check/peer/transport/enctype, so that
// -run 'kerbkit/login' or -run '//tcp/aes-sha2' picks rows.
func (r interopRow) Name() string {
	f := strings.NewReplacer(" ", "_", "/", "_")
	return strings.Join([]string{f.Replace(r.KDC), f.Replace(r.Check), f.Replace(r.Peer), r.Transport, r.Enctype}, "/")
}

// interopUser is the user of row i: every row has its own, so the KDC's log
// lines of a row are its own and a wrong password locks nobody else out.
func interopUser(i int) string { return fmt.Sprintf("u%02d", i+1) }

// InteropResult is one row of the report.
type InteropResult struct {
	Row       int     `json:"row"` // 1-based, in the matrix's order
	Mode      string  `json:"mode"`
	Check     string  `json:"check"`
	Peer      string  `json:"peer"`
	KDC       string  `json:"kdc"`
	Transport string  `json:"transport"`
	Enctype   string  `json:"enctype"`
	Host      string  `json:"host"` // the service host name the row used
	Result    string  `json:"result"`
	Seconds   float64 `json:"seconds"`
	Error     string  `json:"error,omitempty"`
	Command   string  `json:"command,omitempty"` // the peer command that failed
	Output    string  `json:"output,omitempty"`  // its stdout and stderr
	Trace     string  `json:"trace,omitempty"`   // the client's KRB5_TRACE
}

// interopReport appends results to $KERBKIT_INTEROP_REPORT.
var interopReport struct {
	mu sync.Mutex
}

func reportRow(t *testing.T, res InteropResult) {
	path := os.Getenv("KERBKIT_INTEROP_REPORT")
	if path == "" {
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Error(err)
		return
	}
	interopReport.mu.Lock()
	defer interopReport.mu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Errorf("interop report: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Errorf("interop report: %v", err)
	}
}

// TestInteropMatrix runs every row on the native site and on the Docker site.
// A site whose peers are missing is skipped with a message (a failure with
// CI=true).
func TestInteropMatrix(t *testing.T) {
	t.Run("native", func(t *testing.T) { runInteropMatrix(t, "native", &nativeSite{}) })
	t.Run("docker", func(t *testing.T) { runInteropMatrix(t, "docker", &dockerSite{}) })
}

func runInteropMatrix(t *testing.T, mode string, s interopSite) {
	rows := interopRows()
	var ourUsers, mitUsers []string
	for i, row := range rows {
		if row.KDC == "MIT" {
			mitUsers = append(mitUsers, interopUser(i))
		} else {
			ourUsers = append(ourUsers, interopUser(i))
		}
	}
	start := time.Now()
	ours, mit := s.Realms(t, ourUsers, mitUsers)
	t.Logf("%s site ready in %v: our KDC %s at %s, MIT KDC %s at %s", mode, time.Since(start).Round(time.Millisecond), ours.Name, ours.KDC, mit.Name, mit.KDC)
	for i, row := range rows {
		i, row := i, row
		t.Run(row.Name(), func(t *testing.T) {
			t.Parallel()
			r := ours
			if row.KDC == "MIT" {
				r = mit
			}
			x := &rowCtx{t: t, row: row, realm: r, user: interopUser(i), index: i + 1}
			// The client asks for the row's enctype only, so its long-term key,
			// the session keys, subkeys and authenticators use it. Tickets are
			// sealed in the service's key of the KDC's choice (its strongest),
			// which kvno -k must still be allowed to decrypt: permitted_enctypes
			// stays the default.
			o := EnvOptions{ForceTCP: row.Transport == "tcp", Domains: r.Domains, Libdefaults: []string{
				"default_tkt_enctypes = " + interopEnctypes[row.Enctype],
				"default_tgs_enctypes = " + interopEnctypes[row.Enctype],
			}}
			x.client = s.Client(t, r, o)
			began := time.Now()
			err := row.run(x)
			res := InteropResult{Row: i + 1, Mode: mode, Check: row.Check, Peer: row.Peer, KDC: row.KDC, Transport: row.Transport,
				Enctype: row.Enctype, Host: x.host, Result: "pass", Seconds: time.Since(began).Seconds()}
			if err != nil {
				res.Result, res.Error = "fail", err.Error()
				if x.failed != nil {
					res.Command, res.Output = x.failed.cmd, strings.TrimSpace(x.failed.stdout+"\n"+x.failed.stderr)
				}
				res.Trace = tail(x.client.Trace(t), 8000)
				t.Errorf("%s: %v", row.Name(), err)
				if res.Trace != "" {
					t.Logf("---- client KRB5_TRACE ----\n%s", res.Trace)
				}
			}
			reportRow(t, res)
		})
	}
}

// rowCtx is what a check works with.
type rowCtx struct {
	t      *testing.T
	row    interopRow
	realm  *siteRealm
	client siteClient
	user   string // this row's user
	index  int
	host   string   // the service host the row used (for the report)
	failed *peerRun // the last peer command that did not do what was expected
}

// peerRun is one peer command and what it printed.
type peerRun struct {
	cmd            string
	stdout, stderr string
	code           int
}

// run runs a peer tool.
func (x *rowCtx) run(stdin, tool string, args ...string) *peerRun {
	x.t.Helper()
	stdout, stderr, code := x.client.Run(x.t, stdin, tool, args...)
	return &peerRun{cmd: tool + " " + strings.Join(args, " "), stdout: stdout, stderr: stderr, code: code}
}

// must runs a peer tool that must exit 0.
func (x *rowCtx) must(stdin, tool string, args ...string) (*peerRun, error) {
	x.t.Helper()
	p := x.run(stdin, tool, args...)
	if p.code != 0 {
		return p, x.fail(p, "%s: exit %d: %s", p.cmd, p.code, firstLine(p.stderr+p.stdout))
	}
	return p, nil
}

// fail records p as the failing command and returns the error.
func (x *rowCtx) fail(p *peerRun, format string, args ...any) error {
	x.failed = p
	return fmt.Errorf(format, args...)
}

// expect fails unless p's output contains every one of subs.
func (x *rowCtx) expect(p *peerRun, subs ...string) error {
	for _, s := range subs {
		if !strings.Contains(p.stdout+p.stderr, s) {
			return x.fail(p, "%s: output lacks %q", p.cmd, s)
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// principal is name@REALM of the row's realm.
func (x *rowCtx) principal(name string) string { return name + "@" + x.realm.Name }

// enctype is the MIT name of the row's enctype.
func (x *rowCtx) enctype() string { return interopEnctypes[x.row.Enctype] }

// message is the row's own message for acceptors to log.
func (x *rowCtx) message() string { return fmt.Sprintf("interop row %d", x.index) }

// kinit logs the row's user in with MIT kinit (password on stdin).
func (x *rowCtx) kinit(args ...string) error {
	_, err := x.must(UserPassword+"\n", "kinit", append(args, x.user)...)
	return err
}

// kclientLogin logs the row's user in with our kclient.
func (x *rowCtx) kclientLogin(args ...string) (*peerRun, error) {
	return x.must(UserPassword+"\n", "kclient", append(append([]string{"login"}, args...), x.user)...)
}

// klistTGT checks with MIT klist -e -f that the cache holds a TGT for client
// whose session key has the row's enctype, with at least the flags in want.
func (x *rowCtx) klistTGT(client, want string) (*KlistTicket, error) {
	p, err := x.must("", "klist", "-e", "-f")
	if err != nil {
		return nil, err
	}
	k, perr := ParseKlist(p.stdout)
	if perr != nil {
		return nil, x.fail(p, "%v", perr)
	}
	if k.Principal != client {
		return nil, x.fail(p, "klist: default principal %q, want %q", k.Principal, client)
	}
	tgs := "krbtgt/" + x.realm.Name + "@" + x.realm.Name
	tgt := k.Ticket(tgs)
	if tgt == nil {
		return nil, x.fail(p, "klist: no %s", tgs)
	}
	if tgt.SessionKey != x.enctype() {
		return nil, x.fail(p, "klist -e: TGT session key %s, want %s", tgt.SessionKey, x.enctype())
	}
	if !tgt.HasFlags(want) {
		return nil, x.fail(p, "klist -f: TGT flags %q, want at least %q", tgt.Flags, want)
	}
	return tgt, nil
}

// mitTransport checks in the client's KRB5_TRACE that MIT's library sent its
// requests over the row's transport only.
func (x *rowCtx) mitTransport() error {
	trace := x.client.Trace(x.t)
	udp := strings.Contains(trace, "Sending initial UDP request")
	tcp := strings.Contains(trace, "Sending TCP request")
	switch {
	case x.row.Transport == "udp" && (!udp || tcp):
		return fmt.Errorf("KRB5_TRACE: want UDP only (udp %v, tcp %v)", udp, tcp)
	case x.row.Transport == "tcp" && (!tcp || udp):
		return fmt.Errorf("KRB5_TRACE: want TCP only (udp %v, tcp %v)", udp, tcp)
	}
	return nil
}

// kdcTransport checks in our KDC's log that every request of the row's user
// came over the row's transport (for our client, which writes no trace).
func (x *rowCtx) kdcTransport() error {
	if x.realm.Kind != "kerbkit" {
		return nil
	}
	lines := waitLogLines(x.realm.Log, "client="+x.principal(x.user))
	if len(lines) == 0 {
		return fmt.Errorf("our KDC logged no request from %s", x.principal(x.user))
	}
	for _, l := range lines {
		if !strings.Contains(l, "transport="+x.row.Transport+" ") {
			return fmt.Errorf("our KDC got a request from %s over the other transport: %s", x.user, l)
		}
	}
	return nil
}

// explainTransportRE finds the transport of each message in kclient --explain.
var explainTransportRE = regexp.MustCompile(`(?m)^\s*(udp|tcp) \S+:[0-9]+, [0-9]+ bytes`)

// explainTransport checks that kclient --explain output shows every message
// over the row's transport.
func (x *rowCtx) explainTransport(p *peerRun) error {
	ms := explainTransportRE.FindAllStringSubmatch(p.stdout+p.stderr, -1)
	if len(ms) == 0 {
		return x.fail(p, "%s: the explanation names no transport", p.cmd)
	}
	for _, m := range ms {
		if m[1] != x.row.Transport {
			return x.fail(p, "%s: a message went over %s", p.cmd, m[1])
		}
	}
	return nil
}

// waitServiceLog waits up to 10s for the acceptor's log to contain sub (it may
// still be writing when the client is done).
func (x *rowCtx) waitServiceLog(s *siteService, sub string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := s.Log(x.t)
		if strings.Contains(log, sub) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the acceptor on %s did not log %q; its log ends:\n%s", s.Host, sub, tail(log, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The checks.

func checkKinitLogin(x *rowCtx) error {
	if err := x.kinit(); err != nil {
		return err
	}
	if _, err := x.klistTGT(x.principal(x.user), "IA"); err != nil {
		return err
	}
	if err := x.mitTransport(); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkKinitWrongPassword(x *rowCtx) error {
	p := x.run("not-"+UserPassword+"\n", "kinit", x.user)
	if p.code == 0 {
		return x.fail(p, "kinit with a wrong password succeeded")
	}
	if err := x.expect(p, "Password incorrect"); err != nil {
		return err
	}
	return x.mitTransport()
}

func checkKinitKeytab(x *rowCtx) error {
	s := x.realm.KService
	x.host = s.Host
	svc := x.principal("host/" + s.Host)
	if _, err := x.must("", "kinit", "-k", "-t", s.Keytab, svc); err != nil {
		return err
	}
	if _, err := x.klistTGT(svc, "IA"); err != nil {
		return err
	}
	return x.mitTransport()
}

func checkKvnoKeytab(x *rowCtx) error {
	s := x.realm.KService
	x.host = s.Host
	if err := x.kinit(); err != nil {
		return err
	}
	svc := "host/" + s.Host
	p, err := x.must("", "kvno", "-k", s.Keytab, svc)
	if err != nil {
		return err
	}
	if err := x.expect(p, x.principal(svc)+": kvno = ", "keytab entry valid"); err != nil {
		return err
	}
	p, err = x.must("", "klist", "-e")
	if err != nil {
		return err
	}
	k, perr := ParseKlist(p.stdout)
	if perr != nil {
		return x.fail(p, "%v", perr)
	}
	if st := k.Ticket(x.principal(svc)); st == nil || st.SessionKey != x.enctype() {
		return x.fail(p, "klist -e: service ticket for %s missing or not %s: %+v", svc, x.enctype(), st)
	}
	if err := x.mitTransport(); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkKinitRenew(x *rowCtx) error {
	if err := x.kinit("-l", "1h", "-r", "2d"); err != nil {
		return err
	}
	if _, err := x.klistTGT(x.principal(x.user), "RIA"); err != nil {
		return err
	}
	if _, err := x.must("", "kinit", "-R"); err != nil {
		return err
	}
	if _, err := x.klistTGT(x.principal(x.user), "R"); err != nil {
		return err
	}
	if x.realm.Kind == "kerbkit" {
		if len(waitLogLines(x.realm.Log, "TGS_REQ", "client="+x.principal(x.user), "result=ISSUE", "renewed")) == 0 {
			return fmt.Errorf("our KDC logged no renewal (TGS_REQ … renewed) for %s", x.user)
		}
	}
	if err := x.mitTransport(); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkGSSClientKservice(x *rowCtx) error {
	s := x.realm.KService
	x.host = s.Host
	if err := x.kinit(); err != nil {
		return err
	}
	p, err := x.must("", "gss-client", "-port", s.GSSPort, s.Host, "host@"+s.Host, x.message())
	if err != nil {
		return err
	}
	// gss-client checked our AP-REP (mutual is its default) and our MIC.
	if err := x.expect(p, `"`+x.principal(x.user)+`" to "`+x.principal("host/"+s.Host)+`"`, "GSS_C_MUTUAL_FLAG", "Signature verified"); err != nil {
		return err
	}
	if err := x.waitServiceLog(s, `received message: \"`+x.message()+`\"`); err != nil {
		return err
	}
	if !strings.Contains(x.client.Trace(x.t), "Read AP-REP") {
		return fmt.Errorf("KRB5_TRACE: gss-client read no AP-REP")
	}
	if err := x.mitTransport(); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkKclientGSSServer(x *rowCtx) error {
	s := x.realm.GSSServer
	x.host = s.Host
	if x.realm.Kind == "MIT" { // no KDC log to read the transport from: our client's explanation shows it
		p, err := x.kclientLogin("--explain")
		if err != nil {
			return err
		}
		if err := x.explainTransport(p); err != nil {
			return err
		}
	} else if _, err := x.kclientLogin(); err != nil {
		return err
	}
	p, err := x.must("", "kclient", "request", "host/"+s.Host, "--addr", s.GSSAddr, "--message", x.message())
	if err != nil {
		return err
	}
	if err := x.expect(p, "authenticated as "+x.principal(x.user)+" to "+x.principal("host/"+s.Host)+" (mutual: server proved it holds the service key)",
		"server MIC verified"); err != nil {
		return err
	}
	if err := x.waitServiceLog(s, `Received message: "`+x.message()+`"`); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkCurlKservice(x *rowCtx) error {
	s := x.realm.KService
	x.host = s.Host
	if err := x.kinit(); err != nil {
		return err
	}
	p, err := x.must("", "curl", "-sS", "--negotiate", "-u", ":", "-w", "\nstatus=%{http_code}\n", s.URL)
	if err != nil {
		return err
	}
	if err := x.expect(p, "hello "+x.principal(x.user)+"\n", "status=200"); err != nil {
		return err
	}
	if err := x.mitTransport(); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkCurlApache(x *rowCtx) error {
	s := x.realm.Apache
	x.host = s.Host
	if err := x.kinit(); err != nil {
		return err
	}
	p, err := x.must("", "curl", "-sS", "--negotiate", "-u", ":", "-w", "\nstatus=%{http_code}\n", s.URL+"index.txt")
	if err != nil {
		return err
	}
	if err := x.expect(p, "hello negotiate\n", "status=200"); err != nil {
		return err
	}
	if err := x.waitServiceLog(s, x.principal(x.user)+` "GET /index.txt HTTP/1.1" 200`); err != nil {
		return err
	}
	if err := x.mitTransport(); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkKclientApache(x *rowCtx) error {
	s := x.realm.Apache
	x.host = s.Host
	if _, err := x.kclientLogin(); err != nil {
		return err
	}
	url := s.URL + "index.txt"
	p, err := x.must("", "kclient", "request", "--http", url)
	if err != nil {
		return err
	}
	// Our client checks the AP-REP in Apache's final Negotiate token.
	if err := x.expect(p, "HTTP 200 from "+url, "final token: SPNEGO NegTokenResp accept-completed",
		"authenticated as "+x.principal(x.user)+" to "+x.principal("HTTP/"+s.Host)+" (mutual: server proved it holds the service key)"); err != nil {
		return err
	}
	if err := x.waitServiceLog(s, x.principal(x.user)+` "GET /index.txt HTTP/1.1" 200`); err != nil {
		return err
	}
	return x.kdcTransport()
}

func checkKclientLogin(x *rowCtx) error {
	p, err := x.kclientLogin("--explain")
	if err != nil {
		return err
	}
	if err := x.explainTransport(p); err != nil {
		return err
	}
	// MIT klist reads the cache our client wrote.
	_, err = x.klistTGT(x.principal(x.user), "I")
	return err
}

func checkKclientTicket(x *rowCtx) error {
	s := x.realm.GSSServer
	x.host = s.Host
	if _, err := x.kclientLogin(); err != nil {
		return err
	}
	svc := "host/" + s.Host
	p, err := x.must("", "kclient", "ticket", "--explain", svc)
	if err != nil {
		return err
	}
	if err := x.explainTransport(p); err != nil {
		return err
	}
	// MIT kvno -k decrypts the ticket our client put in the cache.
	p, err = x.must("", "kvno", "-k", s.Keytab, svc)
	if err != nil {
		return err
	}
	if err := x.expect(p, x.principal(svc)+": kvno = ", "keytab entry valid"); err != nil {
		return err
	}
	if strings.Contains(x.client.Trace(x.t), "Sending") {
		return errors.New("kvno went to the KDC instead of using the ticket kclient cached")
	}
	return nil
}
