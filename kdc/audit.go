package kdc

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// AuditLog writes the audit trail: one JSON object per line for every
// administrative change and every lockout, apart from the request log. A
// line says who (the admin socket peer's uid, or "kdc" for the KDC's own
// lockouts), what, when and from where; it never holds a password or a key
// (callers pass names and settings only). Safe for concurrent use.
type AuditLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewAuditLog writes audit lines to w; now nil means time.Now.
func NewAuditLog(w io.Writer, now func() time.Time) *AuditLog {
	if now == nil {
		now = time.Now
	}
	return &AuditLog{w: w, now: now}
}

// AuditEvent is one audit line.
type AuditEvent struct {
	Time time.Time `json:"time"`
	// Who made the change: "uid:N" (the admin socket peer), "local" (a
	// command on the database file, no server), or "kdc".
	Who string `json:"who"`
	// From is where: "admin-socket PATH", "database PATH", or the client
	// address of the request that locked a principal.
	From string `json:"from,omitempty"`
	// What is the change: principal-add, principal-delete, principal-passwd,
	// principal-modify, principal-unlock, keytab-export, alias-add, ...,
	// policy-add, policy-modify, policy-delete, trust-add, lockout.
	What string `json:"what"`
	// Target is the principal or policy changed.
	Target string `json:"target,omitempty"`
	// Details are the settings changed (never a secret).
	Details map[string]any `json:"details,omitempty"`
	// Result is "ok" or why the change was refused.
	Result string `json:"result"`
}

// Log writes ev, stamping its time if unset. A failing writer loses the line
// (the change itself is done); it is not retried.
func (a *AuditLog) Log(ev AuditEvent) {
	if a == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = a.now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	a.w.Write(b) //nolint:errcheck // best effort, see above
}

// auditLockout records that the KDC locked a principal.
func (k *KDC) auditLockout(name interface{ String() string }, failures int, until time.Time) {
	k.audit.Log(AuditEvent{Who: "kdc", What: "lockout", Target: name.String(), Result: "ok",
		Details: map[string]any{"failures": failures, "locked_until": lockedUntilText(until)}})
}
