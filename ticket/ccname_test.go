package ticket

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCCacheNameDIR(t *testing.T) {
	dir := t.TempDir()
	// No primary file yet: the primary cache is "tkt", and nothing is created.
	n, err := ParseCCacheName("DIR:"+dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := CCacheName{Type: "DIR", Residual: ":" + filepath.Join(dir, "tkt"), Path: filepath.Join(dir, "tkt"), Dir: dir}
	if n != want {
		t.Errorf("DIR:dir = %+v, want %+v", n, want)
	}
	if n.String() != "DIR::"+filepath.Join(dir, "tkt") {
		t.Errorf("String() = %q", n.String())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("resolving created files: %v", ents)
	}
	// The primary file names the primary cache.
	if err := os.WriteFile(filepath.Join(dir, "primary"), []byte("tktABC\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := ParseCCacheName("DIR:"+dir, 0); err != nil || n.Path != filepath.Join(dir, "tktABC") {
		t.Errorf("with primary tktABC: %+v, %v", n, err)
	}
	// A subsidiary name is that file, with no collection directory.
	sub := filepath.Join(dir, "tktXYZ")
	if n, err := ParseCCacheName("DIR::"+sub, 0); err != nil || n.Path != sub || n.Dir != "" || n.String() != "DIR::"+sub {
		t.Errorf("DIR::file = %+v, %v", n, err)
	}
	bad := []struct{ name, msg string }{
		{"DIR:", "has no directory"},
		{"DIR::", "has no directory"},
		{"DIR::" + filepath.Join(dir, "cache"), `does not begin with "tkt"`},
		{"DIR::tkt", "has no parent directory"},
	}
	for _, b := range bad {
		if _, err := ParseCCacheName(b.name, 0); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%q: error %v, want one containing %q", b.name, err, b.msg)
		}
	}
	for _, content := range []string{"cache\n", "tkt/../x\n", "tktnonewline", strings.Repeat("t", 100) + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, "primary"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCCacheName("DIR:"+dir, 0); err == nil || !strings.Contains(err.Error(), "contains invalid filename") {
			t.Errorf("primary %q: error %v", content, err)
		}
	}
}

func TestCCacheCollection(t *testing.T) {
	dir := t.TempDir()
	def, err := ParseCCacheName("DIR:"+dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := CCacheCollection(def); err != nil || len(got) != 0 {
		t.Fatalf("empty collection: %v, %v", got, err)
	}
	// Two caches, then make the second the primary: it comes first.
	a, err := NewCCacheInCollection(def)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCCacheInCollection(def)
	if err != nil {
		t.Fatal(err)
	}
	if a.Path == b.Path || !strings.HasPrefix(filepath.Base(a.Path), "tkt") {
		t.Fatalf("unique names: %s, %s", a.Path, b.Path)
	}
	if fi, err := os.Stat(a.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new cache file: %v, %v", fi, err)
	}
	// Files that are not caches are not listed.
	if err := os.WriteFile(filepath.Join(dir, "notes"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SwitchCCache(b); err != nil {
		t.Fatal(err)
	}
	if p, _ := os.ReadFile(filepath.Join(dir, "primary")); string(p) != filepath.Base(b.Path)+"\n" {
		t.Errorf("primary file = %q", p)
	}
	def, _ = ParseCCacheName("DIR:"+dir, 0)
	got, err := CCacheCollection(def)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, n := range got {
		paths = append(paths, n.Path)
	}
	if len(paths) != 2 || paths[0] != b.Path || !slices.Contains(paths, a.Path) {
		t.Errorf("collection = %v, want %s first, then %s", paths, b.Path, a.Path)
	}
	// A FILE name is its own collection when the file exists.
	f := filepath.Join(dir, "plain")
	fn, _ := ParseCCacheName("FILE:"+f, 0)
	if got, _ := CCacheCollection(fn); len(got) != 0 {
		t.Errorf("missing FILE cache listed: %v", got)
	}
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := CCacheCollection(fn); len(got) != 1 || got[0] != fn {
		t.Errorf("FILE collection = %v", got)
	}
	// A FILE name has no collection to create caches in.
	if _, err := NewCCacheInCollection(fn); err == nil {
		t.Error("NewCCacheInCollection on a FILE name: no error")
	}
}
