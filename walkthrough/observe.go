package walkthrough

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/service"
)

// Observed is how one named check of a receiver ended, as the KDC or the service reports it while it handles a
// request (kdc.Config.Observer, service.Options.Observer). The receiver's own list of checks, with their names
// and what they check, is what the walkthrough shows for a request; these reports say which passed, which failed
// and which were never reached.
type Observed struct {
	// By is the receiver: ActorAS, ActorTGS or ActorService.
	By string
	// Stage is the receiver's name for the check.
	Stage string
	// Failed is true when the check refused the request; Detail is then what the receiver said.
	Failed bool
	Detail string
}

// Observe records a receiver's check. The checks reported for a request are shown on the request's step once
// its answer is recorded.
func (r *Recorder) Observe(o Observed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, o)
}

// stageDoc is one entry of a receiver's own list of checks.
type stageDoc struct{ name, doc string }

// receiverStages returns the list of checks a receiver runs, in its own words: the service's Stages (and, for
// the KDC, its AS and TGS stage tables).
func receiverStages(by string) []stageDoc {
	var out []stageDoc
	switch by {
	case ActorService:
		for _, s := range service.Stages {
			out = append(out, stageDoc{s.Name, s.Doc})
		}
	case ActorAS:
		for _, s := range kdc.ASStages {
			out = append(out, stageDoc{s.Name, s.Doc})
		}
	case ActorTGS:
		for _, s := range kdc.TGSStages {
			out = append(out, stageDoc{s.Name, s.Doc})
		}
	}
	return out
}

// receiverOf is who checks a pending request.
func receiverOf(k pendingKind) string {
	switch k {
	case pendAS:
		return ActorAS
	case pendTGS:
		return ActorTGS
	case pendAP:
		return ActorService
	}
	return ""
}

// takeObserved removes and returns the checks reported by receiver by.
func (r *Recorder) takeObserved(by string) []Observed {
	var mine, rest []Observed
	for _, o := range r.observed {
		if o.By == by {
			mine = append(mine, o)
		} else {
			rest = append(rest, o)
		}
	}
	r.observed = rest
	return mine
}

// receiverChecks replaces the receiver's checks on a request step by the receiver's own list: with its reports
// (the walkthrough's realm), each check passed, failed (with what the receiver said) or was not reached; without
// them (a client's view of any KDC or service), the list says what the receiver checks. A receiver without a
// stage table keeps the recorder's checks.
func (r *Recorder) receiverChecks(s *Step, k pendingKind, code *int32) {
	by := receiverOf(k)
	stages := receiverStages(by)
	obs := r.takeObserved(by)
	if len(stages) == 0 || (len(obs) == 0 && r.o.View == ViewRealm) {
		return
	}
	var kept []Check
	for _, c := range s.Checks {
		if c.By != by {
			kept = append(kept, c)
		}
	}
	var list []Check
	if len(obs) == 0 {
		for _, st := range stages {
			list = append(list, Check{By: by, Stage: st.name, Text: st.doc, Result: CheckInfo})
		}
		if code != nil {
			kept = append(kept, Check{By: ActorClient, Result: CheckFail, Text: "the " + by + " refused it with " + errorName(*code) +
				": one of its checks failed, and only the " + by + " knows which (its KRB-ERROR's e-text may say)"})
		}
	} else {
		seen := map[string]Observed{}
		failed := false
		for _, o := range obs {
			seen[o.Stage] = o
			failed = failed || o.Failed
		}
		for _, st := range stages {
			c := Check{By: by, Stage: st.name, Text: st.doc}
			o, ok := seen[st.name]
			switch {
			case ok && o.Failed:
				c.Result, c.Detail = CheckFail, o.Detail
			case ok:
				c.Result = CheckPass
			case failed:
				c.Result = CheckSkip
			default:
				continue // a stage this kind of request does not have (gss-checksum of a plain AP-REQ)
			}
			list = append(list, c)
		}
	}
	// The receiver's list first, in its order, then what the others (client, walkthrough) add.
	var first []Check
	for _, c := range kept {
		if c.By == ActorClient && strings.Contains(c.Text, "byte for byte") {
			first = append(first, c)
		}
	}
	rest := kept[:0:0]
	for _, c := range kept {
		if !(c.By == ActorClient && strings.Contains(c.Text, "byte for byte")) {
			rest = append(rest, c)
		}
	}
	s.Checks = append(append(first, list...), rest...)
}

// failedCheck returns the receiver check that failed on a step, if any.
func failedCheck(s *Step) *Check {
	for i := range s.Checks {
		if c := &s.Checks[i]; c.Result == CheckFail && c.Stage != "" {
			return c
		}
	}
	return nil
}

// codeName is the RFC 4120 name of a KRB-ERROR code, e.g. KRB_AP_ERR_REPEAT.
func codeName(code int32) string {
	f := strings.Fields(errorcode.Lookup(code)) // "(34) KRB_AP_ERR_REPEAT Request is a replay"
	if len(f) >= 2 && strings.HasPrefix(f[0], "(") {
		return f[1]
	}
	return fmt.Sprintf("error %d", code)
}

// logBuffer keeps log lines, safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines logged so far that contain every one of words.
func (l *logBuffer) lines(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// dropTime removes the time from log records (the walkthrough shows lines, not when they were written).
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// teeHandler sends every record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if t.a.Enabled(ctx, r.Level) {
		_ = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		return t.b.Handle(ctx, r)
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(g string) slog.Handler {
	return teeHandler{t.a.WithGroup(g), t.b.WithGroup(g)}
}
