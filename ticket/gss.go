package ticket

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/kerbkit/kerbkit/principal"
	"math"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Mechanism OIDs (RFC 1964 §1, RFC 4178 §4.1 and appendix C).
var (
	// OIDKRB5 is the Kerberos V5 GSS-API mechanism, 1.2.840.113554.1.2.2.
	OIDKRB5 = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
	// OIDKRB5Legacy is Microsoft's mistyped krb5 OID, 1.2.840.48018.1.2.2, which
	// Windows-era SPNEGO peers offer and accept in place of OIDKRB5.
	OIDKRB5Legacy = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}
	// OIDSPNEGO is the SPNEGO pseudo-mechanism, 1.3.6.1.5.5.2.
	OIDSPNEGO = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}
)

// TOK_ID values of the krb5 mechanism's context tokens (RFC 4121 §4.1), and of
// its per-message tokens (RFC 4121 §4.2.6).
const (
	TokIDAPReq uint16 = 0x0100
	TokIDAPRep uint16 = 0x0200
	TokIDError uint16 = 0x0300
	TokIDMIC   uint16 = 0x0404
	TokIDWrap  uint16 = 0x0504
)

// Flags of the 0x8003 authenticator checksum (RFC 4121 §4.1.1.1, RFC 2744 §3.9.1).
const (
	GSSFlagDeleg    = 1
	GSSFlagMutual   = 2
	GSSFlagReplay   = 4
	GSSFlagSequence = 8
	GSSFlagConf     = 16
	GSSFlagInteg    = 32
)

// ChecksumTypeGSS is the checksum type of the GSS-API krb5 authenticator
// checksum (RFC 4121 §4.1.1). It is not a keyed checksum: the authenticator's
// encryption protects it.
const ChecksumTypeGSS int32 = 0x8003

// gssBindingsLength is the fixed Lgth of the 0x8003 checksum: the size of Bnd.
const gssBindingsLength = 16

// GSSChecksum is the content of the 0x8003 authenticator checksum (RFC 4121
// §4.1.1): Lgth (always 16) || Bnd || Flags [|| DlgOpt || Dlgth || Deleg], the
// integers little-endian. Bindings is all zero when the initiator has no
// channel bindings, otherwise the MD5 hash of them. DelegOpt and Deleg (a
// KRB-CRED) are present only when Flags has GSSFlagDeleg.
type GSSChecksum struct {
	Bindings [16]byte
	Flags    uint32
	DelegOpt uint16
	Deleg    []byte
}

// Marshal encodes the checksum data. The delegation fields are written only
// when Flags has GSSFlagDeleg; a zero DelegOpt is written as 1, the only value
// RFC 4121 defines. Deleg longer than 65535 bytes is truncated in Dlgth's view,
// so callers must not pass one (a KRB-CRED is a few kilobytes at most).
func (c GSSChecksum) Marshal() []byte {
	b := make([]byte, 0, 24+4+len(c.Deleg))
	b = binary.LittleEndian.AppendUint32(b, gssBindingsLength)
	b = append(b, c.Bindings[:]...)
	b = binary.LittleEndian.AppendUint32(b, c.Flags)
	if c.Flags&GSSFlagDeleg != 0 {
		opt := c.DelegOpt
		if opt == 0 {
			opt = 1
		}
		b = binary.LittleEndian.AppendUint16(b, opt)
		b = binary.LittleEndian.AppendUint16(b, uint16(min(len(c.Deleg), math.MaxUint16)))
		b = append(b, c.Deleg...)
	}
	return b
}

// ParseGSSChecksum decodes the data of a 0x8003 authenticator checksum. Lgth
// must be 16. The delegation fields are read when Flags has GSSFlagDeleg;
// anything after them (RFC 4121 §4.1.1.2 extensions) is ignored.
func ParseGSSChecksum(b []byte) (GSSChecksum, error) {
	var c GSSChecksum
	if len(b) < 24 {
		return c, fmt.Errorf("%w: GSS checksum of %d bytes, want at least 24", ErrDecode, len(b))
	}
	if l := binary.LittleEndian.Uint32(b); l != gssBindingsLength {
		return c, fmt.Errorf("%w: GSS checksum Lgth %d, want 16", ErrDecode, l)
	}
	copy(c.Bindings[:], b[4:20])
	c.Flags = binary.LittleEndian.Uint32(b[20:24])
	if c.Flags&GSSFlagDeleg == 0 {
		return c, nil
	}
	if len(b) < 28 {
		return c, fmt.Errorf("%w: GSS checksum has the delegation flag but no DlgOpt/Dlgth", ErrDecode)
	}
	c.DelegOpt = binary.LittleEndian.Uint16(b[24:26])
	n := int(binary.LittleEndian.Uint16(b[26:28]))
	if len(b)-28 < n {
		return c, fmt.Errorf("%w: GSS checksum Dlgth %d, only %d bytes follow", ErrDecode, n, len(b)-28)
	}
	c.Deleg = append([]byte(nil), b[28:28+n]...)
	return c, nil
}

// ---------------------------------------------------------------------------
// Initial context token framing (RFC 2743 §3.1).

// FrameGSSToken wraps inner in the RFC 2743 §3.1 InitialContextToken framing:
// 0x60 <DER length> 0x06 <OID length> <OID> inner.
func FrameGSSToken(mech asn1.ObjectIdentifier, inner []byte) ([]byte, error) {
	oid, err := asn1.Marshal(mech)
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding mechanism OID %v: %w", mech, err)
	}
	return derTLV(0x60, oid, inner), nil
}

// ParseGSSToken splits an RFC 2743 §3.1 framed token into its mechanism OID
// and the mechanism-specific rest. The outer length must cover b exactly.
func ParseGSSToken(b []byte) (mech asn1.ObjectIdentifier, inner []byte, err error) {
	tag, content, rest, err := readDER(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: GSS token: %w", ErrDecode, err)
	}
	if tag != 0x60 {
		return nil, nil, fmt.Errorf("%w: GSS token starts with 0x%02x, want 0x60", ErrDecode, tag)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: GSS token has %d bytes after its end", ErrDecode, len(rest))
	}
	tag, oidBytes, inner, err := readDER(content)
	if err != nil || tag != 0x06 || len(oidBytes) == 0 {
		return nil, nil, fmt.Errorf("%w: GSS token has no mechanism OID", ErrDecode)
	}
	oidLen := len(content) - len(inner)
	if _, err := asn1.Unmarshal(content[:oidLen], &mech); err != nil {
		return nil, nil, fmt.Errorf("%w: GSS token mechanism OID: %w", ErrDecode, err)
	}
	return mech, inner, nil
}

// FrameKRB5Token frames a Kerberos message as a krb5 mechanism context token
// (RFC 4121 §4.1): 0x60 <len> 06 09 <OIDKRB5> <TOK_ID, 2 bytes big-endian> msg.
// Both the AP-REQ and the AP-REP (and KRB-ERROR) tokens use this framing.
func FrameKRB5Token(tokID uint16, msg []byte) []byte {
	inner := make([]byte, 2, 2+len(msg))
	binary.BigEndian.PutUint16(inner, tokID)
	inner = append(inner, msg...)
	return derTLV(0x60, oidKRB5DER, inner)
}

// oidKRB5DER is the DER encoding of OIDKRB5, tag and length included.
var oidKRB5DER = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}

// ParseKRB5Token parses a framed krb5 mechanism context token, returning its
// TOK_ID and the Kerberos message. It accepts the krb5 OID and the legacy
// Microsoft one, and no other.
func ParseKRB5Token(b []byte) (tokID uint16, msg []byte, err error) {
	mech, inner, err := ParseGSSToken(b)
	if err != nil {
		return 0, nil, err
	}
	if !mech.Equal(OIDKRB5) && !mech.Equal(OIDKRB5Legacy) {
		return 0, nil, fmt.Errorf("%w: GSS token for mechanism %v, not krb5", ErrDecode, mech)
	}
	if len(inner) < 2 {
		return 0, nil, fmt.Errorf("%w: krb5 token has no TOK_ID", ErrDecode)
	}
	return binary.BigEndian.Uint16(inner), inner[2:], nil
}

// ---------------------------------------------------------------------------
// Per-message tokens (RFC 4121 §4.2).

// Flags of per-message tokens (RFC 4121 §4.2.2).
const (
	GSSTokenSentByAcceptor byte = 0x01
	GSSTokenSealed         byte = 0x02
	GSSTokenAcceptorSubkey byte = 0x04
)

// GSSKey is the key that protects a krb5 context's per-message tokens (RFC
// 4121 §2): the acceptor's subkey from the AP-REP when it sent one (then
// AcceptorSubkey is true and every token carries the AcceptorSubkey flag), else
// the initiator's subkey from the authenticator, else the ticket session key.
// Both directions use the same key. Only the RFC 3962/8009 AES enctypes (17,
// 18, 19, 20) have RFC 4121 tokens; others are refused.
type GSSKey struct {
	Key            types.EncryptionKey
	AcceptorSubkey bool
}

// flags returns the token flags for a sender.
func (k GSSKey) flags(acceptor bool) byte {
	var f byte
	if acceptor {
		f |= GSSTokenSentByAcceptor
	}
	if k.AcceptorSubkey {
		f |= GSSTokenAcceptorSubkey
	}
	return f
}

// cfxEtype returns the enctype of k if it has RFC 4121 per-message tokens and
// the key has the right size.
func (k GSSKey) cfxEtype() (etype.EType, error) {
	switch k.Key.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192:
	default:
		return nil, fmt.Errorf("ticket: no RFC 4121 per-message tokens for enctype %d", k.Key.KeyType)
	}
	et, err := crypto.GetEtype(k.Key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("ticket: enctype %d: %w", k.Key.KeyType, err)
	}
	if n := keySize(et); len(k.Key.KeyValue) != n {
		return nil, fmt.Errorf("ticket: enctype %d key of %d bytes, want %d", k.Key.KeyType, len(k.Key.KeyValue), n)
	}
	return et, nil
}

// keySize is the protocol key size of et in bytes (see principal.KeySize).
func keySize(et etype.EType) int { return principal.KeySize(et) }

// RandomKey returns a fresh random key of the given enctype (for subkeys and
// session keys). Unlike gokrb5's types.GenerateEncryptionKey it gives
// aes256-cts-hmac-sha384-192 its full 32 bytes.
func RandomKey(etypeID int32) (types.EncryptionKey, error) {
	k, err := principal.RandomKey(etypeID)
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("ticket: %w", err)
	}
	return k, nil
}

// checkFlags verifies a received token's direction and subkey flags.
func (k GSSKey) checkFlags(flags byte, fromAcceptor bool) error {
	if sent := flags&GSSTokenSentByAcceptor != 0; sent != fromAcceptor {
		if fromAcceptor {
			return fmt.Errorf("%w: token from the initiator where the acceptor's was expected", ErrGSSToken)
		}
		return fmt.Errorf("%w: token from the acceptor where the initiator's was expected (reflected?)", ErrGSSToken)
	}
	if sub := flags&GSSTokenAcceptorSubkey != 0; sub != k.AcceptorSubkey {
		if sub {
			return fmt.Errorf("%w: token protected by an acceptor subkey, but the acceptor asserted none", ErrGSSToken)
		}
		return fmt.Errorf("%w: token lacks the AcceptorSubkey flag, but the acceptor asserted a subkey", ErrGSSToken)
	}
	return nil
}

// ErrGSSToken reports a per-message token that is malformed or fails its
// integrity check (GSS_S_DEFECTIVE_TOKEN / GSS_S_BAD_SIG).
var ErrGSSToken = errors.New("ticket: bad GSS per-message token")

// wrapUsage and micUsage are the RFC 4121 §2 key usages of a sender.
func wrapUsage(acceptor bool) uint32 {
	if acceptor {
		return keyusage.GSSAPI_ACCEPTOR_SEAL // 22
	}
	return keyusage.GSSAPI_INITIATOR_SEAL // 24
}

func micUsage(acceptor bool) uint32 {
	if acceptor {
		return keyusage.GSSAPI_ACCEPTOR_SIGN // 23
	}
	return keyusage.GSSAPI_INITIATOR_SIGN // 25
}

// wrapHeader builds the 16-byte Wrap token header (RFC 4121 §4.2.6.2).
func wrapHeader(flags byte, ec, rrc uint16, seq uint64) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:2], TokIDWrap)
	h[2] = flags
	h[3] = 0xff
	binary.BigEndian.PutUint16(h[4:6], ec)
	binary.BigEndian.PutUint16(h[6:8], rrc)
	binary.BigEndian.PutUint64(h[8:16], seq)
	return h
}

// WrapGSS builds an RFC 4121 §4.2.6.2 Wrap token (GSS_Wrap) for plaintext,
// sent by the acceptor when acceptor is true, with sequence number seq.
//
// With seal, the token is confidential (§4.2.4): header || E(plaintext ||
// header), encrypted under key usage 22 (acceptor) or 24 (initiator) with EC =
// 0 filler bytes and RRC = 0. Without seal it is integrity-only: header ||
// plaintext || checksum over (plaintext || header with EC and RRC zeroed),
// with EC = the checksum length, using the same usages (RFC 4121 uses the SEAL
// usages for both kinds of Wrap token).
func WrapGSS(key GSSKey, plaintext []byte, acceptor, seal bool, seq uint64) ([]byte, error) {
	et, err := key.cfxEtype()
	if err != nil {
		return nil, err
	}
	flags := key.flags(acceptor)
	usage := wrapUsage(acceptor)
	if seal {
		flags |= GSSTokenSealed
		hdr := wrapHeader(flags, 0, 0, seq)
		inner := make([]byte, 0, len(plaintext)+16)
		inner = append(append(inner, plaintext...), hdr...)
		_, ct, err := et.EncryptMessage(key.Key.KeyValue, inner, usage)
		if err != nil {
			return nil, fmt.Errorf("ticket: sealing wrap token: %w", err)
		}
		return append(hdr, ct...), nil
	}
	ck, err := et.GetChecksumHash(key.Key.KeyValue, append(append([]byte(nil), plaintext...), wrapHeader(flags, 0, 0, seq)...), usage)
	if err != nil {
		return nil, fmt.Errorf("ticket: wrap token checksum: %w", err)
	}
	tok := wrapHeader(flags, uint16(len(ck)), 0, seq)
	tok = append(tok, plaintext...)
	return append(tok, ck...), nil
}

// UnwrapGSS verifies a Wrap token (GSS_Unwrap) sent by the acceptor when
// fromAcceptor is true, else by the initiator, and returns its plaintext and
// sequence number. It handles sealed and integrity-only tokens and any right
// rotation count (RRC), as Windows and Heimdal send non-zero ones. The token's
// direction and AcceptorSubkey flags must match fromAcceptor and key.
// Sequence numbers are returned, not checked: replay and ordering detection
// is the caller's.
func UnwrapGSS(key GSSKey, token []byte, fromAcceptor bool) ([]byte, uint64, error) {
	et, err := key.cfxEtype()
	if err != nil {
		return nil, 0, err
	}
	if len(token) < 16 {
		return nil, 0, fmt.Errorf("%w: wrap token of %d bytes is shorter than its header", ErrGSSToken, len(token))
	}
	if id := binary.BigEndian.Uint16(token); id != TokIDWrap {
		return nil, 0, fmt.Errorf("%w: TOK_ID %04x, want %04x (Wrap)", ErrGSSToken, id, TokIDWrap)
	}
	flags := token[2]
	if err := key.checkFlags(flags, fromAcceptor); err != nil {
		return nil, 0, err
	}
	if token[3] != 0xff {
		return nil, 0, fmt.Errorf("%w: wrap token filler 0x%02x, want 0xff", ErrGSSToken, token[3])
	}
	ec := int(binary.BigEndian.Uint16(token[4:6]))
	rrc := int(binary.BigEndian.Uint16(token[6:8]))
	seq := binary.BigEndian.Uint64(token[8:16])
	body := token[16:]
	if rrc != 0 && len(body) > 0 {
		// Undo the right rotation: the last rrc bytes were moved to the front.
		r := rrc % len(body)
		body = append(append(make([]byte, 0, len(body)), body[r:]...), body[:r]...)
	}
	usage := wrapUsage(fromAcceptor)
	if flags&GSSTokenSealed != 0 {
		inner, err := decryptChecked(et, key.Key.KeyValue, body, usage)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrGSSToken, err)
		}
		if len(inner) < ec+16 {
			return nil, 0, fmt.Errorf("%w: sealed wrap token too short for EC %d and its header", ErrGSSToken, ec)
		}
		hdr := inner[len(inner)-16:]
		want := wrapHeader(flags, uint16(ec), 0, seq)
		if !bytes.Equal(hdr, want) {
			return nil, 0, fmt.Errorf("%w: encrypted header does not match the token header", ErrGSSToken)
		}
		return inner[:len(inner)-16-ec], seq, nil
	}
	cklen := et.GetHMACBitLength() / 8
	if ec != cklen || len(body) < cklen {
		return nil, 0, fmt.Errorf("%w: integrity wrap token EC %d, want %d", ErrGSSToken, ec, cklen)
	}
	plain, ck := body[:len(body)-cklen], body[len(body)-cklen:]
	want, err := et.GetChecksumHash(key.Key.KeyValue, append(append([]byte(nil), plain...), wrapHeader(flags, 0, 0, seq)...), usage)
	if err != nil {
		return nil, 0, fmt.Errorf("ticket: wrap token checksum: %w", err)
	}
	if !hmac.Equal(ck, want) {
		return nil, 0, fmt.Errorf("%w: wrap token checksum mismatch", ErrGSSToken)
	}
	return append([]byte(nil), plain...), seq, nil
}

// MakeMIC builds an RFC 4121 §4.2.6.1 MIC token (GSS_GetMIC) over msg, sent by
// the acceptor when acceptor is true, with sequence number seq: key usage 23
// (acceptor) or 25 (initiator). It uses gokrb5's gssapi.MICToken.
func MakeMIC(key GSSKey, msg []byte, acceptor bool, seq uint64) ([]byte, error) {
	if _, err := key.cfxEtype(); err != nil {
		return nil, err
	}
	t := gssapi.MICToken{Flags: key.flags(acceptor), SndSeqNum: seq, Payload: append([]byte{}, msg...)}
	if err := t.SetChecksum(key.Key, micUsage(acceptor)); err != nil {
		return nil, fmt.Errorf("ticket: MIC token checksum: %w", err)
	}
	b, err := t.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ticket: encoding MIC token: %w", err)
	}
	return b, nil
}

// VerifyMIC checks a MIC token (GSS_VerifyMIC) over msg, sent by the acceptor
// when fromAcceptor is true, and returns its sequence number.
func VerifyMIC(key GSSKey, msg, token []byte, fromAcceptor bool) (uint64, error) {
	et, err := key.cfxEtype()
	if err != nil {
		return 0, err
	}
	var t gssapi.MICToken
	if err := t.Unmarshal(token, fromAcceptor); err != nil {
		return 0, fmt.Errorf("%w: MIC token: %v", ErrGSSToken, err)
	}
	if err := key.checkFlags(t.Flags, fromAcceptor); err != nil {
		return 0, err
	}
	if t.Flags&GSSTokenSealed != 0 {
		return 0, fmt.Errorf("%w: MIC token has the Sealed flag", ErrGSSToken)
	}
	if len(t.Checksum) != et.GetHMACBitLength()/8 {
		return 0, fmt.Errorf("%w: MIC checksum of %d bytes, want %d", ErrGSSToken, len(t.Checksum), et.GetHMACBitLength()/8)
	}
	t.Payload = append([]byte{}, msg...)
	if ok, err := t.Verify(key.Key, micUsage(fromAcceptor)); !ok || err != nil {
		return 0, fmt.Errorf("%w: MIC checksum mismatch", ErrGSSToken)
	}
	return t.SndSeqNum, nil
}

// Decrypt decrypts an RFC 3961 ciphertext with key and usage, checking its
// integrity. Unlike gokrb5's crypto.DecryptMessage it refuses ciphertexts too
// short to hold a confounder and a checksum instead of panicking on them, so
// it is safe on network bytes.
func Decrypt(key types.EncryptionKey, ciphertext []byte, usage uint32) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("ticket: enctype %d: %w", key.KeyType, err)
	}
	if n := keySize(et); len(key.KeyValue) != n {
		return nil, fmt.Errorf("ticket: enctype %d key of %d bytes, want %d", key.KeyType, len(key.KeyValue), n)
	}
	return decryptChecked(et, key.KeyValue, ciphertext, usage)
}

// decryptChecked is Decrypt once the enctype is known.
func decryptChecked(et etype.EType, key, ciphertext []byte, usage uint32) (b []byte, err error) {
	minLen := et.GetConfounderByteSize() + et.GetHMACBitLength()/8
	if bs := et.GetMessageBlockByteSize(); bs > 1 && minLen < bs+et.GetHMACBitLength()/8 {
		minLen = bs + et.GetHMACBitLength()/8
	}
	if len(ciphertext) < minLen {
		return nil, fmt.Errorf("ciphertext of %d bytes is too short for enctype %d (at least %d)", len(ciphertext), et.GetETypeID(), minLen)
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("decrypting with enctype %d: %v", et.GetETypeID(), r)
		}
	}()
	b, err = et.DecryptMessage(key, ciphertext, usage)
	if err != nil {
		return nil, fmt.Errorf("decrypting with enctype %d: %w", et.GetETypeID(), err)
	}
	return b, nil
}

// ---------------------------------------------------------------------------
// Minimal DER, for the framings gofork's asn1 cannot express.

// derTLV encodes one element with a single-byte tag around the concatenated
// contents.
func derTLV(tag byte, contents ...[]byte) []byte {
	n := 0
	for _, c := range contents {
		n += len(c)
	}
	b := make([]byte, 0, 1+5+n)
	b = append(b, tag)
	b = appendDERLength(b, n)
	for _, c := range contents {
		b = append(b, c...)
	}
	return b
}

// appendDERLength appends a DER definite length.
func appendDERLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// readDER reads one element with a single-byte tag and a definite length.
// Long-form lengths of up to 4 bytes are accepted; the indefinite form and
// multi-byte tags are not.
func readDER(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("truncated element")
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("multi-byte tag 0x%02x", tag)
	}
	l, off := int(b[1]), 2
	if l&0x80 != 0 {
		k := l & 0x7f
		if k == 0 {
			return 0, nil, nil, errors.New("indefinite length")
		}
		if k > 4 || len(b) < 2+k {
			return 0, nil, nil, errors.New("bad length")
		}
		l = 0
		for _, c := range b[2 : 2+k] {
			l = l<<8 | int(c)
		}
		off += k
		if l < 0 {
			return 0, nil, nil, errors.New("bad length")
		}
	}
	if len(b)-off < l {
		return 0, nil, nil, fmt.Errorf("element of %d bytes, only %d present", l, len(b)-off)
	}
	return tag, b[off : off+l], b[off+l:], nil
}
