package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The etcd layout, under the prefix of the database URL: the same values as
// the bbolt buckets (see schema.go), one key per principal. The record bytes
// are exactly what bbolt stores, so every Record field carries over.
const (
	etcdMetaDir       = "meta/"
	etcdPrincipalsDir = "principals/"
	// etcdAliasesDir holds the alias index, as bbolt's aliases bucket: alias
	// name key → canonical name key, changed in the transaction that changes
	// the record, so that two admins can never give one name to two
	// principals. The in-memory index is derived from the records.
	etcdAliasesDir = "aliases/"
)

// Timeouts of the etcd backend.
const (
	// EtcdDialTimeout bounds connecting to etcd at open.
	EtcdDialTimeout = 5 * time.Second
	// EtcdWriteTimeout bounds one administrative change (a transaction and
	// its retries); past it the change fails with ErrUnreachable.
	EtcdWriteTimeout = 5 * time.Second
	// EtcdProbeInterval is how often the store checks that etcd answers a
	// linearizable read (which needs a quorum) and asks the watch for its
	// progress, for the health output.
	EtcdProbeInterval = time.Second
	// EtcdReloadAfter is how long etcd must have been unreachable for the
	// store to reload every record when it is back, rather than only resume
	// its watch (which alone is enough: a belt to the braces).
	EtcdReloadAfter = time.Minute
	// etcdPageSize is how many records one range request of a full load reads.
	etcdPageSize = 1000
	// etcdUpdateRetries bounds the retries of an Update whose record changed
	// between its read and its write.
	etcdUpdateRetries = 16
	// etcdTxnOps bounds the operations of one load transaction (etcd's
	// --max-txn-ops defaults to 128).
	etcdTxnOps = 100
)

// ErrUnreachable reports an administrative change that could not reach etcd
// (no quorum, no member answering). Logins go on from memory meanwhile.
var ErrUnreachable = errors.New("store: etcd unreachable")

// EtcdOptions are the connection settings of an etcd database.
type EtcdOptions struct {
	// CACert is a PEM file of the CA that signed the etcd servers'
	// certificates; setting it (or Cert) turns TLS on.
	CACert string
	// Cert and Key are the client certificate and key (PEM) for etcd's
	// client-certificate authentication.
	Cert, Key string
	// Username and Password are for etcd's own authentication.
	Username, Password string
	// Logger gets the backend's events (lost and regained contact, reloads).
	Logger *slog.Logger
	// NoWatch loads the records once and does not follow changes: for one-shot
	// commands.
	NoWatch bool
}

// IsEtcdURL reports whether a database argument names an etcd database
// (etcd://HOST:PORT[,HOST:PORT...]/PREFIX) rather than a bbolt file.
func IsEtcdURL(arg string) bool { return strings.HasPrefix(arg, "etcd://") }

// ParseEtcdURL splits etcd://HOST:PORT[,HOST:PORT...]/PREFIX into the
// endpoints and the key prefix ("/PREFIX/").
func ParseEtcdURL(arg string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(arg, "etcd://")
	if !ok {
		return nil, "", fmt.Errorf("store: %q is not an etcd:// URL", arg)
	}
	hosts, path, ok := strings.Cut(rest, "/")
	path = strings.Trim(path, "/")
	if !ok || path == "" {
		return nil, "", fmt.Errorf("store: %q: want etcd://HOST:PORT[,HOST:PORT...]/PREFIX (the prefix is required)", arg)
	}
	if strings.ContainsAny(hosts, "@?#") {
		// Not echoed: the URL may hold a password.
		return nil, "", errors.New("store: an etcd:// URL takes no credentials or options: give them with the --etcd-* flags")
	}
	for _, h := range strings.Split(hosts, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return nil, "", fmt.Errorf("store: %q: endpoint %q: want HOST:PORT", arg, h)
		}
		endpoints = append(endpoints, h)
	}
	return endpoints, "/" + path + "/", nil
}

// EtcdStore is a Store on an etcd cluster, shared by any number of KDCs.
//
// Every record lives in memory: Open loads them all, and a watch that resumes
// from the last revision it saw keeps them current (a full reload follows a
// compaction that outran it). Get, the request path, reads only memory, so it
// never waits for the network, and logins go on while etcd is unreachable.
// Changes are etcd transactions that compare revisions, so concurrent changes
// from several KDCs or admins never overwrite each other; after a change the
// store waits (briefly) for its own watch to deliver it, so a change is
// visible to the next Get of the process that made it.
type EtcdStore struct {
	cl     *clientv3.Client
	url    string // for messages: endpoints and prefix, no credentials
	prefix string
	mk     *MasterKey
	realm  string
	policy atomic.Pointer[principal.RealmPolicy]
	log    *slog.Logger

	// recs holds every record in the binary form (recordbin.go), checked to
	// decode when it was stored: about a quarter of the memory of the decoded
	// record, and no pointers for the collector to follow. The records in use
	// are decoded once, into the record cache.
	recs        sync.Map // name key → []byte
	recordCache          // reccache.go
	aliases     sync.Map // alias name key → canonical name key, from the records
	pols        sync.Map // policy name → *principal.Policy, never modified once stored
	count       atomic.Int64

	revMu   sync.Mutex
	rev     int64         // revision the cache reflects; under revMu
	revWake chan struct{} // closed and replaced when rev advances

	storeRev    atomic.Int64 // latest revision etcd reported
	lastContact atomic.Int64 // unix nanoseconds of the last answered probe
	reachable   atomic.Bool
	lastErr     atomic.Pointer[string]
	reloads     atomic.Int64
	started     time.Time

	watching    bool // the watch runs (not NoWatch)
	watchCtx    atomic.Pointer[context.Context]
	watchCancel atomic.Pointer[context.CancelFunc]
	forceReload atomic.Bool  // set by the probe after a long outage
	downSince   atomic.Int64 // unix nanoseconds etcd stopped answering, 0 while it answers
	reloadAfter atomic.Int64 // a time.Duration
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

var _ principal.Store = (*EtcdStore)(nil)

func newEtcdClient(arg string, o EtcdOptions) (*clientv3.Client, string, string, error) {
	endpoints, prefix, err := ParseEtcdURL(arg)
	if err != nil {
		return nil, "", "", err
	}
	cfg := clientv3.Config{
		DialTimeout:          EtcdDialTimeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		PermitWithoutStream:  true,
		Username:             o.Username,
		Password:             o.Password,
		Logger:               zap.NewNop(), // the store logs what matters itself
	}
	scheme := "http://"
	if o.CACert != "" || o.Cert != "" || o.Key != "" {
		tc, err := etcdTLS(o)
		if err != nil {
			return nil, "", "", err
		}
		cfg.TLS = tc
		scheme = "https://"
	}
	for _, e := range endpoints {
		cfg.Endpoints = append(cfg.Endpoints, scheme+e)
	}
	cl, err := clientv3.New(cfg)
	if err != nil {
		hint := ""
		if errors.Is(err, context.DeadlineExceeded) {
			hint = " (check the endpoints; a TLS cluster needs --etcd-ca and, if it asks for one, --etcd-cert/--etcd-key)"
		}
		return nil, "", "", fmt.Errorf("store: connecting to %s: %w%s", arg, err, hint)
	}
	return cl, prefix, arg, nil
}

func etcdTLS(o EtcdOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("store: etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store: etcd CA %s: no PEM certificate in it", o.CACert)
		}
		tc.RootCAs = pool
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, errors.New("store: etcd client certificate: give both the certificate and its key")
	}
	if o.Cert != "" {
		c, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			// The error names the files, never their contents.
			return nil, fmt.Errorf("store: etcd client certificate %s: %w", o.Cert, err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// unreachable turns a failed etcd call into one clear error.
func (s *EtcdStore) unreachable(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		switch ee.Code() {
		case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted:
			return fmt.Errorf("store: etcd refused (%s): %s: %s", s.url, what, ee.Error())
		}
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
		msg = "no member answers (" + st.Message() + ")"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "no answer within " + EtcdWriteTimeout.String()
	}
	return fmt.Errorf("%w (%s): %s: %s; logins go on from memory, retry the change when etcd has a quorum again", ErrUnreachable, s.url, what, msg)
}

// InitEtcd creates a realm under the prefix of an etcd URL: the schema
// version, the realm, its policy and the master key check, and
// krbtgt/REALM@REALM with random keys, in one transaction that fails if the
// prefix already holds a realm. The master key is created at mkPath (0600),
// which must not exist; every KDC of the realm needs a copy of it.
func InitEtcd(ctx context.Context, arg, mkPath, realm string, policy principal.RealmPolicy, o EtcdOptions, now time.Time) (err error) {
	if realm == "" {
		return fmt.Errorf("store: init: empty realm")
	}
	if mkPath == "" {
		return errors.New("store: init: an etcd database needs --master-key FILE (the file is created; copy it to every KDC)")
	}
	cl, prefix, url, err := newEtcdClient(arg, o)
	if err != nil {
		return err
	}
	defer cl.Close()
	mk, err := CreateMasterKeyFile(mkPath)
	if err != nil {
		return fmt.Errorf("store: init: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(mkPath)
		}
	}()
	policy = policy.WithDefaults()
	keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
	if err != nil {
		return err
	}
	tgs := principal.NewRecord(principal.Krbtgt(realm), keys, now)
	rec, err := encodeRecord(tgs, mk, formJSON)
	if err != nil {
		return err
	}
	meta, err := newMeta(mk, realm, policy)
	if err != nil {
		return err
	}
	ops := metaOps(prefix, meta)
	ops = append(ops, clientv3.OpPut(prefix+etcdPrincipalsDir+tgs.Name.Key(), string(rec)))
	pol, cp, _, _, err := etcdV2Puts(prefix, realm, mk, now)
	if err != nil {
		return err
	}
	ops = append(ops, pol, cp)
	s := &EtcdStore{url: url}
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := cl.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(prefix+etcdMetaDir+string(metaSchema)), "=", 0)).Then(ops...).Commit()
	if err != nil {
		return s.unreachable("init", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("store: init: %s already holds a realm", url)
	}
	return nil
}

// newMeta is the meta values of a new realm, as bbolt keeps them.
func newMeta(mk *MasterKey, realm string, policy principal.RealmPolicy) (map[string][]byte, error) {
	check, err := mk.Seal([]byte(keyCheckText), keyCheckAD)
	if err != nil {
		return nil, err
	}
	pol, err := json.Marshal(dbPolicy{MaxLife: int64(policy.MaxLife / time.Second), MaxRenew: int64(policy.MaxRenew / time.Second)})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		string(metaSchema): []byte(schemaEtcd), string(metaRealm): []byte(realm),
		string(metaPolicy): pol, string(metaKeyCheck): check,
	}, nil
}

func metaOps(prefix string, meta map[string][]byte) []clientv3.Op {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []clientv3.Op
	for _, k := range keys {
		ops = append(ops, clientv3.OpPut(prefix+etcdMetaDir+k, string(meta[k])))
	}
	return ops
}

// OpenEtcd opens the realm under the prefix of an etcd URL with the master
// key at mkPath: it checks the schema version and the master key as bbolt's
// Open does, loads every record, and (unless o.NoWatch) follows changes until
// Close.
func OpenEtcd(ctx context.Context, arg, mkPath string, o EtcdOptions) (*EtcdStore, error) {
	if _, _, err := ParseEtcdURL(arg); err != nil {
		return nil, err
	}
	if mkPath == "" {
		return nil, fmt.Errorf("%w: an etcd database needs --master-key FILE", ErrMasterKey)
	}
	mk, err := LoadMasterKeyFile(mkPath)
	if err != nil {
		return nil, err
	}
	cl, prefix, url, err := newEtcdClient(arg, o)
	if err != nil {
		return nil, err
	}
	s := &EtcdStore{cl: cl, url: url, prefix: prefix, mk: mk, log: o.Logger, revWake: make(chan struct{}), started: time.Now()}
	s.reloadAfter.Store(int64(EtcdReloadAfter))
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.loadMeta(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if err := s.reload(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	s.reachable.Store(true)
	s.lastContact.Store(time.Now().UnixNano())
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if !o.NoWatch {
		s.watching = true
		s.wg.Add(2)
		go s.watchLoop(bg)
		go s.probeLoop(bg)
	}
	return s, nil
}

func (s *EtcdStore) loadMeta(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := s.cl.Get(ctx, s.prefix+etcdMetaDir, clientv3.WithPrefix())
	if err != nil {
		return s.unreachable("open", err)
	}
	meta := map[string][]byte{}
	for _, kv := range resp.Kvs {
		meta[strings.TrimPrefix(string(kv.Key), s.prefix+etcdMetaDir)] = kv.Value
	}
	if len(meta) == 0 {
		return fmt.Errorf("%w at %s (create one with `kdc init`)", ErrNoDatabase, s.url)
	}
	v := string(meta[string(metaSchema)])
	if v != schemaEtcd && v != schemaV1 {
		return fmt.Errorf("%w: version %q, this kdc reads %q in etcd", ErrSchema, v, schemaEtcd)
	}
	if _, err := s.mk.Open(meta[string(metaKeyCheck)], keyCheckAD); err != nil {
		return fmt.Errorf("%w: the master key does not belong to this database", ErrMasterKey)
	}
	s.realm = string(meta[string(metaRealm)])
	if v == schemaV1 {
		if err := s.upgradeEtcd(ctx); err != nil { // upgrade.go
			return err
		}
	}
	return s.setPolicy(meta[string(metaPolicy)])
}

func (s *EtcdStore) setPolicy(v []byte) error {
	var p dbPolicy
	if err := json.Unmarshal(v, &p); err != nil {
		return fmt.Errorf("%w: realm policy: %w", principal.ErrCorrupt, err)
	}
	pol := principal.RealmPolicy{MaxLife: time.Duration(p.MaxLife) * time.Second, MaxRenew: time.Duration(p.MaxRenew) * time.Second}.WithDefaults()
	s.policy.Store(&pol)
	return nil
}

// reload reads every record at one revision and replaces the cache with them.
func (s *EtcdStore) reload(ctx context.Context) error {
	recs := map[string][]byte{}
	aliases := map[string]string{}
	rev, err := s.scan(ctx, func(key string, v []byte) error {
		d, err := s.checked(v)
		if err != nil {
			return err
		}
		recs[key] = marshalRecordBinary(d)
		for _, a := range d.Aliases {
			aliases[a] = key
		}
		return nil
	})
	if err != nil {
		return err
	}
	pols, err := s.scanPolicies(ctx, rev)
	if err != nil {
		return err
	}
	s.pols.Range(func(k, _ any) bool {
		if _, ok := pols[k.(string)]; !ok {
			s.pols.Delete(k)
		}
		return true
	})
	for k, p := range pols {
		s.pols.Store(k, p)
	}
	s.recs.Range(func(k, _ any) bool {
		if _, ok := recs[k.(string)]; !ok {
			s.recs.Delete(k)
		}
		return true
	})
	for k, r := range recs {
		s.recs.Store(k, r)
	}
	s.aliases.Range(func(k, _ any) bool {
		if _, ok := aliases[k.(string)]; !ok {
			s.aliases.Delete(k)
		}
		return true
	})
	for a, k := range aliases {
		s.aliases.Store(a, k)
	}
	s.invalidate("") // every record may have changed
	s.count.Store(int64(len(recs)))
	s.reloads.Add(1)
	s.setRev(rev, true)
	return nil
}

// scanPolicies reads every policy at revision rev.
func (s *EtcdStore) scanPolicies(ctx context.Context, rev int64) (map[string]*principal.Policy, error) {
	pctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	resp, err := s.cl.Get(pctx, s.prefix+etcdPoliciesDir, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, s.unreachable("reading the policies", err)
	}
	out := map[string]*principal.Policy{}
	for _, kv := range resp.Kvs {
		p, err := decodePolicy(kv.Value)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(string(kv.Key), s.prefix+etcdPoliciesDir)] = p
	}
	return out, nil
}

// scan calls fn for every principal record (name key, stored bytes) at one
// revision, in key order, a page at a time, and returns that revision.
func (s *EtcdStore) scan(ctx context.Context, fn func(key string, v []byte) error) (int64, error) {
	start := s.prefix + etcdPrincipalsDir
	end := clientv3.GetPrefixRangeEnd(start)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(etcdPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		pctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
		resp, err := s.cl.Get(pctx, start, opts...)
		cancel()
		if err != nil {
			return 0, s.unreachable("reading the records", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := fn(strings.TrimPrefix(string(kv.Key), s.prefix+etcdPrincipalsDir), kv.Value); err != nil {
				return 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// setRev records that the cache reflects revision rev (force: even if lower,
// after a reload).
func (s *EtcdStore) setRev(rev int64, force bool) {
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if rev > s.rev || force {
		s.rev = rev
		close(s.revWake)
		s.revWake = make(chan struct{})
	}
	if rev > s.storeRev.Load() {
		s.storeRev.Store(rev)
	}
}

// Revision is the etcd revision the in-memory records reflect.
func (s *EtcdStore) Revision() int64 {
	s.revMu.Lock()
	defer s.revMu.Unlock()
	return s.rev
}

// waitRev waits until the cache reflects rev, for at most timeout.
func (s *EtcdStore) waitRev(ctx context.Context, rev int64, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.revMu.Lock()
		cur, wake := s.rev, s.revWake
		s.revMu.Unlock()
		if cur >= rev {
			return true
		}
		select {
		case <-wake:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// watchLoop follows every change under the prefix from the cache's revision
// on. The watch needs a leader, so a member cut off from the quorum ends it
// and the loop starts another (on another member if one answers); a revision
// compacted meanwhile brings a full reload.
func (s *EtcdStore) watchLoop(ctx context.Context) {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		s.watchCtx.Store(&wctx)
		s.watchCancel.Store(&wcancel)
		from := s.Revision() + 1
		wch := s.cl.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify())
		compacted := false
		for resp := range wch {
			if resp.CompactRevision != 0 {
				compacted = true
				break
			}
			if err := resp.Err(); err != nil {
				s.noteErr("watch", err)
				break
			}
			backoff = 100 * time.Millisecond
			for _, ev := range resp.Events {
				s.apply(ev)
			}
			switch {
			case len(resp.Events) > 0:
				s.setRev(resp.Events[len(resp.Events)-1].Kv.ModRevision, false)
			case resp.IsProgressNotify():
				s.setRev(resp.Header.Revision, false)
			}
		}
		wcancel()
		if ctx.Err() != nil {
			return
		}
		if s.forceReload.Swap(false) {
			s.log.Info("store: etcd was unreachable for long; reloading every record", "url", s.url, "revision", s.Revision())
			compacted = true
		} else if compacted {
			s.log.Warn("store: etcd compacted past the cache's revision; reloading every record", "url", s.url, "revision", s.Revision())
		}
		if compacted {
			for ctx.Err() == nil {
				if err := s.reload(ctx); err == nil {
					s.log.Info("store: reloaded", "records", s.count.Load(), "revision", s.Revision())
					break
				} else {
					s.noteErr("reload", err)
				}
				sleepCtx(ctx, backoff)
				backoff = min(2*backoff, 2*time.Second)
			}
			continue
		}
		sleepCtx(ctx, backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// apply brings one watched change into the cache.
func (s *EtcdStore) apply(ev *clientv3.Event) {
	key := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
	switch {
	case strings.HasPrefix(key, etcdPrincipalsDir):
		name := strings.TrimPrefix(key, etcdPrincipalsDir)
		if ev.Type == clientv3.EventTypeDelete {
			if prev, ok := s.recs.LoadAndDelete(name); ok {
				s.count.Add(-1)
				s.dropAliases(name, prev.([]byte))
			}
			s.invalidate(name)
			return
		}
		d, err := s.checked(ev.Kv.Value)
		if err != nil {
			// Keep what we had: a record that does not decode is refused
			// rather than served half-read.
			s.log.Error("store: a changed record does not decode; keeping the previous one", "name", name, "err", err)
			return
		}
		prev, loaded := s.recs.Swap(name, marshalRecordBinary(d))
		if !loaded {
			s.count.Add(1)
		} else {
			s.dropAliases(name, prev.([]byte))
		}
		for _, a := range d.Aliases {
			s.aliases.Store(a, name)
		}
		s.invalidate(name)
	case strings.HasPrefix(key, etcdPoliciesDir):
		name := strings.TrimPrefix(key, etcdPoliciesDir)
		if ev.Type == clientv3.EventTypeDelete {
			s.pols.Delete(name)
			return
		}
		p, err := decodePolicy(ev.Kv.Value)
		if err != nil {
			s.log.Error("store: a changed policy does not decode; keeping the previous one", "policy", name, "err", err)
			return
		}
		s.pols.Store(name, p)
	case key == etcdMetaDir+string(metaPolicy) && ev.Type == clientv3.EventTypePut:
		if err := s.setPolicy(ev.Kv.Value); err != nil {
			s.log.Error("store: the realm policy does not decode; keeping the previous one", "err", err)
		}
	}
}

// dropAliases removes the in-memory aliases of prev, a record of name that
// was replaced or deleted (unless another record holds them by now).
// checked parses a record etcd holds and checks that it decodes and opens
// under the master key.
func (s *EtcdStore) checked(v []byte) (*dbRecord, error) {
	d, err := parseStored(v)
	if err != nil {
		return nil, err
	}
	if _, err := d.record(s.mk); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *EtcdStore) dropAliases(name string, prev []byte) {
	d, err := parseStored(prev)
	if err != nil {
		return // checked when it was stored
	}
	for _, a := range d.Aliases {
		s.aliases.CompareAndDelete(a, name)
	}
}

func (s *EtcdStore) noteErr(what string, err error) {
	msg := what + ": " + err.Error()
	s.lastErr.Store(&msg)
}

// probeLoop checks every EtcdProbeInterval that etcd answers a linearizable
// read, logs when that changes, and asks the watch for progress so the
// cache's revision follows the store's even when nothing under the prefix
// changes.
func (s *EtcdStore) probeLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(EtcdProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, EtcdProbeInterval)
		resp, err := s.cl.Get(pctx, s.prefix+etcdMetaDir+string(metaSchema))
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.noteErr("probe", err)
			if s.reachable.Swap(false) {
				s.downSince.Store(time.Now().UnixNano())
				s.log.Warn("store: etcd unreachable; serving logins from memory, admin changes fail until it is back", "url", s.url, "err", err, "revision", s.Revision())
			}
			continue
		}
		s.lastContact.Store(time.Now().UnixNano())
		if resp.Header.Revision > s.storeRev.Load() {
			s.storeRev.Store(resp.Header.Revision)
		}
		if !s.reachable.Swap(true) {
			down := time.Duration(time.Now().UnixNano() - s.downSince.Swap(0))
			s.log.Info("store: etcd reachable again; catching up", "url", s.url, "revision", s.Revision(), "store_revision", resp.Header.Revision, "down", down.Round(time.Millisecond))
			if down >= time.Duration(s.reloadAfter.Load()) {
				s.forceReload.Store(true)
				if c := s.watchCancel.Load(); c != nil {
					(*c)()
				}
			}
		}
		if wctx := s.watchCtx.Load(); wctx != nil {
			pctx, cancel := context.WithTimeout(*wctx, EtcdProbeInterval)
			_ = s.cl.RequestProgress(pctx)
			cancel()
		}
	}
}

// Health is what a store reports for the health endpoint.
type Health struct {
	Backend       string    `json:"backend"`
	Reachable     bool      `json:"reachable"`
	Records       int64     `json:"records,omitempty"`
	CacheRevision int64     `json:"cache_revision,omitempty"`
	StoreRevision int64     `json:"store_revision,omitempty"`
	LagRevisions  int64     `json:"lag_revisions"`
	LastContact   time.Time `json:"last_contact,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	Reloads       int64     `json:"reloads,omitempty"`
}

// Health implements the health report.
func (s *EtcdStore) Health() Health {
	h := Health{Backend: "etcd", Reachable: s.reachable.Load(), Records: s.count.Load(),
		CacheRevision: s.Revision(), StoreRevision: s.storeRev.Load(), Reloads: s.reloads.Load()}
	h.LagRevisions = max(0, h.StoreRevision-h.CacheRevision)
	if n := s.lastContact.Load(); n != 0 {
		h.LastContact = time.Unix(0, n).UTC()
	}
	if e := s.lastErr.Load(); e != nil && !h.Reachable {
		h.LastError = *e
	}
	return h
}

// URL is the database URL (no credentials).
func (s *EtcdStore) URL() string { return s.url }

// Realm implements Store.
func (s *EtcdStore) Realm() string { return s.realm }

// Policy implements Store.
func (s *EtcdStore) Policy() principal.RealmPolicy { return *s.policy.Load() }

// Get implements Store. It reads memory only. The record returned is the
// caller's to modify, but its Keys slice is shared and must not be written to.
func (s *EtcdStore) Get(ctx context.Context, name principal.Name) (*principal.Record, error) {
	rec, err := s.GetShared(ctx, name)
	if err != nil {
		return nil, err
	}
	r := *rec
	return &r, nil
}

// GetShared implements principal.SharedGetter: the record returned is the
// replica's and must not be modified (a watched change replaces it).
func (s *EtcdStore) GetShared(_ context.Context, name principal.Name) (*principal.Record, error) {
	key := name.Key()
	if rec, ok := s.load(key); ok {
		return rec, nil
	}
	gen := s.generation()
	v, ok := s.recs.Load(key)
	if !ok {
		// Not a principal: perhaps one of its aliases.
		if canon, isAlias := s.aliases.Load(key); isAlias {
			if rec, ok := s.load(canon.(string)); ok {
				return rec, nil
			}
			v, ok = s.recs.Load(canon)
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s", principal.ErrNotFound, name)
		}
	}
	rec, err := decodeRecord(v.([]byte), s.mk)
	if err != nil {
		return nil, err
	}
	// Cached under its own name only: a change invalidates that key.
	s.fill(rec.Name.Key(), gen, rec)
	return rec, nil
}

func (s *EtcdStore) key(name principal.Name) string {
	return s.prefix + etcdPrincipalsDir + name.Key()
}

func (s *EtcdStore) aliasKey(nameKey string) string {
	return s.prefix + etcdAliasesDir + nameKey
}

// aliasTxn is what a change of the aliases of the record of canon adds to its
// transaction: every new alias must be free (no principal, no alias) and is
// indexed; every dropped one leaves the index.
func (s *EtcdStore) aliasTxn(canon string, before, after []string) (cmps []clientv3.Cmp, ops []clientv3.Op) {
	had := map[string]bool{}
	for _, a := range before {
		had[a] = true
	}
	keep := map[string]bool{}
	for _, a := range after {
		keep[a] = true
		if !had[a] {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.aliasKey(a)), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(s.prefix+etcdPrincipalsDir+a), "=", 0))
			ops = append(ops, clientv3.OpPut(s.aliasKey(a), canon))
		}
	}
	for _, a := range before {
		if !keep[a] {
			ops = append(ops, clientv3.OpDelete(s.aliasKey(a)))
		}
	}
	return cmps, ops
}

// aliasClash names the first alias of added that is taken, after a
// transaction failed on it.
func (s *EtcdStore) aliasClash(ctx context.Context, canon string, added []string) error {
	for _, a := range added {
		if r, err := s.cl.Get(ctx, s.prefix+etcdPrincipalsDir+a, clientv3.WithCountOnly()); err == nil && r.Count > 0 {
			return fmt.Errorf("%w: %s is a principal", principal.ErrAliasConflict, a)
		}
		if r, err := s.cl.Get(ctx, s.aliasKey(a)); err == nil && len(r.Kvs) > 0 && string(r.Kvs[0].Value) != canon {
			return fmt.Errorf("%w: %s is an alias of %s", principal.ErrAliasConflict, a, r.Kvs[0].Value)
		}
	}
	return fmt.Errorf("%w: an alias of %s", principal.ErrAliasConflict, canon)
}

// down fails a change at once while the probe finds etcd unreachable, rather
// than after EtcdWriteTimeout: a KDC that counts login failures must not stall
// on each one during an outage.
func (s *EtcdStore) down(what string) error {
	if !s.watching || s.reachable.Load() {
		return nil
	}
	since := time.Unix(0, s.downSince.Load()).UTC().Format(time.TimeOnly)
	return fmt.Errorf("%w (%s): %s: no answer since %s UTC; logins go on from memory, retry the change when etcd has a quorum again", ErrUnreachable, s.url, what, since)
}

// settle waits for the watch to deliver a change this store made at rev, so
// that the next Get sees it.
func (s *EtcdStore) settle(ctx context.Context, rev int64) {
	if !s.watching {
		// A one-shot store follows no watch: read everything again, so
		// that its own change shows (one reload per change; such stores
		// make one or a few).
		if err := s.reload(ctx); err != nil {
			s.log.Warn("store: a change is written but reading it back failed", "err", err)
		}
		return
	}
	if !s.waitRev(ctx, rev, 2*time.Second) && s.watchCtx.Load() != nil {
		s.log.Warn("store: a change is written but not yet in this KDC's memory", "revision", rev, "cache_revision", s.Revision())
	}
}

// Create implements Store: one transaction that succeeds only if no record
// of that name exists.
func (s *EtcdStore) Create(ctx context.Context, rec *principal.Record) error {
	if rec.Name.Realm != s.realm && !rec.Name.IsIncomingTrust(s.realm) {
		return fmt.Errorf("store: %s is not in realm %s", rec.Name, s.realm)
	}
	if err := s.down("add " + rec.Name.String()); err != nil {
		return err
	}
	v, err := encodeRecord(rec, s.mk, formJSON)
	if err != nil {
		return err
	}
	k, canon := s.key(rec.Name), rec.Name.Key()
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(s.aliasKey(canon)), "=", 0)}
	acmps, aops := s.aliasTxn(canon, nil, nameKeys(rec.Aliases))
	resp, err := s.cl.Txn(ctx).If(append(cmps, acmps...)...).Then(append([]clientv3.Op{clientv3.OpPut(k, string(v))}, aops...)...).Commit()
	if err != nil {
		return s.unreachable("add "+rec.Name.String(), err)
	}
	if !resp.Succeeded {
		if r, err := s.cl.Get(ctx, k, clientv3.WithCountOnly()); err == nil && r.Count > 0 {
			return fmt.Errorf("%w: %s", principal.ErrExists, rec.Name)
		}
		if r, err := s.cl.Get(ctx, s.aliasKey(canon), clientv3.WithCountOnly()); err == nil && r.Count > 0 {
			return fmt.Errorf("%w: %s is an alias of another principal", principal.ErrExists, rec.Name)
		}
		return s.aliasClash(ctx, canon, nameKeys(rec.Aliases))
	}
	s.settle(ctx, resp.Header.Revision)
	return nil
}

// Update implements Store: it reads the record from etcd (not from memory),
// applies fn and writes the result in a transaction that succeeds only if
// the record has not changed since the read; otherwise it reads again and
// reapplies fn, so fn may run more than once.
func (s *EtcdStore) Update(ctx context.Context, name principal.Name, fn func(*principal.Record) error) error {
	if err := s.down("change " + name.String()); err != nil {
		return err
	}
	k := s.key(name)
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	for range etcdUpdateRetries {
		resp, err := s.cl.Get(ctx, k)
		if err != nil {
			return s.unreachable("change "+name.String(), err)
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("%w: %s", principal.ErrNotFound, name)
		}
		kv := resp.Kvs[0]
		rec, err := decodeRecord(kv.Value, s.mk)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		if !rec.Name.Equal(name) {
			return fmt.Errorf("store: update may not rename %s", name)
		}
		v, err := encodeRecord(rec, s.mk, formJSON)
		if err != nil {
			return err
		}
		before, err := recordAliases(kv.Value)
		if err != nil {
			return err
		}
		after := nameKeys(rec.Aliases)
		acmps, aops := s.aliasTxn(name.Key(), before, after)
		tr, err := s.cl.Txn(ctx).If(append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision)}, acmps...)...).
			Then(append([]clientv3.Op{clientv3.OpPut(k, string(v))}, aops...)...).Commit()
		if err != nil {
			return s.unreachable("change "+name.String(), err)
		}
		if tr.Succeeded {
			s.settle(ctx, tr.Header.Revision)
			return nil
		}
		if len(acmps) > 0 {
			// The record unchanged means an alias was taken meanwhile.
			if r, err := s.cl.Get(ctx, k); err == nil && len(r.Kvs) > 0 && r.Kvs[0].ModRevision == kv.ModRevision {
				return s.aliasClash(ctx, name.Key(), after)
			}
		}
	}
	return fmt.Errorf("store: change of %s: the record kept changing under it (%d tries)", name, etcdUpdateRetries)
}

// Delete implements Store.
func (s *EtcdStore) Delete(ctx context.Context, name principal.Name) error {
	if name.Equal(principal.Krbtgt(s.realm)) {
		return fmt.Errorf("store: refusing to delete %s: the realm cannot issue tickets without it", name)
	}
	if err := s.down("delete " + name.String()); err != nil {
		return err
	}
	k := s.key(name)
	ctx, cancel := context.WithTimeout(ctx, EtcdWriteTimeout)
	defer cancel()
	for range etcdUpdateRetries {
		resp, err := s.cl.Get(ctx, k)
		if err != nil {
			return s.unreachable("delete "+name.String(), err)
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("%w: %s", principal.ErrNotFound, name)
		}
		kv := resp.Kvs[0]
		aliases, err := recordAliases(kv.Value)
		if err != nil {
			return err
		}
		ops := []clientv3.Op{clientv3.OpDelete(k)}
		for _, a := range aliases {
			ops = append(ops, clientv3.OpDelete(s.aliasKey(a)))
		}
		tr, err := s.cl.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision)).Then(ops...).Commit()
		if err != nil {
			return s.unreachable("delete "+name.String(), err)
		}
		if tr.Succeeded {
			s.settle(ctx, tr.Header.Revision)
			return nil
		}
	}
	return fmt.Errorf("store: delete of %s: the record kept changing under it (%d tries)", name, etcdUpdateRetries)
}

// List implements Store, from memory.
func (s *EtcdStore) List(ctx context.Context) ([]principal.Name, error) {
	var names []principal.Name
	var err error
	s.recs.Range(func(_, v any) bool {
		var d *dbRecord
		var n principal.Name
		if d, err = parseStored(v.([]byte)); err == nil {
			n, err = d.name()
		}
		names = append(names, n)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(names, func(i, j int) bool { return names[i].String() < names[j].String() })
	return names, nil
}

// Check reads every record from etcd and checks that it decodes and opens
// under the master key; it reports names, never values.
func (s *EtcdStore) Check() error {
	var problems []string
	n := 0
	_, err := s.scan(context.Background(), func(key string, v []byte) error {
		n++
		if _, err := decodeRecord(v, s.mk); err != nil && len(problems) < maxCheckErrors {
			problems = append(problems, fmt.Sprintf("%q: %v", key, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrDamaged, s.url, strings.Join(problems, "; "))
	}
	return nil
}

// Close implements Store.
func (s *EtcdStore) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return s.cl.Close()
}
