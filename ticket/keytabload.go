package ticket

import (
	"errors"
	"fmt"
	"os"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// ErrBadKeytab reports keytab bytes that do not parse. Its text never carries
// any of the bytes: gokrb5's own errors (keytab.Load) format the whole input,
// keys included, and its parser can panic on short input.
var ErrBadKeytab = errors.New("ticket: malformed keytab")

// ParseKeytab decodes an MIT keytab (RFC-less, MIT's keytab file format
// versions 1 and 2). It never panics and never puts input bytes into its
// error; every keytab the project reads goes through it.
func ParseKeytab(b []byte) (kt *keytab.Keytab, err error) {
	defer func() {
		if r := recover(); r != nil {
			kt, err = nil, ErrBadKeytab
		}
	}()
	kt = keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return nil, ErrBadKeytab
	}
	return kt, nil
}

// LoadKeytabFile reads and decodes the keytab file at path with ParseKeytab.
func LoadKeytabFile(path string) (*keytab.Keytab, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ticket: reading keytab: %w", err)
	}
	defer clear(b)
	kt, err := ParseKeytab(b)
	if err != nil {
		return nil, fmt.Errorf("%w %s (truncated or not a keytab)", err, path)
	}
	return kt, nil
}
