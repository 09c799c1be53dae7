package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbkit/kerbkit/principal"
	"golang.org/x/sys/unix"
)

// damagedDB makes a database with enough principals to span many pages and
// returns its path and file contents (after Close).
func damagedDB(t *testing.T) (string, []byte) {
	t.Helper()
	s, path := newTestStore(t)
	for i := 0; i < 300; i++ {
		keys, err := principal.RandomKeys(principal.DefaultEnctypes, 1)
		if err != nil {
			t.Fatal(err)
		}
		rec := principal.NewRecord(principal.MustParse(fmt.Sprintf("user%03d@KRB.TEST", i)), keys, testNow)
		if err := s.Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// writeCopy writes b as a database next to the original's master key.
func writeCopy(t *testing.T, orig string, name string, b []byte) (string, OpenOptions) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, OpenOptions{MasterKeyPath: MasterKeyPath(orig)}
}

// TestDamagedDatabaseRefusedAtOpen is the regression test of issue 8: a
// half-truncated database made bbolt panic inside Open ("invalid freelist
// page"), and one with corrupted data pages opened and served.
func TestDamagedDatabaseRefusedAtOpen(t *testing.T) {
	orig, b := damagedDB(t)
	const page = 4096
	cases := map[string][]byte{
		"half truncated":       b[:len(b)/2],
		"truncated to 3 pages": b[:3*page],
		"truncated mid-page":   b[:len(b)-page-100],
	}
	// Garbage over a data page in the middle (not the meta pages 0 and 1).
	for _, pg := range []int{2, len(b) / page / 2, len(b)/page - 2} {
		c := append([]byte(nil), b...)
		for i := pg * page; i < (pg+1)*page && i < len(c); i++ {
			c[i] = byte(i*7 + 3)
		}
		cases[fmt.Sprintf("page %d overwritten", pg)] = c
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p, opts := writeCopy(t, orig, "kdc.db", data)
			s, err := Open(p, opts)
			if err == nil {
				// The check passes only when the damage hit pages nothing
				// uses (free or past the last used one): then every record
				// must still read.
				defer s.Close()
				names, err := s.List(context.Background())
				if err != nil || len(names) != 302 { // with krbtgt and kadmin/changepw
					t.Fatalf("opened, but List gave %d names, %v", len(names), err)
				}
				for _, n := range names {
					if _, err := s.Get(context.Background(), n); err != nil {
						t.Fatalf("opened, but %s: %v", n, err)
					}
				}
				return
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open: %v, want ErrDamaged", err)
			}
			// Nothing is left locked: the same process gets the same answer.
			if _, err := Open(p, opts); !errors.Is(err, ErrDamaged) {
				t.Fatalf("second Open: %v, want ErrDamaged", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "restore it from a backup") {
				t.Fatalf("error is not one line with what to do: %q", msg)
			}
		})
	}
}

// TestDamageAfterOpenIsAnError: pages damaged under a store already open (bbolt
// reads the file through mmap, so writing to the file changes what it reads)
// give ErrDamaged from every operation instead of a panic.
func TestDamageAfterOpenIsAnError(t *testing.T) {
	orig, b := damagedDB(t)
	p, opts := writeCopy(t, orig, "kdc.db", b)
	s, err := Open(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, len(b)-2*4096)
	for i := range garbage {
		garbage[i] = 0xff
	}
	if _, err := f.WriteAt(garbage, 2*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := s.List(context.Background()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("List on a damaged file: %v, want ErrDamaged", err)
	}
	if _, err := s.Get(context.Background(), principal.MustParse("user150@KRB.TEST")); err == nil {
		t.Fatal("Get on a damaged file succeeded")
	}
	if err := s.Check(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Check: %v, want ErrDamaged", err)
	}
}

// FuzzOpen: whatever bytes the database file holds, Open and a List never
// panic (issue 8: bbolt panics on damaged files).
func FuzzOpen(f *testing.F) {
	s, path := newTestStore(f)
	s.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	mk := MasterKeyPath(path)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, OpenOptions{MasterKeyPath: mk, LockTimeout: 10 * time.Millisecond})
		if errors.Is(err, ErrInUse) {
			t.Fatalf("a file left locked by an earlier Open: %v", err)
		}
		if err == nil {
			s.List(context.Background())
			s.Close()
		}
		// Whatever happened, nothing may stay locked behind.
		f, ferr := os.Open(p)
		if ferr != nil {
			t.Fatal(ferr)
		}
		defer f.Close()
		if lerr := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); lerr != nil {
			t.Fatalf("Open (%v) left the file locked: %v", err, lerr)
		}
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	})
}

func errorsIsInUse(err error) bool { return errors.Is(err, ErrInUse) }
