package principal

import (
	"errors"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		name, in, realm string
		comps           []string
		wantRealm       string
		out             string
	}{
		{"user with realm", "alice@KRB.TEST", "", []string{"alice"}, "KRB.TEST", "alice@KRB.TEST"},
		{"default realm", "alice", "KRB.TEST", []string{"alice"}, "KRB.TEST", "alice@KRB.TEST"},
		{"service", "host/localhost@KRB.TEST", "", []string{"host", "localhost"}, "KRB.TEST", "host/localhost@KRB.TEST"},
		{"escaped slash and at", `a\/b\@c@R`, "", []string{"a/b@c"}, "R", `a\/b\@c@R`},
		{"escaped backslash", `a\\b@R`, "", []string{`a\b`}, "R", `a\\b@R`},
		{"control escapes", `a\nb\tc@R`, "", []string{"a\nb\tc"}, "R", `a\nb\tc@R`},
		{"explicit realm wins", "bob@OTHER", "KRB.TEST", []string{"bob"}, "OTHER", "bob@OTHER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(tc.in, tc.realm)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if n.Realm != tc.wantRealm || len(n.Components) != len(tc.comps) {
				t.Fatalf("Parse(%q) = %#v", tc.in, n)
			}
			for i := range tc.comps {
				if n.Components[i] != tc.comps[i] {
					t.Fatalf("component %d = %q, want %q", i, n.Components[i], tc.comps[i])
				}
			}
			if got := n.String(); got != tc.out {
				t.Fatalf("String() = %q, want %q", got, tc.out)
			}
			back, err := Parse(n.String(), "")
			if err != nil || !back.Equal(n) {
				t.Fatalf("round trip of %q: %v %#v", n.String(), err, back)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "alice", "alice@", "a//b@R", "/a@R", `a\`, "a@R@S", "a@R/x"} {
		if _, err := Parse(in, ""); !errors.Is(err, ErrBadName) {
			t.Errorf("Parse(%q) error = %v, want ErrBadName", in, err)
		}
	}
}

func TestNameTypeIgnored(t *testing.T) {
	a := MustParse("host/localhost@R")
	b := a
	b.Type = 3
	if !a.Equal(b) || a.Key() != b.Key() {
		t.Fatal("names differing only in type must match")
	}
	if a.Equal(MustParse("host/otherhost@R")) {
		t.Fatal("different names matched")
	}
}

func TestKrbtgtAndSalt(t *testing.T) {
	k := Krbtgt("KRB.TEST")
	if !k.IsKrbtgt() || k.String() != "krbtgt/KRB.TEST@KRB.TEST" {
		t.Fatalf("Krbtgt = %s", k)
	}
	if p := MustParse("krbtgt/KRB.TEST@KRB.TEST"); p.Type != 2 {
		t.Fatalf("krbtgt parsed with type %d, want NT-SRV-INST", p.Type)
	}
	if s := MustParse("host/localhost@KRB.TEST").Salt(); s != "KRB.TESThostlocalhost" {
		t.Fatalf("salt = %q", s)
	}
}

func TestParseEnctypes(t *testing.T) {
	got, err := ParseEnctypes("aes256-cts-hmac-sha1-96, aes128-sha2,23")
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{18, 19, 23}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := ParseEnctypes("des-cbc-crc"); err == nil {
		t.Fatal("single DES must be refused")
	}
}

// Random keys of every enctype must be usable: gokrb5 makes 24-byte
// aes256-cts-hmac-sha384-192 keys that its own encryption then refuses.
func TestRandomKeysAreUsable(t *testing.T) {
	for _, e := range DefaultEnctypes {
		keys, err := RandomKeys([]int32{e}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := crypto.GetEncryptedData([]byte("hello"), keys[0].EncryptionKey(), 2, 1)
		if err != nil {
			t.Fatalf("%s: random key does not encrypt: %v", EnctypeName(e), err)
		}
		if pt, err := crypto.DecryptEncPart(ed, keys[0].EncryptionKey(), 2); err != nil || string(pt) != "hello" {
			t.Fatalf("%s: round trip failed: %v", EnctypeName(e), err)
		}
		pw, _ := KeysFromPassword(MustParse("a@R"), "pw", []int32{e}, 1)
		if len(pw[0].Value) != len(keys[0].Value) {
			t.Fatalf("%s: random key %d bytes, password key %d", EnctypeName(e), len(keys[0].Value), len(pw[0].Value))
		}
	}
}

// TestStringEscapes: every byte String escapes, at the start, middle and end of
// a component and of the realm, where a slash is escaped only in a component.
func TestStringEscapes(t *testing.T) {
	for _, tc := range []struct {
		n    Name
		want string
	}{
		{Name{Components: []string{"/a@", "b\\"}, Realm: "R/x"}, `\/a\@/b\\@R/x`},
		{Name{Components: []string{"\b\x00\n\t"}, Realm: "@R\\"}, `\b\0\n\t@\@R\\`},
		{Name{Components: []string{"plain", ""}, Realm: ""}, `plain/@`},
	} {
		if got := tc.n.String(); got != tc.want {
			t.Errorf("String(%q, %q) = %q, want %q", tc.n.Components, tc.n.Realm, got, tc.want)
		}
	}
}

// FuzzNameRoundTrip: Parse reads back what String writes, whatever the bytes.
func FuzzNameRoundTrip(f *testing.F) {
	f.Add("host", "a/b@c\\d", "KRB.TEST")
	f.Add("\x00\b\n\t", "", "R@/\\")
	f.Fuzz(func(t *testing.T, c1, c2, realm string) {
		if c1 == "" || realm == "" {
			return // Parse wants a first component and a realm
		}
		n := Name{Components: []string{c1, c2}, Realm: realm}
		if c2 == "" {
			n.Components = n.Components[:1]
		}
		back, err := Parse(n.String(), "")
		if err != nil {
			t.Skip() // names Parse refuses (e.g. invalid UTF-8) are not this test's matter
		}
		if !back.Equal(n) {
			t.Fatalf("String %q parsed back as %q@%q, want %q@%q", n.String(), back.Components, back.Realm, n.Components, n.Realm)
		}
	})
}

// BenchmarkNameString: the KDC formats names (lookup keys, log lines) several
// times per request.
func BenchmarkNameString(b *testing.B) {
	n := Name{Components: []string{"host", "server.example.test"}, Realm: "EXAMPLE.TEST"}
	b.ReportAllocs()
	for b.Loop() {
		_ = n.String()
	}
}
