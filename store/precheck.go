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
// that makes bbolt itself panic, fault or run away: a file shorter than the
// pages its meta page says are in use (a truncated copy), a freelist or tree
// page that is not what points at it, and page headers or elements whose sizes
// run past their page (bbolt's own Check then loops over billions of page
// ids). A panic inside bbolt.Open cannot be cleaned up (the file stays mapped
// and locked), so it is better not to get there. bbolt's Check runs after the
// open for what remains (double use of pages, key order).
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
	w := &boltWalk{f: f, ps: ps, hwm: m.pgid, seen: make(map[uint64]bool)}
	if m.freelist != boltNoFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return damaged("%v", err)
		}
	}
	if err := w.tree(m.root, 0); err != nil {
		return damaged("%v", err)
	}
	return nil
}

// boltWalk visits every page reachable from the root bucket, as bbolt's Check
// does, but reading the file (not mapping it) and bounding everything a damaged
// page could make unbounded: page ids and overflow counts past the high-water
// mark (bbolt's Check then loops over billions of page ids), element counts and
// key or value sizes past the page, cycles, and depth. Each page is read once.
type boltWalk struct {
	f    *os.File
	ps   int64
	hwm  uint64 // pages in use
	seen map[uint64]bool
}

// maxTreeDepth bounds nesting (b-tree levels plus nested buckets).
const maxTreeDepth = 64

// span reads the page id and its overflow pages after checking them.
func (w *boltWalk) span(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d is outside the %d pages in use", id, w.hwm)
	}
	if w.seen[id] {
		return nil, fmt.Errorf("page %d is referenced twice", id)
	}
	var hdr [boltPageHeader]byte
	if _, err := w.f.ReadAt(hdr[:], int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	// bbolt tests page types for equality, not as bits: a freelist page with
	// another bit set too makes it panic.
	if flags := ne.Uint16(hdr[8:]); !exactType(flags, want) {
		return nil, fmt.Errorf("page %d has type %#x where %#x was expected", id, flags, want)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if overflow >= w.hwm-id {
		return nil, fmt.Errorf("page %d claims %d overflow pages past the end", id, overflow)
	}
	for i := uint64(0); i <= overflow; i++ {
		if w.seen[id+i] {
			return nil, fmt.Errorf("page %d overlaps page %d", id, id+i)
		}
		w.seen[id+i] = true
	}
	buf := make([]byte, int64(overflow+1)*w.ps)
	if _, err := w.f.ReadAt(buf, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

// exactType reports whether flags is one of the page types in want, exactly.
func exactType(flags, want uint16) bool {
	for _, t := range []uint16{boltBranchPage, boltLeafPage, boltFreelistPage} {
		if want&t != 0 && flags == t {
			return true
		}
	}
	return false
}

// freelist checks the freelist page: its count fits the page, its ids are in
// use range.
func (w *boltWalk) freelist(id uint64) error {
	p, err := w.span(id, boltFreelistPage)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	ne := binary.NativeEndian
	start, count := boltPageHeader, uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		count = ne.Uint64(p[start:])
		start += 8
	}
	if count > uint64(len(p)-start)/8 {
		return fmt.Errorf("freelist page %d lists %d ids, more than it holds", id, count)
	}
	for i := uint64(0); i < count; i++ {
		if free := ne.Uint64(p[start+int(i)*8:]); free >= w.hwm {
			return fmt.Errorf("freelist page %d lists page %d, outside the %d pages in use", id, free, w.hwm)
		}
	}
	return nil
}

// tree checks the b-tree rooted at page id and the buckets it holds.
func (w *boltWalk) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("trees nested deeper than %d", maxTreeDepth)
	}
	p, err := w.span(id, boltBranchPage|boltLeafPage)
	if err != nil {
		return err
	}
	return w.node(p, fmt.Sprintf("page %d", id), depth)
}

// node checks one branch or leaf page (p starts with its header), following
// children and bucket values.
func (w *boltWalk) node(p []byte, where string, depth int) error {
	ne := binary.NativeEndian
	if len(p) < boltPageHeader {
		return fmt.Errorf("%s: too short for a page", where)
	}
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if flags != boltBranchPage && flags != boltLeafPage {
		return fmt.Errorf("%s: type %#x is not a branch or leaf page", where, flags)
	}
	if boltPageHeader+count*16 > len(p) {
		return fmt.Errorf("%s: %d elements do not fit", where, count)
	}
	for i := 0; i < count; i++ {
		off := boltPageHeader + i*16
		e := p[off : off+16]
		switch {
		case flags&boltBranchPage != 0:
			pos, ksize := int64(ne.Uint32(e[0:])), int64(ne.Uint32(e[4:]))
			if int64(off)+pos+ksize > int64(len(p)) {
				return fmt.Errorf("%s: branch key %d runs past the page", where, i)
			}
			if err := w.tree(ne.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		case flags&boltLeafPage != 0:
			eflags := ne.Uint32(e[0:])
			pos, ksize, vsize := int64(ne.Uint32(e[4:])), int64(ne.Uint32(e[8:])), int64(ne.Uint32(e[12:]))
			end := int64(off) + pos + ksize + vsize
			if end > int64(len(p)) {
				return fmt.Errorf("%s: element %d (key %d bytes, value %d bytes) runs past the page", where, i, ksize, vsize)
			}
			if eflags&0x01 == 0 { // not a bucket
				continue
			}
			v := p[end-vsize : end]
			if len(v) < 16 {
				return fmt.Errorf("%s: bucket header %d is short", where, i)
			}
			if root := ne.Uint64(v[0:]); root != 0 {
				if err := w.tree(root, depth+1); err != nil {
					return err
				}
			} else if depth < maxTreeDepth {
				// An inline bucket: its root page is the rest of the value.
				if err := w.node(v[16:], where+" (inline bucket)", depth+1); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%s: not a branch or leaf page", where)
		}
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
