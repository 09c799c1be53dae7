package der

import (
	"math/rand"
	"strings"
	"sync"
	"testing"
)

// TestInternReturnsItsInput: whatever goes through the table, concurrently and
// with slots fought over, comes back equal to its bytes, and does not change
// when those bytes are reused afterwards (a transport's read buffer is).
func TestInternReturnsItsInput(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			b := make([]byte, 0, 100)
			for i := 0; i < 20000; i++ {
				b = b[:rng.Intn(100)]
				for j := range b {
					b[j] = "ABCD"[rng.Intn(4)] // few distinct short strings: slots are shared and reused
				}
				want := string(b)
				got := intern(b)
				for j := range b {
					b[j] = 'x'
				}
				if got != want {
					t.Errorf("intern(%q) = %q", want, got)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestInternRepeatsAllocateNothing: a string read again comes from the table;
// one over maxInterned is copied each time.
func TestInternRepeatsAllocateNothing(t *testing.T) {
	realm := []byte("KERBKIT.TEST")
	first := intern(realm)
	if n := testing.AllocsPerRun(100, func() {
		if intern(realm) != first {
			t.Fatal("a different string")
		}
	}); n != 0 {
		t.Errorf("interning a repeated realm allocates %v times", n)
	}
	long := []byte(strings.Repeat("a", maxInterned+1))
	if n := testing.AllocsPerRun(100, func() { intern(long) }); n != 1 {
		t.Errorf("a long string: %v allocations, want its copy", n)
	}
}
