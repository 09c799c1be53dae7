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
	"sync/atomic"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
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
	ki   []byte
	kc   []byte
	// One reusable HMAC per key: crypto/hmac keeps the padded-key states after
	// the first use, which saves two compression-function calls per message.
	macKi, macKc atomic.Pointer[hmacState]
}

type hmacState struct{ h hash.Hash }

// need says which derived keys to compute when nothing is cached.
type need uint8

const (
	needEnc need = 1 << iota // Ke and Ki
	needSum                  // Kc
)

// deriveKeys derives the keys of what from base for usage.
func deriveKeys(et *aesEtype, base []byte, usage uint32, what need) (*derived, error) {
	if len(base) != et.keyLen {
		return nil, fmt.Errorf("ticket: enctype %d key is %d bytes, want %d", et.id, len(base), et.keyLen)
	}
	d := &derived{et: et}
	var dk func(kind byte, n int) []byte
	if et.rfc8009 {
		dk = func(kind byte, n int) []byte { return kdfHMACSHA2(et.hash, base, usage, kind, n) }
	} else {
		b, err := aes.NewCipher(base)
		if err != nil {
			return nil, err
		}
		dk = func(kind byte, n int) []byte { return dkAES(b, usage, kind, n) }
	}
	if what&needEnc != 0 {
		ke := dk(kindKe, et.keyLen)
		b, err := aes.NewCipher(ke)
		clear(ke)
		if err != nil {
			return nil, err
		}
		d.ke = b
		d.ki = dk(kindKi, et.kiLen)
	}
	if what&needSum != 0 {
		d.kc = dk(kindKc, et.kiLen)
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

// dkAES is DK(base, usage|kind) of RFC 3961 §5.1 for AES (RFC 3962 §4): the label
// n-folded to one block, encrypted with the base key, and each output block
// encrypted again until n bytes; random-to-key is the identity for AES.
func dkAES(base cipher.Block, usage uint32, kind byte, n int) []byte {
	label := usageLabel(usage, kind)
	out := make([]byte, 0, n+aes.BlockSize)
	var blk [aes.BlockSize]byte
	copy(blk[:], nfold(label[:], aes.BlockSize))
	for len(out) < n {
		// The CTS "encryption" of one block with a zero IV is the block cipher.
		base.Encrypt(blk[:], blk[:])
		out = append(out, blk[:]...)
	}
	return out[:n]
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
// no longer than one hash: HMAC(base, 00000001 | label | 00 | k) truncated,
// with k the output length in bits as 4 bytes big-endian.
func kdfHMACSHA2(h func() hash.Hash, base []byte, usage uint32, kind byte, n int) []byte {
	label := usageLabel(usage, kind)
	m := hmac.New(h, base)
	var msg [4 + 5 + 1 + 4]byte
	binary.BigEndian.PutUint32(msg[0:4], 1)
	copy(msg[4:9], label[:])
	msg[9] = 0
	binary.BigEndian.PutUint32(msg[10:14], uint32(8*n))
	m.Write(msg[:])
	return m.Sum(nil)[:n]
}

// mac runs one HMAC with key over the parts, appending the truncated result to
// dst. slot, when not nil, keeps one HMAC for reuse.
func (d *derived) mac(slot *atomic.Pointer[hmacState], key []byte, dst []byte, parts ...[]byte) []byte {
	var st *hmacState
	if slot != nil {
		st = slot.Swap(nil)
	}
	if st == nil {
		st = &hmacState{h: hmac.New(d.et.hash, key)}
	} else {
		st.h.Reset()
	}
	for _, p := range parts {
		st.h.Write(p)
	}
	var sum [sha512.Size384]byte
	full := st.h.Sum(sum[:0])
	dst = append(dst, full[:d.et.macLen]...)
	if slot != nil {
		slot.Store(st)
	}
	return dst
}

// seal encrypts plaintext behind confounder and appends the MAC (RFC 3962 §6,
// RFC 8009 §5). confounder is one block; tests pass the RFC's.
func (d *derived) seal(confounder, plaintext []byte, slot *atomic.Pointer[hmacState]) []byte {
	n := confounderLen + len(plaintext)
	out := make([]byte, n, n+d.et.macLen)
	copy(out, confounder)
	copy(out[confounderLen:], plaintext)
	if d.et.rfc8009 {
		ctsEncrypt(d.ke, out)
		var iv [aes.BlockSize]byte
		return d.mac(slot, d.ki, out, iv[:], out)
	}
	var buf [sha512.Size384]byte
	tag := d.mac(slot, d.ki, buf[:0], out)
	ctsEncrypt(d.ke, out)
	return append(out, tag...)
}

// open checks and decrypts ct, returning the plaintext without the confounder.
func (d *derived) open(ct []byte, slot *atomic.Pointer[hmacState]) ([]byte, error) {
	if len(ct) < confounderLen+d.et.macLen {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is too short", ErrIntegrity, len(ct))
	}
	body, tag := ct[:len(ct)-d.et.macLen], ct[len(ct)-d.et.macLen:]
	var buf [sha512.Size384]byte
	if d.et.rfc8009 {
		var iv [aes.BlockSize]byte
		if !hmac.Equal(d.mac(slot, d.ki, buf[:0], iv[:], body), tag) {
			return nil, ErrIntegrity
		}
		out := append([]byte(nil), body...)
		ctsDecrypt(d.ke, out)
		return out[confounderLen:], nil
	}
	out := append([]byte(nil), body...)
	ctsDecrypt(d.ke, out)
	if !hmac.Equal(d.mac(slot, d.ki, buf[:0], out), tag) {
		return nil, ErrIntegrity
	}
	return out[confounderLen:], nil
}

// ctsEncrypt is AES-CTS with a zero IV in place (RFC 3962 §5: CBC with the last
// two blocks swapped and the last one truncated). len(buf) must be at least one
// block.
func ctsEncrypt(b cipher.Block, buf []byte) {
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
	var prev [bs]byte // the IV, then C[i]
	for i := 0; i < m-1; i++ {
		blk := buf[bs*i : bs*(i+1)]
		subtle.XORBytes(blk, blk, prev[:])
		b.Encrypt(blk, blk)
		copy(prev[:], blk)
	}
	var last [bs]byte             // prev is C[m-1]
	copy(last[:], buf[bs*(m-1):]) // P[m] padded with zeros
	subtle.XORBytes(last[:], last[:], prev[:])
	b.Encrypt(last[:], last[:]) // C[m]
	copy(buf[bs*(m-2):], last[:])
	copy(buf[bs*(m-1):], prev[:r])
}

// ctsDecrypt undoes ctsEncrypt in place. len(buf) must be at least one block.
func ctsDecrypt(b cipher.Block, buf []byte) {
	const bs = aes.BlockSize
	n := len(buf)
	if n == bs {
		b.Decrypt(buf, buf)
		return
	}
	m := (n + bs - 1) / bs
	r := n - bs*(m-1)
	// On the wire: C[1..m-2], C[m], C[m-1] truncated to r bytes.
	var d, cm1, prev [bs]byte
	b.Decrypt(d[:], buf[bs*(m-2):bs*(m-1)]) // (P[m] | zeros) XOR C[m-1]
	copy(cm1[:r], buf[bs*(m-1):])
	copy(cm1[r:], d[r:]) // the truncated bytes of C[m-1] are what the zeros left
	var pm [bs]byte
	subtle.XORBytes(pm[:r], d[:r], cm1[:r])
	if m > 2 {
		copy(prev[:], buf[bs*(m-3):bs*(m-2)]) // C[m-2]
	}
	var pm1 [bs]byte
	b.Decrypt(pm1[:], cm1[:])
	subtle.XORBytes(pm1[:], pm1[:], prev[:])
	// CBC decryption of C[1..m-2], last block first so that each block's
	// predecessor is still ciphertext when it is needed.
	for i := m - 3; i >= 0; i-- {
		blk := buf[bs*i : bs*(i+1)]
		b.Decrypt(blk, blk)
		if i > 0 {
			subtle.XORBytes(blk, blk, buf[bs*(i-1):bs*i])
		}
	}
	copy(buf[bs*(m-2):], pm1[:])
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

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheID]*derived
	_  [32]byte // 64 bytes in all: neighbouring shards' locks do not share a cache line
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
	c := &KeyCache{seed: maphash.MakeSeed(), perShard: maxEntries / n, shards: make([]cacheShard, n)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheID]*derived)
	}
	return c
}

// Len reports how many (key, usage) entries are cached.
func (c *KeyCache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
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
	s.mu.RLock()
	d := s.m[id]
	s.mu.RUnlock()
	if d != nil && subtle.ConstantTimeCompare(d.base, key) == 1 {
		return d, nil
	}
	d, err := deriveKeys(et, key, usage, needEnc|needSum)
	if err != nil {
		return nil, err
	}
	d.base = append([]byte(nil), key...)
	s.mu.Lock()
	if _, ok := s.m[id]; !ok && len(s.m) >= c.perShard {
		for victim := range s.m { // map order is unspecified: an arbitrary entry
			delete(s.m, victim)
			break
		}
	}
	s.m[id] = d // replaces a colliding entry, if any
	s.mu.Unlock()
	return d, nil
}

// slots returns the HMAC reuse slots: only cached entries outlive the call.
func (c *KeyCache) slots(d *derived) (ki, kc *atomic.Pointer[hmacState]) {
	if c == nil {
		return nil, nil
	}
	return &d.macKi, &d.macKc
}

// Encrypt encrypts plaintext with key for usage, as crypto.GetEncryptedData does.
func (c *KeyCache) Encrypt(key types.EncryptionKey, usage uint32, plaintext []byte, kvno int) (types.EncryptedData, error) {
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
	return et.cksum, d.mac(kc, d.kc, nil, data), nil
}

// VerifyChecksum reports whether sum is the key's keyed checksum over data for
// usage, compared in constant time.
func (c *KeyCache) VerifyChecksum(key types.EncryptionKey, usage uint32, data, sum []byte) bool {
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
	var buf [sha512.Size384]byte
	return hmac.Equal(d.mac(kc, d.kc, buf[:0], data), sum)
}
