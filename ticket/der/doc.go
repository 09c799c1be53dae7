// Package der encodes and decodes, in DER and without reflection, the Kerberos
// v5 messages on a KDC's request path (RFC 4120 §5): KDC-REQ with its raw
// req-body, PA-DATA, PA-ENC-TS-ENC, AP-REQ, Ticket, EncTicketPart,
// Authenticator and their parts on the way in; EncTicketPart, Ticket,
// EncKDCRepPart, AS-REP, TGS-REP, KRB-ERROR, METHOD-DATA and ETYPE-INFO2 on the
// way out.
//
// The values are gokrb5's types, so the rest of the code base keeps working
// with them, but no reflection runs: gokrb5's encoding (gofork's encoding/asn1)
// parses struct tags and forks a writer per field on every call, which made it
// most of a KDC's CPU time. Decoding reads with golang.org/x/crypto/cryptobyte;
// encoding appends to a caller's buffer and fixes each length in place.
//
// # Agreement with gokrb5
//
// The encoders produce exactly the bytes gokrb5's Marshal produces for the same
// value, with two deliberate exceptions: KerberosTime is always written in UTC
// (gofork writes a zone offset for other locations, which is not a valid
// KerberosTime), and a Ticket never carries gokrb5's DecryptedEncPart (gofork
// would put the plaintext, session key included, on the wire).
//
// The decoders accept a subset of what gokrb5 accepts and, when they accept,
// yield the same values, with one deliberate exception: KerberosFlags shorter
// than 32 bits are padded with zero bits at the end, so that bit n keeps its
// meaning (gokrb5 pads KDCOptions at the front and leaves other flags short,
// where types.IsFlagSet then panics). Everything gokrb5's encoders write is
// accepted. What is refused beyond gokrb5: lengths that disagree with their
// contents (gofork does not check that an explicit tag holds exactly one
// element), string types other than GeneralString, UTCTime or zone offsets in
// KerberosTime (MIT refuses those too), high tag numbers, bytes after the
// message, and lists longer than MaxElements (far beyond any real message).
// The differential tests and fuzz targets in this package check these
// properties against gokrb5 directly, seeded from MIT's reference encodings
// and from requests real clients sent (testdata/captures).
//
// Decoded byte slices alias the input; strings are copies. Callers must not
// modify the input while they use the decoded value.
package der
