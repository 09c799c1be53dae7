package ticket

import (
	"errors"
	"fmt"
	"strings"
)

// TransitedDomainX500Compress is the tr-type of the only transited encoding
// defined, DOMAIN-X500-COMPRESS [RFC 4120 §3.3.3.2, §7.5.5].
const TransitedDomainX500Compress = 1

// MaxTransitedRealms bounds how many realms DecodeTransited returns: a real path
// has a handful, and the bound keeps a hostile ticket from costing memory.
const MaxTransitedRealms = 32

// ErrTransitUnspecified is wrapped when a transited field has an empty entry:
// RFC 4120 §3.3.3.2 lets it stand for "every realm on the hierarchical path"
// between its neighbours, which names no realm a policy could check.
var ErrTransitUnspecified = errors.New("transited field leaves realms unnamed (an empty entry)")

// EncodeTransited writes realms as the contents of a DOMAIN-X500-COMPRESS
// transited field [RFC 4120 §3.3.3.2]: full names separated by commas, with
// ',' and '\' escaped by '\', and a trailing '.' or a leading '/' or ' '
// escaped too so that it is not read as an abbreviation. It does not
// abbreviate: every decoder reads full names. No realms give empty contents.
func EncodeTransited(realms []string) []byte {
	if len(realms) == 0 {
		return []byte{}
	}
	var b strings.Builder
	for i, r := range realms {
		if i > 0 {
			b.WriteByte(',')
		}
		for j := 0; j < len(r); j++ {
			c := r[j]
			switch {
			case c == ',' || c == '\\',
				j == 0 && (c == '/' || c == ' '),
				j == len(r)-1 && c == '.':
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	return []byte(b.String())
}

// DecodeTransited reads the contents of a DOMAIN-X500-COMPRESS transited field
// into the full names of the realms it lists, in order [RFC 4120 §3.3.3.2]:
//
//   - a domain-style name ending in '.' is short for itself followed by the
//     previous name ("EDU,MIT." is EDU, MIT.EDU);
//   - an X.500-style name beginning with '/' continues the previous X.500 name
//     ("/COM,/HP" is /COM, /COM/HP), unless a space precedes it (" /COM");
//   - '\' escapes the next character.
//
// An empty entry (",,", or a leading or trailing comma) stands for the realms
// of the hierarchy between its neighbours; they are not named, so
// DecodeTransited returns ErrTransitUnspecified rather than guess them. Empty
// contents are no realms.
func DecodeTransited(contents []byte) ([]string, error) {
	if len(contents) == 0 {
		return nil, nil
	}
	var realms []string
	prev := ""
	for _, f := range splitTransited(string(contents)) {
		if len(realms) >= MaxTransitedRealms {
			return nil, fmt.Errorf("ticket: transited field lists more than %d realms", MaxTransitedRealms)
		}
		name := f.text
		switch {
		case name == "" && !f.escapedStart:
			return nil, fmt.Errorf("ticket: %w", ErrTransitUnspecified)
		case f.relativeDot && prev != "" && !strings.HasPrefix(prev, "/"):
			name += prev
		case f.leadingSpace:
			// " /NAME": a full X.500 name after other names.
		case f.relativeSlash && strings.HasPrefix(prev, "/"):
			name = prev + name
		}
		if name == "" {
			return nil, fmt.Errorf("ticket: transited field has an empty realm name")
		}
		realms = append(realms, name)
		prev = name
	}
	return realms, nil
}

// transitedField is one comma-separated entry of a transited field, unescaped,
// with what its unescaped first and last characters mean.
type transitedField struct {
	text          string
	relativeDot   bool // ended in an unescaped '.' (kept in text)
	relativeSlash bool // began with an unescaped '/' (kept in text)
	leadingSpace  bool // began with an unescaped ' ' (dropped from text)
	escapedStart  bool // began with an escape
}

func splitTransited(s string) []transitedField {
	var out []transitedField
	var cur strings.Builder
	f := transitedField{}
	lastEscaped := false
	start := true
	flush := func() {
		f.text = cur.String()
		if strings.HasSuffix(f.text, ".") && !lastEscaped {
			f.relativeDot = true
		}
		out = append(out, f)
		cur.Reset()
		f = transitedField{}
		lastEscaped, start = false, true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			if start {
				f.escapedStart = true
			}
			cur.WriteByte(s[i])
			lastEscaped, start = true, false
		case c == ',':
			flush()
		default:
			if start && c == ' ' {
				f.leadingSpace = true
				continue // stays at the start: the '/' that follows is absolute
			}
			if start && c == '/' && !f.leadingSpace {
				f.relativeSlash = true
			}
			cur.WriteByte(c)
			lastEscaped, start = false, false
		}
	}
	flush()
	return out
}
