package walkthrough

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kerbkit/kerbkit/ticket"
)

// Token flags of the MIT GSS sample protocol (src/appl/gss-sample/gss-misc.h), as client/gssinit.go uses them.
const (
	sampleContext byte = 0x02
	sampleData    byte = 0x04
	sampleMIC     byte = 0x08
)

// maxRecordedToken bounds what a recording connection buffers for one token.
const maxRecordedToken = 1 << 20

// recordingConn is a client-side connection to a GSS sample service that feeds every context and
// per-message token it sees, in both directions, to a Recorder. It changes nothing on the wire.
type recordingConn struct {
	net.Conn
	rec   *Recorder
	addr  string
	actor string           // Wire.Actor of what is recorded
	clock func() time.Time // when the bytes were seen; nil means time.Now (a capture gives its own)

	mu         sync.Mutex
	wbuf, rbuf []byte
	lastMsg    []byte // plaintext of the last wrap token sent, for the MIC that answers it
	broken     bool   // the stream stopped parsing; recording stops, traffic goes on
}

// RecordConn returns conn with every GSS sample protocol token it carries recorded by r (the client's side of
// the connection: writes are sent by the client, reads come from the service).
func (r *Recorder) RecordConn(conn net.Conn) net.Conn {
	return &recordingConn{Conn: conn, rec: r, addr: conn.RemoteAddr().String()}
}

// recordConnAs is RecordConn for a connection whose client side is actor (the attacker).
func (r *Recorder) recordConnAs(conn net.Conn, actor string) net.Conn {
	return &recordingConn{Conn: conn, rec: r, addr: conn.RemoteAddr().String(), actor: actor}
}

// Write implements net.Conn.
func (c *recordingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.feed(&c.wbuf, b[:n], true)
	return n, err
}

// Read implements net.Conn.
func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.feed(&c.rbuf, b[:n], false)
	return n, err
}

// feed appends stream bytes and handles every complete token: flags (1 byte) || length (4, big-endian) || token.
func (c *recordingConn) feed(buf *[]byte, b []byte, sent bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken || len(b) == 0 {
		return
	}
	*buf = append(*buf, b...)
	for len(*buf) >= 5 {
		n := binary.BigEndian.Uint32((*buf)[1:5])
		if n > maxRecordedToken {
			c.broken = true
			return
		}
		if len(*buf) < 5+int(n) {
			return
		}
		flags, tok := (*buf)[0], bytes.Clone((*buf)[5:5+int(n)])
		*buf = (*buf)[5+int(n):]
		c.token(flags, tok, sent)
	}
}

// token records one sample-protocol token.
func (c *recordingConn) token(flags byte, tok []byte, sent bool) {
	now := time.Now()
	if c.clock != nil {
		now = c.clock()
	}
	w := Wire{Sent: sent, Service: true, Addr: c.addr, Network: "tcp", WireSize: 5 + len(tok), Time: now, Actor: c.actor}
	switch {
	case flags&sampleContext != 0 && len(tok) > 0:
		msg, framing := unframeContextToken(tok)
		if msg == nil {
			return
		}
		w.Data = msg
		w.Framing = fmt.Sprintf("GSS sample protocol token (flags 0x%02x, 4-byte length) around %s", flags, framing)
		c.rec.Add(w)
	case flags&sampleData != 0 && sent:
		w.Data = tok
		w.Framing = fmt.Sprintf("GSS sample protocol token (flags 0x%02x: data, wrapped, encrypted, send MIC)", flags)
		c.lastMsg = c.rec.Token(w, true, nil)
	case flags&sampleMIC != 0 && !sent:
		w.Data = tok
		w.Framing = fmt.Sprintf("GSS sample protocol token (flags 0x%02x: MIC)", flags)
		c.rec.Token(w, false, c.lastMsg)
	}
}

// unframeContextToken finds the Kerberos message in a GSS context token: a krb5 token (0x60, krb5 OID, TOK_ID),
// a SPNEGO NegTokenInit around one, or a SPNEGO NegTokenResp whose responseToken is one. It returns nil when
// the token holds no Kerberos message.
func unframeContextToken(tok []byte) ([]byte, string) {
	const krb5 = "a GSS-API krb5 context token (0x60, OID 1.2.840.113554.1.2.2, TOK_ID %02x %02x) [RFC 4121 §4.1]"
	if len(tok) > 0 && tok[0] == 0x60 {
		if id, msg, err := ticket.ParseKRB5Token(tok); err == nil {
			return msg, fmt.Sprintf(krb5, id>>8, id&0xff)
		}
	}
	init, resp, err := ticket.ParseNegToken(tok)
	if err != nil {
		return nil, ""
	}
	inner := []byte(nil)
	what := ""
	switch {
	case init != nil:
		inner, what = init.MechToken, "a SPNEGO NegTokenInit [RFC 4178] holding "
	case resp != nil:
		inner, what = resp.ResponseToken, "a SPNEGO NegTokenResp [RFC 4178] holding "
	}
	if id, msg, err := ticket.ParseKRB5Token(inner); err == nil {
		return msg, what + fmt.Sprintf(krb5, id>>8, id&0xff)
	}
	return nil, ""
}

// recordingTransport records the Negotiate tokens of HTTP requests and responses [RFC 4559].
type recordingTransport struct {
	rt  http.RoundTripper
	rec *Recorder
}

// RecordHTTP returns an http.RoundTripper that records the Kerberos messages inside "Authorization: Negotiate"
// and "WWW-Authenticate: Negotiate" headers. rt nil means http.DefaultTransport.
func (r *Recorder) RecordHTTP(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &recordingTransport{rt: rt, rec: r}
}

// RoundTrip implements http.RoundTripper.
func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.header(req.Header.Values("Authorization"), true, req.URL.Host)
	resp, err := t.rt.RoundTrip(req)
	if err == nil {
		t.header(resp.Header.Values("WWW-Authenticate"), false, req.URL.Host)
	}
	return resp, err
}

// header records the Negotiate tokens among header values.
func (t *recordingTransport) header(values []string, sent bool, host string) {
	for _, v := range values {
		scheme, b64, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || !strings.EqualFold(scheme, "Negotiate") {
			continue
		}
		tok, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			continue
		}
		msg, framing := unframeContextToken(tok)
		if msg == nil {
			continue
		}
		hdr := "WWW-Authenticate"
		if sent {
			hdr = "Authorization"
		}
		t.rec.Add(Wire{Data: msg, Sent: sent, Service: true, Addr: host, Network: "tcp",
			Framing:  "HTTP header \"" + hdr + ": Negotiate <base64>\" [RFC 4559] around " + framing,
			WireSize: len(v), Time: time.Now()})
	}
}
