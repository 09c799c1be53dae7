package walkthrough

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/google/gopacket/reassembly"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// ViewCapture is the view of a packet capture: what the keys given (a keytab, a password) open, following the
// session keys learned from what they open.
const ViewCapture = "capture"

// Bounds of the capture reader: a capture is untrusted input.
const (
	// maxStreamBytes is what is kept of one direction of one TCP connection.
	maxStreamBytes = 16 << 20
	// maxKDCFrame is the largest Kerberos message accepted in a TCP frame (RFC 4120 §7.2.2 lets a KDC cap it).
	maxKDCFrame = 1 << 20
	// maxPackets bounds the packets read from one file.
	maxPackets = 5_000_000
)

// ErrNotCapture is wrapped by the error for a file that is neither a pcap nor a pcapng capture.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// TruncatedError says that a capture ends in the middle of a packet: everything before it was explained.
type TruncatedError struct {
	// Packets is the number of complete packets read.
	Packets int
	Err     error
}

func (e *TruncatedError) Error() string {
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("the capture is truncated after %d complete packets (it ends inside the next one); what they hold was explained", e.Packets)
	}
	return fmt.Sprintf("the capture is cut after %d complete packets (%v); what they hold was explained", e.Packets, e.Err)
}

func (e *TruncatedError) Unwrap() error { return e.Err }

// CaptureOptions say what opens the encrypted parts of a capture.
type CaptureOptions struct {
	// Keytab holds long-term keys: the realm's (krbtgt, services) as kadmin's ktadd or kdc keytab export them,
	// and clients'. Each opens what it sealed: B and C (krbtgt), E (a service), A and the timestamp (a client).
	Keytab *keytab.Keytab
	// Password is a user's password, when HasPassword: it derives the user's key with the salt and iteration
	// count the KDC announced, and opens the encrypted timestamp and message A. It is never printed.
	Password    string
	HasPassword bool
	// Name is the capture's file name, for the title.
	Name string
}

// ExplainCapture reads a pcap or pcapng capture and explains the Kerberos messages in it, message by message, as
// the walkthrough does: KDC exchanges over UDP and TCP port 88 (TCP reassembled), and the AP exchange and the
// per-message tokens of the GSS sample protocol and of HTTP Negotiate on any port. The keys in o open what they
// sealed, and the session keys found inside open the later messages. A truncated capture is explained up to its
// last complete packet and a *TruncatedError returned with the story.
func ExplainCapture(r io.Reader, o CaptureOptions) (*Story, error) {
	pkts, link, readErr := readCapture(r)
	if pkts == nil && readErr != nil {
		return nil, readErr
	}
	cap := &captureDecoder{}
	for i := range pkts {
		cap.packet(&pkts[i], link)
	}
	cap.finish()

	ro := Options{View: ViewCapture, Password: o.Password, HasPassword: o.HasPassword}
	if o.Keytab != nil && len(o.Keytab.Entries) > 0 {
		ro.RealmKey = keytabKeys(o.Keytab)
	}
	rec := NewRecorder(ro)
	cap.feed(rec)
	rec.Flush()

	st := &Story{Title: "Kerberos messages in a capture", View: ViewCapture, Steps: rec.Steps()}
	if o.Name != "" {
		st.Title = "Kerberos messages in " + o.Name
	}
	cap.describe(st, o, len(pkts))
	return st, readErr
}

// keytabKeys looks long-term keys up in a keytab: p's key of etype and kvno (0: the highest).
func keytabKeys(kt *keytab.Keytab) func(p principal.Name, etype int32, kvno int) (types.EncryptionKey, int, bool) {
	return func(p principal.Name, etype int32, kvno int) (types.EncryptionKey, int, bool) {
		best := -1
		for i, e := range kt.Entries {
			if e.Key.KeyType != etype || e.Principal.Realm != p.Realm || !slices.Equal(e.Principal.Components, p.Components) {
				continue
			}
			if kvno != 0 && int(e.KVNO) != kvno {
				continue
			}
			if best < 0 || e.KVNO > kt.Entries[best].KVNO {
				best = i
			}
		}
		if best < 0 {
			return types.EncryptionKey{}, 0, false
		}
		return kt.Entries[best].Key, int(kt.Entries[best].KVNO), true
	}
}

// capPacket is one packet of the capture.
type capPacket struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// Bounds of the file itself.
const (
	// maxCaptureBytes is the largest capture read.
	maxCaptureBytes = 512 << 20
	// maxPacketBytes is the largest packet record accepted (tcpdump's own snap length limit).
	maxPacketBytes = 262144
	// maxBlockBytes is the largest pcapng block accepted.
	maxBlockBytes = 16 << 20
)

// readCapture reads every packet of a pcap or pcapng stream. The records are checked against the file's length
// before any is decoded, so that a damaged length can neither make the reader allocate what the file does not
// hold nor send it reading garbage: a capture that ends inside a packet, or whose records stop making sense,
// returns the complete packets before that point and a *TruncatedError.
func readCapture(r io.Reader) ([]capPacket, layers.LinkType, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCaptureBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("walkthrough: reading the capture: %w", err)
	}
	if len(data) > maxCaptureBytes {
		return nil, 0, fmt.Errorf("walkthrough: the capture is larger than %d MiB; cut it with tcpdump -r IN -w OUT FILTER", maxCaptureBytes>>20)
	}
	if len(data) < 4 {
		return nil, 0, fmt.Errorf("walkthrough: %w: the file is shorter than a capture header", ErrNotCapture)
	}
	var next func() ([]byte, gopacket.CaptureInfo, error)
	var link layers.LinkType
	var valid, whole int
	var damage error
	switch binary.LittleEndian.Uint32(data) {
	case 0x0a0d0d0a: // pcapng section header block
		valid, whole, damage = scanPcapng(data)
		ng, err := pcapgo.NewNgReader(bytes.NewReader(data[:valid]), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, 0, fmt.Errorf("walkthrough: %w: bad pcapng header: %v", ErrNotCapture, err)
		}
		next, link = ng.ReadPacketData, ng.LinkType()
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1: // pcap, microsecond or nanosecond, either byte order
		valid, whole, damage = scanPcap(data)
		pr, err := pcapgo.NewReader(bytes.NewReader(data[:valid]))
		if err != nil {
			return nil, 0, fmt.Errorf("walkthrough: %w: bad pcap header: %v", ErrNotCapture, err)
		}
		pr.SetSnaplen(maxPacketBytes) // the records were checked against it
		next, link = pr.ReadPacketData, pr.LinkType()
	default:
		return nil, 0, fmt.Errorf("walkthrough: %w (it starts with %x; tcpdump -w writes pcap, Wireshark pcapng)", ErrNotCapture, data[:4])
	}
	pkts := []capPacket{}
	for len(pkts) < maxPackets {
		pd, ci, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return pkts, link, &TruncatedError{Packets: len(pkts), Err: err}
		}
		pkts = append(pkts, capPacket{data: pd, ci: ci})
	}
	if len(pkts) >= maxPackets {
		return pkts, link, fmt.Errorf("walkthrough: more than %d packets: the rest was not read", maxPackets)
	}
	if damage != nil {
		return pkts, link, &TruncatedError{Packets: whole, Err: damage}
	}
	return pkts, link, nil
}

// scanPcap checks the records of a pcap file: it returns how many bytes hold whole, sane records, how many
// records that is, and why the rest (if any) was cut.
func scanPcap(b []byte) (valid, records int, damage error) {
	if len(b) < 24 {
		return len(b), 0, nil // pcapgo reports the short header
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if m := binary.BigEndian.Uint32(b); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
		order = binary.BigEndian
	}
	off := 24
	for off < len(b) {
		if off+16 > len(b) {
			return off, records, io.ErrUnexpectedEOF
		}
		caplen := int(order.Uint32(b[off+8:]))
		if caplen > maxPacketBytes {
			return off, records, fmt.Errorf("record %d claims %d bytes, more than any capture holds: the file is damaged", records+1, caplen)
		}
		if off+16+caplen > len(b) {
			return off, records, io.ErrUnexpectedEOF
		}
		off += 16 + caplen
		records++
	}
	return off, records, nil
}

// scanPcapng checks the blocks of a pcapng file the same way, counting the packet blocks.
func scanPcapng(b []byte) (valid, packets int, damage error) {
	order := binary.ByteOrder(binary.LittleEndian)
	off := 0
	for off < len(b) {
		if off+12 > len(b) {
			return off, packets, io.ErrUnexpectedEOF
		}
		btype := order.Uint32(b[off:])
		if btype == 0x0a0d0d0a { // a section header sets the byte order of the section
			switch binary.LittleEndian.Uint32(b[off+8:]) {
			case 0x1a2b3c4d:
				order = binary.LittleEndian
			case 0x4d3c2b1a:
				order = binary.BigEndian
			default:
				return off, packets, errors.New("a section header without a byte-order magic: the file is damaged")
			}
		}
		blen := int(order.Uint32(b[off+4:]))
		if blen < 12 || blen%4 != 0 || blen > maxBlockBytes {
			return off, packets, fmt.Errorf("a block of %d bytes: the file is damaged", blen)
		}
		if off+blen > len(b) {
			return off, packets, io.ErrUnexpectedEOF
		}
		switch btype {
		case 6: // enhanced packet block
			if blen < 32 || 28+int(order.Uint32(b[off+20:])) > blen {
				return off, packets, errors.New("a packet block longer than itself: the file is damaged")
			}
			packets++
		case 2, 3: // obsolete and simple packet blocks
			packets++
		}
		off += blen
	}
	return off, packets, nil
}

// linkTypeLinuxSLL2 is tcpdump -i any's link type on current Linux, LINKTYPE_LINUX_SLL2 (276), which gopacket
// neither decodes nor represents: its LinkType is a byte, so the readers hand over 276 & 0xff, an unassigned value.
const linkTypeLinuxSLL2 = layers.LinkType(276 & 0xff)

// kdcMsg is one Kerberos message to or from a KDC.
type kdcMsg struct {
	t       time.Time
	seq     int
	data    []byte
	network string
	client  string // the client's address
	server  string // the KDC's address
	sent    bool   // from the client
	conn    string // the flow: client|server|network
	used    bool
	dup     bool
}

// udpDatagram is one UDP datagram of the capture.
type udpDatagram struct {
	t        time.Time
	src, dst string
	data     []byte
}

// isKDCRequest reports whether b is an AS-REQ or a TGS-REQ that decodes.
func isKDCRequest(b []byte) bool {
	if t := ticket.MessageType(b); t != msgtype.KRB_AS_REQ && t != msgtype.KRB_TGS_REQ {
		return false
	}
	_, err := ticket.ParseKDCRequest(b)
	return err == nil
}

// isKDCPort reports whether addr is on the Kerberos port.
func isKDCPort(addr string) bool { return strings.HasSuffix(addr, ":88") }

// capChunk is bytes of a TCP stream in one direction, with when they were captured.
type capChunk struct {
	t    time.Time
	data []byte
	sent bool // from the connection's client
}

// capStream is one reassembled TCP connection.
type capStream struct {
	client, server string
	chunks         []capChunk
	bytes          [2]int // kept per direction (client→server, server→client)
	cut            bool   // more than maxStreamBytes in a direction
}

// captureDecoder collects the Kerberos traffic of a capture.
type captureDecoder struct {
	udp       []udpDatagram
	kdcs      map[string]bool // KDC addresses: port 88, and wherever AS-REQs and TGS-REQs were sent
	msgs      []kdcMsg
	streams   []*capStream
	asm       *reassembly.Assembler
	seq       int
	undecoded int // packets that are not IP
	shortSnap int // packets cut by the snap length
	skipped   int // TCP connections neither port 88, GSS sample protocol nor HTTP Negotiate
	sample    int // GSS sample protocol connections
	http      int // HTTP connections with Negotiate tokens
	kdcTCP    int
	first     time.Time
}

// packet decodes one packet: UDP port 88 datagrams become KDC messages, TCP segments go to reassembly.
func (d *captureDecoder) packet(p *capPacket, link layers.LinkType) {
	if p.ci.CaptureLength < p.ci.Length {
		d.shortSnap++
	}
	if d.first.IsZero() {
		d.first = p.ci.Timestamp
	}
	data, first := p.data, gopacket.Decoder(link)
	if link == linkTypeLinuxSLL2 {
		if len(data) < 20 {
			d.undecoded++
			return
		}
		switch binary.BigEndian.Uint16(data[0:2]) {
		case 0x0800:
			first = layers.LayerTypeIPv4
		case 0x86dd:
			first = layers.LayerTypeIPv6
		default:
			d.undecoded++
			return
		}
		data = data[20:]
	}
	pkt := gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	nl := pkt.NetworkLayer()
	if nl == nil {
		d.undecoded++
		return
	}
	switch tl := pkt.TransportLayer().(type) {
	case *layers.UDP:
		src := net.JoinHostPort(nl.NetworkFlow().Src().String(), strconv.Itoa(int(tl.SrcPort)))
		dst := net.JoinHostPort(nl.NetworkFlow().Dst().String(), strconv.Itoa(int(tl.DstPort)))
		d.udp = append(d.udp, udpDatagram{t: p.ci.Timestamp, src: src, dst: dst, data: bytes.Clone(tl.Payload)})
	case *layers.TCP:
		if d.asm == nil {
			d.asm = reassembly.NewAssembler(reassembly.NewStreamPool(&streamFactory{d: d}))
			d.asm.MaxBufferedPagesPerConnection = 1024
			d.asm.MaxBufferedPagesTotal = 16384
		}
		d.asm.AssembleWithContext(nl.NetworkFlow(), tl, &captureContext{ci: p.ci})
	}
}

func (d *captureDecoder) addMsg(m kdcMsg) {
	d.seq++
	m.seq = d.seq
	m.conn = m.client + "|" + m.server + "|" + m.network
	d.msgs = append(d.msgs, m)
}

// finish closes the reassembly and finds the KDC traffic: UDP datagrams and TCP connections to port 88, and to
// any address a decodable AS-REQ or TGS-REQ was sent to (test realms and dev KDCs listen elsewhere).
func (d *captureDecoder) finish() {
	if d.asm != nil {
		d.asm.FlushAll()
	}
	d.kdcs = map[string]bool{}
	for _, u := range d.udp {
		if isKDCPort(u.dst) || isKDCRequest(u.data) {
			d.kdcs[u.dst] = true
		}
	}
	for _, u := range d.udp {
		switch {
		case d.kdcs[u.dst]:
			d.addMsg(kdcMsg{t: u.t, data: u.data, network: "udp", client: u.src, server: u.dst, sent: true})
		case d.kdcs[u.src]:
			d.addMsg(kdcMsg{t: u.t, data: u.data, network: "udp", client: u.dst, server: u.src})
		}
	}
	for _, s := range d.streams {
		if d.isKDCStream(s) {
			d.kdcTCP++
			d.kdcStream(s)
		}
	}
}

// isKDCStream reports whether a TCP connection is to a KDC: port 88, an address that got KDC requests over UDP,
// or a first frame that is a KDC request.
func (d *captureDecoder) isKDCStream(s *capStream) bool {
	if isKDCPort(s.server) || isKDCPort(s.client) || d.kdcs[s.server] {
		return true
	}
	b := s.clientPrefix(4)
	if len(b) < 4 {
		return false
	}
	n := int(binary.BigEndian.Uint32(b))
	if n > maxKDCFrame {
		return false
	}
	b = s.clientPrefix(4 + n)
	return len(b) == 4+n && isKDCRequest(b[4:])
}

// kdcStream cuts a KDC TCP connection into messages: a 4-byte big-endian length, then the message [RFC 4120
// §7.2.2]. A frame that does not make sense ends that direction.
func (d *captureDecoder) kdcStream(s *capStream) {
	if isKDCPort(s.client) && !isKDCPort(s.server) {
		s.client, s.server = s.server, s.client
		for i := range s.chunks {
			s.chunks[i].sent = !s.chunks[i].sent
		}
	}
	for _, dir := range []bool{true, false} {
		var buf []byte
		var times []time.Time // the capture time of each byte offset's chunk start
		var starts []int
		for _, c := range s.chunks {
			if c.sent != dir {
				continue
			}
			starts = append(starts, len(buf))
			times = append(times, c.t)
			buf = append(buf, c.data...)
		}
		at := func(off int) time.Time {
			i := sort.Search(len(starts), func(i int) bool { return starts[i] > off }) - 1
			if i < 0 {
				return time.Time{}
			}
			return times[i]
		}
		for off := 0; off+4 <= len(buf); {
			n := binary.BigEndian.Uint32(buf[off:])
			if n&0x80000000 != 0 || n > maxKDCFrame || off+4+int(n) > len(buf) {
				break
			}
			msg := bytes.Clone(buf[off+4 : off+4+int(n)])
			d.addMsg(kdcMsg{t: at(off + 4 + int(n) - 1), data: msg, network: "tcp", client: s.client, server: s.server, sent: dir})
			off += 4 + int(n)
		}
	}
}

// event is something to give the recorder, at a time.
type event struct {
	t   time.Time
	key float64 // order among events of the same time
	fn  func()
}

// feed gives the recorder every message in order: each KDC request followed by its reply (the next message
// back on the same flow), retransmissions dropped, and the service connections' tokens as they were captured.
func (d *captureDecoder) feed(rec *Recorder) {
	var evs []event
	sort.SliceStable(d.msgs, func(i, j int) bool { return d.msgs[i].t.Before(d.msgs[j].t) })
	for i := range d.msgs {
		m := &d.msgs[i]
		if m.used || !m.sent {
			continue
		}
		m.used = true
		var reply *kdcMsg
		for j := i + 1; j < len(d.msgs); j++ {
			n := &d.msgs[j]
			if n.used || n.conn != m.conn {
				continue
			}
			if n.sent {
				if bytes.Equal(n.data, m.data) && reply == nil {
					n.used, n.dup = true, true // a retransmission of the same request
					continue
				}
				if reply == nil {
					continue
				}
				break
			}
			if reply == nil {
				reply = n
				n.used = true
				break
			}
		}
		req := *m
		evs = append(evs, event{t: req.t, key: float64(req.seq), fn: func() {
			rec.Add(Wire{Data: req.data, Sent: true, Addr: req.server, Network: req.network, Time: req.t})
		}})
		if reply != nil {
			rp := *reply
			evs = append(evs, event{t: req.t, key: float64(req.seq) + 0.5, fn: func() {
				rec.Add(Wire{Data: rp.data, Addr: rp.server, Network: rp.network, Time: rp.t})
			}})
		}
	}
	// Replies nobody asked for (the request was not captured).
	for i := range d.msgs {
		if m := d.msgs[i]; !m.used {
			evs = append(evs, event{t: m.t, key: float64(m.seq), fn: func() {
				rec.Add(Wire{Data: m.data, Sent: m.sent, Addr: m.server, Network: m.network, Time: m.t})
			}})
		}
	}
	for _, s := range d.streams {
		if d.isKDCStream(s) {
			continue
		}
		switch {
		case looksLikeSample(s):
			d.sample++
			evs = append(evs, sampleEvents(rec, s)...)
		case looksLikeHTTP(s):
			hev := httpEvents(rec, s)
			if len(hev) > 0 {
				d.http++
			}
			evs = append(evs, hev...)
		case len(s.chunks) > 0:
			d.skipped++
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].t.Equal(evs[j].t) {
			return evs[i].t.Before(evs[j].t)
		}
		return evs[i].key < evs[j].key
	})
	for _, e := range evs {
		e.fn()
	}
}

// looksLikeSample reports whether the client starts the connection as a GSS sample protocol client does: a
// token of flags NOOP|CONTEXT_NEXT (or CONTEXT), a 4-byte length, and then a context token.
func looksLikeSample(s *capStream) bool {
	b := s.clientPrefix(5)
	if len(b) < 5 {
		return false
	}
	n := binary.BigEndian.Uint32(b[1:5])
	return (b[0] == ticket.SampleNoop|ticket.SampleContextNext || b[0] == ticket.SampleContext) && n < maxRecordedToken
}

// clientPrefix returns the first n bytes (or fewer) the connection's client sent.
func (s *capStream) clientPrefix(n int) []byte {
	var b []byte
	for _, c := range s.chunks {
		if c.sent {
			b = append(b, c.data...)
			if len(b) >= n {
				return b[:n]
			}
		}
	}
	return b
}

// sampleEvents replays a GSS sample protocol connection into the recorder, chunk by chunk in capture order.
func sampleEvents(rec *Recorder, s *capStream) []event {
	var evs []event
	rc := &recordingConn{rec: rec, addr: s.server}
	for i, c := range s.chunks {
		c := c
		evs = append(evs, event{t: c.t, key: float64(i), fn: func() {
			rc.clock = func() time.Time { return c.t }
			if c.sent {
				rc.feed(&rc.wbuf, c.data, true)
			} else {
				rc.feed(&rc.rbuf, c.data, false)
			}
		}})
	}
	return evs
}

// looksLikeHTTP reports whether the client speaks HTTP/1.
func looksLikeHTTP(s *capStream) bool {
	b := s.clientPrefix(8)
	for _, m := range []string{"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS ", "DELETE ", "PATCH "} {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// negotiateHeader finds Negotiate tokens in HTTP headers [RFC 4559].
var negotiateHeader = regexp.MustCompile(`(?im)^(Authorization|WWW-Authenticate):[ \t]*Negotiate[ \t]+([A-Za-z0-9+/=]+)[ \t]*\r?$`)

// httpEvents finds the Negotiate tokens of an HTTP connection, with the time of the chunk each header is in.
func httpEvents(rec *Recorder, s *capStream) []event {
	var evs []event
	for _, dir := range []bool{true, false} {
		var buf []byte
		var starts []int
		var times []time.Time
		for _, c := range s.chunks {
			if c.sent == dir {
				starts, times = append(starts, len(buf)), append(times, c.t)
				buf = append(buf, c.data...)
			}
		}
		for _, m := range negotiateHeader.FindAllSubmatchIndex(buf, -1) {
			i := sort.Search(len(starts), func(i int) bool { return starts[i] > m[0] }) - 1
			t := times[max(i, 0)]
			hdr, b64 := string(buf[m[2]:m[3]]), string(buf[m[4]:m[5]])
			tok, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				continue
			}
			msg, framing := unframeContextToken(tok)
			if msg == nil {
				continue
			}
			w := Wire{Data: msg, Sent: dir, Service: true, Addr: s.server, Network: "tcp", Time: t,
				Framing:  "HTTP header \"" + hdr + ": Negotiate <base64>\" [RFC 4559] around " + framing,
				WireSize: m[1] - m[0]}
			evs = append(evs, event{t: t, key: float64(m[0]), fn: func() { rec.Add(w) }})
		}
	}
	return evs
}

// describe writes the story's header and intro: what was read, what was found, which keys were given.
func (d *captureDecoder) describe(st *Story, o CaptureOptions, packets int) {
	for _, s := range st.Steps {
		if st.KDCAddr == "" && (s.To == ActorAS || s.To == ActorTGS) {
			st.KDCAddr = s.Addr
		}
		if st.ServiceAddr == "" && s.To == ActorService {
			st.ServiceAddr = s.Addr
		}
	}
	for _, m := range d.msgs {
		if m.sent && ticket.MessageType(m.data) == msgtype.KRB_AS_REQ {
			if req, err := ticket.ParseKDCRequest(m.data); err == nil && st.Client == "" {
				st.Client, st.Realm = principal.FromPrincipalName(req.Body.CName, req.Body.Realm).String(), req.Body.Realm
			}
		}
		if m.sent && ticket.MessageType(m.data) == msgtype.KRB_TGS_REQ && st.Service == "" {
			if req, err := ticket.ParseKDCRequest(m.data); err == nil {
				st.Service = principal.FromPrincipalName(req.Body.SName, req.Body.Realm).String()
			}
		}
	}
	udp, tcp, dups := 0, 0, 0
	for _, m := range d.msgs {
		switch {
		case m.dup:
			dups++
		case m.network == "udp":
			udp++
		default:
			tcp++
		}
	}
	found := fmt.Sprintf("%d packets read. Kerberos messages to and from a KDC: %d over UDP, %d over TCP", packets, udp, tcp)
	if d.kdcTCP > 0 {
		found += fmt.Sprintf(" (%d connections, reassembled)", d.kdcTCP)
	}
	if d.sample > 0 {
		found += fmt.Sprintf("; %d GSS sample protocol connections", d.sample)
	}
	if d.http > 0 {
		found += fmt.Sprintf("; %d HTTP connections with Negotiate tokens", d.http)
	}
	found += "."
	var notes []string
	if dups > 0 {
		notes = append(notes, fmt.Sprintf("%d retransmitted requests were left out", dups))
	}
	if d.shortSnap > 0 {
		notes = append(notes, fmt.Sprintf("%d packets were cut short by the capture's snap length, so messages in them may "+
			"not decode (capture with tcpdump -s 0)", d.shortSnap))
	}
	if d.skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d other TCP connections carry nothing recognised as Kerberos", d.skipped))
	}
	if d.undecoded > 0 {
		notes = append(notes, fmt.Sprintf("%d packets are not IP", d.undecoded))
	}
	if len(notes) > 0 {
		found += " " + upperFirst(strings.Join(notes, "; ")) + "."
	}
	keys := "No keys were given, so only the cleartext is shown: give --keytab FILE (the realm's krbtgt and service keys, " +
		"as kadmin ktadd -norandkey or kdc keytab export them) and --password (the user's) to open the encrypted parts."
	if o.Keytab != nil || o.HasPassword {
		var have []string
		if o.Keytab != nil {
			var ps []string
			for _, e := range o.Keytab.Entries {
				p := principal.Name{Realm: e.Principal.Realm, Components: e.Principal.Components}.String() +
					" kvno " + strconv.Itoa(int(e.KVNO))
				if !slices.Contains(ps, p) {
					ps = append(ps, p)
				}
			}
			have = append(have, "a keytab with "+strings.Join(ps, ", "))
		}
		if o.HasPassword {
			have = append(have, "a user's password (not shown)")
		}
		keys = "Keys given: " + strings.Join(have, "; and ") + ". Each opens what it sealed; the session keys found inside open " +
			"the messages that follow (the TGT's for D and F, the service ticket's for G and H, the subkeys for the tokens " +
			"after H). Parts whose key was not given stay sealed, and say so. Key values are not printed."
	}
	st.Intro = []string{found, keys,
		"Each message is shown as the walkthrough shows it: the classic letter (A to H), the RFC 4120 name, the decoded fields, " +
			"each encrypted part with the key that protects it and the key usage, and what the receiver checks."}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// streamFactory makes a capStream per TCP connection.
type streamFactory struct{ d *captureDecoder }

func (f *streamFactory) New(netFlow, tcpFlow gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	s := &capStream{
		client: net.JoinHostPort(netFlow.Src().String(), tcpFlow.Src().String()),
		server: net.JoinHostPort(netFlow.Dst().String(), tcpFlow.Dst().String()),
	}
	f.d.streams = append(f.d.streams, s)
	return &tcpStream{s: s}
}

// tcpStream collects a connection's bytes for reassembly.
type tcpStream struct{ s *capStream }

// Accept takes every segment, also of connections whose start was not captured.
func (t *tcpStream) Accept(_ *layers.TCP, _ gopacket.CaptureInfo, _ reassembly.TCPFlowDirection, _ reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	*start = true
	return true
}

// ReassembledSG keeps the in-order bytes, up to maxStreamBytes per direction.
func (t *tcpStream) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, _, _ := sg.Info()
	n, _ := sg.Lengths()
	if n == 0 {
		return
	}
	i := 0
	if dir == reassembly.TCPDirServerToClient {
		i = 1
	}
	if t.s.bytes[i]+n > maxStreamBytes {
		t.s.cut = true
		return
	}
	t.s.bytes[i] += n
	t.s.chunks = append(t.s.chunks, capChunk{t: ac.GetCaptureInfo().Timestamp, data: bytes.Clone(sg.Fetch(n)), sent: dir == reassembly.TCPDirClientToServer})
}

// ReassemblyComplete lets the pool forget the connection.
func (t *tcpStream) ReassemblyComplete(reassembly.AssemblerContext) bool { return true }

// captureContext gives reassembly the capture time of a segment.
type captureContext struct{ ci gopacket.CaptureInfo }

func (c *captureContext) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }
