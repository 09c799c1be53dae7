package ticket

import (
	"errors"
	"reflect"
	"testing"
)

func TestDecodeTransited(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []string
		err      error
	}{
		{"empty", "", nil, nil},
		{"one", "B.TEST", []string{"B.TEST"}, nil},
		// The example of RFC 4120 §3.3.3.2.
		{"domain abbreviations", "EDU,MIT.,ATHENA.,WASHINGTON.EDU,CS.",
			[]string{"EDU", "MIT.EDU", "ATHENA.MIT.EDU", "WASHINGTON.EDU", "CS.WASHINGTON.EDU"}, nil},
		{"x500 relative and absolute", "/COM,/HP,/APOLLO, /COM/DEC",
			[]string{"/COM", "/COM/HP", "/COM/HP/APOLLO", "/COM/DEC"}, nil},
		{"escapes", `A\,B,C\\D,E\.`, []string{"A,B", `C\D`, "E."}, nil},
		{"hierarchy gap", "A.TEST,,C.TEST", nil, ErrTransitUnspecified},
		{"leading gap", ",C.TEST", nil, ErrTransitUnspecified},
		{"trailing gap", "A.TEST,", nil, ErrTransitUnspecified},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeTransited([]byte(c.in))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("DecodeTransited(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestDecodeTransitedBounded(t *testing.T) {
	in := []byte("A")
	for i := 0; i < MaxTransitedRealms; i++ {
		in = append(in, ",A"...)
	}
	if _, err := DecodeTransited(in); err == nil {
		t.Fatal("a field over MaxTransitedRealms decoded")
	}
}

func TestEncodeTransitedRoundTrip(t *testing.T) {
	for _, realms := range [][]string{nil, {"B.TEST"}, {"A,B", `C\D`, "E.", "/X", " Y"}, {"EDU", "MIT.EDU"}} {
		enc := EncodeTransited(realms)
		got, err := DecodeTransited(enc)
		if err != nil || len(got) != len(realms) || (len(realms) > 0 && !reflect.DeepEqual(got, realms)) {
			t.Fatalf("round trip of %q via %q = %q, %v", realms, enc, got, err)
		}
	}
}

func FuzzDecodeTransited(f *testing.F) {
	for _, s := range []string{"", "EDU,MIT.,ATHENA.", "/COM,/HP, /COM/DEC", `A\,B`, ",,", `\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		realms, err := DecodeTransited(b)
		if err != nil {
			return
		}
		if len(realms) > MaxTransitedRealms {
			t.Fatalf("%d realms", len(realms))
		}
		again, err := DecodeTransited(EncodeTransited(realms))
		if err != nil || !reflect.DeepEqual(again, realms) && len(realms) > 0 {
			t.Fatalf("re-encoding %q: %q, %v", realms, again, err)
		}
	})
}
