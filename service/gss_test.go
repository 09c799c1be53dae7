package service

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket"
)

// initiator is the test's side of a GSS context, built from what it sent and
// the acceptor's reply token.
type initiator struct {
	key              ticket.GSSKey
	sendSeq, recvSeq uint64
}

func (e *env) gssToken(o req) ([]byte, types.EncryptionKey, types.Authenticator) {
	e.t.Helper()
	b, session, auth := e.good(o)
	return ticket.FrameKRB5Token(ticket.TokIDAPReq, b), session, auth
}

// finish processes the acceptor's krb5 reply token like an initiator.
func finish(t testing.TB, reply []byte, session types.EncryptionKey, auth types.Authenticator) *initiator {
	t.Helper()
	id, msg, err := ticket.ParseKRB5Token(reply)
	if err != nil {
		t.Fatal(err)
	}
	if id != ticket.TokIDAPRep {
		t.Fatalf("reply TOK_ID %04x, want 0200", id)
	}
	p, err := ticket.ParseAPRep(msg, session)
	if err != nil {
		t.Fatal(err)
	}
	if !p.CTime.Equal(auth.CTime) || p.Cusec != auth.Cusec || !p.HasSeq || p.SubKey.KeyType == 0 {
		t.Fatalf("AP-REP %+v does not answer the authenticator", p)
	}
	return &initiator{key: ticket.GSSKey{Key: p.SubKey, AcceptorSubkey: true}, sendSeq: uint64(auth.SeqNumber), recvSeq: uint64(p.SeqNumber)}
}

func TestAcceptGSSMutualAndMessages(t *testing.T) {
	e := newEnv(t)
	tok, session, auth := e.gssToken(req{subkey: true, seq: 1000})
	c, reply, err := e.acc.AcceptGSS(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Mech.Equal(ticket.OIDKRB5) || c.SPNEGO || c.GSSFlags != ticket.GSSFlagMutual|ticket.GSSFlagReplay|ticket.GSSFlagConf|ticket.GSSFlagInteg {
		t.Errorf("context mech %v spnego %v flags %#x", c.Mech, c.SPNEGO, c.GSSFlags)
	}
	in := finish(t, reply, session, auth)

	// The initiator's sealed and integrity-only wrap tokens unwrap; the
	// acceptor's MIC verifies with the acceptor's sequence number.
	for i, seal := range []bool{true, false, true} {
		w, err := ticket.WrapGSS(in.key, []byte("hello"), false, seal, in.sendSeq)
		if err != nil {
			t.Fatal(err)
		}
		in.sendSeq++
		msg, err := c.Unwrap(w)
		if err != nil || string(msg) != "hello" {
			t.Fatalf("message %d: %q %v", i, msg, err)
		}
		mic, err := c.MakeMIC(msg)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := ticket.VerifyMIC(in.key, msg, mic, true)
		if err != nil || seq != in.recvSeq {
			t.Fatalf("MIC %d: seq %d (want %d) %v", i, seq, in.recvSeq, err)
		}
		in.recvSeq++
		// A replayed wrap token is refused (replay detection was asked).
		if _, err := c.Unwrap(w); !errors.Is(err, ErrSequence) {
			t.Fatalf("replayed wrap token: %v", err)
		}
	}
	// Acceptor wrap and initiator MIC.
	w, err := c.Wrap([]byte("back"), true)
	if err != nil {
		t.Fatal(err)
	}
	if m, seq, err := ticket.UnwrapGSS(in.key, w, true); err != nil || string(m) != "back" || seq != in.recvSeq {
		t.Fatalf("acceptor wrap: %q %d %v", m, seq, err)
	}
	mic, _ := ticket.MakeMIC(in.key, []byte("x"), false, in.sendSeq)
	if err := c.VerifyMIC([]byte("x"), mic); err != nil {
		t.Fatal(err)
	}
	// A token keyed without the acceptor subkey flag is refused.
	bad, _ := ticket.WrapGSS(ticket.GSSKey{Key: in.key.Key}, []byte("x"), false, true, in.sendSeq+1)
	if _, err := c.Unwrap(bad); err == nil {
		t.Fatal("token without the AcceptorSubkey flag accepted")
	}
}

func TestAcceptGSSNoMutual(t *testing.T) {
	e := newEnv(t)
	flagsOnly := types.Checksum{CksumType: ticket.ChecksumTypeGSS, Checksum: ticket.GSSChecksum{Flags: ticket.GSSFlagConf | ticket.GSSFlagInteg}.Marshal()}
	tok, _, auth := e.gssToken(req{noMutual: true, subkey: true, seq: 5, cksum: &flagsOnly})
	c, reply, err := e.acc.AcceptGSS(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if reply != nil {
		t.Fatalf("reply token %x without mutual", reply)
	}
	key := ticket.GSSKey{Key: auth.SubKey}
	w, _ := ticket.WrapGSS(key, []byte("m"), false, true, 5)
	if m, err := c.Unwrap(w); err != nil || string(m) != "m" {
		t.Fatalf("%q %v", m, err)
	}
	mic, _ := c.MakeMIC([]byte("m"))
	if seq, err := ticket.VerifyMIC(key, []byte("m"), mic, true); err != nil || seq != 5 {
		t.Fatalf("acceptor MIC seq %d %v (want the initiator's 5)", seq, err)
	}
}

func TestAcceptGSSDelegationAndLegacyOID(t *testing.T) {
	e := newEnv(t)
	deleg := types.Checksum{CksumType: ticket.ChecksumTypeGSS, Checksum: ticket.GSSChecksum{
		Flags: ticket.GSSFlagDeleg | ticket.GSSFlagMutual | 0x100, Deleg: []byte{0x76, 0x03, 0x30, 0x01, 0x00}}.Marshal()}
	b, session, auth := e.good(req{cksum: &deleg})
	tok, err := ticket.FrameGSSToken(ticket.OIDKRB5Legacy, append([]byte{1, 0}, b...))
	if err != nil {
		t.Fatal(err)
	}
	c, reply, err := e.acc.AcceptGSS(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Delegated || !c.Mech.Equal(ticket.OIDKRB5Legacy) || c.GSSFlags&0x100 == 0 {
		t.Errorf("delegated %v mech %v flags %#x", c.Delegated, c.Mech, c.GSSFlags)
	}
	finish(t, reply, session, auth)
}

func TestAcceptGSSErrors(t *testing.T) {
	e := newEnv(t)
	kerbToken := func(t *testing.T, tok []byte) *ticket.RemoteError {
		t.Helper()
		id, msg, err := ticket.ParseKRB5Token(tok)
		if err != nil || id != ticket.TokIDError {
			t.Fatalf("error token %x: id %04x %v", tok, id, err)
		}
		re, err := ticket.ParseKRBError(msg)
		if err != nil {
			t.Fatal(err)
		}
		return re
	}
	t.Run("wrong TOK_ID", func(t *testing.T) {
		b, _, _ := e.good(req{})
		_, reply, err := e.acc.AcceptGSS(context.Background(), ticket.FrameKRB5Token(ticket.TokIDAPRep, b))
		wantCode(t, err, errorcode.KRB_AP_ERR_MSG_TYPE)
		if re := kerbToken(t, reply); re.KRBError.ErrorCode != 40 || re.KRBError.SName.PrincipalNameString() != "host/localhost" {
			t.Errorf("%+v", re.KRBError)
		}
	})
	t.Run("not GSS", func(t *testing.T) {
		b, _, _ := e.good(req{})
		_, reply, err := e.acc.AcceptGSS(context.Background(), b)
		wantCode(t, err, errorcode.KRB_ERR_GENERIC)
		if reply != nil {
			t.Errorf("reply %x to a non-GSS token", reply)
		}
	})
	t.Run("no 0x8003 checksum", func(t *testing.T) {
		plain := types.Checksum{CksumType: 16, Checksum: make([]byte, 12)}
		tok, _, _ := e.gssToken(req{cksum: &plain})
		_, reply, err := e.acc.AcceptGSS(context.Background(), tok)
		wantCode(t, err, errorcode.KRB_AP_ERR_INAPP_CKSUM)
		if re := kerbToken(t, reply); re.KRBError.ErrorCode != 50 || re.KRBError.CName.PrincipalNameString() != "alice" {
			t.Errorf("%+v", re.KRBError)
		}
	})
	t.Run("bad 0x8003 length", func(t *testing.T) {
		bad := types.Checksum{CksumType: ticket.ChecksumTypeGSS, Checksum: []byte{16, 0, 0, 0, 1}}
		tok, _, _ := e.gssToken(req{cksum: &bad})
		_, _, err := e.acc.AcceptGSS(context.Background(), tok)
		wantCode(t, err, errorcode.KRB_AP_ERR_INAPP_CKSUM)
	})
	t.Run("replay", func(t *testing.T) {
		tok, _, _ := e.gssToken(req{})
		if _, _, err := e.acc.AcceptGSS(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		_, reply, err := e.acc.AcceptGSS(context.Background(), tok)
		wantCode(t, err, errorcode.KRB_AP_ERR_REPEAT)
		if re := kerbToken(t, reply); re.KRBError.ErrorCode != 34 {
			t.Errorf("%+v", re.KRBError)
		}
	})
}

func TestAcceptSPNEGO(t *testing.T) {
	e := newEnv(t)
	for _, first := range []asn1.ObjectIdentifier{ticket.OIDKRB5, ticket.OIDKRB5Legacy} {
		tok, session, auth := e.gssToken(req{})
		init, err := ticket.MarshalNegTokenInit(ticket.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{first, ticket.OIDKRB5}, MechToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		c, reply, err := e.acc.AcceptToken(context.Background(), init)
		if err != nil {
			t.Fatal(err)
		}
		if !c.SPNEGO {
			t.Error("context not marked SPNEGO")
		}
		_, resp, err := ticket.ParseNegToken(reply)
		if err != nil || resp == nil {
			t.Fatalf("reply %x: %v", reply, err)
		}
		if resp.NegState != ticket.NegStateAcceptCompleted || !resp.SupportedMech.Equal(first) || resp.MechListMIC != nil {
			t.Errorf("NegTokenResp %+v", resp)
		}
		finish(t, resp.ResponseToken, session, auth)
	}
	// Without mutual: accept-completed and no responseToken.
	tok, _, _ := e.gssToken(req{noMutual: true})
	init, _ := ticket.MarshalNegTokenInit(ticket.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}, MechToken: tok})
	_, reply, err := e.acc.AcceptSPNEGO(context.Background(), init)
	if err != nil {
		t.Fatal(err)
	}
	if _, resp, _ := ticket.ParseNegToken(reply); resp.NegState != 0 || resp.ResponseToken != nil {
		t.Errorf("no-mutual NegTokenResp %+v", resp)
	}
}

func TestAcceptSPNEGORejects(t *testing.T) {
	e := newEnv(t)
	reject := func(t *testing.T, reply []byte) *ticket.NegTokenResp {
		t.Helper()
		_, resp, err := ticket.ParseNegToken(reply)
		if err != nil || resp == nil || resp.NegState != ticket.NegStateReject {
			t.Fatalf("reply %x is not a reject: %+v %v", reply, resp, err)
		}
		return resp
	}
	ntlm := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}
	tok, _, _ := e.gssToken(req{})
	cases := map[string]ticket.NegTokenInit{
		"NTLM first":   {MechTypes: []asn1.ObjectIdentifier{ntlm, ticket.OIDKRB5}, MechToken: []byte{1}},
		"no mechToken": {MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}},
		"bad mechTok":  {MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}, MechToken: []byte{0x60, 0x00}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b, _ := ticket.MarshalNegTokenInit(in)
			_, reply, err := e.acc.AcceptSPNEGO(context.Background(), b)
			if err == nil {
				t.Fatal("accepted")
			}
			reject(t, reply)
		})
	}
	t.Run("NegTokenResp first", func(t *testing.T) {
		b, _ := ticket.MarshalNegTokenResp(ticket.NegTokenResp{NegState: 1, ResponseToken: tok})
		_, reply, err := e.acc.AcceptSPNEGO(context.Background(), b)
		if err == nil || !strings.Contains(err.Error(), "NegTokenResp") {
			t.Fatalf("err %v", err)
		}
		reject(t, reply)
	})
	t.Run("replay carries the krb5 error token", func(t *testing.T) {
		tok, _, _ := e.gssToken(req{})
		b, _ := ticket.MarshalNegTokenInit(ticket.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}, MechToken: tok})
		if _, _, err := e.acc.AcceptSPNEGO(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		_, reply, err := e.acc.AcceptSPNEGO(context.Background(), b)
		wantCode(t, err, errorcode.KRB_AP_ERR_REPEAT)
		resp := reject(t, reply)
		if id, _, err := ticket.ParseKRB5Token(resp.ResponseToken); err != nil || id != ticket.TokIDError {
			t.Errorf("responseToken %x: %04x %v", resp.ResponseToken, id, err)
		}
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		b, _ := ticket.FrameGSSToken(ntlm, []byte{1, 2})
		if _, _, err := e.acc.AcceptToken(context.Background(), b); err == nil || !strings.Contains(err.Error(), "unsupported GSS mechanism") {
			t.Fatalf("%v", err)
		}
		if _, _, err := e.acc.AcceptToken(context.Background(), []byte("junk")); err == nil {
			t.Fatal("junk accepted")
		}
	})
}

func FuzzAcceptToken(f *testing.F) {
	e := newEnv(f)
	tok, _, _ := e.gssToken(req{})
	init, _ := ticket.MarshalNegTokenInit(ticket.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{ticket.OIDKRB5}, MechToken: tok})
	f.Add(tok)
	f.Add(init)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, reply, err := e.acc.AcceptToken(context.Background(), b)
		if err == nil && c == nil {
			t.Fatal("no error and no context")
		}
		if err != nil && len(reply) > 0 && bytes.Equal(reply, b) {
			t.Fatal("echoed the input")
		}
	})
}
