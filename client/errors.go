package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// KDCError is a Kerberos error code with its context: either a KRB-ERROR received from a KDC
// [RFC 4120 §5.9.1, §7.5.9], or a fault the client found itself in a KDC reply (Local is then true).
// Use errors.As to get one out of an error chain; Text gives MIT-style words for the user.
type KDCError struct {
	// Code is the RFC 4120 §7.5.9 error code (errorcode.* constants).
	Code int32
	// EText is the KDC's e-text, if any.
	EText string
	// Client is the client principal the request was for (for messages such as "Client 'x@R' not found").
	Client string
	// Server is the server principal the request was for.
	Server string
	// Local is true when the client detected the fault (for example an AS-REP enc-part that fails its integrity
	// check, which MIT also reports as "Password incorrect") and no KRB-ERROR was received.
	Local bool
	// Msg is the decoded KRB-ERROR, nil when Local.
	Msg *messages.KRBError
}

// Error implements error: "client: <MIT text> (<code name>, code <n>[, e-text "..."])".
func (e *KDCError) Error() string {
	var b strings.Builder
	b.WriteString("client: ")
	b.WriteString(e.Text())
	fmt.Fprintf(&b, " (%s, code %d", e.Name(), e.Code)
	if e.EText != "" {
		fmt.Fprintf(&b, ", e-text %q", e.EText)
	}
	b.WriteString(")")
	return b.String()
}

// Name returns the RFC 4120 name of the code, such as "KDC_ERR_PREAUTH_FAILED".
func (e *KDCError) Name() string {
	name, _ := splitLookup(e.Code)
	return name
}

// Text returns the user-facing message, worded like MIT krb5 so that users and scripts see familiar text
// ("Password incorrect", "Client 'alice@R' not found in Kerberos database", "Clock skew too great").
func (e *KDCError) Text() string {
	switch e.Code {
	case errorcode.KDC_ERR_NAME_EXP:
		return "Client's entry in database has expired"
	case errorcode.KDC_ERR_SERVICE_EXP:
		return "Server's entry in database has expired"
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
		return fmt.Sprintf("Client '%s' not found in Kerberos database", e.Client)
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		return fmt.Sprintf("Server %s not found in Kerberos database", e.Server) // MIT gc_via_tkt.c: no quotes, unlike the client's
	case errorcode.KDC_ERR_CANNOT_POSTDATE:
		return "Ticket is ineligible for postdating"
	case errorcode.KDC_ERR_NEVER_VALID:
		return "Requested effective lifetime is negative or too short"
	case errorcode.KDC_ERR_POLICY:
		return "KDC policy rejects request"
	case errorcode.KDC_ERR_BADOPTION:
		return "KDC can't fulfill requested option"
	case errorcode.KDC_ERR_ETYPE_NOSUPP:
		return "KDC has no support for encryption type"
	case errorcode.KDC_ERR_SUMTYPE_NOSUPP:
		return "KDC has no support for checksum type"
	case errorcode.KDC_ERR_PADATA_TYPE_NOSUPP:
		return "KDC has no support for padata type"
	case errorcode.KDC_ERR_CLIENT_REVOKED:
		return "Client's credentials have been revoked"
	case errorcode.KDC_ERR_KEY_EXPIRED:
		return "Password has expired"
	case errorcode.KDC_ERR_PREAUTH_FAILED:
		return "Password incorrect"
	case errorcode.KDC_ERR_PREAUTH_REQUIRED:
		return "Additional pre-authentication required"
	case errorcode.KRB_AP_ERR_BAD_INTEGRITY:
		if e.Local {
			return "Password incorrect"
		}
		return "Decrypt integrity check failed"
	case errorcode.KRB_AP_ERR_TKT_EXPIRED:
		return "Ticket expired"
	case errorcode.KRB_AP_ERR_TKT_NYV:
		return "Ticket not yet valid"
	case errorcode.KRB_AP_ERR_SKEW:
		return "Clock skew too great"
	case errorcode.KRB_AP_ERR_MODIFIED:
		return "Message stream modified"
	case errorcode.KRB_ERR_RESPONSE_TOO_BIG:
		return "Response too big for UDP, retry with TCP"
	case errorcode.KRB_ERR_GENERIC:
		if e.EText != "" {
			return "Generic error: " + e.EText
		}
		return "Generic error (see e-text)"
	}
	if _, desc := splitLookup(e.Code); desc != "" {
		return desc
	}
	return fmt.Sprintf("Kerberos error %d", e.Code)
}

// splitLookup splits gokrb5's "(n) NAME description" table entry into the name and the description.
func splitLookup(code int32) (name, desc string) {
	s := errorcode.Lookup(code)
	if i := strings.Index(s, ") "); i >= 0 && strings.HasPrefix(s, "(") {
		s = s[i+2:]
		name, desc, _ = strings.Cut(s, " ")
		return name, desc
	}
	return fmt.Sprintf("KRB_ERROR_%d", code), ""
}

// kdcErrorFrom turns a decoded KRB-ERROR into a KDCError for the given request principals.
func kdcErrorFrom(m *messages.KRBError, client, server string) *KDCError {
	return &KDCError{Code: m.ErrorCode, EText: m.EText, Client: client, Server: server, Msg: m}
}

// ErrReplyMismatch is wrapped by errors about a KDC reply that decrypts but does not answer the request
// (wrong nonce, names or times) [RFC 4120 §3.1.5]. MIT says "KDC reply did not match expectations".
var ErrReplyMismatch = errors.New("KDC reply did not match expectations")

// IsCode reports whether err holds a KDCError with the given code.
func IsCode(err error, code int32) bool {
	var ke *KDCError
	return errors.As(err, &ke) && ke.Code == code
}
