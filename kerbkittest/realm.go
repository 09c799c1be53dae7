package kerbkittest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gokrb5client "github.com/jcmturner/gokrb5/v8/client"
	gokrb5config "github.com/jcmturner/gokrb5/v8/config"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/inproc"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// DefaultRealm is the realm name of a realm started without Options.Realm.
// Every realm has its own KDC, port and files, so any number of them may run
// at once under the same name.
const DefaultRealm = "KERBKIT.TEST"

// DefaultEnctypes are the enctypes of the keys of principals added with
// AddUser and AddService unless Options.Enctypes says otherwise: MIT's default
// supported_enctypes, the first choice of MIT, Heimdal, Java and gokrb5
// clients.
var DefaultEnctypes = []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96"}

// maxLogBytes bounds the KDC log a realm keeps (the newest lines win).
const maxLogBytes = 256 << 10

// Options configure a realm. The zero value is a realm named DefaultRealm with
// the default ticket policy (24 hours, renewable for 7 days), a clock at real
// time and a plain krb5.conf.
type Options struct {
	// Realm is the realm name; "" means DefaultRealm.
	Realm string
	// Clock is the KDC's clock; nil means a new Clock at real time. Pass one
	// to share it between realms or to set it before the realm starts.
	Clock *Clock
	// MaxLife and MaxRenew are the realm's longest ticket life and renewable
	// life; zero means 24 hours and 7 days.
	MaxLife, MaxRenew time.Duration
	// Libdefaults are extra lines for krb5.conf's [libdefaults] section, e.g.
	// "forwardable = true" or "udp_preference_limit = 1".
	Libdefaults []string
	// RealmSettings are extra lines for this realm's entry of [realms], after
	// its kdc line, e.g. "kdc = 127.0.0.1:8888" for a second KDC.
	RealmSettings []string
	// Enctypes are the enctypes (MIT names) of the keys AddUser and AddService
	// make; nil means DefaultEnctypes. Add "aes256-cts-hmac-sha384-192" and
	// "aes128-cts-hmac-sha256-128" to test the RFC 8009 enctypes; deriving
	// their keys from a password takes 32768 PBKDF2 rounds, eight times the
	// others, which shows under -race.
	Enctypes []string
}

// Realm is a throw-away Kerberos realm served by kerbkit's KDC inside the test
// process, on 127.0.0.1 with a port of its own (UDP and TCP), with its
// database, krb5.conf, keytabs and credential caches in a directory of its
// own. It changes no environment variable of the process: hand its krb5.conf
// and caches to code under test explicitly (Environ does it for child
// processes).
//
// A Realm is safe for concurrent use by the goroutines of its test.
type Realm struct {
	// Name is the realm name, e.g. KERBKIT.TEST.
	Name string
	// KDCAddr is the KDC's address, 127.0.0.1:PORT, for UDP and TCP.
	KDCAddr string
	// Dir is the realm's own directory: database, krb5.conf, keytabs, caches.
	Dir string
	// Krb5Conf is the path of the realm's krb5.conf; see Krb5ConfText,
	// AddLibdefaults and AddRealmSettings.
	Krb5Conf string
	// Clock is the KDC's clock.
	Clock *Clock

	t         testing.TB // nil for a realm from Start
	srv       *inproc.Server
	log       *logBuffer
	stop      sync.Once
	removeDir bool // Close removes Dir (Start made it)

	mu          sync.Mutex
	libdefaults []string
	settings    []string
	secrets     map[string]secret // by principal name with realm
	enctypes    []int32           // of the keys AddUser and AddService make
	caches      int               // credential caches made by Login, for unique names
}

// secret is how Login authenticates a principal added through the Realm.
type secret struct {
	password string // users
	keytab   string // services: the keytab file
}

// New starts a realm for the test t: a new database in a temporary directory,
// the KDC serving on 127.0.0.1 with a free port, and a krb5.conf naming it.
// It fails the test if the realm cannot start. The realm is stopped and its
// files removed when the test ends (t.Cleanup); if the test failed, the KDC's
// log (one line per request) is written to the test log first.
//
// Realms are independent: tests that call t.Parallel may start as many as
// they like.
func New(t testing.TB, opts Options) *Realm {
	t.Helper()
	r, err := start(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("kerbkittest: %v", err)
	}
	r.t = t
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kerbkittest: KDC log of %s on %s (clock offset %v):\n%s", r.Name, r.KDCAddr, r.Clock.Offset(), r.Log())
		}
		if err := r.Close(); err != nil {
			t.Errorf("kerbkittest: %v", err)
		}
	})
	return r
}

// Start starts a realm outside a test, for TestMain (one realm shared by a
// package's tests) or an Example: as New, but the caller removes it with
// Close. dir is the directory for its files; "" means a new temporary
// directory, removed by Close. On a realm from Start the methods that fail
// a test under New panic instead.
func Start(dir string, opts Options) (*Realm, error) {
	own := dir == ""
	if own {
		d, err := os.MkdirTemp("", "kerbkittest-")
		if err != nil {
			return nil, fmt.Errorf("kerbkittest: %w", err)
		}
		dir = d
	}
	r, err := start(dir, opts)
	if err != nil {
		if own {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("kerbkittest: %w", err)
	}
	if own {
		r.removeDir = true
	}
	return r, nil
}

func start(dir string, opts Options) (*Realm, error) {
	if opts.Realm == "" {
		opts.Realm = DefaultRealm
	}
	if opts.Clock == nil {
		opts.Clock = &Clock{}
	}
	names := opts.Enctypes
	if names == nil {
		names = DefaultEnctypes
	}
	enctypes, err := principal.ParseEnctypes(strings.Join(names, " "))
	if err != nil {
		return nil, fmt.Errorf("Options.Enctypes: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &Realm{
		enctypes:    enctypes,
		Name:        opts.Realm,
		Dir:         dir,
		Krb5Conf:    filepath.Join(dir, "krb5.conf"),
		Clock:       opts.Clock,
		log:         &logBuffer{limit: maxLogBytes},
		libdefaults: slices.Clone(opts.Libdefaults),
		settings:    slices.Clone(opts.RealmSettings),
		secrets:     map[string]secret{},
	}
	logger := slog.New(kdc.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := inproc.Start(inproc.Config{
		DB:     filepath.Join(dir, "kdc.db"),
		Realm:  opts.Realm,
		Policy: principal.RealmPolicy{MaxLife: opts.MaxLife, MaxRenew: opts.MaxRenew},
		Now:    r.Clock.Now,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	r.srv, r.KDCAddr = srv, srv.Addr
	if err := r.writeConf(); err != nil {
		srv.Stop()
		return nil, err
	}
	return r, nil
}

// Close stops the KDC and closes the database; a realm from Start with its
// own temporary directory also removes it. New calls it at cleanup. Calling
// it again does nothing.
func (r *Realm) Close() error {
	var err error
	r.stop.Do(func() {
		err = r.srv.Stop()
		if r.removeDir {
			err = errors.Join(err, os.RemoveAll(r.Dir))
		}
	})
	return err
}

// fail reports a failed helper: the test fails (New) or the call panics (Start).
func (r *Realm) fail(format string, args ...any) {
	msg := "kerbkittest: " + fmt.Sprintf(format, args...)
	if r.t != nil {
		r.t.Helper()
		r.t.Fatal(msg)
	}
	panic(msg)
}

// Principal returns name with the realm: Principal("alice") is
// "alice@KERBKIT.TEST". A name that has a realm already is returned as is.
func (r *Realm) Principal(name string) string {
	p, err := principal.Parse(name, r.Name)
	if err != nil {
		return name + "@" + r.Name
	}
	return p.String()
}

// parse parses a principal name of this realm.
func (r *Realm) parse(name string) (principal.Name, error) {
	p, err := principal.Parse(name, r.Name)
	if err != nil {
		return p, err
	}
	if p.Realm != r.Name {
		return p, fmt.Errorf("%s is not in realm %s", p, r.Name)
	}
	return p, nil
}

// AddUser adds a user principal with a password, pre-authentication required
// (as kdc principal add does), and returns its full name (alice@REALM).
// Login and GoKRB5Client log in with that password; MIT kinit reads it from
// standard input.
func (r *Realm) AddUser(name, password string) string {
	if r.t != nil {
		r.t.Helper()
	}
	p, err := r.parse(name)
	if err != nil {
		r.fail("AddUser %q: %v", name, err)
	}
	if _, err := r.srv.Admin.Add(context.Background(), kdc.AddRequest{Name: p.String(), Password: password, Enctypes: r.enctypes}); err != nil {
		r.fail("AddUser %s: %v", p, err)
	}
	r.mu.Lock()
	r.secrets[p.String()] = secret{password: password}
	r.mu.Unlock()
	return p.String()
}

// AddService adds a service principal with random keys, such as
// "HTTP/localhost" or "host/localhost", writes its keys to a keytab of its own
// in the realm's directory (mode 0600) and returns the keytab's path, ready
// for the service under test (KRB5_KTNAME, gokrb5's keytab.Load, kerbkit's
// service.LoadKeytab). Login and GoKRB5Client log the service in with it.
func (r *Realm) AddService(name string) string {
	if r.t != nil {
		r.t.Helper()
	}
	p, err := r.parse(name)
	if err != nil {
		r.fail("AddService %q: %v", name, err)
	}
	ctx := context.Background()
	if _, err := r.srv.Admin.Add(ctx, kdc.AddRequest{Name: p.String(), RandomKey: true, Enctypes: r.enctypes}); err != nil {
		r.fail("AddService %s: %v", p, err)
	}
	path := filepath.Join(r.Dir, "keytabs", fileName(p)+".keytab")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		r.fail("AddService %s: %v", p, err)
	}
	if err := r.srv.ExportKeytab(ctx, path, p.String()); err != nil {
		r.fail("AddService %s: %v", p, err)
	}
	r.mu.Lock()
	r.secrets[p.String()] = secret{keytab: path}
	r.mu.Unlock()
	return path
}

// ExportKeytab writes the current and older kept keys of the named principals
// to file (mode 0600, replaced atomically), e.g. one keytab for a service
// with several names, or again after Admin().ChangeKeys.
func (r *Realm) ExportKeytab(file string, names ...string) {
	if r.t != nil {
		r.t.Helper()
	}
	full := make([]string, 0, len(names))
	for _, n := range names {
		p, err := r.parse(n)
		if err != nil {
			r.fail("ExportKeytab %q: %v", n, err)
		}
		full = append(full, p.String())
	}
	if err := r.srv.ExportKeytab(context.Background(), file, full...); err != nil {
		r.fail("ExportKeytab: %v", err)
	}
}

// fileName turns a principal into a file name: HTTP/localhost@R is
// "HTTP_localhost@R".
func fileName(p principal.Name) string {
	return strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c < ' ' {
			return '_'
		}
		return c
	}, p.String())
}

// secretOf returns the password or keytab of a principal added by AddUser or
// AddService.
func (r *Realm) secretOf(p principal.Name) (secret, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.secrets[p.String()]
	return s, ok
}

// Login logs the principal in with kerbkit's client (the AS exchange, as kinit
// does) and returns the path of a new credential cache holding its
// ticket-granting ticket, in MIT's file format (mode 0600): what KRB5CCNAME
// should name ("FILE:" + path) for code under test, and what gokrb5's
// credentials.LoadCCache reads. The principal must have been added with
// AddUser (password) or AddService (keytab). Each call makes a new cache.
func (r *Realm) Login(name string) string {
	if r.t != nil {
		r.t.Helper()
	}
	p, err := r.parse(name)
	if err != nil {
		r.fail("Login %q: %v", name, err)
	}
	s, ok := r.secretOf(p)
	if !ok {
		r.fail("Login %s: not added with AddUser or AddService", p)
	}
	var sec client.Secret
	if s.keytab != "" {
		kt, err := client.LoadKeytab(s.keytab)
		if err != nil {
			r.fail("Login %s: %v", p, err)
		}
		sec = client.KeytabSecret(kt)
	} else {
		sec = client.PasswordSecret(s.password)
	}
	c, err := client.New(r.ClientConfig())
	if err != nil {
		r.fail("Login %s: %v", p, err)
	}
	r.mu.Lock()
	r.caches++
	path := filepath.Join(r.Dir, "ccaches", fmt.Sprintf("%s.%d", fileName(p), r.caches))
	r.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		r.fail("Login %s: %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.LoginToCCache(ctx, client.ASRequest{Client: p, Secret: sec}, "FILE:"+path); err != nil {
		r.fail("Login %s: %v", p, err)
	}
	return path
}

// Admin returns the realm's administration interface, for what the helpers do
// not cover: principals with other options (no pre-authentication, shorter
// lives), new keys (ChangeKeys), disabling, deleting. Principals added this
// way are not known to Login and GoKRB5Client.
func (r *Realm) Admin() kdc.Admin { return r.srv.Admin }

// Log returns the KDC's log so far, one line per request (the newest 256 KiB).
func (r *Realm) Log() string { return r.log.String() }

// Environ returns an environment for a child process (exec.Cmd.Env) that uses
// this realm: the test process's environment without any KRB5* variable, plus
// KRB5_CONFIG naming the realm's krb5.conf, KRB5CCNAME=FILE:ccache when ccache
// is not "" (for example a path from Login, or a new path in t.TempDir() for
// kinit to fill), and KRB5RCACHETYPE=none (no shared replay cache files
// between parallel tests). The test process's own environment is not changed.
func (r *Realm) Environ(ccache string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KRB5") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KRB5_CONFIG="+r.Krb5Conf, "KRB5RCACHETYPE=none")
	if ccache != "" {
		env = append(env, "KRB5CCNAME=FILE:"+strings.TrimPrefix(ccache, "FILE:"))
	}
	return env
}

// GoKRB5Client returns a gokrb5 client for the principal, logged in (its
// ticket-granting ticket obtained), for code under test that uses gokrb5. The
// principal must have been added with AddUser or AddService. Under New the
// client is destroyed at cleanup.
func (r *Realm) GoKRB5Client(name string) *gokrb5client.Client {
	if r.t != nil {
		r.t.Helper()
	}
	p, err := r.parse(name)
	if err != nil {
		r.fail("GoKRB5Client %q: %v", name, err)
	}
	s, ok := r.secretOf(p)
	if !ok {
		r.fail("GoKRB5Client %s: not added with AddUser or AddService", p)
	}
	cfg := r.GoKRB5Config()
	user := strings.Join(p.Components, "/")
	var cl *gokrb5client.Client
	if s.keytab != "" {
		kt, err := ticket.LoadKeytabFile(s.keytab)
		if err != nil {
			r.fail("GoKRB5Client %s: %v", p, err)
		}
		cl = gokrb5client.NewWithKeytab(user, p.Realm, kt, cfg)
	} else {
		cl = gokrb5client.NewWithPassword(user, p.Realm, s.password, cfg)
	}
	if err := cl.Login(); err != nil {
		r.fail("GoKRB5Client %s: gokrb5 login: %v", p, err)
	}
	if r.t != nil {
		r.t.Cleanup(cl.Destroy)
	}
	return cl
}

// GoKRB5Config returns the realm's krb5.conf parsed by gokrb5, a new copy on
// every call.
func (r *Realm) GoKRB5Config() *gokrb5config.Config {
	if r.t != nil {
		r.t.Helper()
	}
	cfg, err := gokrb5config.NewFromString(r.Krb5ConfText())
	if err != nil {
		r.fail("gokrb5 cannot parse the realm's krb5.conf: %v", err)
	}
	return cfg
}

// ClientConfig returns the realm's krb5.conf as kerbkit's client reads it
// (client.LoadConfig), for code under test that uses package client.
func (r *Realm) ClientConfig() *client.Config {
	if r.t != nil {
		r.t.Helper()
	}
	cfg, err := client.LoadConfig(r.Krb5Conf)
	if err != nil {
		r.fail("%v", err)
	}
	return cfg
}

// Krb5ConfText returns the text of the realm's krb5.conf.
func (r *Realm) Krb5ConfText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.confText()
}

// AddLibdefaults adds lines to the [libdefaults] section of the realm's
// krb5.conf and rewrites the file, e.g. AddLibdefaults("forwardable = true").
// Clients read it when they start; configurations already parsed keep what
// they read.
func (r *Realm) AddLibdefaults(lines ...string) {
	if r.t != nil {
		r.t.Helper()
	}
	r.mu.Lock()
	r.libdefaults = append(r.libdefaults, lines...)
	r.mu.Unlock()
	if err := r.writeConf(); err != nil {
		r.fail("%v", err)
	}
}

// AddRealmSettings adds lines to this realm's entry of the [realms] section
// of its krb5.conf and rewrites the file, e.g. a second kdc line.
func (r *Realm) AddRealmSettings(lines ...string) {
	if r.t != nil {
		r.t.Helper()
	}
	r.mu.Lock()
	r.settings = append(r.settings, lines...)
	r.mu.Unlock()
	if err := r.writeConf(); err != nil {
		r.fail("%v", err)
	}
}

// confText renders krb5.conf; r.mu is held.
func (r *Realm) confText() string {
	var b strings.Builder
	b.WriteString("[libdefaults]\n")
	fmt.Fprintf(&b, "    default_realm = %s\n", r.Name)
	// Everything is on loopback and named in this file: no DNS.
	b.WriteString("    dns_lookup_kdc = false\n")
	b.WriteString("    dns_lookup_realm = false\n")
	b.WriteString("    dns_canonicalize_hostname = false\n")
	b.WriteString("    rdns = false\n")
	for _, l := range r.libdefaults {
		fmt.Fprintf(&b, "    %s\n", strings.TrimSpace(l))
	}
	b.WriteString("\n[realms]\n")
	fmt.Fprintf(&b, "    %s = {\n", r.Name)
	fmt.Fprintf(&b, "        kdc = %s\n", r.KDCAddr)
	for _, l := range r.settings {
		fmt.Fprintf(&b, "        %s\n", strings.TrimSpace(l))
	}
	b.WriteString("    }\n")
	b.WriteString("\n[domain_realm]\n")
	fmt.Fprintf(&b, "    localhost = %s\n", r.Name)
	fmt.Fprintf(&b, "    .localhost = %s\n", r.Name)
	return b.String()
}

// writeConf writes krb5.conf atomically (a reader never sees half a file).
func (r *Realm) writeConf() error {
	r.mu.Lock()
	text := r.confText()
	r.mu.Unlock()
	tmp, err := os.CreateTemp(r.Dir, ".krb5.conf-*")
	if err != nil {
		return fmt.Errorf("writing krb5.conf: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return fmt.Errorf("writing krb5.conf: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing krb5.conf: %w", err)
	}
	if err := os.Rename(tmp.Name(), r.Krb5Conf); err != nil {
		return fmt.Errorf("writing krb5.conf: %w", err)
	}
	return nil
}

// logBuffer keeps the newest limit bytes written to it, cut at a line start.
type logBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	cut   bool
}

// Write implements io.Writer.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.limit {
		drop := len(b.buf) - b.limit
		if i := slices.Index(b.buf[drop:], '\n'); i >= 0 {
			drop += i + 1
		}
		b.buf = append(b.buf[:0], b.buf[drop:]...)
		b.cut = true
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "…(earlier lines cut)\n" + string(b.buf)
	}
	return string(b.buf)
}
