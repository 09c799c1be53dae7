package walkthrough

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// The armored AS exchange of FAST [RFC 6113 §5.4], as MIT kinit -T ARMOR_CCACHE sends it:
//   - the AS-REQ carries PA-FX-FAST with explicit armor: an AP-REQ whose ticket (the armor ticket, a TGT the
//     client already holds) is sealed in krbtgt's key and whose authenticator, in the ticket's session key,
//     carries a fresh subkey; armor key = KRB-FX-CF2(subkey, ticket session key, "subkeyarmor", "ticketarmor")
//     [§5.4.1.1]; a checksum in the armor key covers the outer req-body (usage 50) and the real padata and
//     req-body travel in enc-fast-req (usage 51) [§5.4.2];
//   - the KDC's errors come back inside the armor: the outer KRB-ERROR's e-data holds only PA-FX-FAST, a
//     KrbFastResponse (usage 52) whose padata carry the real error (PA-FX-ERROR), the methods on offer and a
//     cookie [§5.2, §5.4.3];
//   - the pre-authentication inside is the encrypted challenge: a PA-ENC-TS-ENC in KRB-FX-CF2(armor key, client
//     key, "clientchallengearmor", "challengelongterm") (usage 54); the KDC answers with its own time in
//     KRB-FX-CF2(armor key, client key, "kdcchallengearmor", "challengelongterm") (usage 55) [§5.4.6];
//   - the AS-REP's KrbFastResponse carries a strengthen-key and KrbFastFinished, whose ticket-checksum covers
//     the ticket with the armor key (usage 53); message A is then sealed in KRB-FX-CF2(strengthen-key, client
//     key, "strengthenkey", "replykey") [§5.4.3].

// armorKeyOwner describes the FAST armor key of an AS exchange.
const armorKeyOwner = "the FAST armor key: KRB-FX-CF2(the armor authenticator's subkey, the armor ticket's session key, " +
	"\"subkeyarmor\", \"ticketarmor\")"

// maxKnownTickets bounds the tickets whose session keys the recorder remembers (knownSessionKey).
const maxKnownTickets = 64

// fastASReq is what the PA-FX-FAST of an AS-REQ showed.
type fastASReq struct {
	parts  []Part
	fields []Field
	checks []Check
	inner  *der.FastReq // the KrbFastReq, when it opened
}

// rememberSession keeps the session key of a ticket a reply brought, so that the ticket's later use as FAST
// armor opens even when its own server's key was not given.
func (r *Recorder) rememberSession(raw []byte, key types.EncryptionKey) {
	if len(raw) == 0 || len(key.KeyValue) == 0 {
		return
	}
	if len(r.st.known) >= maxKnownTickets {
		r.st.known = slices.Delete(r.st.known, 0, 1)
	}
	r.st.known = append(r.st.known, sessionSlot{key: key, have: true, raw: slices.Clone(raw)})
}

// knownSessionKey finds the session key of a ticket seen earlier in the story, or in the credential cache.
func (r *Recorder) knownSessionKey(raw []byte) (types.EncryptionKey, bool) {
	for i := len(r.st.known) - 1; i >= 0; i-- {
		if bytes.Equal(r.st.known[i].raw, raw) {
			return r.st.known[i].key, true
		}
	}
	for _, c := range r.o.Credentials {
		if bytes.Equal(c.Ticket, raw) {
			return c.Key, true
		}
	}
	return types.EncryptionKey{}, false
}

// switchClient starts over what the recorder knows of the client when an AS-REQ of a capture names another
// client than the last one (a host's kinit -k for the armor ticket, then the user's kinit -T).
func (r *Recorder) switchClient(c principal.Name) {
	if r.o.View != ViewCapture || r.st.client.Realm == "" || r.st.client.Equal(c) {
		return
	}
	r.st.s2kDone, r.st.haveClientKey, r.st.clientKey, r.st.hint, r.st.clientKeytab = false, false, types.EncryptionKey{}, nil, false
	r.st.s2kSalt, r.st.s2kEtype, r.st.fastCookie = "", 0, nil
}

// fastASRequest explains the PA-FX-FAST v of an AS-REQ: the armor ticket, the armor authenticator, the armor key
// they give, the req-checksum over the outer req-body, and the KrbFastReq inside. What no known key opens stays
// sealed and says why; it never fails. The armor key, when derived, is kept for the answer.
func (r *Recorder) fastASRequest(req *ticket.KDCRequest, v []byte) *fastASReq {
	out := &fastASReq{}
	sealed := func(name, what, reason string) {
		out.parts = append(out.parts, Part{Name: name, What: what, SealedFor: ActorAS, Reason: reason})
	}
	const armorWhat = "FAST armor [RFC 6113 §5.4.2]: an AP-REQ with a ticket the client already holds, a checksum over the outer request, and the real request sealed inside"
	ar, err := decodeFastArmoredReq(v)
	if err != nil {
		sealed("padata PA-FX-FAST (KrbFastArmoredReq)", armorWhat, "does not decode: "+err.Error())
		return out
	}
	if !ar.HasArmor || ar.ArmorType != fastArmorAPRequest {
		sealed("padata PA-FX-FAST (KrbFastArmoredReq)", armorWhat, fmt.Sprintf("no AP-REQ armor (armor-type %d): an AS-REQ "+
			"needs explicit armor, the KDC refuses it (PREAUTH_FAILED), and nothing here derives an armor key", ar.ArmorType))
		return out
	}
	var ap ticket.APReqWire
	var tkt messages.Ticket
	if err = unmarshalApp(ar.ArmorValue, &ap, 14); err == nil {
		tkt, err = decodeTicket(ap.Ticket.Bytes)
	}
	if err != nil {
		sealed("armor (KrbFastArmor: AP-REQ)", armorWhat, "the armor AP-REQ does not decode: "+err.Error())
		return out
	}
	server := principal.FromPrincipalName(tkt.SName, tkt.Realm)
	out.fields = append(out.fields, field("armor", "armor-type 1 (FX_FAST_ARMOR_AP_REQUEST): an AP-REQ, "+bytesText(len(ar.ArmorValue)),
		apReqFieldsNamed(ap, tkt, "the armor ticket", "armor ticket", "the armor authenticator", "armor authenticator")...))

	// The armor ticket, sealed in its server's key (krbtgt's).
	pt, etp := r.ticketPartOf("", tkt, "the armor ticket: a ticket-granting ticket the client already holds (kinit -T names its cache), "+
		"with the session key the armor key is made from", "the TGS")
	pt.Name = "armor ticket enc-part (EncTicketPart)"
	out.parts = append(out.parts, pt)
	var session types.EncryptionKey
	haveSession := false
	switch {
	case etp != nil:
		session, haveSession = etp.part.Key, true
	default:
		session, haveSession = r.knownSessionKey(ap.Ticket.Bytes)
	}

	// The armor authenticator, in the armor ticket's session key: its subkey is the client's half of the armor.
	pa := Part{Name: "armor authenticator (Authenticator)", CipherSize: len(ap.Authenticator.Cipher),
		What: "the armor AP-REQ's authenticator: the armor ticket's client, the time, and a fresh subkey, the client's half of the armor key"}
	pa.Key = keyInfo("the armor ticket's session key (sealed inside the armor ticket; the armor's holder got it with the ticket, in its own AS-REP)",
		session, ap.Authenticator.EType, ap.Authenticator.KVNO, int(keyusage.AP_REQ_AUTHENTICATOR), r.o.ShowKeys)
	var auth *types.Authenticator
	if !haveSession {
		pa.SealedFor, pa.Reason = ActorAS, "the armor ticket's session key is not known here: "+server.String()+
			"'s key (a keytab with it, --keytab) opens the armor ticket, or a capture of the armor ticket's own AS-REP gives it"
	} else if plain, err := decryptSafe(ap.Authenticator, session, keyusage.AP_REQ_AUTHENTICATOR); err != nil {
		pa.SealedFor, pa.Reason = ActorAS, "does not decrypt with the armor ticket's session key: "+err.Error()
	} else {
		var a types.Authenticator
		if err := decodeSafe(func() error { return a.Unmarshal(plain) }); err != nil {
			pa.SealedFor, pa.Reason = ActorAS, "decrypts, but does not decode: "+err.Error()
		} else {
			auth = &a
			ck := field("cksum", "absent: the armor authenticator covers no request of its own")
			if len(a.Cksum.Checksum) > 0 {
				ck = field("cksum", checksumName(a.Cksum.CksumType)+": "+hexKey(a.Cksum.Checksum))
			}
			pa.Opened, pa.Fields = true, authenticatorFields(a, ck, r.o.ShowKeys)
		}
	}
	out.parts = append(out.parts, pa)

	reqCk := Part{Name: "req-checksum (Checksum over the outer req-body)", Checksum: true, CipherSize: len(ar.ReqChecksum.Checksum),
		What: "a keyed checksum over the req-body sent in clear: it binds the outer request to the armor"}
	encReq := Part{Name: "enc-fast-req (KrbFastReq)", CipherSize: len(ar.EncFastReq.Cipher),
		What: "the real request: its padata and req-body, sealed so that nobody on the path can read or change them"}
	var armor types.EncryptionKey
	if auth != nil && auth.SubKey.KeyType != 0 {
		armor, err = cf2(auth.SubKey, session, "subkeyarmor", "ticketarmor")
	}
	reqCk.Key = keyInfo(armorKeyOwner, armor, armor.KeyType, 0, usageFastReqChecksum, r.o.ShowKeys)
	encReq.Key = keyInfo(armorKeyOwner, armor, ar.EncFastReq.EType, ar.EncFastReq.KVNO, usageFastEnc, r.o.ShowKeys)
	if reqCk.Key.Etype == 0 {
		reqCk.Key.Etype, reqCk.Key.EtypeName = ar.EncFastReq.EType, etypeName(ar.EncFastReq.EType)
	}
	switch {
	case auth == nil:
		reason := "the armor key is not known here: it is made from the armor authenticator's subkey, which stays sealed"
		reqCk.SealedFor, reqCk.Reason, encReq.SealedFor, encReq.Reason = ActorAS, reason, ActorAS, reason
		out.parts = append(out.parts, reqCk, encReq)
		return out
	case auth.SubKey.KeyType == 0 || err != nil:
		reason := "no armor key: the armor authenticator carries no subkey (the KDC refuses such armor)"
		if err != nil {
			reason = "the armor key cannot be derived here: " + err.Error()
		}
		reqCk.SealedFor, reqCk.Reason, encReq.SealedFor, encReq.Reason = ActorAS, reason, ActorAS, reason
		out.parts = append(out.parts, reqCk, encReq)
		return out
	}
	r.st.fastArmor, r.st.haveFastArmor = armor, true
	out.fields = append(out.fields, field("armor key", "KRB-FX-CF2(the armor authenticator's subkey, the armor ticket's session key, "+
		"\"subkeyarmor\", \"ticketarmor\") [RFC 6113 §5.4.1.1], derived here from the two parts below", keyField("key", armor, r.o.ShowKeys)))

	ok := verifyChecksum(armor, usageFastReqChecksum, req.RawBody, ar.ReqChecksum.Checksum)
	if ok {
		reqCk.Opened, reqCk.Fields = true, []Field{
			field("cksumtype", checksumName(ar.ReqChecksum.CksumType)),
			field("checksum", hexKey(ar.ReqChecksum.Checksum)),
			field("covers", "the outer req-body as sent, "+bytesText(len(req.RawBody))),
		}
	} else {
		reqCk.SealedFor, reqCk.Reason = ActorAS, "does not verify with the armor key over the outer req-body"
	}
	out.checks = append(out.checks, Check{By: ActorWalkthrough, Result: map[bool]string{true: CheckPass, false: CheckFail}[ok],
		Text: "the req-checksum verifies with the armor key (key usage 50) over the outer req-body: the request in clear " +
			"is the one the holder of the armor key sent, unchanged"})
	fr, err := openFastReq(ar, armor)
	if err != nil {
		encReq.SealedFor, encReq.Reason = ActorAS, "does not open with the armor key: "+err.Error()
	} else {
		encReq.Opened, encReq.Fields = true, fastReqFields(fr)
		out.inner = fr
	}
	out.parts = append(out.parts, reqCk, encReq)
	return out
}

// encChallengePart opens a client's PA-ENCRYPTED-CHALLENGE: a PA-ENC-TS-ENC in the client challenge key,
// KRB-FX-CF2(armor key, client key, "clientchallengearmor", "challengelongterm"), usage 54 [RFC 6113 §5.4.6].
// Its time is checked as the KDC checks it: within the clock skew of when the request was seen.
func (r *Recorder) encChallengePart(ed types.EncryptedData) (Part, []Check) {
	p := Part{Letter: "pre", Name: "padata PA-ENCRYPTED-CHALLENGE (PA-ENC-TS-ENC), inside the armor",
		What: "the client's current time, proving it knows the client's key; sealed in a key only the armor's ends can make", CipherSize: len(ed.Cipher)}
	key, src, ok := r.clientKeyFor(ed.EType, ed.KVNO)
	owner := "the client challenge key: KRB-FX-CF2(the armor key, " + r.owner(r.st.client) + ", \"clientchallengearmor\", \"challengelongterm\")"
	var ck types.EncryptionKey
	var err error
	if ok && r.st.haveFastArmor {
		ck, err = cf2(r.st.fastArmor, key, "clientchallengearmor", "challengelongterm")
	}
	p.Key = keyInfo(owner, ck, ed.EType, ed.KVNO, usageEncChallengeClient, r.o.ShowKeys)
	switch {
	case !r.st.haveFastArmor:
		p.SealedFor, p.Reason = ActorAS, "the armor key is not known here"
		return p, nil
	case !ok:
		p.SealedFor, p.Reason = ActorAS, "the client's key is not known to this view"
		return p, nil
	case err != nil:
		p.SealedFor, p.Reason = ActorAS, "the challenge key cannot be derived here: "+err.Error()
		return p, nil
	}
	at, opened := r.openPAEncTS(&p, ed, ck, usageEncChallengeClient, "the client challenge key (the client's key "+src+")", ActorAS)
	if !opened {
		return p, nil
	}
	r.st.asPATime = at
	d := at.Sub(r.at)
	return p, []Check{{By: ActorWalkthrough, Result: map[bool]string{true: CheckPass, false: CheckFail}[d < r.o.Clockskew && d > -r.o.Clockskew],
		Text: "the challenge's time is within " + shortDuration(r.o.Clockskew) + " of when the request was seen (off by " + skewText(d) +
			"): the AS compares it with its own clock, as it does an encrypted timestamp"}}
}

// openPAEncTS decrypts a PA-ENC-TS-ENC (an encrypted timestamp or challenge) into p; src says what the key is.
func (r *Recorder) openPAEncTS(p *Part, ed types.EncryptedData, key types.EncryptionKey, usage uint32, src, sealedFor string) (time.Time, bool) {
	plain, err := decryptSafe(ed, key, usage)
	if err != nil {
		p.SealedFor, p.Reason = sealedFor, "does not decrypt with "+src
		return time.Time{}, false
	}
	var ts types.PAEncTSEnc
	if err := decodeSafe(func() error { return ts.Unmarshal(plain) }); err != nil {
		p.SealedFor, p.Reason = sealedFor, "decrypts, but does not decode: "+err.Error()
		return time.Time{}, false
	}
	p.Opened = true
	p.Fields = []Field{field("patimestamp", kTime(ts.PATimestamp)), field("pausec", strconv.Itoa(ts.PAUSec))}
	return ts.PATimestamp.Add(time.Duration(ts.PAUSec) * time.Microsecond), true
}

// fastASReqNotes are the notes of an armored AS-REQ: what FAST protects, why the armor key mixes two keys, and
// (with an encrypted challenge) why the challenge resists offline guessing.
func fastASReqNotes(challenge bool) []Note {
	if challenge {
		return []Note{{NoteWhy, "Whoever captures a plain AS-REQ's PA-ENC-TIMESTAMP can guess passwords offline: derive a key " +
			"from each guess and see whether the timestamp decrypts. The encrypted challenge is sealed in KRB-FX-CF2 of the " +
			"armor key and the client's key: without the armor key, which needs the armor ticket's session key, a guess " +
			"cannot be tested, so a captured armored login gives an attacker on the path nothing to guess against."}}
	}
	return []Note{
		{NoteWhy, "FAST [RFC 6113] protects what a plain AS exchange leaves open: the padata (the pre-authentication, which an " +
			"attacker on the path could otherwise take away and guess passwords against offline) and the KDC's errors (which " +
			"anyone could otherwise forge). Both travel in the armor key; the req-checksum ties the cleartext req-body to it."},
		{NoteWhy, "The armor key mixes two keys with KRB-FX-CF2: the armor ticket's session key, which the KDC finds inside " +
			"the armor ticket (sealed in its own key) and the client holds from the ticket's AS-REP, and the authenticator's " +
			"subkey, fresh for this request. So each exchange gets its own armor key even when one armor ticket serves many " +
			"logins, and the result looks unrelated to either key."},
	}
}

// fastErr is what the PA-FX-FAST of an armored KRB-ERROR showed.
type fastErr struct {
	part   Part
	opened bool
	inner  *messages.KRBError   // the real error (PA-FX-ERROR)
	md     types.PADataSequence // the methods on offer, without PA-FX-ERROR
	nonce  int
	cookie []byte
}

// fastErrorPart opens the KrbFastResponse of an armored KRB-ERROR's e-data with the armor key (usage 52): the
// real KRB-ERROR (PA-FX-ERROR), the METHOD-DATA on offer and the cookie [RFC 6113 §5.2, §5.4.3].
func (r *Recorder) fastErrorPart(v []byte) *fastErr {
	fe := &fastErr{part: Part{Name: "e-data PA-FX-FAST (KrbFastResponse in enc-fast-rep)",
		What: "the KDC's real answer, inside the armor: the KRB-ERROR itself (PA-FX-ERROR), the pre-authentication methods on offer, and a cookie",
		Key:  keyInfo(armorKeyOwner, r.st.fastArmor, r.st.fastArmor.KeyType, 0, usageFastRep, r.o.ShowKeys)}}
	if !r.st.haveFastArmor {
		fe.part.SealedFor, fe.part.Reason = ActorClient, "the armor key of the request is not known here"
		fe.part.CipherSize = fastRepCipherSize(v)
		return fe
	}
	fr, ed, err := openFastReply(v, r.st.fastArmor)
	if ed != nil {
		fe.part.CipherSize = len(ed.Cipher)
	}
	if err != nil {
		fe.part.SealedFor, fe.part.Reason = ActorClient, "does not open with the armor key: "+err.Error()
		return fe
	}
	fe.opened, fe.nonce = true, fr.Nonce
	var pas []Field
	for _, pa := range fr.PAData {
		switch pa.PADataType {
		case paFXError:
			re, err := ticket.ParseKRBError(pa.PADataValue)
			if err != nil {
				pas = append(pas, field(paName(paFXError), "undecodable: "+err.Error()))
				continue
			}
			fe.inner = &re.KRBError
			pas = append(pas, field(paName(paFXError), "the real KRB-ERROR, inside the armor", krbErrorFields(re.KRBError)...))
		case paFXCookie:
			fe.cookie = slices.Clone(pa.PADataValue)
			fe.md = append(fe.md, pa)
			pas = append(pas, padataField(pa))
		default:
			fe.md = append(fe.md, pa)
			pas = append(pas, padataField(pa))
		}
	}
	fe.part.Opened = true
	fe.part.Fields = append(fe.part.Fields, field("padata", "", pas...), field("nonce", fastNonceText(fr.Nonce)))
	return fe
}

// fastErrorChecks adds what the client checks of an armored error before it takes the error inside.
func (r *Recorder) fastErrorChecks(s *Step, fe *fastErr, outer int32) {
	add := func(ok bool, text string) {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: map[bool]string{true: CheckPass, false: CheckFail}[ok], Text: text})
	}
	if !fe.opened {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckInfo, Text: "the real error and the methods on offer travel " +
			"inside the armor, which is not open here"})
		return
	}
	add(true, "the KrbFastResponse opens with the armor key (key usage 52): only the KDC, which opened the armor, could have sealed it")
	add(fe.inner != nil && fe.inner.ErrorCode == outer, "PA-FX-ERROR holds the real KRB-ERROR, with the outer error's code: "+errorName(outer))
	add(fe.nonce == r.st.asNonce, fmt.Sprintf("the nonce in the KrbFastResponse is the request's, %d", r.st.asNonce))
	if fe.cookie != nil {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: CheckInfo, Text: fmt.Sprintf("PA-FX-COOKIE %q: the client "+
			"echoes it in its next request, inside the armor, so that a KDC keeping state between the rounds finds it [RFC 6113 §5.2]", fe.cookie)})
	}
}

// fastReply is what the PA-FX-FAST of an armored AS-REP or TGS-REP showed.
type fastReply struct {
	resp       *der.FastResponse // nil when it did not open
	part       Part
	strengthen *types.EncryptionKey
}

// openFastReplyPart opens the KrbFastResponse of an armored reply (the PA-FX-FAST of its padata) with the armor
// key of its request (usage 52) [RFC 6113 §5.4.3]; letter is the reply part (A, F) whose key a strengthen-key
// changes, keyOwner describes the armor key. It returns nil when the reply carries no PA-FX-FAST.
func (r *Recorder) openFastReplyPart(pas types.PADataSequence, letter, keyOwner string) *fastReply {
	v, ok := ticket.PAValue(pas, paFXFast)
	if !ok || len(v) == 0 {
		return nil
	}
	fx := &fastReply{part: Part{Name: "padata PA-FX-FAST (KrbFastResponse in enc-fast-rep)",
		What: "the KDC's answer inside the armor: the reply's padata, a strengthen-key that changes the key " + letter +
			" is sealed in, and KrbFastFinished",
		Key: keyInfo(keyOwner, r.st.fastArmor, r.st.fastArmor.KeyType, 0, usageFastRep, r.o.ShowKeys)}}
	p := &fx.part
	if !r.st.haveFastArmor {
		p.SealedFor, p.Reason = ActorClient, "the armor key of the request is not known here"
		p.CipherSize = fastRepCipherSize(v)
		return fx
	}
	fr, ed, err := openFastReply(v, r.st.fastArmor)
	if ed != nil {
		p.CipherSize = len(ed.Cipher)
	}
	if err != nil {
		p.SealedFor, p.Reason = ActorClient, "does not open with the armor key: "+err.Error()
		return fx
	}
	fx.resp = fr
	p.Opened = true
	if len(fr.PAData) > 0 {
		p.Fields = append(p.Fields, field("padata", "", padataFields(fr.PAData)...))
	}
	if k := fr.StrengthenKey; k != nil && k.KeyType != 0 {
		fx.strengthen = k
		p.Fields = append(p.Fields, keyField("strengthen-key", *k, r.o.ShowKeys))
	} else {
		p.Fields = append(p.Fields, field("strengthen-key", "absent: "+letter+" is sealed in the reply key as usual"))
	}
	if f := fr.Finished; f != nil {
		p.Fields = append(p.Fields, field("finished", "KrbFastFinished", finishedFields(f)...))
	} else {
		p.Fields = append(p.Fields, field("finished", "absent"))
	}
	p.Fields = append(p.Fields, field("nonce", fastNonceText(fr.Nonce)))
	return fx
}

// finishedFields shows KrbFastFinished [RFC 6113 §5.4.3].
func finishedFields(f *der.FastFinished) []Field {
	return []Field{
		field("timestamp", kTimeUsec(f.Timestamp, f.Usec)+" (the KDC's clock)"),
		field("usec", strconv.Itoa(f.Usec)),
		field("crealm", f.CRealm),
		field("cname", princName(f.CName, "")),
		field("ticket-checksum", checksumName(f.TicketChecksum.CksumType)+": see part ticket-checksum"),
	}
}

// fastReplyChecks adds the part and the client's checks of an opened armored reply: the KrbFastResponse opened
// with the armor key, its nonce, and KrbFastFinished's ticket-checksum over the ticket (ticketLetter, raw as
// sent) with the armor key (usage 53) and its client name.
func (r *Recorder) fastReplyChecks(s *Step, fx *fastReply, rawTicket []byte, ticketLetter string, nonce int, client principal.Name) {
	s.Parts = append(s.Parts, fx.part)
	if fx.resp == nil {
		return
	}
	add := func(ok bool, text string) {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: map[bool]string{true: CheckPass, false: CheckFail}[ok], Text: text})
	}
	add(true, "the KrbFastResponse opens with the armor key (key usage 52): only the KDC, which opened the armor, could have sealed it")
	add(fx.resp.Nonce == nonce, fmt.Sprintf("the nonce in the KrbFastResponse is the request's, %d", nonce))
	f := fx.resp.Finished
	if f == nil {
		add(false, "no KrbFastFinished in the armored reply: nothing binds ticket "+ticketLetter+" to the armor [RFC 6113 §5.4.3]")
		return
	}
	ck := Part{Name: "ticket-checksum (KrbFastFinished, over ticket " + ticketLetter + ")", Checksum: true, CipherSize: len(f.TicketChecksum.Checksum),
		What: "a keyed checksum over the ticket as sent in clear: it binds ticket " + ticketLetter + " to this armored exchange",
		Key:  keyInfo(fx.part.Key.Owner, r.st.fastArmor, r.st.fastArmor.KeyType, 0, usageFastFinished, r.o.ShowKeys)}
	ok := verifyChecksum(r.st.fastArmor, usageFastFinished, rawTicket, f.TicketChecksum.Checksum)
	if ok {
		ck.Opened, ck.Fields = true, []Field{
			field("cksumtype", checksumName(f.TicketChecksum.CksumType)),
			field("checksum", hexKey(f.TicketChecksum.Checksum)),
			field("covers", "ticket "+ticketLetter+" as sent, "+bytesText(len(rawTicket))),
		}
	} else {
		ck.SealedFor, ck.Reason = ActorClient, "does not verify with the armor key over ticket "+ticketLetter
	}
	s.Parts = append(s.Parts, ck)
	add(ok, "the ticket-checksum in KrbFastFinished verifies with the armor key over ticket "+ticketLetter+" (key usage 53): "+
		"the ticket is the one the KDC issued in this armored exchange, not one swapped in on the way")
	cl := principal.FromPrincipalName(f.CName, f.CRealm)
	add(client.Realm == "" || cl.Equal(client), "KrbFastFinished names the client, "+cl.String())
}

// kdcChallengePart adds the KDC's encrypted challenge of an opened armored AS-REP, in the KDC challenge key
// (usage 55) [RFC 6113 §5.4.6], with the client's checks.
func (r *Recorder) kdcChallengePart(s *Step, fx *fastReply) {
	if fx.resp == nil {
		return
	}
	add := func(ok bool, text string) {
		s.Checks = append(s.Checks, Check{By: ActorClient, Result: map[bool]string{true: CheckPass, false: CheckFail}[ok], Text: text})
	}
	v, ok := ticket.PAValue(fx.resp.PAData, paEncChallenge)
	if !ok || len(v) == 0 {
		return
	}
	var ed types.EncryptedData
	if err := decodeSafe(func() error { return ed.Unmarshal(v) }); err != nil {
		return
	}
	p := Part{Name: "PA-ENCRYPTED-CHALLENGE from the KDC (PA-ENC-TS-ENC), inside the armor", CipherSize: len(ed.Cipher),
		What: "the KDC's current time, proving the KDC knows the client's key too"}
	key, src, haveKey := r.clientKeyFor(ed.EType, ed.KVNO)
	var kc types.EncryptionKey
	var err error
	if haveKey {
		kc, err = cf2(r.st.fastArmor, key, "kdcchallengearmor", "challengelongterm")
	}
	p.Key = keyInfo("the KDC challenge key: KRB-FX-CF2(the armor key, "+r.owner(r.st.client)+", \"kdcchallengearmor\", \"challengelongterm\")",
		kc, ed.EType, ed.KVNO, usageEncChallengeKDC, r.o.ShowKeys)
	switch {
	case !haveKey:
		p.SealedFor, p.Reason = ActorClient, "the client's key is not known to this view"
	case err != nil:
		p.SealedFor, p.Reason = ActorClient, "the challenge key cannot be derived here: "+err.Error()
	default:
		if at, ok := r.openPAEncTS(&p, ed, kc, usageEncChallengeKDC, "the KDC challenge key (the client's key "+src+")", ActorClient); ok {
			add(true, "the KDC's encrypted challenge decrypts with the KDC challenge key (key usage 55): the KDC knows the client's "+
				"key, so the answer comes from the realm's KDC [RFC 6113 §5.4.6]")
			d := at.Sub(r.at)
			add(d < r.o.Clockskew && d > -r.o.Clockskew, "the KDC's challenge time is within "+shortDuration(r.o.Clockskew)+
				" of the client's clock (off by "+skewText(d)+")")
		} else {
			add(false, "the KDC's encrypted challenge does not decrypt with the KDC challenge key")
		}
	}
	s.Parts = append(s.Parts, p)
}

// fastASRepNotes explain an armored AS-REP: the strengthened reply key and KrbFastFinished.
func fastASRepNotes(strengthened bool) []Note {
	n := []Note{{NoteWhy, "KrbFastFinished's ticket-checksum binds ticket B, which travels in clear, to the armor: a ticket " +
		"swapped on the way fails the checksum. Everything else the KDC says (the padata, its challenge) is inside the armor."}}
	if strengthened {
		n = append(n, Note{NoteWhy, "A is sealed not in the client's long-term key but in KRB-FX-CF2(strengthen-key, that key) " +
			"[RFC 6113 §5.4.3]. The strengthen-key is fresh and travels inside the armor, so even someone who knows or guesses " +
			"the password cannot open A (and take the TGT's session key) from a capture without opening the armor too."})
	}
	return n
}
