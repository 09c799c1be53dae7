package der

import (
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The decoders of the Kerberos types (RFC 4120 §5). Each reads the one
// element w holds; fields follow the ASN.1 module order, and anything after
// the last field of a SEQUENCE is ignored, as RFC 4120 §5.1 asks of receivers
// of extensible types and as gofork does.

// seqOf reads the SEQUENCE OF that w holds, each element a SEQUENCE read by elem.
// An empty list is a non-nil empty slice, as gofork makes it.
func seqOf[T any](d *decoder, w cryptobyte.String, tag casn1.Tag, what string, elem func(*decoder, cryptobyte.String) T) []T {
	c, ok := d.seq(w, what)
	if !ok {
		return nil
	}
	n, ok := d.count(c, tag, what)
	if !ok {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		var e cryptobyte.String
		c.ReadASN1Element(&e, tag) // checked by count
		out[i] = elem(d, e)
		if d.err != nil {
			return nil
		}
	}
	return out
}

func (d *decoder) strings(w cryptobyte.String, what string) []string {
	c, ok := d.seq(w, what)
	if !ok {
		return nil
	}
	n, ok := d.count(c, tagGeneralString, what)
	if !ok {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		var e cryptobyte.String
		c.ReadASN1(&e, tagGeneralString)
		out[i] = d.str(e)
	}
	return out
}

func (d *decoder) int32s(w cryptobyte.String, what string) []int32 {
	c, ok := d.seq(w, what)
	if !ok {
		return nil
	}
	n, ok := d.count(c, casn1.INTEGER, what)
	if !ok {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		var e cryptobyte.String
		c.ReadASN1Element(&e, casn1.INTEGER)
		if out[i], ok = d.int32Of(e, what); !ok {
			return nil
		}
	}
	return out
}

// principalName reads PrincipalName (RFC 4120 §5.2.2).
func (d *decoder) principalName(w cryptobyte.String) (pn types.PrincipalName) {
	s, ok := d.seq(w, "PrincipalName")
	if !ok {
		return
	}
	pn.NameType = d.int32Field(&s, 0, false, "PrincipalName.name-type")
	if f, ok := d.field(&s, 1, false, "PrincipalName.name-string"); ok {
		pn.NameString = d.strings(f, "PrincipalName.name-string")
	}
	return
}

// encryptedData reads EncryptedData (RFC 4120 §5.2.9).
func (d *decoder) encryptedData(w cryptobyte.String) (ed types.EncryptedData) {
	s, ok := d.seq(w, "EncryptedData")
	if !ok {
		return
	}
	ed.EType = d.int32Field(&s, 0, false, "EncryptedData.etype")
	ed.KVNO = d.intField(&s, 1, true, "EncryptedData.kvno")
	ed.Cipher = d.bytesField(&s, 2, false, "EncryptedData.cipher")
	return
}

// encryptionKey reads EncryptionKey (RFC 4120 §5.2.9).
func (d *decoder) encryptionKey(w cryptobyte.String) (k types.EncryptionKey) {
	s, ok := d.seq(w, "EncryptionKey")
	if !ok {
		return
	}
	k.KeyType = d.int32Field(&s, 0, false, "EncryptionKey.keytype")
	k.KeyValue = d.bytesField(&s, 1, false, "EncryptionKey.keyvalue")
	return
}

// checksum reads Checksum (RFC 4120 §5.2.9).
func (d *decoder) checksum(w cryptobyte.String) (c types.Checksum) {
	s, ok := d.seq(w, "Checksum")
	if !ok {
		return
	}
	c.CksumType = d.int32Field(&s, 0, false, "Checksum.cksumtype")
	c.Checksum = d.bytesField(&s, 1, false, "Checksum.checksum")
	return
}

// hostAddress reads HostAddress (RFC 4120 §5.2.5).
func (d *decoder) hostAddress(w cryptobyte.String) (a types.HostAddress) {
	s, ok := d.seq(w, "HostAddress")
	if !ok {
		return
	}
	a.AddrType = d.int32Field(&s, 0, false, "HostAddress.addr-type")
	a.Address = d.bytesField(&s, 1, false, "HostAddress.address")
	return
}

func (d *decoder) hostAddresses(w cryptobyte.String) []types.HostAddress {
	return seqOf(d, w, casn1.SEQUENCE, "HostAddresses", (*decoder).hostAddress)
}

// paData reads PA-DATA (RFC 4120 §5.2.7); its first field is [1].
func (d *decoder) paData(w cryptobyte.String) (pa types.PAData) {
	s, ok := d.seq(w, "PA-DATA")
	if !ok {
		return
	}
	pa.PADataType = d.int32Field(&s, 1, false, "PA-DATA.padata-type")
	pa.PADataValue = d.bytesField(&s, 2, false, "PA-DATA.padata-value")
	return
}

func (d *decoder) paDataSeq(w cryptobyte.String) types.PADataSequence {
	return seqOf(d, w, casn1.SEQUENCE, "SEQUENCE OF PA-DATA", (*decoder).paData)
}

// authorizationData reads AuthorizationData (RFC 4120 §5.2.6).
func (d *decoder) authorizationData(w cryptobyte.String) types.AuthorizationData {
	return seqOf(d, w, casn1.SEQUENCE, "AuthorizationData", func(d *decoder, e cryptobyte.String) (a types.AuthorizationDataEntry) {
		s, ok := d.seq(e, "AuthorizationData")
		if !ok {
			return
		}
		a.ADType = d.int32Field(&s, 0, false, "AuthorizationData.ad-type")
		a.ADData = d.bytesField(&s, 1, false, "AuthorizationData.ad-data")
		return
	})
}

// transited reads TransitedEncoding (RFC 4120 §5.3).
func (d *decoder) transited(w cryptobyte.String) (t messages.TransitedEncoding) {
	s, ok := d.seq(w, "TransitedEncoding")
	if !ok {
		return
	}
	t.TRType = d.int32Field(&s, 0, false, "TransitedEncoding.tr-type")
	t.Contents = d.bytesField(&s, 1, false, "TransitedEncoding.contents")
	return
}

// ticket reads Ticket ::= [APPLICATION 1] SEQUENCE (RFC 4120 §5.3).
func (d *decoder) ticket(w cryptobyte.String) (t messages.Ticket) {
	a, ok := d.one(w, application(asnAppTag.Ticket), "Ticket")
	if !ok {
		return
	}
	s, ok := d.seq(a, "Ticket")
	if !ok {
		return
	}
	t.TktVNO = d.intField(&s, 0, false, "Ticket.tkt-vno")
	t.Realm = d.stringField(&s, 1, false, "Ticket.realm")
	if f, ok := d.field(&s, 2, false, "Ticket.sname"); ok {
		t.SName = d.principalName(f)
	}
	if f, ok := d.field(&s, 3, false, "Ticket.enc-part"); ok {
		t.EncPart = d.encryptedData(f)
	}
	return
}

// encTicketPart reads EncTicketPart ::= [APPLICATION 3] SEQUENCE (RFC 4120 §5.3).
func (d *decoder) encTicketPart(w cryptobyte.String, p *messages.EncTicketPart) {
	a, ok := d.one(w, application(asnAppTag.EncTicketPart), "EncTicketPart")
	if !ok {
		return
	}
	s, ok := d.seq(a, "EncTicketPart")
	if !ok {
		return
	}
	p.Flags = d.flagsField(&s, 0, "EncTicketPart.flags")
	if f, ok := d.field(&s, 1, false, "EncTicketPart.key"); ok {
		p.Key = d.encryptionKey(f)
	}
	p.CRealm = d.stringField(&s, 2, false, "EncTicketPart.crealm")
	if f, ok := d.field(&s, 3, false, "EncTicketPart.cname"); ok {
		p.CName = d.principalName(f)
	}
	if f, ok := d.field(&s, 4, false, "EncTicketPart.transited"); ok {
		p.Transited = d.transited(f)
	}
	p.AuthTime = d.timeField(&s, 5, false, "EncTicketPart.authtime")
	p.StartTime = d.timeField(&s, 6, true, "EncTicketPart.starttime")
	p.EndTime = d.timeField(&s, 7, false, "EncTicketPart.endtime")
	p.RenewTill = d.timeField(&s, 8, true, "EncTicketPart.renew-till")
	if f, ok := d.field(&s, 9, true, "EncTicketPart.caddr"); ok {
		p.CAddr = d.hostAddresses(f)
	}
	if f, ok := d.field(&s, 10, true, "EncTicketPart.authorization-data"); ok {
		p.AuthorizationData = d.authorizationData(f)
	}
}

// authenticator reads Authenticator ::= [APPLICATION 2] SEQUENCE (RFC 4120 §5.5.1).
func (d *decoder) authenticator(w cryptobyte.String, a *types.Authenticator) {
	app, ok := d.one(w, application(asnAppTag.Authenticator), "Authenticator")
	if !ok {
		return
	}
	s, ok := d.seq(app, "Authenticator")
	if !ok {
		return
	}
	a.AVNO = d.intField(&s, 0, false, "Authenticator.authenticator-vno")
	a.CRealm = d.stringField(&s, 1, false, "Authenticator.crealm")
	if f, ok := d.field(&s, 2, false, "Authenticator.cname"); ok {
		a.CName = d.principalName(f)
	}
	if f, ok := d.field(&s, 3, true, "Authenticator.cksum"); ok {
		a.Cksum = d.checksum(f)
	}
	a.Cusec = d.intField(&s, 4, false, "Authenticator.cusec")
	a.CTime = d.timeField(&s, 5, false, "Authenticator.ctime")
	if f, ok := d.field(&s, 6, true, "Authenticator.subkey"); ok {
		a.SubKey = d.encryptionKey(f)
	}
	if f, ok := d.field(&s, 7, true, "Authenticator.seq-number"); ok {
		a.SeqNumber, _ = d.int64Of(f, "Authenticator.seq-number")
	}
	if f, ok := d.field(&s, 8, true, "Authenticator.authorization-data"); ok {
		a.AuthorizationData = d.authorizationData(f)
	}
}

// apReq reads AP-REQ ::= [APPLICATION 14] SEQUENCE (RFC 4120 §5.5.1).
func (d *decoder) apReq(w cryptobyte.String, r *messages.APReq) {
	app, ok := d.one(w, application(asnAppTag.APREQ), "AP-REQ")
	if !ok {
		return
	}
	s, ok := d.seq(app, "AP-REQ")
	if !ok {
		return
	}
	r.PVNO = d.intField(&s, 0, false, "AP-REQ.pvno")
	r.MsgType = d.intField(&s, 1, false, "AP-REQ.msg-type")
	r.APOptions = d.flagsField(&s, 2, "AP-REQ.ap-options")
	if f, ok := d.field(&s, 3, false, "AP-REQ.ticket"); ok {
		r.Ticket = d.ticket(f)
	}
	if f, ok := d.field(&s, 4, false, "AP-REQ.authenticator"); ok {
		r.EncryptedAuthenticator = d.encryptedData(f)
	}
	if d.err == nil && r.MsgType != msgtype.KRB_AP_REQ {
		d.fail("AP-REQ.msg-type", fmt.Sprintf("%d, want %d", r.MsgType, msgtype.KRB_AP_REQ))
	}
}

// KDCReq is a decoded AS-REQ or TGS-REQ (RFC 4120 §5.4.1) with its req-body
// as received.
type KDCReq struct {
	PVNO    int
	MsgType int // msgtype.KRB_AS_REQ or msgtype.KRB_TGS_REQ
	PAData  types.PADataSequence
	Body    messages.KDCReqBody
	// RawBody is the DER KDC-REQ-BODY exactly as received (it aliases the
	// input): the TGS authenticator checksum covers these bytes.
	RawBody []byte
}

// kdcReqBody reads KDC-REQ-BODY (RFC 4120 §5.4.1).
func (d *decoder) kdcReqBody(w cryptobyte.String, b *messages.KDCReqBody) {
	s, ok := d.seq(w, "KDC-REQ-BODY")
	if !ok {
		return
	}
	b.KDCOptions = d.flagsField(&s, 0, "KDC-REQ-BODY.kdc-options")
	if f, ok := d.field(&s, 1, true, "KDC-REQ-BODY.cname"); ok {
		b.CName = d.principalName(f)
	}
	b.Realm = d.stringField(&s, 2, false, "KDC-REQ-BODY.realm")
	if f, ok := d.field(&s, 3, true, "KDC-REQ-BODY.sname"); ok {
		b.SName = d.principalName(f)
	}
	b.From = d.timeField(&s, 4, true, "KDC-REQ-BODY.from")
	b.Till = d.timeField(&s, 5, false, "KDC-REQ-BODY.till")
	b.RTime = d.timeField(&s, 6, true, "KDC-REQ-BODY.rtime")
	b.Nonce = d.intField(&s, 7, false, "KDC-REQ-BODY.nonce")
	if f, ok := d.field(&s, 8, false, "KDC-REQ-BODY.etype"); ok {
		b.EType = d.int32s(f, "KDC-REQ-BODY.etype")
	}
	if f, ok := d.field(&s, 9, true, "KDC-REQ-BODY.addresses"); ok {
		b.Addresses = d.hostAddresses(f)
	}
	if f, ok := d.field(&s, 10, true, "KDC-REQ-BODY.enc-authorization-data"); ok {
		b.EncAuthData = d.encryptedData(f)
	}
	// gokrb5 takes whatever element follows as additional-tickets; so
	// anything left must be those.
	if d.err == nil && !s.Empty() {
		if f, ok := d.field(&s, 11, false, "KDC-REQ-BODY.additional-tickets"); ok {
			tickets := seqOf(d, f, application(asnAppTag.Ticket), "KDC-REQ-BODY.additional-tickets", (*decoder).ticket)
			if len(tickets) > 0 {
				b.AdditionalTickets = tickets
			}
		}
	}
}

// DecodeKDCReq decodes an AS-REQ or TGS-REQ, [APPLICATION 10 or 12] KDC-REQ,
// into r, keeping the req-body bytes as received. The msg-type must agree with
// the APPLICATION tag; nothing may follow the message.
func DecodeKDCReq(b []byte, r *KDCReq) error {
	d := decoder{in: b}
	s := cryptobyte.String(b)
	if len(s) == 0 || (s[0] != byte(application(asnAppTag.ASREQ)) && s[0] != byte(application(asnAppTag.TGSREQ))) {
		return fmt.Errorf("%w: not an AS-REQ or TGS-REQ", ErrMalformed)
	}
	appTag := int(s[0] & 0x1f)
	var app cryptobyte.String
	if !s.ReadASN1(&app, casn1.Tag(s[0])) || !s.Empty() {
		return fmt.Errorf("%w: KDC-REQ: bad length or trailing bytes", ErrMalformed)
	}
	seq, ok := d.seq(app, "KDC-REQ")
	if !ok {
		return d.err
	}
	*r = KDCReq{}
	r.PVNO = d.intField(&seq, 1, false, "KDC-REQ.pvno")
	r.MsgType = d.intField(&seq, 2, false, "KDC-REQ.msg-type")
	if f, ok := d.field(&seq, 3, true, "KDC-REQ.padata"); ok {
		r.PAData = d.paDataSeq(f)
	}
	if f, ok := d.field(&seq, 4, false, "KDC-REQ.req-body"); ok {
		r.RawBody = f
		d.kdcReqBody(f, &r.Body)
	}
	if d.err != nil {
		return d.err
	}
	if r.MsgType != appTag {
		return fmt.Errorf("%w: KDC-REQ: msg-type %d inside APPLICATION %d", ErrMalformed, r.MsgType, appTag)
	}
	return nil
}

// finish returns d's error, or one for bytes after the message.
func (d *decoder) finish(rest cryptobyte.String, what string) error {
	if d.err == nil && !rest.Empty() {
		d.fail(what, "trailing bytes after the message")
	}
	return d.err
}

// whole splits b into its first element and what follows.
func whole(b []byte) (first, rest cryptobyte.String) {
	s := cryptobyte.String(b)
	var e cryptobyte.String
	var t casn1.Tag
	if !s.ReadAnyASN1Element(&e, &t) {
		return nil, nil
	}
	return e, s
}

// DecodeAPReq decodes AP-REQ (RFC 4120 §5.5.1), the value of PA-TGS-REQ.
func DecodeAPReq(b []byte, r *messages.APReq) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*r = messages.APReq{}
	d.apReq(e, r)
	return d.finish(rest, "AP-REQ")
}

// DecodeTicket decodes Ticket (RFC 4120 §5.3).
func DecodeTicket(b []byte, t *messages.Ticket) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*t = d.ticket(e)
	return d.finish(rest, "Ticket")
}

// DecodeEncTicketPart decodes EncTicketPart (RFC 4120 §5.3), a ticket's
// decrypted enc-part.
func DecodeEncTicketPart(b []byte, p *messages.EncTicketPart) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*p = messages.EncTicketPart{}
	d.encTicketPart(e, p)
	return d.finish(rest, "EncTicketPart")
}

// DecodeAuthenticator decodes Authenticator (RFC 4120 §5.5.1).
func DecodeAuthenticator(b []byte, a *types.Authenticator) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*a = types.Authenticator{}
	d.authenticator(e, a)
	return d.finish(rest, "Authenticator")
}

// DecodeEncryptedData decodes EncryptedData (RFC 4120 §5.2.9), e.g. the value
// of PA-ENC-TIMESTAMP.
func DecodeEncryptedData(b []byte, ed *types.EncryptedData) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*ed = d.encryptedData(e)
	return d.finish(rest, "EncryptedData")
}

// DecodePAEncTSEnc decodes PA-ENC-TS-ENC (RFC 4120 §5.2.7.2), the plaintext of
// PA-ENC-TIMESTAMP.
func DecodePAEncTSEnc(b []byte, ts *types.PAEncTSEnc) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*ts = types.PAEncTSEnc{}
	if s, ok := d.seq(e, "PA-ENC-TS-ENC"); ok {
		ts.PATimestamp = d.timeField(&s, 0, false, "PA-ENC-TS-ENC.patimestamp")
		ts.PAUSec = d.intField(&s, 1, true, "PA-ENC-TS-ENC.pausec")
	}
	return d.finish(rest, "PA-ENC-TS-ENC")
}

// DecodePAData decodes a SEQUENCE OF PA-DATA (RFC 4120 §5.2.7; METHOD-DATA,
// §5.9.1, has the same form).
func DecodePAData(b []byte) (types.PADataSequence, error) {
	d := decoder{in: b}
	e, rest := whole(b)
	pas := d.paDataSeq(e)
	return pas, d.finish(rest, "SEQUENCE OF PA-DATA")
}

// DecodeChecksum decodes Checksum (RFC 4120 §5.2.9).
func DecodeChecksum(b []byte, c *types.Checksum) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*c = d.checksum(e)
	return d.finish(rest, "Checksum")
}

// DecodePrincipalName decodes PrincipalName (RFC 4120 §5.2.2).
func DecodePrincipalName(b []byte, pn *types.PrincipalName) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*pn = d.principalName(e)
	return d.finish(rest, "PrincipalName")
}

// DecodeHostAddresses decodes HostAddresses (RFC 4120 §5.2.5).
func DecodeHostAddresses(b []byte) ([]types.HostAddress, error) {
	d := decoder{in: b}
	e, rest := whole(b)
	a := d.hostAddresses(e)
	return a, d.finish(rest, "HostAddresses")
}

// DecodeAuthorizationData decodes AuthorizationData (RFC 4120 §5.2.6), e.g. the
// plaintext of a TGS-REQ's enc-authorization-data.
func DecodeAuthorizationData(b []byte) (types.AuthorizationData, error) {
	d := decoder{in: b}
	e, rest := whole(b)
	a := d.authorizationData(e)
	return a, d.finish(rest, "AuthorizationData")
}

// DecodeKerberosTime decodes a KerberosTime element (RFC 4120 §5.2.3).
func DecodeKerberosTime(b []byte) (time.Time, error) {
	d := decoder{in: b}
	e, rest := whole(b)
	c, ok := d.one(e, tagKerberosTime, "KerberosTime")
	if !ok {
		return time.Time{}, d.err
	}
	t, ok := ParseKerberosTime(c)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: KerberosTime: not YYYYMMDDHHMMSSZ", ErrMalformed)
	}
	return t, d.finish(rest, "KerberosTime")
}
