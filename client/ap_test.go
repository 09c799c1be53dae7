package client

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// An in-test acceptor for AP-REQs built by NewAPRequest: it holds the service key, decrypts the ticket and the
// authenticator with gokrb5 (an independent decoder), and answers with an AP-REP that it can be told to spoil.

const apRealm = "AP.TEST"

// randomKey returns a fresh key of etype.
func randomKey(t testing.TB, etype int32) types.EncryptionKey {
	t.Helper()
	et, err := crypto.GetEtype(etype)
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, et.GetKeyByteSize())
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: k}
}

// apService is a service principal with its long-term key.
type apService struct {
	name types.PrincipalName
	key  types.EncryptionKey
}

func newAPService(t testing.TB, comps ...string) apService {
	return apService{
		name: types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: comps},
		key:  randomKey(t, etypeID.AES256_CTS_HMAC_SHA1_96),
	}
}

// issue plays the KDC: a ticket for alice@AP.TEST to the service, valid for an hour, as a ccache credential.
func (s apService) issue(t testing.TB, sessionEtype int32) ticket.Credential {
	t.Helper()
	now := time.Now().UTC()
	client := principal.Name{Components: []string{"alice"}, Realm: apRealm, Type: nametype.KRB_NT_PRINCIPAL}
	session := randomKey(t, sessionEtype)
	tkt, err := ticket.SealTicket(apRealm, s.name, messages.EncTicketPart{
		Flags:     ticket.Flags(flags.PreAuthent),
		Key:       session,
		CRealm:    apRealm,
		CName:     client.PrincipalName(),
		Transited: messages.TransitedEncoding{TRType: 1},
		AuthTime:  now,
		StartTime: now,
		EndTime:   now.Add(time.Hour),
	}, s.key, 3)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ticket.MarshalTicket(tkt)
	if err != nil {
		t.Fatal(err)
	}
	return ticket.Credential{
		Client: client, Server: principal.FromPrincipalName(s.name, apRealm), Key: session,
		AuthTime: ticket.KerberosTime(now), StartTime: ticket.KerberosTime(now), EndTime: ticket.KerberosTime(now.Add(time.Hour)),
		Ticket: der,
	}
}

// acceptor answers AP-REQs for one service. The knobs spoil the answer.
type acceptor struct {
	svc apService

	ctimeShift time.Duration // added to the echoed ctime
	cusecShift int           // added to the echoed cusec
	wrongKey   bool          // seal the AP-REP in a random key
	noSubkey   bool          // assert no acceptor subkey
	noSeq      bool          // send no seq-number

	// Learned from the last AP-REQ.
	req        messages.APReq
	auth       types.Authenticator
	session    types.EncryptionKey
	subkey     types.EncryptionKey // the acceptor subkey asserted, if any
	seq        uint32              // the acceptor's initial sequence number
	gssFlags   uint32
	mutualFlag bool
}

// accept verifies an AP-REQ and returns the AP-REP.
func (a *acceptor) accept(t testing.TB, b []byte) []byte {
	t.Helper()
	if err := a.req.Unmarshal(b); err != nil {
		t.Fatalf("acceptor: AP-REQ does not decode: %v", err)
	}
	part, err := ticket.OpenTicket(a.req.Ticket, a.svc.key)
	if err != nil {
		t.Fatalf("acceptor: ticket: %v", err)
	}
	a.session = part.Key
	if err := a.req.DecryptAuthenticator(part.Key); err != nil {
		t.Fatalf("acceptor: authenticator: %v", err)
	}
	a.auth = a.req.Authenticator
	if a.auth.Cksum.CksumType != ticket.ChecksumTypeGSS {
		t.Fatalf("acceptor: authenticator checksum type %d, want 0x8003", a.auth.Cksum.CksumType)
	}
	ck, err := ticket.ParseGSSChecksum(a.auth.Cksum.Checksum)
	if err != nil {
		t.Fatalf("acceptor: GSS checksum: %v", err)
	}
	a.gssFlags = ck.Flags
	a.mutualFlag = types.IsFlagSet(&a.req.APOptions, flags.APOptionMutualRequired)
	cusec := a.auth.Cusec + a.cusecShift
	if cusec > 999999 {
		cusec = a.auth.Cusec - a.cusecShift
	}
	rp := ticket.APRepPart{CTime: a.auth.CTime.Add(a.ctimeShift), Cusec: cusec}
	if !a.noSubkey {
		a.subkey = randomKey(t, part.Key.KeyType)
		rp.SubKey = a.subkey
	}
	if !a.noSeq {
		s, err := randomSeq()
		if err != nil {
			t.Fatal(err)
		}
		a.seq = s
		rp.SeqNumber, rp.HasSeq = int64(s), true
	} else {
		a.seq = uint32(a.auth.SeqNumber)
	}
	key := part.Key
	if a.wrongKey {
		key = randomKey(t, part.Key.KeyType)
	}
	rep, err := ticket.BuildAPRep(rp, key)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// gssKey is the acceptor's key for per-message tokens.
func (a *acceptor) gssKey() ticket.GSSKey {
	if a.subkey.KeyType != 0 {
		return ticket.GSSKey{Key: a.subkey, AcceptorSubkey: true}
	}
	return ticket.GSSKey{Key: a.auth.SubKey}
}

// krbError builds a KRB-ERROR from the service.
func (a *acceptor) krbError(t testing.TB, code int32) []byte {
	t.Helper()
	b, err := ticket.ErrorReply{Code: code, Realm: apRealm, SName: a.svc.name, EText: "no"}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewAPRequest(t *testing.T) {
	svc := newAPService(t, "host", "localhost")
	cred := svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96)
	now := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	ap, err := NewAPRequest(cred, APOptions{Now: func() time.Time { return now }, TimeOffset: -3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !ap.Mutual || ap.Established {
		t.Errorf("Mutual %v Established %v, want true false", ap.Mutual, ap.Established)
	}
	if want := now.Add(-3 * time.Second).Truncate(time.Second); !ap.CTime.Equal(want) || ap.Cusec != 891234 {
		t.Errorf("ctime %v.%06d, want %v.891234 (KDC offset applied)", ap.CTime, ap.Cusec, want)
	}
	acc := &acceptor{svc: svc}
	acc.accept(t, ap.Request)
	if !bytes.Contains(ap.Request, cred.Ticket) {
		t.Error("the ticket is not carried byte for byte as cached")
	}
	if !acc.mutualFlag {
		t.Error("ap-options lack mutual-required")
	}
	if a := acc.auth; a.CRealm != apRealm || !a.CName.Equal(cred.Client.PrincipalName()) {
		t.Errorf("authenticator client %v@%s, want alice@%s", a.CName, a.CRealm, apRealm)
	}
	if !acc.auth.CTime.Equal(ap.CTime) || acc.auth.Cusec != ap.Cusec {
		t.Errorf("authenticator time %v.%d, context says %v.%d", acc.auth.CTime, acc.auth.Cusec, ap.CTime, ap.Cusec)
	}
	if acc.gssFlags != DefaultGSSFlags || DefaultGSSFlags != 0x3e {
		t.Errorf("GSS flags 0x%x, want 0x3e (mutual|replay|sequence|conf|integ)", acc.gssFlags)
	}
	ck, _ := ticket.ParseGSSChecksum(acc.auth.Cksum.Checksum)
	if ck.Bindings != [16]byte{} || len(acc.auth.Cksum.Checksum) != 24 {
		t.Errorf("GSS checksum %x: want Lgth 16, zero bindings, no delegation", acc.auth.Cksum.Checksum)
	}
	if sk := acc.auth.SubKey; sk.KeyType != cred.Key.KeyType || len(sk.KeyValue) != 32 || bytes.Equal(sk.KeyValue, cred.Key.KeyValue) {
		t.Errorf("subkey %d/%d bytes: want a fresh aes256 key", sk.KeyType, len(sk.KeyValue))
	}
	if acc.auth.SeqNumber != int64(ap.Seq) || ap.Seq == 0 || ap.Seq > 0x3fffffff {
		t.Errorf("seq-number %d, context %d: want the same, non-zero, 30 bits", acc.auth.SeqNumber, ap.Seq)
	}
	if acc.req.EncryptedAuthenticator.KVNO != 0 || acc.req.EncryptedAuthenticator.EType != cred.Key.KeyType {
		t.Errorf("authenticator enc-part kvno %d etype %d", acc.req.EncryptedAuthenticator.KVNO, acc.req.EncryptedAuthenticator.EType)
	}
	// Key usage 11, checked by decrypting with gokrb5 directly.
	if _, err := crypto.DecryptEncPart(acc.req.EncryptedAuthenticator, cred.Key, keyusage.AP_REQ_AUTHENTICATOR); err != nil {
		t.Errorf("authenticator is not under key usage 11: %v", err)
	}

	// Two requests never share subkey, seq or (usually) time.
	ap2, err := NewAPRequest(cred, APOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ap2.Subkey.KeyValue, ap.Subkey.KeyValue) || ap2.Seq == ap.Seq {
		t.Error("subkey or seq repeated between two AP-REQs")
	}
}

func TestNewAPRequestOptions(t *testing.T) {
	svc := newAPService(t, "host", "localhost")
	cred := svc.issue(t, etypeID.AES128_CTS_HMAC_SHA1_96)
	ap, err := NewAPRequest(cred, APOptions{NoMutual: true, GSSFlags: ticket.GSSFlagMutual | ticket.GSSFlagInteg})
	if err != nil {
		t.Fatal(err)
	}
	acc := &acceptor{svc: svc}
	acc.accept(t, ap.Request)
	if ap.Mutual || !ap.Established || acc.mutualFlag || acc.gssFlags != ticket.GSSFlagInteg {
		t.Errorf("NoMutual: Mutual %v Established %v ap-option %v flags 0x%x", ap.Mutual, ap.Established, acc.mutualFlag, acc.gssFlags)
	}
	if acc.auth.SubKey.KeyType != etypeID.AES128_CTS_HMAC_SHA1_96 {
		t.Errorf("subkey etype %d, want the session key's (17)", acc.auth.SubKey.KeyType)
	}
	if err := ap.VerifyAPRep(nil); err == nil || !strings.Contains(err.Error(), "not an AP-REP") {
		// A stray token after a non-mutual context is still checked, and fails.
		t.Errorf("VerifyAPRep(nil) = %v", err)
	}
}

func TestNewAPRequestRejects(t *testing.T) {
	svc := newAPService(t, "host", "localhost")
	good := svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96)
	for name, mod := range map[string]func(*ticket.Credential){
		"no ticket":      func(c *ticket.Credential) { c.Ticket = nil },
		"garbage ticket": func(c *ticket.Credential) { c.Ticket = []byte{0x61, 0x03, 0x02, 0x01} },
		"expired":        func(c *ticket.Credential) { c.EndTime = time.Now().Add(-time.Minute) },
		"bad key size":   func(c *ticket.Credential) { c.Key.KeyValue = c.Key.KeyValue[:16] },
		"unknown etype":  func(c *ticket.Credential) { c.Key.KeyType = 99 },
		"user-to-user":   func(c *ticket.Credential) { c.IsSKey = true },
	} {
		c := good
		mod(&c)
		if _, err := NewAPRequest(c, APOptions{}); err == nil {
			t.Errorf("%s: NewAPRequest succeeded", name)
		}
	}
}

func TestVerifyAPRep(t *testing.T) {
	svc := newAPService(t, "host", "localhost")
	cred := svc.issue(t, etypeID.AES256_CTS_HMAC_SHA1_96)
	run := func(acc *acceptor) (*APContext, error) {
		t.Helper()
		ap, err := NewAPRequest(cred, APOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ap, ap.VerifyAPRep(acc.accept(t, ap.Request))
	}

	t.Run("good", func(t *testing.T) {
		acc := &acceptor{svc: svc}
		ap, err := run(acc)
		if err != nil {
			t.Fatal(err)
		}
		if !ap.Established || !ap.HasAcceptorSubkey() || !ap.HasAcceptorSeq || ap.AcceptorSeq != acc.seq {
			t.Errorf("context %+v", ap)
		}
		if k, sub := ap.ProtocolKey(); !sub || !bytes.Equal(k.KeyValue, acc.subkey.KeyValue) {
			t.Error("ProtocolKey is not the acceptor subkey")
		}
		if err := ap.VerifyAPRep(acc.accept(t, ap.Request)); err == nil {
			t.Error("a second AP-REP on an established context was accepted")
		}
	})
	t.Run("no subkey no seq", func(t *testing.T) {
		ap, err := run(&acceptor{svc: svc, noSubkey: true, noSeq: true})
		if err != nil {
			t.Fatal(err)
		}
		if ap.HasAcceptorSubkey() || ap.HasAcceptorSeq {
			t.Errorf("context %+v", ap)
		}
		if k, sub := ap.ProtocolKey(); sub || !bytes.Equal(k.KeyValue, ap.Subkey.KeyValue) {
			t.Error("ProtocolKey is not our subkey")
		}
	})
	for _, tc := range []struct {
		name string
		acc  acceptor
		want string
	}{
		{"tampered ctime", acceptor{ctimeShift: time.Second}, "server failed mutual authentication: AP-REP ctime"},
		{"tampered cusec", acceptor{cusecShift: 1}, "server failed mutual authentication: AP-REP ctime"},
		{"wrong key", acceptor{wrongKey: true}, "server failed mutual authentication: AP-REP does not decrypt with the ticket session key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := tc.acc
			acc.svc = svc
			ap, err := run(&acc)
			if !errors.Is(err, ErrMutualFailed) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrMutualFailed %q", err, tc.want)
			}
			if ap.Established || ap.HasAcceptorSubkey() {
				t.Error("a failed AP-REP changed the context")
			}
		})
	}
	t.Run("KRB-ERROR", func(t *testing.T) {
		ap, err := NewAPRequest(cred, APOptions{})
		if err != nil {
			t.Fatal(err)
		}
		acc := &acceptor{svc: svc}
		err = ap.VerifyAPRep(acc.krbError(t, errorcode.KRB_AP_ERR_BAD_INTEGRITY))
		var re *RejectedError
		if !errors.As(err, &re) || !IsCode(err, errorcode.KRB_AP_ERR_BAD_INTEGRITY) || errors.Is(err, ErrMutualFailed) {
			t.Fatalf("err = %v, want a RejectedError with code 31", err)
		}
		if want := "server host/localhost@AP.TEST rejected our authentication: Decrypt integrity check failed (KRB_AP_ERR_BAD_INTEGRITY, code 31, e-text \"no\")"; err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		ap, err := NewAPRequest(cred, APOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rep := (&acceptor{svc: svc}).accept(t, ap.Request)
		for name, b := range map[string][]byte{
			"empty":      nil,
			"one byte":   {0x6f},
			"truncated":  rep[:len(rep)/2],
			"tag only":   {0x6f, 0x00},
			"random":     bytes.Repeat([]byte{0x6f, 0x84, 0xff}, 20),
			"bad krberr": {0x7e, 0x01, 0x00},
			"AP-REQ":     ap.Request,
		} {
			if err := ap.VerifyAPRep(b); err == nil {
				t.Errorf("%s: accepted", name)
			}
			if ap.Established {
				t.Fatalf("%s: context established by garbage", name)
			}
		}
		if err := ap.VerifyAPRep(rep); err != nil {
			t.Errorf("the real AP-REP after garbage: %v", err)
		}
	})
}

func FuzzVerifyAPRep(f *testing.F) {
	svc := newAPService(f, "host", "localhost")
	cred := svc.issue(f, etypeID.AES256_CTS_HMAC_SHA1_96)
	ap, err := NewAPRequest(cred, APOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add((&acceptor{svc: svc}).accept(f, ap.Request))
	f.Add([]byte{0x7e, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		a := *ap
		_ = a.VerifyAPRep(b)
		_, _ = a.AcceptToken(b, true)
		_, _ = a.AcceptToken(b, false)
	})
}
