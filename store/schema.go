package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kerbkit/kerbkit/principal"
)

// The bbolt layout. Every bucket is created in one transaction at init.
var (
	bucketMeta       = []byte("meta")
	bucketPrincipals = []byte("principals")
	// bucketAliases maps an alias's name key to its principal's name key. It is
	// derived from the records' aliases, kept in the same transaction as they
	// change, and created with the first alias: a database without it simply
	// has no aliases, so its schema version did not change.
	bucketAliases = []byte("aliases")
	// bucketPolicies holds the named password and lockout policies, by name
	// (schema 2).
	bucketPolicies = []byte("policies")

	metaSchema   = []byte("schema_version")
	metaRealm    = []byte("realm")
	metaPolicy   = []byte("policy")
	metaKeyCheck = []byte("master_key_check")
)

// schemaVersion is the bbolt layout this code writes: schema 2 with records in
// the binary form (recordbin.go). A database with a version this code does
// not know is refused at open rather than misread.
const schemaVersion = "3"

// schemaEtcd is the layout of an etcd realm: schema 2 (JSON records), which
// KDCs of earlier releases sharing the realm still read.
const schemaEtcd = schemaV2

// schemaV2 is the layout with policies and JSON records. A bbolt file of
// schema 2 becomes schema 3 at open: its records stay as they are until they
// are next written (this code reads both forms; `kdc dump` and `kdc load`
// rewrite them all).
const schemaV2 = "2"

// schemaV1 is the layout before policies (no policies bucket, no
// kadmin/changepw); Open upgrades it (upgrade.go).
const schemaV1 = "1"

// schemaReadable reports whether this code reads (and upgrades) version v.
func schemaReadable(v string) bool { return v == schemaV1 || v == schemaV2 || v == schemaVersion }

// keyCheckAD and keyCheckText let Open tell a wrong master key from a corrupt record.
const (
	keyCheckAD   = "kerbkit/master-key-check"
	keyCheckText = "kerbkit master key check"
)

// dbRecord is the stored form of a Record, kept apart from the API type so either
// can change with an explicit migration. Keys are sealed under the master key with
// the principal name as additional data.
type dbRecord struct {
	V               int    `json:"v"`
	Name            string `json:"name"`
	NameType        int32  `json:"name_type"`
	SealedKeys      []byte `json:"keys"`
	RequiresPreauth bool   `json:"requires_preauth"`
	Disabled        bool   `json:"disabled"`
	MaxLife         int64  `json:"max_life_s,omitempty"`
	MaxRenew        int64  `json:"max_renew_s,omitempty"`
	Expires         int64  `json:"expires,omitempty"`
	PasswordExpires int64  `json:"pw_expires,omitempty"`
	Created         int64  `json:"created"`
	Modified        int64  `json:"modified"`
	// Added without a version change: absent in older records, which have
	// none, and ignored by older readers.
	Aliases            []string `json:"aliases,omitempty"`
	OKAsDelegate       bool     `json:"ok_as_delegate,omitempty"`
	OKToAuthAsDelegate bool     `json:"ok_to_auth_as_delegate,omitempty"`
	DelegateTo         []string `json:"allowed_to_delegate_to,omitempty"`
	RequiresFAST       bool     `json:"requires_fast,omitempty"`
	// Policy and lockout state (schema 2; absent means none). The key
	// history is sealed like the keys, with its own additional data.
	Policy        string `json:"policy,omitempty"`
	FailCount     int    `json:"fail_count,omitempty"`
	LastFailure   int64  `json:"last_failure,omitempty"`
	LockedUntil   int64  `json:"locked_until,omitempty"`
	LastPwChange  int64  `json:"last_pw_change,omitempty"`
	SealedHistory []byte `json:"key_history,omitempty"`
}

// historyAD is the additional data sealing a record's key history: not the
// keys' own, so one cannot be passed off as the other.
func historyAD(nameKey string) string { return nameKey + "#history" }

// dbPasswordPolicy is the stored form of a principal.Policy (bucket
// policies, etcd PREFIX/policies/NAME). It holds no secret.
type dbPasswordPolicy struct {
	Name            string `json:"name"`
	MinLength       int    `json:"min_length,omitempty"`
	MinClasses      int    `json:"min_classes,omitempty"`
	History         int    `json:"history,omitempty"`
	MaxLife         int64  `json:"max_life_s,omitempty"`
	MaxFailures     int    `json:"max_failures,omitempty"`
	FailureInterval int64  `json:"failure_interval_s,omitempty"`
	LockoutDuration int64  `json:"lockout_duration_s,omitempty"`
}

func encodePolicy(p *principal.Policy) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(dbPasswordPolicy{
		Name: p.Name, MinLength: p.MinLength, MinClasses: p.MinClasses, History: p.History,
		MaxLife: int64(p.MaxLife / time.Second), MaxFailures: p.MaxFailures,
		FailureInterval: int64(p.FailureInterval / time.Second), LockoutDuration: int64(p.LockoutDuration / time.Second),
	})
}

func decodePolicy(b []byte) (*principal.Policy, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: a policy of %d bytes", principal.ErrCorrupt, len(b))
	}
	var d dbPasswordPolicy
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: policy: %w", principal.ErrCorrupt, err)
	}
	p := &principal.Policy{
		Name: d.Name, MinLength: d.MinLength, MinClasses: d.MinClasses, History: d.History,
		MaxLife: time.Duration(d.MaxLife) * time.Second, MaxFailures: d.MaxFailures,
		FailureInterval: time.Duration(d.FailureInterval) * time.Second, LockoutDuration: time.Duration(d.LockoutDuration) * time.Second,
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", principal.ErrCorrupt, err)
	}
	return p, nil
}

func sealKeys(ks []principal.Key, mk *MasterKey, ad string, form recordForm) ([]byte, error) {
	keys := make([]dbKey, len(ks))
	for i, k := range ks {
		keys[i] = dbKey(k)
	}
	var plain []byte
	if form == formBinary {
		plain = marshalKeysBinary(keys)
	} else {
		var err error
		if plain, err = json.Marshal(keys); err != nil {
			return nil, fmt.Errorf("store: encoding keys: %w", err)
		}
	}
	sealed, err := mk.Seal(plain, ad)
	clear(plain)
	return sealed, err
}

func openKeys(sealed []byte, mk *MasterKey, ad, name string) ([]principal.Key, error) {
	plain, err := mk.Open(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var keys []dbKey
	if len(plain) > 0 && plain[0] == keysBinary {
		keys, err = unmarshalKeysBinary(plain)
	} else {
		err = json.Unmarshal(plain, &keys)
	}
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: keys of %s do not decode", principal.ErrCorrupt, name)
	}
	out := make([]principal.Key, len(keys))
	for i, k := range keys {
		out[i] = principal.Key(k)
	}
	return out, nil
}

// resealJSON seals again, with the JSON plaintext, the keys of d (those of r,
// the record d holds) that are sealed with the binary plaintext of schema 3,
// so that an etcd realm loaded from the dump of a bbolt file stays readable by
// KDCs that read only schema 2. It reports whether it changed d.
func (d *dbRecord) resealJSON(r *principal.Record, mk *MasterKey) (bool, error) {
	changed := false
	for _, s := range []struct {
		sealed *[]byte
		keys   []principal.Key
		ad     string
	}{
		{&d.SealedKeys, r.Keys, d.Name},
		{&d.SealedHistory, r.KeyHistory, historyAD(d.Name)},
	} {
		if len(*s.sealed) == 0 {
			continue
		}
		plain, err := mk.Open(*s.sealed, s.ad)
		if err != nil {
			return false, fmt.Errorf("%s: %w", d.Name, err)
		}
		binary := len(plain) > 0 && plain[0] == keysBinary
		clear(plain)
		if !binary {
			continue
		}
		if *s.sealed, err = sealKeys(s.keys, mk, s.ad, formJSON); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

type dbKey struct {
	Etype int32  `json:"etype"`
	KVNO  uint32 `json:"kvno"`
	Salt  string `json:"salt,omitempty"`
	Value []byte `json:"value"`
}

type dbPolicy struct {
	MaxLife  int64 `json:"max_life_s"`
	MaxRenew int64 `json:"max_renew_s"`
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// encodeRecord is the stored form of r, in form.
func encodeRecord(r *principal.Record, mk *MasterKey, form recordForm) ([]byte, error) {
	sealed, err := sealKeys(r.Keys, mk, r.Name.Key(), form)
	if err != nil {
		return nil, err
	}
	var hist []byte
	if len(r.KeyHistory) > 0 {
		if hist, err = sealKeys(r.KeyHistory, mk, historyAD(r.Name.Key()), form); err != nil {
			return nil, err
		}
	}
	d := dbRecord{
		V:               1,
		Name:            r.Name.Key(),
		NameType:        r.Name.Type,
		SealedKeys:      sealed,
		RequiresPreauth: r.RequiresPreauth,
		Disabled:        r.Disabled,
		MaxLife:         int64(r.MaxLife / time.Second),
		MaxRenew:        int64(r.MaxRenew / time.Second),
		Expires:         unixOrZero(r.Expires),
		PasswordExpires: unixOrZero(r.PasswordExpires),
		Created:         unixOrZero(r.Created),
		Modified:        unixOrZero(r.Modified),

		Aliases:            nameKeys(r.Aliases),
		OKAsDelegate:       r.Delegation.OKAsDelegate,
		OKToAuthAsDelegate: r.Delegation.OKToAuthAsDelegate,
		DelegateTo:         nameKeys(r.Delegation.AllowedTo),
		RequiresFAST:       r.RequiresFAST,

		Policy:        r.Policy,
		FailCount:     r.FailCount,
		LastFailure:   unixOrZero(r.LastFailure),
		LockedUntil:   unixOrZero(r.LockedUntil),
		LastPwChange:  unixOrZero(r.LastPasswordChange),
		SealedHistory: hist,
	}
	return encodeStored(&d, form)
}

// encodeStored is d in form.
func encodeStored(d *dbRecord, form recordForm) ([]byte, error) {
	if form == formBinary {
		return marshalRecordBinary(d), nil
	}
	return json.Marshal(d)
}

// inForm reports whether the stored record b is in form.
func inForm(b []byte, form recordForm) bool {
	return len(b) > 0 && (b[0] == recordBinary) == (form == formBinary)
}

// parseStored reads a stored record of either form, without opening its keys.
func parseStored(b []byte) (*dbRecord, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: a record of %d bytes", principal.ErrCorrupt, len(b))
	}
	if len(b) > 0 && b[0] == recordBinary {
		d, err := unmarshalRecordBinary(b)
		if err != nil {
			return nil, corruptRecord(err)
		}
		return d, nil
	}
	var d dbRecord
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, corruptRecord(err)
	}
	return &d, nil
}

// transcode is the stored record b in form, its sealed keys as they are (the
// plaintext inside the seal keeps its form; openKeys reads either).
func transcode(b []byte, form recordForm) ([]byte, error) {
	if inForm(b, form) {
		return b, nil
	}
	d, err := parseStored(b)
	if err != nil {
		return nil, err
	}
	return encodeStored(d, form)
}

// maxRecordSize bounds a stored record: real ones are a few kilobytes, and only
// a damaged page makes bbolt hand out more.
const maxRecordSize = 1 << 20

// decodeRecord reads a stored record of either form and opens its keys.
func decodeRecord(b []byte, mk *MasterKey) (*principal.Record, error) {
	d, err := parseStored(b)
	if err != nil {
		return nil, err
	}
	return d.record(mk)
}

// name is the principal the stored record d is of.
func (d *dbRecord) name() (principal.Name, error) {
	name, err := principal.Parse(d.Name, "")
	if err != nil {
		return principal.Name{}, fmt.Errorf("%w: %w", principal.ErrCorrupt, err)
	}
	name.Type = d.NameType
	return name, nil
}

// record is the Record d holds, its keys opened under mk.
func (d *dbRecord) record(mk *MasterKey) (*principal.Record, error) {
	if d.V != 1 {
		return nil, fmt.Errorf("%w: record version %d", principal.ErrCorrupt, d.V)
	}
	name, err := d.name()
	if err != nil {
		return nil, err
	}
	keys, err := openKeys(d.SealedKeys, mk, d.Name, d.Name)
	if err != nil {
		return nil, err
	}
	r := &principal.Record{
		Name:            name,
		Keys:            keys,
		RequiresPreauth: d.RequiresPreauth,
		RequiresFAST:    d.RequiresFAST,
		Disabled:        d.Disabled,
		MaxLife:         time.Duration(d.MaxLife) * time.Second,
		MaxRenew:        time.Duration(d.MaxRenew) * time.Second,
		Expires:         timeOrZero(d.Expires),
		PasswordExpires: timeOrZero(d.PasswordExpires),
		Created:         timeOrZero(d.Created),
		Modified:        timeOrZero(d.Modified),

		Policy:             d.Policy,
		FailCount:          d.FailCount,
		LastFailure:        timeOrZero(d.LastFailure),
		LockedUntil:        timeOrZero(d.LockedUntil),
		LastPasswordChange: timeOrZero(d.LastPwChange),
	}
	if len(d.SealedHistory) > 0 {
		if r.KeyHistory, err = openKeys(d.SealedHistory, mk, historyAD(d.Name), d.Name); err != nil {
			return nil, err
		}
	}
	if r.Aliases, err = parseNames(d.Aliases, "alias"); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", principal.ErrCorrupt, d.Name, err)
	}
	if r.Delegation.AllowedTo, err = parseNames(d.DelegateTo, "delegation target"); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", principal.ErrCorrupt, d.Name, err)
	}
	r.Delegation.OKAsDelegate, r.Delegation.OKToAuthAsDelegate = d.OKAsDelegate, d.OKToAuthAsDelegate
	return r, nil
}

func nameKeys(ns []principal.Name) []string {
	if len(ns) == 0 {
		return nil
	}
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Key()
	}
	return out
}

func parseNames(ss []string, what string) ([]principal.Name, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]principal.Name, len(ss))
	for i, s := range ss {
		n, err := principal.Parse(s, "")
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, s, err)
		}
		out[i] = n
	}
	return out, nil
}
