package principal

import (
	"sort"
	"time"
)

// Record is everything the KDC knows about one principal.
type Record struct {
	Name Name
	// Keys holds the current keys and, after a key change, the keys of older
	// kvnos that are kept so tickets issued under them can still be read.
	Keys []Key
	// RequiresPreauth makes the AS exchange demand PA-ENC-TIMESTAMP (RFC 4120
	// §3.1.3). On by default for new principals.
	RequiresPreauth bool
	// RequiresFAST refuses an unarmored AS exchange for this client: it must
	// log in inside FAST (RFC 6113), kinit -T.
	RequiresFAST bool
	// Disabled principals get KDC_ERR_CLIENT_REVOKED as clients and
	// KDC_ERR_POLICY as servers.
	Disabled bool
	// MaxLife and MaxRenew cap ticket lifetimes; zero means the realm's limit.
	MaxLife  time.Duration
	MaxRenew time.Duration
	// Expires is the principal's expiration; zero means never.
	Expires time.Time
	// PasswordExpires is when the password (keys) expire; zero means never.
	PasswordExpires time.Time
	Created         time.Time
	Modified        time.Time

	// Aliases are other names of this principal, in its realm (alias.go). A
	// store's Get finds the record under any of them; the record keeps its
	// canonical Name.
	Aliases []Name
	// Delegation settings (delegation.go; MS-SFU as MIT implements it).
	Delegation Delegation

	// Policy names the principal's password and lockout policy (policy.go);
	// empty means none.
	Policy string
	// Lockout state, changed only through Store.Update: failed
	// pre-authentications counted since LastFailure's interval began, and
	// the lockout's end (zero: not locked; Forever: until unlocked).
	FailCount   int
	LastFailure time.Time
	LockedUntil time.Time
	// LastPasswordChange is when the keys last came from a password change.
	LastPasswordChange time.Time
	// KeyHistory holds one key of each remembered older password, newest
	// first, for the policy's history rule; sealed like Keys.
	KeyHistory []Key
}

// NewRecord returns a record for name with the defaults every new principal gets:
// pre-authentication required, enabled, realm lifetimes.
func NewRecord(name Name, keys []Key, now time.Time) *Record {
	return &Record{
		Name:            name,
		Keys:            keys,
		RequiresPreauth: true,
		Created:         now.UTC(),
		Modified:        now.UTC(),
	}
}

// KVNO returns the current key version number: the highest kvno among the keys.
func (r *Record) KVNO() uint32 {
	var v uint32
	for _, k := range r.Keys {
		if k.KVNO > v {
			v = k.KVNO
		}
	}
	return v
}

// CurrentKeys returns the keys of the current kvno, in the order they were made.
func (r *Record) CurrentKeys() []Key {
	v := r.KVNO()
	var out []Key
	for _, k := range r.Keys {
		if k.KVNO == v {
			out = append(out, k)
		}
	}
	return out
}

// FindKey returns the key of the given enctype and kvno; kvno 0 means the current one.
func (r *Record) FindKey(etype int32, kvno uint32) (Key, bool) {
	if kvno == 0 {
		kvno = r.KVNO()
	}
	for _, k := range r.Keys {
		if k.Etype == etype && k.KVNO == kvno {
			return k, true
		}
	}
	return Key{}, false
}

// HasKVNO reports whether any key of that version is kept.
func (r *Record) HasKVNO(kvno uint32) bool {
	for _, k := range r.Keys {
		if k.KVNO == kvno {
			return true
		}
	}
	return false
}

// KeepOldKeys is how many older kvnos survive a key change: the two kvnos before
// the current one, so that tickets issued before the last two changes stay
// readable until they expire. `kdc principal purgekeys` drops them sooner.
const KeepOldKeys = 2

// Rekey installs newKeys (which must all carry the next kvno) and prunes kvnos older
// than KeepOldKeys versions back.
func (r *Record) Rekey(newKeys []Key, now time.Time) {
	r.Keys = append(append([]Key(nil), newKeys...), r.Keys...)
	r.KeepKVNOs(KeepOldKeys)
	r.Modified = now.UTC()
}

// KeepKVNOs drops the keys of every kvno but the current one and the keep
// newest older ones.
func (r *Record) KeepKVNOs(keep int) {
	var kvnos []uint32
	seen := map[uint32]bool{}
	for _, k := range r.Keys {
		if !seen[k.KVNO] {
			seen[k.KVNO] = true
			kvnos = append(kvnos, k.KVNO)
		}
	}
	sort.Slice(kvnos, func(i, j int) bool { return kvnos[i] > kvnos[j] })
	if len(kvnos) > keep+1 {
		kvnos = kvnos[:keep+1]
	}
	kept := map[uint32]bool{}
	for _, v := range kvnos {
		kept[v] = true
	}
	old := r.Keys
	r.Keys = nil
	for _, k := range old {
		if kept[k.KVNO] {
			r.Keys = append(r.Keys, k)
		}
	}
}

// Enctypes returns the enctypes of the current keys.
func (r *Record) Enctypes() []int32 {
	var out []int32
	for _, k := range r.CurrentKeys() {
		out = append(out, k.Etype)
	}
	return out
}
