package walkthrough

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"golang.org/x/term"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/ticket"
)

// ExplainOptions configure an Explainer: what the client knows, and how to print.
type ExplainOptions struct {
	// Password is the client's password (kclient login); HasPassword says it is set. With it the explainer
	// derives the client's key and opens the encrypted timestamp and message A. It is never printed.
	Password    string
	HasPassword bool
	// Keytab holds the client's keys (kclient login -k).
	Keytab *keytab.Keytab
	// Credentials are the tickets in the client's cache (kclient ticket, kclient request): their session keys
	// open the authenticators and the replies of the exchanges made with them.
	Credentials []ticket.Credential
	// Text configures the rendering (colour only on a terminal: see ColorEnabled).
	Text TextOptions
}

// Explainer prints, message by message, what the client sends and receives, limited to what the client can
// really decrypt: the tickets (B, E) are shown sealed for their servers. Key values are never printed. Feed it
// with Trace (as client.Client.Trace), Conn (a GSS sample protocol connection) or HTTP (Negotiate), then Close.
type Explainer struct {
	rec *Recorder
	w   io.Writer
	o   ExplainOptions

	mu      sync.Mutex
	n       int
	started bool
	err     error
}

// NewExplainer returns an Explainer that writes to w.
func NewExplainer(w io.Writer, o ExplainOptions) *Explainer {
	e := &Explainer{w: w, o: o}
	e.rec = NewRecorder(Options{
		View: ViewClient, Password: o.Password, HasPassword: o.HasPassword, Keytab: o.Keytab,
		Credentials: o.Credentials, OnStep: e.print,
	})
	return e
}

// print writes one step as soon as it is complete.
func (e *Explainer) print(s Step) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return
	}
	var out string
	if !e.started {
		e.started = true
		t := newTextWriter(e.o.Text)
		t.para(0, "", "Explaining every message as the client sees it: what it sends, what it receives, which key "+
			"protects each part and what the client checks. Parts sealed for a server (the tickets) stay closed, as "+
			"they do for the client; key values are not printed.", ansiDim)
		t.line("")
		out = t.b.String()
	}
	e.n++
	out += StepText(&s, e.n, 0, e.o.Text)
	_, e.err = io.WriteString(e.w, out)
}

// Trace records a client message; use it as client.Client.Trace.
func (e *Explainer) Trace(ev client.Event) { e.rec.Trace(ev) }

// Conn wraps the client's connection to a GSS sample service so that the AP-REQ, the AP-REP and the
// per-message tokens on it are explained.
func (e *Explainer) Conn(c net.Conn) net.Conn { return e.rec.RecordConn(c) }

// HTTP wraps an http.RoundTripper (nil: http.DefaultTransport) so that the Negotiate tokens it carries are
// explained.
func (e *Explainer) HTTP(rt http.RoundTripper) http.RoundTripper { return e.rec.RecordHTTP(rt) }

// Close explains a request that got no reply, and returns the first write error.
func (e *Explainer) Close() error {
	e.rec.Flush()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Story returns what was explained so far as a Story (client view).
func (e *Explainer) Story() *Story {
	return &Story{Title: "Kerberos messages, as the client sees them", View: ViewClient, Steps: e.rec.Steps()}
}

// ColorEnabled reports whether output to w should be coloured: only when w is a terminal, noColor is false, and
// neither NO_COLOR is set nor TERM is "dumb" (getenv nil means os.Getenv).
func ColorEnabled(w io.Writer, noColor bool, getenv func(string) string) bool {
	if noColor {
		return false
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// WriteJSON writes the story as indented JSON.
func WriteJSON(w io.Writer, st *Story) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(st)
}
