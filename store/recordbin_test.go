package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
)

// randomDBRecord fills every field of a dbRecord, zero or not at random.
func randomDBRecord(rng *rand.Rand) *dbRecord {
	str := func() string {
		if rng.Intn(4) == 0 {
			return ""
		}
		// Valid UTF-8 (names are text; JSON would replace anything else).
		chars := []rune("aZ/@.\\\"é€\x00")
		r := make([]rune, 1+rng.Intn(20))
		for i := range r {
			r[i] = chars[rng.Intn(len(chars))]
		}
		return string(r)
	}
	blob := func() []byte {
		if rng.Intn(4) == 0 {
			return nil
		}
		b := make([]byte, 1+rng.Intn(300))
		rng.Read(b)
		return b
	}
	i64 := func() int64 {
		switch rng.Intn(4) {
		case 0:
			return 0
		case 1:
			return -rng.Int63()
		}
		return rng.Int63()
	}
	bit := func() bool { return rng.Intn(2) == 0 }
	names := func() []string {
		var out []string
		for range rng.Intn(4) {
			out = append(out, str()+"x")
		}
		return out
	}
	d := &dbRecord{V: 1, Name: str() + "@R", NameType: int32(rng.Intn(11)) - 1, SealedKeys: blob(),
		RequiresPreauth: bit(), Disabled: bit(), MaxLife: i64(), MaxRenew: i64(), Expires: i64(),
		PasswordExpires: i64(), Created: i64(), Modified: i64(), Aliases: names(), OKAsDelegate: bit(),
		OKToAuthAsDelegate: bit(), DelegateTo: names(), RequiresFAST: bit(), Policy: str(),
		FailCount: int(i64() % 1000), LastFailure: i64(), LockedUntil: i64(), LastPwChange: i64(), SealedHistory: blob()}
	return d
}

// TestRecordBinaryRoundTrip: every field of random records comes back from
// the binary form as it went in, and JSON → binary → JSON changes nothing.
func TestRecordBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for i := range 2000 {
		d := randomDBRecord(rng)
		b := marshalRecordBinary(d)
		got, err := unmarshalRecordBinary(b)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got, d)
		}
		j, _ := json.Marshal(d)
		viaBinary, err := transcode(j, formBinary)
		if err != nil || !bytes.Equal(viaBinary, b) {
			t.Fatalf("record %d: JSON to binary: %v", i, err)
		}
		back, err := transcode(viaBinary, formJSON)
		if err != nil || !bytes.Equal(back, j) {
			t.Fatalf("record %d: binary to JSON:\n%s\n%s (%v)", i, back, j, err)
		}
	}
}

func TestKeysBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	for i := range 500 {
		keys := make([]dbKey, rng.Intn(6))
		for j := range keys {
			v := make([]byte, rng.Intn(64))
			rng.Read(v)
			salt := ""
			if rng.Intn(2) == 0 {
				salt = "REALMuser"
			}
			keys[j] = dbKey{Etype: int32(rng.Intn(30)) - 2, KVNO: rng.Uint32(), Salt: salt, Value: v}
		}
		got, err := unmarshalKeysBinary(marshalKeysBinary(keys))
		if err != nil {
			t.Fatalf("keys %d: %v", i, err)
		}
		if len(got) != len(keys) {
			t.Fatalf("keys %d: %d keys, want %d", i, len(got), len(keys))
		}
		for j := range keys {
			if got[j].Etype != keys[j].Etype || got[j].KVNO != keys[j].KVNO || got[j].Salt != keys[j].Salt || !bytes.Equal(got[j].Value, keys[j].Value) {
				t.Fatalf("keys %d, key %d: %+v, want %+v", i, j, got[j], keys[j])
			}
		}
	}
}

// TestRecordBinaryCompact: a principal with the default keys takes less than
// half the bytes of its JSON form, which is what the file (and the pages a
// KDC maps) is made of.
func TestRecordBinaryCompact(t *testing.T) {
	mk, err := NewMasterKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	alice := principal.MustParse("alice@KRB.TEST")
	keys, _ := principal.KeysFromPassword(alice, "alicepw", principal.DefaultEnctypes, 1)
	rec := principal.NewRecord(alice, keys, testNow)
	bin, err := encodeRecord(rec, mk, formBinary)
	if err != nil {
		t.Fatal(err)
	}
	js, err := encodeRecord(rec, mk, formJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(bin)*2 > len(js) {
		t.Fatalf("binary form %d bytes, JSON %d", len(bin), len(js))
	}
	for _, v := range [][]byte{bin, js} {
		got, err := decodeRecord(v, mk)
		if err != nil || !got.Name.Equal(alice) || len(got.Keys) != len(keys) || !bytes.Equal(got.Keys[0].Value, keys[0].Value) || !got.RequiresPreauth {
			t.Fatalf("decoded %+v, %v", got, err)
		}
	}
	t.Logf("alice: binary %d bytes, JSON %d", len(bin), len(js))
}

// TestRecordBinaryUnknownField: a field of a later release is skipped, as an
// unknown JSON field was.
func TestRecordBinaryUnknownField(t *testing.T) {
	d := &dbRecord{V: 1, Name: "a@R", NameType: 1, Created: 5}
	b := marshalRecordBinary(d)
	b = appendField(b, 99, []byte("from the future"))
	b = appendIntField(b, tagModified, 6)
	got, err := unmarshalRecordBinary(b)
	if err != nil || got.Name != "a@R" || got.Created != 5 || got.Modified != 6 {
		t.Fatalf("%+v %v", got, err)
	}
}

// TestRecordBinaryMalformed: every truncation and some damaged values are
// refused as corrupt, never read wrongly and never a panic.
func TestRecordBinaryMalformed(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	d := randomDBRecord(rng)
	d.Name, d.Created = "alice@R", 7
	b := marshalRecordBinary(d)
	for n := 0; n < len(b); n++ {
		if got, err := parseStored(b[:n]); err == nil && reflect.DeepEqual(got, d) {
			t.Fatalf("a record cut at %d of %d bytes reads as the whole", n, len(b))
		}
	}
	for name, v := range map[string][]byte{
		"length past the end":   {recordBinary, tagName, 200, 'a'},
		"huge length":           append([]byte{recordBinary, tagName}, binary.AppendUvarint(nil, 1<<62)...),
		"integer with trailing": {recordBinary, tagName, 1, 'a', tagCreated, 2, 1, 1},
		"empty integer":         {recordBinary, tagName, 1, 'a', tagCreated, 0},
		"name type overflow":    append([]byte{recordBinary, tagName, 1, 'a', tagNameType, 5}, binary.AppendVarint(nil, 1<<40)[:5]...),
		"no name":               {recordBinary, tagCreated, 1, 2},
		"bad length varint":     {recordBinary, tagName, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := parseStored(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, v := range map[string][]byte{
		"count over the bytes": {keysBinary, 100, 1, 1, 0, 0},
		"value past the end":   {keysBinary, 1, 36, 1, 0, 50, 1, 2},
		"trailing bytes":       {keysBinary, 1, 36, 1, 0, 1, 9, 0},
		"kvno over 32 bits":    append([]byte{keysBinary, 1, 36}, append(binary.AppendUvarint(nil, 1<<33), 0, 0)...),
		"not binary":           {'[', ']'},
	} {
		if _, err := unmarshalKeysBinary(v); err == nil {
			t.Errorf("keys, %s: accepted", name)
		}
	}
}

// FuzzRecordBinary: whatever bytes a damaged page hands out, the decoder does
// not panic, and what it accepts encodes back to a record that reads the same.
func FuzzRecordBinary(f *testing.F) {
	rng := rand.New(rand.NewSource(10))
	for range 8 {
		f.Add(marshalRecordBinary(randomDBRecord(rng)))
	}
	f.Add(marshalKeysBinary([]dbKey{{Etype: 18, KVNO: 2, Salt: "Rx", Value: []byte("0123456789abcdef0123456789abcdef")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if keys, err := unmarshalKeysBinary(b); err == nil {
			again, err := unmarshalKeysBinary(marshalKeysBinary(keys))
			if err != nil || len(again) != len(keys) {
				t.Fatalf("keys do not read back: %v", err)
			}
		}
		d, err := parseStored(b)
		if err != nil {
			return
		}
		again, err := unmarshalRecordBinary(marshalRecordBinary(d))
		if err != nil {
			t.Fatalf("re-encoded record does not read: %v", err)
		}
		// JSON holds what binary holds, but nil and empty lists and
		// blobs are one value in the binary form.
		norm := func(d *dbRecord) *dbRecord {
			c := *d
			for _, p := range []*[]string{&c.Aliases, &c.DelegateTo} {
				if len(*p) == 0 {
					*p = nil
				}
			}
			for _, p := range []*[]byte{&c.SealedKeys, &c.SealedHistory} {
				if len(*p) == 0 {
					*p = nil
				}
			}
			c.V = 1
			return &c
		}
		if !reflect.DeepEqual(norm(again), norm(d)) {
			t.Fatalf("re-encoded record differs:\n%+v\n%+v", again, d)
		}
	})
}

// copyV2 copies testdata/schema2, made by the schema-2 code (at 4eade64) with
// JSON records: alice (password alice-pw, alias al, policy default, two
// failures, a key history), bob (disabled, max life 1h, expires a day after
// creation) and host/www.v2.test (random keys at kvno 3, no preauth, FAST
// required, ok-as-delegate, ok-to-auth-as-delegate, may delegate to
// HTTP/db.v2.test).
func copyV2(t *testing.T) string { return copyFixture(t, "schema2") }

// TestUpgradeSchema2: a schema-2 file opens as schema 3 with its JSON records
// as they were; each reads every field it was written with, and a record
// written again is stored in the binary form and reads the same.
func TestUpgradeSchema2(t *testing.T) {
	path := copyV2(t)
	ctx := context.Background()
	s, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v string
	forms := map[string]byte{}
	readRaw := func() {
		s.view(func(tx *bolt.Tx) error {
			v = string(tx.Bucket(bucketMeta).Get(metaSchema))
			return tx.Bucket(bucketPrincipals).ForEach(func(k, val []byte) error {
				forms[string(k)] = val[0]
				return nil
			})
		})
	}
	readRaw()
	if v != schemaVersion || forms["alice@V2.TEST"] != '{' || forms["host/www.v2.test@V2.TEST"] != '{' {
		t.Fatalf("after open: schema %q, forms %q", v, forms)
	}
	created := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	check := func(when string) {
		t.Helper()
		s.cache.Clear() // read from the file, not the record cache
		alice, err := s.Get(ctx, principal.MustParse("al@V2.TEST"))
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		keys, _ := principal.KeysFromPassword(alice.Name, "alice-pw", principal.DefaultEnctypes, 1)
		old, _ := principal.KeysFromPassword(alice.Name, "alice-old-pw", principal.DefaultEnctypes, 0)
		if k, ok := alice.FindKey(keys[0].Etype, 1); !ok || !bytes.Equal(k.Value, keys[0].Value) || len(alice.Keys) != len(keys) ||
			alice.Policy != "default" || alice.FailCount != 2 || !alice.LastFailure.Equal(created.Add(-time.Minute)) ||
			!alice.LastPasswordChange.Equal(created) || len(alice.KeyHistory) != 1 || !bytes.Equal(alice.KeyHistory[0].Value, old[0].Value) ||
			!alice.Created.Equal(created) || !alice.RequiresPreauth {
			t.Fatalf("%s: alice %+v", when, alice)
		}
		bob, err := s.Get(ctx, principal.MustParse("bob@V2.TEST"))
		if err != nil || !bob.Disabled || bob.MaxLife != time.Hour || !bob.Expires.Equal(created.Add(24*time.Hour)) {
			t.Fatalf("%s: bob %+v %v", when, bob, err)
		}
		www, err := s.Get(ctx, principal.MustParse("host/www.v2.test@V2.TEST"))
		if err != nil || www.RequiresPreauth || !www.RequiresFAST || !www.Delegation.OKAsDelegate || !www.Delegation.OKToAuthAsDelegate ||
			len(www.Delegation.AllowedTo) != 1 || www.Delegation.AllowedTo[0].String() != "HTTP/db.v2.test@V2.TEST" || www.KVNO() != 3 {
			t.Fatalf("%s: www %+v %v", when, www, err)
		}
	}
	check("JSON records")
	for _, n := range []string{"alice@V2.TEST", "bob@V2.TEST", "host/www.v2.test@V2.TEST"} {
		if err := s.Update(ctx, principal.MustParse(n), func(*principal.Record) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	readRaw()
	if forms["alice@V2.TEST"] != recordBinary || forms["bob@V2.TEST"] != recordBinary || forms["host/www.v2.test@V2.TEST"] != recordBinary ||
		forms["krbtgt/V2.TEST@V2.TEST"] != '{' {
		t.Fatalf("after the writes: forms %q", forms)
	}
	check("binary records")
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDecodeRecord: what a lookup that misses the record cache pays to
// read a principal with the default keys, in each form (keys opened).
func BenchmarkDecodeRecord(b *testing.B) {
	mk, err := NewMasterKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	alice := principal.MustParse("alice@KRB.TEST")
	keys, _ := principal.KeysFromPassword(alice, "alicepw", principal.DefaultEnctypes, 1)
	rec := principal.NewRecord(alice, keys, testNow)
	for _, f := range []struct {
		name string
		form recordForm
	}{{"JSON", formJSON}, {"binary", formBinary}} {
		v, err := encodeRecord(rec, mk, f.form)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeRecord(v, mk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
