package walkthrough

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// decodeSafe runs a gokrb5/gofork decoder and turns a panic on odd input into an error.
func decodeSafe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return f()
}

// unmarshalApp decodes an [APPLICATION tag] structure, refusing trailing bytes.
func unmarshalApp(b []byte, v any, tag int) error {
	return decodeSafe(func() error {
		rest, err := asn1.UnmarshalWithParams(b, v, fmt.Sprintf("application,explicit,tag:%d", tag))
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d trailing bytes", len(rest))
		}
		return err
	})
}

// decodeTicket decodes a Ticket from DER.
func decodeTicket(b []byte) (messages.Ticket, error) {
	var t messages.Ticket
	err := decodeSafe(func() error { return t.Unmarshal(b) })
	return t, err
}

// encDataFields describes an EncryptedData without its plaintext.
func encDataFields(ed types.EncryptedData) []Field {
	kvno := "absent"
	if ed.KVNO != 0 {
		kvno = strconv.Itoa(ed.KVNO)
	}
	return []Field{
		field("etype", etypeName(ed.EType)),
		field("kvno", kvno),
		field("cipher", bytesText(len(ed.Cipher))+" of ciphertext"),
	}
}

// ticketFields describes the cleartext of a Ticket: who it is for, and its sealed enc-part, shown as part
// letter (a classic letter, or a part's name).
func ticketFields(t messages.Ticket, letter string) []Field {
	return []Field{
		field("tkt-vno", strconv.Itoa(t.TktVNO)),
		field("realm", t.Realm),
		field("sname", princName(t.SName, "")),
		field("enc-part", "EncTicketPart, sealed: see part "+letter, encDataFields(t.EncPart)...),
	}
}

// keyField shows a key's enctype, size and (when show) value.
func keyField(name string, k types.EncryptionKey, show bool) Field {
	v := fmt.Sprintf("%s, %s", etypeName(k.KeyType), bytesText(len(k.KeyValue)))
	if show {
		v += ": " + hexKey(k.KeyValue)
	} else {
		v += " (value not shown)"
	}
	return field(name, v)
}

// addressesValue formats HostAddresses ("none" when empty, as modern clients send).
func addressesValue(as []types.HostAddress) string {
	if len(as) == 0 {
		return "none"
	}
	out := make([]string, 0, len(as))
	for _, a := range as {
		if (a.AddrType == 2 && len(a.Address) == 4) || (a.AddrType == 24 && len(a.Address) == 16) {
			out = append(out, net.IP(a.Address).String())
		} else {
			out = append(out, fmt.Sprintf("type %d: %x", a.AddrType, a.Address))
		}
	}
	return strings.Join(out, ", ")
}

// encTicketPartFields shows the decrypted EncTicketPart [RFC 4120 §5.3].
func encTicketPartFields(p messages.EncTicketPart, show bool) []Field {
	f := []Field{
		field("flags", flagNames(p.Flags, ticketFlagNames)),
		keyField("key", p.Key, show),
		field("crealm", p.CRealm),
		field("cname", princName(p.CName, "")),
		field("transited", transitedValue(p.Transited)),
		field("authtime", kTime(p.AuthTime)),
		field("starttime", startValue(p.StartTime, p.AuthTime)),
		field("endtime", relTime(p.EndTime, startOr(p.StartTime, p.AuthTime), "starttime")),
	}
	if !p.RenewTill.IsZero() {
		f = append(f, field("renew-till", relTime(p.RenewTill, startOr(p.StartTime, p.AuthTime), "starttime")))
	}
	f = append(f, field("caddr", addressesValue(p.CAddr)))
	f = append(f, field("authorization-data", authDataValue(p.AuthorizationData)))
	return f
}

// encKDCRepPartFields shows the decrypted EncASRepPart / EncTGSRepPart [RFC 4120 §5.4.2].
func encKDCRepPartFields(p messages.EncKDCRepPart, show bool) []Field {
	lr := "empty"
	if len(p.LastReqs) > 0 {
		var parts []string
		for _, l := range p.LastReqs {
			parts = append(parts, fmt.Sprintf("lr-type %d at %s", l.LRType, kTime(l.LRValue)))
		}
		lr = strings.Join(parts, "; ")
	}
	f := []Field{
		keyField("key", p.Key, show),
		field("last-req", lr),
		field("nonce", strconv.Itoa(p.Nonce)),
	}
	if !p.KeyExpiration.IsZero() {
		f = append(f, field("key-expiration", kTime(p.KeyExpiration)))
	}
	f = append(f,
		field("flags", flagNames(p.Flags, ticketFlagNames)),
		field("authtime", kTime(p.AuthTime)),
		field("starttime", startValue(p.StartTime, p.AuthTime)),
		field("endtime", relTime(p.EndTime, startOr(p.StartTime, p.AuthTime), "starttime")),
	)
	if !p.RenewTill.IsZero() {
		f = append(f, field("renew-till", relTime(p.RenewTill, startOr(p.StartTime, p.AuthTime), "starttime")))
	}
	f = append(f,
		field("srealm", p.SRealm),
		field("sname", princName(p.SName, "")),
		field("caddr", addressesValue(p.CAddr)),
	)
	if len(p.EncPAData) > 0 {
		f = append(f, field("encrypted-pa-data", "", padataFields(p.EncPAData)...))
	}
	return f
}

// startOr returns start, or authtime when start is absent (RFC 4120 §5.3: an absent starttime means authtime).
func startOr(start, auth time.Time) time.Time {
	if start.IsZero() {
		return auth
	}
	return start
}

// startValue formats a starttime relative to authtime.
func startValue(start, auth time.Time) string {
	if start.IsZero() {
		return "absent (means authtime)"
	}
	return relTime(start, auth, "authtime")
}

// transitedValue formats the transited encoding.
func transitedValue(t messages.TransitedEncoding) string {
	if len(t.Contents) == 0 {
		return fmt.Sprintf("tr-type %d, empty: no other realm was crossed", t.TRType)
	}
	return fmt.Sprintf("tr-type %d: %q", t.TRType, t.Contents)
}

// authDataValue summarises authorization-data.
func authDataValue(ad types.AuthorizationData) string {
	if len(ad) == 0 {
		return "none (no PAC)"
	}
	var out []string
	for _, e := range ad {
		out = append(out, fmt.Sprintf("ad-type %d (%s)", e.ADType, bytesText(len(e.ADData))))
	}
	return strings.Join(out, ", ")
}

// authenticatorFields shows a decrypted Authenticator [RFC 4120 §5.5.1]. cksum describes the checksum.
func authenticatorFields(a types.Authenticator, cksum Field, show bool) []Field {
	f := []Field{
		field("authenticator-vno", strconv.Itoa(a.AVNO)),
		field("crealm", a.CRealm),
		field("cname", princName(a.CName, "")),
		cksum,
		field("ctime", kTime(a.CTime)),
		field("cusec", strconv.Itoa(a.Cusec)),
	}
	if a.SubKey.KeyType != 0 {
		f = append(f, keyField("subkey", a.SubKey, show))
	} else {
		f = append(f, field("subkey", "absent"))
	}
	if a.SeqNumber != 0 {
		f = append(f, field("seq-number", strconv.FormatInt(a.SeqNumber, 10)))
	} else {
		f = append(f, field("seq-number", "absent"))
	}
	f = append(f, field("authorization-data", authDataValue(a.AuthorizationData)))
	return f
}

// padataFields decodes the padata a reader can understand.
func padataFields(pas types.PADataSequence) []Field {
	out := make([]Field, 0, len(pas))
	for _, pa := range pas {
		out = append(out, padataField(pa))
	}
	return out
}

// padataField decodes one padata entry (PA-ENC-TIMESTAMP and PA-TGS-REQ are shown by the caller as parts).
func padataField(pa types.PAData) Field {
	name := paName(pa.PADataType)
	switch pa.PADataType {
	case patype.PA_ETYPE_INFO2:
		var info types.ETypeInfo2
		if err := decodeSafe(func() error { return info.Unmarshal(pa.PADataValue) }); err != nil {
			return field(name, "undecodable: "+err.Error())
		}
		var entries []Field
		for _, e := range info {
			entries = append(entries, field("entry", "", etypeInfoFields(e)...))
		}
		return field(name, fmt.Sprintf("%d entr%s: which key to use", len(info), map[bool]string{true: "y", false: "ies"}[len(info) == 1]), entries...)
	case patype.PA_ENC_TIMESTAMP:
		if len(pa.PADataValue) == 0 {
			return field(name, "empty: \"you may pre-authenticate with an encrypted timestamp\"")
		}
		var ed types.EncryptedData
		if err := decodeSafe(func() error { return ed.Unmarshal(pa.PADataValue) }); err != nil {
			return field(name, "undecodable: "+err.Error())
		}
		return field(name, "EncryptedData (PA-ENC-TS-ENC): see part pre", encDataFields(ed)...)
	case paEncChallenge:
		if len(pa.PADataValue) == 0 {
			return field(name, "empty: \"you may pre-authenticate with an encrypted challenge, inside the armor\"")
		}
		var ed types.EncryptedData
		if err := decodeSafe(func() error { return ed.Unmarshal(pa.PADataValue) }); err != nil {
			return field(name, "undecodable: "+err.Error())
		}
		return field(name, "EncryptedData (PA-ENC-TS-ENC): see the part PA-ENCRYPTED-CHALLENGE", encDataFields(ed)...)
	case patype.PA_FX_COOKIE:
		return field(name, fmt.Sprintf("%q, echoed back to the KDC", pa.PADataValue))
	case patype.PA_FX_FAST:
		if len(pa.PADataValue) == 0 {
			// RFC 6113 §5.4.2: an empty PA-FX-FAST in METHOD-DATA advertises FAST.
			return field(name, "empty: \"this KDC speaks FAST (RFC 6113): a client with an armor ticket may send the request inside an armored tunnel\"")
		}
	case patype.PA_REQ_ENC_PA_REP:
		// RFC 6806 §11: empty in an AS-REQ, the KDC's checksum over that request in the reply's encrypted-pa-data.
		if len(pa.PADataValue) == 0 {
			return field(name, "empty: \"put a checksum of this request in your reply, so that I can tell it reached you unchanged\"")
		}
		var ck types.Checksum
		if err := decodeSafe(func() error { _, err := asn1.Unmarshal(pa.PADataValue, &ck); return err }); err != nil {
			return field(name, "undecodable: "+err.Error())
		}
		return field(name, "the KDC's checksum over the AS-REQ as it arrived (key usage 56, in the key of A)",
			field("cksum", checksumName(ck.CksumType)+": "+hexKey(ck.Checksum)))
	case patype.PA_AS_FRESHNESS:
		if len(pa.PADataValue) == 0 {
			return field(name, "empty")
		}
	}
	return field(name, bytesText(len(pa.PADataValue)))
}

// etypeInfoFields shows one ETYPE-INFO2 entry: enctype, salt, s2kparams.
func etypeInfoFields(e types.ETypeInfo2Entry) []Field {
	salt := fmt.Sprintf("%q", e.Salt)
	if e.Salt == "" {
		salt = "absent: the default salt (realm + name components)"
	}
	params := "absent: the enctype's default"
	if it, ok := s2kIterations(e.EType, e.S2KParams); ok {
		if len(e.S2KParams) > 0 {
			params = fmt.Sprintf("%x: %d iterations", e.S2KParams, it)
		} else {
			params += fmt.Sprintf(" (%d iterations)", it)
		}
	}
	return []Field{field("etype", etypeName(e.EType)), field("salt", salt), field("s2kparams", params)}
}

// reqBodyFields shows a KDC-REQ-BODY [RFC 4120 §5.4.1].
func reqBodyFields(b messages.KDCReqBody) []Field {
	f := []Field{field("kdc-options", flagNames(b.KDCOptions, kdcOptionNames))}
	if len(b.CName.NameString) > 0 {
		f = append(f, field("cname", princName(b.CName, "")))
	} else {
		f = append(f, field("cname", "absent (the TGS takes the client from the ticket)"))
	}
	f = append(f, field("realm", b.Realm), field("sname", princName(b.SName, "")))
	if !b.From.IsZero() {
		f = append(f, field("from", kTime(b.From)))
	}
	f = append(f, field("till", kTime(b.Till)))
	if !b.RTime.IsZero() {
		f = append(f, field("rtime", kTime(b.RTime)))
	}
	f = append(f,
		field("nonce", strconv.Itoa(b.Nonce)),
		field("etype", etypeList(b.EType)),
		field("addresses", addressesValue(b.Addresses)),
	)
	if len(b.EncAuthData.Cipher) > 0 {
		f = append(f, field("enc-authorization-data", "", encDataFields(b.EncAuthData)...))
	}
	if len(b.AdditionalTickets) > 0 {
		f = append(f, field("additional-tickets", strconv.Itoa(len(b.AdditionalTickets))))
	}
	return f
}
