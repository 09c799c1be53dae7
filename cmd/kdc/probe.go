package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/spf13/cobra"
)

// probeClient is the client name of the probe's AS-REQ; the KDC answers
// KDC_ERR_C_PRINCIPAL_UNKNOWN unless someone created it, and either answer is
// a Kerberos answer.
const probeClient = "kerbkit-probe"

type probeOptions struct {
	realm      string
	transports []string
	timeout    time.Duration
	health     string
}

// newProbeCmd is `kdc probe`: the health check of the container image. A
// FROM-scratch image has no shell or curl, so the check is one of our
// binaries, and it checks Kerberos itself rather than an open port.
func newProbeCmd(e *env) *cobra.Command {
	o := &probeOptions{}
	c := &cobra.Command{
		Use:   "probe [HOST:PORT]",
		Short: "Check that a KDC answers Kerberos over UDP and TCP (a health check)",
		Long: `probe sends one AS-REQ (for the client "` + probeClient + `", so no password is needed and no
lockout counter moves) over each transport and succeeds if every one gets a Kerberos
answer (a KRB-ERROR such as C_PRINCIPAL_UNKNOWN, or an AS-REP) within --timeout.
A kerbkit KDC keeps these requests out of its log unless --log-level is debug.

The address defaults to what kdc dev wrote to realm.json in $KERBKIT_OUT, else
$KERBKIT_LISTEN, else 127.0.0.1:88; a wildcard host (0.0.0.0, ::) means loopback. The
realm defaults the same way, then to $KERBKIT_REALM. With --health (by default
http://127.0.0.1:PORT/healthz when $KERBKIT_ADMIN_LISTEN gives kdc serve's
--admin-listen), the health report must answer 200 too; a "degraded" report (the KDC
serves from memory while its etcd is unreachable) still counts as healthy, and is printed.
Exit status 0 means healthy.`,
		Example: `  kdc probe                          # in the kerbkit/kdc container (its HEALTHCHECK)
  kdc probe kdc.example.com:88 --realm EXAMPLE.COM --transport tcp`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := ""
			if len(args) == 1 {
				addr = args[0]
			}
			return runProbe(cmd.Context(), e, o, addr)
		},
	}
	c.Flags().StringVar(&o.realm, "realm", "", "realm of the request (default from realm.json or $KERBKIT_REALM)")
	c.Flags().StringSliceVar(&o.transports, "transport", []string{"udp", "tcp"}, "transports to check: udp, tcp or both")
	c.Flags().DurationVar(&o.timeout, "timeout", 2*time.Second, "how long each transport may take to answer")
	c.Flags().StringVar(&o.health, "health", healthURLFromEnv(), "also check this health report URL (default from $KERBKIT_ADMIN_LISTEN)")
	return c
}

// probeDefaults reads the realm and listen address from realm.json in
// $KERBKIT_OUT, then the environment.
func probeDefaults() (realm, addr string) {
	if out := os.Getenv("KERBKIT_OUT"); out != "" {
		if b, err := os.ReadFile(filepath.Join(out, devInfoFile)); err == nil {
			var info devInfo
			if json.Unmarshal(b, &info) == nil {
				realm, addr = info.Realm, info.Listen
			}
		}
	}
	if realm == "" {
		realm = os.Getenv("KERBKIT_REALM")
	}
	if realm == "" {
		realm = devRealm
	}
	if addr == "" {
		addr = os.Getenv("KERBKIT_LISTEN")
	}
	if addr == "" {
		addr = "127.0.0.1:88"
	}
	return realm, addr
}

func runProbe(ctx context.Context, e *env, o *probeOptions, addr string) error {
	realm, defAddr := probeDefaults()
	if o.realm != "" {
		realm = o.realm
	}
	if addr == "" {
		addr = defAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "88"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)
	if o.timeout <= 0 {
		return errors.New("kdc: --timeout must be positive")
	}
	var results []string
	for _, tr := range o.transports {
		tr = strings.ToLower(strings.TrimSpace(tr))
		if tr != "udp" && tr != "tcp" {
			return fmt.Errorf("kdc: --transport %q: want udp or tcp", tr)
		}
		req, err := probeRequest(realm, probeClient) // a fresh nonce each: no lookaside answer
		if err != nil {
			return err
		}
		start := time.Now()
		reply, err := probeExchange(ctx, tr, addr, req, o.timeout)
		if err != nil {
			return fmt.Errorf("kdc: probe %s over %s: %w", addr, tr, err)
		}
		what, err := describeReply(reply)
		if err != nil {
			return fmt.Errorf("kdc: probe %s over %s: %w", addr, tr, err)
		}
		results = append(results, fmt.Sprintf("%s: %s in %v", tr, what, time.Since(start).Round(10*time.Microsecond)))
	}
	if o.health != "" {
		status, err := probeHealth(ctx, o.health, o.timeout)
		if err != nil {
			return fmt.Errorf("kdc: probe: health %s: %w", o.health, err)
		}
		results = append(results, "health: "+status)
	}
	fmt.Fprintf(e.stdout, "KDC %s for %s answers: %s\n", addr, realm, strings.Join(results, "; "))
	return nil
}

// healthURLFromEnv is the health report of the kdc serve whose
// --admin-listen is $KERBKIT_ADMIN_LISTEN (a wildcard host means loopback).
func healthURLFromEnv() string {
	a := os.Getenv("KERBKIT_ADMIN_LISTEN")
	if a == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

// probeHealth GETs a health report and returns its status ("ok", "degraded").
func probeHealth(ctx context.Context, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d, status %q", resp.StatusCode, h.Status)
	}
	return h.Status, nil
}

// probeRequest is an AS-REQ for client@realm to krbtgt/realm [RFC 4120
// §5.4.1], without pre-authentication.
func probeRequest(realm, client string) ([]byte, error) {
	var n [4]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, fmt.Errorf("kdc: nonce: %w", err)
	}
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_AS_REQ,
		ReqBody: messages.KDCReqBody{
			KDCOptions: types.NewKrbFlags(),
			CName:      types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, client),
			Realm:      realm,
			SName:      types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/"+realm),
			Till:       time.Now().Add(time.Hour).UTC().Truncate(time.Second),
			Nonce:      int(binary.BigEndian.Uint32(n[:]) & 0x7fffffff),
			EType:      []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96},
		},
	}}
	b, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("kdc: encode AS-REQ: %w", err)
	}
	return b, nil
}

// probeExchange sends req over one transport and returns the reply: one
// datagram for UDP, a 4-byte length prefix each way for TCP [RFC 4120 §7.2].
func probeExchange(ctx context.Context, tr, addr string, req []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, tr, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if tr == "udp" {
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			return nil, noAnswer(err, timeout)
		}
		return buf[:n], nil
	}
	msg := make([]byte, 4+len(req))
	binary.BigEndian.PutUint32(msg, uint32(len(req)))
	copy(msg[4:], req)
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, noAnswer(err, timeout)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<20 {
		return nil, fmt.Errorf("reply length %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, noAnswer(err, timeout)
	}
	return buf, nil
}

func noAnswer(err error, timeout time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within %v", timeout)
	}
	return fmt.Errorf("no answer: %w", err)
}

// describeReply names a KDC's answer: a KRB-ERROR and its code, or an AS-REP.
func describeReply(b []byte) (string, error) {
	var ke messages.KRBError
	if err := ke.Unmarshal(b); err == nil {
		name := fmt.Sprintf("%d", ke.ErrorCode)
		if f := strings.Fields(errorcode.Lookup(ke.ErrorCode)); len(f) > 1 {
			name = f[1] // "(6) KDC_ERR_C_PRINCIPAL_UNKNOWN Client not found…"
		}
		return "KRB-ERROR " + name, nil
	}
	var rep messages.ASRep
	if err := rep.Unmarshal(b); err == nil {
		return "AS-REP", nil
	}
	return "", fmt.Errorf("the answer (%d bytes) is neither a KRB-ERROR nor an AS-REP", len(b))
}
