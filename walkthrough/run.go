package walkthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/service"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

// Defaults of the walkthrough's throw-away realm.
const (
	DefaultRealm    = "KERBKIT.TEST"
	DefaultUser     = "alice"
	DefaultPassword = "walkthrough-password"
	DefaultService  = "host/localhost"
	DefaultMessage  = "hello from the walkthrough"
	// realmMaxLife is the realm's ticket lifetime cap: shorter than the client's 24h request, so the story shows a
	// KDC shortening a ticket.
	realmMaxLife = 10 * time.Hour
	// stepTimeout bounds the whole run: everything is on loopback and takes milliseconds, but a machine busy
	// with other work (a full test suite under -race, on two cores) has been seen to need more than 20 s.
	stepTimeout = 60 * time.Second
)

// RunOptions configure Run; the zero value runs the standard story.
type RunOptions struct {
	Realm, User, Password, Service, Message string
	// TempDir is where the temporary realm directory is made ("" means os.TempDir()).
	TempDir string
	// Logger receives the KDC's and the service's log lines; nil discards them.
	Logger *slog.Logger
}

func (o *RunOptions) defaults() {
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.Service == "" {
		o.Service = DefaultService
	}
	if o.Message == "" {
		o.Message = DefaultMessage
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Run plays the whole story with nothing to set up and returns it: it creates a realm in a temporary bbolt store
// (a user with a password, a service with a random key), starts the KDC on 127.0.0.1:0 over UDP and TCP and the
// GSS sample service on 127.0.0.1:0 over TCP, then runs the real client: AS exchange with pre-authentication,
// TGS exchange, AP exchange with mutual authentication and one sealed message. Every message is recorded on the
// way and explained with all the realm's keys. Everything is stopped and removed before Run returns.
func Run(ctx context.Context, o RunOptions) (*Story, error) {
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	env, err := startRealm(ctx, o, realmSpec{})
	if err != nil {
		return nil, err
	}
	defer env.Close()
	db := env.store

	// The recorder knows every key of the realm, and hears the KDC's and the service's checks.
	rec := NewRecorder(Options{
		View: ViewRealm, RealmKey: storeKeys(db), Password: o.Password, HasPassword: true,
		ShowPassword: true, ShowKeys: true,
	})
	env.listen(rec)
	user, err := client.ParsePrincipal(o.User, o.Realm)
	if err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	svc, err := client.ParsePrincipal(o.Service, o.Realm)
	if err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	// The first thing that happens: the user types the password. The salt and enctype are those the realm keeps
	// for the user, which the KDC will announce in PA-ETYPE-INFO2.
	if rec2, err := db.Get(ctx, user); err == nil {
		if ks := rec2.CurrentKeys(); len(ks) > 0 {
			rec.StringToKey(user, ks[0].Etype, ks[0].Salt, nil,
				"the realm's record of "+user.String()+"; the KDC announces the same in PA-ETYPE-INFO2")
		}
	}

	cfg := &client.Config{Realm: o.Realm, KDCs: map[string][]string{o.Realm: {env.kdcAddr}}}
	c, err := client.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	c.Trace = rec.Trace

	as, err := c.Login(ctx, client.ASRequest{Client: user, Secret: client.PasswordSecret(o.Password)})
	if err != nil {
		return nil, fmt.Errorf("walkthrough: AS exchange: %w", err)
	}
	// The KDC, the service and the client share one clock here, so no clock offset is applied. (as.KDCOffset
	// compares a whole-second authtime with a precise local time and comes out as -1s when the reply crosses a
	// second boundary; the freshly started service would then refuse the authenticator as older than its replay
	// cache.)
	tgs, err := c.TGS(ctx, client.TGSRequest{TGT: as.Credential, Server: svc})
	if err != nil {
		return nil, fmt.Errorf("walkthrough: TGS exchange: %w", err)
	}
	ap, err := client.NewAPRequest(tgs.Credential, client.APOptions{})
	if err != nil {
		return nil, fmt.Errorf("walkthrough: AP-REQ: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", env.svcAddr)
	if err != nil {
		return nil, fmt.Errorf("walkthrough: connect to the service: %w", err)
	}
	_, err = client.GSSSample(ctx, rec.RecordConn(conn), ap, client.GSSSampleOptions{Message: []byte(o.Message), Timeout: 5 * time.Second})
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("walkthrough: AP exchange: %w", err)
	}
	rec.Flush()

	st := &Story{
		Title: "Kerberos, message by message", View: ViewRealm,
		Realm: o.Realm, Client: user.String(), Service: svc.String(),
		KDCAddr: env.kdcAddr, ServiceAddr: env.svcAddr,
		Steps: rec.Steps(),
	}
	st.Intro = []string{
		fmt.Sprintf("This walkthrough created the realm %s in a temporary bbolt database, with the user %s (password %q) and "+
			"the service %s (a random key, exported to a keytab). It started the KDC on %s, answering over UDP and TCP, "+
			"and the GSS sample service on %s over TCP, then ran the real client against them: a login with "+
			"pre-authentication, a service ticket, and an authenticated, mutually verified request.",
			o.Realm, user, o.Password, svc, env.kdcAddr, env.svcAddr),
		"Every message below is the one that really crossed the loopback interface. The walkthrough owns the realm, so it " +
			"knows every key (the user's, krbtgt's and the service's) and opens every encrypted part; a real client could " +
			"open only some of them (kclient login|ticket|request --explain shows that view).",
		"The letters A to H are those of the classic description of Kerberos; the names beside them are RFC 4120's. " +
			"The Authentication Service (AS) and the Ticket-Granting Service (TGS) are two services of the same KDC, at the same address.",
	}
	st.Outro = []string{
		"The client now shares a key with the service that no one else but the KDC ever knew, and each side has proved to the " +
			"other that it holds it. The password never left the client; the service never talked to the KDC.",
	}
	return st, nil
}

// realmEnv is a running throw-away realm: the store, the KDC and the service.
type realmEnv struct {
	dir              string
	store            *store.BoltStore
	admin            *kdc.LocalAdmin
	kdcAddr, svcAddr string
	closers          []func()
	// obs forwards what the KDC and the service report of their checks to a recorder (see listen).
	obs *observers
	// svcLog holds the service's log lines (what kservice would print).
	svcLog *logBuffer
}

// realmSpec varies the realm for failure stories; the zero value is the standard realm.
type realmSpec struct {
	// userNoPreauth creates the user without the requires-preauth flag.
	userNoPreauth bool
	// servicePassword derives the service's key from a password instead of a random key.
	servicePassword string
	// kdcNow and serviceNow are the KDC's and the service's clocks (nil: time.Now).
	kdcNow, serviceNow func() time.Time
}

// listen makes rec hear the checks the KDC and the service report.
func (e *realmEnv) listen(rec *Recorder) { e.obs.set(rec) }

// observers hands the service's stage results to the recorder set last; nil until then.
type observers struct {
	mu  sync.Mutex
	rec *Recorder
}

func (o *observers) set(r *Recorder) {
	o.mu.Lock()
	o.rec = r
	o.mu.Unlock()
}

func (o *observers) get() *Recorder {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rec
}

// kdc is the kdc.Config.Observer of the realm's KDC.
func (o *observers) kdc(res kdc.StageResult) {
	if r := o.get(); r != nil {
		ob := Observed{By: ActorAS, Stage: res.Stage}
		if res.Exchange == "TGS" {
			ob.By = ActorTGS
		}
		if e := res.Err; e != nil {
			ob.Failed, ob.Detail = true, codeName(e.Code)+", e-text "+strconv.Quote(e.Status)
			if e.Cause != nil {
				ob.Detail += ": " + e.Cause.Error()
			}
		}
		r.Observe(ob)
	}
}

// service is the service.Options.Observer of the realm's service.
func (o *observers) service(res service.StageResult) {
	if r := o.get(); r != nil {
		ob := Observed{By: ActorService, Stage: res.Stage}
		if res.Err != nil {
			ob.Failed, ob.Detail = true, codeName(res.Err.Code)+": "+strings.TrimPrefix(res.Err.Reason, "service: ")
		}
		r.Observe(ob)
	}
}

// Close stops the service and the KDC, closes the store and removes the directory.
func (e *realmEnv) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// startRealm creates the realm in a temporary bbolt store (krbtgt, the user with o.Password, the service with a
// random key), starts the KDC on 127.0.0.1:0 over UDP and TCP, and the GSS sample service on 127.0.0.1:0.
func startRealm(ctx context.Context, o RunOptions, spec realmSpec) (_ *realmEnv, err error) {
	o.defaults()
	e := &realmEnv{obs: &observers{}, svcLog: &logBuffer{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	dir, err := os.MkdirTemp(o.TempDir, "kerbkit-walkthrough-")
	if err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	e.dir = dir
	e.closers = append(e.closers, func() { os.RemoveAll(dir) })

	db, err := store.Init(ctx, filepath.Join(dir, "kdc.db"), o.Realm,
		principal.RealmPolicy{MaxLife: realmMaxLife}, time.Now())
	if err != nil {
		return nil, fmt.Errorf("walkthrough: create realm: %w", err)
	}
	e.store = db
	e.closers = append(e.closers, func() { db.Close() })
	e.admin = &kdc.LocalAdmin{Store: db}
	if _, err := e.admin.Add(ctx, kdc.AddRequest{Name: o.User, Password: o.Password, NoPreauth: spec.userNoPreauth}); err != nil {
		return nil, fmt.Errorf("walkthrough: add %s: %w", o.User, err)
	}
	svcReq := kdc.AddRequest{Name: o.Service, RandomKey: true}
	if spec.servicePassword != "" {
		svcReq = kdc.AddRequest{Name: o.Service, Password: spec.servicePassword}
	}
	if _, err := e.admin.Add(ctx, svcReq); err != nil {
		return nil, fmt.Errorf("walkthrough: add %s: %w", o.Service, err)
	}

	// The KDC, over real UDP and TCP.
	k, err := kdc.New(kdc.Config{Store: db, Logger: o.Logger, Now: spec.kdcNow, Observer: e.obs.kdc})
	if err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	srv := kdc.NewServer(k, o.Logger)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("walkthrough: KDC: %w", err)
	}
	srvCtx, stopKDC := context.WithCancel(context.Background())
	kdcDone := make(chan error, 1)
	go func() { kdcDone <- srv.Serve(srvCtx) }()
	e.closers = append(e.closers, func() { stopKDC(); <-kdcDone })
	e.kdcAddr = srv.Addr()

	// The service: its keys exported to a keytab file, served by the GSS sample server.
	svcAddr, stopService, err := startService(ctx, e, o, spec)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, stopService)
	e.svcAddr = svcAddr
	return e, nil
}

// startService exports the service's keys to a keytab and serves the GSS sample protocol on 127.0.0.1:0.
func startService(ctx context.Context, e *realmEnv, o RunOptions, spec realmSpec) (string, func(), error) {
	dir := e.dir
	entries, err := e.admin.Keytab(ctx, []string{o.Service})
	if err != nil {
		return "", nil, fmt.Errorf("walkthrough: keytab: %w", err)
	}
	path := filepath.Join(dir, "service.keytab")
	if err := ticket.WriteKeytabFile(path, entries); err != nil {
		return "", nil, fmt.Errorf("walkthrough: keytab: %w", err)
	}
	kt, err := service.LoadKeytab(path)
	if err != nil {
		return "", nil, fmt.Errorf("walkthrough: keytab: %w", err)
	}
	// The service's log lines go to the run's logger and are kept, to show what kservice prints.
	logger := slog.New(teeHandler{o.Logger.Handler(), slog.NewTextHandler(e.svcLog, &slog.HandlerOptions{ReplaceAttr: dropTime})})
	acc, err := service.NewAcceptor(kt, service.Options{Logger: logger, Service: o.Service, Now: spec.serviceNow,
		Observer: e.obs.service})
	if err != nil {
		return "", nil, fmt.Errorf("walkthrough: service: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("walkthrough: service: %w", err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ss := &service.SampleServer{Acceptor: acc, Logger: logger}
	go func() { done <- ss.Serve(sctx, ln) }()
	return ln.Addr().String(), func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			o.Logger.Warn("walkthrough: service stopped", "err", err)
		}
	}, nil
}

// storeKeys looks long-term keys up in the realm's database.
func storeKeys(db principal.Store) func(p principal.Name, etype int32, kvno int) (types.EncryptionKey, int, bool) {
	return func(p principal.Name, etype int32, kvno int) (types.EncryptionKey, int, bool) {
		rec, err := db.Get(context.Background(), p)
		if err != nil {
			return types.EncryptionKey{}, 0, false
		}
		k, ok := rec.FindKey(etype, uint32(max(kvno, 0)))
		if !ok {
			return types.EncryptionKey{}, 0, false
		}
		return k.EncryptionKey(), int(k.KVNO), true
	}
}

// Trace records a message the client reports through client.Client.Trace.
func (r *Recorder) Trace(ev client.Event) {
	w := Wire{Data: ev.Data, Sent: ev.Sent, Addr: ev.KDC, Network: string(ev.Network), Round: ev.Round, Time: ev.Time}
	switch ev.Message {
	case "AP-REQ", "AP-REP":
		w.Service = true
	}
	r.Add(w)
}
