package ticket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
)

const mitTestRealm = "KRB.TEST"

// mitKinitFixture is a cache written by MIT kinit 1.20.1 (alice@KRB.TEST, a
// TGT plus the fast_avail and pa_type configuration entries).
const mitKinitFixture = "testdata/mit-kinit-1.20.ccache"

func mkPrinc(realm string, nt int32, comps ...string) principal.Name {
	return principal.Name{Components: comps, Realm: realm, Type: nt}
}

func unixUTC(s int64) time.Time { return time.Unix(s, 0).UTC() }

// sampleCCache returns a cache that exercises every field: several
// credentials, zero times, addresses, authorization data, a second ticket, a
// configuration entry and a KDC time offset. Times are whole seconds in UTC
// and empty slices are nil, so it equals its own Marshal/Parse round trip
// (apart from Version).
func sampleCCache() *CCache {
	alice := mkPrinc(mitTestRealm, nametype.KRB_NT_PRINCIPAL, "alice")
	return &CCache{
		Version:          4,
		KDCOffset:        -3*time.Second - 250*time.Millisecond,
		DefaultPrincipal: alice,
		Credentials: []Credential{
			{
				Client:    alice,
				Server:    mkPrinc(mitTestRealm, nametype.KRB_NT_SRV_INST, "krbtgt", mitTestRealm),
				Key:       types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{0xa5}, 32)},
				AuthTime:  unixUTC(1700000000),
				StartTime: unixUTC(1700000001),
				EndTime:   unixUTC(1700036000),
				RenewTill: unixUTC(1700604800),
				Flags:     FlagForwardable | FlagRenewable | FlagInitial | FlagPreAuthent,
				Ticket:    []byte{0x61, 0x03, 0x02, 0x01, 0x05},
			},
			{
				// Zero start and renew times, addresses, authdata, skey.
				Client:   alice,
				Server:   mkPrinc(mitTestRealm, nametype.KRB_NT_SRV_HST, "host", "localhost"),
				Key:      types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{0x5a}, 16)},
				AuthTime: unixUTC(1700000000),
				EndTime:  unixUTC(4294967295), // the largest on-disk time
				IsSKey:   true,
				Flags:    FlagForwarded | FlagOKAsDelegate | FlagAnonymous,
				Addresses: []types.HostAddress{
					{AddrType: 2, Address: []byte{127, 0, 0, 1}},
					{AddrType: 24, Address: net.ParseIP("::1").To16()},
				},
				AuthData: []types.AuthorizationDataEntry{
					{ADType: 1, ADData: []byte{0x30, 0x00}},
					{ADType: 128, ADData: []byte("pac-ish")},
				},
				Ticket:       []byte("ticket-bytes"),
				SecondTicket: []byte("second-ticket"),
			},
			{
				// All times zero, empty key, odd principal characters, negative enctype.
				Client: alice,
				Server: mkPrinc("OTHER.REALM", nametype.KRB_NT_UNKNOWN, "we/ird", "at@sign", ""),
				Key:    types.EncryptionKey{KeyType: -128},
			},
			{
				Client: alice,
				Server: mkPrinc(ConfigRealm, nametype.KRB_NT_PRINCIPAL, "krb5_ccache_conf_data", "pa_type", "krbtgt/KRB.TEST@KRB.TEST"),
				Ticket: []byte("2"),
			},
		},
	}
}

func TestCCacheRoundTrip(t *testing.T) {
	want := sampleCCache()
	b := want.Marshal()
	got, err := ParseCCache(b)
	if err != nil {
		t.Fatalf("ParseCCache(Marshal()): %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip mismatch\n got: %+v\nwant: %+v", got, want)
	}
	if b2 := got.Marshal(); !bytes.Equal(b, b2) {
		t.Fatalf("Marshal is not stable across a round trip")
	}
}

func TestCCacheMarshalLayout(t *testing.T) {
	c := &CCache{
		KDCOffset:        2*time.Second + 5*time.Microsecond,
		DefaultPrincipal: mkPrinc("R", 1, "a"),
		Credentials: []Credential{{
			Client:   mkPrinc("R", 1, "a"),
			Server:   mkPrinc("R", 2, "b", "c"),
			Key:      types.EncryptionKey{KeyType: 17, KeyValue: []byte{0xee, 0xff}},
			AuthTime: unixUTC(0x01020304),
			EndTime:  unixUTC(0x0a0b0c0d),
			IsSKey:   true,
			Flags:    0x40e00000,
			AuthData: []types.AuthorizationDataEntry{{ADType: 1, ADData: []byte{9}}},
			Ticket:   []byte{0x61},
		}},
	}
	// Built by hand from the format description, field by field.
	var w []byte
	put := func(b ...byte) { w = append(w, b...) }
	u32 := func(vs ...uint32) {
		for _, v := range vs {
			w = binary.BigEndian.AppendUint32(w, v)
		}
	}
	str := func(s string) { u32(uint32(len(s))); put([]byte(s)...) }
	pr := func(nt uint32, realm string, comps ...string) {
		u32(nt, uint32(len(comps)))
		str(realm)
		for _, c := range comps {
			str(c)
		}
	}
	put(0x05, 0x04)             // version 4
	put(0x00, 0x0c)             // header length
	put(0x00, 0x01, 0x00, 0x08) // tag 1, length 8
	u32(2, 5)                   // seconds, microseconds
	pr(1, "R", "a")             // default principal
	pr(1, "R", "a")             // client
	pr(2, "R", "b", "c")        // server
	put(0x00, 0x11)             // enctype
	str("\xee\xff")             // key
	u32(0x01020304, 0, 0x0a0b0c0d, 0)
	put(1)          // is_skey
	u32(0x40e00000) // flags
	u32(0)          // no addresses
	u32(1)          // one authdata entry
	put(0x00, 0x01) // ad-type
	str("\x09")     // ad-data
	str("\x61")     // ticket
	str("")         // second ticket
	if got := c.Marshal(); !bytes.Equal(got, w) {
		t.Fatalf("Marshal layout\n got %x\nwant %x", got, w)
	}

	// No offset: a zero-length header.
	c.KDCOffset = 0
	if got := c.Marshal(); !bytes.Equal(got[:4], []byte{5, 4, 0, 0}) {
		t.Fatalf("header without offset = %x, want 05040000", got[:4])
	}
}

// TestCCacheGokrb5ReadsOurs cross-checks Marshal against gokrb5's
// independent ccache parser.
func TestCCacheGokrb5ReadsOurs(t *testing.T) {
	c := sampleCCache()
	c.Credentials[2].Key.KeyType = 0               // keep enctypes plain
	c.Credentials[1].EndTime = unixUTC(2000000000) // gokrb5 reads times as signed 32-bit
	var g credentials.CCache
	if err := g.Unmarshal(c.Marshal()); err != nil {
		t.Fatalf("gokrb5 Unmarshal: %v", err)
	}
	if g.Version != 4 {
		t.Errorf("gokrb5 version = %d", g.Version)
	}
	if g.DefaultPrincipal.Realm != c.DefaultPrincipal.Realm ||
		!g.DefaultPrincipal.PrincipalName.Equal(c.DefaultPrincipal.PrincipalName()) {
		t.Errorf("gokrb5 default principal = %+v", g.DefaultPrincipal)
	}
	if len(g.Credentials) != len(c.Credentials) {
		t.Fatalf("gokrb5 read %d credentials, want %d", len(g.Credentials), len(c.Credentials))
	}
	for i, gc := range g.Credentials {
		w := c.Credentials[i]
		if gc.Client.Realm != w.Client.Realm || !reflect.DeepEqual(gc.Client.PrincipalName, w.Client.PrincipalName()) {
			t.Errorf("cred %d client = %+v", i, gc.Client)
		}
		if gc.Server.Realm != w.Server.Realm || !reflect.DeepEqual(gc.Server.PrincipalName, w.Server.PrincipalName()) {
			t.Errorf("cred %d server = %+v", i, gc.Server)
		}
		if gc.Key.KeyType != w.Key.KeyType || !bytes.Equal(gc.Key.KeyValue, w.Key.KeyValue) {
			t.Errorf("cred %d key = %+v", i, gc.Key)
		}
		for _, p := range []struct {
			name      string
			got, want time.Time
		}{{"authtime", gc.AuthTime, w.AuthTime}, {"endtime", gc.EndTime, w.EndTime}} {
			if p.want.IsZero() {
				if p.got.Unix() != 0 {
					t.Errorf("cred %d %s = %v, want epoch 0", i, p.name, p.got)
				}
			} else if !p.got.Equal(p.want) {
				t.Errorf("cred %d %s = %v, want %v", i, p.name, p.got, p.want)
			}
		}
		if gc.IsSKey != w.IsSKey {
			t.Errorf("cred %d is_skey = %v", i, gc.IsSKey)
		}
		if f := FlagsFromBitString(gc.TicketFlags); f != w.Flags {
			t.Errorf("cred %d flags = %#x, want %#x", i, f, w.Flags)
		}
		if len(gc.Addresses) != len(w.Addresses) || len(gc.AuthData) != len(w.AuthData) {
			t.Errorf("cred %d: %d addresses %d authdata", i, len(gc.Addresses), len(gc.AuthData))
		}
		if !bytes.Equal(gc.Ticket, w.Ticket) || !bytes.Equal(gc.SecondTicket, w.SecondTicket) {
			t.Errorf("cred %d tickets differ", i)
		}
	}
}

// encodeV3 writes c in the version 3 layout (no header, enctype repeated).
func encodeV3(c *CCache) []byte {
	w := &ccWriter{}
	w.u16(0x0503)
	w.principal(c.DefaultPrincipal)
	for i := range c.Credentials {
		v4 := &ccWriter{}
		v4.credential(&c.Credentials[i])
		// Splice a second copy of the enctype after the first one.
		cr := c.Credentials[i]
		n := 0
		for _, p := range []principal.Name{cr.Client, cr.Server} {
			n += 8 + 4 + len(p.Realm)
			for _, s := range p.Components {
				n += 4 + len(s)
			}
		}
		w.b = append(w.b, v4.b[:n+2]...)
		w.b = append(w.b, v4.b[n:n+2]...)
		w.b = append(w.b, v4.b[n+2:]...)
	}
	return w.b
}

func TestParseCCacheVersion3(t *testing.T) {
	want := sampleCCache()
	want.Version = 3
	want.KDCOffset = 0
	got, err := ParseCCache(encodeV3(want))
	if err != nil {
		t.Fatalf("ParseCCache(v3): %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v3 parse mismatch\n got: %+v\nwant: %+v", got, want)
	}
	// Marshal always writes version 4.
	if b := got.Marshal(); b[0] != 5 || b[1] != 4 {
		t.Fatalf("Marshal of a v3 cache wrote version %x", b[:2])
	}
}

func TestParseCCacheHeaderFields(t *testing.T) {
	body := (&CCache{DefaultPrincipal: mkPrinc("R", 1, "a")}).Marshal()[4:] // after version + empty header
	mk := func(fields ...[]byte) []byte {
		h := bytes.Join(fields, nil)
		b := []byte{5, 4}
		b = binary.BigEndian.AppendUint16(b, uint16(len(h)))
		b = append(b, h...)
		return append(b, body...)
	}
	field := func(tag uint16, val []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
		return append(b, val...)
	}
	off := func(sec, usec int32) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(sec))
		return binary.BigEndian.AppendUint32(b, uint32(usec))
	}

	// Unknown tags are skipped, tag 1 is read, negative values work.
	c, err := ParseCCache(mk(field(7, []byte{1, 2, 3}), field(1, off(-5, -250000)), field(9, nil)))
	if err != nil {
		t.Fatalf("ParseCCache: %v", err)
	}
	if want := -5250 * time.Millisecond; c.KDCOffset != want {
		t.Errorf("KDCOffset = %v, want %v", c.KDCOffset, want)
	}
	if c.DefaultPrincipal.String() != "a@R" {
		t.Errorf("default principal = %s", c.DefaultPrincipal)
	}
	// A header without the offset field.
	if c, err := ParseCCache(mk(field(3, []byte("x")))); err != nil || c.KDCOffset != 0 {
		t.Errorf("header with unknown tag only: %v, offset %v", err, c)
	}
	// The offset round-trips through Marshal.
	c.KDCOffset = 1234567*time.Second + 999999*time.Microsecond
	if c2, err := ParseCCache(c.Marshal()); err != nil || c2.KDCOffset != c.KDCOffset {
		t.Errorf("offset round trip: %v, %v", err, c2)
	}
	// A tag 1 field of the wrong length is an error.
	if _, err := ParseCCache(mk(field(1, []byte{0, 0, 0, 1}))); err == nil {
		t.Errorf("tag 1 with length 4 accepted")
	}
	// A field running past the header is an error.
	bad := mk(field(1, off(1, 0)))
	bad[3] = 6 // header length cut inside the field
	if _, err := ParseCCache(bad); err == nil {
		t.Errorf("field overrunning the header accepted")
	}
}

// TestParseCCacheTruncations cuts a valid cache at every length. Cuts at a
// credential boundary are valid caches holding fewer credentials (the format
// has no count or end marker); every other cut must fail cleanly.
func TestParseCCacheTruncations(t *testing.T) {
	full := sampleCCache()
	b := full.Marshal()
	boundary := map[int]int{} // length -> number of credentials
	for k := 0; k <= len(full.Credentials); k++ {
		c := *full
		c.Credentials = full.Credentials[:k]
		boundary[len(c.Marshal())] = k
	}
	for n := 0; n <= len(b); n++ {
		c, err := ParseCCache(b[:n])
		if k, ok := boundary[n]; ok {
			if err != nil {
				t.Errorf("length %d (boundary after %d credentials): %v", n, k, err)
				continue
			}
			if len(c.Credentials) != k {
				t.Errorf("length %d: %d credentials, want %d", n, len(c.Credentials), k)
			}
			continue
		}
		if err == nil {
			t.Errorf("length %d of %d: truncated cache parsed without error", n, len(b))
			continue
		}
		if !strings.HasPrefix(err.Error(), "ticket: ") {
			t.Errorf("length %d: error %q lacks the ticket: prefix", n, err)
		}
		if !errors.Is(err, errTruncated) {
			t.Errorf("length %d: error %q does not wrap errTruncated", n, err)
		}
	}
}

func TestParseCCacheGarbage(t *testing.T) {
	valid := sampleCCache().Marshal()
	// Offset of the default principal's component count in valid.
	const pcount = 2 + 2 + 12 + 4
	set32 := func(at int, v uint32) []byte {
		b := append([]byte(nil), valid...)
		binary.BigEndian.PutUint32(b[at:], v)
		return b
	}
	firstCred := len((&CCache{KDCOffset: sampleCCache().KDCOffset, DefaultPrincipal: sampleCCache().DefaultPrincipal}).Marshal())
	cases := map[string][]byte{
		"empty":                {},
		"one byte":             {5},
		"version 1":            {5, 1, 0, 0},
		"version 2":            {5, 2, 0, 0},
		"version 5":            {5, 5, 0, 0},
		"not a ccache":         []byte("hello, world, this is not a ccache"),
		"header too long":      {5, 4, 0xff, 0xff, 0, 0},
		"component count huge": set32(pcount, 0xffffffff),
		"component count 2^30": set32(pcount, 1<<30),
		"realm length huge":    set32(pcount+4, 0xffffffff),
		"realm length +1":      set32(pcount+4, uint32(len(mitTestRealm))+0x7fffffff),
		"client count huge":    set32(firstCred+4, 0x7fffffff),
	}
	// is_skey must be 0 or 1: find it in a one-credential cache.
	one := &CCache{DefaultPrincipal: mkPrinc("R", 1, "a"), Credentials: []Credential{{Client: mkPrinc("R", 1, "a"), Server: mkPrinc("R", 1, "b")}}}
	ob := one.Marshal()
	skeyAt := len(ob) - (4 + 4 + 4 + 4 + 4 + 1) // flags, addr count, ad count, ticket, second ticket, then back over is_skey
	bad := append([]byte(nil), ob...)
	bad[skeyAt] = 2
	cases["is_skey 2"] = bad
	if _, err := ParseCCache(ob); err != nil {
		t.Fatalf("one-credential cache: %v", err)
	}
	addrAt := skeyAt + 1 + 4
	huge := append([]byte(nil), ob...)
	binary.BigEndian.PutUint32(huge[addrAt:], 0xffffffff)
	cases["address count huge"] = huge
	adHuge := append([]byte(nil), ob...)
	binary.BigEndian.PutUint32(adHuge[addrAt+4:], 0x10000000)
	cases["authdata count huge"] = adHuge
	tktHuge := append([]byte(nil), ob...)
	binary.BigEndian.PutUint32(tktHuge[addrAt+8:], 0xfffffff0)
	cases["ticket length huge"] = tktHuge

	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := ParseCCache(b)
			if err == nil {
				t.Fatalf("parsed garbage without error: %+v", c)
			}
			if c != nil {
				t.Errorf("non-nil cache with error")
			}
			if !strings.HasPrefix(err.Error(), "ticket: ") {
				t.Errorf("error %q lacks the ticket: prefix", err)
			}
		})
	}

	// Random mutations of a valid cache must never panic.
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), valid...)
		for j := 0; j < 1+rng.Intn(4); j++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		if c, err := ParseCCache(b[:rng.Intn(len(b)+1)]); err == nil {
			if _, err := ParseCCache(c.Marshal()); err != nil {
				t.Fatalf("re-parse of a parsed mutation failed: %v", err)
			}
		}
	}
}

func FuzzParseCCache(f *testing.F) {
	f.Add(sampleCCache().Marshal())
	f.Add(encodeV3(sampleCCache()))
	if b, err := os.ReadFile(mitKinitFixture); err == nil {
		f.Add(b)
	}
	f.Add([]byte{5, 4, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCCache(data)
		if err != nil {
			if c != nil {
				t.Fatalf("non-nil cache with error %v", err)
			}
			return
		}
		b1 := c.Marshal()
		c2, err := ParseCCache(b1)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v", err)
		}
		if !reflect.DeepEqual(c2.DefaultPrincipal, c.DefaultPrincipal) || !reflect.DeepEqual(c2.Credentials, c.Credentials) {
			t.Fatalf("round trip changed the cache\n was %+v\n now %+v", c, c2)
		}
		if b2 := c2.Marshal(); !bytes.Equal(b1, b2) {
			t.Fatalf("Marshal not idempotent")
		}
	})
}

func TestParseMITKinitFixture(t *testing.T) {
	raw, err := os.ReadFile(mitKinitFixture)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ReadCCacheFile(mitKinitFixture)
	if err != nil {
		t.Fatalf("ReadCCacheFile: %v", err)
	}
	checkMITKinitCache(t, c, "alice")
	// MIT writes a header with a zero offset; we omit the field when the
	// offset is zero, and everything after the header must be identical.
	if !bytes.Equal(raw[:6], []byte{5, 4, 0, 12, 0, 1}) {
		t.Fatalf("fixture header = %x", raw[:6])
	}
	want := append([]byte{5, 4, 0, 0}, raw[16:]...)
	if got := c.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal of the MIT cache differs from MIT's bytes (modulo the zero offset header)\n got %x\nwant %x", got, want)
	}
}

// checkMITKinitCache checks a cache made by MIT kinit for user@KRB.TEST with
// the KDC settings of startMITRealm (preauth, aes256 first).
func checkMITKinitCache(t *testing.T, c *CCache, user string) Credential {
	t.Helper()
	if c.Version != 4 {
		t.Errorf("version = %d, want 4", c.Version)
	}
	if got, want := c.DefaultPrincipal.String(), user+"@"+mitTestRealm; got != want {
		t.Errorf("default principal = %q, want %q", got, want)
	}
	if c.DefaultPrincipal.Type != nametype.KRB_NT_PRINCIPAL {
		t.Errorf("default principal name type = %d", c.DefaultPrincipal.Type)
	}
	tgtName := mkPrinc(mitTestRealm, nametype.KRB_NT_PRINCIPAL, "krbtgt", mitTestRealm) // name type ignored by Find
	tgt, ok := c.Find(tgtName)
	if !ok {
		t.Fatalf("no krbtgt/%s@%s credential in %+v", mitTestRealm, mitTestRealm, c.Credentials)
	}
	if tgt.IsConfig() {
		t.Errorf("TGT reported as config entry")
	}
	if !tgt.Client.Equal(c.DefaultPrincipal) {
		t.Errorf("TGT client = %s", tgt.Client)
	}
	if tgt.Server.String() != "krbtgt/KRB.TEST@KRB.TEST" {
		t.Errorf("TGT server = %s", tgt.Server)
	}
	if tgt.Key.KeyType != etypeID.AES256_CTS_HMAC_SHA1_96 || len(tgt.Key.KeyValue) != 32 {
		t.Errorf("TGT session key type %d length %d", tgt.Key.KeyType, len(tgt.Key.KeyValue))
	}
	if tgt.Flags&(FlagInitial|FlagPreAuthent) != FlagInitial|FlagPreAuthent {
		t.Errorf("TGT flags %#x (%s) lack I and A", tgt.Flags, FlagString(tgt.Flags))
	}
	if tgt.AuthTime.IsZero() || !tgt.EndTime.After(tgt.AuthTime) || tgt.EndTime.Sub(tgt.AuthTime) > 10*time.Hour {
		t.Errorf("TGT times auth %v end %v", tgt.AuthTime, tgt.EndTime)
	}
	var tk messages.Ticket
	if err := tk.Unmarshal(tgt.Ticket); err != nil {
		t.Fatalf("TGT ticket does not decode: %v", err)
	}
	if tk.Realm != mitTestRealm || tk.SName.PrincipalNameString() != "krbtgt/"+mitTestRealm || tk.EncPart.EType != etypeID.AES256_CTS_HMAC_SHA1_96 {
		t.Errorf("TGT ticket realm %s sname %s etype %d", tk.Realm, tk.SName.PrincipalNameString(), tk.EncPart.EType)
	}
	// MIT kinit 1.20 records pa_type for the krbtgt after encrypted-timestamp preauth.
	var sawPAType bool
	for _, cr := range c.Credentials {
		if !cr.IsConfig() {
			continue
		}
		if !cr.Client.Equal(c.DefaultPrincipal) || cr.Server.Components[0] != "krb5_ccache_conf_data" {
			t.Errorf("odd config entry %s -> %s", cr.Client, cr.Server)
		}
		if len(cr.Server.Components) == 3 && cr.Server.Components[1] == "pa_type" {
			sawPAType = true
			if string(cr.Ticket) != "2" || cr.Server.Components[2] != "krbtgt/KRB.TEST@KRB.TEST" {
				t.Errorf("pa_type entry %s = %q", cr.Server, cr.Ticket)
			}
		}
	}
	if !sawPAType {
		t.Errorf("no pa_type config entry")
	}
	return tgt
}

func TestPrincipalString(t *testing.T) {
	cases := []struct {
		p    principal.Name
		want string
	}{
		{mkPrinc("KRB.TEST", 1, "alice"), "alice@KRB.TEST"},
		{mkPrinc("KRB.TEST", 3, "host", "localhost"), "host/localhost@KRB.TEST"},
		{mkPrinc("R", 1, "a/b", "c@d", `e\f`), `a\/b/c\@d/e\\f@R`},
		{mkPrinc("WEIRD@REALM/X", 1, "x"), `x@WEIRD\@REALM/X`},
		{mkPrinc("R", 1, "tab\there", "nl\n", "nul\x00", "bs\b"), `tab\there/nl\n/nul\0/bs\b@R`},
		{mkPrinc("R", 1), "@R"},
		{mkPrinc("R", 1, "", "x"), "/x@R"},
		{mkPrinc(ConfigRealm, 1, "krb5_ccache_conf_data", "pa_type", "krbtgt/KRB.TEST@KRB.TEST"),
			`krb5_ccache_conf_data/pa_type/krbtgt\/KRB.TEST\@KRB.TEST@X-CACHECONF:`},
	}
	for _, c := range cases {
		if got := c.p.String(); got != c.want {
			t.Errorf("String(%q@%q) = %q, want %q", c.p.Components, c.p.Realm, got, c.want)
		}
	}
}

func TestPrincipalEqual(t *testing.T) {
	a := mkPrinc("R", 1, "host", "x")
	if !a.Equal(mkPrinc("R", 3, "host", "x")) {
		t.Errorf("name type should be ignored")
	}
	for _, o := range []principal.Name{mkPrinc("S", 1, "host", "x"), mkPrinc("R", 1, "host"), mkPrinc("R", 1, "host", "y"), mkPrinc("R", 1, "host", "x", "")} {
		if a.Equal(o) {
			t.Errorf("%s equals %s", a, o)
		}
	}
}

func TestIsConfig(t *testing.T) {
	c := sampleCCache()
	var n int
	for _, cr := range c.Credentials {
		if cr.IsConfig() {
			n++
		}
	}
	if n != 1 || !c.Credentials[3].IsConfig() {
		t.Fatalf("IsConfig found %d config entries", n)
	}
	if (Credential{Server: mkPrinc("X-CACHECONF", 1, "krb5_ccache_conf_data")}).IsConfig() {
		t.Errorf("realm without the colon treated as config")
	}
}

func TestFlags(t *testing.T) {
	// gokrb5's KerberosFlags helpers agree with the MIT layout.
	bs := types.NewKrbFlags()
	types.SetFlag(&bs, flags.Forwardable)
	if got := FlagsFromBitString(bs); got != 0x40000000 || FlagForwardable != 0x40000000 {
		t.Errorf("forwardable = %#x, want 0x40000000", got)
	}
	types.SetFlags(&bs, []int{flags.Renewable, flags.Initial, flags.PreAuthent})
	if got := FlagsFromBitString(bs); got != 0x40e00000 {
		t.Errorf("FRIA = %#x, want 0x40e00000", got)
	}
	for i := 0; i < 32; i++ {
		f := uint32(1) << (31 - i)
		b := BitStringFromFlags(f)
		if b.BitLength != 32 || len(b.Bytes) != 4 {
			t.Fatalf("BitStringFromFlags length %d/%d", b.BitLength, len(b.Bytes))
		}
		if !types.IsFlagSet(&b, i) {
			t.Errorf("bit %d not set in %x", i, b.Bytes)
		}
		if got := FlagsFromBitString(b); got != f {
			t.Errorf("bit %d round trip = %#x", i, got)
		}
	}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 1000; i++ {
		f := rng.Uint32()
		if got := FlagsFromBitString(BitStringFromFlags(f)); got != f {
			t.Fatalf("round trip %#x -> %#x", f, got)
		}
	}
	// The encoding must survive DER.
	der, err := asn1.Marshal(BitStringFromFlags(0x40e10000))
	if err != nil {
		t.Fatal(err)
	}
	var back asn1.BitString
	if _, err := asn1.Unmarshal(der, &back); err != nil || FlagsFromBitString(back) != 0x40e10000 {
		t.Errorf("DER round trip: %v %#x", err, FlagsFromBitString(back))
	}
	// Short, long and inconsistent BitStrings.
	if got := FlagsFromBitString(asn1.BitString{Bytes: []byte{0x40}, BitLength: 8}); got != 0x40000000 {
		t.Errorf("8-bit = %#x", got)
	}
	if got := FlagsFromBitString(asn1.BitString{Bytes: []byte{0xff}, BitLength: 3}); got != 0xe0000000 {
		t.Errorf("3-bit = %#x", got)
	}
	if got := FlagsFromBitString(asn1.BitString{Bytes: []byte{0x80, 0, 0, 1, 0xff}, BitLength: 40}); got != 0x80000001 {
		t.Errorf("40-bit = %#x", got)
	}
	if got := FlagsFromBitString(asn1.BitString{Bytes: []byte{0x80}, BitLength: 32}); got != 0x80000000 {
		t.Errorf("bytes shorter than BitLength = %#x", got)
	}
	if got := FlagsFromBitString(asn1.BitString{}); got != 0 {
		t.Errorf("empty = %#x", got)
	}
}

func TestFlagString(t *testing.T) {
	cases := map[uint32]string{
		0:          "",
		0x40e00000: "FRIA",
		0x00e10000: "RIA", // MIT kinit's TGT: enc-pa-rep (bit 15) has no letter
		0xffffffff: "FfPpDdiRIHATOa",
		FlagInvalid | FlagPostdated | FlagMayPostdate:                                 "Ddi",
		FlagAnonymous | FlagOKAsDelegate | FlagTransitedPolicyChecked | FlagHWAuthent: "HTOa",
		FlagProxy | FlagProxiable | FlagForwarded:                                     "fPp",
		0x80000000: "", // reserved bit 0
	}
	for f, want := range cases {
		if got := FlagString(f); got != want {
			t.Errorf("FlagString(%#x) = %q, want %q", f, got, want)
		}
	}
}

func mkCred(client, server principal.Name, start int64, tag string) Credential {
	return Credential{Client: client, Server: server, StartTime: unixUTC(start), AuthTime: unixUTC(start), Ticket: []byte(tag)}
}

func TestCCacheAdd(t *testing.T) {
	alice := mkPrinc(mitTestRealm, 1, "alice")
	bob := mkPrinc(mitTestRealm, 1, "bob")
	tgt := mkPrinc(mitTestRealm, 2, "krbtgt", mitTestRealm)
	host := mkPrinc(mitTestRealm, 3, "host", "a")
	conf := mkPrinc(ConfigRealm, 1, "krb5_ccache_conf_data", "fast_avail", "krbtgt/KRB.TEST@KRB.TEST")

	c := &CCache{DefaultPrincipal: alice}
	c.Add(mkCred(alice, tgt, 100, "tgt1"))
	c.Add(mkCred(alice, host, 100, "host1"))
	c.Add(mkCred(bob, host, 100, "bob-host"))
	c.Add(Credential{Client: alice, Server: conf, Ticket: []byte("yes")})
	c.Add(Credential{Client: alice, Server: conf, Ticket: []byte("yes")}) // config entries are appended
	// Same client and server with other name types: replaced in place.
	c.Add(mkCred(mkPrinc(mitTestRealm, 0, "alice"), mkPrinc(mitTestRealm, 1, "krbtgt", mitTestRealm), 200, "tgt2"))
	tags := func() []string {
		var s []string
		for _, cr := range c.Credentials {
			s = append(s, string(cr.Ticket))
		}
		return s
	}
	if got, want := tags(), []string{"tgt2", "host1", "bob-host", "yes", "yes"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after Add: %q, want %q", got, want)
	}
	// Existing duplicates collapse into the first position.
	c.Credentials = append(c.Credentials, mkCred(alice, host, 50, "host-dup"))
	c.Add(mkCred(alice, host, 300, "host2"))
	if got, want := tags(), []string{"tgt2", "host2", "bob-host", "yes", "yes"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after Add over duplicates: %q, want %q", got, want)
	}
	// A different realm is a different server.
	c.Add(mkCred(alice, mkPrinc("OTHER", 3, "host", "a"), 100, "other"))
	if len(c.Credentials) != 6 {
		t.Fatalf("cross-realm server replaced an entry: %q", tags())
	}
}

func TestCCacheFind(t *testing.T) {
	alice := mkPrinc(mitTestRealm, 1, "alice")
	host := mkPrinc(mitTestRealm, 3, "host", "a")
	c := &CCache{DefaultPrincipal: alice, Credentials: []Credential{
		mkCred(alice, host, 200, "newer"),
		mkCred(alice, mkPrinc(mitTestRealm, 1, "host", "b"), 900, "other-host"),
		mkCred(alice, host, 100, "older"),
		{Client: alice, Server: host, AuthTime: unixUTC(150), Ticket: []byte("no-start")},
	}}
	got, ok := c.Find(mkPrinc(mitTestRealm, 0, "host", "a"))
	if !ok || string(got.Ticket) != "newer" {
		t.Fatalf("Find = %q, %v; want newer", got.Ticket, ok)
	}
	c.Credentials = append(c.Credentials, mkCred(alice, host, 200, "newer-later"))
	if got, _ := c.Find(host); string(got.Ticket) != "newer-later" {
		t.Errorf("tie should go to the entry stored last, got %q", got.Ticket)
	}
	if _, ok := c.Find(mkPrinc("OTHER", 3, "host", "a")); ok {
		t.Errorf("Find matched across realms")
	}
	if _, ok := c.Find(mkPrinc(mitTestRealm, 3, "host")); ok {
		t.Errorf("Find matched a prefix")
	}
	if _, ok := (&CCache{}).Find(host); ok {
		t.Errorf("Find in an empty cache")
	}
}

func TestResolveCCacheName(t *testing.T) {
	ok := []struct{ in, want string }{
		{"", "/tmp/krb5cc_1000"},
		{"FILE:/tmp/x", "/tmp/x"},
		{"/tmp/x", "/tmp/x"},
		{"FILE:relative/cc", "relative/cc"},
		{"relative", "relative"},
		{"file:/tmp/y", "/tmp/y"},
		{"/tmp/a:b", "/tmp/a:b"},
		{"FILE:/tmp/a:b", "/tmp/a:b"},
		{`C:\krb5cc`, `C:\krb5cc`},
	}
	for _, c := range ok {
		got, err := ResolveCCacheName(c.in, 1000)
		if err != nil || got != c.want {
			t.Errorf("ResolveCCacheName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if got, _ := ResolveCCacheName("", 0); got != "/tmp/krb5cc_0" {
		t.Errorf("default for uid 0 = %q", got)
	}
	for _, typ := range []string{"MEMORY", "KEYRING", "KCM", "API", "MSLSA", "XYZ"} {
		_, err := ResolveCCacheName(typ+":something:0", 1000)
		if err == nil {
			t.Errorf("%s: accepted", typ)
			continue
		}
		want := "ticket: credential cache type " + typ + " is not supported (only FILE: and DIR:)"
		if err.Error() != want {
			t.Errorf("%s: error %q, want %q", typ, err, want)
		}
		if !errors.Is(err, ErrUnsupportedCCacheType) {
			t.Errorf("%s: error does not wrap ErrUnsupportedCCacheType", typ)
		}
	}
	if _, err := ResolveCCacheName("FILE:", 1000); err == nil || !strings.HasPrefix(err.Error(), "ticket: ") {
		t.Errorf("FILE: with no name: %v", err)
	}
}

// listDirNames lists the names in dir.
func listDirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteCCacheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cc")
	// An old file with a laxer mode is replaced by a 0600 one.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := sampleCCache()
	if err := WriteCCacheFile(path, c); err != nil {
		t.Fatalf("WriteCCacheFile: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, c.Marshal()) {
		t.Fatalf("file content differs from Marshal: %v", err)
	}
	back, err := ReadCCacheFile(path)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("ReadCCacheFile: %v\n got %+v", err, back)
	}
	if names := listDirNames(t, dir); !reflect.DeepEqual(names, []string{"cc"}) {
		t.Errorf("directory holds %q, want only cc", names)
	}
	// A relative path in the working directory works too.
	t.Chdir(dir)
	if err := WriteCCacheFile("rel", c); err != nil {
		t.Fatalf("relative path: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "rel")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("relative path: %v %v", err, fi)
	}
}

func TestWriteCCacheFileFailures(t *testing.T) {
	c := sampleCCache()
	dir := t.TempDir()
	path := filepath.Join(dir, "cc")
	old := []byte("old contents")
	writeOld := func() {
		t.Helper()
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	checkOld := func(what string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, old) {
			t.Errorf("%s: old file not intact: %q, %v", what, got, err)
		}
		if names := listDirNames(t, dir); !reflect.DeepEqual(names, []string{"cc"}) {
			t.Errorf("%s: directory holds %q (temporary file left behind?)", what, names)
		}
	}

	// A path in a directory that does not exist.
	err := WriteCCacheFile(filepath.Join(dir, "missing", "cc"), c)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "ticket: ") {
		t.Errorf("nonexistent directory: %v", err)
	}

	// Failures injected at each step of the atomic write.
	boom := errors.New("injected failure")
	fail := func() error { return boom }
	for name, h := range map[string]*atomicHooks{
		"after write":   {afterWrite: fail},
		"after sync":    {afterSync: fail},
		"before rename": {beforeRename: fail},
	} {
		writeOld()
		if err := writeFileAtomic(path, c.Marshal(), h); !errors.Is(err, boom) {
			t.Errorf("%s: err = %v", name, err)
		}
		checkOld(name)
	}

	// The rename itself failing: the target is a non-empty directory.
	target := filepath.Join(dir, "isdir")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteCCacheFile(target, c); err == nil {
		t.Errorf("writing over a directory succeeded")
	}
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	writeOld()
	checkOld("rename over directory")

	// A directory we may not write to (root ignores permissions).
	if os.Geteuid() == 0 {
		t.Log("running as root: skipping the read-only directory case (covered by the injected failures above)")
		return
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if err := WriteCCacheFile(path, c); err == nil || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read-only directory: %v", err)
	}
	checkOld("read-only directory")
}

func TestReadCCacheFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCCacheFile(filepath.Join(dir, "none")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte{5, 4, 0, 0, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadCCacheFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.HasPrefix(err.Error(), "ticket: ") || !errors.Is(err, errTruncated) {
		t.Errorf("truncated file: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Interop with MIT krb5 tools.

const mitToolTimeout = 30 * time.Second

// needMITTools returns the paths of the named programs. A missing program skips
// the test, unless CI=true, where it fails the test.
func needMITTools(t *testing.T, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var missing []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
				if fi, serr := os.Stat(filepath.Join(d, n)); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
					p, err = filepath.Join(d, n), nil
					break
				}
			}
		}
		if err != nil {
			missing = append(missing, n)
			continue
		}
		paths[n] = p
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("MIT krb5 programs not found: %s (Debian: krb5-user, krb5-kdc, krb5-admin-server)", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true requires them")
		}
		t.Skip(msg + "; skipping the interop test (with CI=true this fails)")
	}
	return paths
}

// mitToolEnv is the environment for MIT programs: ours minus any KRB5* and
// locale settings, plus UTC, the C locale, no replay cache and extra.
func mitToolEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "KRB5") || k == "TZ" || k == "LANG" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "TZ=UTC", "LC_ALL=C", "KRB5RCACHETYPE=none")
	return append(env, extra...)
}

// runMITTool runs a program with a time limit and returns its stdout; a non-zero
// exit is an error that carries stderr.
func runMITTool(t *testing.T, env []string, stdin, path string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mitToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", mitToolTimeout, err)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\nstdout: %s\nstderr: %s", filepath.Base(path), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// writeMITKrb5Conf writes a private krb5.conf (used through KRB5_CONFIG, so
// /etc/krb5.conf is not read). kdcAddr may be empty for offline tools.
func writeMITKrb5Conf(t *testing.T, dir, kdcAddr string) string {
	t.Helper()
	conf := fmt.Sprintf(`[libdefaults]
    default_realm = %[1]s
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1465
[realms]
    %[1]s = {
        kdc = %[2]s
    }
[domain_realm]
    localhost = %[1]s
`, mitTestRealm, kdcAddr)
	if kdcAddr == "" {
		conf = strings.Replace(conf, "        kdc = \n", "", 1)
	}
	path := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mitFreePort returns a port that is free on 127.0.0.1 for both TCP and
// UDP at the time of the call.
func mitFreePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for TCP+UDP")
	return 0
}

// mitRealm is a private MIT KDC (krb5kdc) for realm KRB.TEST on 127.0.0.1,
// with its database in a test temp dir. It follows interop-peers.md §1.2.
type mitRealm struct {
	dir   string
	addr  string
	tools map[string]string
	env   []string // KRB5_CONFIG and KRB5_KDC_PROFILE set
}

// startMITRealm creates the database, starts krb5kdc in the foreground and
// registers its shutdown (by PID) with t.Cleanup.
func startMITRealm(t *testing.T) *mitRealm {
	t.Helper()
	m := &mitRealm{
		dir:   t.TempDir(),
		tools: needMITTools(t, "krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist", "kvno"),
	}
	db := filepath.Join(m.dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(db, "kadm5.acl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	kdcConf := filepath.Join(m.dir, "kdc.conf")
	writeKDCConf := func(port int) {
		conf := fmt.Sprintf(`[kdcdefaults]
    kdc_listen = 127.0.0.1:%[2]d
    kdc_tcp_listen = 127.0.0.1:%[2]d
[realms]
    %[1]s = {
        database_name = %[3]s/principal
        key_stash_file = %[3]s/stash
        acl_file = %[3]s/kadm5.acl
        kdc_listen = 127.0.0.1:%[2]d
        kdc_tcp_listen = 127.0.0.1:%[2]d
        kadmind_listen = 127.0.0.1:%[4]d
        max_life = 10h
        max_renewable_life = 7d
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
        default_principal_flags = +preauth
    }
[logging]
    kdc = FILE:%[5]s/kdc.log
    admin_server = FILE:%[5]s/kadmin.log
    default = FILE:%[5]s/default.log
`, mitTestRealm, port, db, port+1, m.dir)
		if err := os.WriteFile(kdcConf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := mitFreePort(t)
		m.addr = fmt.Sprintf("127.0.0.1:%d", port)
		writeKDCConf(port)
		krb5Conf := writeMITKrb5Conf(t, m.dir, m.addr)
		m.env = mitToolEnv("KRB5_CONFIG="+krb5Conf, "KRB5_KDC_PROFILE="+kdcConf)
		if attempt == 0 {
			if _, err := runMITTool(t, m.env, "", m.tools["kdb5_util"], "create", "-s", "-r", mitTestRealm, "-P", "masterpw"); err != nil {
				t.Fatalf("kdb5_util create: %v", err)
			}
		}
		if lastErr = m.startKDC(t); lastErr == nil {
			return m
		}
		t.Logf("krb5kdc attempt %d: %v", attempt+1, lastErr)
	}
	t.Fatalf("krb5kdc did not start: %v", lastErr)
	return nil
}

func (m *mitRealm) startKDC(t *testing.T) error {
	logPath := filepath.Join(m.dir, "krb5kdc.out")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(m.tools["krb5kdc"], "-n", "-r", mitTestRealm)
	cmd.Env = m.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return
		case <-time.After(5 * time.Second):
		}
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("krb5kdc pid %d did not exit", cmd.Process.Pid)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logPath)
			kdcLog, _ := os.ReadFile(filepath.Join(m.dir, "kdc.log"))
			return fmt.Errorf("krb5kdc exited early: %v\n%s\n%s", err, out, kdcLog)
		default:
		}
		if c, err := net.DialTimeout("tcp", m.addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return fmt.Errorf("krb5kdc not listening on %s after 10s", m.addr)
}

// kadmin runs one kadmin.local query.
func (m *mitRealm) kadmin(t *testing.T, query string) {
	t.Helper()
	if _, err := runMITTool(t, m.env, "", m.tools["kadmin.local"], "-r", mitTestRealm, "-q", query); err != nil {
		t.Fatalf("kadmin.local %q: %v", query, err)
	}
}

// clientEnv is m.env with KRB5CCNAME pointing at the FILE cache ccache.
func (m *mitRealm) clientEnv(ccache string) []string {
	return append(append([]string(nil), m.env...), "KRB5CCNAME=FILE:"+ccache)
}

// klistCred is one credential as klist -f -e prints it.
type klistCred struct {
	server, flags, etypes string
}

// parseKlistOutput reads the default principal and the credentials from klist
// -f -e output.
func parseKlistOutput(t *testing.T, out string) (string, map[string]klistCred) {
	t.Helper()
	var def string
	ents := map[string]klistCred{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Default principal: "):
			def = strings.TrimPrefix(line, "Default principal: ")
		case strings.HasPrefix(line, "\t"):
			// "\trenew until ..., Flags: FRIA" and/or
			// "\tEtype (skey, tkt): a, b", possibly on one line.
			e := ents[cur]
			if _, v, ok := strings.Cut(line, "Etype (skey, tkt): "); ok {
				e.etypes = strings.TrimSpace(v)
				line, _, _ = strings.Cut(line, "Etype (skey, tkt): ")
			}
			if _, v, ok := strings.Cut(line, "Flags: "); ok {
				v, _, _ = strings.Cut(v, ",")
				e.flags = strings.TrimSpace(v)
			}
			ents[cur] = e
		case len(line) > 0 && line[0] >= '0' && line[0] <= '9':
			f := strings.Fields(line)
			cur = f[len(f)-1]
			ents[cur] = klistCred{server: cur}
		}
	}
	return def, ents
}

// fabricateCCacheTicket returns a DER Ticket for sname@realm whose enc-part is a
// real EncTicketPart encrypted (key usage 2) under a random aes256 key.
func fabricateCCacheTicket(t *testing.T, client principal.Name, sname types.PrincipalName, session types.EncryptionKey, fl uint32, auth, end, renew time.Time) []byte {
	t.Helper()
	et, err := crypto.GetEtype(etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		t.Fatal(err)
	}
	svcKey, err := types.GenerateEncryptionKey(et)
	if err != nil {
		t.Fatal(err)
	}
	etp := messages.EncTicketPart{
		Flags:     BitStringFromFlags(fl),
		Key:       session,
		CRealm:    client.Realm,
		CName:     client.PrincipalName(),
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}},
		AuthTime:  auth,
		StartTime: auth,
		EndTime:   end,
		RenewTill: renew,
	}
	plain, err := asn1.Marshal(etp)
	if err != nil {
		t.Fatal(err)
	}
	plain = asn1tools.AddASNAppTag(plain, 3)
	ed, err := crypto.GetEncryptedData(plain, svcKey, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The wire Ticket (gokrb5's Ticket.Marshal would also encode its
	// DecryptedEncPart helper field).
	wire := struct {
		TktVNO  int                 `asn1:"explicit,tag:0"`
		Realm   string              `asn1:"generalstring,explicit,tag:1"`
		SName   types.PrincipalName `asn1:"explicit,tag:2"`
		EncPart types.EncryptedData `asn1:"explicit,tag:3"`
	}{5, client.Realm, sname, ed}
	der, err := asn1.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	der = asn1tools.AddASNAppTag(der, 1)
	var chk messages.Ticket
	if err := chk.Unmarshal(der); err != nil {
		t.Fatalf("fabricated ticket does not decode: %v", err)
	}
	if err := chk.Decrypt(svcKey); err != nil || FlagsFromBitString(chk.DecryptedEncPart.Flags) != fl {
		t.Fatalf("fabricated ticket does not decrypt: %v", err)
	}
	return der
}

func TestKlistReadsWrittenCCache(t *testing.T) {
	tools := needMITTools(t, "klist")
	dir := t.TempDir()
	env := mitToolEnv("KRB5_CONFIG=" + writeMITKrb5Conf(t, dir, ""))

	now := time.Now().Truncate(time.Second).UTC()
	alice := mkPrinc(mitTestRealm, nametype.KRB_NT_PRINCIPAL, "alice")
	tgtName := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", mitTestRealm}}
	session := types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{7}, 16)}
	fl := FlagForwardable | FlagRenewable | FlagInitial | FlagPreAuthent
	c := &CCache{DefaultPrincipal: alice}
	c.Add(Credential{
		Client: alice, Server: principal.FromPrincipalName(tgtName, mitTestRealm),
		Key:      session,
		AuthTime: now, StartTime: now, EndTime: now.Add(10 * time.Hour), RenewTill: now.Add(7 * 24 * time.Hour),
		Flags:  fl,
		Ticket: fabricateCCacheTicket(t, alice, tgtName, session, fl, now, now.Add(10*time.Hour), now.Add(7*24*time.Hour)),
	})
	c.Add(Credential{
		Client: alice,
		Server: mkPrinc(ConfigRealm, 1, "krb5_ccache_conf_data", "fast_avail", "krbtgt/KRB.TEST@KRB.TEST"),
		Ticket: []byte("yes"),
	})
	path := filepath.Join(dir, "cc")
	if err := WriteCCacheFile(path, c); err != nil {
		t.Fatal(err)
	}
	out, err := runMITTool(t, append(env, "KRB5CCNAME=FILE:"+path), "", tools["klist"], "-f", "-e")
	if err != nil {
		t.Fatalf("klist rejected our cache: %v", err)
	}
	t.Logf("klist -f -e:\n%s", out)
	def, ents := parseKlistOutput(t, out)
	if def != "alice@KRB.TEST" {
		t.Errorf("klist default principal %q", def)
	}
	e, ok := ents["krbtgt/KRB.TEST@KRB.TEST"]
	if !ok {
		t.Fatalf("klist does not list krbtgt/KRB.TEST@KRB.TEST")
	}
	if e.flags != "FRIA" || e.flags != FlagString(fl) {
		t.Errorf("klist flags %q, FlagString %q, want FRIA", e.flags, FlagString(fl))
	}
	if e.etypes != "aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96" {
		t.Errorf("klist etypes %q", e.etypes)
	}
	if !strings.Contains(out, "renew until") {
		t.Errorf("klist shows no renew time")
	}
	if len(ents) != 1 || strings.Contains(out, "X-CACHECONF") {
		t.Errorf("klist shows %d entries (config entries must be hidden)", len(ents))
	}
	// klist -s: exit 0 means a valid (unexpired) TGT is present.
	if _, err := runMITTool(t, append(env, "KRB5CCNAME=FILE:"+path), "", tools["klist"], "-s"); err != nil {
		t.Errorf("klist -s does not see a valid TGT: %v", err)
	}
}

// TestKlistFlagLetters checks FlagString against klist for every flag MIT
// knows, one credential per flag plus one with all of them.
func TestKlistFlagLetters(t *testing.T) {
	tools := needMITTools(t, "klist")
	dir := t.TempDir()
	env := mitToolEnv("KRB5_CONFIG=" + writeMITKrb5Conf(t, dir, ""))
	now := time.Now().Truncate(time.Second).UTC()
	alice := mkPrinc(mitTestRealm, 1, "alice")
	session := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	c := &CCache{DefaultPrincipal: alice}
	want := map[string]string{}
	add := func(name string, fl uint32) {
		sname := types.PrincipalName{NameType: 1, NameString: []string{"flag", name}}
		c.Add(Credential{
			Client: alice, Server: principal.FromPrincipalName(sname, mitTestRealm), Key: session,
			AuthTime: now, StartTime: now, EndTime: now.Add(time.Hour), Flags: fl,
			Ticket: fabricateCCacheTicket(t, alice, sname, session, fl, now, now.Add(time.Hour), time.Time{}),
		})
		want["flag/"+name+"@"+mitTestRealm] = FlagString(fl)
	}
	for i := 0; i < 32; i++ {
		add(fmt.Sprintf("bit%d", i), 1<<(31-i))
	}
	add("all", 0xffffffff)
	path := filepath.Join(dir, "cc")
	if err := WriteCCacheFile(path, c); err != nil {
		t.Fatal(err)
	}
	out, err := runMITTool(t, append(env, "KRB5CCNAME=FILE:"+path), "", tools["klist"], "-f")
	if err != nil {
		t.Fatal(err)
	}
	_, ents := parseKlistOutput(t, out)
	if len(ents) != len(want) {
		t.Fatalf("klist listed %d credentials, want %d:\n%s", len(ents), len(want), out)
	}
	for name, w := range want {
		if got := ents[name].flags; got != w {
			t.Errorf("%s: klist flags %q, FlagString %q", name, got, w)
		}
	}
	if ents["flag/all@"+mitTestRealm].flags != "FfPpDdiRIHATOa" {
		t.Errorf("all flags: klist %q", ents["flag/all@"+mitTestRealm].flags)
	}
}

// TestMITKinitCCacheInterop reads a cache written by MIT kinit against a real
// MIT KDC, writes it back with WriteCCacheFile, and has MIT klist and kvno
// use the rewritten cache (kvno does a TGS exchange with our copy of the TGT
// and session key, then stores the service ticket into our file).
func TestMITKinitCCacheInterop(t *testing.T) {
	m := startMITRealm(t)
	m.kadmin(t, "addprinc -pw alicepw alice")
	m.kadmin(t, "addprinc -randkey host/localhost")

	mitCC := filepath.Join(m.dir, "kinit.cc")
	if _, err := runMITTool(t, m.clientEnv(mitCC), "alicepw\n", m.tools["kinit"], "alice"); err != nil {
		t.Fatalf("kinit: %v", err)
	}
	raw, err := os.ReadFile(mitCC)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCCache(raw)
	if err != nil {
		t.Fatalf("ParseCCache(MIT kinit cache): %v", err)
	}
	tgt := checkMITKinitCache(t, c, "alice")
	if time.Since(tgt.AuthTime).Abs() > 5*time.Minute {
		t.Errorf("TGT authtime %v is not now", tgt.AuthTime)
	}
	// Byte-identical apart from the zero KDC offset header MIT writes.
	if c.KDCOffset == 0 && len(raw) > 16 && bytes.Equal(raw[:16], []byte{5, 4, 0, 12, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0}) {
		if got := c.Marshal(); !bytes.Equal(got, append([]byte{5, 4, 0, 0}, raw[16:]...)) {
			t.Errorf("Marshal differs from MIT's bytes beyond the header")
		}
	}

	ourCC := filepath.Join(m.dir, "ours.cc")
	if err := WriteCCacheFile(ourCC, c); err != nil {
		t.Fatal(err)
	}
	out, err := runMITTool(t, m.clientEnv(ourCC), "", m.tools["klist"], "-f", "-e")
	if err != nil {
		t.Fatalf("klist rejected our rewrite of the MIT cache: %v", err)
	}
	def, ents := parseKlistOutput(t, out)
	if def != "alice@KRB.TEST" {
		t.Errorf("klist default principal %q", def)
	}
	e, ok := ents["krbtgt/KRB.TEST@KRB.TEST"]
	if !ok {
		t.Fatalf("klist does not list the TGT:\n%s", out)
	}
	if e.flags != FlagString(tgt.Flags) || !strings.Contains(e.flags, "IA") {
		t.Errorf("klist flags %q, FlagString %q", e.flags, FlagString(tgt.Flags))
	}
	if e.etypes != "aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96" {
		t.Errorf("klist etypes %q", e.etypes)
	}

	// kvno uses our file's TGT and session key for a TGS exchange.
	if _, err := runMITTool(t, m.clientEnv(ourCC), "", m.tools["kvno"], "host/localhost"); err != nil {
		t.Fatalf("kvno with our cache: %v", err)
	}
	c2, err := ReadCCacheFile(ourCC)
	if err != nil {
		t.Fatalf("re-reading the cache kvno updated: %v", err)
	}
	svc, ok := c2.Find(mkPrinc(mitTestRealm, 0, "host", "localhost"))
	if !ok {
		t.Fatalf("no host/localhost ticket after kvno: %+v", c2.Credentials)
	}
	if !svc.Client.Equal(c.DefaultPrincipal) || svc.Flags&FlagInitial != 0 || len(svc.Ticket) == 0 {
		t.Errorf("service ticket: client %s flags %s", svc.Client, FlagString(svc.Flags))
	}
	if _, ok := c2.Find(tgt.Server); !ok {
		t.Errorf("TGT lost after kvno")
	}
}

// TestCCacheKeepsNameTypes checks that every principal's name type reaches the file and comes back: the
// name type plays no part in comparing names, so a conversion that dropped or normalised it would go
// unnoticed elsewhere, yet MIT stores it and tools show it.
func TestCCacheKeepsNameTypes(t *testing.T) {
	for _, nt := range []int32{nametype.KRB_NT_UNKNOWN, nametype.KRB_NT_SRV_HST, nametype.KRB_NT_ENTERPRISE, -128} {
		def := mkPrinc("R", nt, "alice")
		c := &CCache{DefaultPrincipal: def, Credentials: []Credential{
			{Client: mkPrinc("R", nt+1, "alice"), Server: mkPrinc("R", nt+2, "host", "x")},
		}}
		b := c.Marshal()
		// After the version and the empty header, the default principal starts with its name type.
		if got := int32(binary.BigEndian.Uint32(b[4:8])); got != nt {
			t.Errorf("name type %d written as %d", nt, got)
		}
		back, err := ParseCCache(b)
		if err != nil {
			t.Fatal(err)
		}
		cr := back.Credentials[0]
		if back.DefaultPrincipal.Type != nt || cr.Client.Type != nt+1 || cr.Server.Type != nt+2 {
			t.Errorf("name types %d, %d, %d read back as %d, %d, %d",
				nt, nt+1, nt+2, back.DefaultPrincipal.Type, cr.Client.Type, cr.Server.Type)
		}
		if !reflect.DeepEqual(back.DefaultPrincipal, def) || !reflect.DeepEqual(back.Credentials, c.Credentials) {
			t.Errorf("round trip changed principals: %+v", back)
		}
	}
}
