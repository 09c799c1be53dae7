package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/ticket"
)

// ParsePrincipal parses "name[/instance...][@REALM]" in MIT's unparsed form: '/' separates components, the first
// unescaped '@' starts the realm, and a backslash escapes '/', '@', '\' (and \n, \t, \b, \0 stand for those
// characters). A name without a realm gets defaultRealm; if that is empty too it is an error. The name type is
// NT-PRINCIPAL, as kinit uses; "krbtgt/..." gets NT-SRV-INST.
func ParsePrincipal(s, defaultRealm string) (ticket.Principal, error) {
	var comps []string
	var cur strings.Builder
	realm, inRealm, sawRealm := strings.Builder{}, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		out := &cur
		if inRealm {
			out = &realm
		}
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return ticket.Principal{}, fmt.Errorf("client: principal %q ends with a backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				out.WriteByte('\n')
			case 't':
				out.WriteByte('\t')
			case 'b':
				out.WriteByte('\b')
			case '0':
				out.WriteByte(0)
			default:
				out.WriteByte(s[i])
			}
		case c == '/' && !inRealm:
			comps = append(comps, cur.String())
			cur.Reset()
		case c == '@' && !inRealm:
			inRealm, sawRealm = true, true
		case c == '@' && inRealm:
			return ticket.Principal{}, fmt.Errorf("client: principal %q has an unescaped '@' in the realm", s)
		default:
			out.WriteByte(c)
		}
	}
	comps = append(comps, cur.String())
	for _, c := range comps {
		if c == "" {
			return ticket.Principal{}, fmt.Errorf("client: principal %q has an empty name component", s)
		}
	}
	r := realm.String()
	if sawRealm && r == "" {
		return ticket.Principal{}, fmt.Errorf("client: principal %q has an empty realm", s)
	}
	if !sawRealm {
		r = defaultRealm
	}
	if r == "" {
		return ticket.Principal{}, fmt.Errorf("client: principal %q has no realm and no default realm is configured: %w", s, ErrNoRealm)
	}
	nt := nametype.KRB_NT_PRINCIPAL
	if len(comps) == 2 && comps[0] == "krbtgt" {
		nt = nametype.KRB_NT_SRV_INST
	}
	return ticket.Principal{Realm: r, Name: types.PrincipalName{NameType: nt, NameString: comps}}, nil
}

// ErrNoRealm is wrapped when a principal has no realm and there is no default realm to give it.
var ErrNoRealm = errors.New("no realm")

// TGSPrincipal returns krbtgt/REALM@REALM, the ticket-granting service of realm [RFC 4120 §7.3].
func TGSPrincipal(realm string) ticket.Principal {
	return ticket.Principal{
		Realm: realm,
		Name:  types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}},
	}
}
