package ticket

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Credential cache names of the two types kerbkit reads and writes, both files
// in MIT's format: FILE:/path (or a bare path), and DIR: collections, where a
// directory holds one cache per file named tkt* and a file named "primary"
// names the default one (MIT's cc_dir.c layout):
//
//	DIR:/run/user/1000/krb5cc        the collection; resolves to its primary cache
//	DIR::/run/user/1000/krb5cc/tkt1  one cache of a collection
const (
	ccTypeFILE = "FILE"
	ccTypeDIR  = "DIR"
	// dirPrimaryFile is the file of a DIR collection naming its primary cache.
	dirPrimaryFile = "primary"
	// dirCachePrefix starts the file name of every cache of a DIR collection.
	dirCachePrefix = "tkt"
	// dirDefaultPrimary is the primary cache of a collection without a primary file.
	dirDefaultPrimary = "tkt"
	// maxPrimaryLine bounds the primary file's one line (MIT reads 64 bytes).
	maxPrimaryLine = 64
)

// CCacheName is a credential cache name resolved to the file holding the cache.
type CCacheName struct {
	// Type is "FILE" or "DIR".
	Type string
	// Residual is what follows "TYPE:" in the cache's full name, as MIT prints
	// it: the file of a FILE cache, ":" and the file for a cache of a DIR
	// collection.
	Residual string
	// Path is the cache file.
	Path string
	// Dir is the collection directory when the name was a whole DIR collection
	// (DIR:dir); empty for FILE caches and for DIR::file names, whose
	// collection is that one cache.
	Dir string
}

// String returns the full name, e.g. "FILE:/tmp/krb5cc_1000" or
// "DIR::/run/user/1000/krb5cc/tkt".
func (n CCacheName) String() string { return n.Type + ":" + n.Residual }

// ParseCCacheName resolves a credential cache name as found in KRB5CCNAME or
// given with -c. The empty name means MIT's default, FILE:/tmp/krb5cc_<uid>;
// "FILE:/x" and "/x" (a name without a type prefix) mean the file /x;
// "DIR:dir" means the primary cache of the collection in dir (the file named
// by dir/primary, "tkt" when there is no primary file yet); "DIR::dir/tktX"
// means that cache of the collection. Nothing is created. Other cache types
// (MEMORY:, KEYRING:, KCM:, API:, ...) return an error that wraps
// ErrUnsupportedCCacheType.
func ParseCCacheName(name string, uid int) (CCacheName, error) {
	if name == "" {
		p := "/tmp/krb5cc_" + strconv.Itoa(uid)
		return CCacheName{Type: ccTypeFILE, Residual: p, Path: p}, nil
	}
	typ, residual, ok := strings.Cut(name, ":")
	// Like MIT, a name without a colon is a file name; so is a prefix that
	// looks like a path or a Windows drive letter rather than a type.
	if !ok || strings.ContainsAny(typ, `/\`) || len(typ) == 1 {
		return CCacheName{Type: ccTypeFILE, Residual: name, Path: name}, nil
	}
	switch {
	case strings.EqualFold(typ, ccTypeFILE):
		if residual == "" {
			return CCacheName{}, errors.New("ticket: credential cache name FILE: has no file name")
		}
		return CCacheName{Type: ccTypeFILE, Residual: residual, Path: residual}, nil
	case strings.EqualFold(typ, ccTypeDIR):
		return parseDirName(residual)
	}
	return CCacheName{}, &unsupportedCCacheTypeError{typ: typ}
}

// parseDirName resolves the residual of a DIR: name.
func parseDirName(residual string) (CCacheName, error) {
	if residual == "" || residual == ":" {
		return CCacheName{}, errors.New("ticket: credential cache name DIR: has no directory")
	}
	if file, ok := strings.CutPrefix(residual, ":"); ok {
		dir, base := filepath.Split(file)
		if dir == "" {
			return CCacheName{}, fmt.Errorf("ticket: subsidiary cache path %s has no parent directory", file)
		}
		if !strings.HasPrefix(base, dirCachePrefix) {
			return CCacheName{}, fmt.Errorf("ticket: subsidiary cache path %s filename does not begin with %q", file, dirCachePrefix)
		}
		return CCacheName{Type: ccTypeDIR, Residual: residual, Path: file}, nil
	}
	dir := residual
	primary, err := readPrimary(dir)
	if err != nil {
		return CCacheName{}, err
	}
	n := dirCache(dir, primary)
	n.Dir = dir
	return n, nil
}

// dirCache names the cache file base of the collection in dir.
func dirCache(dir, base string) CCacheName {
	p := filepath.Join(dir, base)
	return CCacheName{Type: ccTypeDIR, Residual: ":" + p, Path: p}
}

// readPrimary returns the primary cache's file name of the collection in dir:
// the first line of dir/primary, or "tkt" when that file does not exist.
func readPrimary(dir string) (string, error) {
	path := filepath.Join(dir, dirPrimaryFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return dirDefaultPrimary, nil
	}
	if err != nil {
		return "", fmt.Errorf("ticket: credential cache collection %s: %w", dir, err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, maxPrimaryLine), maxPrimaryLine).ReadString('\n')
	name := strings.TrimSuffix(line, "\n")
	if err != nil || !strings.HasPrefix(name, dirCachePrefix) || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("ticket: %s contains invalid filename", path)
	}
	return name, nil
}

// CCacheCollection lists the caches of the collection that MIT tools see when
// def is the default cache name (klist -l, klist -A, kdestroy -A): for a FILE
// name the file itself; for DIR:dir the primary cache and then every other
// tkt* file of dir, in directory order; for DIR::file that one cache. Caches
// whose file does not exist are left out.
func CCacheCollection(def CCacheName) ([]CCacheName, error) {
	var out []CCacheName
	if _, err := os.Stat(def.Path); err == nil {
		out = append(out, def)
	}
	if def.Type != ccTypeDIR || def.Dir == "" {
		return out, nil
	}
	d, err := os.Open(def.Dir)
	if err != nil {
		// MIT yields an empty collection for a missing directory.
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		return out, fmt.Errorf("ticket: credential cache collection %s: %w", def.Dir, err)
	}
	defer d.Close()
	// File.ReadDir keeps the directory's own order, as MIT's readdir loop does.
	ents, err := d.ReadDir(-1)
	if err != nil {
		return out, fmt.Errorf("ticket: credential cache collection %s: %w", def.Dir, err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), dirCachePrefix) {
			continue
		}
		n := dirCache(def.Dir, e.Name())
		if n.Path == def.Path {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// NewCCacheInCollection creates an empty cache file with a unique tkt* name in
// the collection of def (a DIR:dir name), mode 0600, and returns its name.
// The caller writes the cache with WriteCCacheFile.
func NewCCacheInCollection(def CCacheName) (CCacheName, error) {
	if def.Type != ccTypeDIR || def.Dir == "" {
		return CCacheName{}, fmt.Errorf("ticket: can't create a new cache in %s: it is not a DIR: collection", def)
	}
	if err := os.MkdirAll(def.Dir, 0o700); err != nil {
		return CCacheName{}, fmt.Errorf("ticket: credential cache collection %s: %w", def.Dir, err)
	}
	f, err := os.CreateTemp(def.Dir, dirCachePrefix)
	if err != nil {
		return CCacheName{}, fmt.Errorf("ticket: credential cache collection %s: %w", def.Dir, err)
	}
	if err := f.Close(); err != nil {
		return CCacheName{}, fmt.Errorf("ticket: credential cache collection %s: %w", def.Dir, err)
	}
	return dirCache(def.Dir, filepath.Base(f.Name())), nil
}

// SwitchCCache makes n the primary cache of its DIR collection by rewriting
// the collection's primary file (atomically, mode 0600), as kinit does after
// storing new tickets in a collection. For a FILE cache it does nothing.
func SwitchCCache(n CCacheName) error {
	if n.Type != ccTypeDIR {
		return nil
	}
	dir, base := filepath.Split(n.Path)
	if err := writeFileAtomic(filepath.Join(dir, dirPrimaryFile), []byte(base+"\n"), nil); err != nil {
		return fmt.Errorf("ticket: switching to cache %s: %w", n, err)
	}
	return nil
}

// PrepareCCacheDir creates the directory of a DIR cache (mode 0700) when it
// is missing, as MIT does before it writes into a collection.
func PrepareCCacheDir(n CCacheName) error {
	if n.Type != ccTypeDIR {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(n.Path), 0o700); err != nil {
		return fmt.Errorf("ticket: credential cache collection %s: %w", filepath.Dir(n.Path), err)
	}
	return nil
}
