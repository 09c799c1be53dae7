// Package principal holds Kerberos principal names, principal records with their
// long-term keys, and the Store interface that keeps them. The stores themselves
// (bbolt, with keys sealed at rest under a master key) live in package store, so
// that code needing only names and keys (ticket, client, service) links no database.
package principal

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Name is a principal name: its components, its realm and a name type.
//
// The name type is carried for the wire but ignored when names are compared or
// looked up (RFC 4120 §6.2: "the name-type MUST be ignored when comparing names").
type Name struct {
	Components []string
	Realm      string
	Type       int32
}

// Bounds on principal names. No real principal comes near them; the KDC refuses
// requests over them without echoing the oversized field, and Parse refuses to
// make such names, so none is ever stored.
const (
	// MaxRealmLength bounds a realm name in bytes (a DNS name is at most 253).
	MaxRealmLength = 255
	// MaxNameComponents bounds the components of a principal name.
	MaxNameComponents = 8
	// MaxComponentLength bounds one name component in bytes.
	MaxComponentLength = 512
	// MaxNameText bounds the text form Parse reads: every component escaped,
	// separators and the realm.
	MaxNameText = MaxNameComponents*(2*MaxComponentLength+1) + 2*MaxRealmLength
)

// InBounds reports whether a wire name and its realm are within MaxRealmLength,
// MaxNameComponents and MaxComponentLength.
func InBounds(pn types.PrincipalName, realm string) bool {
	if len(realm) > MaxRealmLength || len(pn.NameString) > MaxNameComponents {
		return false
	}
	for _, c := range pn.NameString {
		if len(c) > MaxComponentLength {
			return false
		}
	}
	return true
}

// ErrBadName reports a principal name that cannot be parsed.
var ErrBadName = errors.New("principal: malformed principal name")

// Parse reads a principal in the usual text form "comp1/comp2@REALM". Inside a
// component a backslash escapes '/', '@' and '\', and \n \t \b \0 stand for those
// control characters, as MIT's krb5_parse_name accepts. A name without a realm gets
// defaultRealm; an empty realm is an error. krbtgt/X names get NT-SRV-INST and
// every other name NT-PRINCIPAL, as MIT's parser does.
func Parse(s, defaultRealm string) (Name, error) {
	if s == "" {
		return Name{}, fmt.Errorf("%w: empty name", ErrBadName)
	}
	if len(s) > MaxNameText {
		return Name{}, fmt.Errorf("%w: a name of %d bytes (at most %d)", ErrBadName, len(s), MaxNameText)
	}
	var (
		comps    []string
		cur      strings.Builder
		realm    string
		hasRealm bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return Name{}, fmt.Errorf("%w: %q ends with a backslash", ErrBadName, s)
			}
			i++
			switch s[i] {
			case 'n':
				cur.WriteByte('\n')
			case 't':
				cur.WriteByte('\t')
			case 'b':
				cur.WriteByte('\b')
			case '0':
				cur.WriteByte(0)
			default:
				cur.WriteByte(s[i])
			}
		case c == '/' && !hasRealm:
			comps = append(comps, cur.String())
			cur.Reset()
		case c == '@' && !hasRealm:
			comps = append(comps, cur.String())
			cur.Reset()
			hasRealm = true
		case c == '@' || c == '/':
			return Name{}, fmt.Errorf("%w: unescaped %q in the realm of %q", ErrBadName, c, s)
		default:
			cur.WriteByte(c)
		}
	}
	if hasRealm {
		realm = cur.String()
		if realm == "" {
			return Name{}, fmt.Errorf("%w: empty realm in %q", ErrBadName, s)
		}
	} else {
		comps = append(comps, cur.String())
		realm = defaultRealm
	}
	for _, c := range comps {
		if c == "" {
			return Name{}, fmt.Errorf("%w: empty component in %q", ErrBadName, s)
		}
	}
	if realm == "" {
		return Name{}, fmt.Errorf("%w: %q has no realm and no default realm is set", ErrBadName, s)
	}
	if !InBounds(types.PrincipalName{NameString: comps}, realm) {
		return Name{}, fmt.Errorf("%w: longer than %d components of %d bytes in a realm of %d bytes", ErrBadName,
			MaxNameComponents, MaxComponentLength, MaxRealmLength)
	}
	n := Name{Components: comps, Realm: realm, Type: nametype.KRB_NT_PRINCIPAL}
	if n.IsKrbtgt() {
		n.Type = nametype.KRB_NT_SRV_INST
	}
	return n, nil
}

// MustParse is Parse for names known to be valid, such as constants in tests.
func MustParse(s string) Name {
	n, err := Parse(s, "")
	if err != nil {
		panic(err)
	}
	return n
}

// FromPrincipalName combines a wire PrincipalName with its realm.
func FromPrincipalName(pn types.PrincipalName, realm string) Name {
	return Name{Components: append([]string(nil), pn.NameString...), Realm: realm, Type: pn.NameType}
}

// Krbtgt returns the ticket-granting service name krbtgt/REALM@REALM.
func Krbtgt(realm string) Name {
	return Name{Components: []string{"krbtgt", realm}, Realm: realm, Type: nametype.KRB_NT_SRV_INST}
}

// PrincipalName returns the wire form (without the realm).
func (n Name) PrincipalName() types.PrincipalName {
	return types.PrincipalName{NameType: n.Type, NameString: append([]string(nil), n.Components...)}
}

// IsKrbtgt reports whether n names a ticket-granting service (krbtgt/X).
func (n Name) IsKrbtgt() bool {
	return len(n.Components) == 2 && n.Components[0] == "krbtgt"
}

// Salt returns the default salt for keys derived from a password: the realm
// followed by every component, with no separators (RFC 4120 §4).
func (n Name) Salt() string {
	return n.Realm + strings.Join(n.Components, "")
}

// String formats n as "comp1/comp2@REALM", escaping as Parse expects.
func (n Name) String() string {
	var b strings.Builder
	size := len(n.Components) + len(n.Realm) // separators; escapes are rare
	for _, c := range n.Components {
		size += len(c)
	}
	b.Grow(size) // one allocation: the KDC formats names on every request
	for i, c := range n.Components {
		if i > 0 {
			b.WriteByte('/')
		}
		writeEscaped(&b, c, true)
	}
	b.WriteByte('@')
	writeEscaped(&b, n.Realm, false)
	return b.String()
}

// Key returns the lookup key of n: its text form. The name type plays no part,
// so names that differ only in type share a key (RFC 4120 §6.2).
func (n Name) Key() string { return n.String() }

// Equal reports whether two names are the same principal, ignoring name type.
func (n Name) Equal(o Name) bool {
	if n.Realm != o.Realm || len(n.Components) != len(o.Components) {
		return false
	}
	for i := range n.Components {
		if n.Components[i] != o.Components[i] {
			return false
		}
	}
	return true
}

// escaped marks the bytes writeEscaped escapes in a realm (1) and, besides
// those, in a component (2: the slash).
var escaped = [256]uint8{'\\': 3, '@': 3, '\n': 3, '\t': 3, '\b': 3, 0: 3, '/': 2}

// writeEscaped writes s with the escapes of RFC 1964 §2.1.1 (as MIT's
// krb5_unparse_name): runs without a special byte are copied at once, which is
// every name in practice.
func writeEscaped(b *strings.Builder, s string, component bool) {
	mask := uint8(1)
	if component {
		mask = 3
	}
	for len(s) > 0 {
		i := 0
		for i < len(s) && escaped[s[i]]&mask == 0 {
			i++
		}
		b.WriteString(s[:i])
		if i == len(s) {
			return
		}
		switch c := s[i]; c {
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case 0:
			b.WriteString(`\0`)
		default: // backslash, @, and / in a component
			b.WriteByte('\\')
			b.WriteByte(c)
		}
		s = s[i+1:]
	}
}

// ChangepwName returns kadmin/changepw@REALM, the password-change service
// (RFC 3244), which `kdc init` creates.
func ChangepwName(realm string) Name {
	return Name{Components: []string{"kadmin", "changepw"}, Realm: realm, Type: nametype.KRB_NT_SRV_INST}
}
