package store

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRandomDamageNeverHangs flips random bytes of a database and opens it:
// every attempt ends, in an error or a working store, within a bound. Found by
// FuzzOpen: an overflow count flipped to billions made bbolt's own Check loop
// over billions of page ids, and a key size flipped to gigabytes made List
// copy (and quote) gigabytes of mapped memory.
func TestRandomDamageNeverHangs(t *testing.T) {
	path, good := damagedDB(t)
	opts := OpenOptions{MasterKeyPath: MasterKeyPath(path), LockTimeout: 10 * time.Millisecond}
	p := filepath.Join(t.TempDir(), "damaged.db")
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 1000; i++ {
		b := append([]byte(nil), good...)
		for j := 0; j < 1+rng.Intn(8); j++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			s, err := Open(p, opts)
			if err == nil {
				_, err = s.List(context.Background())
				s.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil && errorsIsInUse(err) {
				t.Fatalf("attempt %d: an earlier attempt left the file locked: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("attempt %d: Open or List of a damaged file did not return", i)
		}
	}
}
