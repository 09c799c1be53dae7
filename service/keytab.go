package service

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// ResolveKeytabPath returns the keytab file to use: flag when set, else
// $KRB5_KTNAME. Either may carry MIT's "FILE:" (or "WRFILE:") prefix; other
// keytab types (MEMORY:, KEYRING:, ...) are refused. Unlike MIT there is no
// silent default of /etc/krb5.keytab: a service should say which keys it uses.
func ResolveKeytabPath(flag string) (string, error) {
	name, from := flag, "--keytab"
	if name == "" {
		name, from = os.Getenv("KRB5_KTNAME"), "KRB5_KTNAME"
	}
	if name == "" {
		return "", errors.New("service: no keytab: use --keytab FILE or set KRB5_KTNAME")
	}
	for _, p := range []string{"FILE:", "WRFILE:"} {
		if strings.HasPrefix(name, p) {
			name = strings.TrimPrefix(name, p)
			break
		}
	}
	if i := strings.IndexByte(name, ':'); i > 0 && !strings.ContainsAny(name[:i], "/.") && strings.ToUpper(name[:i]) == name[:i] {
		return "", fmt.Errorf("service: %s %q: only FILE: keytabs are supported", from, name)
	}
	if name == "" {
		return "", fmt.Errorf("service: %s names an empty file", from)
	}
	return name, nil
}

// Keytab is a service keytab file, loaded with ticket.LoadKeytabFile (which never
// echoes the file's bytes in errors, as gokrb5's keytab.Load does). When a
// ticket names a key the loaded copy lacks (a new kvno after a key change), the
// file is reloaded if it changed on disk, so a running service picks up
// `kdc keytab` exports without a restart. Safe for concurrent use.
type Keytab struct {
	path string

	mu      sync.RWMutex
	kt      *keytab.Keytab
	modTime time.Time
	size    int64
}

// LoadKeytab loads the keytab at path. A keytab without any entry is an error.
func LoadKeytab(path string) (*Keytab, error) {
	k := &Keytab{path: path}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keytab) load() error {
	st, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("service: keytab: %w", err)
	}
	kt, err := ticket.LoadKeytabFile(k.path)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if len(kt.Entries) == 0 {
		return fmt.Errorf("service: keytab %s has no keys", k.path)
	}
	k.mu.Lock()
	k.kt, k.modTime, k.size = kt, st.ModTime(), st.Size()
	k.mu.Unlock()
	return nil
}

// reloadIfChanged reloads the file when its size or mtime changed and reports
// whether it did.
func (k *Keytab) reloadIfChanged() bool {
	st, err := os.Stat(k.path)
	if err != nil {
		return false
	}
	k.mu.RLock()
	same := st.ModTime().Equal(k.modTime) && st.Size() == k.size
	k.mu.RUnlock()
	if same {
		return false
	}
	return k.load() == nil
}

// Path returns the keytab's file name.
func (k *Keytab) Path() string { return k.path }

// Principals lists the distinct principals in the keytab, in file order.
func (k *Keytab) Principals() []principal.Name {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var out []principal.Name
	for _, e := range k.kt.Entries {
		p := entryPrincipal(e.Principal.Realm, e.Principal.Components, e.Principal.NameType)
		if !slices.ContainsFunc(out, p.Equal) {
			out = append(out, p)
		}
	}
	return out
}

// entryPrincipal is a keytab entry's principal with the name type the file
// records.
func entryPrincipal(realm string, comps []string, nameType int32) principal.Name {
	return principal.Name{Components: comps, Realm: realm, Type: nameType}
}

// keyFor finds the key that decrypts a ticket for princ sealed with etype and
// kvno (0: the newest kvno). It reloads the file once if the key is missing.
func (k *Keytab) keyFor(princ principal.Name, kvno int, etype int32) (types.EncryptionKey, int, *APError) {
	key, v, aerr := k.lookup(princ, kvno, etype)
	if aerr != nil && k.reloadIfChanged() {
		key, v, aerr = k.lookup(princ, kvno, etype)
	}
	return key, v, aerr
}

func (k *Keytab) lookup(princ principal.Name, kvno int, etype int32) (types.EncryptionKey, int, *APError) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var kvnos []int
	var have []string
	for _, e := range k.kt.Entries {
		p := entryPrincipal(e.Principal.Realm, e.Principal.Components, e.Principal.NameType)
		if !p.Equal(princ) {
			if s := p.String(); !slices.Contains(have, s) {
				have = append(have, s)
			}
			continue
		}
		if v := int(e.KVNO); !slices.Contains(kvnos, v) {
			kvnos = append(kvnos, v)
		}
	}
	if len(kvnos) == 0 {
		return types.EncryptionKey{}, 0, apErr(errorcode.KRB_AP_ERR_NOKEY,
			"no key for %s in keytab %s (it has %s)", princ, k.path, listOrNone(have))
	}
	slices.Sort(kvnos)
	if kvno == 0 {
		kvno = kvnos[len(kvnos)-1]
	} else if !slices.Contains(kvnos, kvno) {
		return types.EncryptionKey{}, 0, apErr(errorcode.KRB_AP_ERR_BADKEYVER,
			"ticket for %s kvno %d not found in keytab %s (has kvno %s)", princ, kvno, k.path, joinInts(kvnos))
	}
	var etypes []int
	for _, e := range k.kt.Entries {
		if int(e.KVNO) != kvno || !entryPrincipal(e.Principal.Realm, e.Principal.Components, e.Principal.NameType).Equal(princ) {
			continue
		}
		if e.Key.KeyType == etype {
			return types.EncryptionKey{KeyType: e.Key.KeyType, KeyValue: append([]byte(nil), e.Key.KeyValue...)}, kvno, nil
		}
		etypes = append(etypes, int(e.Key.KeyType))
	}
	return types.EncryptionKey{}, 0, apErr(errorcode.KRB_AP_ERR_NOKEY,
		"ticket for %s kvno %d is sealed with enctype %d, keytab %s has only enctypes %s for it", princ, kvno, etype, k.path, joinInts(etypes))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "no other principals"
	}
	if len(v) > 5 {
		return strings.Join(v[:5], ", ") + fmt.Sprintf(" and %d more", len(v)-5)
	}
	return strings.Join(v, ", ")
}
