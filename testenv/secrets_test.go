package testenv

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/service"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
)

// keyWatch finds key material in text: any 8-byte window of a key, raw, in hex
// or as Go prints a byte slice, and the whole key in base64.
type keyWatch struct{ keys [][]byte }

func (w *keyWatch) add(k []byte) {
	if len(k) > 0 {
		w.keys = append(w.keys, append([]byte(nil), k...))
	}
}

func (w *keyWatch) leak(s string) (string, bool) {
	lower := strings.ToLower(s)
	for _, k := range w.keys {
		if strings.Contains(s, base64.StdEncoding.EncodeToString(k)) {
			return "base64 key", true
		}
		for i := 0; i+8 <= len(k); i++ {
			win := k[i : i+8]
			switch {
			case strings.Contains(s, string(win)):
				return "raw key bytes", true
			case strings.Contains(lower, hex.EncodeToString(win)):
				return "hex key bytes", true
			case strings.Contains(s, strings.Trim(fmt.Sprint(win), "[]")):
				return "decimal key bytes", true
			}
		}
	}
	return "", false
}

func (w *keyWatch) check(t *testing.T, what, text string) {
	t.Helper()
	if kind, ok := w.leak(text); ok {
		t.Fatalf("%s: %s in %q", what, kind, text[:min(len(text), 300)])
	}
}

// damaged yields truncations at every offset (or every step-th) and copies
// with bytes overwritten, of b.
func damaged(b []byte, step int) [][]byte {
	var out [][]byte
	for n := 0; n < len(b); n += step {
		out = append(out, b[:n])
	}
	for i := 0; i < len(b); i += step {
		for _, v := range []byte{0x00, 0x7f, 0xff} {
			c := append([]byte(nil), b...)
			c[i] = v
			out = append(out, c)
		}
	}
	return out
}

// TestNoKeyBytesInErrors is the regression test of issue 8: kservice given a
// truncated keytab printed the file's bytes, keys included, in its error
// (gokrb5's keytab.Load formats its input with %s). No byte sequence of any key
// may appear in an error or log line for truncated or corrupted keytabs,
// ccaches and databases, from the libraries or from our binaries.
func TestNoKeyBytesInErrors(t *testing.T) {
	r := NewInProcRealm(t, InProcOptions{})
	var w keyWatch
	ctx := context.Background()
	names, err := r.Store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		rec, err := r.Store.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range rec.Keys {
			w.add(k.Value)
		}
	}
	if len(w.keys) == 0 || r.Keytab == "" {
		t.Fatal("no keys to watch for")
	}
	dir := t.TempDir()
	_, kclient := Binaries(t)
	kdcBin, _ := Binaries(t)
	kservice := kserviceBinary(t)

	t.Run("keytabs", func(t *testing.T) {
		kt, err := os.ReadFile(r.Keytab)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range damaged(kt, 1) {
			if _, err := ticket.ParseKeytab(b); err != nil {
				w.check(t, "ticket.ParseKeytab", err.Error())
			}
			p := filepath.Join(dir, "damaged.keytab")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			for what, load := range map[string]func(string) error{
				"ticket.LoadKeytabFile": func(p string) error { _, err := ticket.LoadKeytabFile(p); return err },
				"client.LoadKeytab":     func(p string) error { _, err := client.LoadKeytab(p); return err },
				"service.LoadKeytab":    func(p string) error { _, err := service.LoadKeytab(p); return err },
			} {
				if err := load(p); err != nil {
					w.check(t, what, fmt.Sprintf("%v %+v", err, err))
				}
			}
			if i%17 != 0 {
				continue
			}
			// An address that cannot be bound: kservice exits right after loading the keytab.
			_, stderr, _ := Run(t, nil, "", kservice, "--keytab", p, "--listen", "256.0.0.1:1")
			w.check(t, "kservice", stderr)
			_, stderr, _ = Run(t, []string{"KRB5_CONFIG=" + os.DevNull}, "", kclient, "login", "-k", "-t", p,
				"host/localhost@"+r.Name, "--kdc", r.Addr)
			w.check(t, "kclient login -k", stderr)
		}
	})

	t.Run("ccaches", func(t *testing.T) {
		cc := filepath.Join(dir, "cc")
		env := []string{"KRB5_CONFIG=" + os.DevNull, "KRB5CCNAME=FILE:" + cc}
		if _, stderr, code := Run(t, env, UserPassword+"\n", kclient, "login", UserName+"@"+r.Name, "--kdc", r.Addr); code != 0 {
			t.Fatalf("kclient login: %s", stderr)
		}
		if _, stderr, code := Run(t, env, "", kclient, "ticket", "host/localhost", "--kdc", r.Addr, "--realm", r.Name); code != 0 {
			t.Fatalf("kclient ticket: %s", stderr)
		}
		b, err := os.ReadFile(cc)
		if err != nil {
			t.Fatal(err)
		}
		good, err := ticket.ParseCCache(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range good.Credentials {
			w.add(c.Key.KeyValue) // session keys
		}
		for i, d := range damaged(b, 3) {
			if _, err := ticket.ParseCCache(d); err != nil {
				w.check(t, "ticket.ParseCCache", fmt.Sprintf("%v %+v", err, err))
			}
			if i%23 != 0 {
				continue
			}
			p := filepath.Join(dir, "damaged.cc")
			if err := os.WriteFile(p, d, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"list", "-c", p}, {"ticket", "-c", p, "host/localhost", "--kdc", r.Addr, "--realm", r.Name}} {
				_, stderr, _ := Run(t, env, "", kclient, args...)
				w.check(t, "kclient "+args[0], stderr)
			}
		}
	})

	t.Run("databases", func(t *testing.T) {
		db := filepath.Join(dir, "copy.db")
		if err := r.Store.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(r.DB)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range damaged(b, 4096/4) {
			if err := os.WriteFile(db, d, 0o600); err != nil {
				t.Fatal(err)
			}
			opts := store.OpenOptions{MasterKeyPath: store.MasterKeyPath(r.DB)}
			if s, err := store.Open(db, opts); err != nil {
				w.check(t, "store.Open", err.Error())
			} else {
				for _, n := range names {
					if _, err := s.Get(ctx, principal.Name{Components: n.Components, Realm: n.Realm}); err != nil {
						w.check(t, "store.Get", err.Error())
					}
				}
				s.Close()
			}
			if i%9 != 0 {
				continue
			}
			copyFile(t, store.MasterKeyPath(r.DB), store.MasterKeyPath(db))
			_, stderr, _ := Run(t, nil, "", kdcBin, "principal", "list", "--db", db)
			w.check(t, "kdc principal list", stderr)
			os.Remove(store.MasterKeyPath(db))
		}
	})
}

// copyFile copies src to dst with mode 0600.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
