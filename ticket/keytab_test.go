package ticket

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
)

// mitKtutilFixture was written by MIT ktutil 1.20.1:
//
//	addent -password -p host/localhost@KRB.TEST -k 3 -e aes256-cts-hmac-sha1-96   (password svcpw)
//	addent -password -p host/localhost@KRB.TEST -k 300 -e aes128-cts-hmac-sha1-96 (password svcpw)
const mitKtutilFixture = "testdata/mit-ktutil-1.20.keytab"

// passwordKey derives the key MIT derives for a password with the default
// salt (realm followed by the name components).
func passwordKey(t *testing.T, p principal.Name, password string, etype int32) types.EncryptionKey {
	t.Helper()
	k, _, err := crypto.GetKeyFromPassword(password, p.PrincipalName(), p.Realm, etype, nil)
	if err != nil {
		t.Fatalf("derive %d key for %s: %v", etype, p, err)
	}
	return k
}

func sampleKeytab() []KeytabEntry {
	host := mkPrinc(mitTestRealm, 3, "host", "localhost")
	return []KeytabEntry{
		{Principal: host, Timestamp: unixUTC(1700000000), KVNO: 3,
			Key: types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{0x11}, 32)}},
		{Principal: host, Timestamp: unixUTC(1700000000), KVNO: 3,
			Key: types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{0x22}, 16)}},
		{Principal: mkPrinc(mitTestRealm, 1, "svc", "a", "b"), Timestamp: unixUTC(1800000000), KVNO: 300,
			Key: types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA384_192, KeyValue: bytes.Repeat([]byte{0x33}, 32)}},
		{Principal: mkPrinc("OTHER.TEST", 1, "bob"), Timestamp: unixUTC(1), KVNO: 256,
			Key: types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA256_128, KeyValue: bytes.Repeat([]byte{0x44}, 16)}},
	}
}

func TestMarshalKeytabLayout(t *testing.T) {
	e := KeytabEntry{
		Principal: mkPrinc("R", 3, "h", "x"),
		Timestamp: unixUTC(0x01020304),
		KVNO:      0x1234,
		Key:       types.EncryptionKey{KeyType: 17, KeyValue: []byte{0xaa, 0xbb}},
	}
	want := []byte{
		0x05, 0x02, // version 2
		0, 0, 0, 30, // record size
		0, 2, // two components
		0, 1, 'R', // realm
		0, 1, 'h',
		0, 1, 'x',
		0, 0, 0, 3, // name type
		1, 2, 3, 4, // timestamp
		0x34,  // low 8 bits of the kvno
		0, 17, // enctype
		0, 2, 0xaa, 0xbb, // key
		0, 0, 0x12, 0x34, // 32-bit kvno
	}
	if got := MarshalKeytab([]KeytabEntry{e}); !bytes.Equal(got, want) {
		t.Fatalf("MarshalKeytab\n got %x\nwant %x", got, want)
	}
	if got := MarshalKeytab(nil); !bytes.Equal(got, []byte{5, 2}) {
		t.Errorf("empty keytab = %x", got)
	}
	// The zero time is stored as 0.
	e.Timestamp = time.Time{}
	if got := MarshalKeytab([]KeytabEntry{e}); !bytes.Equal(got[6+15:6+19], []byte{0, 0, 0, 0}) {
		t.Errorf("zero timestamp stored as %x", got[6+15:6+19])
	}
}

// TestMarshalKeytabMatchesMITKtutil rebuilds a keytab written by MIT ktutil
// and expects the same bytes.
func TestMarshalKeytabMatchesMITKtutil(t *testing.T) {
	raw, err := os.ReadFile(mitKtutilFixture)
	if err != nil {
		t.Fatal(err)
	}
	host := mkPrinc(mitTestRealm, 1, "host", "localhost")
	ts := time.Unix(int64(binary.BigEndian.Uint32(raw[2+4+2+10+6+11+4:])), 0) // version, size, count, realm, host, localhost, name type
	entries := []KeytabEntry{
		{Principal: host, Timestamp: ts, KVNO: 3, Key: passwordKey(t, host, "svcpw", etypeID.AES256_CTS_HMAC_SHA1_96)},
		{Principal: host, Timestamp: ts, KVNO: 300, Key: passwordKey(t, host, "svcpw", etypeID.AES128_CTS_HMAC_SHA1_96)},
	}
	if got := MarshalKeytab(entries); !bytes.Equal(got, raw) {
		t.Fatalf("MarshalKeytab differs from MIT ktutil\n got %x\nwant %x", got, raw)
	}
}

func TestWriteKeytabFileGokrb5Load(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries := sampleKeytab()
	if err := WriteKeytabFile(path, entries); err != nil {
		t.Fatalf("WriteKeytabFile: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if names := listDirNames(t, dir); !reflect.DeepEqual(names, []string{"kt"}) {
		t.Errorf("directory holds %q", names)
	}
	kt, err := keytab.Load(path)
	if err != nil {
		t.Fatalf("gokrb5 keytab.Load: %v", err)
	}
	if len(kt.Entries) != len(entries) {
		t.Fatalf("gokrb5 read %d entries, want %d", len(kt.Entries), len(entries))
	}
	for i, g := range kt.Entries {
		w := entries[i]
		if g.Principal.Realm != w.Principal.Realm || !reflect.DeepEqual(g.Principal.Components, w.Principal.Components) ||
			g.Principal.NameType != w.Principal.Type || int(g.Principal.NumComponents) != len(w.Principal.Components) {
			t.Errorf("entry %d principal %+v", i, g.Principal)
		}
		if !g.Timestamp.Equal(w.Timestamp) {
			t.Errorf("entry %d timestamp %v, want %v", i, g.Timestamp, w.Timestamp)
		}
		if g.KVNO != w.KVNO || g.KVNO8 != uint8(w.KVNO) {
			t.Errorf("entry %d kvno %d/%d, want %d", i, g.KVNO, g.KVNO8, w.KVNO)
		}
		if g.Key.KeyType != w.Key.KeyType || !bytes.Equal(g.Key.KeyValue, w.Key.KeyValue) {
			t.Errorf("entry %d key %d %x", i, g.Key.KeyType, g.Key.KeyValue)
		}
	}
	// Lookups by principal, kvno and enctype find the right keys.
	for _, w := range entries {
		k, kvno, err := kt.GetEncryptionKey(w.Principal.PrincipalName(), w.Principal.Realm, int(w.KVNO), w.Key.KeyType)
		if err != nil || kvno != int(w.KVNO) || !bytes.Equal(k.KeyValue, w.Key.KeyValue) {
			t.Errorf("GetEncryptionKey(%s, %d, %d) = %x, %d, %v", w.Principal, w.KVNO, w.Key.KeyType, k.KeyValue, kvno, err)
		}
	}
	// The bytes also survive gokrb5's own marshalling unchanged.
	raw, _ := os.ReadFile(path)
	if again, err := kt.Marshal(); err != nil || !bytes.Equal(again, raw) {
		t.Errorf("gokrb5 re-marshal differs: %v", err)
	}
}

func TestKeytabInvalidEntries(t *testing.T) {
	good := sampleKeytab()[0]
	long := strings.Repeat("x", 70000)
	bad := map[string]KeytabEntry{}
	e := good
	e.Principal = mkPrinc(long, 1, "a")
	bad["long realm"] = e
	e = good
	e.Principal = mkPrinc("R", 1, "a", long)
	bad["long component"] = e
	e = good
	e.Principal = principal.Name{Realm: "R", Components: make([]string, 40000)}
	bad["too many components"] = e
	e = good
	e.Key.KeyValue = make([]byte, 70000)
	bad["long key"] = e
	e = good
	e.Key.KeyType = 70000
	bad["enctype"] = e

	dir := t.TempDir()
	for name, e := range bad {
		path := filepath.Join(dir, "kt")
		if err := WriteKeytabFile(path, []KeytabEntry{good, e}); err == nil || !strings.HasPrefix(err.Error(), "ticket: ") {
			t.Errorf("%s: WriteKeytabFile error %v", name, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: a file was written", name)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: MarshalKeytab did not panic", name)
				}
			}()
			MarshalKeytab([]KeytabEntry{e})
		}()
	}
	if err := WriteKeytabFile(filepath.Join(dir, "missing", "kt"), []KeytabEntry{good}); err == nil {
		t.Errorf("write into a missing directory succeeded")
	}
}

// ktEntry is one line of klist -k -t -e -K output.
type ktEntry struct {
	kvno      uint32
	principal string
	etype     string
	key       string
}

func parseKlistKeytab(t *testing.T, out string) []ktEntry {
	t.Helper()
	var ents []ktEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// KVNO DATE TIME PRINCIPAL (ETYPE) (0xKEY)
		if len(f) != 6 {
			continue
		}
		kvno, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			continue
		}
		ents = append(ents, ktEntry{
			kvno:      uint32(kvno),
			principal: f[3],
			etype:     strings.Trim(f[4], "()"),
			key:       strings.TrimPrefix(strings.Trim(f[5], "()"), "0x"),
		})
	}
	return ents
}

func TestKlistListsWrittenKeytab(t *testing.T) {
	tools := needMITTools(t, "klist")
	dir := t.TempDir()
	env := mitToolEnv("KRB5_CONFIG=" + writeMITKrb5Conf(t, dir, ""))
	path := filepath.Join(dir, "kt")
	entries := sampleKeytab()
	if err := WriteKeytabFile(path, entries); err != nil {
		t.Fatal(err)
	}
	out, err := runMITTool(t, env, "", tools["klist"], "-k", "-e", "-t", "-K", "FILE:"+path)
	if err != nil {
		t.Fatalf("klist -k rejected our keytab: %v", err)
	}
	t.Logf("klist -k -e -t -K:\n%s", out)
	got := parseKlistKeytab(t, out)
	if len(got) != len(entries) {
		t.Fatalf("klist listed %d keys, want %d", len(got), len(entries))
	}
	for i, w := range entries {
		want := ktEntry{
			kvno:      w.KVNO,
			principal: w.Principal.String(),
			etype:     principal.EnctypeName(w.Key.KeyType),
			key:       hex.EncodeToString(w.Key.KeyValue),
		}
		if got[i] != want {
			t.Errorf("klist entry %d = %+v, want %+v", i, got[i], want)
		}
	}
}

// TestMITKinitWithWrittenKeytab authenticates to a real MIT KDC with keys we
// derived ourselves and wrote with WriteKeytabFile; a keytab with the wrong
// key must fail, so the success is not an accident.
func TestMITKinitWithWrittenKeytab(t *testing.T) {
	m := startMITRealm(t)
	m.kadmin(t, "addprinc -pw svcpw svc/localhost")
	svc := mkPrinc(mitTestRealm, 1, "svc", "localhost")
	now := time.Now()
	entries := []KeytabEntry{
		{Principal: svc, Timestamp: now, KVNO: 1, Key: passwordKey(t, svc, "svcpw", etypeID.AES256_CTS_HMAC_SHA1_96)},
		{Principal: svc, Timestamp: now, KVNO: 1, Key: passwordKey(t, svc, "svcpw", etypeID.AES128_CTS_HMAC_SHA1_96)},
	}
	kt := filepath.Join(m.dir, "svc.keytab")
	if err := WriteKeytabFile(kt, entries); err != nil {
		t.Fatal(err)
	}
	cc := filepath.Join(m.dir, "svc.cc")
	if _, err := runMITTool(t, m.clientEnv(cc), "", m.tools["kinit"], "-k", "-t", "FILE:"+kt, "svc/localhost@"+mitTestRealm); err != nil {
		t.Fatalf("kinit -k with our keytab: %v", err)
	}
	c, err := ReadCCacheFile(cc)
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultPrincipal.String() != "svc/localhost@KRB.TEST" {
		t.Errorf("default principal %s", c.DefaultPrincipal)
	}
	tgt, ok := c.Find(mkPrinc(mitTestRealm, 2, "krbtgt", mitTestRealm))
	if !ok || tgt.Flags&FlagInitial == 0 {
		t.Errorf("no initial TGT after kinit -k: %+v", c.Credentials)
	}

	// The same with a wrong key must be refused by the KDC.
	wrong := []KeytabEntry{
		{Principal: svc, Timestamp: now, KVNO: 1, Key: passwordKey(t, svc, "not-the-password", etypeID.AES256_CTS_HMAC_SHA1_96)},
	}
	badKT := filepath.Join(m.dir, "wrong.keytab")
	if err := WriteKeytabFile(badKT, wrong); err != nil {
		t.Fatal(err)
	}
	if _, err := runMITTool(t, m.clientEnv(filepath.Join(m.dir, "wrong.cc")), "", m.tools["kinit"], "-k", "-t", "FILE:"+badKT, "svc/localhost@"+mitTestRealm); err == nil {
		t.Fatalf("kinit -k with a wrong key succeeded")
	}
}

// TestKeytabKeepsNameTypes checks that each entry's name type is written (version 2 keytabs store it
// after the components) and read back as written by gokrb5, for name types other than NT-PRINCIPAL.
func TestKeytabKeepsNameTypes(t *testing.T) {
	key := types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 16)}
	var entries []KeytabEntry
	for _, nt := range []int32{nametype.KRB_NT_UNKNOWN, nametype.KRB_NT_SRV_HST, nametype.KRB_NT_ENTERPRISE, -128} {
		entries = append(entries, KeytabEntry{Principal: mkPrinc("R", nt, "host", "x"), Timestamp: unixUTC(1), KVNO: 1, Key: key})
	}
	b := MarshalKeytab(entries)
	// version, record size, component count, realm "R", components "host" and "x": then the name type.
	off := 2 + 4 + 2 + (2 + 1) + (2 + 4) + (2 + 1)
	if got := int32(binary.BigEndian.Uint32(b[off:])); got != entries[0].Principal.Type {
		t.Errorf("first entry's name type written as %d, want %d", got, entries[0].Principal.Type)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	for i, g := range kt.Entries {
		if g.Principal.NameType != entries[i].Principal.Type {
			t.Errorf("entry %d name type %d read back as %d", i, entries[i].Principal.Type, g.Principal.NameType)
		}
	}
}

// FuzzParseKeytab: ParseKeytab never panics and never echoes input bytes in
// its error (issue 8).
func FuzzParseKeytab(f *testing.F) {
	f.Add(MarshalKeytab([]KeytabEntry{{Principal: principal.MustParse("host/x@R"), KVNO: 2,
		Key: types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{0xa5}, 32)}}}))
	f.Add([]byte{0x05, 0x02})
	f.Add([]byte{0x05, 0x01, 0x00, 0x00, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseKeytab(b); err != nil && err.Error() != ErrBadKeytab.Error() {
			t.Fatalf("error text %q is not the fixed one", err)
		}
	})
}
