package kdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// Admin is the administration interface of a realm. LocalAdmin works on an open
// store; AdminClient reaches a running server's store over its admin socket. The
// kdc commands use whichever is available, so they work with or without a server.
type Admin interface {
	Realm(ctx context.Context) (string, error)
	Add(ctx context.Context, req AddRequest) (PrincipalInfo, error)
	List(ctx context.Context) ([]string, error)
	Show(ctx context.Context, name string) (PrincipalInfo, error)
	Delete(ctx context.Context, name string) error
	// ChangeKeys gives a principal new keys with the next kvno, from a password
	// or random; the keys of older kvnos are kept (see principal.KeepOldKeys).
	ChangeKeys(ctx context.Context, name string, password string, random bool) (PrincipalInfo, error)
	SetDisabled(ctx context.Context, name string, disabled bool) (PrincipalInfo, error)
	// Keytab returns the keys of the named principals, every kvno still kept,
	// newest first, ready for an MIT keytab.
	Keytab(ctx context.Context, names []string) ([]ticket.KeytabEntry, error)
	// PurgeKeys drops the keys of old kvnos, keeping the current kvno and the
	// keep newest older ones (MIT kadmin purgekeys).
	PurgeKeys(ctx context.Context, name string, keep int) (PrincipalInfo, error)
	// Check runs the store's consistency check (for a bbolt store, bbolt's
	// page check).
	Check(ctx context.Context) error
}

// checker is a store that can check itself (store.BoltStore).
type checker interface{ Check() error }

// AddRequest describes a new principal.
type AddRequest struct {
	Name      string        `json:"name"`
	Password  string        `json:"password,omitempty"`
	RandomKey bool          `json:"random_key,omitempty"`
	NoPreauth bool          `json:"no_preauth,omitempty"`
	MaxLife   time.Duration `json:"max_life,omitempty"`
	MaxRenew  time.Duration `json:"max_renew,omitempty"`
	Enctypes  []int32       `json:"enctypes,omitempty"`
	// Policy names the principal's policy; empty means the policy named
	// "default" when the realm has one (as MIT kadmin assigns it), unless
	// NoPolicy.
	Policy   string `json:"policy,omitempty"`
	NoPolicy bool   `json:"no_policy,omitempty"`
	// IgnorePolicy skips the policy's password rules (an administrator's
	// override).
	IgnorePolicy bool `json:"ignore_policy,omitempty"`
}

// PrincipalInfo is what `kdc principal show` prints: never key material.
type PrincipalInfo struct {
	Name            string        `json:"name"`
	KVNO            uint32        `json:"kvno"`
	Enctypes        []string      `json:"enctypes"`
	OldKVNOs        []uint32      `json:"old_kvnos,omitempty"`
	RequiresPreauth bool          `json:"requires_preauth"`
	Disabled        bool          `json:"disabled"`
	MaxLife         time.Duration `json:"max_life"`
	MaxRenew        time.Duration `json:"max_renew"`
	Expires         time.Time     `json:"expires"`
	Created         time.Time     `json:"created"`
	Modified        time.Time     `json:"modified"`
	// Aliases and the delegation settings (namesadmin.go).
	Aliases            []string `json:"aliases,omitempty"`
	OKAsDelegate       bool     `json:"ok_as_delegate,omitempty"`
	OKToAuthAsDelegate bool     `json:"ok_to_auth_as_delegate,omitempty"`
	DelegateTo         []string `json:"allowed_to_delegate_to,omitempty"`
	// Policy and lockout state (policyadmin.go).
	Policy             string    `json:"policy,omitempty"`
	FailCount          int       `json:"fail_count"`
	LastFailure        time.Time `json:"last_failure"`
	LockedUntil        time.Time `json:"locked_until"`
	LastPasswordChange time.Time `json:"last_password_change"`
	PasswordExpires    time.Time `json:"password_expires"`
	RequiresFAST       bool      `json:"requires_fast,omitempty"`
}

// LocalAdmin administers a store this process has open.
type LocalAdmin struct {
	Store principal.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PolicyChanged, when set, is called after a policy was added, changed
	// or deleted (kdc serve: KDC.ForgetPolicies).
	PolicyChanged func()
}

var _ Admin = (*LocalAdmin)(nil)

func (a *LocalAdmin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *LocalAdmin) parse(name string) (principal.Name, error) {
	n, err := principal.Parse(name, a.Store.Realm())
	if err != nil {
		return n, err
	}
	if n.Realm != a.Store.Realm() {
		return n, fmt.Errorf("kdc: %s is not in realm %s", n, a.Store.Realm())
	}
	return n, nil
}

// Realm implements Admin.
func (a *LocalAdmin) Realm(context.Context) (string, error) { return a.Store.Realm(), nil }

// Add implements Admin.
func (a *LocalAdmin) Add(ctx context.Context, req AddRequest) (PrincipalInfo, error) {
	n, err := a.parse(req.Name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	enctypes := req.Enctypes
	if len(enctypes) == 0 {
		enctypes = principal.DefaultEnctypes
	}
	keys, err := makeKeys(n, req.Password, req.RandomKey, enctypes, 1)
	if err != nil {
		return PrincipalInfo{}, err
	}
	pol, err := a.newPolicy(ctx, req)
	if err != nil {
		return PrincipalInfo{}, err
	}
	if req.Password != "" && !req.IgnorePolicy {
		if err := principal.CheckPassword(pol, nil, req.Password); err != nil {
			return PrincipalInfo{}, fmt.Errorf("kdc: %s: %w", n, err)
		}
	}
	rec := principal.NewRecord(n, keys, a.now())
	rec.RequiresPreauth = !req.NoPreauth
	rec.MaxLife, rec.MaxRenew = req.MaxLife, req.MaxRenew
	if pol != nil {
		rec.Policy = pol.Name
		if req.Password != "" {
			rec.LastPasswordChange = a.now().UTC()
			if pol.MaxLife > 0 {
				rec.PasswordExpires = a.now().Add(pol.MaxLife).UTC()
			}
		}
	}
	if err := a.Store.Create(ctx, rec); err != nil {
		return PrincipalInfo{}, err
	}
	return infoOf(rec), nil
}

func makeKeys(n principal.Name, password string, random bool, enctypes []int32, kvno uint32) ([]principal.Key, error) {
	switch {
	case random && password != "":
		return nil, errors.New("kdc: give a password or ask for a random key, not both")
	case random:
		return principal.RandomKeys(enctypes, kvno)
	case password == "":
		return nil, errors.New("kdc: empty password")
	}
	return principal.KeysFromPassword(n, password, enctypes, kvno)
}

// List implements Admin.
func (a *LocalAdmin) List(ctx context.Context) ([]string, error) {
	names, err := a.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n.String()
	}
	return out, nil
}

// Show implements Admin.
func (a *LocalAdmin) Show(ctx context.Context, name string) (PrincipalInfo, error) {
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	rec, err := a.Store.Get(ctx, n)
	if err != nil {
		return PrincipalInfo{}, err
	}
	return infoOf(rec), nil
}

// Delete implements Admin.
func (a *LocalAdmin) Delete(ctx context.Context, name string) error {
	n, err := a.parse(name)
	if err != nil {
		return err
	}
	return a.Store.Delete(ctx, n)
}

// ChangeKeys implements Admin: a password must pass the principal's policy.
func (a *LocalAdmin) ChangeKeys(ctx context.Context, name, password string, random bool) (PrincipalInfo, error) {
	return a.SetPassword(ctx, name, password, random, false)
}

// SetPassword implements PolicyAdmin.
func (a *LocalAdmin) SetPassword(ctx context.Context, name, password string, random, ignorePolicy bool) (PrincipalInfo, error) {
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	// The policy is read before the transaction: a bbolt read inside a
	// write transaction of the same goroutine may deadlock.
	cur, err := a.Store.Get(ctx, n)
	if err != nil {
		return PrincipalInfo{}, err
	}
	pol, err := a.policyOfRecord(ctx, cur)
	if err != nil {
		return PrincipalInfo{}, err
	}
	var info PrincipalInfo
	err = a.Store.Update(ctx, n, func(r *principal.Record) error {
		if r.Policy != cur.Policy {
			return fmt.Errorf("kdc: the policy of %s changed meanwhile; try again", r.Name)
		}
		if !random && password != "" {
			if err := r.SetPassword(pol, password, a.now(), ignorePolicy); err != nil {
				return fmt.Errorf("kdc: %s: %w", r.Name, err)
			}
			info = infoOf(r)
			return nil
		}
		enctypes := r.Enctypes()
		if len(enctypes) == 0 {
			enctypes = principal.DefaultEnctypes
		}
		keys, err := makeKeys(r.Name, password, random, enctypes, r.KVNO()+1)
		if err != nil {
			return err
		}
		r.NewKeys(pol, keys, a.now())
		r.PasswordExpires = time.Time{} // random keys are no password to expire
		info = infoOf(r)
		return nil
	})
	return info, err
}

// SetDisabled implements Admin.
func (a *LocalAdmin) SetDisabled(ctx context.Context, name string, disabled bool) (PrincipalInfo, error) {
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	var info PrincipalInfo
	err = a.Store.Update(ctx, n, func(r *principal.Record) error {
		r.Disabled = disabled
		r.Modified = a.now().UTC()
		info = infoOf(r)
		return nil
	})
	return info, err
}

// Keytab implements Admin.
func (a *LocalAdmin) Keytab(ctx context.Context, names []string) ([]ticket.KeytabEntry, error) {
	var out []ticket.KeytabEntry
	ts := a.now()
	for _, name := range names {
		n, err := a.parse(name)
		if err != nil {
			return nil, err
		}
		rec, err := a.Store.Get(ctx, n)
		if err != nil {
			return nil, err
		}
		for _, k := range rec.Keys {
			out = append(out, ticket.KeytabEntry{
				Principal: n,
				Timestamp: ts,
				KVNO:      k.KVNO,
				Key:       k.EncryptionKey(),
			})
		}
	}
	return out, nil
}

// PurgeKeys implements Admin.
func (a *LocalAdmin) PurgeKeys(ctx context.Context, name string, keep int) (PrincipalInfo, error) {
	if keep < 0 {
		return PrincipalInfo{}, errors.New("kdc: purgekeys: --keep must be 0 or more")
	}
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	var info PrincipalInfo
	err = a.Store.Update(ctx, n, func(r *principal.Record) error {
		r.KeepKVNOs(keep)
		r.Modified = a.now().UTC()
		info = infoOf(r)
		return nil
	})
	return info, err
}

// Check implements Admin.
func (a *LocalAdmin) Check(context.Context) error {
	if c, ok := a.Store.(checker); ok {
		return c.Check()
	}
	return nil
}

func infoOf(r *principal.Record) PrincipalInfo {
	info := PrincipalInfo{
		Name:            r.Name.String(),
		KVNO:            r.KVNO(),
		RequiresPreauth: r.RequiresPreauth,
		Disabled:        r.Disabled,
		MaxLife:         r.MaxLife,
		MaxRenew:        r.MaxRenew,
		Expires:         r.Expires,
		Created:         r.Created,
		Modified:        r.Modified,
	}
	for _, e := range r.Enctypes() {
		info.Enctypes = append(info.Enctypes, principal.EnctypeName(e))
	}
	for _, n := range r.Aliases {
		info.Aliases = append(info.Aliases, n.String())
	}
	for _, n := range r.Delegation.AllowedTo {
		info.DelegateTo = append(info.DelegateTo, n.String())
	}
	info.OKAsDelegate, info.OKToAuthAsDelegate = r.Delegation.OKAsDelegate, r.Delegation.OKToAuthAsDelegate
	info.Policy, info.FailCount, info.LastFailure, info.LockedUntil = r.Policy, r.FailCount, r.LastFailure, r.LockedUntil
	info.LastPasswordChange, info.PasswordExpires = r.LastPasswordChange, r.PasswordExpires
	info.RequiresFAST = r.RequiresFAST
	seen := map[uint32]bool{info.KVNO: true}
	for _, k := range r.Keys {
		if !seen[k.KVNO] {
			seen[k.KVNO] = true
			info.OldKVNOs = append(info.OldKVNOs, k.KVNO)
		}
	}
	return info
}
