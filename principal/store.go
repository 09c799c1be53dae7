package principal

import (
	"context"
	"errors"
	"time"
)

// Store keeps principal records. The KDC reads it on every request and writes it
// only from administration, so implementations should make Get cheap. All methods
// are safe for concurrent use.
type Store interface {
	// Realm is the realm this store serves.
	Realm() string
	// Policy is the realm-wide policy.
	Policy() RealmPolicy
	// Get returns the record for name (name type ignored), or ErrNotFound.
	Get(ctx context.Context, name Name) (*Record, error)
	// Create adds a new record, or fails with ErrExists.
	Create(ctx context.Context, rec *Record) error
	// Update applies fn to the stored record in one transaction and saves the
	// result; if fn returns an error nothing is written.
	Update(ctx context.Context, name Name, fn func(*Record) error) error
	// Delete removes a record, or fails with ErrNotFound.
	Delete(ctx context.Context, name Name) error
	// List returns every principal name, sorted.
	List(ctx context.Context) ([]Name, error)
	// Close releases the store.
	Close() error
}

// SharedGetter is implemented by stores that keep decoded records in memory
// and can hand out the cached record itself: GetShared is Get without the copy,
// for the KDC's request path, which reads records and never modifies them. The
// record returned must not be modified, and stays as it was when the principal
// is changed later (a write stores a new record).
type SharedGetter interface {
	GetShared(ctx context.Context, name Name) (*Record, error)
}

// RealmPolicy holds realm-wide limits, set at `kdc init`.
type RealmPolicy struct {
	// MaxLife caps every ticket's lifetime (MIT max_life).
	MaxLife time.Duration
	// MaxRenew caps every ticket's renewable lifetime (MIT max_renewable_life);
	// zero means the default, a negative value means no renewable tickets.
	MaxRenew time.Duration
}

// DefaultPolicy is what a realm gets unless told otherwise.
var DefaultPolicy = RealmPolicy{MaxLife: 24 * time.Hour, MaxRenew: 7 * 24 * time.Hour}

// WithDefaults fills zero fields from DefaultPolicy.
func (p RealmPolicy) WithDefaults() RealmPolicy {
	if p.MaxLife <= 0 {
		p.MaxLife = DefaultPolicy.MaxLife
	}
	if p.MaxRenew == 0 {
		p.MaxRenew = DefaultPolicy.MaxRenew
	}
	return p
}

// Errors returned by stores; test with errors.Is.
var (
	ErrNotFound = errors.New("principal: not found")
	ErrExists   = errors.New("principal: already exists")
	// ErrCorrupt reports a stored record that does not decode.
	ErrCorrupt = errors.New("principal: corrupt record")
)
