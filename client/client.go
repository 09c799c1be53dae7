package client

import (
	"context"
	"fmt"
	"time"
)

// Client runs the client side of Kerberos exchanges against the KDCs named in its Config. It is safe for
// concurrent use as long as Config and Trace are not changed while exchanges run.
type Client struct {
	// Config is the validated configuration. The client reads it and never modifies it.
	Config *Config
	// Trace, when non-nil, is called synchronously for every message sent to or received from a KDC, in order.
	// It is meant for message recorders (walkthrough, --explain); nil costs nothing.
	Trace func(Event)
	// now returns the local time; tests may replace it.
	now func() time.Time
	// tgsBodyHook, set only by tests, replaces the TGS-REQ body after the authenticator checksum was computed
	// over it (to check that a KDC notices a modified body).
	tgsBodyHook func(body []byte) []byte
}

// Event describes one Kerberos message that crossed the wire, for a Trace hook.
type Event struct {
	// Message names the message: "AS-REQ", "AS-REP", "TGS-REQ", "TGS-REP" or "KRB-ERROR".
	Message string
	// Sent is true for a message the client sent, false for one it received.
	Sent bool
	// Data is the DER encoding of the message exactly as sent or received. The hook must not modify it.
	Data []byte
	// Realm is the realm whose KDCs were addressed.
	Realm string
	// KDC and Network say who answered and how (received messages only).
	KDC     string
	Network Network
	// Round is the 1-based request number within the exchange (2 after a PREAUTH_REQUIRED round; always 1 for
	// the single request of a TGS exchange).
	Round int
	// Time is the local time of the event.
	Time time.Time
}

// New returns a Client for cfg after applying defaults to a copy of it and validating it.
func New(cfg *Config) (*Client, error) {
	if cfg == nil {
		return nil, fmt.Errorf("client: nil config")
	}
	c := cfg.Clone()
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Client{Config: c, now: time.Now}, nil
}

// clock returns the local time.
func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// emit calls the Trace hook if there is one.
func (c *Client) emit(ev Event) {
	if c.Trace != nil {
		ev.Time = c.clock()
		c.Trace(ev)
	}
}

// exchange sends one request to the realm's KDCs and reports both messages to Trace.
func (c *Client) exchange(ctx context.Context, realm, name string, round int, req []byte) (*Reply, error) {
	c.emit(Event{Message: name, Sent: true, Data: req, Realm: realm, Round: round})
	rep, err := Send(ctx, c.Config, realm, req)
	if err != nil {
		return nil, err
	}
	c.emit(Event{Message: messageName(rep.Data), Data: rep.Data, Realm: realm, KDC: rep.KDC, Network: rep.Network, Round: round})
	return rep, nil
}

// APPLICATION tags of the Kerberos messages the client receives, as the first DER octet [RFC 4120 §5.10].
const (
	tagASRep    = 0x40 | 0x20 | 11 // [APPLICATION 11], constructed: 0x6b
	tagTGSRep   = 0x40 | 0x20 | 13 // 0x6d
	tagKRBError = 0x40 | 0x20 | 30 // 0x7e
)

// messageName names a received message by its first octet.
func messageName(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case tagASRep:
		return "AS-REP"
	case tagTGSRep:
		return "TGS-REP"
	case tagKRBError:
		return "KRB-ERROR"
	}
	return fmt.Sprintf("unknown message (tag 0x%02x)", b[0])
}
