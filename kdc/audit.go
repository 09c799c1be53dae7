package kdc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
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

// OpenAuditLog opens (creating, mode 0600) the audit log file at path for
// appending.
func OpenAuditLog(path string) (*AuditLog, io.Closer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("kdc: audit log: %w", err)
	}
	return NewAuditLog(f, nil), f, nil
}

// auditOps are the admin operations that change something (or export
// keys), by their audit name; the others (show, list, check) are not
// audited.
var auditOps = map[string]string{
	"add": "principal-add", "delete": "principal-delete", "passwd": "principal-passwd",
	"disable": "principal-disable", "purgekeys": "principal-purgekeys", "modify": "principal-modify",
	"unlock": "principal-unlock", "keytab": "keytab-export",
	"alias-add": "alias-add", "alias-delete": "alias-delete",
	"trust-add": "trust-add", "trust-delete": "trust-delete",
	"policy-add": "policy-add", "policy-modify": "policy-modify", "policy-delete": "policy-delete",
}

// auditEvent is the audit line of an admin request, or false for one that
// changes nothing. Details are built field by field from what is not secret:
// never req.Password, req.Trust.Password or a key.
func auditEvent(req *adminRequest, resp *adminResponse, who, from string) (AuditEvent, bool) {
	what, ok := auditOps[req.Op]
	if !ok {
		return AuditEvent{}, false
	}
	if req.Op == "disable" && !req.Disabled {
		what = "principal-enable"
	}
	ev := AuditEvent{Who: who, From: from, What: what, Target: req.Name, Result: "ok", Details: map[string]any{}}
	if resp.Error != "" {
		ev.Result = resp.Error
	}
	switch req.Op {
	case "add":
		if a := req.Add; a != nil {
			ev.Target = a.Name
			ev.Details["random_key"] = a.RandomKey
			ev.Details["no_preauth"] = a.NoPreauth
			ev.Details["ignore_policy"] = a.IgnorePolicy
			if a.Policy != "" {
				ev.Details["policy"] = a.Policy
			}
			if a.NoPolicy {
				ev.Details["no_policy"] = true
			}
			if len(a.Enctypes) > 0 {
				ev.Details["enctypes"] = a.Enctypes
			}
		}
	case "passwd":
		ev.Details["random_key"] = req.Random
		ev.Details["ignore_policy"] = req.IgnorePolicy
	case "purgekeys":
		ev.Details["keep"] = req.Keep
	case "keytab":
		ev.Target = strings.Join(req.Names, " ")
		ev.Details["principals"] = req.Names
	case "alias-add", "alias-delete":
		ev.Details["alias"] = req.Alias
	case "trust-add", "trust-delete":
		if t := req.Trust; t != nil {
			ev.Target = t.Realm
			ev.Details["direction"] = t.Direction
			ev.Details["kvno"] = t.KVNO
		}
	case "modify":
		if m := req.Modify; m != nil {
			ev.Details["change"] = *m
		}
	case "policy-add":
		if p := req.Policy; p != nil {
			ev.Target = p.Name
			ev.Details["policy"] = *p
		}
	case "policy-modify":
		if c := req.PolicyChange; c != nil {
			ev.Details["change"] = *c
		}
	}
	if info := resp.Info; info != nil && info.Name != "" {
		ev.Target = info.Name
	}
	if len(ev.Details) == 0 {
		ev.Details = nil
	}
	return ev, true
}

// LocalClient is an AdminClient that runs each request on a in this process,
// through the same dispatch and audit as the admin socket: the kdc commands
// use it when no server holds the database.
func LocalClient(a Admin, audit *AuditLog, who, from string) *AdminClient {
	return &AdminClient{local: func(ctx context.Context, req adminRequest) adminResponse {
		resp := safeDispatchAdmin(ctx, a, &req, slog.New(slog.DiscardHandler))
		if ev, ok := auditEvent(&req, &resp, who, from); ok {
			audit.Log(ev)
		}
		return resp
	}}
}
