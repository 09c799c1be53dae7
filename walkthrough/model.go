// Package walkthrough tells the story of a Kerberos v5 login and service request, message by message.
//
// A Recorder turns the raw messages of an exchange (as the client's Trace hook and a recording connection see
// them) and the keys it knows into a Story: one Step per message on the wire (plus the local password-to-key
// step), each with its classic letter (A to H, from the classic description of Kerberos) and its RFC 4120 name,
// who sent it to whom and how, its decoded fields, every encrypted part with the key that protects it (whose
// key, enctype, kvno, key usage) and, when the key is known, the decrypted contents; what the receiver checks
// before it believes the message; and where modern Kerberos differs from the classic description.
//
// One Story is rendered three ways: terminal text (WriteText), JSON (WriteJSON) and one self-contained HTML page
// with an SVG sequence diagram (WriteHTML); WriteMarkdown produces docs/walkthrough.md.
//
// Run builds the whole story with nothing to set up: a realm in a temporary bbolt store, the KDC on
// 127.0.0.1:0 over real UDP and TCP, a sample GSS service over TCP, and the real client. In that story every key
// of the realm is known, so every encrypted part is opened. NewExplainer gives the client's view of the same
// story for `kclient login|ticket|request --explain` against any KDC: only what the client can decrypt is
// opened, and the tickets are shown sealed.
package walkthrough

import "time"

// The four parties of the story: the client, the two services of the KDC, and the application service.
const (
	ActorClient  = "client"
	ActorAS      = "AS"
	ActorTGS     = "TGS"
	ActorService = "service"
	// ActorAttacker is someone on the network, or a user of the realm, who attacks the others (failure stories).
	ActorAttacker = "attacker"
	// ActorWalkthrough checks what only an observer holding every key can: that the same session key sits in a
	// reply part and in its ticket, that a derived key equals the stored one.
	ActorWalkthrough = "walkthrough"
)

// Views of a story.
const (
	// ViewRealm is the walkthrough's view: it owns the realm and knows every key, so it opens every part.
	ViewRealm = "realm"
	// ViewClient is what a client can see (--explain): its own key and session keys, never the tickets.
	ViewClient = "client"
)

// Check results.
const (
	CheckPass = "pass" // verified here and true
	CheckFail = "fail" // verified here and false, or the receiver refused the message
	CheckInfo = "info" // what the receiver checks; not verifiable from this view
	CheckSkip = "skip" // not reached: an earlier check failed and the receiver stopped there
)

// Story is a whole exchange, ready to render.
type Story struct {
	// Title is the heading of the story.
	Title string `json:"title"`
	// View is ViewRealm or ViewClient.
	View string `json:"view"`
	// Realm, Client and Service name the realm, the client principal and the service principal.
	Realm   string `json:"realm,omitempty"`
	Client  string `json:"client,omitempty"`
	Service string `json:"service,omitempty"`
	// KDCAddr and ServiceAddr are where the KDC (AS and TGS) and the service listened.
	KDCAddr     string `json:"kdc_addr,omitempty"`
	ServiceAddr string `json:"service_addr,omitempty"`
	// Intro is a few paragraphs said before the first step.
	Intro []string `json:"intro,omitempty"`
	// Steps are the messages in the order they happened.
	Steps []Step `json:"steps"`
	// Outro is said after the last step.
	Outro []string `json:"outro,omitempty"`
	// Scenario names the failure story this is (see Scenarios); "" for the story of a login that works.
	Scenario string `json:"scenario,omitempty"`
	// Failure says, for a failure story, what went wrong and how to fix it.
	Failure *Failure `json:"failure,omitempty"`
}

// Failure is the diagnosis of a failure story: which check failed where, what came back, what people see, what
// the check protects against and how to fix the cause.
type Failure struct {
	// StepID is the step whose check failed (or, when nothing is refused, the step where the attack succeeds).
	StepID string `json:"step_id"`
	// By is the actor whose check failed: ActorAS, ActorTGS, ActorService, ActorClient, or ActorAttacker when the
	// story is an attack that nothing on the wire refuses.
	By string `json:"by"`
	// Stage is the failed check's name as its receiver names it (the KDC's or the service's own stage name);
	// Check says what it checks, in the receiver's words, and Detail what the receiver reported.
	Stage  string `json:"stage,omitempty"`
	Check  string `json:"check"`
	Detail string `json:"detail,omitempty"`
	// Code, CodeName and EText are those of the KRB-ERROR that came back; Code is 0 when none did.
	Code     int32  `json:"code,omitempty"`
	CodeName string `json:"code_name,omitempty"`
	EText    string `json:"e_text,omitempty"`
	// MIT is what MIT krb5's tools print in the same situation; Ours what kerbkit's tools printed in this run.
	MIT  []string `json:"mit"`
	Ours []string `json:"ours"`
	// Protects says what the check protects against; Fix lists how to fix the cause.
	Protects string   `json:"protects"`
	Fix      []string `json:"fix"`
}

// Step is one message on the wire, or one local computation (string-to-key).
type Step struct {
	// ID is unique within a story: "s2k", "as-req-1", "preauth-required", "as-req-2", "as-rep", "tgs-req",
	// "tgs-rep", "ap-req", "ap-rep", "wrap", "mic", or "error-N".
	ID string `json:"id"`
	// Title is a short human heading.
	Title string `json:"title"`
	// Letters are the classic letters this message carries ("pre" for the pre-authentication round, A to H).
	Letters []string `json:"letters,omitempty"`
	// Message is the RFC 4120 name (AS-REQ, KRB-ERROR, AS-REP, TGS-REQ, TGS-REP, AP-REQ, AP-REP), or "" for a
	// local step.
	Message string `json:"message,omitempty"`
	// From and To are actors (ActorClient, ActorAS, ActorTGS, ActorService).
	From string `json:"from"`
	To   string `json:"to"`
	// Transport is "udp", "tcp" or "local"; Addr is the KDC's or service's address.
	Transport string `json:"transport"`
	Addr      string `json:"addr,omitempty"`
	// Framing describes what wraps the Kerberos message on the wire (TCP length prefix, GSS token, ...).
	Framing string `json:"framing,omitempty"`
	// Size is the Kerberos message's DER length; WireSize what went on the wire with the framing.
	Size     int `json:"size,omitempty"`
	WireSize int `json:"wire_size,omitempty"`
	// Time is when the message was seen (local clock).
	Time time.Time `json:"time"`
	// Summary says in a sentence or two what the message is for.
	Summary string `json:"summary"`
	// Fields are the decoded cleartext fields.
	Fields []Field `json:"fields,omitempty"`
	// Parts are the encrypted parts, with their keys and, where the key is known, their contents.
	Parts []Part `json:"parts,omitempty"`
	// Checks are what the receiver verifies before it believes the message.
	Checks []Check `json:"checks,omitempty"`
	// Notes explain why, and where modern Kerberos differs from the classic description.
	Notes []Note `json:"notes,omitempty"`
}

// Field is one decoded field; a field with Fields is a structure.
type Field struct {
	Name   string  `json:"name"`
	Value  string  `json:"value,omitempty"`
	Fields []Field `json:"fields,omitempty"`
}

// Part is an encrypted part of a message.
type Part struct {
	// Letter is the classic letter of this part ("A", "B", ...; "pre" for the encrypted timestamp).
	Letter string `json:"letter,omitempty"`
	// Name is where the part sits and what ASN.1 type it holds, e.g. "enc-part (EncASRepPart)".
	Name string `json:"name"`
	// What says what the part carries, in the classic description's words.
	What string `json:"what"`
	// Key is the key that protects the part.
	Key KeyInfo `json:"key"`
	// CipherSize is the length of the ciphertext (of the checksum, for a Checksum part).
	CipherSize int `json:"cipher_size"`
	// Checksum is true for a part that is a keyed checksum (a MIC token) rather than ciphertext: it is
	// verified, not decrypted.
	Checksum bool `json:"checksum,omitempty"`
	// Opened is true when the part was decrypted here; Fields then hold its contents.
	Opened bool    `json:"opened"`
	Fields []Field `json:"fields,omitempty"`
	// SealedFor names who can open the part when it was not opened, and Reason says why it stays closed.
	SealedFor string `json:"sealed_for,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// KeyInfo describes a key that protects a part.
type KeyInfo struct {
	// Owner says whose key it is: "alice@R's long-term key", "the client/TGS session key", ...
	Owner string `json:"owner"`
	// Etype and EtypeName are its enctype.
	Etype     int32  `json:"etype"`
	EtypeName string `json:"etype_name"`
	// KVNO is the key version number carried with the ciphertext; 0 when none is sent (session keys).
	KVNO int `json:"kvno,omitempty"`
	// Usage is the key usage number that derives the actual encryption keys [RFC 4120 §7.5.1], and UsageName
	// says what it is for.
	Usage     int    `json:"usage"`
	UsageName string `json:"usage_name"`
	// ChecksumUsage, when not 0, is the key usage of a keyed checksum the same key computes inside the part
	// (the TGS-REQ authenticator's checksum over the req-body, usage 6).
	ChecksumUsage int `json:"checksum_usage,omitempty"`
	// Value is the key in hex; empty when the key is unknown or must not be shown.
	Value string `json:"value,omitempty"`
}

// Check is one thing a receiver verifies.
type Check struct {
	// By is the actor that checks.
	By string `json:"by"`
	// Text says what is checked and, where verified here, with which values.
	Text string `json:"text"`
	// Result is CheckPass, CheckFail, CheckInfo or CheckSkip.
	Result string `json:"result"`
	// Stage is the receiver's own name for the check (a stage of the KDC's or the service's pipeline), when the
	// check comes from the receiver's list rather than the walkthrough's; Detail is what the receiver said when
	// the check failed.
	Stage  string `json:"stage,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Note kinds.
const (
	NoteWhy     = "why"     // why the protocol does this
	NoteModern  = "modern"  // where modern Kerberos (v5 as deployed) differs from the classic description
	NoteClassic = "classic" // what the classic description says
)

// Note is an explanation attached to a step.
type Note struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// Letters of a story's steps, in order, each once.
func (s *Story) Letters() []string {
	var out []string
	seen := map[string]bool{}
	for _, st := range s.Steps {
		for _, l := range st.Letters {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}

// Step returns the step with the given ID, or nil.
func (s *Story) Step(id string) *Step {
	for i := range s.Steps {
		if s.Steps[i].ID == id {
			return &s.Steps[i]
		}
	}
	return nil
}

// field builds a Field.
func field(name, value string, sub ...Field) Field {
	return Field{Name: name, Value: value, Fields: sub}
}
