package principal

import (
	"errors"
	"fmt"
)

// MaxAliases bounds the aliases of one principal: a record is read on every
// request, and no real principal needs more than a handful of names.
const MaxAliases = 64

// ErrAliasConflict reports an alias that names another principal or another
// principal's alias. It wraps ErrExists.
var ErrAliasConflict = fmt.Errorf("%w: name already in use", ErrExists)

// HasAlias reports whether n is one of r's aliases (name type ignored).
func (r *Record) HasAlias(n Name) bool {
	for _, a := range r.Aliases {
		if a.Equal(n) {
			return true
		}
	}
	return false
}

// AddAlias makes n another name of r. An alias stays in r's realm, is not r's own
// name and is not there already; a store also refuses names other principals
// hold (ErrAliasConflict).
func (r *Record) AddAlias(n Name) error {
	switch {
	case n.Realm != r.Name.Realm:
		return fmt.Errorf("principal: alias %s is not in realm %s", n, r.Name.Realm)
	case n.Equal(r.Name):
		return fmt.Errorf("%w: %s is the principal's own name", ErrExists, n)
	case r.HasAlias(n):
		return fmt.Errorf("%w: %s is already an alias of %s", ErrExists, n, r.Name)
	case n.IsKrbtgt() || r.Name.IsKrbtgt():
		return errors.New("principal: krbtgt principals have no aliases")
	case len(r.Aliases) >= MaxAliases:
		return fmt.Errorf("principal: %s has %d aliases already (at most %d)", r.Name, len(r.Aliases), MaxAliases)
	}
	r.Aliases = append(r.Aliases, n)
	return nil
}

// RemoveAlias drops alias n from r, or fails with ErrNotFound.
func (r *Record) RemoveAlias(n Name) error {
	for i, a := range r.Aliases {
		if a.Equal(n) {
			r.Aliases = append(r.Aliases[:i:i], r.Aliases[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not an alias of %s", ErrNotFound, n, r.Name)
}
