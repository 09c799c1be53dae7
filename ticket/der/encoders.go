package der

import (
	"fmt"

	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The encoders of the Kerberos types (RFC 4120 §5). An optional field is left
// out exactly when gokrb5 leaves it out: when it equals its Go zero value (a
// nil slice, not an empty one; the zero time; 0; ""). gofork also passes
// "optional" on to the elements of an optional SEQUENCE OF, so it drops the
// elements that are entirely zero (type 0, nil value) from those lists; the
// encoders do the same (dropZero), such an element carrying nothing anyway.

func (e *encoder) principalName(pn *types.PrincipalName) {
	s := e.seq()
	e.intField(0, int64(pn.NameType))
	f := e.explicit(1)
	l := e.seq()
	for _, c := range pn.NameString {
		e.generalString(c)
	}
	e.close(l)
	e.close(f)
	e.close(s)
}

func (e *encoder) principalNameField(tag uint8, pn *types.PrincipalName) {
	f := e.explicit(tag)
	e.principalName(pn)
	e.close(f)
}

// zeroPrincipalName is gokrb5's test for an absent optional PrincipalName.
func zeroPrincipalName(pn *types.PrincipalName) bool { return pn.NameType == 0 && pn.NameString == nil }

func (e *encoder) encryptedData(ed *types.EncryptedData) {
	s := e.seq()
	e.intField(0, int64(ed.EType))
	if ed.KVNO != 0 {
		e.intField(1, int64(ed.KVNO))
	}
	e.octetsField(2, ed.Cipher)
	e.close(s)
}

func (e *encoder) encryptedDataField(tag uint8, ed *types.EncryptedData) {
	f := e.explicit(tag)
	e.encryptedData(ed)
	e.close(f)
}

func (e *encoder) encryptionKeyField(tag uint8, k *types.EncryptionKey) {
	f := e.explicit(tag)
	s := e.seq()
	e.intField(0, int64(k.KeyType))
	e.octetsField(1, k.KeyValue)
	e.close(s)
	e.close(f)
}

func (e *encoder) hostAddressesField(tag uint8, as []types.HostAddress, dropZero bool) {
	f := e.explicit(tag)
	l := e.seq()
	for i := range as {
		if dropZero && as[i].AddrType == 0 && as[i].Address == nil {
			continue
		}
		s := e.seq()
		e.intField(0, int64(as[i].AddrType))
		e.octetsField(1, as[i].Address)
		e.close(s)
	}
	e.close(l)
	e.close(f)
}

func (e *encoder) authorizationData(ad types.AuthorizationData, dropZero bool) {
	l := e.seq()
	for i := range ad {
		if dropZero && ad[i].ADType == 0 && ad[i].ADData == nil {
			continue
		}
		s := e.seq()
		e.intField(0, int64(ad[i].ADType))
		e.octetsField(1, ad[i].ADData)
		e.close(s)
	}
	e.close(l)
}

func (e *encoder) paDataSeq(pas []types.PAData, dropZero bool) {
	l := e.seq()
	for i := range pas {
		if dropZero && pas[i].PADataType == 0 && pas[i].PADataValue == nil {
			continue
		}
		s := e.seq()
		e.intField(1, int64(pas[i].PADataType))
		e.octetsField(2, pas[i].PADataValue)
		e.close(s)
	}
	e.close(l)
}

func (e *encoder) ticket(t *messages.Ticket) {
	a := e.app(asnAppTag.Ticket)
	s := e.seq()
	e.intField(0, int64(t.TktVNO))
	e.stringField(1, t.Realm)
	e.principalNameField(2, &t.SName)
	e.encryptedDataField(3, &t.EncPart)
	e.close(s)
	e.close(a)
}

// AppendTicket appends the DER of Ticket ::= [APPLICATION 1] (RFC 4120 §5.3).
// t.DecryptedEncPart is never encoded (protocol-notes trap 5).
func AppendTicket(dst []byte, t *messages.Ticket) ([]byte, error) {
	e := encoder{b: dst}
	e.ticket(t)
	return e.b, e.err
}

// AppendEncTicketPart appends the DER of EncTicketPart ::= [APPLICATION 3]
// (RFC 4120 §5.3), the plaintext of a ticket's enc-part.
func AppendEncTicketPart(dst []byte, p *messages.EncTicketPart) ([]byte, error) {
	e := encoder{b: dst}
	a := e.app(asnAppTag.EncTicketPart)
	s := e.seq()
	e.flagsField(0, p.Flags)
	e.encryptionKeyField(1, &p.Key)
	e.stringField(2, p.CRealm)
	e.principalNameField(3, &p.CName)
	f := e.explicit(4)
	t := e.seq()
	e.intField(0, int64(p.Transited.TRType))
	e.octetsField(1, p.Transited.Contents)
	e.close(t)
	e.close(f)
	e.timeField(5, p.AuthTime)
	e.optTimeField(6, p.StartTime)
	e.timeField(7, p.EndTime)
	e.optTimeField(8, p.RenewTill)
	if p.CAddr != nil {
		e.hostAddressesField(9, p.CAddr, true)
	}
	if p.AuthorizationData != nil {
		f := e.explicit(10)
		e.authorizationData(p.AuthorizationData, true)
		e.close(f)
	}
	e.close(s)
	e.close(a)
	return e.b, e.err
}

// AppendEncKDCRepPart appends the DER of EncKDCRepPart under appTag:
// EncASRepPart (25) or EncTGSRepPart (26) (RFC 4120 §5.4.2; gokrb5's Marshal
// always writes 25). A nil LastReqs is written as an empty last-req, which is
// mandatory.
func AppendEncKDCRepPart(dst []byte, p *messages.EncKDCRepPart, appTag int) ([]byte, error) {
	if appTag != asnAppTag.EncASRepPart && appTag != asnAppTag.EncTGSRepPart {
		return dst, fmt.Errorf("%w: EncKDCRepPart with APPLICATION %d", ErrEncode, appTag)
	}
	e := encoder{b: dst}
	a := e.app(appTag)
	s := e.seq()
	e.encryptionKeyField(0, &p.Key)
	f := e.explicit(1)
	l := e.seq()
	for i := range p.LastReqs {
		r := e.seq()
		e.intField(0, int64(p.LastReqs[i].LRType))
		e.timeField(1, p.LastReqs[i].LRValue)
		e.close(r)
	}
	e.close(l)
	e.close(f)
	e.intField(2, int64(p.Nonce))
	e.optTimeField(3, p.KeyExpiration)
	e.flagsField(4, p.Flags)
	e.timeField(5, p.AuthTime)
	e.optTimeField(6, p.StartTime)
	e.timeField(7, p.EndTime)
	e.optTimeField(8, p.RenewTill)
	e.stringField(9, p.SRealm)
	e.principalNameField(10, &p.SName)
	if p.CAddr != nil {
		e.hostAddressesField(11, p.CAddr, true)
	}
	if p.EncPAData != nil {
		f := e.explicit(12)
		e.paDataSeq(p.EncPAData, true)
		e.close(f)
	}
	e.close(s)
	e.close(a)
	return e.b, e.err
}

// AppendKDCRep appends the DER of AS-REP ([APPLICATION 11]) or TGS-REP
// ([APPLICATION 13]), chosen by r.MsgType (RFC 4120 §5.4.2). The ticket is
// encoded from r.Ticket without its DecryptedEncPart; r.DecryptedEncPart is
// ignored (r.EncPart is what travels).
func AppendKDCRep(dst []byte, r *messages.KDCRepFields) ([]byte, error) {
	var tag int
	switch r.MsgType {
	case msgtype.KRB_AS_REP:
		tag = asnAppTag.ASREP
	case msgtype.KRB_TGS_REP:
		tag = asnAppTag.TGSREP
	default:
		return dst, fmt.Errorf("%w: KDC-REP with msg-type %d", ErrEncode, r.MsgType)
	}
	e := encoder{b: dst}
	a := e.app(tag)
	s := e.seq()
	e.intField(0, int64(r.PVNO))
	e.intField(1, int64(r.MsgType))
	if r.PAData != nil {
		f := e.explicit(2)
		e.paDataSeq(r.PAData, true)
		e.close(f)
	}
	e.stringField(3, r.CRealm)
	e.principalNameField(4, &r.CName)
	f := e.explicit(5)
	e.ticket(&r.Ticket)
	e.close(f)
	e.encryptedDataField(6, &r.EncPart)
	e.close(s)
	e.close(a)
	return e.b, e.err
}

// AppendKRBError appends the DER of KRB-ERROR ::= [APPLICATION 30] (RFC 4120
// §5.9.1).
func AppendKRBError(dst []byte, k *messages.KRBError) ([]byte, error) {
	e := encoder{b: dst}
	a := e.app(asnAppTag.KRBError)
	s := e.seq()
	e.intField(0, int64(k.PVNO))
	e.intField(1, int64(k.MsgType))
	e.optTimeField(2, k.CTime)
	if k.Cusec != 0 {
		e.intField(3, int64(k.Cusec))
	}
	e.timeField(4, k.STime)
	e.intField(5, int64(k.Susec))
	e.intField(6, int64(k.ErrorCode))
	if k.CRealm != "" {
		e.stringField(7, k.CRealm)
	}
	if !zeroPrincipalName(&k.CName) {
		e.principalNameField(8, &k.CName)
	}
	e.stringField(9, k.Realm)
	e.principalNameField(10, &k.SName)
	if k.EText != "" {
		e.stringField(11, k.EText)
	}
	if k.EData != nil {
		e.octetsField(12, k.EData)
	}
	e.close(s)
	e.close(a)
	return e.b, e.err
}

// AppendPAData appends the DER of a SEQUENCE OF PA-DATA (RFC 4120 §5.2.7),
// which is also METHOD-DATA (§5.9.1), the e-data of KDC_ERR_PREAUTH_REQUIRED.
func AppendPAData(dst []byte, pas []types.PAData) []byte {
	e := encoder{b: dst}
	e.paDataSeq(pas, false)
	return e.b
}

// AppendETypeInfo2 appends the DER of ETYPE-INFO2 (RFC 4120 §5.2.7.5).
func AppendETypeInfo2(dst []byte, entries types.ETypeInfo2) []byte {
	e := encoder{b: dst}
	l := e.seq()
	for i := range entries {
		s := e.seq()
		e.intField(0, int64(entries[i].EType))
		if entries[i].Salt != "" {
			e.stringField(1, entries[i].Salt)
		}
		if entries[i].S2KParams != nil {
			e.octetsField(2, entries[i].S2KParams)
		}
		e.close(s)
	}
	e.close(l)
	return e.b
}

// AppendEncryptedData appends the DER of EncryptedData (RFC 4120 §5.2.9).
func AppendEncryptedData(dst []byte, ed *types.EncryptedData) []byte {
	e := encoder{b: dst}
	e.encryptedData(ed)
	return e.b
}

// AppendPrincipalName appends the DER of PrincipalName (RFC 4120 §5.2.2).
func AppendPrincipalName(dst []byte, pn *types.PrincipalName) []byte {
	e := encoder{b: dst}
	e.principalName(pn)
	return e.b
}

// AppendChecksum appends the DER of Checksum (RFC 4120 §5.2.9): the value of a
// PA-REQ-ENC-PA-REP, among others.
func AppendChecksum(dst []byte, c *types.Checksum) []byte {
	e := encoder{b: dst}
	e.checksum(c)
	return e.b
}
