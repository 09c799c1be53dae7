package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

const testRealm = "KRB.TEST"

var (
	hostName  = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/localhost")
	httpName  = types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "HTTP/localhost")
	aliceName = types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice")
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a service keytab with known keys and an acceptor over it.
type env struct {
	t      testing.TB
	clock  *clock.Frozen
	ktPath string
	// hostKeys[kvno][etype] for host/localhost; HTTP/localhost has kvno 1 aes256.
	hostKeys map[int]map[int32]types.EncryptionKey
	httpKey  types.EncryptionKey
	log      *syncBuffer
	acc      *Acceptor
	cusecs   int // makes default cusecs unique, so AP-REQs built at the same fake time are not replays
}

func randKey(t testing.TB, etype int32) types.EncryptionKey {
	t.Helper()
	k, err := ticket.RandomKey(etype)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEnv writes a keytab with host/localhost kvno 1 and 2 (aes256, aes128)
// and HTTP/localhost kvno 1 (aes256), and builds an acceptor on a fake clock
// whose replay cache started an hour ago.
func newEnv(t testing.TB, mutate ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFrozen(), ktPath: filepath.Join(t.TempDir(), "service.keytab"),
		hostKeys: map[int]map[int32]types.EncryptionKey{}, log: &syncBuffer{}}
	var entries []ticket.KeytabEntry
	for _, kvno := range []int{1, 2} {
		e.hostKeys[kvno] = map[int32]types.EncryptionKey{}
		for _, et := range []int32{18, 17} {
			k := randKey(t, et)
			e.hostKeys[kvno][et] = k
			entries = append(entries, ticket.KeytabEntry{Principal: principal.FromPrincipalName(hostName, testRealm),
				Timestamp: e.clock.Now(), KVNO: uint32(kvno), Key: k})
		}
	}
	e.httpKey = randKey(t, 18)
	entries = append(entries, ticket.KeytabEntry{Principal: principal.FromPrincipalName(httpName, testRealm),
		Timestamp: e.clock.Now(), KVNO: 1, Key: e.httpKey})
	if err := ticket.WriteKeytabFile(e.ktPath, entries); err != nil {
		t.Fatal(err)
	}
	kt, err := LoadKeytab(e.ktPath)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Now:    e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.log, nil)),
		ReplayCache: NewReplayCache(ReplayCacheOptions{Now: e.clock.Now,
			Start: e.clock.Now().Add(-time.Hour)}),
	}
	for _, m := range mutate {
		m(&o)
	}
	if e.acc, err = NewAcceptor(kt, o); err != nil {
		t.Fatal(err)
	}
	return e
}

// tkt describes a ticket to seal.
type tkt struct {
	sname     types.PrincipalName
	key       types.EncryptionKey // service key; default host/localhost kvno 2 aes256
	kvno      int                 // default 2
	etype     int32               // session key enctype, default 18
	client    types.PrincipalName // default alice
	crealm    string              // default testRealm
	authTime  time.Time           // default now - 1 minute
	startTime time.Time           // default authTime
	endTime   time.Time           // default now + 10 hours
	flagBits  []int
}

// issue seals a ticket and returns it with its session key.
func (e *env) issue(o tkt) (messages.Ticket, types.EncryptionKey) {
	e.t.Helper()
	now := e.clock.Now()
	if o.sname.NameString == nil {
		o.sname = hostName
	}
	if o.key.KeyType == 0 {
		o.key = e.hostKeys[2][18]
		if o.kvno == 0 {
			o.kvno = 2
		}
	}
	if o.etype == 0 {
		o.etype = 18
	}
	if o.client.NameString == nil {
		o.client = aliceName
	}
	if o.crealm == "" {
		o.crealm = testRealm
	}
	if o.authTime.IsZero() {
		o.authTime = now.Add(-time.Minute)
	}
	if o.endTime.IsZero() {
		o.endTime = now.Add(10 * time.Hour)
	}
	session := randKey(e.t, o.etype)
	part := messages.EncTicketPart{
		Flags: ticket.Flags(append([]int{flags.Initial, flags.PreAuthent}, o.flagBits...)...),
		Key:   session, CRealm: o.crealm, CName: o.client,
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}},
		AuthTime:  o.authTime, StartTime: o.startTime, EndTime: o.endTime,
	}
	tk, err := ticket.SealTicket(testRealm, o.sname, part, o.key, o.kvno)
	if err != nil {
		e.t.Fatal(err)
	}
	return tk, session
}

// req describes an AP-REQ to build.
type req struct {
	ctime    time.Time // default now
	cusec    int       // default from ctime
	client   types.PrincipalName
	crealm   string
	noMutual bool
	u2u      bool
	subkey   bool // add an initiator subkey (same etype as the session key)
	seq      int64
	cksum    *types.Checksum // default: GSS 0x8003 with mutual|replay|conf|integ
	authKey  *types.EncryptionKey
	pvno     int
	msgType  int
}

// apreq builds an AP-REQ for tk with the session key and returns the bytes
// and the authenticator.
func (e *env) apreq(tk messages.Ticket, session types.EncryptionKey, o req) ([]byte, types.Authenticator) {
	e.t.Helper()
	if o.ctime.IsZero() {
		o.ctime = e.clock.Now()
		if o.cusec == 0 {
			e.cusecs++
			o.cusec = (o.ctime.Nanosecond()/1000 + e.cusecs) % 1000000
		}
	}
	if o.client.NameString == nil {
		o.client = aliceName
	}
	if o.crealm == "" {
		o.crealm = testRealm
	}
	auth := types.Authenticator{AVNO: 5, CRealm: o.crealm, CName: o.client, Cusec: o.cusec,
		CTime: o.ctime.UTC().Truncate(time.Second), SeqNumber: o.seq}
	if o.cksum != nil {
		auth.Cksum = *o.cksum
	} else {
		auth.Cksum = types.Checksum{CksumType: ticket.ChecksumTypeGSS,
			Checksum: ticket.GSSChecksum{Flags: ticket.GSSFlagMutual | ticket.GSSFlagReplay | ticket.GSSFlagConf | ticket.GSSFlagInteg}.Marshal()}
	}
	if o.subkey {
		auth.SubKey = randKey(e.t, session.KeyType)
	}
	ab, err := auth.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	k := session
	if o.authKey != nil {
		k = *o.authKey
	}
	ed, err := crypto.GetEncryptedData(ab, k, 11, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	opts := types.NewKrbFlags()
	if !o.noMutual {
		types.SetFlag(&opts, flags.APOptionMutualRequired)
	}
	if o.u2u {
		types.SetFlag(&opts, flags.APOptionUseSessionKey)
	}
	ap := messages.APReq{PVNO: 5, MsgType: 14, APOptions: opts, Ticket: tk, EncryptedAuthenticator: ed}
	if o.pvno != 0 {
		ap.PVNO = o.pvno
	}
	if o.msgType != 0 {
		ap.MsgType = o.msgType
	}
	b, err := ap.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	return b, auth
}

// good returns a fresh valid AP-REQ for host/localhost and its session key.
func (e *env) good(o req) ([]byte, types.EncryptionKey, types.Authenticator) {
	e.t.Helper()
	tk, session := e.issue(tkt{})
	b, auth := e.apreq(tk, session, o)
	return b, session, auth
}

// wantCode asserts err is an *APError with code.
func wantCode(t testing.TB, err error, code int32) *APError {
	t.Helper()
	var ae *APError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want *APError with code %d", err, err, code)
	}
	if ae.Code != code {
		t.Fatalf("code %d (%v), want %d", ae.Code, ae, code)
	}
	return ae
}

func (e *env) accept(b []byte) (*Context, []byte, error) {
	return e.acc.Accept(context.Background(), b)
}
