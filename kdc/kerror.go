package kdc

import (
	"errors"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// Error is a failure of a request that decoded: it becomes a KRB-ERROR. Status is
// the short log word in MIT's style (UPPER_SNAKE, e.g. PREAUTH_FAILED) and is also
// the e-text on the wire, as MIT sends it; Cause is for the log only.
type Error struct {
	Code   int32
	Status string
	EData  []byte
	Cause  error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("kdc: %s (%s)", e.Status, errorcode.Lookup(e.Code))
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// kerr makes an Error; cause may be nil.
func kerr(code int32, status string, cause error) *Error {
	return &Error{Code: code, Status: status, Cause: cause}
}

// asError finds the *Error in err, clamping anything else to KRB_ERR_GENERIC the
// way MIT's errcode_to_protocol does, so internal detail never reaches the wire.
func asError(err error) *Error {
	var ke *Error
	if errors.As(err, &ke) {
		return ke
	}
	return &Error{Code: errorcode.KRB_ERR_GENERIC, Status: "INTERNAL_ERROR", Cause: err}
}
