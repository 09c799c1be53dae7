package kdc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The hostile-input suite of issue 8: packets shaped like the ones behind past
// KDC advisories, fields sized by an attacker, and the memory and log bounds
// they must stay within. Each case is sent to a real server on 127.0.0.1; the
// KDC must answer with a KRB-ERROR or drop the packet, never panic, and still
// log a user in afterwards.

// hostileCase is one packet and what may come back.
type hostileCase struct {
	name string
	pkt  func(t *testing.T, r *testRealmEnv) []byte
	// code is the KRB-ERROR expected; 0 means any KRB-ERROR or none (the
	// packet dropped): only a panic, or a large reply, fails.
	code int32
}

func hostileCases() []hostileCase {
	as := func(edit func(*messages.ASReq)) func(*testing.T, *testRealmEnv) []byte {
		return func(t *testing.T, _ *testRealmEnv) []byte {
			q := asReq("alice")
			edit(&q)
			return marshalAS(t, q)
		}
	}
	tgs := func(edit func(*tgsBuilder)) func(*testing.T, *testRealmEnv) []byte {
		return func(t *testing.T, r *testRealmEnv) []byte {
			tgt, part := r.login(nil)
			b := newTGS(r, tgt, part)
			b.t = t
			edit(b)
			return b.marshal()
		}
	}
	return []hostileCase{
		// CVE-2013-1416 / CVE-2021-37750 shapes: requests without a server name
		// (MIT dereferenced the missing field).
		{"AS-REQ without sname", as(func(q *messages.ASReq) { q.ReqBody.SName = types.PrincipalName{} }),
			errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN},
		{"TGS-REQ without sname", tgs(func(b *tgsBuilder) { b.Body.SName = types.PrincipalName{} }),
			errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN},
		{"TGS-REQ with an empty PA-FX-FAST", tgs(func(b *tgsBuilder) {
			b.PAData = func(pa []types.PAData) []types.PAData {
				return append(pa, types.PAData{PADataType: patype.PA_FX_FAST, PADataValue: []byte{0xa0, 0x00}})
			}
		}), 0},
		{"TGS-REQ without PA-TGS-REQ", tgs(func(b *tgsBuilder) {
			b.PAData = func([]types.PAData) []types.PAData { return nil }
		}), errorcode.KDC_ERR_PADATA_TYPE_NOSUPP},
		// CVE-2020-28196: unbounded recursion on nested indefinite lengths.
		{"nested indefinite-length BER", func(*testing.T, *testRealmEnv) []byte {
			return append([]byte{0x6a, 0x80}, bytes.Repeat([]byte{0x30, 0x80}, 50000)...)
		}, 0},
		{"deeply nested definite lengths", func(*testing.T, *testRealmEnv) []byte {
			inner := []byte{0x05, 0x00}
			for i := 0; i < 2000; i++ {
				inner = wrapDER(0x30, inner)
			}
			return wrapDER(0x6a, inner)
		}, 0},
		// Lengths that claim more than the packet holds.
		{"inner length past the end", func(*testing.T, *testRealmEnv) []byte {
			return []byte{0x6a, 0x0a, 0x30, 0x08, 0xa1, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01}
		}, 0},
		// CVE-2017-11368 shape: ENC-TKT-IN-SKEY without the additional ticket.
		{"ENC-TKT-IN-SKEY without a second ticket", tgs(func(b *tgsBuilder) {
			types.SetFlag(&b.Body.KDCOptions, flags.EncTktInSkey)
		}), errorcode.KDC_ERR_BADOPTION},
		// S4U2Self padata (PA-FOR-USER 129) that is garbage: MIT's DECODE_PA_FOR_USER.
		{"garbage PA-FOR-USER", tgs(func(b *tgsBuilder) {
			b.PAData = func(pa []types.PAData) []types.PAData {
				return append(pa, types.PAData{PADataType: 129, PADataValue: []byte{0xff, 0x00, 0x01}})
			}
		}), errorcode.KRB_ERR_GENERIC},
		// Orpheus' Lyre (CVE-2017-11103) shape: a ticket whose clear sname is
		// krbtgt but whose enc-part is garbage.
		{"TGT with a garbage enc-part", tgs(func(b *tgsBuilder) {
			b.TGT.EncPart.Cipher = bytes.Repeat([]byte{0x41}, 64)
		}), errorcode.KRB_AP_ERR_BAD_INTEGRITY},
		{"TGT enc-part of one byte", tgs(func(b *tgsBuilder) { b.TGT.EncPart.Cipher = []byte{0x01} }),
			errorcode.KRB_AP_ERR_BAD_INTEGRITY},
		{"authenticator of zero bytes", tgs(func(b *tgsBuilder) {
			b.EditAPReq = func(a *messages.APReq) { a.EncryptedAuthenticator.Cipher = nil }
		}), errorcode.KRB_AP_ERR_BAD_INTEGRITY},
		// Sizes chosen by the attacker.
		{"100,000 enctypes", as(func(q *messages.ASReq) {
			q.ReqBody.EType = make([]int32, 100000)
			for i := range q.ReqBody.EType {
				q.ReqBody.EType[i] = int32(1000 + i)
			}
			q.ReqBody.EType[len(q.ReqBody.EType)-1] = 18
		}), errorcode.KDC_ERR_PREAUTH_REQUIRED},
		{"10,000 padata", as(func(q *messages.ASReq) {
			for i := 0; i < 10000; i++ {
				q.PAData = append(q.PAData, types.PAData{PADataType: int32(200 + i%50), PADataValue: []byte{0}})
			}
		}), errorcode.KDC_ERR_PREAUTH_REQUIRED},
		{"garbage PA-ENC-TIMESTAMP of 64 KB", as(func(q *messages.ASReq) {
			q.PAData = types.PADataSequence{{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: bytes.Repeat([]byte{0x30}, 65536)}}
		}), errorcode.KDC_ERR_PREAUTH_FAILED},
		{"cname of 10,000 components", as(func(q *messages.ASReq) {
			q.ReqBody.CName = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: strings.Split(strings.Repeat("a/", 9999)+"a", "/")}
		}), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{"cname component of 100 KB", as(func(q *messages.ASReq) {
			q.ReqBody.CName.NameString = []string{strings.Repeat("x", 100000)}
		}), errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{"sname component of 100 KB", as(func(q *messages.ASReq) {
			q.ReqBody.SName.NameString = []string{"krbtgt", strings.Repeat("x", 100000)}
		}), errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN},
		{"realm of 100 KB", as(func(q *messages.ASReq) { q.ReqBody.Realm = strings.Repeat("R", 100000) }),
			errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{"1,000 addresses", as(func(q *messages.ASReq) {
			for i := 0; i < 1000; i++ {
				q.ReqBody.Addresses = append(q.ReqBody.Addresses, types.HostAddress{AddrType: 2, Address: []byte{10, 0, byte(i >> 8), byte(i)}})
			}
		}), errorcode.KDC_ERR_PREAUTH_REQUIRED},
		{"nonce of 1,000 bytes", func(t *testing.T, _ *testRealmEnv) []byte {
			// Replace the INTEGER of the nonce field [7] by a 1000-byte one.
			b := marshalAS(t, asReq("alice"))
			old := []byte{0xa7, 0x05, 0x02, 0x03, 0x01, 0xe2, 0x40} // 123456
			if !bytes.Contains(b, old) {
				t.Fatal("nonce encoding not found")
			}
			big := wrapDER(0xa7, wrapDER(0x02, append([]byte{0x01}, make([]byte, 999)...)))
			return reframeAS(bytes.Replace(b, old, big, 1))
		}, 0},
		{"KerberosTime with an offset", func(t *testing.T, _ *testRealmEnv) []byte {
			b := marshalAS(t, asReq("alice"))
			i := bytes.Index(b, []byte{0xa5, 0x11, 0x18, 0x0f})
			if i < 0 {
				t.Fatal("till not found")
			}
			out := append([]byte(nil), b[:i]...)
			out = append(out, wrapDER(0xa5, wrapDER(0x18, []byte("20261231235959+0100")))...)
			return reframeAS(append(out, b[i+19:]...))
		}, 0},
	}
}

// wrapDER wraps content in a DER element with the given tag.
func wrapDER(tag byte, content []byte) []byte {
	b, _ := asn1.Marshal(asn1.RawValue{FullBytes: nil, Class: int(tag >> 6), IsCompound: tag&0x20 != 0, Tag: int(tag & 0x1f), Bytes: content})
	return b
}

// reframeAS fixes the two outer lengths (APPLICATION 10 and its SEQUENCE) of
// an AS-REQ after its inside was edited.
func reframeAS(b []byte) []byte {
	var outer, seq asn1.RawValue
	if _, err := asn1.Unmarshal(b, &outer); err != nil {
		// The edit broke the inner length; rebuild from the first inner byte.
		return b
	}
	if _, err := asn1.Unmarshal(outer.Bytes, &seq); err != nil {
		return b
	}
	return wrapDER(0x6a, wrapDER(0x30, seq.Bytes))
}

func TestHostilePackets(t *testing.T) {
	r := newTestRealm(t)
	r.serve()
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			pkt := tc.pkt(t, r)
			reply, ok := r.kdc.Handle(context.Background(), pkt, TCP, nil)
			if r.kdc.Panics() != 0 {
				t.Fatalf("the KDC panicked")
			}
			switch {
			case tc.code != 0 && !ok:
				t.Fatalf("no reply, want KRB-ERROR %d", tc.code)
			case tc.code != 0:
				expectError(t, reply, tc.code)
			}
			if ok && len(reply) > 4096 {
				t.Fatalf("a %d-byte reply to a hostile packet", len(reply))
			}
			// The same packet over the network, then a normal login.
			if len(pkt) <= MaxTCPMessage {
				c := dialFrom(t, "127.0.0.1", r.addr)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				writeFrame(t, c, pkt)
				c.Read(make([]byte, 1))
				c.Close()
			}
			r.login(nil)
		})
	}
}

// rssBytes is the resident set size of this process.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// settle collects garbage and returns freed memory to the OS, then reports the
// live heap and the RSS.
func settle(t *testing.T) (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), rssBytes(t)
}

// Bounds of the oversized-request attack: what the KDC may keep after 400
// distinct 1 MB requests, and the log it may write per request.
const (
	maxRetainedAfterAttack = 32 << 20
	maxLogBytesPerRequest  = 1024
)

// TestOversizedRequestsKeepMemoryAndLogsBounded is the regression test of issue
// 8: 400 distinct 1 MB AS-REQs over TCP grew the KDC by 744 MB (still 520 MB
// four minutes later) and wrote 421 MB of log, because the KRB-ERROR echoed the
// 1 MB realm, the lookaside cache kept those replies and the log line copied the
// realm.
func TestOversizedRequestsKeepMemoryAndLogsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 400 MB")
	}
	logs := &lineCounter{}
	r := newTestRealm(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	r.serve()
	r.login(nil)
	heap0, rss0 := settle(t)
	_, log0, _ := logs.counts()

	const requests, workers = 400, 4
	base := marshalAS(t, func() messages.ASReq {
		q := asReq("alice")
		q.ReqBody.Realm = strings.Repeat("R", 1<<20-600)
		return q
	}())
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			pkt := append([]byte(nil), base...)
			for i := w; i < requests; i += workers {
				// Distinct requests: a different byte in the realm each time.
				copy(pkt[len(pkt)/2:], fmt.Sprintf("%08d", i))
				c := dialFrom(t, "127.0.0.1", r.addr)
				c.SetDeadline(time.Now().Add(60 * time.Second))
				writeFrame(t, c, pkt)
				reply := readFrame(t, c)
				c.Close()
				var e messages.KRBError
				if err := e.Unmarshal(reply); err != nil || e.ErrorCode != errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN || len(reply) > 1024 {
					errs <- fmt.Errorf("reply %d: %d bytes, code %d, %v", i, len(reply), e.ErrorCode, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	heap1, rss1 := settle(t)
	_, log1, _ := logs.counts()
	entries, bytes := r.kdc.lookaside.stats()
	t.Logf("after %d requests of 1 MB: heap %+d KB, RSS %+d KB, log %d bytes (%d per request), lookaside %d entries %d bytes",
		requests, (heap1-heap0)>>10, (rss1-rss0)>>10, log1-log0, (log1-log0)/requests, entries, bytes)
	if d := heap1 - heap0; d > maxRetainedAfterAttack {
		t.Errorf("the live heap grew by %d MB", d>>20)
	}
	if d := rss1 - rss0; d > maxRetainedAfterAttack && !raceEnabled {
		t.Errorf("RSS grew by %d MB", d>>20)
	}
	if d := (log1 - log0) / requests; d > maxLogBytesPerRequest {
		t.Errorf("%d bytes of log per request", d)
	}
	if bytes > 1<<20 {
		t.Errorf("the lookaside cache holds %d bytes", bytes)
	}
	r.login(nil)
}

// TestLookasideBounds: the byte budget and the entry cap hold, and expired
// entries go without a new insert.
func TestLookasideBounds(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := newLookaside(time.Second, 100, 10<<10, clock)
	for i := 0; i < 1000; i++ {
		l.put(hashRequest([]byte{byte(i), byte(i >> 8)}), make([]byte, 500))
	}
	if n, b := l.stats(); n > 100 || b > 10<<10 {
		t.Fatalf("%d entries, %d bytes: over the bounds", n, b)
	}
	// The newest reply is there, the oldest is gone.
	if _, ok := l.get(hashRequest([]byte{byte(999 % 256), byte(999 >> 8)})); !ok {
		t.Fatal("the newest reply was evicted")
	}
	if _, ok := l.get(hashRequest([]byte{0, 0})); ok {
		t.Fatal("the oldest reply survived the budget")
	}
	// A reply over the whole budget is not kept at all.
	l.put(hashRequest([]byte("big")), make([]byte, 20<<10))
	if _, ok := l.get(hashRequest([]byte("big"))); ok {
		t.Fatal("a reply over the budget was kept")
	}
	// Expiry without inserts: the sweep runs on its own (bounded wait).
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := l.stats(); n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n, b := l.stats()
	t.Fatalf("%d entries (%d bytes) left after they expired", n, b)
}
