package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"

	"github.com/kerbkit/kerbkit/ticket"
)

// Bounds of the GSS sample exchange.
const (
	// DefaultSampleTimeout bounds every read and write of the sample protocol when GSSSampleOptions.Timeout is 0.
	DefaultSampleTimeout = 30 * time.Second
	// MaxSampleToken is the largest token accepted from the server: AP-REPs and MIC tokens are a few hundred
	// bytes; a length beyond this means a confused or hostile peer.
	MaxSampleToken = 64 << 10
)

// ErrGSSToken is wrapped by errors about a context or per-message token that is not what the protocol allows.
var ErrGSSToken = errors.New("bad GSS token")

// InitialToken returns the initial context token carrying the AP-REQ [RFC 4121 §4.1, RFC 2743 §3.1]: the
// 0x60/krb5-OID framed token with TOK_ID 01 00, or with spnego a SPNEGO NegTokenInit offering krb5 alone with that
// token as its mechToken [RFC 4178 §4.2.1].
func (a *APContext) InitialToken(spnego bool) ([]byte, error) {
	krb5 := ticket.FrameKRB5Token(ticket.TokIDAPReq, a.Request)
	if !spnego {
		return krb5, nil
	}
	tok, err := ticket.MarshalNegTokenInit(ticket.NegTokenInit{
		MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5},
		MechToken: krb5,
	})
	if err != nil {
		return nil, fmt.Errorf("client: encode SPNEGO NegTokenInit: %w", err)
	}
	return tok, nil
}

// ResponseInfo says what a server's context token held.
type ResponseInfo struct {
	// SPNEGO is true when the token was a SPNEGO NegTokenResp.
	SPNEGO bool
	// NegState is the SPNEGO negState (0 accept-completed); only meaningful when SPNEGO.
	NegState int
	// SupportedMech is the mechanism the server chose (SPNEGO), or krb5 for a raw token.
	SupportedMech asn1.ObjectIdentifier
}

// AcceptToken processes the server's context token (message H): a 0x60-framed krb5 token carrying an AP-REP
// (TOK_ID 02 00) or a KRB-ERROR (03 00), or, when the initial token was SPNEGO, a NegTokenResp whose
// responseToken is such a token. The AP-REP is verified with VerifyAPRep. A SPNEGO answer must be
// accept-completed, name krb5 (or its legacy OID) if it names a mechanism, and carry the AP-REP.
func (a *APContext) AcceptToken(tok []byte, spnego bool) (ResponseInfo, error) {
	info := ResponseInfo{SupportedMech: ticket.OIDKRB5}
	inner := tok
	if spnego && len(tok) > 0 && tok[0] != 0x60 {
		_, resp, err := ticket.ParseNegToken(tok)
		if err != nil {
			return info, fmt.Errorf("client: %w: server's SPNEGO token does not decode: %v", ErrGSSToken, err)
		}
		if resp == nil {
			return info, fmt.Errorf("client: %w: server answered with a SPNEGO NegTokenInit, want NegTokenResp", ErrGSSToken)
		}
		info.SPNEGO, info.NegState = true, resp.NegState
		if len(resp.SupportedMech) > 0 {
			info.SupportedMech = resp.SupportedMech
			if !resp.SupportedMech.Equal(ticket.OIDKRB5) && !resp.SupportedMech.Equal(ticket.OIDKRB5Legacy) {
				return info, fmt.Errorf("client: %w: server chose mechanism %s, not Kerberos 5", ErrGSSToken, resp.SupportedMech)
			}
		}
		switch resp.NegState {
		case ticket.NegStateAcceptCompleted:
		case ticket.NegStateReject:
			if len(resp.ResponseToken) > 0 {
				// A reject often carries the mechanism's KRB-ERROR: report that.
				if err := a.acceptKRB5(resp.ResponseToken); err != nil {
					return info, err
				}
			}
			return info, errors.New("client: server rejected the SPNEGO negotiation (negState reject)")
		case ticket.NegStateAbsent:
			return info, fmt.Errorf("client: %w: SPNEGO NegTokenResp without negState", ErrGSSToken)
		default:
			return info, fmt.Errorf("client: %w: SPNEGO negState %d, want accept-completed (0): Kerberos needs no further round", ErrGSSToken, resp.NegState)
		}
		if len(resp.ResponseToken) == 0 {
			return info, &mutualError{reason: "SPNEGO NegTokenResp carries no responseToken (no AP-REP)"}
		}
		inner = resp.ResponseToken
	}
	return info, a.acceptKRB5(inner)
}

// acceptKRB5 unframes a krb5 context token and verifies the AP-REP or reports the KRB-ERROR in it.
func (a *APContext) acceptKRB5(tok []byte) error {
	id, msg, err := ticket.ParseKRB5Token(tok)
	if err != nil {
		return &mutualError{reason: "the server's token is not a Kerberos 5 GSS token", err: err}
	}
	switch id {
	case ticket.TokIDAPRep:
		return a.VerifyAPRep(msg)
	case ticket.TokIDError:
		if len(msg) == 0 || msg[0] != tagKRBError {
			return fmt.Errorf("client: %w: KRB-ERROR token without a KRB-ERROR (%s)", ErrGSSToken, describeTag(msg))
		}
		return a.VerifyAPRep(msg) // reports the error
	}
	return &mutualError{reason: fmt.Sprintf("the server's krb5 token has TOK_ID %04x, want an AP-REP (0200)", id)}
}

// GSSSampleOptions configure GSSSample.
type GSSSampleOptions struct {
	// SPNEGO wraps the AP-REQ in a SPNEGO NegTokenInit (gss-client -spnego).
	SPNEGO bool
	// Message is sent gss_wrap'ed and sealed after the context is established; nil sends no data token.
	Message []byte
	// Timeout bounds every read and write; zero means DefaultSampleTimeout.
	Timeout time.Duration
}

// GSSSampleResult tells what a GSS sample exchange proved.
type GSSSampleResult struct {
	// Context is the established context (keys, AP-REP contents).
	Context *APContext
	// Response says what the server's context token held.
	Response ResponseInfo
	// MessageSent is true when Message was sent as a sealed wrap token.
	MessageSent bool
	// MICVerified is true when the server's MIC over Message verified with the acceptor's key.
	MICVerified bool
	// MICSeq is the sequence number of the server's MIC token.
	MICSeq uint64
}

// DialGSSSample connects to a GSS sample server (MIT gss-server, or kservice) at addr over TCP and runs
// GSSSample on the connection, which it closes afterwards.
func DialGSSSample(ctx context.Context, addr string, a *APContext, o GSSSampleOptions) (*GSSSampleResult, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultSampleTimeout
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	defer conn.Close()
	return GSSSample(ctx, conn, a, o)
}

// GSSSample runs the initiator side of the MIT GSS sample protocol on conn with the AP-REQ of a:
//
//  1. send NOOP|CONTEXT_NEXT with an empty token;
//  2. send CONTEXT with the initial context token (InitialToken);
//  3. when mutual authentication was asked, read the server's CONTEXT token and verify it (AcceptToken);
//  4. when o.Message is set: send DATA|WRAPPED|ENCRYPTED|SEND_MIC with the message sealed in a wrap token, read
//     the server's MIC token and verify it over the message with the acceptor's key;
//  5. send NOOP with an empty token.
//
// Every read and write is bounded by o.Timeout and server tokens by MaxSampleToken. conn is not closed.
func GSSSample(ctx context.Context, conn net.Conn, a *APContext, o GSSSampleOptions) (*GSSSampleResult, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultSampleTimeout
	}
	stop := watchContext(ctx, conn)
	defer stop()
	s := &sampleConn{conn: conn, timeout: timeout, ctx: ctx}
	res := &GSSSampleResult{Context: a}

	tok, err := a.InitialToken(o.SPNEGO)
	if err != nil {
		return nil, err
	}
	if err := s.send(ticket.SampleNoop|ticket.SampleContextNext, nil); err != nil {
		return nil, err
	}
	if err := s.send(ticket.SampleContext, tok); err != nil {
		return nil, err
	}
	if a.Mutual {
		flags, reply, err := s.recv()
		if err != nil {
			return nil, fmt.Errorf("client: reading the server's context token: %w", err)
		}
		if flags&ticket.SampleContext == 0 {
			return nil, &mutualError{reason: fmt.Sprintf("server sent token flags 0x%02x instead of its context token (AP-REP)", flags)}
		}
		res.Response, err = a.AcceptToken(reply, o.SPNEGO)
		if err != nil {
			return nil, err
		}
	}
	if !a.Established {
		return nil, errors.New("client: context not established")
	}
	if o.Message != nil {
		wrapped, err := a.Wrap(o.Message, true)
		if err != nil {
			return nil, err
		}
		if err := s.send(ticket.SampleData|ticket.SampleWrapped|ticket.SampleEncrypted|ticket.SampleSendMIC, wrapped); err != nil {
			return nil, err
		}
		res.MessageSent = true
		flags, mic, err := s.recv()
		if err != nil {
			return nil, fmt.Errorf("client: reading the server's MIC token: %w", err)
		}
		if flags&ticket.SampleMIC == 0 {
			return nil, fmt.Errorf("client: %w: server sent token flags 0x%02x instead of a MIC", ErrGSSToken, flags)
		}
		seq, err := a.VerifyMIC(o.Message, mic)
		if err != nil {
			return nil, err
		}
		res.MICVerified, res.MICSeq = true, seq
	}
	if err := s.send(ticket.SampleNoop, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// sampleConn reads and writes sample-protocol tokens with a deadline on each operation.
type sampleConn struct {
	conn    net.Conn
	timeout time.Duration
	ctx     context.Context
}

// send writes flags, length and token in one write.
func (s *sampleConn) send(flags byte, tok []byte) error {
	if err := s.conn.SetWriteDeadline(attemptDeadline(s.ctx, s.timeout)); err != nil {
		return err
	}
	if err := ticket.WriteSampleToken(s.conn, flags, tok); err != nil {
		return s.wrapErr("sending a token", err)
	}
	return nil
}

// recv reads one token.
func (s *sampleConn) recv() (byte, []byte, error) {
	if err := s.conn.SetReadDeadline(attemptDeadline(s.ctx, s.timeout)); err != nil {
		return 0, nil, err
	}
	flags, tok, err := ticket.ReadSampleToken(s.conn, MaxSampleToken)
	switch {
	case err == nil:
		return flags, tok, nil
	case errors.Is(err, io.EOF):
		return 0, nil, errors.New("server closed the connection (it rejected the request; see its log)")
	case errors.Is(err, ticket.ErrSampleTokenTooLong):
		return 0, nil, fmt.Errorf("%w: server token length exceeds %d: %w", ErrGSSToken, MaxSampleToken, err)
	}
	return 0, nil, s.wrapErr("reading a token", err)
}

// wrapErr names a timeout or a cancellation plainly.
func (s *sampleConn) wrapErr(what string, err error) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, s.ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: no answer within %v", what, s.timeout)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// gssKey is the key of per-message tokens (see ProtocolKey).
func (a *APContext) gssKey() ticket.GSSKey {
	k, acc := a.ProtocolKey()
	return ticket.GSSKey{Key: k, AcceptorSubkey: acc}
}

// Wrap protects msg in an RFC 4121 Wrap token from the initiator (GSS_Wrap), sealed (confidential) when seal,
// with the next initiator sequence number. The context must be established.
func (a *APContext) Wrap(msg []byte, seal bool) ([]byte, error) {
	if !a.Established {
		return nil, errors.New("client: wrap before the context is established")
	}
	tok, err := ticket.WrapGSS(a.gssKey(), msg, false, seal, a.sendSeq)
	if err != nil {
		return nil, fmt.Errorf("client: wrap: %w", err)
	}
	a.sendSeq++
	return tok, nil
}

// Unwrap verifies a Wrap token from the acceptor (GSS_Unwrap) and returns its plaintext.
func (a *APContext) Unwrap(tok []byte) ([]byte, error) {
	if !a.Established {
		return nil, errors.New("client: unwrap before the context is established")
	}
	msg, seq, err := ticket.UnwrapGSS(a.gssKey(), tok, true)
	if err != nil {
		return nil, fmt.Errorf("client: server's wrap token: %w", err)
	}
	if err := a.checkRecvSeq(seq); err != nil {
		return nil, err
	}
	return msg, nil
}

// VerifyMIC checks the acceptor's MIC token over msg (GSS_VerifyMIC) with the acceptor's key: its subkey when it
// asserted one, else ours. With replay or sequence detection asked, the token's sequence number must be the
// next one expected from the acceptor (its AP-REP seq-number for the first token). It returns that number.
func (a *APContext) VerifyMIC(msg, tok []byte) (uint64, error) {
	if !a.Established {
		return 0, errors.New("client: verify MIC before the context is established")
	}
	seq, err := ticket.VerifyMIC(a.gssKey(), msg, tok, true)
	if err != nil {
		return 0, fmt.Errorf("client: server's MIC does not verify: %w", err)
	}
	if err := a.checkRecvSeq(seq); err != nil {
		return 0, err
	}
	return seq, nil
}

// checkRecvSeq enforces in-order delivery of the acceptor's tokens when replay or sequence detection is on.
func (a *APContext) checkRecvSeq(seq uint64) error {
	if a.GSSFlags&(ticket.GSSFlagReplay|ticket.GSSFlagSequence) != 0 && seq != a.recvSeq {
		return fmt.Errorf("client: %w: server's token has sequence number %d, want %d (replayed or out of order)", ErrGSSToken, seq, a.recvSeq)
	}
	a.recvSeq = seq + 1
	return nil
}
