package ticket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
)

// File format versions of the MIT FILE credential cache that this package reads.
const (
	ccacheVersion3 = 0x0503
	ccacheVersion4 = 0x0504
)

// ccacheTagKDCOffset is the version 4 header field holding the KDC time offset.
const ccacheTagKDCOffset = 1

// ConfigRealm is the realm of the server principal of MIT credential cache
// configuration entries (for example krb5_ccache_conf_data/fast_avail@X-CACHECONF:).
const ConfigRealm = "X-CACHECONF:"

// Ticket flags as MIT stores them in a credential cache: RFC 4120 KerberosFlags
// bit i is the value 1<<(31-i).
const (
	FlagForwardable            uint32 = 1 << (31 - 1)
	FlagForwarded              uint32 = 1 << (31 - 2)
	FlagProxiable              uint32 = 1 << (31 - 3)
	FlagProxy                  uint32 = 1 << (31 - 4)
	FlagMayPostdate            uint32 = 1 << (31 - 5)
	FlagPostdated              uint32 = 1 << (31 - 6)
	FlagInvalid                uint32 = 1 << (31 - 7)
	FlagRenewable              uint32 = 1 << (31 - 8)
	FlagInitial                uint32 = 1 << (31 - 9)
	FlagPreAuthent             uint32 = 1 << (31 - 10)
	FlagHWAuthent              uint32 = 1 << (31 - 11)
	FlagTransitedPolicyChecked uint32 = 1 << (31 - 12)
	FlagOKAsDelegate           uint32 = 1 << (31 - 13)
	FlagEncPARep               uint32 = 1 << (31 - 15)
	FlagAnonymous              uint32 = 1 << (31 - 16)
)

// flagLetters lists the klist -f letters in the order MIT klist prints them.
var flagLetters = []struct {
	flag   uint32
	letter byte
}{
	{FlagForwardable, 'F'},
	{FlagForwarded, 'f'},
	{FlagProxiable, 'P'},
	{FlagProxy, 'p'},
	{FlagMayPostdate, 'D'},
	{FlagPostdated, 'd'},
	{FlagInvalid, 'i'},
	{FlagRenewable, 'R'},
	{FlagInitial, 'I'},
	{FlagHWAuthent, 'H'},
	{FlagPreAuthent, 'A'},
	{FlagTransitedPolicyChecked, 'T'},
	{FlagOKAsDelegate, 'O'},
	{FlagAnonymous, 'a'},
}

// ErrUnsupportedCCacheType is wrapped by ParseCCacheName for credential cache
// types other than FILE and DIR.
var ErrUnsupportedCCacheType = errors.New("unsupported credential cache type")

// unsupportedCCacheTypeError names the rejected cache type and wraps
// ErrUnsupportedCCacheType.
type unsupportedCCacheTypeError struct{ typ string }

func (e *unsupportedCCacheTypeError) Error() string {
	return "ticket: credential cache type " + e.typ + " is not supported (only FILE: and DIR:)"
}

func (e *unsupportedCCacheTypeError) Unwrap() error { return ErrUnsupportedCCacheType }

// errTruncated is returned (wrapped) when the input ends inside a field.
var errTruncated = errors.New("truncated data")

// Credential is one entry of a credential cache.
type Credential struct {
	Client, Server                          principal.Name
	Key                                     types.EncryptionKey
	AuthTime, StartTime, EndTime, RenewTill time.Time // zero time <-> 0 on disk
	IsSKey                                  bool
	Flags                                   uint32 // MIT layout: RFC 4120 flag bit i is 1<<(31-i)
	Addresses                               []types.HostAddress
	AuthData                                []types.AuthorizationDataEntry
	Ticket                                  []byte // DER Ticket as received
	SecondTicket                            []byte
}

// IsConfig reports whether c is an MIT configuration entry, i.e. its server
// principal is in the realm "X-CACHECONF:". klist does not display these.
func (c Credential) IsConfig() bool {
	return c.Server.Realm == ConfigRealm
}

// FlagsFromBitString converts RFC 4120 KerberosFlags (a gofork asn1.BitString,
// bit 0 first) to MIT's uint32 layout. Bits beyond 31 are ignored, and bits
// the BitString claims but whose bytes are missing read as zero.
func FlagsFromBitString(b asn1.BitString) uint32 {
	var f uint32
	for i := 0; i < 32 && i < b.BitLength; i++ {
		if i/8 >= len(b.Bytes) {
			break
		}
		if b.Bytes[i/8]&(0x80>>uint(i%8)) != 0 {
			f |= 1 << uint(31-i)
		}
	}
	return f
}

// BitStringFromFlags converts MIT's uint32 flag layout to a 32-bit
// KerberosFlags BitString.
func BitStringFromFlags(f uint32) asn1.BitString {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, f)
	return asn1.BitString{Bytes: b, BitLength: 32}
}

// FlagString renders flags as the letters MIT klist -f prints, in klist's
// order: F f P p D d i R I H A T O a.
func FlagString(f uint32) string {
	var b []byte
	for _, fl := range flagLetters {
		if f&fl.flag != 0 {
			b = append(b, fl.letter)
		}
	}
	return string(b)
}

// CCache is an MIT FILE credential cache.
type CCache struct {
	Version          int           // 3 or 4 when read; Marshal always writes 4
	KDCOffset        time.Duration // header tag 1 (seconds + microseconds); 0 = absent
	DefaultPrincipal principal.Name
	Credentials      []Credential
}

// ParseCCache decodes an MIT FILE credential cache of format version 3
// (0x0503) or 4 (0x0504). Every count and length is checked against the
// remaining input, so malformed data returns an error rather than panicking,
// and memory use stays proportional to the input size.
func ParseCCache(b []byte) (*CCache, error) {
	c, err := parseCCache(b)
	if err != nil {
		return nil, fmt.Errorf("ticket: parse credential cache: %w", err)
	}
	return c, nil
}

func parseCCache(b []byte) (*CCache, error) {
	r := &ccReader{b: b}
	v := r.u16()
	if r.err != nil {
		return nil, fmt.Errorf("version: %w", r.err)
	}
	if v != ccacheVersion3 && v != ccacheVersion4 {
		return nil, fmt.Errorf("unsupported format version 0x%04x (want 0x0503 or 0x0504)", v)
	}
	c := &CCache{Version: int(v & 0xff)}
	if v == ccacheVersion4 {
		off, err := parseCCacheHeader(r)
		if err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		c.KDCOffset = off
	}
	c.DefaultPrincipal = r.principal()
	if r.err != nil {
		return nil, fmt.Errorf("default principal: %w", r.err)
	}
	for r.remaining() > 0 {
		cred := r.credential(v)
		if r.err != nil {
			return nil, fmt.Errorf("credential %d: %w", len(c.Credentials), r.err)
		}
		c.Credentials = append(c.Credentials, cred)
	}
	return c, nil
}

// parseCCacheHeader reads the version 4 header and returns the KDC time offset.
// Unknown tags are skipped.
func parseCCacheHeader(r *ccReader) (time.Duration, error) {
	n := int(r.u16())
	if r.err != nil {
		return 0, r.err
	}
	hb := r.bytes(n)
	if r.err != nil {
		return 0, fmt.Errorf("length %d: %w", n, r.err)
	}
	h := &ccReader{b: hb}
	var off time.Duration
	for h.remaining() > 0 {
		tag := h.u16()
		l := int(h.u16())
		val := h.bytes(l)
		if h.err != nil {
			return 0, fmt.Errorf("field: %w", h.err)
		}
		if tag != ccacheTagKDCOffset {
			continue
		}
		if l != 8 {
			return 0, fmt.Errorf("KDC time offset field has length %d, want 8", l)
		}
		sec := int32(binary.BigEndian.Uint32(val[0:4]))
		usec := int32(binary.BigEndian.Uint32(val[4:8]))
		off = time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond
	}
	return off, nil
}

// Marshal encodes the cache in format version 4 (big-endian). The header holds
// the KDC time offset field only when KDCOffset is non-zero. Times are stored
// as unsigned 32-bit seconds (the zero time as 0, earlier or later times
// clamped to the representable range); enctypes, address types and
// authorization data types are stored in 16 bits.
func (c *CCache) Marshal() []byte {
	w := &ccWriter{}
	w.u16(ccacheVersion4)
	if c.KDCOffset != 0 {
		sec := c.KDCOffset / time.Second
		usec := (c.KDCOffset % time.Second) / time.Microsecond
		if sec > math.MaxInt32 {
			sec, usec = math.MaxInt32, 0
		} else if sec < math.MinInt32 {
			sec, usec = math.MinInt32, 0
		}
		w.u16(12) // header length: one field of 2+2+8 bytes
		w.u16(ccacheTagKDCOffset)
		w.u16(8)
		w.u32(uint32(int32(sec)))
		w.u32(uint32(int32(usec)))
	} else {
		w.u16(0)
	}
	w.principal(c.DefaultPrincipal)
	for i := range c.Credentials {
		w.credential(&c.Credentials[i])
	}
	return w.b
}

// Add stores cred in the cache. A non-configuration credential replaces the
// existing non-configuration entries with the same client and server
// (name types ignored), keeping the position of the first of them; otherwise,
// and always for configuration entries, cred is appended.
func (c *CCache) Add(cred Credential) {
	if !cred.IsConfig() {
		idx := -1
		kept := c.Credentials[:0]
		for _, e := range c.Credentials {
			if !e.IsConfig() && e.Client.Equal(cred.Client) && e.Server.Equal(cred.Server) {
				if idx >= 0 {
					continue // drop later duplicates
				}
				idx = len(kept)
				e = cred
			}
			kept = append(kept, e)
		}
		for i := len(kept); i < len(c.Credentials); i++ {
			c.Credentials[i] = Credential{} // release dropped entries
		}
		c.Credentials = kept
		if idx >= 0 {
			return
		}
	}
	c.Credentials = append(c.Credentials, cred)
}

// Find returns the newest credential whose server is server (realm and
// components compared, name type ignored). Newest means the latest start time
// (the auth time when the start time is zero); among equal times the entry
// stored last wins.
func (c *CCache) Find(server principal.Name) (Credential, bool) {
	best := -1
	var bestTime time.Time
	for i, e := range c.Credentials {
		if !e.Server.Equal(server) {
			continue
		}
		t := e.StartTime
		if t.IsZero() {
			t = e.AuthTime
		}
		if best < 0 || !t.Before(bestTime) {
			best, bestTime = i, t
		}
	}
	if best < 0 {
		return Credential{}, false
	}
	return c.Credentials[best], true
}

// ResolveCCacheName turns a credential cache name as found in KRB5CCNAME into
// the file that holds the cache; see ParseCCacheName for the names it accepts.
func ResolveCCacheName(name string, uid int) (string, error) {
	n, err := ParseCCacheName(name, uid)
	if err != nil {
		return "", err
	}
	return n.Path, nil
}

// ReadCCacheFile reads and parses the credential cache file at path (already
// resolved, see ResolveCCacheName).
func ReadCCacheFile(path string) (*CCache, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ticket: read credential cache: %w", err)
	}
	c, err := parseCCache(b)
	if err != nil {
		return nil, fmt.Errorf("ticket: parse credential cache %s: %w", path, err)
	}
	return c, nil
}

// WriteCCacheFile writes c to path atomically: the data goes to a temporary
// file created with mode 0600 in the same directory, is fsynced, and the file
// is renamed over path. On any failure the previous file at path is left as
// it was. The resulting file has mode 0600.
func WriteCCacheFile(path string, c *CCache) error {
	if err := writeFileAtomic(path, c.Marshal(), nil); err != nil {
		return fmt.Errorf("ticket: write credential cache: %w", err)
	}
	return nil
}

// atomicHooks lets tests inject failures at each step of writeFileAtomic.
type atomicHooks struct {
	afterWrite   func() error
	afterSync    func() error
	beforeRename func() error
}

func runHook(f func() error) error {
	if f == nil {
		return nil
	}
	return f()
}

// writeFileAtomic replaces path with data via a 0600 temporary file in the
// same directory, fsync and rename. The temporary file is removed on failure.
func writeFileAtomic(path string, data []byte, hooks *atomicHooks) (err error) {
	if hooks == nil {
		hooks = &atomicHooks{}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; be explicit in case that ever changes.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = runHook(hooks.afterWrite); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = runHook(hooks.afterSync); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = runHook(hooks.beforeRename); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename durable; failure to sync the directory is not fatal
	// because the data itself is already on disk.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ccReader is a bounds-checked big-endian decoder. After the first error every
// method returns zero values and r.err keeps that error.
type ccReader struct {
	b   []byte
	off int
	err error
}

func (r *ccReader) remaining() int { return len(r.b) - r.off }

func (r *ccReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *ccReader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || n > r.remaining() {
		r.fail(fmt.Errorf("%w at offset %d: need %d bytes, have %d", errTruncated, r.off, n, r.remaining()))
		return false
	}
	return true
}

func (r *ccReader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *ccReader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v
}

func (r *ccReader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// bytes returns the next n bytes without copying.
func (r *ccReader) bytes(n int) []byte {
	if !r.need(n) {
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

// data reads a 32-bit counted field and returns a copy (nil when empty).
func (r *ccReader) data() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(r.remaining()) {
		r.fail(fmt.Errorf("%w at offset %d: field length %d exceeds the %d bytes left", errTruncated, r.off-4, n, r.remaining()))
		return nil
	}
	v := r.bytes(int(n))
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// count reads a 32-bit element count and checks that count elements of at
// least minSize bytes each fit in the remaining input.
func (r *ccReader) count(what string, minSize int) int {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		r.fail(fmt.Errorf("%w at offset %d: %d %s cannot fit in the %d bytes left", errTruncated, r.off-4, n, what, r.remaining()))
		return 0
	}
	return int(n)
}

// principal reads a principal: name type, component count, realm, components.
func (r *ccReader) principal() principal.Name {
	var p principal.Name
	p.Type = int32(r.u32())
	n := r.count("principal components", 4)
	p.Realm = string(r.data())
	if n > 0 && r.err == nil {
		p.Components = make([]string, n)
		for i := range p.Components {
			p.Components[i] = string(r.data())
		}
	}
	if r.err != nil {
		return principal.Name{}
	}
	return p
}

func (r *ccReader) time() time.Time {
	v := r.u32()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

func (r *ccReader) credential(version uint16) Credential {
	var c Credential
	c.Client = r.principal()
	c.Server = r.principal()
	c.Key.KeyType = int32(int16(r.u16()))
	if version == ccacheVersion3 {
		r.u16() // version 3 repeats the enctype
	}
	c.Key.KeyValue = r.data()
	c.AuthTime = r.time()
	c.StartTime = r.time()
	c.EndTime = r.time()
	c.RenewTill = r.time()
	switch r.u8() {
	case 0:
	case 1:
		c.IsSKey = true
	default:
		r.fail(fmt.Errorf("is_skey byte at offset %d is not 0 or 1", r.off-1))
	}
	c.Flags = r.u32()
	if n := r.count("addresses", 6); n > 0 {
		c.Addresses = make([]types.HostAddress, n)
		for i := range c.Addresses {
			c.Addresses[i].AddrType = int32(int16(r.u16()))
			c.Addresses[i].Address = r.data()
		}
	}
	if n := r.count("authorization data entries", 6); n > 0 {
		c.AuthData = make([]types.AuthorizationDataEntry, n)
		for i := range c.AuthData {
			c.AuthData[i].ADType = int32(int16(r.u16()))
			c.AuthData[i].ADData = r.data()
		}
	}
	c.Ticket = r.data()
	c.SecondTicket = r.data()
	if r.err != nil {
		return Credential{}
	}
	return c
}

// ccWriter is a big-endian encoder for the ccache format.
type ccWriter struct {
	b []byte
}

func (w *ccWriter) u8(v uint8)   { w.b = append(w.b, v) }
func (w *ccWriter) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *ccWriter) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }

func (w *ccWriter) data(d []byte) {
	w.u32(uint32(len(d)))
	w.b = append(w.b, d...)
}

func (w *ccWriter) principal(p principal.Name) {
	w.u32(uint32(p.Type))
	w.u32(uint32(len(p.Components)))
	w.data([]byte(p.Realm))
	for _, s := range p.Components {
		w.data([]byte(s))
	}
}

func (w *ccWriter) time(t time.Time) {
	w.u32(epoch32(t))
}

// epoch32 converts t to unsigned 32-bit epoch seconds; the zero time is 0.
func epoch32(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

func (w *ccWriter) credential(c *Credential) {
	w.principal(c.Client)
	w.principal(c.Server)
	w.u16(uint16(c.Key.KeyType))
	w.data(c.Key.KeyValue)
	w.time(c.AuthTime)
	w.time(c.StartTime)
	w.time(c.EndTime)
	w.time(c.RenewTill)
	if c.IsSKey {
		w.u8(1)
	} else {
		w.u8(0)
	}
	w.u32(c.Flags)
	w.u32(uint32(len(c.Addresses)))
	for _, a := range c.Addresses {
		w.u16(uint16(a.AddrType))
		w.data(a.Address)
	}
	w.u32(uint32(len(c.AuthData)))
	for _, a := range c.AuthData {
		w.u16(uint16(a.ADType))
		w.data(a.ADData)
	}
	w.data(c.Ticket)
	w.data(c.SecondTicket)
}
