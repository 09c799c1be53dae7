// Command loadgen is a closed-loop load generator for Kerberos KDCs (ours, MIT
// krb5kdc, Heimdal): each worker sends one AS-REQ or TGS-REQ, waits for the
// reply and sends the next, over UDP or over a new TCP connection per request
// (what MIT and Heimdal clients do). It is what bench/kdcbench.sh drives.
//
// Requests are built once as templates with gokrb5 and then patched in place,
// so the client stays cheap: every AS-REQ gets a fresh nonce (the encrypted
// timestamp is renewed every 30 s), every TGS-REQ a fresh nonce and a fresh
// authenticator with the keyed checksum of its body (RFC 4120 §5.5.1), so no
// KDC lookaside cache can answer from a previous reply. Neither KDC keeps a
// replay cache of encrypted timestamps or TGS authenticators (MIT's 1.20 does
// not), which is what lets the timestamp and the authenticator's time repeat.
//
//	loadgen --kdc 127.0.0.1:88 --realm R --user alice --password pw --mode as --proto udp --conc 8 --duration 10s
//
// With --rate R the workers send R requests per second between them, each on its
// own schedule, instead of as fast as replies come back: the latency of a request
// is counted from when it was due (a worker that falls behind counts its waiting),
// so a load of half the saturated rate shows the latency a client sees there.
// late_p99_us is how late the generator itself sent (its own scheduling, not the
// KDC's), send_p99_us the latency counted from the actual send, and
// arrive_p99_us from the actual send to the reply's arrival in this host's
// kernel (SO_TIMESTAMPNS): without the generator's delay in waking up to read
// it, which on one busy CPU is a good part of send_p99_us.
//
// It prints one line: RESULT rps=… p50_us=… p99_us=… ok=… errors=… client_cpu=…,
// where client_cpu is the generator's own CPU time over the measurement window
// divided by the window: near 1.00 on its one CPU, the generator, not the KDC,
// was the limit.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

type options struct {
	kdc, realm, user, password, service, mode, proto string
	conc                                             int
	duration, warmup, timeout                        time.Duration
	maxRequests                                      int64
	rate                                             float64
	count                                            int // --mode sweep: principals PREFIX0 … PREFIX<count-1>
}

func main() {
	var o options
	flag.StringVar(&o.kdc, "kdc", "127.0.0.1:88", "KDC address")
	flag.StringVar(&o.realm, "realm", "", "realm")
	flag.StringVar(&o.user, "user", "", "client principal, without the realm")
	flag.StringVar(&o.password, "password", "", "its password")
	flag.StringVar(&o.service, "service", "host/localhost", "service for --mode tgs")
	flag.StringVar(&o.mode, "mode", "as", "as, tgs, or sweep (one AS-REQ without pre-authentication for each of --user 0 … --user <count-1>, e.g. the principals bench/fill made)")
	flag.IntVar(&o.count, "count", 0, "--mode sweep: how many principals")
	flag.StringVar(&o.proto, "proto", "udp", "udp or tcp")
	flag.IntVar(&o.conc, "conc", 8, "closed-loop workers")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measurement window (at most 10m)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before the window, not counted")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Second, "per request")
	flag.Int64Var(&o.maxRequests, "max-requests", 5_000_000, "stop after this many requests")
	flag.Float64Var(&o.rate, "rate", 0, "requests per second across all workers, each worker on its own schedule (0: as fast as replies come)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	switch {
	case o.realm == "" || o.user == "":
		return errors.New("--realm and --user are required")
	case o.mode == "sweep":
		return sweep(o)
	case o.mode != "as" && o.mode != "tgs":
		return fmt.Errorf("--mode %q: want as, tgs or sweep", o.mode)
	case o.proto != "udp" && o.proto != "tcp":
		return fmt.Errorf("--proto %q: want udp or tcp", o.proto)
	case o.conc < 1 || o.conc > 1024:
		return fmt.Errorf("--conc %d: want 1-1024", o.conc)
	case o.rate < 0 || o.rate > 1e6:
		return fmt.Errorf("--rate %g: want 0 (closed loop) up to 1000000 per second", o.rate)
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return fmt.Errorf("--duration %s: want up to 10m", o.duration)
	}
	s, err := setup(o)
	if err != nil {
		return err
	}
	var (
		sent, ok, bad  atomic.Int64
		mu             sync.Mutex
		lat            []time.Duration
		late, fromSend []time.Duration // with --rate: send time - due time, reply time - send time
		toArrival      []time.Duration // with --rate: reply's arrival in the kernel - send time
	)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	stop := measureFrom.Add(o.duration)
	var cpuFrom atomic.Int64
	cpuTimer := time.AfterFunc(time.Until(measureFrom), func() { cpuFrom.Store(int64(cpuTime())) })
	defer cpuTimer.Stop()
	var wg sync.WaitGroup
	for w := 0; w < o.conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			gen := s.newGenerator(w)
			var mine, myLate, mySend, myArrive []time.Duration
			var conn net.Conn
			buf := make([]byte, 65536)
			// With --rate, worker w's k-th request is due at start + (k + w/conc) * every.
			var every time.Duration
			var due time.Time
			if o.rate > 0 {
				every = time.Duration(float64(o.conc) / o.rate * float64(time.Second))
				due = start.Add(every * time.Duration(w) / time.Duration(o.conc))
			}
			defer func() {
				if conn != nil {
					conn.Close()
				}
				mu.Lock()
				lat = append(lat, mine...)
				late, fromSend = append(late, myLate...), append(fromSend, mySend...)
				toArrival = append(toArrival, myArrive...)
				mu.Unlock()
			}()
			for time.Now().Before(stop) && sent.Add(1) <= o.maxRequests {
				req, err := gen.next()
				if err != nil {
					bad.Add(1)
					return
				}
				t0 := time.Now()
				sentAt := t0
				if every > 0 {
					if t0.Before(due) {
						time.Sleep(due.Sub(t0))
					}
					sentAt = time.Now()
					t0, due = due, due.Add(every)
				}
				var rep []byte
				var arrived time.Time
				if o.proto == "udp" {
					if conn == nil {
						if conn, err = net.Dial("udp", o.kdc); err != nil {
							bad.Add(1)
							return
						}
						stampArrivals(conn)
					}
					rep, arrived, err = exchangeUDP(conn, req, buf, o.timeout)
					if err != nil { // a late reply must not be taken for the next one
						conn.Close()
						conn = nil
					}
				} else {
					rep, arrived, err = exchangeTCP(o.kdc, req, buf, o.timeout)
				}
				d := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil || len(rep) == 0 || (rep[0] != 0x6b && rep[0] != 0x6d) {
					bad.Add(1)
					continue
				}
				ok.Add(1)
				mine = append(mine, d)
				if every > 0 {
					myLate, mySend = append(myLate, sentAt.Sub(t0)), append(mySend, time.Since(sentAt))
					if !arrived.IsZero() {
						// Wall clocks: arrived has no monotonic reading.
						myArrive = append(myArrive, arrived.Sub(sentAt.Round(0)))
					}
				}
			}
		}(w)
	}
	wg.Wait()
	var clientCPU float64
	if from := cpuFrom.Load(); from > 0 && time.Since(measureFrom) > 0 { // 0: the run ended within its warm-up
		clientCPU = float64(cpuTime()-time.Duration(from)) / float64(time.Since(measureFrom))
	}
	window := time.Since(measureFrom)
	if window > o.duration {
		window = o.duration
	}
	pct := func(lat []time.Duration, p float64) int64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))].Microseconds()
	}
	for _, l := range [][]time.Duration{lat, late, fromSend, toArrival} {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	}
	fmt.Printf("RESULT mode=%s proto=%s conc=%d rate=%g dur_s=%.2f ok=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d errors=%d",
		o.mode, o.proto, o.conc, o.rate, window.Seconds(), ok.Load(), float64(ok.Load())/window.Seconds(),
		pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), bad.Load())
	if o.rate > 0 {
		fmt.Printf(" late_p99_us=%d send_p50_us=%d send_p99_us=%d", pct(late, 0.99), pct(fromSend, 0.5), pct(fromSend, 0.99))
		if len(toArrival) > 0 {
			fmt.Printf(" arrive_p50_us=%d arrive_p99_us=%d", pct(toArrival, 0.5), pct(toArrival, 0.99))
		}
	}
	fmt.Printf(" client_cpu=%.2f\n", clientCPU)
	if ok.Load() == 0 {
		return errors.New("no request succeeded")
	}
	return nil
}

// cpuTime is the CPU time this process has used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sweep sends one AS-REQ without pre-authentication for each principal
// o.user+"0" … o.user+(o.count-1), o.conc at a time, so that the KDC reads every
// one of their records (a KDC that holds a large database in a file pages it
// in). A reply counts as ok when it is KDC_ERR_PREAUTH_REQUIRED or an AS-REP.
func sweep(o options) error {
	if o.count < 1 || o.count > 10_000_000 {
		return fmt.Errorf("--count %d: want 1-10000000", o.count)
	}
	var next, ok, bad atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.count) {
					return
				}
				u := o
				u.user = o.user + strconv.FormatInt(i, 10)
				req, err := marshalAS(nil, asBody(u, int(i)+1))
				if err != nil {
					bad.Add(1)
					continue
				}
				rep, err := send(o, req)
				var kerr messages.KRBError
				switch {
				case err != nil || len(rep) == 0:
					bad.Add(1)
				case rep[0] == 0x6b:
					ok.Add(1)
				case kerr.Unmarshal(rep) == nil && kerr.ErrorCode == 25:
					ok.Add(1)
				default:
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	fmt.Printf("RESULT mode=sweep proto=%s conc=%d count=%d dur_s=%.2f ok=%d rps=%.1f errors=%d\n",
		o.proto, o.conc, o.count, d.Seconds(), ok.Load(), float64(ok.Load())/d.Seconds(), bad.Load())
	if bad.Load() > 0 {
		return fmt.Errorf("%d of %d principals got no KDC_ERR_PREAUTH_REQUIRED or AS-REP", bad.Load(), o.count)
	}
	return nil
}

// exchangeUDP sends req on c and reads the reply into buf. arrived is when the
// reply reached this host's kernel (SO_TIMESTAMPNS, see stampArrivals), zero
// if the kernel gave no time.
func exchangeUDP(c net.Conn, req, buf []byte, timeout time.Duration) (rep []byte, arrived time.Time, err error) {
	if _, err := c.Write(req); err != nil {
		return nil, time.Time{}, err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	uc, ok := c.(*net.UDPConn)
	if !ok {
		n, err := c.Read(buf)
		return buf[:n], time.Time{}, err
	}
	var oob [64]byte
	n, oobn, _, _, err := uc.ReadMsgUDP(buf, oob[:])
	return buf[:n], arrival(oob[:oobn]), err
}

// exchangeTCP sends req framed (RFC 4120 §7.2.2) on a new connection and reads
// the framed reply into buf; arrived is when the reply's last bytes reached
// this host's kernel, zero if the kernel gave no time.
func exchangeTCP(addr string, req, buf []byte, timeout time.Duration) (rep []byte, arrived time.Time, err error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer c.Close()
	stampArrivals(c)
	c.SetDeadline(time.Now().Add(timeout))
	frame := make([]byte, 4+len(req))
	binary.BigEndian.PutUint32(frame, uint32(len(req)))
	copy(frame[4:], req)
	if _, err := c.Write(frame); err != nil {
		return nil, time.Time{}, err
	}
	r := &stampedReader{c: c.(*net.TCPConn)}
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		return nil, time.Time{}, err
	}
	n := binary.BigEndian.Uint32(buf[:4])
	if n > uint32(len(buf)) {
		return nil, time.Time{}, fmt.Errorf("reply of %d bytes", n)
	}
	_, err = io.ReadFull(r, buf[:n])
	return buf[:n], r.last, err
}

// stampArrivals asks the kernel to tell, with every read from c, when the data
// arrived (SO_TIMESTAMPNS, socket(7)): the latency up to there leaves out this
// process's own delay in waking up to read it, a good part of a high
// percentile at a high paced rate on one CPU. Where it fails, reads carry no
// time.
func stampArrivals(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1) //nolint:errcheck // no time then
	})
}

// arrival is the time in a SCM_TIMESTAMPNS control message of oob, or zero.
func arrival(oob []byte) time.Time {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec)
		}
	}
	return time.Time{}
}

// stampedReader reads a TCP connection with recvmsg, keeping the arrival time
// of the last data read.
type stampedReader struct {
	c    *net.TCPConn
	last time.Time
}

func (r *stampedReader) Read(p []byte) (int, error) {
	raw, err := r.c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var oob [64]byte
	var n, oobn int
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, oob[:], 0)
		return rerr != syscall.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	if t := arrival(oob[:oobn]); !t.IsZero() {
		r.last = t
	}
	return n, nil
}

// session is what setup learned: the client key, and for TGS mode the TGT and
// its session key.
type session struct {
	o          options
	key        types.EncryptionKey
	tgt        messages.Ticket
	sessionKey types.EncryptionKey
	keys       *ticket.KeyCache
}

func cname(o options) types.PrincipalName {
	return types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, o.user)
}

func asBody(o options, nonce int) messages.KDCReqBody {
	return messages.KDCReqBody{
		KDCOptions: ticket.Flags(), CName: cname(o), Realm: o.realm,
		SName: types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", o.realm}},
		Till:  time.Now().Add(10 * time.Hour).UTC().Truncate(time.Second), Nonce: nonce, EType: []int32{18},
	}
}

func marshalAS(pa []types.PAData, body messages.KDCReqBody) ([]byte, error) {
	r := messages.ASReq{KDCReqFields: messages.KDCReqFields{PVNO: 5, MsgType: msgtype.KRB_AS_REQ, PAData: pa, ReqBody: body}}
	return r.Marshal()
}

func send(o options, req []byte) ([]byte, error) {
	buf := make([]byte, 65536)
	if o.proto == "tcp" {
		rep, _, err := exchangeTCP(o.kdc, req, buf, 5*time.Second)
		return append([]byte(nil), rep...), err
	}
	c, err := net.Dial("udp", o.kdc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rep, _, err := exchangeUDP(c, req, buf, 5*time.Second)
	return append([]byte(nil), rep...), err
}

// setup learns the salt from KDC_ERR_PREAUTH_REQUIRED, derives the key, logs
// in, and in TGS mode keeps the TGT.
func setup(o options) (*session, error) {
	s := &session{o: o, keys: ticket.NewKeyCache(64)}
	req, err := marshalAS(nil, asBody(o, 1))
	if err != nil {
		return nil, err
	}
	rep, err := send(o, req)
	if err != nil {
		return nil, fmt.Errorf("first AS-REQ: %w", err)
	}
	var kerr messages.KRBError
	if err := kerr.Unmarshal(rep); err != nil || kerr.ErrorCode != 25 {
		return nil, fmt.Errorf("first AS-REQ: want KDC_ERR_PREAUTH_REQUIRED, got %x (%v)", rep[:min(len(rep), 16)], err)
	}
	salt, s2k := o.realm+strings.ReplaceAll(o.user, "/", ""), []byte(nil)
	if md, err := der.DecodePAData(kerr.EData); err == nil {
		for _, pa := range md {
			if pa.PADataType != patype.PA_ETYPE_INFO2 {
				continue
			}
			var info types.ETypeInfo2
			if err := info.Unmarshal(pa.PADataValue); err == nil && len(info) > 0 {
				if info[0].Salt != "" {
					salt = info[0].Salt
				}
				s2k = info[0].S2KParams
			}
		}
	}
	et, err := crypto.GetEtype(18)
	if err != nil {
		return nil, err
	}
	params := "00001000"
	if len(s2k) == 4 {
		params = fmt.Sprintf("%x", s2k)
	}
	kv, err := et.StringToKey(o.password, salt, params)
	if err != nil {
		return nil, err
	}
	s.key = types.EncryptionKey{KeyType: 18, KeyValue: kv}
	pa, err := s.encTimestamp()
	if err != nil {
		return nil, err
	}
	req, err = marshalAS([]types.PAData{pa}, asBody(o, 2))
	if err != nil {
		return nil, err
	}
	if rep, err = send(o, req); err != nil {
		return nil, fmt.Errorf("AS-REQ: %w", err)
	}
	var asRep messages.ASRep
	if err := asRep.Unmarshal(rep); err != nil {
		return nil, fmt.Errorf("AS-REQ: no AS-REP (wrong password?): %v", err)
	}
	part, err := ticket.DecryptReplyPart(asRep.EncPart, s.key, keyusage.AS_REP_ENCPART)
	if err != nil {
		return nil, fmt.Errorf("AS-REP: %w", err)
	}
	s.tgt, s.sessionKey = asRep.Ticket, part.Key
	if o.mode == "tgs" {
		g := s.newGenerator(0)
		req, err := g.next()
		if err != nil {
			return nil, err
		}
		if rep, err = send(o, req); err != nil || len(rep) == 0 || rep[0] != 0x6d {
			return nil, fmt.Errorf("TGS-REQ for %s: no TGS-REP: %x %v", o.service, rep[:min(len(rep), 16)], err)
		}
	}
	return s, nil
}

func (s *session) encTimestamp() (types.PAData, error) {
	now := time.Now().UTC()
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return types.PAData{}, err
	}
	ed, err := s.keys.Encrypt(s.key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, ts, 0)
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: der.AppendEncryptedData(nil, &ed)}, nil
}

// generator makes one worker's requests from a template it renews every 30 s.
type generator struct {
	s       *session
	nonce   uint32
	built   time.Time
	tmpl    []byte // the request, patched in place
	nonceAt int    // offset of the 4 nonce bytes
	// TGS: the req-body and authenticator plaintext in tmpl and auth
	bodyAt, bodyLen int
	auth            []byte // authenticator plaintext template
	cksumAt         int    // offset of the 12 checksum bytes in auth
	cipherAt        int    // offset of the authenticator ciphertext in tmpl
}

// Nonces of 0x01000000-0x7fffffff encode as exactly 4 bytes; the marker is
// searched for in the template.
const nonceMarker = 0x5a5a5a5a

func (s *session) newGenerator(w int) *generator {
	return &generator{s: s, nonce: 0x01000000 + uint32(w)<<20 + uint32(rand.Intn(1<<16))}
}

func (g *generator) next() ([]byte, error) {
	if g.tmpl == nil || time.Since(g.built) > 30*time.Second {
		if err := g.build(); err != nil {
			return nil, err
		}
	}
	g.nonce++
	if g.nonce > 0x7fffffff {
		g.nonce = 0x01000000
	}
	binary.BigEndian.PutUint32(g.tmpl[g.nonceAt:], g.nonce)
	if g.s.o.mode == "tgs" {
		body := g.tmpl[g.bodyAt : g.bodyAt+g.bodyLen]
		_, sum, err := g.s.keys.Checksum(g.s.sessionKey, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM, body)
		if err != nil {
			return nil, err
		}
		copy(g.auth[g.cksumAt:], sum)
		ed, err := g.s.keys.Encrypt(g.s.sessionKey, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, g.auth, 0)
		if err != nil {
			return nil, err
		}
		copy(g.tmpl[g.cipherAt:], ed.Cipher)
	}
	return g.tmpl, nil
}

func (g *generator) build() error {
	s, o := g.s, g.s.o
	g.built = time.Now()
	marker := []byte{0xa7, 0x06, 0x02, 0x04, 0x5a, 0x5a, 0x5a, 0x5a}
	if o.mode == "as" {
		pa, err := s.encTimestamp()
		if err != nil {
			return err
		}
		if g.tmpl, err = marshalAS([]types.PAData{pa}, asBody(o, nonceMarker)); err != nil {
			return err
		}
		g.nonceAt = bytes.Index(g.tmpl, marker) + 4
		return nil
	}
	parts := strings.Split(o.service, "/")
	body := messages.KDCReqBody{
		KDCOptions: ticket.Flags(), Realm: o.realm,
		SName: types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: parts},
		Till:  time.Now().Add(8 * time.Hour).UTC().Truncate(time.Second), Nonce: nonceMarker, EType: []int32{18},
	}
	bodyDER, err := body.Marshal()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	placeholder := bytes.Repeat([]byte{0xcc}, 12)
	a := types.Authenticator{AVNO: 5, CRealm: o.realm, CName: cname(o),
		Cksum: types.Checksum{CksumType: 16, Checksum: placeholder},
		Cusec: 100000 + now.Nanosecond()/1000%800000, CTime: now.Truncate(time.Second)}
	if g.auth, err = a.Marshal(); err != nil {
		return err
	}
	g.cksumAt = bytes.Index(g.auth, placeholder)
	ed, err := s.keys.Encrypt(s.sessionKey, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, g.auth, 0)
	if err != nil {
		return err
	}
	cipherMark := bytes.Repeat([]byte{0xab}, len(ed.Cipher))
	ed.Cipher = cipherMark
	ap := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: s.tgt, EncryptedAuthenticator: ed}
	apDER, err := ap.Marshal()
	if err != nil {
		return err
	}
	outer := struct {
		PVNO    int                  `asn1:"explicit,tag:1"`
		MsgType int                  `asn1:"explicit,tag:2"`
		PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
		ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
	}{PVNO: 5, MsgType: msgtype.KRB_TGS_REQ,
		PAData:  types.PADataSequence{{PADataType: patype.PA_TGS_REQ, PADataValue: apDER}},
		ReqBody: asn1.RawValue{Class: asn1.ClassContextSpecific, IsCompound: true, Tag: 4, Bytes: bodyDER}}
	b, err := asn1.Marshal(outer)
	if err != nil {
		return err
	}
	// [APPLICATION 12]
	g.tmpl = append(appHeader(12, len(b)), b...)
	g.bodyAt, g.bodyLen = bytes.Index(g.tmpl, bodyDER), len(bodyDER)
	g.nonceAt = bytes.Index(g.tmpl, marker) + 4
	g.cipherAt = bytes.Index(g.tmpl, cipherMark)
	if g.bodyAt < 0 || g.nonceAt < 4 || g.cipherAt < 0 || g.cksumAt < 0 {
		return errors.New("TGS-REQ template: marker not found")
	}
	return nil
}

func appHeader(tag, n int) []byte {
	h := []byte{0x60 | byte(tag)}
	switch {
	case n < 0x80:
		return append(h, byte(n))
	case n < 0x100:
		return append(h, 0x81, byte(n))
	default:
		return append(h, 0x82, byte(n>>8), byte(n))
	}
}
