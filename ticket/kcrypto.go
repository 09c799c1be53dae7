package ticket

// Kerberos encryption with derived keys cached per (key, usage).
//
// gokrb5 re-derives Ke, Ki and Kc from the base key on every call, which costs
// several times the cipher itself. A KDC uses the same long-term keys (krbtgt,
// services, clients) request after request, so KeyCache keeps the derived keys
// of those and does the AES enctypes itself:
//
//   - aes128-cts-hmac-sha1-96 (17) and aes256-cts-hmac-sha1-96 (18), RFC 3962:
//     keys by DK (RFC 3961 §5.1), AES-CTS with a zero IV over
//     confounder|plaintext, then HMAC-SHA1 over confounder|plaintext truncated
//     to 96 bits;
//   - aes128-cts-hmac-sha256-128 (19) and aes256-cts-hmac-sha384-192 (20), RFC
//     8009: keys by KDF-HMAC-SHA2, AES-CTS with a zero IV over
//     confounder|plaintext, then HMAC-SHA256/384 over IV|ciphertext truncated
//     to 128/192 bits.
//
// Every other enctype, and keys of the wrong length, go to gokrb5 (decryption
// through the package's Decrypt, which keeps gokrb5 from panicking on short
// ciphertext). Session keys and subkeys are used once:
// callers pass a nil *KeyCache for them, which derives without storing.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"sync"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/sys/cpu"
)

// DefaultKeyCacheEntries is the capacity NewKeyCache uses when given 0 or less:
// one entry per (key, usage), so about a thousand principals in everyday use.
const DefaultKeyCacheEntries = 4096

// ErrIntegrity reports ciphertext or a checksum that does not verify.
var ErrIntegrity = errors.New("ticket: integrity check failed")

// Key derivation constants (RFC 3961 §5.3, RFC 8009 §5): the last byte of the
// usage-based label.
const (
	kindKc = 0x99 // checksum key
	kindKe = 0xAA // encryption key
	kindKi = 0x55 // integrity key
)

// aesEtype describes one of the four AES enctypes done here.
type aesEtype struct {
	id      int32
	cksum   int32            // checksum type of its keyed checksum (RFC 3962 §7, RFC 8009 §8)
	keyLen  int              // base key and Ke length in bytes
	macLen  int              // truncated HMAC length in bytes (the checksum too)
	kiLen   int              // Ki and Kc length in bytes
	hash    func() hash.Hash // HMAC hash
	rfc8009 bool             // KDF-HMAC-SHA2 and MAC over IV|ciphertext
}

var aesEtypes = [...]aesEtype{
	{id: 17, cksum: 15, keyLen: 16, macLen: 12, kiLen: 16, hash: sha1.New},
	{id: 18, cksum: 16, keyLen: 32, macLen: 12, kiLen: 32, hash: sha1.New},
	{id: 19, cksum: 19, keyLen: 16, macLen: 16, kiLen: 16, hash: sha256.New, rfc8009: true},
	{id: 20, cksum: 20, keyLen: 32, macLen: 24, kiLen: 24, hash: sha512.New384, rfc8009: true},
}

func lookupEtype(id int32) *aesEtype {
	if id >= 17 && id <= 20 {
		return &aesEtypes[id-17]
	}
	return nil
}

// etypeOf is the AES enctype done here for key, or nil for gokrb5 to handle:
// other enctypes, and keys of the wrong length (such as the 24-byte
// aes256-cts-hmac-sha384-192 keys of gokrb5's GenerateEncryptionKey), so that
// the outcome for those stays exactly gokrb5's.
func etypeOf(key types.EncryptionKey) *aesEtype {
	et := lookupEtype(key.KeyType)
	if et == nil || len(key.KeyValue) != et.keyLen {
		return nil
	}
	return et
}

// confounderLen is the confounder (RFC 3962) or random prefix N (RFC 8009): one
// AES block.
const confounderLen = aes.BlockSize

// derived holds the keys derived from one base key for one usage. It is
// immutable once built, except for the pooled HMAC states.
type derived struct {
	et   *aesEtype
	base []byte // copy of the base key: a hash collision must never select another key's entry
	ke   cipher.Block
	ki   []byte // kiBuf[:et.kiLen]
	kc   []byte // kcBuf[:et.kiLen]
	// The key bytes live in the struct itself: one allocation per derivation.
	kiBuf, kcBuf, keBuf [32]byte
}

// macSlot names the HMAC of a cached derived key's Ki or Kc, for reuse; the
// zero value means a one-shot MAC (session keys).
type macSlot struct {
	d  *derived
	kc bool
}

// macCache holds HMACs of cached derived keys for reuse: crypto/hmac keeps the
// padded-key states after the first use, which saves two compression-function
// calls per message. The caches come from macCaches, a sync.Pool, which keeps
// one per P, so the HMACs of the keys that every request uses (the krbtgt
// key's) stay with the core that uses them: one shared HMAC per key made the
// cores contend for it, pass its state back and forth, and build a new one
// whenever another core held it. A cache forgets all it holds when it reaches
// maxMACs.
type macCache struct{ m map[macSlot]hash.Hash }

const maxMACs = 64

var macCaches = sync.Pool{New: func() any { return &macCache{m: make(map[macSlot]hash.Hash)} }}

// need says which derived keys to compute when nothing is cached.
type need uint8

const (
	needEnc need = 1 << iota // Ke and Ki
	needSum                  // Kc
)

// deriveKeys derives the keys of what from base for usage.
func deriveKeys(et *aesEtype, base []byte, usage uint32, what need) (*derived, error) {
	return deriveKeysWith(et, base, nil, usage, what)
}

// deriveKeysWith is deriveKeys with the base key's AES cipher, for AES-SHA1
// enctypes, made already (blk) or, if nil, made here.
func deriveKeysWith(et *aesEtype, base []byte, blk cipher.Block, usage uint32, what need) (*derived, error) {
	if len(base) != et.keyLen {
		return nil, fmt.Errorf("ticket: enctype %d key is %d bytes, want %d", et.id, len(base), et.keyLen)
	}
	d := &derived{et: et}
	if !et.rfc8009 && blk == nil {
		b, err := aes.NewCipher(base)
		if err != nil {
			return nil, err
		}
		blk = b
	}
	dk := func(kind byte, dst []byte) {
		if et.rfc8009 {
			kdfHMACSHA2(et.hash, base, usage, kind, dst)
		} else {
			dkAES(blk, usage, kind, dst)
		}
	}
	if what&needEnc != 0 {
		ke := d.keBuf[:et.keyLen]
		dk(kindKe, ke)
		b, err := aes.NewCipher(ke)
		clear(d.keBuf[:])
		if err != nil {
			return nil, err
		}
		d.ke = b
		d.ki = d.kiBuf[:et.kiLen]
		dk(kindKi, d.ki)
	}
	if what&needSum != 0 {
		d.kc = d.kcBuf[:et.kiLen]
		dk(kindKc, d.kc)
	}
	return d, nil
}

// usageLabel is the 5-byte key derivation label: the usage as 4 bytes big-endian,
// then the kind byte (RFC 3961 §5.3, RFC 8009 §5).
func usageLabel(usage uint32, kind byte) [5]byte {
	var l [5]byte
	binary.BigEndian.PutUint32(l[:4], usage)
	l[4] = kind
	return l
}

// dkAES is DK(base, usage|kind) of RFC 3961 §5.1 for AES (RFC 3962 §4) into
// dst (16 or 32 bytes): the label n-folded to one block, encrypted with the
// base key, and each output block encrypted again; random-to-key is the
// identity for AES.
func dkAES(base cipher.Block, usage uint32, kind byte, dst []byte) {
	const bs = aes.BlockSize
	out := dst
	if len(out)%bs != 0 { // not for the AES enctypes, whose keys are whole blocks
		out = make([]byte, (len(dst)+bs-1)/bs*bs)
	}
	// The CTS "encryption" of one block with a zero IV is the block cipher.
	// Working in dst, which lives in the heap entry already, keeps the blocks
	// from escaping through the cipher.Block interface.
	folded := foldedLabel(usage, kind)
	copy(out[:bs], folded[:])
	base.Encrypt(out[:bs], out[:bs])
	for i := bs; i < len(out); i += bs {
		base.Encrypt(out[i:i+bs], out[i-bs:i])
	}
	if len(out) != len(dst) {
		copy(dst, out)
		clear(out)
	}
}

// foldedLabels holds the n-fold of every usage label below 64 (the usages
// RFC 4120, RFC 4121 and RFC 6113 define), so that deriving keys for a session
// key computes no n-fold.
var foldedLabels = func() (t [64][3][aes.BlockSize]byte) {
	for u := range t {
		for i, kind := range [3]byte{kindKc, kindKe, kindKi} {
			label := usageLabel(uint32(u), kind)
			copy(t[u][i][:], nfold(label[:], aes.BlockSize))
		}
	}
	return
}()

func foldedLabel(usage uint32, kind byte) (f [aes.BlockSize]byte) {
	if usage < uint32(len(foldedLabels)) {
		switch kind {
		case kindKc:
			return foldedLabels[usage][0]
		case kindKe:
			return foldedLabels[usage][1]
		case kindKi:
			return foldedLabels[usage][2]
		}
	}
	label := usageLabel(usage, kind)
	copy(f[:], nfold(label[:], aes.BlockSize))
	return
}

// nfold is the n-fold operation of RFC 3961 §5.1 with n = 8*outLen bits: the
// input is repeated to lcm(len(in), outLen) bytes, each repetition rotated 13
// bits further right than the one before, and the result cut into outLen-byte
// pieces that are added with ones' complement (end-around carry) arithmetic.
func nfold(in []byte, outLen int) []byte {
	inLen := len(in)
	out := make([]byte, outLen)
	if inLen == 0 || outLen == 0 {
		return out
	}
	total := lcm(inLen, outLen)
	inBits := 8 * inLen
	// acc holds the big-endian sum, one byte per word, carries not yet
	// propagated; rotated is one repetition.
	acc := make([]uint32, outLen)
	rotated := make([]byte, inLen)
	pos := 0
	for rep := 0; rep < total/inLen; rep++ {
		// The input rotated right by 13*rep bits: byte i takes the low bits of
		// byte i-q and the high bits of byte i-q-1 (indices mod inLen).
		rot := (13 * rep) % inBits
		q, s := rot/8, uint(rot%8)
		src := (inLen - q) % inLen // i-q for i = 0
		for i := range rotated {
			prev := src - 1
			if prev < 0 {
				prev = inLen - 1
			}
			rotated[i] = in[src]>>s | in[prev]<<(8-s) // a shift by 8 gives 0
			if src++; src == inLen {
				src = 0
			}
		}
		for _, v := range rotated {
			acc[pos] += uint32(v)
			if pos++; pos == outLen {
				pos = 0
			}
		}
	}
	// Propagate carries from the last byte to the first, wrapping the carry out
	// of the first byte around to the last, until none is left.
	for {
		carry := uint32(0)
		for i := outLen - 1; i >= 0; i-- {
			v := acc[i] + carry
			acc[i] = v & 0xff
			carry = v >> 8
		}
		if carry == 0 {
			break
		}
		acc[outLen-1] += carry
	}
	for i := range out {
		out[i] = byte(acc[i])
	}
	return out
}

func lcm(a, b int) int {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// kdfHMACSHA2 is KDF-HMAC-SHA2(base, usage|kind, 8n) of RFC 8009 §3 for outputs
// no longer than one hash, into dst (n = len(dst) bytes): HMAC(base,
// 00000001 | label | 00 | k) truncated, with k the output length in bits as 4
// bytes big-endian.
func kdfHMACSHA2(h func() hash.Hash, base []byte, usage uint32, kind byte, dst []byte) []byte {
	label := usageLabel(usage, kind)
	m := hmac.New(h, base)
	var msg [4 + 5 + 1 + 4]byte
	binary.BigEndian.PutUint32(msg[0:4], 1)
	copy(msg[4:9], label[:])
	msg[9] = 0
	binary.BigEndian.PutUint32(msg[10:14], uint32(8*len(dst)))
	m.Write(msg[:])
	copy(dst, m.Sum(nil))
	return dst
}

// zeroIV is the cipher state RFC 8009's MAC covers: all zeros, read-only.
var zeroIV [aes.BlockSize]byte

// work is the scratch of one encryption or decryption: the CTS blocks, the
// MAC sums and, for keys used once, a hash to compute HMAC with. Pooled, so
// that sealing and opening allocate nothing but their result.
type work struct {
	blk [6][aes.BlockSize]byte
	sum [sha512.Size384]byte
	pad [128]byte // HMAC ipad/opad, the largest hash block (SHA-384)
	h   [3]hash.Hash
}

var works = sync.Pool{New: func() any { return new(work) }}

func getWork() *work { return works.Get().(*work) }

func putWork(w *work) {
	clear(w.blk[:])
	clear(w.pad[:])
	clear(w.sum[:])
	works.Put(w)
}

// hashIndex is the slot of et's hash in work.h.
func (et *aesEtype) hashIndex() int {
	switch {
	case !et.rfc8009:
		return 0
	case et.macLen == 16:
		return 1
	}
	return 2
}

// oneShotMAC is HMAC (RFC 2104) with key over a|b, for keys used once: a
// session key's Ki or Kc would cost crypto/hmac's allocations for one
// message. Every Kerberos key is shorter than the hash block, so the key is
// padded, never hashed. The full MAC lands in w.sum.
func (w *work) oneShotMAC(et *aesEtype, key, a, b []byte) []byte {
	i := et.hashIndex()
	if w.h[i] == nil {
		w.h[i] = et.hash()
	}
	h := w.h[i]
	bs := h.BlockSize()
	pad := w.pad[:bs]
	for j := range pad {
		pad[j] = 0x36
	}
	subtle.XORBytes(pad, pad[:len(key)], key)
	h.Reset()
	h.Write(pad)
	h.Write(a)
	h.Write(b)
	inner := h.Sum(w.sum[:0])
	for j := range pad {
		pad[j] = 0x5c
	}
	subtle.XORBytes(pad, pad[:len(key)], key)
	h.Reset()
	h.Write(pad)
	h.Write(inner)
	return h.Sum(w.sum[:0])
}

// mac computes the MAC of key over a|b, truncated, appended to dst. A slot that
// names a cached key takes its reusable crypto/hmac from this P's macCache; the
// zero slot uses the pooled hash of w. (A macCache may keep the HMAC of a key
// the KeyCache has evicted, in memory only, until it fills up and is cleared or
// the collector drops the cache: at most maxMACs of them per cache.)
func (d *derived) mac(w *work, slot macSlot, key []byte, dst []byte, a, b []byte) []byte {
	if slot.d == nil {
		return append(dst, w.oneShotMAC(d.et, key, a, b)[:d.et.macLen]...)
	}
	mc := macCaches.Get().(*macCache)
	h := mc.m[slot]
	if h == nil {
		if len(mc.m) >= maxMACs {
			clear(mc.m)
		}
		h = hmac.New(d.et.hash, key)
		mc.m[slot] = h
	} else {
		h.Reset()
	}
	h.Write(a)
	h.Write(b)
	full := h.Sum(w.sum[:0])
	dst = append(dst, full[:d.et.macLen]...)
	macCaches.Put(mc)
	return dst
}

// seal encrypts plaintext behind confounder and appends the MAC (RFC 3962 §6,
// RFC 8009 §5). confounder is one block; tests pass the RFC's.
func (d *derived) seal(confounder, plaintext []byte, slot macSlot) []byte {
	w := getWork()
	defer putWork(w)
	n := confounderLen + len(plaintext)
	out := make([]byte, n, n+d.et.macLen)
	copy(out, confounder)
	copy(out[confounderLen:], plaintext)
	if d.et.rfc8009 {
		ctsEncrypt(d.ke, out, w)
		return d.mac(w, slot, d.ki, out, zeroIV[:], out)
	}
	var tag [sha512.Size384]byte
	t := d.mac(w, slot, d.ki, tag[:0], out, nil)
	ctsEncrypt(d.ke, out, w)
	return append(out, t...)
}

// open checks and decrypts ct, returning the plaintext without the confounder.
func (d *derived) open(ct []byte, slot macSlot) ([]byte, error) {
	if len(ct) < confounderLen+d.et.macLen {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is too short", ErrIntegrity, len(ct))
	}
	w := getWork()
	defer putWork(w)
	body, tag := ct[:len(ct)-d.et.macLen], ct[len(ct)-d.et.macLen:]
	var buf [sha512.Size384]byte
	if d.et.rfc8009 {
		if !hmac.Equal(d.mac(w, slot, d.ki, buf[:0], zeroIV[:], body), tag) {
			return nil, ErrIntegrity
		}
		out := append([]byte(nil), body...)
		ctsDecrypt(d.ke, out, w)
		return out[confounderLen:], nil
	}
	out := append([]byte(nil), body...)
	ctsDecrypt(d.ke, out, w)
	if !hmac.Equal(d.mac(w, slot, d.ki, buf[:0], out, nil), tag) {
		return nil, ErrIntegrity
	}
	return out[confounderLen:], nil
}

// ctsEncrypt is AES-CTS with a zero IV in place (RFC 3962 §5: CBC with the last
// two blocks swapped and the last one truncated). len(buf) must be at least one
// block.
func ctsEncrypt(b cipher.Block, buf []byte, w *work) {
	const bs = aes.BlockSize
	n := len(buf)
	if n == bs {
		b.Encrypt(buf, buf)
		return
	}
	m := (n + bs - 1) / bs // blocks, the last one r bytes
	r := n - bs*(m-1)
	// CBC over the m-1 full blocks. By hand: cipher.NewCBCEncrypter copies the
	// whole key schedule to the heap on every call.
	prev := w.blk[0][:] // the IV, then C[i]
	clear(prev)
	for i := 0; i < m-1; i++ {
		blk := buf[bs*i : bs*(i+1)]
		subtle.XORBytes(blk, blk, prev)
		b.Encrypt(blk, blk)
		copy(prev, blk)
	}
	last := w.blk[1][:] // prev is C[m-1]
	clear(last)
	copy(last, buf[bs*(m-1):]) // P[m] padded with zeros
	subtle.XORBytes(last, last, prev)
	b.Encrypt(last, last) // C[m]
	copy(buf[bs*(m-2):], last)
	copy(buf[bs*(m-1):], prev[:r])
}

// ctsDecrypt undoes ctsEncrypt in place. len(buf) must be at least one block.
func ctsDecrypt(b cipher.Block, buf []byte, w *work) {
	const bs = aes.BlockSize
	n := len(buf)
	if n == bs {
		b.Decrypt(buf, buf)
		return
	}
	m := (n + bs - 1) / bs
	r := n - bs*(m-1)
	// On the wire: C[1..m-2], C[m], C[m-1] truncated to r bytes.
	d, cm1, prev, pm, pm1 := w.blk[0][:], w.blk[1][:], w.blk[2][:], w.blk[3][:], w.blk[4][:]
	clear(prev)
	b.Decrypt(d, buf[bs*(m-2):bs*(m-1)]) // (P[m] | zeros) XOR C[m-1]
	copy(cm1[:r], buf[bs*(m-1):])
	copy(cm1[r:], d[r:]) // the truncated bytes of C[m-1] are what the zeros left
	subtle.XORBytes(pm[:r], d[:r], cm1[:r])
	if m > 2 {
		copy(prev, buf[bs*(m-3):bs*(m-2)]) // C[m-2]
	}
	b.Decrypt(pm1, cm1)
	subtle.XORBytes(pm1, pm1, prev)
	// CBC decryption of C[1..m-2], last block first so that each block's
	// predecessor is still ciphertext when it is needed.
	for i := m - 3; i >= 0; i-- {
		blk := buf[bs*i : bs*(i+1)]
		b.Decrypt(blk, blk)
		if i > 0 {
			subtle.XORBytes(blk, blk, buf[bs*(i-1):bs*i])
		}
	}
	copy(buf[bs*(m-2):], pm1)
	copy(buf[bs*(m-1):], pm[:r])
}

// KeyCache keeps keys derived from long-term keys, per (enctype, key, usage). It
// is bounded and safe for concurrent use; a nil *KeyCache derives on every call
// without storing anything, which is what session keys want. Key bytes are held
// only in memory, never logged or returned.
type KeyCache struct {
	seed     maphash.Seed
	perShard int
	shards   []cacheShard
}

type cacheID struct {
	etype int32
	usage uint32
	hash  uint64 // maphash of the key bytes, under the cache's random seed
}

// cacheShard is one part of a KeyCache. Reads take no lock and write no shared
// memory: every request reads the krbtgt key's entries, from every core, and
// the reader count of an RWMutex made its cache line bounce between them (70%
// of the lookup's time with two cores). mu orders a shard's fills and
// evictions; n counts its entries.
type cacheShard struct {
	m  sync.Map // cacheID → *derived
	mu sync.Mutex
	n  int // under mu
	_  cpu.CacheLinePad
}

// NewKeyCache returns a cache of at most maxEntries (key, usage) entries;
// 0 or less means DefaultKeyCacheEntries. When full, an arbitrary entry of the
// same shard is evicted.
func NewKeyCache(maxEntries int) *KeyCache {
	if maxEntries <= 0 {
		maxEntries = DefaultKeyCacheEntries
	}
	n := 16
	if maxEntries < 4*n {
		n = 1
	}
	return &KeyCache{seed: maphash.MakeSeed(), perShard: maxEntries / n, shards: make([]cacheShard, n)}
}

// Len reports how many (key, usage) entries are cached.
func (c *KeyCache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// keys returns the derived keys of key for usage, from the cache or freshly
// derived (and stored, if c is not nil). what is used only when c is nil.
func (c *KeyCache) keys(et *aesEtype, key []byte, usage uint32, what need) (*derived, error) {
	if c == nil {
		return deriveKeys(et, key, usage, what)
	}
	id := cacheID{etype: et.id, usage: usage, hash: maphash.Bytes(c.seed, key)}
	s := &c.shards[(id.hash^uint64(usage)*0x9E3779B97F4A7C15)%uint64(len(c.shards))]
	if v, ok := s.m.Load(id); ok {
		if d := v.(*derived); subtle.ConstantTimeCompare(d.base, key) == 1 {
			return d, nil
		}
	}
	d, err := deriveKeys(et, key, usage, needEnc|needSum)
	if err != nil {
		return nil, err
	}
	d.base = append([]byte(nil), key...)
	s.mu.Lock()
	if _, ok := s.m.Load(id); !ok {
		if s.n >= c.perShard {
			s.m.Range(func(victim, _ any) bool { // an arbitrary entry
				s.m.Delete(victim)
				s.n--
				return false
			})
		}
		s.n++
	}
	s.m.Store(id, d) // replaces a colliding entry, if any
	s.mu.Unlock()
	return d, nil
}

// slots names the HMACs of d for reuse: only cached entries outlive the call.
func (c *KeyCache) slots(d *derived) (ki, kc macSlot) {
	if c == nil {
		return macSlot{}, macSlot{}
	}
	return macSlot{d: d}, macSlot{d: d, kc: true}
}

// Encrypt encrypts plaintext with key for usage, as crypto.GetEncryptedData does.
func (c *KeyCache) Encrypt(key types.EncryptionKey, usage uint32, plaintext []byte, kvno int) (types.EncryptedData, error) {
	return encrypt(c, key, usage, plaintext, kvno)
}

func encrypt(c deriver, key types.EncryptionKey, usage uint32, plaintext []byte, kvno int) (types.EncryptedData, error) {
	et := etypeOf(key)
	if et == nil || usage == 0 {
		return crypto.GetEncryptedData(plaintext, key, usage, kvno)
	}
	d, err := c.keys(et, key.KeyValue, usage, needEnc)
	if err != nil {
		return types.EncryptedData{}, err
	}
	var conf [confounderLen]byte
	if _, err := rand.Read(conf[:]); err != nil {
		return types.EncryptedData{}, fmt.Errorf("ticket: confounder: %w", err)
	}
	ki, _ := c.slots(d)
	return types.EncryptedData{EType: key.KeyType, KVNO: kvno, Cipher: d.seal(conf[:], plaintext, ki)}, nil
}

// Decrypt checks and decrypts ed with key for usage, as crypto.DecryptEncPart
// does (the key's enctype is used, as there), but refuses short or garbage
// ciphertext with an error where gokrb5 may panic.
func (c *KeyCache) Decrypt(ed types.EncryptedData, key types.EncryptionKey, usage uint32) ([]byte, error) {
	return decrypt(c, ed, key, usage)
}

func decrypt(c deriver, ed types.EncryptedData, key types.EncryptionKey, usage uint32) ([]byte, error) {
	et := etypeOf(key)
	if et == nil || usage == 0 {
		return Decrypt(key, ed.Cipher, usage) // gokrb5, guarded
	}
	d, err := c.keys(et, key.KeyValue, usage, needEnc)
	if err != nil {
		return nil, err
	}
	ki, _ := c.slots(d)
	plain, err := d.open(ed.Cipher, ki)
	if err != nil {
		return nil, fmt.Errorf("%w (enctype %d, usage %d)", err, key.KeyType, usage)
	}
	return plain, nil
}

// Checksum computes the keyed checksum of the key's enctype over data for usage
// (RFC 3961 get_mic: hmac-sha1-96-aes128/256, hmac-sha256-128-aes128,
// hmac-sha384-192-aes256) and returns its checksum type.
func (c *KeyCache) Checksum(key types.EncryptionKey, usage uint32, data []byte) (int32, []byte, error) {
	return checksum(c, key, usage, data)
}

func checksum(c deriver, key types.EncryptionKey, usage uint32, data []byte) (int32, []byte, error) {
	et := etypeOf(key)
	if et == nil {
		e, err := crypto.GetEtype(key.KeyType)
		if err != nil {
			return 0, nil, err
		}
		sum, err := e.GetChecksumHash(key.KeyValue, data, usage)
		if err != nil {
			return 0, nil, err
		}
		return e.GetHashID(), sum, nil
	}
	d, err := c.keys(et, key.KeyValue, usage, needSum)
	if err != nil {
		return 0, nil, err
	}
	_, kc := c.slots(d)
	w := getWork()
	defer putWork(w)
	return et.cksum, d.mac(w, kc, d.kc, nil, data, nil), nil
}

// VerifyChecksum reports whether sum is the key's keyed checksum over data for
// usage, compared in constant time.
func (c *KeyCache) VerifyChecksum(key types.EncryptionKey, usage uint32, data, sum []byte) bool {
	return verifyChecksum(c, key, usage, data, sum)
}

func verifyChecksum(c deriver, key types.EncryptionKey, usage uint32, data, sum []byte) bool {
	et := etypeOf(key)
	if et == nil {
		e, err := crypto.GetEtype(key.KeyType)
		if err != nil {
			return false
		}
		return e.VerifyChecksum(key.KeyValue, data, sum, usage)
	}
	if len(sum) != et.macLen {
		return false
	}
	d, err := c.keys(et, key.KeyValue, usage, needSum)
	if err != nil {
		return false
	}
	_, kc := c.slots(d)
	w := getWork()
	defer putWork(w)
	var buf [sha512.Size384]byte
	return hmac.Equal(d.mac(w, kc, d.kc, buf[:0], data, nil), sum)
}

// deriver gives the derived keys of a key for a usage: a *KeyCache (nil or
// not) or a *SessionKeys.
type deriver interface {
	keys(et *aesEtype, key []byte, usage uint32, what need) (*derived, error)
	slots(d *derived) (ki, kc macSlot)
}

// SessionKeys does the cryptography of keys used for one request only (a TGT
// session key, an authenticator subkey): nothing is kept beyond the request,
// but the AES key schedule of each base key is made once and shared by its
// usages (a TGS exchange uses the TGT session key three times: usage 7, 6 and
// 8). The zero value is ready; it is not safe for concurrent use.
type SessionKeys struct {
	base [2]struct {
		key []byte
		blk cipher.Block
	}
	n int
}

func (s *SessionKeys) keys(et *aesEtype, key []byte, usage uint32, what need) (*derived, error) {
	if s == nil || et.rfc8009 {
		return deriveKeys(et, key, usage, what)
	}
	for i := 0; i < s.n; i++ {
		if subtle.ConstantTimeCompare(s.base[i].key, key) == 1 {
			return deriveKeysWith(et, key, s.base[i].blk, usage, what)
		}
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if s.n < len(s.base) {
		s.base[s.n].key, s.base[s.n].blk = key, blk
		s.n++
	}
	return deriveKeysWith(et, key, blk, usage, what)
}

// slots: no HMAC outlives a session key's use.
func (s *SessionKeys) slots(*derived) (ki, kc macSlot) { return macSlot{}, macSlot{} }

// Encrypt is KeyCache.Encrypt for a session key or subkey.
func (s *SessionKeys) Encrypt(key types.EncryptionKey, usage uint32, plaintext []byte, kvno int) (types.EncryptedData, error) {
	return encrypt(s, key, usage, plaintext, kvno)
}

// Decrypt is KeyCache.Decrypt for a session key or subkey.
func (s *SessionKeys) Decrypt(ed types.EncryptedData, key types.EncryptionKey, usage uint32) ([]byte, error) {
	return decrypt(s, ed, key, usage)
}

// Checksum is KeyCache.Checksum for a session key or subkey.
func (s *SessionKeys) Checksum(key types.EncryptionKey, usage uint32, data []byte) (int32, []byte, error) {
	return checksum(s, key, usage, data)
}

// VerifyChecksum is KeyCache.VerifyChecksum for a session key or subkey.
func (s *SessionKeys) VerifyChecksum(key types.EncryptionKey, usage uint32, data, sum []byte) bool {
	return verifyChecksum(s, key, usage, data, sum)
}
