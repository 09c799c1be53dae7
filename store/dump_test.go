package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/internal/etcdtest"
	"github.com/kerbkit/kerbkit/principal"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestDumpLoadRoundTrip moves a realm bbolt → etcd → bbolt: the three dumps
// hold the same records and keys, and each database opens with them. The
// etcd realm stays readable by KDCs that read only schema 2: keys sealed with
// the binary plaintext of the bbolt file are sealed again as JSON there (so its
// dump differs from the file's in the seals only), and the second file's dump
// is the etcd realm's byte for byte.
func TestDumpLoadRoundTrip(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	s, err := Init(ctx, src, "ETCD.TEST", principal.RealmPolicy{MaxLife: 10 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "bob", "host/www.etcd.test", `we\/ird`} {
		r := newUser(t, n)
		r.Disabled = n == "bob"
		r.MaxRenew = 3 * time.Hour
		r.Expires = time.Now().Add(48 * time.Hour)
		if n == "alice" { // a password changed once: sealed key history
			old := newUser(t, n)
			r.KeyHistory = old.Keys
		}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var d1 bytes.Buffer
	if err := Dump(ctx, s, &d1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if strings.Contains(d1.String(), `"value":null`) || strings.Count(d1.String(), "\n") != 8 { // header, default policy, 6 principals
		t.Fatalf("dump:\n%s", d1.String())
	}

	mk := MasterKeyPath(src)
	url := c.URL("roundtrip")
	n, err := Load(ctx, url, OpenOptions{MasterKeyPath: mk}, bytes.NewReader(d1.Bytes()))
	if err != nil || n != 7 { // 6 principals and the default policy
		t.Fatalf("load into etcd: %d, %v", n, err)
	}
	e, err := OpenEtcd(ctx, url, mk, EtcdOptions{NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.Policy().MaxLife != 10*time.Hour {
		t.Fatalf("policy %+v", e.Policy())
	}
	bob, err := e.Get(ctx, principal.Name{Realm: "ETCD.TEST", Components: []string{"bob"}})
	if err != nil || !bob.Disabled || bob.MaxRenew != 3*time.Hour {
		t.Fatalf("bob on etcd: %+v %v", bob, err)
	}
	var d2 bytes.Buffer
	if err := Dump(ctx, e, &d2); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// In etcd every seal holds the JSON plaintext of schema 2.
	m, err := LoadMasterKeyFile(mk)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Client().Get(ctx, "/roundtrip/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	seals := 0
	for _, kv := range resp.Kvs {
		var d dbRecord
		if !bytes.Contains(kv.Key, []byte("/"+string(bucketPrincipals)+"/")) {
			continue
		}
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			t.Fatalf("%s: not a JSON record: %v", kv.Key, err)
		}
		for ad, sealed := range map[string][]byte{d.Name: d.SealedKeys, historyAD(d.Name): d.SealedHistory} {
			if len(sealed) == 0 {
				continue
			}
			plain, err := m.Open(sealed, ad)
			if err != nil || len(plain) == 0 || plain[0] != '[' {
				t.Errorf("%s in etcd: sealed plaintext %.1q, %v; want a JSON list", ad, plain, err)
			}
			seals++
		}
	}
	if seals != 7 { // 6 principals, one with a history
		t.Fatalf("checked %d seals in etcd, want 7", seals)
	}

	dst := filepath.Join(dir, "dst.db")
	copyFile(t, mk, MasterKeyPath(dst))
	if _, err := Load(ctx, dst, OpenOptions{}, bytes.NewReader(d2.Bytes())); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dst, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The dump's JSON records went into the file in the binary form.
	b.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrincipals).ForEach(func(k, v []byte) error {
			if len(v) == 0 || v[0] != recordBinary {
				t.Errorf("%s loaded as %.20q, not in the binary form", k, v)
			}
			return nil
		})
	})
	var d3 bytes.Buffer
	if err := Dump(ctx, b, &d3); err != nil {
		t.Fatal(err)
	}
	if schemaOf(t, d1.String()) != schemaVersion || schemaOf(t, d2.String()) != schemaEtcd || schemaOf(t, d3.String()) != schemaVersion {
		t.Fatalf("schema versions of the dumps: %s %s %s", schemaOf(t, d1.String()), schemaOf(t, d2.String()), schemaOf(t, d3.String()))
	}
	if o1, o2 := openedDump(t, d1.String(), m), openedDump(t, d2.String(), m); o1 != o2 || sansSchema(t, d2.String()) != sansSchema(t, d3.String()) {
		t.Fatalf("dumps differ:\nbbolt:\n%s\netcd:\n%s\nbbolt again:\n%s", o1, o2, d3.String())
	}

	// Refusals: a target that exists, another master key, a damaged line.
	if _, err := Load(ctx, url, OpenOptions{MasterKeyPath: mk}, bytes.NewReader(d1.Bytes())); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("load over a realm: %v", err)
	}
	if _, err := Load(ctx, dst, OpenOptions{}, bytes.NewReader(d1.Bytes())); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("load over a file: %v", err)
	}
	other := filepath.Join(dir, "other.mkey")
	if _, err := CreateMasterKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, c.URL("other"), OpenOptions{MasterKeyPath: other}, bytes.NewReader(d1.Bytes())); !errors.Is(err, ErrMasterKey) {
		t.Fatalf("another master key: %v", err)
	}
	bad := strings.Replace(d1.String(), `"keys":"`, `"keys":"AAAA`, 1)
	third := c.URL("third")
	if _, err := Load(ctx, third, OpenOptions{MasterKeyPath: mk}, strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 3") { // line 2 is the default policy
		t.Fatalf("tampered record: %v", err)
	}
	if _, err := OpenEtcd(ctx, third, mk, EtcdOptions{NoWatch: true}); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("a failed load left a realm behind: %v", err)
	}
	cl := c.Client()
	if resp, err := cl.Get(ctx, "/third/", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("a failed load left keys: %v %v", resp, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// openedDump is a dump without its header's schema version and with every
// principal's sealed keys replaced by the keys themselves: what two dumps of the
// same realm have in common however their keys were sealed.
func openedDump(t *testing.T, dump string, mk *MasterKey) string {
	t.Helper()
	var out strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(sansSchema(t, dump), "\n"), "\n") {
		var l dumpLine
		if err := json.Unmarshal([]byte(line), &l); i == 0 || err != nil || l.Kind != string(bucketPrincipals) {
			out.WriteString(line + "\n")
			continue
		}
		var d dbRecord
		if err := json.Unmarshal(l.Value, &d); err != nil {
			t.Fatalf("dump line %d: %v", i+1, err)
		}
		r, err := d.record(mk)
		if err != nil {
			t.Fatalf("dump line %d: %v", i+1, err)
		}
		d.SealedKeys, d.SealedHistory = nil, nil
		b, err := json.Marshal(struct {
			*dbRecord
			Keys, History []principal.Key
		}{&d, r.Keys, r.KeyHistory})
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(l.Key + " " + string(b) + "\n")
	}
	return out.String()
}

// schemaOf is the schema version in a dump's header.
func schemaOf(t *testing.T, dump string) string {
	t.Helper()
	line, _, _ := strings.Cut(dump, "\n")
	var h dumpHeader
	if err := json.Unmarshal([]byte(line), &h); err != nil {
		t.Fatalf("dump header: %v", err)
	}
	return string(h.Meta[string(metaSchema)])
}

// sansSchema is a dump without its header's schema version: what a bbolt
// file (schema 3) and an etcd realm (schema 2) holding the same records and
// policies have in common.
func sansSchema(t *testing.T, dump string) string {
	t.Helper()
	line, rest, _ := strings.Cut(dump, "\n")
	var h dumpHeader
	if err := json.Unmarshal([]byte(line), &h); err != nil {
		t.Fatalf("dump header: %v", err)
	}
	delete(h.Meta, string(metaSchema))
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n" + rest
}
