package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The parts of bbolt's file layout (format version 2) that precheckFile reads:
// two meta pages at the start, each a 16-byte page header and the meta fields.
// bbolt writes them in the machine's byte order.
const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	boltPageHeader     = 16
	boltMetaLen        = 64 // through the checksum
	boltChecksumOffset = 56 // the checksum covers the meta fields before it
	boltBranchPage     = 0x01
	boltLeafPage       = 0x02
	boltFreelistPage   = 0x10
	boltNoFreelist     = ^uint64(0)
)

// boltMeta is what precheckFile needs from a meta page.
type boltMeta struct {
	pageSize             uint32
	root, freelist, pgid uint64 // pgid: the number of pages in use
	txid                 uint64
}

// precheckFile looks at a bbolt file before bbolt opens it, for the damage
// that makes bbolt.Open itself panic or fault: a file shorter than the pages
// its meta page says are in use (a truncated copy), and a freelist or root
// page that is not what the meta page points at. A panic inside bbolt.Open
// cannot be cleaned up (the file stays mapped and locked), so it is better
// not to get there. Damage elsewhere is found by Check after the open.
func precheckFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: opening %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: opening %s: %w", path, err)
	}
	size := fi.Size()
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s; %s", ErrDamaged, path, fmt.Sprintf(format, args...), restoreHint)
	}
	if size == 0 {
		return damaged("the file is empty")
	}
	m0, err0 := readBoltMeta(f, 0)
	pageSize := int64(4096)
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	m1, err1 := readBoltMeta(f, pageSize)
	var m boltMeta
	switch {
	case err0 == nil && err1 == nil:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case err0 == nil:
		m = m0
	case err1 == nil:
		m = m1
	default:
		if errors.Is(err0, errNotBolt) && errors.Is(err1, errNotBolt) {
			// Not a bbolt file at all: bbolt says so itself, cleanly.
			return nil
		}
		return damaged("both meta pages are invalid (%v)", err0)
	}
	ps := int64(m.pageSize)
	if need := int64(m.pgid) * ps; size < need {
		return damaged("the file is truncated: %d bytes, but its %d pages take %d", size, m.pgid, need)
	}
	if m.root >= m.pgid || !pageHasFlags(f, int64(m.root)*ps, boltBranchPage|boltLeafPage) {
		return damaged("the root page %d is not a tree page", m.root)
	}
	if m.freelist != boltNoFreelist && (m.freelist >= m.pgid || !pageHasFlags(f, int64(m.freelist)*ps, boltFreelistPage)) {
		return damaged("the freelist page %d is not a freelist page", m.freelist)
	}
	return nil
}

// errNotBolt marks a meta page without bbolt's magic number.
var errNotBolt = errors.New("no bbolt magic")

// readBoltMeta reads and validates the meta page at off.
func readBoltMeta(f *os.File, off int64) (boltMeta, error) {
	buf := make([]byte, boltPageHeader+boltMetaLen)
	if _, err := f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return boltMeta{}, fmt.Errorf("meta page at %d past the end of the file", off)
		}
		return boltMeta{}, err
	}
	b := buf[boltPageHeader:]
	ne := binary.NativeEndian
	if ne.Uint32(b[0:]) != boltMagic {
		return boltMeta{}, errNotBolt
	}
	if v := ne.Uint32(b[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("format version %d", v)
	}
	h := fnv.New64a()
	h.Write(b[:boltChecksumOffset])
	if h.Sum64() != ne.Uint64(b[boltChecksumOffset:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	m := boltMeta{pageSize: ne.Uint32(b[8:]), root: ne.Uint64(b[16:]), freelist: ne.Uint64(b[32:]),
		pgid: ne.Uint64(b[40:]), txid: ne.Uint64(b[48:])}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("page size %d", m.pageSize)
	}
	return m, nil
}

// pageHasFlags reports whether the page at off has one of the flags.
func pageHasFlags(f *os.File, off int64, flags uint16) bool {
	var hdr [boltPageHeader]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return false
	}
	return binary.NativeEndian.Uint16(hdr[8:])&flags != 0
}
