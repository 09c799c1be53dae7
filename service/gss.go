package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/kerbkit/kerbkit/ticket"
)

// AcceptGSS accepts the initiator's first krb5 mechanism context token (RFC
// 4121 §4.1): a framed AP-REQ (TOK_ID 01 00, krb5 or legacy OID). Beyond
// Accept's checks, the authenticator must carry the 0x8003 checksum with
// Lgth 16; its flags become Context.GSSFlags, and delegation data is accepted
// and ignored. Channel bindings are not checked (the acceptor has none). The
// context is complete after this one token: the reply is the AP-REP token
// (TOK_ID 02 00) when the initiator asked for mutual authentication, else
// nil. On failure the reply is a KRB-ERROR token (TOK_ID 03 00) to send back
// and the error an *APError.
func (a *Acceptor) AcceptGSS(ctx context.Context, token []byte) (*Context, []byte, error) {
	c, reply, aerr := a.acceptGSS(token)
	a.logResult(ctx, "gss-krb5", c, aerr)
	if aerr != nil {
		return nil, reply, aerr
	}
	return c, reply, nil
}

// acceptGSS is AcceptGSS without the log line.
func (a *Acceptor) acceptGSS(token []byte) (*Context, []byte, *APError) {
	mech, _, err := ticket.ParseGSSToken(token)
	if err != nil {
		return nil, nil, apErr(errorcode.KRB_ERR_GENERIC, "not a GSS-API initial context token: %v", err)
	}
	id, msg, err := ticket.ParseKRB5Token(token)
	if err != nil {
		return nil, nil, apErr(errorcode.KRB_ERR_GENERIC, "not a krb5 context token: %v", err)
	}
	if id != ticket.TokIDAPReq {
		aerr := apErr(errorcode.KRB_AP_ERR_MSG_TYPE, "krb5 token with TOK_ID %04x, want 0100 (AP-REQ)", id)
		return nil, a.errorToken(aerr), aerr
	}
	c, rep, aerr := a.accept(msg, &gssChecksumStage)
	if aerr != nil {
		return nil, a.errorToken(aerr), aerr
	}
	c.Mech = mech
	if rep == nil {
		return c, nil, nil
	}
	return c, ticket.FrameKRB5Token(ticket.TokIDAPRep, rep), nil
}

// gssChecksumStage checks the authenticator's 0x8003 checksum (RFC 4121
// §4.1.1) before the replay cache sees it, and takes its flags.
var gssChecksumStage = apStage{"gss-checksum", func(_ *Acceptor, r *apRequest) *APError {
	ck := r.auth.Cksum
	if ck.CksumType != ticket.ChecksumTypeGSS {
		return apErr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "authenticator from %s has checksum type %d, want 0x8003 (GSS)", r.client, ck.CksumType)
	}
	gc, err := ticket.ParseGSSChecksum(ck.Checksum)
	if err != nil {
		return apErr(errorcode.KRB_AP_ERR_INAPP_CKSUM, "GSS checksum from %s: %v", r.client, err)
	}
	r.gssFlags = gc.Flags
	r.delegated = gc.Flags&ticket.GSSFlagDeleg != 0 && len(gc.Deleg) > 0
	return nil
}}

// errorToken frames an APError as a krb5 KRB-ERROR token; nil if encoding
// fails.
func (a *Acceptor) errorToken(aerr *APError) []byte {
	b, err := aerr.KRBError(a.now(), a.fallbackName())
	if err != nil {
		return nil
	}
	return ticket.FrameKRB5Token(ticket.TokIDError, b)
}

// AcceptSPNEGO accepts the initiator's first SPNEGO token (RFC 4178): a
// NegTokenInit whose first mechanism is krb5 (or Microsoft's legacy krb5 OID)
// with an optimistic krb5 AP-REQ token. On success the reply is a
// NegTokenResp {accept-completed, supportedMech = the initiator's krb5 OID,
// responseToken = the AP-REP token when mutual}. No mechListMIC is sent or
// required: RFC 4178 §5 makes it optional when the initiator's first mechanism
// is selected, and an initiator's MIC in the NegTokenInit is ignored. A
// NegTokenInit preferring another mechanism is rejected (a multi-leg
// renegotiation is not supported), as is a NegTokenResp as first token. On
// failure the reply is a NegTokenResp {reject} carrying the krb5 error token
// when there is one.
func (a *Acceptor) AcceptSPNEGO(ctx context.Context, token []byte) (*Context, []byte, error) {
	c, reply, aerr := a.acceptSPNEGO(token)
	a.logResult(ctx, "spnego-krb5", c, aerr)
	if aerr != nil {
		return nil, reply, aerr
	}
	return c, reply, nil
}

func (a *Acceptor) acceptSPNEGO(token []byte) (*Context, []byte, *APError) {
	reject := func(aerr *APError, mechTok []byte) (*Context, []byte, *APError) {
		resp, err := ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: ticket.NegStateReject, ResponseToken: mechTok})
		if err != nil {
			resp = nil
		}
		return nil, resp, aerr
	}
	init, _, err := ticket.ParseNegToken(token)
	if err != nil {
		return reject(apErr(errorcode.KRB_ERR_GENERIC, "not a SPNEGO token: %v", err), nil)
	}
	if init == nil {
		return reject(apErr(errorcode.KRB_ERR_GENERIC, "SPNEGO NegTokenResp without a NegTokenInit first"), nil)
	}
	if len(init.MechTypes) == 0 {
		return reject(apErr(errorcode.KRB_ERR_GENERIC, "SPNEGO NegTokenInit offers no mechanism"), nil)
	}
	first := init.MechTypes[0]
	if !isKRB5(first) {
		return reject(apErr(errorcode.KRB_ERR_GENERIC, "SPNEGO initiator prefers mechanism %v (offers %v); only krb5 as the first mechanism is supported", first, init.MechTypes), nil)
	}
	if len(init.MechToken) == 0 {
		return reject(apErr(errorcode.KRB_ERR_GENERIC, "SPNEGO NegTokenInit without a krb5 mechToken"), nil)
	}
	c, mechReply, aerr := a.acceptGSS(init.MechToken)
	if aerr != nil {
		return reject(aerr, mechReply)
	}
	c.SPNEGO = true
	resp, err := ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: ticket.NegStateAcceptCompleted, SupportedMech: first, ResponseToken: mechReply})
	if err != nil {
		return reject(apErr(errorcode.KRB_ERR_GENERIC, "encoding NegTokenResp: %v", err), nil)
	}
	return c, resp, nil
}

func isKRB5(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(ticket.OIDKRB5) || oid.Equal(ticket.OIDKRB5Legacy)
}

// MechOf returns the mechanism of an initial context token (its RFC 2743
// framing OID): ticket.OIDKRB5, OIDKRB5Legacy, OIDSPNEGO or anything else.
func MechOf(token []byte) (asn1.ObjectIdentifier, error) {
	mech, _, err := ticket.ParseGSSToken(token)
	return mech, err
}

// AcceptToken accepts an initial context token of either mechanism: krb5
// (AcceptGSS) or SPNEGO (AcceptSPNEGO), chosen by its framing OID.
func (a *Acceptor) AcceptToken(ctx context.Context, token []byte) (*Context, []byte, error) {
	mech, err := MechOf(token)
	switch {
	case err == nil && mech.Equal(ticket.OIDSPNEGO):
		return a.AcceptSPNEGO(ctx, token)
	case err == nil && isKRB5(mech):
		return a.AcceptGSS(ctx, token)
	case err == nil:
		aerr := apErr(errorcode.KRB_ERR_GENERIC, "unsupported GSS mechanism %v", mech)
		a.logResult(ctx, "gss", nil, aerr)
		return nil, nil, aerr
	default:
		aerr := apErr(errorcode.KRB_ERR_GENERIC, "not a GSS-API initial context token: %v", err)
		a.logResult(ctx, "gss", nil, aerr)
		return nil, nil, aerr
	}
}

// ErrSequence reports a per-message token whose sequence number is a replay,
// or out of order when the initiator asked for sequencing.
var ErrSequence = errors.New("service: GSS token out of sequence")

// Unwrap verifies the initiator's Wrap token (GSS_Unwrap, RFC 4121 §4.2.6.2),
// sealed or not, and returns the plaintext. With replay or sequence detection
// asked for in the context flags, the token's sequence number must not go
// back (replay) and, with sequence detection, must be the next one.
func (c *Context) Unwrap(token []byte) ([]byte, error) {
	msg, seq, err := ticket.UnwrapGSS(c.ProtocolKey(), token, false)
	if err != nil {
		return nil, fmt.Errorf("service: unwrap: %w", err)
	}
	if err := c.checkRecv(seq); err != nil {
		return nil, err
	}
	return msg, nil
}

// VerifyMIC checks the initiator's MIC token over msg (GSS_VerifyMIC), with
// the same sequence rules as Unwrap.
func (c *Context) VerifyMIC(msg, token []byte) error {
	seq, err := ticket.VerifyMIC(c.ProtocolKey(), msg, token, false)
	if err != nil {
		return fmt.Errorf("service: verify MIC: %w", err)
	}
	return c.checkRecv(seq)
}

// Wrap makes an acceptor Wrap token (GSS_Wrap) for msg, sealed when seal.
func (c *Context) Wrap(msg []byte, seal bool) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, err := ticket.WrapGSS(c.ProtocolKey(), msg, true, seal, c.sendSeq)
	if err != nil {
		return nil, fmt.Errorf("service: wrap: %w", err)
	}
	c.sendSeq++
	return tok, nil
}

// MakeMIC makes an acceptor MIC token over msg (GSS_GetMIC).
func (c *Context) MakeMIC(msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, err := ticket.MakeMIC(c.ProtocolKey(), msg, true, c.sendSeq)
	if err != nil {
		return nil, fmt.Errorf("service: MIC: %w", err)
	}
	c.sendSeq++
	return tok, nil
}

func (c *Context) checkRecv(seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.GSSFlags&(ticket.GSSFlagReplay|ticket.GSSFlagSequence) != 0 {
		if seq < c.recvSeq {
			return fmt.Errorf("%w: sequence number %d, expected %d (replayed or old token)", ErrSequence, seq, c.recvSeq)
		}
		if c.GSSFlags&ticket.GSSFlagSequence != 0 && seq != c.recvSeq {
			return fmt.Errorf("%w: sequence number %d, expected %d (tokens missing)", ErrSequence, seq, c.recvSeq)
		}
	}
	c.recvSeq = seq + 1
	return nil
}
