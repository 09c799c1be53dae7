package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// Secret is the client's long-term secret for the AS exchange: a password or a keytab. Its String and GoString
// methods never reveal the password, and no error built from it contains the password or a key.
type Secret struct {
	password   string
	isPassword bool
	keytab     *keytab.Keytab
}

// PasswordSecret returns a Secret that derives keys from a password with the enctype's string-to-key function
// [RFC 3961 §3, RFC 3962, RFC 8009], salted as the KDC says in ETYPE-INFO2.
func PasswordSecret(password string) Secret {
	return Secret{password: password, isPassword: true}
}

// KeytabSecret returns a Secret that takes keys from a keytab: the entry of the client principal with the wanted
// enctype and the highest kvno.
func KeytabSecret(kt *keytab.Keytab) Secret {
	return Secret{keytab: kt}
}

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	switch {
	case s.isPassword:
		return "password(redacted)"
	case s.keytab != nil:
		return fmt.Sprintf("keytab(%d entries)", len(s.keytab.Entries))
	}
	return "no secret"
}

// GoString implements fmt.GoStringer without revealing the secret.
func (s Secret) GoString() string { return "client.Secret{" + s.String() + "}" }

// valid reports whether the secret holds a password or a keytab.
func (s Secret) valid() bool { return s.isPassword || s.keytab != nil }

// etypes filters want (in order) to the enctypes this secret can produce a key for: all supported ones for a
// password, those with a keytab entry for client otherwise (as MIT does for kinit -k).
func (s Secret) etypes(client principal.Name, want []int32) []int32 {
	var out []int32
	for _, e := range want {
		if _, err := crypto.GetEtype(e); err != nil {
			continue
		}
		if s.isPassword {
			out = append(out, e)
			continue
		}
		if _, _, ok := s.keytabKey(client, e); ok {
			out = append(out, e)
		}
	}
	return out
}

// key returns the client's long-term key of enctype etype. salt and s2kparams come from the KDC's
// ETYPE-INFO2 [RFC 4120 §5.2.7.5]; an empty salt means the default salt (realm followed by the name components,
// RFC 4120 §4) and empty s2kparams mean the enctype's default. For a keytab, salt and params are not used.
func (s Secret) key(client principal.Name, etype int32, salt string, s2kparams []byte) (types.EncryptionKey, error) {
	switch {
	case s.isPassword:
		et, err := crypto.GetEtype(etype)
		if err != nil {
			return types.EncryptionKey{}, fmt.Errorf("client: enctype %d not supported", etype)
		}
		if salt == "" {
			salt = client.Salt()
		}
		params := et.GetDefaultStringToKeyParams()
		if len(s2kparams) > 0 {
			params = hex.EncodeToString(s2kparams)
		}
		kv, err := et.StringToKey(s.password, salt, params)
		if err != nil {
			// gokrb5's string-to-key errors describe the parameters only; still, keep them out on purpose.
			return types.EncryptionKey{}, fmt.Errorf("client: string-to-key for enctype %d failed (s2kparams %x)", etype, s2kparams)
		}
		return types.EncryptionKey{KeyType: etype, KeyValue: kv}, nil
	case s.keytab != nil:
		k, _, ok := s.keytabKey(client, etype)
		if !ok {
			return types.EncryptionKey{}, fmt.Errorf("client: keytab has no %s key for %s", principal.EnctypeName(etype), client)
		}
		return k, nil
	}
	return types.EncryptionKey{}, errors.New("client: no password or keytab given")
}

// keytabKey finds the keytab entry for client with enctype etype and the highest kvno.
func (s Secret) keytabKey(client principal.Name, etype int32) (types.EncryptionKey, uint32, bool) {
	var best types.EncryptionKey
	var bestKVNO uint32
	found := false
	for _, e := range s.keytab.Entries {
		if e.Key.KeyType != etype || e.Principal.Realm != client.Realm ||
			!slices.Equal(e.Principal.Components, client.Components) {
			continue
		}
		if !found || e.KVNO > bestKVNO {
			best, bestKVNO, found = e.Key, e.KVNO, true
		}
	}
	return best, bestKVNO, found
}

// LoadKeytab reads an MIT keytab file with ticket.LoadKeytabFile: unlike gokrb5's keytab.Load it never puts file
// contents (keys) into error text, and it survives malformed files.
func LoadKeytab(path string) (*keytab.Keytab, error) {
	kt, err := ticket.LoadKeytabFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return kt, nil
}

// KeytabPrincipals returns the distinct principals of a keytab in file order; the first one is kinit -k's
// default client.
func KeytabPrincipals(kt *keytab.Keytab) []principal.Name {
	var out []principal.Name
	for _, e := range kt.Entries {
		p := principal.Name{Components: slices.Clone(e.Principal.Components), Realm: e.Principal.Realm, Type: e.Principal.NameType}
		if !slices.ContainsFunc(out, p.Equal) {
			out = append(out, p)
		}
	}
	return out
}
