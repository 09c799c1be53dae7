package kerbkittest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"

	"github.com/kerbkit/kerbkit/kerbkittest"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

func TestLoginWritesCCache(t *testing.T) {
	t.Parallel()
	realm := kerbkittest.New(t, kerbkittest.Options{Realm: "LOGIN.TEST"})
	alice := realm.AddUser("alice", "pw-1")
	if alice != "alice@LOGIN.TEST" {
		t.Errorf("AddUser returned %q", alice)
	}
	path := realm.Login("alice")
	if !strings.HasPrefix(path, realm.Dir) {
		t.Errorf("cache %s is outside the realm's directory %s", path, realm.Dir)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v, %v", fi, err)
	}
	cc, err := ticket.ReadCCacheFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cc.DefaultPrincipal.String() != alice || len(cc.Credentials) != 1 || cc.Credentials[0].Server.String() != "krbtgt/LOGIN.TEST@LOGIN.TEST" {
		t.Errorf("cache holds %s with %v", cc.DefaultPrincipal, cc.Credentials)
	}
	// gokrb5 reads it too.
	gc, err := credentials.LoadCCache(path)
	if err != nil {
		t.Fatalf("gokrb5 LoadCCache: %v", err)
	}
	if gc.DefaultPrincipal.Realm != "LOGIN.TEST" {
		t.Errorf("gokrb5 sees realm %q", gc.DefaultPrincipal.Realm)
	}
	// Each Login makes a new cache.
	if again := realm.Login("alice"); again == path {
		t.Errorf("second Login reused %s", path)
	}
}

func TestServiceKeytabLoginAndGoKRB5(t *testing.T) {
	t.Parallel()
	realm := kerbkittest.New(t, kerbkittest.Options{})
	kt := realm.AddService("HTTP/localhost")
	if fi, err := os.Stat(kt); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keytab: %v, %v", fi, err)
	}
	// A service logs in with its keytab, with kerbkit's client and gokrb5's.
	cc, err := ticket.ReadCCacheFile(realm.Login("HTTP/localhost"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cc.DefaultPrincipal.String(); got != "HTTP/localhost@"+kerbkittest.DefaultRealm {
		t.Errorf("cache principal %s", got)
	}
	cl := realm.GoKRB5Client("HTTP/localhost")
	if ok, err := cl.IsConfigured(); !ok || err != nil {
		t.Errorf("gokrb5 client not configured: %v", err)
	}
	if _, _, err := cl.GetServiceTicket("HTTP/localhost"); err != nil {
		t.Errorf("gokrb5 service ticket: %v", err)
	}
}

func TestHelpersFailTheTest(t *testing.T) {
	t.Parallel()
	ft := &fatalRecorder{TB: t}
	realm := kerbkittest.New(ft, kerbkittest.Options{})
	realm.AddUser("alice", "pw")
	for _, c := range []struct {
		name string
		call func()
		want string
	}{
		{"Login of a principal not added", func() { realm.Login("nobody") }, "Login nobody@KERBKIT.TEST: not added with AddUser or AddService"},
		{"AddUser twice", func() { realm.AddUser("alice", "pw") }, "AddUser alice@KERBKIT.TEST: "},
		{"AddService in another realm", func() { realm.AddService("HTTP/x@OTHER.TEST") }, "is not in realm KERBKIT.TEST"},
		{"GoKRB5Client of a principal not added", func() { realm.GoKRB5Client("bob") }, "GoKRB5Client bob@KERBKIT.TEST: not added"},
	} {
		if msg := ft.run(c.call); !strings.Contains(msg, c.want) {
			t.Errorf("%s: failure %q, want one containing %q", c.name, msg, c.want)
		}
	}
}

// fatalRecorder is a testing.TB whose Fatal records the message and ends only
// the goroutine of run, so a test can check how a helper fails.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }

// run calls fn in a goroutine and returns the Fatal message ("" if none).
func (f *fatalRecorder) run(fn func()) string {
	f.mu.Lock()
	f.msg = ""
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

func TestLibdefaultsReachClients(t *testing.T) {
	t.Parallel()
	realm := kerbkittest.New(t, kerbkittest.Options{Libdefaults: []string{"forwardable = true"}})
	realm.AddUser("alice", "pw")
	if !strings.Contains(realm.Krb5ConfText(), "    forwardable = true\n") {
		t.Fatalf("krb5.conf lacks the libdefaults line:\n%s", realm.Krb5ConfText())
	}
	cc, err := ticket.ReadCCacheFile(realm.Login("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if cc.Credentials[0].Flags&ticket.FlagForwardable == 0 {
		t.Errorf("forwardable = true in krb5.conf, TGT flags %s", ticket.FlagString(cc.Credentials[0].Flags))
	}
	// Lines added later are in the file and in every configuration read afterwards.
	realm.AddLibdefaults("proxiable = true")
	realm.AddRealmSettings("admin_server = 127.0.0.1:1")
	text, err := os.ReadFile(realm.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "    proxiable = true\n") || !strings.Contains(string(text), "        admin_server = 127.0.0.1:1\n") {
		t.Errorf("krb5.conf after AddLibdefaults/AddRealmSettings:\n%s", text)
	}
	if !realm.GoKRB5Config().LibDefaults.Proxiable || !realm.ClientConfig().Proxiable {
		t.Error("proxiable = true not seen by gokrb5 or kerbkit's client")
	}
	cc, err = ticket.ReadCCacheFile(realm.Login("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if cc.Credentials[0].Flags&ticket.FlagProxiable == 0 {
		t.Errorf("proxiable = true added, TGT flags %s", ticket.FlagString(cc.Credentials[0].Flags))
	}
}

func TestClockMovesTheKDC(t *testing.T) {
	t.Parallel()
	realm := kerbkittest.New(t, kerbkittest.Options{MaxLife: time.Hour})
	realm.AddUser("alice", "pw")
	realm.Clock.Advance(3 * time.Hour)
	cc, err := ticket.ReadCCacheFile(realm.Login("alice"))
	if err != nil {
		t.Fatal(err)
	}
	c := cc.Credentials[0]
	// The ticket is stamped with the KDC's clock, and kerbkit's client noted the offset.
	if d := time.Until(c.AuthTime); d < 3*time.Hour-time.Minute || d > 3*time.Hour+time.Minute {
		t.Errorf("authtime %v is %v from now, want about 3h", c.AuthTime, d)
	}
	if d := cc.KDCOffset; d < 3*time.Hour-time.Minute || d > 3*time.Hour+time.Minute {
		t.Errorf("cache KDC offset %v, want about 3h", d)
	}
	if life := c.EndTime.Sub(c.AuthTime); life > time.Hour {
		t.Errorf("MaxLife 1h, ticket life %v", life)
	}
	if !strings.Contains(realm.Log(), "alice@") {
		t.Errorf("KDC log lacks alice's request:\n%s", realm.Log())
	}
	// gokrb5 does not follow the KDC's clock: its pre-authentication is refused
	// for clock skew, as against a real KDC.
	ft := &fatalRecorder{TB: t}
	skewed := kerbkittest.New(ft, kerbkittest.Options{})
	skewed.AddUser("bob", "pw")
	skewed.Clock.Advance(time.Hour)
	if msg := ft.run(func() { skewed.GoKRB5Client("bob") }); !strings.Contains(msg, "gokrb5 login") {
		t.Errorf("gokrb5 login one hour off the KDC's clock: %q, want a failure", msg)
	}
}

func TestMITKinit(t *testing.T) {
	t.Parallel()
	kinitPath := testenv.RequireTool(t, "kinit")
	klistPath := testenv.RequireTool(t, "klist")
	realm := kerbkittest.New(t, kerbkittest.Options{Libdefaults: []string{"forwardable = true"}})
	realm.AddUser("alice", "alice-pw")
	ccache := filepath.Join(t.TempDir(), "cc")
	env := realm.Environ(ccache)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kinitPath, "alice")
	cmd.Env, cmd.Stdin = env, strings.NewReader("alice-pw\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	cmd = exec.CommandContext(ctx, klistPath, "-f")
	cmd.Env = append(env, "LC_ALL=C")
	listing, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, listing)
	}
	k, err := testenv.ParseKlist(string(listing))
	if err != nil {
		t.Fatal(err)
	}
	tgt := k.Ticket("krbtgt/" + realm.Name + "@" + realm.Name)
	if k.Principal != "alice@"+realm.Name || tgt == nil || !tgt.HasFlags("FIA") {
		t.Errorf("klist after kinit:\n%s", listing)
	}
	// A cache from Login is one MIT klist reads.
	cmd = exec.CommandContext(ctx, klistPath, "-s")
	cmd.Env = realm.Environ(realm.Login("alice"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("klist -s on Login's cache: %v %s", err, out)
	}
}

func TestEnvironLeavesTheProcessAlone(t *testing.T) {
	before := os.Environ()
	realm := kerbkittest.New(t, kerbkittest.Options{})
	realm.AddUser("alice", "pw")
	cc := realm.Login("alice")
	env := realm.Environ(cc)
	if after := os.Environ(); !slices.Equal(before, after) {
		t.Errorf("the process environment changed")
	}
	want := []string{"KRB5_CONFIG=" + realm.Krb5Conf, "KRB5CCNAME=FILE:" + cc, "KRB5RCACHETYPE=none"}
	for _, w := range want {
		if !slices.Contains(env, w) {
			t.Errorf("Environ lacks %s", w)
		}
	}
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, "KRB5") {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("Environ has %d KRB5 variables, want %d: %v", n, len(want), env)
	}
	if e := realm.Environ(""); slices.ContainsFunc(e, func(kv string) bool { return strings.HasPrefix(kv, "KRB5CCNAME=") }) {
		t.Error("Environ(\"\") sets KRB5CCNAME")
	}
}

func TestParallelRealmsAreIndependent(t *testing.T) {
	t.Parallel()
	addrs := make(chan string, 8)
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			t.Run("", func(t *testing.T) {
				t.Parallel()
				realm := kerbkittest.New(t, kerbkittest.Options{})
				realm.AddUser("alice", "pw")
				realm.Login("alice")
				cl := realm.GoKRB5Client("alice")
				if cl.Credentials.Realm() != kerbkittest.DefaultRealm {
					t.Errorf("realm %d: gokrb5 realm %q", i, cl.Credentials.Realm())
				}
				addrs <- realm.KDCAddr
			})
		}
	})
	close(addrs)
	seen := map[string]bool{}
	for a := range addrs {
		if seen[a] {
			t.Errorf("two realms on %s", a)
		}
		seen[a] = true
	}
	if len(seen) != 8 {
		t.Errorf("%d realms reported an address, want 8", len(seen))
	}
}

func TestStartAndClose(t *testing.T) {
	realm, err := kerbkittest.Start("", kerbkittest.Options{Realm: "START.TEST"})
	if err != nil {
		t.Fatal(err)
	}
	realm.AddUser("alice", "pw")
	realm.Login("alice")
	if err := realm.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(realm.Dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s: %v", realm.Dir, err)
	}
	if err := realm.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// A helper on a Start realm panics instead of failing a test.
	defer func() {
		if recover() == nil {
			t.Error("Login of an unknown principal did not panic on a Start realm")
		}
	}()
	realm2, err := kerbkittest.Start(t.TempDir(), kerbkittest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer realm2.Close()
	realm2.Login("nobody")
}

func TestEnctypes(t *testing.T) {
	t.Parallel()
	if _, err := kerbkittest.Start(t.TempDir(), kerbkittest.Options{Enctypes: []string{"des-cbc-crc"}}); err == nil || !strings.Contains(err.Error(), "Options.Enctypes") {
		t.Errorf("an enctype without key support: %v", err)
	}
	realm := kerbkittest.New(t, kerbkittest.Options{Enctypes: []string{"aes256-cts-hmac-sha384-192"}})
	realm.AddUser("alice", "pw")
	keys, err := realm.Admin().Show(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys.Enctypes, []string{"aes256-cts-hmac-sha384-192"}) {
		t.Errorf("alice's keys: %v", keys.Enctypes)
	}
	// alice has only that key: the login works with it.
	realm.Login("alice")
	if !strings.Contains(realm.Log(), "reply=aes256-cts-hmac-sha384-192") {
		t.Errorf("the AS-REP was not sealed in alice's aes256-sha384 key:\n%s", realm.Log())
	}
	// The default: MIT's default supported_enctypes.
	def := kerbkittest.New(t, kerbkittest.Options{})
	def.AddService("host/localhost")
	info, err := def.Admin().Show(context.Background(), "host/localhost")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Enctypes, kerbkittest.DefaultEnctypes) {
		t.Errorf("default enctypes %v, want %v", info.Enctypes, kerbkittest.DefaultEnctypes)
	}
}
