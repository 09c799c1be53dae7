package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/addrtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
)

// Result codes of a password change (RFC 3244 §2), as the server sends them.
const (
	KpasswdSuccess       = 0
	KpasswdMalformed     = 1
	KpasswdHardError     = 2
	KpasswdAuthError     = 3
	KpasswdSoftError     = 4
	KpasswdAccessDenied  = 5
	KpasswdBadVersion    = 6
	KpasswdInitialNeeded = 7
)

// kpasswdCodeText is what MIT's kpasswd says for each result code (chpw.c
// krb5_chpw_result_code_string).
var kpasswdCodeText = map[int]string{
	KpasswdSuccess:       "Success",
	KpasswdMalformed:     "Malformed request error",
	KpasswdHardError:     "Server error",
	KpasswdAuthError:     "Authentication error",
	KpasswdSoftError:     "Password change rejected",
	KpasswdAccessDenied:  "Access denied",
	KpasswdBadVersion:    "Wrong protocol version",
	KpasswdInitialNeeded: "Initial password required",
}

// ChangePasswordRequest is a change of one's own password.
type ChangePasswordRequest struct {
	// Client is whose password changes.
	Client principal.Name
	// Old is the current password: it gets the kadmin/changepw ticket.
	Old Secret
	// New is the new password.
	New string
}

// PasswordChangeError is a refusal by the password-change server: the result
// code and the server's text (a policy's reason, e.g. "Password is too short").
type PasswordChangeError struct {
	Code int
	Text string
}

// Error reads as MIT kpasswd prints it: "Password change rejected: Password is too short".
func (e *PasswordChangeError) Error() string {
	s, ok := kpasswdCodeText[e.Code]
	if !ok {
		s = "Password change failed"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// ChangePasswordResult is a successful change.
type ChangePasswordResult struct {
	// Text is the server's message.
	Text string
	// Server is the kpasswd server that answered (host:port).
	Server string
}

// changepwName is kadmin/changepw@realm.
func changepwName(realm string) principal.Name {
	return principal.Name{Realm: realm, Components: []string{"kadmin", "changepw"}}
}

// ChangePassword changes r.Client's password (RFC 3244, protocol version 1,
// as MIT kpasswd): an INITIAL ticket for kadmin/changepw from the AS
// exchange with the old password, then the new password in a KRB-PRIV sealed
// in a fresh subkey, sent to the realm's kpasswd servers (UDP first, then
// TCP). A refusal is a *PasswordChangeError; an AS failure is what Login
// returns.
func (c *Client) ChangePassword(ctx context.Context, r ChangePasswordRequest) (*ChangePasswordResult, error) {
	servers := c.Config.KpasswdServers[r.Client.Realm]
	if len(servers) == 0 {
		return nil, fmt.Errorf("client: no kpasswd_server (or admin_server) configured for realm %q", r.Client.Realm)
	}
	if r.New == "" {
		return nil, errors.New("client: empty new password")
	}
	cfg := c.Config.Clone()
	// A short-lived, plain ticket, as kpasswd asks for (MIT: 5 minutes).
	cfg.TicketLifetime, cfg.RenewLifetime, cfg.Forwardable, cfg.Proxiable = 5*time.Minute, 0, false, false
	lc := *c
	lc.Config = cfg
	res, err := lc.Login(ctx, ASRequest{Client: r.Client, Secret: r.Old, Server: changepwName(r.Client.Realm)})
	if err != nil {
		return nil, err
	}
	ap, err := NewAPRequest(res.Credential, APOptions{Now: c.now, TimeOffset: res.KDCOffset})
	if err != nil {
		return nil, err
	}
	req, err := kpasswdRequest(ap, []byte(r.New), c.clock())
	if err != nil {
		return nil, err
	}
	var attempts []Attempt
	for _, srv := range servers {
		b, tried := c.sendKpasswd(ctx, srv, req)
		attempts = append(attempts, tried...)
		if b == nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		code, text, err := readKpasswdReply(ap, b)
		if err != nil {
			return nil, fmt.Errorf("client: kpasswd reply from %s: %w", srv, err)
		}
		if code != KpasswdSuccess {
			return nil, &PasswordChangeError{Code: code, Text: text}
		}
		return &ChangePasswordResult{Text: text, Server: srv}, nil
	}
	return nil, fmt.Errorf("client: no kpasswd server answered: %w", &UnreachableError{Realm: r.Client.Realm, Attempts: attempts})
}

// sendKpasswd tries UDP (when the request is small enough) then TCP; b is nil
// when neither answered.
func (c *Client) sendKpasswd(ctx context.Context, srv string, req []byte) (b []byte, attempts []Attempt) {
	timeout := c.Config.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	try := func(n Network, f func(context.Context, string, []byte, time.Duration) ([]byte, error)) []byte {
		start := time.Now()
		b, err := f(ctx, srv, req, timeout)
		attempts = append(attempts, Attempt{KDC: srv, Network: n, Err: err, Elapsed: time.Since(start)})
		return b
	}
	if len(req) <= c.Config.UDPPreferenceLimit {
		if b = try(UDP, exchangeUDP); b != nil || ctx.Err() != nil {
			return b, attempts
		}
	}
	return try(TCP, exchangeTCP), attempts
}

// kpasswdRequest frames the AP-REQ and the KRB-PRIV of the new password
// (RFC 3244 §2; version 1: the user-data is the password itself).
func kpasswdRequest(ap *APContext, password []byte, now time.Time) ([]byte, error) {
	part := messages.EncKrbPrivPart{
		UserData: password, SequenceNumber: int64(ap.Seq),
		Timestamp: now.UTC().Truncate(time.Second), Usec: now.Nanosecond() / 1000,
		// MIT sends its local address; any address is accepted.
		SAddress: types.HostAddress{AddrType: addrtype.Directional, Address: []byte{0, 0, 0, 0}},
	}
	priv := messages.NewKRBPriv(part)
	if err := priv.EncryptEncPart(ap.Subkey); err != nil {
		return nil, fmt.Errorf("client: sealing the new password: %w", err)
	}
	pb, err := priv.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: encoding KRB-PRIV: %w", err)
	}
	n := 6 + len(ap.Request) + len(pb)
	if n > 0xffff {
		return nil, errors.New("client: password change request too long")
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, n), uint16(n))
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ap.Request)))
	return append(append(b, ap.Request...), pb...), nil
}

// readKpasswdReply checks a reply as MIT does (chpw.c): a bare or framed
// KRB-ERROR carries the result in its e-data; otherwise the AP-REP must
// verify and the KRB-PRIV, sealed in our subkey, must carry the AP-REP's
// sequence number.
func readKpasswdReply(ap *APContext, b []byte) (code int, text string, err error) {
	if len(b) > 0 && b[0] == tagKRBError {
		return kpasswdErrorResult(b)
	}
	if len(b) < 6 || int(binary.BigEndian.Uint16(b)) != len(b) {
		return 0, "", errors.New("length field does not match")
	}
	if v := binary.BigEndian.Uint16(b[2:]); v != 1 && v != 0xff80 {
		return 0, "", fmt.Errorf("protocol version %#x", v)
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n > len(b)-6 {
		return 0, "", errors.New("AP-REP length past the end")
	}
	if n == 0 {
		return kpasswdErrorResult(b[6:])
	}
	if err := ap.VerifyAPRep(b[6 : 6+n]); err != nil {
		return 0, "", err
	}
	var priv messages.KRBPriv
	if err := unmarshalSafe(func() error { return priv.Unmarshal(b[6+n:]) }); err != nil {
		return 0, "", fmt.Errorf("KRB-PRIV: %w", err)
	}
	if err := unmarshalSafe(func() error { return priv.DecryptEncPart(ap.Subkey) }); err != nil {
		return 0, "", fmt.Errorf("KRB-PRIV: %w", err)
	}
	if ap.HasAcceptorSeq && priv.DecryptedEncPart.SequenceNumber != int64(ap.AcceptorSeq) {
		return 0, "", errors.New("KRB-PRIV sequence number is not the AP-REP's")
	}
	return kpasswdResultOf(priv.DecryptedEncPart.UserData, false)
}

func kpasswdErrorResult(b []byte) (int, string, error) {
	m, err := decodeKRBError(b)
	if err != nil {
		return 0, "", err
	}
	if len(m.EData) == 0 {
		return 0, "", kdcErrorFrom(m, "", "kadmin/changepw")
	}
	return kpasswdResultOf(m.EData, true)
}

func kpasswdResultOf(d []byte, isError bool) (int, string, error) {
	if len(d) < 2 {
		return 0, "", errors.New("result too short")
	}
	code := int(binary.BigEndian.Uint16(d))
	if code > KpasswdInitialNeeded || (isError && code == KpasswdSuccess) {
		return 0, "", fmt.Errorf("result code %d", code)
	}
	return code, string(d[2:]), nil
}
