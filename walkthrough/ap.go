package walkthrough

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// apPending keeps what the pending AP-REQ revealed, for the service's checks.
type apPending struct {
	auth       *types.Authenticator // authenticator G, when opened
	gss        *ticket.GSSChecksum  // its GSS checksum
	sameTicket bool                 // the ticket presented is the one F came with
}

// apReq records the AP-REQ: message G (a new authenticator) with message E again.
func (r *Recorder) apReq(w Wire) {
	var ap ticket.APReqWire
	if err := unmarshalApp(w.Data, &ap, 14); err != nil {
		r.unknown(w)
		return
	}
	tkt, err := decodeTicket(ap.Ticket.Bytes)
	if err != nil {
		r.unknown(w)
		return
	}
	server := principal.FromPrincipalName(tkt.SName, tkt.Realm)
	s := Step{
		ID: "ap-req", Title: "AP-REQ: message G (a new authenticator), with message E again",
		Letters: []string{"E", "G"}, Message: "AP-REQ", From: ActorClient, To: ActorService, Time: w.Time,
		Transport: w.Network, Addr: w.Addr,
		Summary: "The client connects to the service itself and hands over the service ticket E with a new " +
			"authenticator G, encrypted in the client/server session key from F. The KDC is not involved any more.",
	}
	setTransport(&s, w)
	s.Fields = apReqFields(ap, tkt, "E", "G")

	pe, etp := r.ticketPartOf("E", tkt, "message E again: the service ticket, with the client/server session key inside", "the service")
	s.Parts = append(s.Parts, pe)

	pg := Part{Letter: "G", Name: "authenticator (Authenticator)", What: "the client's name and the time, proving the client holds the session key from F",
		CipherSize: len(ap.Authenticator.Cipher)}
	key, haveKey := r.sessionKey(&r.st.svc, ap.Ticket.Bytes, etp)
	pg.Key = keyInfo("the client/server session key (from F; also inside E)", key, ap.Authenticator.EType, ap.Authenticator.KVNO,
		int(keyusage.AP_REQ_AUTHENTICATOR), r.o.ShowKeys)
	info := &apPending{sameTicket: r.st.svc.raw != nil && bytes.Equal(r.st.svc.raw, ap.Ticket.Bytes)}
	if haveKey {
		if plain, err := crypto.DecryptEncPart(ap.Authenticator, key, keyusage.AP_REQ_AUTHENTICATOR); err == nil {
			var a types.Authenticator
			if decodeSafe(func() error { return a.Unmarshal(plain) }) == nil {
				info.auth = &a
			}
		}
	}
	if a := info.auth; a != nil {
		ck := field("cksum", checksumName(a.Cksum.CksumType)+": "+hexKey(a.Cksum.Checksum))
		if a.Cksum.CksumType == ticket.ChecksumTypeGSS {
			if g, err := ticket.ParseGSSChecksum(a.Cksum.Checksum); err == nil {
				info.gss = &g
				bnd := "all zero: no channel bindings"
				if g.Bindings != [16]byte{} {
					bnd = fmt.Sprintf("%x: MD5 of the channel bindings", g.Bindings)
				}
				ck = field("cksum", checksumName(a.Cksum.CksumType)+", unkeyed: the authenticator's encryption protects it",
					field("Lgth", "16"), field("Bnd", bnd), field("Flags", fmt.Sprintf("0x%x: %s", g.Flags, gssFlags(g.Flags))))
				if len(g.Deleg) > 0 {
					ck.Fields = append(ck.Fields, field("Deleg", "KRB-CRED, "+bytesText(len(g.Deleg))+": a delegated TGT"))
				}
			}
		}
		pg.Opened, pg.Fields = true, authenticatorFields(*a, ck, r.o.ShowKeys)
		r.st.apCTime, r.st.apCusec, r.st.apSubkey, r.st.apOpened = a.CTime, a.Cusec, a.SubKey, true
	} else {
		r.st.apOpened = false
		pg.SealedFor, pg.Reason = server.String(), "the client/server session key is not known to this view"
	}
	r.st.apMutual = hasFlag(ap.APOptions, 2)
	s.Parts = append(s.Parts, pg)
	s.Notes = []Note{
		{NoteClassic, "\"Message E from the previous step (the client-to-server ticket, encrypted using the " +
			"service's secret key). Message G: a new Authenticator, which includes the client ID, timestamp and is encrypted using " +
			"Client/Server Session Key.\""},
		{NoteModern, "Here the AP-REQ travels inside a GSS-API token (RFC 4121): the authenticator's checksum is the GSS checksum " +
			"0x8003, which carries the context flags (mutual authentication, replay and sequence detection, confidentiality, " +
			"integrity); the authenticator brings a fresh subkey and an initial sequence number for the messages that follow; " +
			"ap-options mutual-required asks the service for H."},
	}
	r.pendAPInfo = info
	r.hold(s, pendAP)
}

// apChecks adds what the client knows of the AP-REQ once it is answered; what the service itself checked comes
// from the service's own list (receiverChecks).
func (r *Recorder) apChecks(s *Step, _ *int32) {
	info := r.pendAPInfo
	r.pendAPInfo = nil
	if info != nil && info.sameTicket {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckPass, Text: "the ticket is E byte for byte, as the TGS issued it"})
	}
}

// apRep records the AP-REP: message H, the server's proof.
func (r *Recorder) apRep(w Wire) {
	var rep messages.APRep
	if err := unmarshalApp(w.Data, &rep, 15); err != nil {
		r.unknown(w)
		return
	}
	r.finishRequest(r.takePending(pendAP, w), pendAP, nil)
	s := Step{
		ID: "ap-rep", Title: "AP-REP: message H, the service proves it is the real one",
		Letters: []string{"H"}, Message: "AP-REP", From: ActorService, To: ActorClient, Time: w.Time,
		Transport: w.Network, Addr: w.Addr,
		Summary: "The service sends back the timestamp of the client's authenticator G, encrypted in the " +
			"client/server session key. Only a service that could open E could know that key: this is mutual " +
			"authentication.",
	}
	setTransport(&s, w)
	s.Fields = []Field{
		field("pvno", strconv.Itoa(rep.PVNO)),
		field("msg-type", fmt.Sprintf("%d (KRB_AP_REP)", rep.MsgType)),
		field("enc-part", "message H: EncAPRepPart, sealed: see part H", encDataFields(rep.EncPart)...),
	}
	ph := Part{Letter: "H", Name: "enc-part (EncAPRepPart)", What: "the authenticator's timestamp, echoed, with the service's subkey and sequence number",
		CipherSize: len(rep.EncPart.Cipher)}
	key, haveKey := r.st.svc.key, r.st.svc.have
	ph.Key = keyInfo("the client/server session key (from F; the ticket's session key, not a subkey)", key, rep.EncPart.EType, rep.EncPart.KVNO,
		int(keyusage.AP_REP_ENCPART), r.o.ShowKeys)
	var part *ticket.APRepPart
	if haveKey {
		if p, err := ticket.ParseAPRep(w.Data, key); err == nil {
			part = &p
		}
	}
	add := func(res, text string) { s.Checks = append(s.Checks, Check{By: ActorClient, Result: res, Text: text}) }
	if part != nil {
		ph.Opened = true
		ph.Fields = []Field{field("ctime", kTime(part.CTime)), field("cusec", strconv.Itoa(part.Cusec))}
		if part.SubKey.KeyType != 0 {
			ph.Fields = append(ph.Fields, keyField("subkey", part.SubKey, r.o.ShowKeys))
			r.st.acceptorSubkey = part.SubKey
		} else {
			ph.Fields = append(ph.Fields, field("subkey", "absent"))
		}
		if part.HasSeq {
			ph.Fields = append(ph.Fields, field("seq-number", strconv.FormatInt(part.SeqNumber, 10)))
		} else {
			ph.Fields = append(ph.Fields, field("seq-number", "absent"))
		}
		add(CheckPass, "H decrypts with the client/server session key (key usage 12): whoever sealed it opened E, so it holds the service's key")
		if r.st.apOpened {
			same := part.CTime.Equal(r.st.apCTime) && part.Cusec == r.st.apCusec
			add(map[bool]string{true: CheckPass, false: CheckFail}[same], "ctime and cusec are exactly those of authenticator G, "+
				kTimeUsec(r.st.apCTime, r.st.apCusec)+": the answer is to this very request. Mutual authentication is complete")
		}
		if part.SubKey.KeyType != 0 {
			add(CheckPass, "the service chose its own subkey ("+etypeName(part.SubKey.KeyType)+"): the messages that follow are protected with it")
		}
	} else {
		ph.SealedFor, ph.Reason = "the client", "the client/server session key is not known to this view"
		add(CheckInfo, "H must decrypt with the session key and echo G's ctime and cusec")
	}
	s.Parts = append(s.Parts, ph)
	s.Notes = []Note{
		{NoteClassic, "\"Message H: the timestamp found in client's Authenticator (plus 1 in version 4, " +
			"but not necessary in version 5), encrypted using the Client/Server Session Key.\""},
		{NoteModern, "Version 5 echoes ctime and cusec unchanged; the \"plus 1\" of version 4 is gone, because the reply is an " +
			"EncAPRepPart of its own type, sealed with its own key usage (12), so it can never be mistaken for the authenticator " +
			"sent back. The AP-REP is sealed in the ticket's session key even when the client sent a subkey, and it may carry the " +
			"service's subkey and initial sequence number."},
	}
	r.emit(s)
}

// Token records a GSS per-message token of the conversation after H: a wrap token sent by the client (msg is
// then unknown and recovered by unwrapping) or the service's MIC over msg.
func (r *Recorder) Token(w Wire, wrap bool, msg []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := r.st.apSubkey
	acc := false
	if r.st.acceptorSubkey.KeyType != 0 {
		key, acc = r.st.acceptorSubkey, true
	}
	owner := "the client's subkey from G"
	if acc {
		owner = "the service's subkey from H"
	}
	gk := ticket.GSSKey{Key: key, AcceptorSubkey: acc}
	s := Step{Time: w.Time, Transport: w.Network, Addr: w.Addr}
	setTransport(&s, w)
	s.Size = len(w.Data)
	var tokFields []Field
	if len(w.Data) >= 16 {
		tokFields = []Field{
			field("TOK_ID", fmt.Sprintf("%02x %02x", w.Data[0], w.Data[1])),
			field("Flags", fmt.Sprintf("0x%02x", w.Data[2])),
			field("SND_SEQ", strconv.FormatUint(binary.BigEndian.Uint64(w.Data[8:16]), 10)),
		}
	}
	var out []byte
	if wrap {
		s.ID, s.Message, s.Title, s.From, s.To = "wrap", "GSS Wrap", "After H: the client sends a sealed message (GSS wrap token)", ActorClient, ActorService
		s.Summary = "With the context established, the client seals an application message: encrypted and integrity-protected " +
			"with the key agreed in G and H, with a sequence number against replay and reordering."
		p := Part{Name: "wrap token (RFC 4121 §4.2.6.2)", What: "the application's message", Key: keyInfo(owner, key, key.KeyType, 0, 24, r.o.ShowKeys),
			CipherSize: max(len(w.Data)-16, 0)}
		if key.KeyType != 0 {
			if plain, seq, err := ticket.UnwrapGSS(gk, w.Data, false); err == nil {
				p.Opened, p.Fields, out = true, []Field{field("message", fmt.Sprintf("%q", plain)), field("sequence number", strconv.FormatUint(seq, 10))}, plain
			}
		}
		if !p.Opened {
			p.SealedFor, p.Reason = "the service", "the context key is not known to this view"
		}
		s.Parts = []Part{p}
		s.Checks = []Check{{By: ActorService, Result: map[bool]string{true: CheckPass, false: CheckInfo}[p.Opened], Text: "the token decrypts and its checksum verifies with the context key (key usage 24, initiator seal); the sequence number is the next one expected"}}
	} else {
		s.ID, s.Message, s.Title, s.From, s.To = "mic", "GSS MIC", "After H: the service answers with a MIC over the message", ActorService, ActorClient
		s.Summary = "The MIT GSS sample service answers with a MIC token: a keyed checksum over the message it received, " +
			"which only a holder of the context key can make."
		p := Part{Name: "MIC token (RFC 4121 §4.2.6.1)", What: "a checksum over the client's message", Key: keyInfo(owner, key, key.KeyType, 0, 23, r.o.ShowKeys),
			CipherSize: max(len(w.Data)-16, 0), Checksum: true}
		ok := false
		if key.KeyType != 0 && msg != nil {
			if _, err := ticket.VerifyMIC(gk, msg, w.Data, true); err == nil {
				ok = true
			}
		}
		p.Opened = ok
		if ok {
			p.Fields = []Field{field("covers", fmt.Sprintf("%q", msg))}
		} else {
			p.SealedFor, p.Reason = "the client", "not verified in this view"
		}
		s.Parts = []Part{p}
		s.Checks = []Check{{By: ActorClient, Result: map[bool]string{true: CheckPass, false: CheckInfo}[ok], Text: "the MIC verifies over the message sent, with the context key (key usage 23, acceptor sign)"}}
	}
	s.Fields = tokFields
	s.Notes = []Note{{NoteModern, "Not part of the classic A to H: after H the session key (or the subkeys) protects the " +
		"application's own messages (RFC 4121 per-message tokens)."}}
	r.emit(s)
	return out
}
