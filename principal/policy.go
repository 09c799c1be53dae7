package principal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jcmturner/gokrb5/v8/crypto"
)

// Policy is a named password and lockout policy, MIT kadmin's policy object
// (kadmin add_policy): principals name it in Record.Policy.
type Policy struct {
	Name string
	// MinLength is the least number of characters (Unicode code points; MIT
	// counts bytes) of a new password.
	MinLength int
	// MinClasses is the least number of character classes a new password
	// uses, of five: lower case, upper case, digits, punctuation, and all
	// other characters (MIT's five).
	MinClasses int
	// History is how many passwords a principal remembers, counting the
	// current one (MIT pw_history_num): a new password may not be any of
	// them. 0 and 1 mean no check, as in MIT.
	History int
	// MaxLife is how long a password lasts before it must be changed (MIT
	// maxlife); 0 means it never expires.
	MaxLife time.Duration
	// MaxFailures is the number of failed pre-authentications that locks the
	// principal (MIT maxfailure); 0 means no lockout.
	MaxFailures int
	// FailureInterval is how long a failure counts (MIT failurecountinterval):
	// a failure later than this after the previous one starts the count
	// again. 0 means failures never expire.
	FailureInterval time.Duration
	// LockoutDuration is how long a locked principal stays locked (MIT
	// lockoutduration); 0 means until an administrator unlocks it.
	LockoutDuration time.Duration
}

// MaxPolicyName bounds a policy name.
const MaxPolicyName = 128

// DefaultPolicyName is the policy `kdc init` creates and gives every new
// principal unless told otherwise.
const DefaultPolicyName = "default"

// DefaultPasswordPolicy is the policy `kdc init` creates as "default", which
// new principals get unless told otherwise (as MIT kadmin assigns a policy
// named "default"): ten failed pre-authentications within ten minutes lock
// a principal for ten minutes. It sets no password rules, so that existing
// scripts and test realms keep their passwords; tighten it with `kdc policy
// modify default --min-length 8 --min-classes 2 --history 3` (README).
func DefaultPasswordPolicy() *Policy {
	return &Policy{
		Name:            DefaultPolicyName,
		MaxFailures:     10,
		FailureInterval: 10 * time.Minute,
		LockoutDuration: 10 * time.Minute,
	}
}

// Validate checks a policy's fields.
func (p *Policy) Validate() error {
	if p.Name == "" || len(p.Name) > MaxPolicyName {
		return fmt.Errorf("principal: a policy name has 1 to %d bytes", MaxPolicyName)
	}
	for _, c := range p.Name {
		if c < 0x21 || c > 0x7e || c == '/' {
			return fmt.Errorf("principal: policy name %q: printable ASCII without spaces or '/' only", p.Name)
		}
	}
	switch {
	case p.MinLength < 0 || p.MinLength > 1024:
		return errors.New("principal: policy min length must be 0..1024")
	case p.MinClasses < 0 || p.MinClasses > 5:
		return errors.New("principal: policy min classes must be 0..5")
	case p.History < 0 || p.History > MaxHistory:
		return fmt.Errorf("principal: policy history must be 0..%d", MaxHistory)
	case p.MaxLife < 0, p.FailureInterval < 0, p.LockoutDuration < 0:
		return errors.New("principal: policy durations may not be negative")
	case p.MaxFailures < 0 || p.MaxFailures > 1<<20:
		return errors.New("principal: policy max failures must be 0..1048576")
	}
	return nil
}

// MaxHistory bounds Policy.History: each remembered password costs a
// string-to-key at every change.
const MaxHistory = 32

// ErrPasswordQuality is wrapped by every *PasswordError.
var ErrPasswordQuality = errors.New("principal: password refused by policy")

// The reasons of a *PasswordError, MIT's texts, which kpasswd clients print.
const (
	ReasonTooShort = "Password is too short"
	ReasonClasses  = "Password does not contain enough character classes"
	ReasonReused   = "Password has been used before"
	ReasonEmpty    = "Password is empty"
)

// PasswordError is a password a policy refuses. Error is the reason alone, as
// kpasswd shows it; errors.Is(err, ErrPasswordQuality) holds. It never holds
// the password.
type PasswordError struct {
	Reason string
	Policy string
}

func (e *PasswordError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrPasswordQuality) true.
func (e *PasswordError) Unwrap() error { return ErrPasswordQuality }

// CharClasses counts the character classes password uses (MIT's five).
func CharClasses(password string) int {
	var lower, upper, digit, punct, other int
	for _, c := range password {
		switch {
		case c < utf8.RuneSelf && c >= 'a' && c <= 'z':
			lower = 1
		case c < utf8.RuneSelf && c >= 'A' && c <= 'Z':
			upper = 1
		case c < utf8.RuneSelf && c >= '0' && c <= '9':
			digit = 1
		case c < utf8.RuneSelf && unicode.IsPunct(c) || c < utf8.RuneSelf && unicode.IsSymbol(c):
			punct = 1
		default:
			other = 1
		}
	}
	return lower + upper + digit + punct + other
}

// CheckPassword applies pol's password rules to password as the new password
// of rec: length, character classes, and (when rec is not nil) the history,
// by deriving a key from password with the enctype and salt of each
// remembered key (rec's current keys and rec.KeyHistory) and comparing. A nil
// pol allows anything but an empty password. It returns nil or a
// *PasswordError.
func CheckPassword(pol *Policy, rec *Record, password string) error {
	if password == "" {
		return &PasswordError{Reason: ReasonEmpty}
	}
	if pol == nil {
		return nil
	}
	if utf8.RuneCountInString(password) < pol.MinLength {
		return &PasswordError{Reason: ReasonTooShort, Policy: pol.Name}
	}
	if CharClasses(password) < pol.MinClasses {
		return &PasswordError{Reason: ReasonClasses, Policy: pol.Name}
	}
	if rec == nil || pol.History <= 1 {
		return nil
	}
	for _, k := range rememberedKeys(rec, pol.History) {
		if keyMatches(rec.Name, k, password) {
			return &PasswordError{Reason: ReasonReused, Policy: pol.Name}
		}
	}
	return nil
}

// rememberedKeys is one key per remembered password: the first current key
// and the newest history-1 entries of KeyHistory.
func rememberedKeys(rec *Record, history int) []Key {
	var out []Key
	if cur := rec.CurrentKeys(); len(cur) > 0 {
		out = append(out, cur[0])
	}
	for i, k := range rec.KeyHistory {
		if i >= history-1 {
			break
		}
		out = append(out, k)
	}
	return out
}

// keyMatches reports whether password derives k (with k's salt, or the
// default salt of name).
func keyMatches(name Name, k Key, password string) bool {
	et, err := crypto.GetEtype(k.Etype)
	if err != nil {
		return false
	}
	salt := k.Salt
	if salt == "" {
		salt = name.Salt()
	}
	v, err := et.StringToKey(password, salt, et.GetDefaultStringToKeyParams())
	if err != nil {
		return false
	}
	ok := subtle.ConstantTimeCompare(v, k.Value) == 1
	clear(v)
	return ok
}

// SetPassword gives r new keys from password (the next kvno, r's current
// enctypes) after checking it against pol unless ignorePolicy: the current
// key goes into KeyHistory (pol.History-1 kept), LastPasswordChange becomes
// now and PasswordExpires now+pol.MaxLife (zero when the policy has no
// maximum life). Call it inside Store.Update.
func (r *Record) SetPassword(pol *Policy, password string, now time.Time, ignorePolicy bool) error {
	if ignorePolicy {
		if password == "" {
			return &PasswordError{Reason: ReasonEmpty}
		}
	} else if err := CheckPassword(pol, r, password); err != nil {
		return err
	}
	enctypes := r.Enctypes()
	if len(enctypes) == 0 {
		enctypes = DefaultEnctypes
	}
	keys, err := KeysFromPassword(r.Name, password, enctypes, r.KVNO()+1)
	if err != nil {
		return err
	}
	r.NewKeys(pol, keys, now)
	r.LastPasswordChange = now.UTC()
	r.PasswordExpires = time.Time{}
	if pol != nil && pol.MaxLife > 0 {
		r.PasswordExpires = now.Add(pol.MaxLife).UTC()
	}
	return nil
}

// NewKeys installs keys (of the next kvno) as Rekey does, first remembering
// the current key in KeyHistory as pol's history asks (random keys are
// remembered too: they are what an old password is compared against only if
// it derived them, which a random key never matches).
func (r *Record) NewKeys(pol *Policy, keys []Key, now time.Time) {
	keep := 0
	if pol != nil && pol.History > 1 {
		keep = pol.History - 1
	}
	if cur := r.CurrentKeys(); keep > 0 && len(cur) > 0 {
		r.KeyHistory = append([]Key{cur[0]}, r.KeyHistory...)
	}
	if len(r.KeyHistory) > keep {
		r.KeyHistory = r.KeyHistory[:keep]
	}
	if len(r.KeyHistory) == 0 {
		r.KeyHistory = nil
	}
	r.Rekey(keys, now)
}

// Forever is the LockedUntil of a principal locked until an administrator
// unlocks it.
var Forever = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// Locked reports whether r is locked out at now.
func (r *Record) Locked(now time.Time) bool {
	return !r.LockedUntil.IsZero() && now.Before(r.LockedUntil)
}

// RecordFailure counts one failed pre-authentication at now under pol (MIT's
// lockout rules): a failure more than pol.FailureInterval after the last one,
// or after a lockout has passed, starts the count again; reaching
// pol.MaxFailures locks r for pol.LockoutDuration (Forever when 0). It
// reports whether this failure locked r. n is how many failures to count at
// once (coalesced failures); nil pol or MaxFailures 0 counts nothing.
func (r *Record) RecordFailure(pol *Policy, now time.Time, n int) (locked bool) {
	if pol == nil || pol.MaxFailures <= 0 || n <= 0 || r.Locked(now) {
		return false
	}
	expired := pol.FailureInterval > 0 && !r.LastFailure.IsZero() && now.Sub(r.LastFailure) > pol.FailureInterval
	if expired || !r.LockedUntil.IsZero() {
		r.FailCount = 0
		r.LockedUntil = time.Time{}
	}
	r.FailCount += n
	r.LastFailure = now.UTC()
	if r.FailCount >= pol.MaxFailures {
		r.LockedUntil = Forever
		if pol.LockoutDuration > 0 {
			r.LockedUntil = now.Add(pol.LockoutDuration).UTC()
		}
		return true
	}
	return false
}

// Unlock clears r's failure count and lockout.
func (r *Record) Unlock() {
	r.FailCount = 0
	r.LockedUntil = time.Time{}
}

// PolicyStore keeps named policies; store.BoltStore and store.EtcdStore
// implement it. Missing policies give ErrNotFound.
type PolicyStore interface {
	GetPolicy(ctx context.Context, name string) (*Policy, error)
	// CreatePolicy adds a policy, or fails with ErrExists.
	CreatePolicy(ctx context.Context, p *Policy) error
	// UpdatePolicy applies fn to the stored policy in one transaction.
	UpdatePolicy(ctx context.Context, name string, fn func(*Policy) error) error
	// DeletePolicy removes a policy; it refuses one that a principal names.
	DeletePolicy(ctx context.Context, name string) error
	// ListPolicies returns every policy name, sorted.
	ListPolicies(ctx context.Context) ([]string, error)
}

// ErrPolicyInUse is returned by DeletePolicy for a policy a principal names.
var ErrPolicyInUse = errors.New("principal: policy in use")
