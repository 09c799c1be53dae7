package der

import (
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The S4U2Self padata of MS-SFU: PA-FOR-USER (§2.2.1, padata 129) and
// PA-S4U-X509-USER (§2.2.2, padata 130), which MIT clients send both of.

// PAForUser is PA-FOR-USER (MS-SFU §2.2.1):
//
//	PA-FOR-USER ::= SEQUENCE {
//	    userName    [0] PrincipalName,
//	    userRealm   [1] Realm,
//	    cksum       [2] Checksum,
//	    auth-package [3] KerberosString }
type PAForUser struct {
	UserName    types.PrincipalName
	UserRealm   string
	Cksum       types.Checksum
	AuthPackage string
}

// S4UUserID is S4UUserID (MS-SFU §2.2.2):
//
//	S4UUserID ::= SEQUENCE {
//	    nonce [0] UInt32,       -- the nonce of the KDC-REQ-BODY
//	    cname [1] PrincipalName OPTIONAL,
//	    crealm [2] Realm,
//	    subject-certificate [3] OCTET STRING OPTIONAL,
//	    options [4] BIT STRING OPTIONAL, ... }
type S4UUserID struct {
	// Nonce is the INTEGER as sent: a UInt32, which some encoders write as a
	// negative Int32 (trap 7 of the protocol notes); it is echoed unchanged.
	Nonce              int64
	CName              types.PrincipalName // NameString nil: absent
	CRealm             string
	SubjectCertificate []byte
	Options            asn1.BitString // BitLength 0: absent
}

// PAS4UX509User is PA-S4U-X509-USER (MS-SFU §2.2.2):
//
//	PA-S4U-X509-USER ::= SEQUENCE {
//	    user-id [0] S4UUserID,
//	    checksum [1] Checksum }
type PAS4UX509User struct {
	UserID S4UUserID
	// RawUserID is the S4UUserID as received (the contents of [0]), which the
	// checksum covers; it aliases the input. Encoding ignores it.
	RawUserID []byte
	Cksum     types.Checksum
}

// S4UOptUseReplyKeyUsage is the S4UUserID option asking the KDC to sign its
// reply with key usage 27 instead of 26 (MS-SFU §2.2.2, bit 2).
const S4UOptUseReplyKeyUsage = 2

// DecodePAForUser decodes PA-FOR-USER.
func DecodePAForUser(b []byte, p *PAForUser) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*p = PAForUser{}
	if s, ok := d.seq(e, "PA-FOR-USER"); ok {
		if f, ok := d.field(&s, 0, false, "PA-FOR-USER.userName"); ok {
			p.UserName = d.principalName(f)
		}
		p.UserRealm = d.stringField(&s, 1, false, "PA-FOR-USER.userRealm")
		if f, ok := d.field(&s, 2, false, "PA-FOR-USER.cksum"); ok {
			p.Cksum = d.checksum(f)
		}
		p.AuthPackage = d.stringField(&s, 3, false, "PA-FOR-USER.auth-package")
		if !s.Empty() {
			d.fail("PA-FOR-USER", "unknown fields")
		}
	}
	return d.finish(rest, "PA-FOR-USER")
}

func (d *decoder) s4uUserID(w cryptobyte.String, u *S4UUserID) {
	s, ok := d.seq(w, "S4UUserID")
	if !ok {
		return
	}
	if f, ok := d.field(&s, 0, false, "S4UUserID.nonce"); ok {
		v, ok := d.int64Of(f, "S4UUserID.nonce")
		if ok && (v < -1<<31 || v > 1<<32-1) {
			d.fail("S4UUserID.nonce", "not a 32-bit value")
		}
		u.Nonce = v
	}
	if f, ok := d.field(&s, 1, true, "S4UUserID.cname"); ok {
		u.CName = d.principalName(f)
	}
	u.CRealm = d.stringField(&s, 2, false, "S4UUserID.crealm")
	u.SubjectCertificate = d.bytesField(&s, 3, true, "S4UUserID.subject-certificate")
	if f, ok := d.field(&s, 4, true, "S4UUserID.options"); ok {
		u.Options = d.flags(f, "S4UUserID.options")
	}
	// The type is extensible ("..."): later fields are skipped.
	for d.err == nil && !s.Empty() {
		var skip cryptobyte.String
		var tag casn1.Tag
		if !s.ReadAnyASN1Element(&skip, &tag) {
			d.fail("S4UUserID", "bad extension element")
		}
	}
}

// DecodePAS4UX509User decodes PA-S4U-X509-USER.
func DecodePAS4UX509User(b []byte, p *PAS4UX509User) error {
	d := decoder{in: b}
	e, rest := whole(b)
	*p = PAS4UX509User{}
	if s, ok := d.seq(e, "PA-S4U-X509-USER"); ok {
		if f, ok := d.field(&s, 0, false, "PA-S4U-X509-USER.user-id"); ok {
			p.RawUserID = f
			d.s4uUserID(f, &p.UserID)
		}
		if f, ok := d.field(&s, 1, false, "PA-S4U-X509-USER.checksum"); ok {
			p.Cksum = d.checksum(f)
		}
		if !s.Empty() {
			d.fail("PA-S4U-X509-USER", "unknown fields")
		}
	}
	return d.finish(rest, "PA-S4U-X509-USER")
}

func (e *encoder) s4uUserID(u *S4UUserID) {
	s := e.seq()
	e.intField(0, u.Nonce)
	if u.CName.NameString != nil {
		e.principalNameField(1, &u.CName)
	}
	e.stringField(2, u.CRealm)
	if u.SubjectCertificate != nil {
		e.octetsField(3, u.SubjectCertificate)
	}
	if u.Options.BitLength > 0 {
		e.flagsField(4, u.Options)
	}
	e.close(s)
}

func (e *encoder) checksum(c *types.Checksum) {
	s := e.seq()
	e.intField(0, int64(c.CksumType))
	e.octetsField(1, c.Checksum)
	e.close(s)
}

// AppendS4UUserID appends the DER of an S4UUserID: what a PA-S4U-X509-USER
// checksum covers.
func AppendS4UUserID(dst []byte, u *S4UUserID) []byte {
	e := encoder{b: dst}
	e.s4uUserID(u)
	return e.b
}

// AppendPAS4UX509User appends the DER of a PA-S4U-X509-USER (user-id encoded
// from UserID, not RawUserID).
func AppendPAS4UX509User(dst []byte, p *PAS4UX509User) []byte {
	e := encoder{b: dst}
	s := e.seq()
	f := e.explicit(0)
	e.s4uUserID(&p.UserID)
	e.close(f)
	f = e.explicit(1)
	e.checksum(&p.Cksum)
	e.close(f)
	e.close(s)
	return e.b
}

// AppendPAForUser appends the DER of a PA-FOR-USER.
func AppendPAForUser(dst []byte, p *PAForUser) []byte {
	e := encoder{b: dst}
	s := e.seq()
	e.principalNameField(0, &p.UserName)
	e.stringField(1, p.UserRealm)
	f := e.explicit(2)
	e.checksum(&p.Cksum)
	e.close(f)
	e.stringField(3, p.AuthPackage)
	e.close(s)
	return e.b
}
