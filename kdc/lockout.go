package kdc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/kerbkit/kerbkit/principal"
)

// Account lockout (MIT's lockout, kdc/lockout.c of its KDB modules): a failed
// pre-authentication of a principal whose policy sets max failures counts a
// failure; at the maximum within the policy's failure interval the principal
// is locked and gets KDC_ERR_CLIENT_REVOKED (e-text LOCKED_OUT, as MIT) for
// every AS request, whatever it sends, until the lockout duration passes or
// an administrator unlocks it. As in MIT only principals that require
// pre-authentication are counted: for the others the KDC cannot tell a
// client that knows the password from one that does not.
//
// The stored state changes only through Store.Update, so it replicates across
// the KDCs of an etcd realm (a revision compare). The request path never
// writes: failures go to a small table, one entry per principal, that a
// single writer drains; failures that arrive while an entry waits or is being
// written are merged into it, so a burst of wrong passwords for one user
// costs one database write at a time and the table, not the request path,
// absorbs the rest. A success with no failure on record writes nothing; a
// success after failures resets the count once.

// Lockout bounds.
const (
	// MaxPendingLockouts bounds the principals whose failures wait to be
	// written. Past it failures of further principals are not counted (and
	// counted in kerbkit_kdc_lockout_dropped_total): memory stays bounded
	// under a spray of wrong passwords over many names.
	MaxPendingLockouts = 4096
	// policyCacheTTL is how long a policy read from the store is used: a
	// change made by another KDC of the realm applies within it.
	policyCacheTTL = 5 * time.Second
	// lockoutWriteTimeout bounds one write of the lockout state.
	lockoutWriteTimeout = 10 * time.Second
)

// pendingLock is the not-yet-written lockout change of one principal.
type pendingLock struct {
	name     principal.Name
	fails    int       // failures to add
	inflight int       // failures the writer is writing
	last     time.Time // time of the newest of them
	reset    bool      // a success: clear the count first
	queued   bool      // in lockouts.queue
	writing  bool      // the writer holds it
	// writingReset is set while the write in flight includes a reset.
	writingReset bool
}

// lockouts is the KDC's table of pending lockout writes and its policy cache.
type lockouts struct {
	mu      sync.Mutex
	pending map[string]*pendingLock
	// npending is len(pending), read without mu by the request path.
	npending atomic.Int32
	queue    []string // name keys, in arrival order
	running  bool     // the writer goroutine runs
	idle     *sync.Cond

	policies sync.Map // name → *cachedPolicy
}

type cachedPolicy struct {
	pol     *principal.Policy // nil: no such policy
	fetched time.Time
}

// policyOf returns the policy of rec, from the cache; nil when rec has none,
// the store keeps no policies, or it is not found (a principal naming a
// deleted policy has none).
func (k *KDC) policyOf(ctx context.Context, rec *principal.Record) *principal.Policy {
	if rec.Policy == "" {
		return nil
	}
	ps, ok := k.store.(principal.PolicyStore)
	if !ok {
		return nil
	}
	now := time.Now()
	if v, ok := k.lock.policies.Load(rec.Policy); ok {
		if c := v.(*cachedPolicy); now.Sub(c.fetched) < policyCacheTTL {
			return c.pol
		}
	}
	pol, err := ps.GetPolicy(ctx, rec.Policy)
	if err != nil && !errors.Is(err, principal.ErrNotFound) {
		// The store did not answer (etcd down): keep what we had.
		if v, ok := k.lock.policies.Load(rec.Policy); ok {
			return v.(*cachedPolicy).pol
		}
		k.log.Warn("kdc: reading a policy failed", "policy", rec.Policy, "err", err)
		return nil
	}
	k.lock.policies.Store(rec.Policy, &cachedPolicy{pol: pol, fetched: now})
	return pol
}

// ForgetPolicies drops the KDC's cached policies, after an administrator
// changed one, so the change applies to the next request.
func (k *KDC) ForgetPolicies() {
	k.lock.policies.Clear()
}

// checkLockout refuses a locked client (RFC 4120 §7.5.9 CLIENT_REVOKED, MIT's
// status LOCKED_OUT). Failures not yet written count too, so the lockout
// takes effect at the failure that reaches the maximum.
func (k *KDC) checkLockout(ctx context.Context, as *asRequest) error {
	c := as.client
	if c == nil || !c.RequiresPreauth || c.Policy == "" {
		return nil
	}
	pol := k.policyOf(ctx, c)
	if pol == nil || pol.MaxFailures <= 0 {
		return nil
	}
	as.policy = pol
	if c.Locked(as.now) || k.lock.pendingLocks(c, pol, as.now) {
		return kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "LOCKED_OUT", nil)
	}
	return nil
}

// pendingLocks reports whether the failures on record and those waiting to
// be written reach pol's maximum.
func (l *lockouts) pendingLocks(c *principal.Record, pol *principal.Policy, now time.Time) bool {
	if l.npending.Load() == 0 {
		return false // the common case, without a lock or the name's key
	}
	l.mu.Lock()
	p := l.pending[c.Name.Key()]
	if p == nil || p.fails+p.inflight == 0 {
		l.mu.Unlock()
		return false
	}
	fails, last, reset := p.fails+p.inflight, p.last, p.reset || p.writingReset
	l.mu.Unlock()
	r := *c
	if reset {
		r.Unlock()
	}
	r.RecordFailure(pol, last, fails)
	return r.Locked(now)
}

// afterAS is told how an AS exchange ended: a failed pre-authentication
// counts a failure, a pre-authenticated success after failures resets the
// count. It only touches memory.
func (k *KDC) afterAS(as *asRequest, err error) {
	pol := as.policy
	if pol == nil {
		return
	}
	if err == nil {
		if as.preauthed && as.client.FailCount > 0 {
			k.lock.note(k, as.client.Name, 0, as.now, true)
		}
		return
	}
	var ke *Error
	if errors.As(err, &ke) && ke.Code == errorcode.KDC_ERR_PREAUTH_FAILED && ke.Status == "PREAUTH_FAILED" {
		k.lock.note(k, as.client.Name, 1, as.now, false)
	}
}

// note merges a failure (fails 1) or a reset into the principal's pending
// entry, and wakes the writer.
func (l *lockouts) note(k *KDC, name principal.Name, fails int, now time.Time, reset bool) {
	key := name.Key()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending[key]
	if p == nil {
		if len(l.pending) >= MaxPendingLockouts {
			k.stats.lockoutDropped.Add(1)
			return
		}
		if l.pending == nil {
			l.pending = map[string]*pendingLock{}
		}
		p = &pendingLock{name: name}
		l.pending[key] = p
		l.npending.Store(int32(len(l.pending)))
	}
	if reset {
		if p.writingReset && p.fails == 0 {
			return // the write in flight resets already
		}
		p.reset, p.fails = true, 0
	} else {
		p.fails += fails
		p.last = now
	}
	if !p.queued && !p.writing {
		p.queued = true
		l.queue = append(l.queue, key)
	}
	if !l.running {
		l.running = true
		go l.drain(k)
	}
}

// drain writes pending entries one at a time until none is left, then ends
// (so an idle KDC runs no goroutine for it).
func (l *lockouts) drain(k *KDC) {
	l.mu.Lock()
	for len(l.queue) > 0 {
		key := l.queue[0]
		l.queue = l.queue[1:]
		p := l.pending[key]
		fails, last, reset := p.fails, p.last, p.reset
		p.fails, p.reset, p.queued = 0, false, false
		p.writing, p.writingReset, p.inflight = true, reset, fails
		l.mu.Unlock()

		k.writeLockout(p.name, fails, last, reset)

		l.mu.Lock()
		p.writing, p.writingReset, p.inflight = false, false, 0
		if p.fails == 0 && !p.reset {
			delete(l.pending, key)
			l.npending.Store(int32(len(l.pending)))
		} else if !p.queued {
			p.queued = true
			l.queue = append(l.queue, key)
		}
	}
	l.queue = nil
	l.running = false
	if l.idle != nil {
		l.idle.Broadcast()
	}
	l.mu.Unlock()
}

// waitIdle blocks until no lockout write is pending (tests).
func (l *lockouts) waitIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idle == nil {
		l.idle = sync.NewCond(&l.mu)
	}
	for l.running {
		l.idle.Wait()
	}
}

// writeLockout applies merged failures (and a reset first) to the stored
// record in one Store.Update.
func (k *KDC) writeLockout(name principal.Name, fails int, last time.Time, reset bool) {
	ctx, cancel := context.WithTimeout(context.Background(), lockoutWriteTimeout)
	defer cancel()
	// The policy is read before the transaction: a bbolt read inside a
	// write transaction of the same goroutine may deadlock.
	cur, err := k.store.Get(ctx, name)
	if err != nil {
		k.log.Warn("kdc: recording failed pre-authentication", "client", name.String(), "failures", fails, "err", err)
		return
	}
	pol := k.policyOf(ctx, cur)
	var locked bool
	var rec principal.Record
	err = k.store.Update(ctx, name, func(r *principal.Record) error {
		locked = false
		if r.Policy != cur.Policy {
			return errNothingToWrite // the policy changed meanwhile: these failures counted under the old one
		}
		if reset {
			if r.FailCount == 0 && r.LockedUntil.IsZero() && fails == 0 {
				return errNothingToWrite
			}
			r.Unlock()
		}
		if fails > 0 {
			locked = r.RecordFailure(pol, last, fails)
		}
		rec = *r
		return nil
	})
	if errors.Is(err, errNothingToWrite) {
		return
	}
	if err != nil {
		k.log.Warn("kdc: recording failed pre-authentication", "client", name.String(), "failures", fails, "err", err)
		return
	}
	if locked {
		k.stats.lockouts.Add(1)
		k.log.Warn("kdc: principal locked after failed pre-authentication", "client", name.String(), "failures", rec.FailCount, "until", lockedUntilText(rec.LockedUntil))
		k.auditLockout(name, rec.FailCount, rec.LockedUntil)
	}
}

var errNothingToWrite = errors.New("kdc: nothing to write")

// lockedUntilText is how a lockout's end is shown.
func lockedUntilText(t time.Time) string {
	if t.Equal(principal.Forever) {
		return "until unlocked"
	}
	return t.UTC().Format(time.RFC3339)
}
