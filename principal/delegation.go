package principal

// Delegation holds what a service may do on behalf of users (MS-SFU, as MIT
// implements it: the ok_as_delegate and ok_to_auth_as_delegate principal flags
// and the allowed-to-delegate-to string attribute of MIT's kdb).
type Delegation struct {
	// OKAsDelegate sets the ok-as-delegate flag in tickets for this service
	// (RFC 4120 §2.8): clients may forward their TGT to it.
	OKAsDelegate bool
	// OKToAuthAsDelegate lets this service's S4U2Self tickets be forwardable,
	// so it can use them for S4U2Proxy without the user's own ticket (MIT
	// KRB5_KDB_OK_TO_AUTH_AS_DELEGATE, "protocol transition").
	OKToAuthAsDelegate bool
	// AllowedTo lists the services this service may get tickets for on behalf
	// of a user with S4U2Proxy (constrained delegation, MIT's
	// allowed_to_delegate_to). Empty means none.
	AllowedTo []Name
}

// MayDelegateTo reports whether S4U2Proxy from r to target is allowed.
func (r *Record) MayDelegateTo(target Name) bool {
	for _, n := range r.Delegation.AllowedTo {
		if n.Equal(target) {
			return true
		}
	}
	return false
}
