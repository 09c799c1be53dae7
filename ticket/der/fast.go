package der

import (
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FAST (RFC 6113 §5.4) messages: the armored request a client puts in
// PA-FX-FAST, the request inside it, and the KDC's armored reply.

// FastArmoredReq is KrbFastArmoredReq (RFC 6113 §5.4.2), the armored-data [0]
// choice of PA-FX-FAST-REQUEST. Byte fields alias the input.
type FastArmoredReq struct {
	HasArmor    bool
	ArmorType   int32  // 1: FX_FAST_ARMOR_AP_REQUEST
	ArmorValue  []byte // for type 1, an AP-REQ
	ReqChecksum types.Checksum
	EncFastReq  types.EncryptedData
}

// FastReq is KrbFastReq (RFC 6113 §5.4.2), the plaintext of enc-fast-req.
// RawBody is the inner KDC-REQ-BODY as received.
type FastReq struct {
	Options asn1.BitString
	PAData  types.PADataSequence
	Body    messages.KDCReqBody
	RawBody []byte
}

// FastFinished is KrbFastFinished (RFC 6113 §5.4.3).
type FastFinished struct {
	Timestamp      time.Time
	Usec           int
	CRealm         string
	CName          types.PrincipalName
	TicketChecksum types.Checksum
}

// FastResponse is KrbFastResponse (RFC 6113 §5.4.3), the plaintext of the
// KDC's enc-fast-rep.
type FastResponse struct {
	PAData        types.PADataSequence
	StrengthenKey *types.EncryptionKey
	Finished      *FastFinished
	Nonce         int
}

// DecodeFastArmoredReq decodes the value of PA-FX-FAST in a request:
// PA-FX-FAST-REQUEST ::= CHOICE { armored-data [0] KrbFastArmoredReq }.
func DecodeFastArmoredReq(b []byte, r *FastArmoredReq) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*r = FastArmoredReq{}
	c, ok := d.one(e, context(0), "PA-FX-FAST-REQUEST")
	if ok {
		if s, ok := d.seq(c, "KrbFastArmoredReq"); ok {
			if f, ok := d.field(&s, 0, true, "KrbFastArmoredReq.armor"); ok {
				if a, ok := d.seq(f, "KrbFastArmor"); ok {
					r.HasArmor = true
					r.ArmorType = d.int32Field(&a, 0, false, "KrbFastArmor.armor-type")
					r.ArmorValue = d.bytesField(&a, 1, false, "KrbFastArmor.armor-value")
					if d.err == nil && !a.Empty() {
						d.fail("KrbFastArmor", "unexpected field")
					}
				}
			}
			if f, ok := d.field(&s, 1, false, "KrbFastArmoredReq.req-checksum"); ok {
				r.ReqChecksum = d.checksum(f)
			}
			if f, ok := d.field(&s, 2, false, "KrbFastArmoredReq.enc-fast-req"); ok {
				r.EncFastReq = d.encryptedData(f)
			}
			if d.err == nil && !s.Empty() {
				d.fail("KrbFastArmoredReq", "unexpected field")
			}
		}
	}
	return d.finish(rest, "PA-FX-FAST-REQUEST")
}

// DecodeFastReq decodes KrbFastReq (RFC 6113 §5.4.2).
func DecodeFastReq(b []byte, r *FastReq) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*r = FastReq{}
	if s, ok := d.seq(e, "KrbFastReq"); ok {
		r.Options = d.flagsField(&s, 0, "KrbFastReq.fast-options")
		if f, ok := d.field(&s, 1, false, "KrbFastReq.padata"); ok {
			r.PAData = d.paDataSeq(f)
		}
		if f, ok := d.field(&s, 2, false, "KrbFastReq.req-body"); ok {
			r.RawBody = f
			d.kdcReqBody(f, &r.Body)
		}
		if d.err == nil && !s.Empty() {
			d.fail("KrbFastReq", "unexpected field")
		}
	}
	return d.finish(rest, "KrbFastReq")
}

// DecodeFastArmoredRep decodes the value of PA-FX-FAST in a reply or in a
// KRB-ERROR's e-data: PA-FX-FAST-REPLY ::= CHOICE { armored-data [0]
// KrbFastArmoredRep }, KrbFastArmoredRep ::= SEQUENCE { enc-fast-rep [0]
// EncryptedData }.
func DecodeFastArmoredRep(b []byte, ed *types.EncryptedData) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*ed = types.EncryptedData{}
	if c, ok := d.one(e, context(0), "PA-FX-FAST-REPLY"); ok {
		if s, ok := d.seq(c, "KrbFastArmoredRep"); ok {
			if f, ok := d.field(&s, 0, false, "KrbFastArmoredRep.enc-fast-rep"); ok {
				*ed = d.encryptedData(f)
			}
			if d.err == nil && !s.Empty() {
				d.fail("KrbFastArmoredRep", "unexpected field")
			}
		}
	}
	return d.finish(rest, "PA-FX-FAST-REPLY")
}

// DecodeFastResponse decodes KrbFastResponse (RFC 6113 §5.4.3).
func DecodeFastResponse(b []byte, r *FastResponse) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*r = FastResponse{}
	if s, ok := d.seq(e, "KrbFastResponse"); ok {
		if f, ok := d.field(&s, 0, false, "KrbFastResponse.padata"); ok {
			r.PAData = d.paDataSeq(f)
		}
		if f, ok := d.field(&s, 1, true, "KrbFastResponse.strengthen-key"); ok {
			k := d.encryptionKey(f)
			r.StrengthenKey = &k
		}
		if f, ok := d.field(&s, 2, true, "KrbFastResponse.finished"); ok {
			if fs, ok := d.seq(f, "KrbFastFinished"); ok {
				fin := &FastFinished{}
				fin.Timestamp = d.timeField(&fs, 0, false, "KrbFastFinished.timestamp")
				fin.Usec = d.intField(&fs, 1, false, "KrbFastFinished.usec")
				fin.CRealm = d.stringField(&fs, 2, false, "KrbFastFinished.crealm")
				if g, ok := d.field(&fs, 3, false, "KrbFastFinished.cname"); ok {
					fin.CName = d.principalName(g)
				}
				if g, ok := d.field(&fs, 4, false, "KrbFastFinished.ticket-checksum"); ok {
					fin.TicketChecksum = d.checksum(g)
				}
				r.Finished = fin
			}
		}
		r.Nonce = d.intField(&s, 3, false, "KrbFastResponse.nonce")
		if d.err == nil && !s.Empty() {
			d.fail("KrbFastResponse", "unexpected field")
		}
	}
	return d.finish(rest, "KrbFastResponse")
}

func (e *encoder) checksumField(tag uint8, c *types.Checksum) {
	f := e.explicit(tag)
	s := e.seq()
	e.intField(0, int64(c.CksumType))
	e.octetsField(1, c.Checksum)
	e.close(s)
	e.close(f)
}

// AppendFastResponse appends the DER of KrbFastResponse (RFC 6113 §5.4.3).
func AppendFastResponse(dst []byte, r *FastResponse) ([]byte, error) {
	e := encoder{b: dst}
	s := e.seq()
	f := e.explicit(0)
	e.paDataSeq(r.PAData, false)
	e.close(f)
	if r.StrengthenKey != nil {
		e.encryptionKeyField(1, r.StrengthenKey)
	}
	if fin := r.Finished; fin != nil {
		f := e.explicit(2)
		fs := e.seq()
		e.timeField(0, fin.Timestamp)
		e.intField(1, int64(fin.Usec))
		e.stringField(2, fin.CRealm)
		e.principalNameField(3, &fin.CName)
		e.checksumField(4, &fin.TicketChecksum)
		e.close(fs)
		e.close(f)
	}
	e.intField(3, int64(r.Nonce))
	e.close(s)
	return e.b, e.err
}

// AppendFastArmoredRep appends the DER of PA-FX-FAST-REPLY holding
// KrbFastArmoredRep { enc-fast-rep } (RFC 6113 §5.4.3).
func AppendFastArmoredRep(dst []byte, ed *types.EncryptedData) []byte {
	e := encoder{b: dst}
	c := e.explicit(0)
	s := e.seq()
	e.encryptedDataField(0, ed)
	e.close(s)
	e.close(c)
	return e.b
}

// AppendFastArmoredReq appends the DER of PA-FX-FAST-REQUEST holding
// KrbFastArmoredReq (RFC 6113 §5.4.2), for clients and tests.
func AppendFastArmoredReq(dst []byte, r *FastArmoredReq) []byte {
	e := encoder{b: dst}
	c := e.explicit(0)
	s := e.seq()
	if r.HasArmor {
		f := e.explicit(0)
		a := e.seq()
		e.intField(0, int64(r.ArmorType))
		e.octetsField(1, r.ArmorValue)
		e.close(a)
		e.close(f)
	}
	e.checksumField(1, &r.ReqChecksum)
	e.encryptedDataField(2, &r.EncFastReq)
	e.close(s)
	e.close(c)
	return e.b
}

// AppendFastReq appends the DER of KrbFastReq (RFC 6113 §5.4.2) with rawBody,
// an encoded KDC-REQ-BODY, as its req-body; for clients and tests.
func AppendFastReq(dst []byte, options asn1.BitString, pas []types.PAData, rawBody []byte) []byte {
	e := encoder{b: dst}
	s := e.seq()
	e.flagsField(0, options)
	f := e.explicit(1)
	e.paDataSeq(pas, false)
	e.close(f)
	f = e.explicit(2)
	e.b = append(e.b, rawBody...)
	e.close(f)
	e.close(s)
	return e.b
}

// AppendPAEncTSEnc appends the DER of PA-ENC-TS-ENC (RFC 4120 §5.2.7.2), the
// plaintext of PA-ENC-TIMESTAMP and of PA-ENCRYPTED-CHALLENGE (RFC 6113
// §5.4.6).
func AppendPAEncTSEnc(dst []byte, t time.Time, usec int) ([]byte, error) {
	e := encoder{b: dst}
	s := e.seq()
	e.timeField(0, t)
	e.intField(1, int64(usec))
	e.close(s)
	return e.b, e.err
}
