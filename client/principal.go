package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kerbkit/kerbkit/principal"
)

// ParsePrincipal parses "name[/instance...][@REALM]" in MIT's unparsed form: '/' separates components, the first
// unescaped '@' starts the realm, and a backslash escapes '/', '@', '\' (and \n, \t, \b, \0 stand for those
// characters). A name without a realm gets defaultRealm; if that is empty too it is an error. The name type is
// NT-PRINCIPAL, as kinit uses; "krbtgt/..." gets NT-SRV-INST.
func ParsePrincipal(s, defaultRealm string) (principal.Name, error) {
	if defaultRealm == "" && !strings.Contains(strings.ReplaceAll(s, `\@`, ""), "@") {
		return principal.Name{}, fmt.Errorf("client: principal %q has no realm and no default realm is configured: %w", s, ErrNoRealm)
	}
	n, err := principal.Parse(s, defaultRealm)
	if err != nil {
		return principal.Name{}, fmt.Errorf("client: %w", err)
	}
	return n, nil
}

// ErrNoRealm is wrapped when a principal has no realm and there is no default realm to give it.
var ErrNoRealm = errors.New("no realm")

// TGSPrincipal returns krbtgt/REALM@REALM, the ticket-granting service of realm [RFC 4120 §7.3].
func TGSPrincipal(realm string) principal.Name {
	return principal.Krbtgt(realm)
}
