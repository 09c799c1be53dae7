package client

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// DefaultGSSFlags are the context flags the initiator asks for in the GSS checksum when APOptions.GSSFlags is
// zero: mutual authentication, replay and sequence detection, confidentiality and integrity [RFC 4121 §4.1.1.1].
const DefaultGSSFlags = ticket.GSSFlagMutual | ticket.GSSFlagReplay | ticket.GSSFlagSequence | ticket.GSSFlagConf | ticket.GSSFlagInteg

// ErrMutualFailed is wrapped by every error that means the server did not prove it holds the service key: an
// AP-REP that does not decrypt with the ticket session key, or whose ctime/cusec differ from our authenticator's
// [RFC 4120 §3.2.5]. MIT reports the same condition as KRB5_MUTUAL_FAILED.
var ErrMutualFailed = errors.New("server failed mutual authentication")

// mutualError is an ErrMutualFailed with the reason.
type mutualError struct {
	reason string
	err    error
}

func (e *mutualError) Error() string {
	if e.err != nil {
		return ErrMutualFailed.Error() + ": " + e.reason + ": " + e.err.Error()
	}
	return ErrMutualFailed.Error() + ": " + e.reason
}

func (e *mutualError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrMutualFailed, e.err}
	}
	return []error{ErrMutualFailed}
}

// APOptions configure NewAPRequest.
type APOptions struct {
	// GSSFlags are the context flags carried in the 0x8003 authenticator checksum; zero means DefaultGSSFlags.
	// GSSFlagMutual also sets the ap-option mutual-required, so that the server answers with an AP-REP.
	GSSFlags uint32
	// NoMutual asks for no AP-REP: GSSFlagMutual is cleared and mutual-required is not set.
	NoMutual bool
	// Now is the local clock; nil means time.Now.
	Now func() time.Time
	// TimeOffset is added to the local clock for the authenticator's ctime: the KDC clock offset stored in the
	// credential cache, as MIT applies it.
	TimeOffset time.Duration
}

// APContext is the initiator side of one application exchange: the AP-REQ we send (message G) and what the
// server's AP-REP (message H) proved. It also carries the keys and sequence numbers that RFC 4121 per-message
// tokens need afterwards. An APContext is not safe for concurrent use.
type APContext struct {
	// Client and Server are the principals of the service ticket.
	Client, Server principal.Name
	// SessionKey is the ticket session key (the client/server session key of message F). It encrypts the
	// authenticator (key usage 11) and the AP-REP (key usage 12).
	SessionKey types.EncryptionKey
	// Subkey is the fresh initiator subkey sent in the authenticator.
	Subkey types.EncryptionKey
	// Seq is the initiator's initial sequence number, sent in the authenticator.
	Seq uint32
	// CTime and Cusec are the authenticator's timestamp, which the AP-REP must echo.
	CTime time.Time
	Cusec int
	// GSSFlags are the context flags sent in the GSS checksum.
	GSSFlags uint32
	// Mutual is true when the AP-REQ has mutual-required: an AP-REP is expected.
	Mutual bool
	// Request is the DER AP-REQ as sent [RFC 4120 §5.5.1].
	Request []byte

	// Set by VerifyAPRep.

	// Established is true once the context is complete: after a verified AP-REP, or at once when !Mutual.
	Established bool
	// Reply is the decrypted AP-REP part.
	Reply ticket.APRepPart
	// AcceptorSubkey is the subkey the server asserted in its AP-REP; KeyType 0 when it sent none.
	AcceptorSubkey types.EncryptionKey
	// AcceptorSeq is the server's initial sequence number, from the AP-REP (HasAcceptorSeq false if absent).
	AcceptorSeq    uint32
	HasAcceptorSeq bool

	// sendSeq and recvSeq are the next per-message sequence numbers. Without an AP-REP seq-number the acceptor
	// counts from ours.
	sendSeq, recvSeq uint64
}

// RejectedError is a KRB-ERROR the application server sent instead of an AP-REP: it refused our AP-REQ (for
// example KRB_AP_ERR_BAD_INTEGRITY when its keytab does not hold the key the ticket was issued under).
// errors.As also finds the *KDCError inside.
type RejectedError struct {
	Server principal.Name
	*KDCError
}

// Error says which server refused and why, in MIT words.
func (e *RejectedError) Error() string {
	s := fmt.Sprintf("server %s rejected our authentication: %s (%s, code %d", e.Server, e.Text(), e.Name(), e.Code)
	if e.EText != "" {
		s += fmt.Sprintf(", e-text %q", e.EText)
	}
	return s + ")"
}

// Unwrap returns the KRB-ERROR as a *KDCError.
func (e *RejectedError) Unwrap() error { return e.KDCError }

// NewAPRequest builds an AP-REQ (message G) for the service ticket in cred: an authenticator with the client
// name and realm, ctime/cusec, a fresh initiator subkey of the session key's enctype, a random sequence number
// and the GSS checksum 0x8003 (zero channel bindings, o.GSSFlags), encrypted with the ticket session key under
// key usage 11. The ap-options carry mutual-required unless o.NoMutual.
func NewAPRequest(cred ticket.Credential, o APOptions) (*APContext, error) {
	if len(cred.Ticket) == 0 {
		return nil, errors.New("client: credential has no ticket")
	}
	if cred.IsSKey || len(cred.SecondTicket) > 0 {
		return nil, errors.New("client: user-to-user tickets are not supported")
	}
	tkt, ok := decodeServiceTicket(cred.Ticket)
	if !ok {
		return nil, fmt.Errorf("client: the ticket for %s does not decode", cred.Server)
	}
	if tkt.Realm != cred.Server.Realm || !sameComponents(tkt.SName.NameString, cred.Server.Components) {
		// Referrals may legitimately differ; say which server the ticket is really for.
		cred.Server = principal.FromPrincipalName(tkt.SName, tkt.Realm)
	}
	et, err := crypto.GetEtype(cred.Key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("client: session key of the ticket for %s: %w", cred.Server, err)
	}
	if len(cred.Key.KeyValue) != principal.KeySize(et) {
		return nil, fmt.Errorf("client: session key of the ticket for %s has %d bytes, want %d for %s",
			cred.Server, len(cred.Key.KeyValue), principal.KeySize(et), principal.EnctypeName(cred.Key.KeyType))
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now().Add(o.TimeOffset).UTC()
	if !cred.EndTime.IsZero() && !t.Before(cred.EndTime) {
		return nil, fmt.Errorf("client: the ticket for %s expired at %s", cred.Server, cred.EndTime.Local().Format(time.RFC3339))
	}

	gssFlags := o.GSSFlags
	if gssFlags == 0 {
		gssFlags = DefaultGSSFlags
	}
	if o.NoMutual {
		gssFlags &^= ticket.GSSFlagMutual
	}
	mutual := gssFlags&ticket.GSSFlagMutual != 0

	subkey, err := principal.RandomKey(cred.Key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("client: random subkey: %w", err)
	}
	seq, err := randomSeq()
	if err != nil {
		return nil, err
	}
	a := &APContext{
		Client:     cred.Client,
		Server:     cred.Server,
		SessionKey: cred.Key,
		Subkey:     subkey,
		Seq:        seq,
		CTime:      ticket.KerberosTime(t),
		Cusec:      t.Nanosecond() / 1000,
		GSSFlags:   gssFlags,
		Mutual:     mutual,
	}
	auth := types.Authenticator{
		AVNO:   iana.PVNO,
		CRealm: cred.Client.Realm,
		CName:  cred.Client.PrincipalName(),
		Cksum: types.Checksum{
			CksumType: ticket.ChecksumTypeGSS,
			Checksum:  ticket.GSSChecksum{Flags: gssFlags}.Marshal(),
		},
		Cusec:     a.Cusec,
		CTime:     a.CTime,
		SubKey:    a.Subkey,
		SeqNumber: int64(seq),
	}
	plain, err := auth.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: encode authenticator: %w", err)
	}
	enc, err := crypto.GetEncryptedData(plain, cred.Key, keyusage.AP_REQ_AUTHENTICATOR, 0)
	if err != nil {
		return nil, fmt.Errorf("client: encrypt authenticator: %w", err)
	}
	var opts asn1.BitString
	if mutual {
		opts = ticket.Flags(flags.APOptionMutualRequired)
	} else {
		opts = ticket.Flags()
	}
	der, err := asn1.Marshal(ticket.APReqWire{
		PVNO:          iana.PVNO,
		MsgType:       msgtype.KRB_AP_REQ,
		APOptions:     opts,
		Ticket:        asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 3, IsCompound: true, Bytes: cred.Ticket},
		Authenticator: enc,
	})
	if err != nil {
		return nil, fmt.Errorf("client: encode AP-REQ: %w", err)
	}
	a.Request = asn1tools.AddASNAppTag(der, asnAppTag.APREQ)
	a.sendSeq, a.recvSeq = uint64(seq), uint64(seq)
	a.Established = !mutual
	return a, nil
}

// randomSeq returns a random non-zero 30-bit sequence number. Keeping the top bits clear avoids peers that
// (wrongly) decode the UInt32 as a signed value.
func randomSeq() (uint32, error) {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("client: random sequence number: %w", err)
		}
		if s := binary.BigEndian.Uint32(b[:]) & 0x3fffffff; s != 0 {
			return s, nil
		}
	}
}

// VerifyAPRep checks the server's AP-REP (message H) [RFC 4120 §3.2.5]: it must decrypt with the ticket session
// key (key usage 12) and echo our authenticator's ctime and cusec exactly. On success the acceptor subkey and
// sequence number are adopted and the context is established. A KRB-ERROR instead of an AP-REP is returned as
// an error wrapping *KDCError. Any other failure wraps ErrMutualFailed.
func (a *APContext) VerifyAPRep(b []byte) error {
	if a.Established && a.Mutual {
		return errors.New("client: context already established")
	}
	if len(b) > 0 && b[0] == tagKRBError {
		m, err := decodeKRBError(b)
		if err != nil {
			return &mutualError{reason: "undecodable KRB-ERROR instead of an AP-REP", err: err}
		}
		return &RejectedError{Server: a.Server, KDCError: kdcErrorFrom(m, a.Client.String(), a.Server.String())}
	}
	if len(b) == 0 || b[0] != 0x6f {
		return &mutualError{reason: "the server's token is not an AP-REP (" + describeTag(b) + ")"}
	}
	part, err := ticket.ParseAPRep(b, a.SessionKey)
	if err != nil {
		return &mutualError{reason: "AP-REP does not decrypt with the ticket session key", err: err}
	}
	if !part.CTime.Equal(a.CTime) || part.Cusec != a.Cusec {
		return &mutualError{reason: fmt.Sprintf("AP-REP ctime %s.%06d does not match our authenticator's %s.%06d",
			part.CTime.UTC().Format("2006-01-02T15:04:05"), part.Cusec, a.CTime.UTC().Format("2006-01-02T15:04:05"), a.Cusec)}
	}
	if part.SubKey.KeyType != 0 || len(part.SubKey.KeyValue) > 0 {
		et, err := crypto.GetEtype(part.SubKey.KeyType)
		if err != nil {
			return &mutualError{reason: "AP-REP acceptor subkey has an unsupported enctype", err: err}
		}
		if len(part.SubKey.KeyValue) != principal.KeySize(et) {
			return &mutualError{reason: fmt.Sprintf("AP-REP acceptor subkey has %d bytes, want %d", len(part.SubKey.KeyValue), principal.KeySize(et))}
		}
		a.AcceptorSubkey = part.SubKey
	}
	if part.HasSeq {
		if part.SeqNumber < 0 || part.SeqNumber > 0xffffffff {
			return &mutualError{reason: fmt.Sprintf("AP-REP sequence number %d is out of range", part.SeqNumber)}
		}
		a.AcceptorSeq, a.HasAcceptorSeq = uint32(part.SeqNumber), true
		a.recvSeq = uint64(part.SeqNumber)
	}
	a.Reply = part
	a.Established = true
	return nil
}

// HasAcceptorSubkey reports whether the server asserted its own subkey in the AP-REP.
func (a *APContext) HasAcceptorSubkey() bool { return a.AcceptorSubkey.KeyType != 0 }

// ProtocolKey returns the key of RFC 4121 per-message tokens: the acceptor's subkey if it asserted one
// (acceptorSubkey is then true and tokens carry the AcceptorSubkey flag), else our subkey [RFC 4121 §2].
func (a *APContext) ProtocolKey() (key types.EncryptionKey, acceptorSubkey bool) {
	if a.HasAcceptorSubkey() {
		return a.AcceptorSubkey, true
	}
	if a.Subkey.KeyType != 0 {
		return a.Subkey, false
	}
	return a.SessionKey, false
}

// decodeServiceTicket decodes a DER Ticket, surviving malformed input.
func decodeServiceTicket(der []byte) (tkt messages.Ticket, ok bool) {
	defer func() {
		if recover() != nil {
			tkt, ok = messages.Ticket{}, false
		}
	}()
	if err := tkt.Unmarshal(der); err != nil || len(tkt.SName.NameString) == 0 {
		return messages.Ticket{}, false
	}
	return tkt, true
}

// sameComponents compares principal name components.
func sameComponents(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// describeTag names the first octet of a token for error messages.
func describeTag(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	return fmt.Sprintf("first octet 0x%02x, %d bytes", b[0], len(b))
}
