package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// ownRealmName is the realm of the in-process KDC used by the TGS tests.
const ownRealmName = "KRB.TEST"

// startOwnRealm starts our KDC in-process (testenv.NewInProcRealm) with alice/alicepw and host/localhost
// (random keys); it stops at cleanup.
func startOwnRealm(t *testing.T) *testenv.InProcRealm {
	t.Helper()
	return testenv.NewInProcRealm(t, testenv.InProcOptions{Name: ownRealmName,
		Policy:     principal.RealmPolicy{MaxLife: 10 * time.Hour, MaxRenew: 7 * 24 * time.Hour},
		Principals: []testenv.Principal{{Name: "alice", Password: "alicepw"}, {Name: "host/localhost", RandomKey: true}}})
}

// ownKey returns the current key of name with the given enctype and kvno, from the KDC's keytab export.
func ownKey(t *testing.T, r *testenv.InProcRealm, name string, etype int32, kvno int) types.EncryptionKey {
	t.Helper()
	entries, err := r.Admin.Keytab(context.Background(), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Key.KeyType == etype && int(e.KVNO) == kvno {
			return e.Key
		}
	}
	t.Fatalf("keytab of %s has no %s key with kvno %d", name, principal.EnctypeName(etype), kvno)
	return types.EncryptionKey{}
}

// newTestClient returns a Client for cfg that records its trace.
func newTestClient(t *testing.T, cfg *Config) (*Client, *[]Event) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	events := &[]Event{}
	c.Trace = func(ev Event) { *events = append(*events, ev) }
	return c, events
}

// mustPrincipal parses a principal in the test realm.
func mustPrincipal(t *testing.T, s string) principal.Name {
	t.Helper()
	p, err := ParsePrincipal(s, ownRealmName)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tgsCtx bounds one exchange.
func tgsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// getTGT logs alice in with cfg.
func getTGT(t *testing.T, cfg *Config) ticket.Credential {
	t.Helper()
	c, _ := newTestClient(t, cfg)
	res, err := c.Login(tgsCtx(t), ASRequest{Client: mustPrincipal(t, "alice"), Secret: PasswordSecret("alicepw")})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return res.Credential
}

// decodeTicketDER decodes a DER ticket.
func decodeTicketDER(t *testing.T, der []byte) messages.Ticket {
	t.Helper()
	var tkt messages.Ticket
	if err := tkt.Unmarshal(der); err != nil {
		t.Fatalf("ticket does not decode: %v", err)
	}
	return tkt
}

// checkTGSRequest decodes the TGS-REQ the client sent and checks it the way a KDC does: PA-TGS-REQ with the TGT
// byte for byte, the authenticator under usage 7 with a subkey, and its checksum (usage 6) over the raw body.
func checkTGSRequest(t *testing.T, der []byte, tgt ticket.Credential) (*ticket.KDCRequest, types.Authenticator) {
	t.Helper()
	req, err := ticket.ParseKDCRequest(der)
	if err != nil {
		t.Fatalf("TGS-REQ does not decode: %v", err)
	}
	if req.MsgType != 12 || req.PVNO != 5 || len(req.PAData) != 1 || req.PAData[0].PADataType != patype.PA_TGS_REQ {
		t.Fatalf("TGS-REQ msg-type %d pvno %d padata %v", req.MsgType, req.PVNO, req.PATypes())
	}
	var ap messages.APReq
	if err := ap.Unmarshal(req.PAData[0].PADataValue); err != nil {
		t.Fatalf("PA-TGS-REQ is not an AP-REQ: %v", err)
	}
	if !strings.Contains(string(req.PAData[0].PADataValue), string(tgt.Ticket)) {
		t.Errorf("AP-REQ does not carry the cached TGT byte for byte")
	}
	if len(ap.APOptions.Bytes) != 4 || ap.APOptions.Bytes[0]|ap.APOptions.Bytes[1]|ap.APOptions.Bytes[2]|ap.APOptions.Bytes[3] != 0 {
		t.Errorf("ap-options %x, want none", ap.APOptions.Bytes)
	}
	plain, err := crypto.DecryptEncPart(ap.EncryptedAuthenticator, tgt.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil {
		t.Fatalf("authenticator does not decrypt with the TGT session key, usage 7: %v", err)
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	if !auth.CName.Equal(tgt.Client.PrincipalName()) || auth.CRealm != tgt.Client.Realm {
		t.Errorf("authenticator client %v@%s", auth.CName.NameString, auth.CRealm)
	}
	if d := time.Since(auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)); d < 0 || d > time.Minute {
		t.Errorf("authenticator ctime %v off by %v", auth.CTime, d)
	}
	if auth.SubKey.KeyType != tgt.Key.KeyType || len(auth.SubKey.KeyValue) != len(tgt.Key.KeyValue) ||
		string(auth.SubKey.KeyValue) == string(tgt.Key.KeyValue) {
		t.Errorf("subkey %d (%d bytes): want a fresh key of the session key's enctype", auth.SubKey.KeyType, len(auth.SubKey.KeyValue))
	}
	et, _ := crypto.GetEtype(tgt.Key.KeyType)
	if auth.Cksum.CksumType != et.GetHashID() {
		t.Errorf("checksum type %d, want %d", auth.Cksum.CksumType, et.GetHashID())
	}
	if !et.VerifyChecksum(tgt.Key.KeyValue, req.RawBody, auth.Cksum.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM) {
		t.Errorf("authenticator checksum does not verify over the raw req-body (usage 6)")
	}
	if len(req.Body.CName.NameString) != 0 {
		t.Errorf("TGS-REQ body carries cname %v", req.Body.CName.NameString)
	}
	if !req.Body.Till.Equal(tgt.EndTime) && !req.Body.Till.Equal(tgt.RenewTill) {
		t.Errorf("till %v: want the TGT's endtime %v (or renew-till)", req.Body.Till, tgt.EndTime)
	}
	return req, auth
}

func TestTGSOwnKDC(t *testing.T) {
	r := startOwnRealm(t)
	cfg := realmConfig(r.Name, r.Addr)
	tgt := getTGT(t, cfg)
	if tgt.Flags&ticket.FlagRenewable == 0 {
		t.Fatalf("TGT flags %s: want renewable (renewable-ok with a 24h till over the 10h max life)", ticket.FlagString(tgt.Flags))
	}
	host := mustPrincipal(t, "host/localhost")

	t.Run("service ticket", func(t *testing.T) {
		c, events := newTestClient(t, cfg)
		before := time.Now().Truncate(time.Second)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host})
		if err != nil {
			t.Fatalf("TGS: %v", err)
		}
		cred := res.Credential
		if cred.Client.String() != "alice@KRB.TEST" || cred.Server.String() != "host/localhost@KRB.TEST" {
			t.Errorf("credential %s -> %s", cred.Client, cred.Server)
		}
		if !res.SubkeyReply {
			t.Errorf("reply enc-part not sealed in the subkey (usage 9)")
		}
		if res.Reply.Network != UDP || res.Reply.KDC != r.Addr {
			t.Errorf("answered by %s %s", res.Reply.Network, res.Reply.KDC)
		}
		// The service ticket opens with the service's key from the KDC's keytab export.
		tkt := decodeTicketDER(t, cred.Ticket)
		if res.KVNO != tkt.EncPart.KVNO || res.KVNO < 1 || res.TicketEtype != tkt.EncPart.EType {
			t.Errorf("result kvno %d etype %d, ticket kvno %d etype %d", res.KVNO, res.TicketEtype, tkt.EncPart.KVNO, tkt.EncPart.EType)
		}
		etp, err := ticket.OpenTicket(tkt, ownKey(t, r, "host/localhost", tkt.EncPart.EType, tkt.EncPart.KVNO))
		if err != nil {
			t.Fatalf("service ticket does not open with the keytab key: %v", err)
		}
		if !etp.CName.Equal(tgt.Client.PrincipalName()) || etp.CRealm != ownRealmName {
			t.Errorf("ticket client %v@%s", etp.CName.NameString, etp.CRealm)
		}
		if etp.Key.KeyType != cred.Key.KeyType || string(etp.Key.KeyValue) != string(cred.Key.KeyValue) {
			t.Errorf("ticket session key differs from the reply's")
		}
		if string(cred.Key.KeyValue) == string(tgt.Key.KeyValue) {
			t.Errorf("service session key equals the TGT session key")
		}
		// Times: authtime from the TGT, starttime now, endtime within the TGT's.
		if !cred.AuthTime.Equal(tgt.AuthTime) || !etp.AuthTime.Equal(tgt.AuthTime) {
			t.Errorf("authtime %v / %v, want the TGT's %v", cred.AuthTime, etp.AuthTime, tgt.AuthTime)
		}
		if cred.StartTime.Before(before) || cred.StartTime.After(time.Now()) {
			t.Errorf("starttime %v, want about now", cred.StartTime)
		}
		if cred.EndTime.After(tgt.EndTime) || cred.EndTime.Before(tgt.EndTime.Add(-time.Minute)) {
			t.Errorf("endtime %v, want the TGT's %v", cred.EndTime, tgt.EndTime)
		}
		if !etp.EndTime.Equal(cred.EndTime) || !etp.StartTime.Equal(cred.StartTime) {
			t.Errorf("ticket times %v-%v differ from the reply's %v-%v", etp.StartTime, etp.EndTime, cred.StartTime, cred.EndTime)
		}
		// Flags: pre-authent copied, renewable asked because the TGT is, never initial.
		if cred.Flags&ticket.FlagInitial != 0 || cred.Flags&ticket.FlagPreAuthent == 0 || cred.Flags&ticket.FlagRenewable == 0 {
			t.Errorf("flags %s, want R and A without I", ticket.FlagString(cred.Flags))
		}
		if ticket.FlagsFromBitString(etp.Flags) != cred.Flags {
			t.Errorf("ticket flags %s, reply flags %s", ticket.FlagString(ticket.FlagsFromBitString(etp.Flags)), ticket.FlagString(cred.Flags))
		}
		if cred.RenewTill.After(tgt.RenewTill) || cred.RenewTill.IsZero() {
			t.Errorf("renew-till %v, TGT's %v", cred.RenewTill, tgt.RenewTill)
		}
		// The trace shows messages C-F as they crossed the wire.
		if len(*events) != 2 || (*events)[0].Message != "TGS-REQ" || !(*events)[0].Sent || (*events)[1].Message != "TGS-REP" ||
			(*events)[1].Sent || (*events)[1].KDC != r.Addr || (*events)[0].Realm != ownRealmName {
			t.Fatalf("trace %+v", *events)
		}
		req, _ := checkTGSRequest(t, (*events)[0].Data, tgt)
		b := req.Body
		if b.Realm != ownRealmName || b.SName.NameType != nametype.KRB_NT_PRINCIPAL || strings.Join(b.SName.NameString, "/") != "host/localhost" {
			t.Errorf("body sname %d %v realm %s", b.SName.NameType, b.SName.NameString, b.Realm)
		}
		if !types.IsFlagSet(&b.KDCOptions, flags.Renewable) || types.IsFlagSet(&b.KDCOptions, flags.Forwardable) ||
			types.IsFlagSet(&b.KDCOptions, flags.Renew) || types.IsFlagSet(&b.KDCOptions, flags.Canonicalize) {
			t.Errorf("kdc-options %x", b.KDCOptions.Bytes)
		}
		if b.Nonce < 0 || len(b.EType) != len(cfg.Etypes) || b.EType[0] != etypeID.AES256_CTS_HMAC_SHA1_96 {
			t.Errorf("nonce %d etypes %v", b.Nonce, b.EType)
		}

		// The cache holds both credentials after Add, and a second ticket replaces the first.
		cc := &ticket.CCache{Version: 4, DefaultPrincipal: tgt.Client, Credentials: []ticket.Credential{tgt}}
		cc.Add(cred)
		res2, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host})
		if err != nil {
			t.Fatal(err)
		}
		cc.Add(res2.Credential)
		path := filepath.Join(t.TempDir(), "cc")
		if err := ticket.WriteCCacheFile(path, cc); err != nil {
			t.Fatal(err)
		}
		back, err := ticket.ReadCCacheFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(back.Credentials) != 2 || !back.Credentials[0].Server.Equal(TGSPrincipal(ownRealmName)) ||
			!back.Credentials[1].Server.Equal(host) || string(back.Credentials[1].Ticket) != string(res2.Credential.Ticket) {
			t.Errorf("cache after two tickets: %+v", back.Credentials)
		}
		if got, err := FindTGT(back, ""); err != nil || string(got.Ticket) != string(tgt.Ticket) {
			t.Errorf("FindTGT: %v", err)
		}
	})

	t.Run("forwardable", func(t *testing.T) {
		fcfg := realmConfig(r.Name, r.Addr)
		fcfg.Forwardable = true
		ftgt := getTGT(t, fcfg)
		if ftgt.Flags&ticket.FlagForwardable == 0 {
			t.Fatalf("TGT flags %s", ticket.FlagString(ftgt.Flags))
		}
		c, _ := newTestClient(t, cfg)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: ftgt, Server: host, Forwardable: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Credential.Flags&ticket.FlagForwardable == 0 {
			t.Errorf("flags %s, want F", ticket.FlagString(res.Credential.Flags))
		}
		res, err = c.TGS(tgsCtx(t), TGSRequest{TGT: ftgt, Server: host})
		if err != nil {
			t.Fatal(err)
		}
		if res.Credential.Flags&ticket.FlagForwardable != 0 {
			t.Errorf("forwardable not asked, flags %s", ticket.FlagString(res.Credential.Flags))
		}
		// A non-forwardable TGT: the option is not even asked.
		res, err = c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host, Forwardable: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Credential.Flags&ticket.FlagForwardable != 0 {
			t.Errorf("flags %s from a non-forwardable TGT", ticket.FlagString(res.Credential.Flags))
		}
	})

	t.Run("explicit till", func(t *testing.T) {
		c, _ := newTestClient(t, cfg)
		till := time.Now().Add(time.Hour).Truncate(time.Second)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host, Till: till})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Credential.EndTime.Equal(till) {
			t.Errorf("endtime %v, want %v", res.Credential.EndTime, till)
		}
	})

	t.Run("unknown service", func(t *testing.T) {
		c, events := newTestClient(t, cfg)
		_, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: mustPrincipal(t, "host/nope")})
		var ke *KDCError
		if !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN || ke.Local {
			t.Fatalf("error %v, want KDC_ERR_S_PRINCIPAL_UNKNOWN from the KDC", err)
		}
		if got, want := ke.Text(), "Server host/nope@KRB.TEST not found in Kerberos database"; got != want {
			t.Errorf("Text() = %q, want %q", got, want)
		}
		if len(*events) != 2 || (*events)[1].Message != "KRB-ERROR" {
			t.Errorf("trace %+v", *events)
		}
	})

	t.Run("tampered body", func(t *testing.T) {
		c, events := newTestClient(t, cfg)
		c.tgsBodyHook = func(body []byte) []byte {
			// Change the nonce after the checksum was computed: still a valid body, no longer the one signed.
			var b messages.KDCReqBody
			if err := b.Unmarshal(body); err != nil {
				t.Errorf("body does not decode: %v", err)
				return body
			}
			b.Nonce ^= 1
			out, err := b.Marshal()
			if err != nil || len(out) != len(body) {
				t.Errorf("re-encode: %v (%d vs %d bytes)", err, len(out), len(body))
			}
			return out
		}
		_, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host})
		if !IsCode(err, errorcode.KRB_AP_ERR_MODIFIED) {
			t.Fatalf("error %v, want KRB_AP_ERR_MODIFIED (41)", err)
		}
		var ke *KDCError
		if errors.As(err, &ke); ke.Text() != "Message stream modified" || ke.Local {
			t.Errorf("Text() %q local %v", ke.Text(), ke.Local)
		}
		if len(*events) == 2 {
			if req, err := ticket.ParseKDCRequest((*events)[0].Data); err != nil {
				t.Errorf("tampered request does not decode: %v", err)
			} else if _, auth := checkTGSRequestNoSum(t, req, tgt); auth.Cksum.CksumType == 0 {
				t.Errorf("no checksum")
			}
		}
	})

	t.Run("renew", func(t *testing.T) {
		// Renewal on the KDC's clock 90 seconds later (well within the clock skew).
		r.Clock.Advance(90 * time.Second)
		defer r.Clock.Advance(-90 * time.Second)
		c, events := newTestClient(t, cfg)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Renew: true})
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		n := res.Credential
		if !n.Server.Equal(TGSPrincipal(ownRealmName)) || !n.Client.Equal(tgt.Client) {
			t.Errorf("renewed %s -> %s", n.Client, n.Server)
		}
		if !n.StartTime.After(tgt.StartTime.Add(80*time.Second)) || !n.EndTime.After(tgt.EndTime.Add(80*time.Second)) {
			t.Errorf("renewed times %v-%v, old %v-%v", n.StartTime, n.EndTime, tgt.StartTime, tgt.EndTime)
		}
		if d, old := n.EndTime.Sub(n.StartTime), tgt.EndTime.Sub(tgt.StartTime); d != old {
			t.Errorf("renewed lifetime %v, old %v", d, old)
		}
		if !n.RenewTill.Equal(tgt.RenewTill) || n.Flags&ticket.FlagRenewable == 0 {
			t.Errorf("renew-till %v (flags %s), want the old %v", n.RenewTill, ticket.FlagString(n.Flags), tgt.RenewTill)
		}
		if !n.AuthTime.Equal(tgt.AuthTime) {
			t.Errorf("authtime %v, want %v", n.AuthTime, tgt.AuthTime)
		}
		if string(n.Ticket) == string(tgt.Ticket) || string(n.Key.KeyValue) == string(tgt.Key.KeyValue) {
			t.Errorf("renewal returned the old ticket or session key")
		}
		req, _ := checkTGSRequest(t, (*events)[0].Data, tgt)
		if !types.IsFlagSet(&req.Body.KDCOptions, flags.Renew) || !isTGS(req.Body.SName) || req.Body.SName.NameType != nametype.KRB_NT_SRV_INST {
			t.Errorf("renew request options %x sname %v", req.Body.KDCOptions.Bytes, req.Body.SName)
		}
		// The renewed TGT opens with the krbtgt key and works for a service ticket.
		tkt := decodeTicketDER(t, n.Ticket)
		if _, err := ticket.OpenTicket(tkt, ownKey(t, r, "krbtgt/"+ownRealmName, tkt.EncPart.EType, tkt.EncPart.KVNO)); err != nil {
			t.Errorf("renewed TGT does not open with the krbtgt key: %v", err)
		}
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: n, Server: host}); err != nil {
			t.Errorf("TGS with the renewed TGT: %v", err)
		}
	})

	t.Run("renew refused locally", func(t *testing.T) {
		short := realmConfig(r.Name, r.Addr)
		short.TicketLifetime = time.Hour // under the max life: no renewable-ok renewal
		plain := getTGT(t, short)
		if plain.Flags&ticket.FlagRenewable != 0 {
			t.Fatalf("flags %s", ticket.FlagString(plain.Flags))
		}
		c, events := newTestClient(t, cfg)
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: plain, Renew: true}); !errors.Is(err, ErrNotRenewable) {
			t.Errorf("renew non-renewable: %v", err)
		}
		c.now = func() time.Time { return tgt.RenewTill.Add(time.Minute) }
		_, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Renew: true})
		if !errors.Is(err, ErrRenewExpired) || !strings.Contains(err.Error(), tgt.RenewTill.UTC().Format(time.RFC3339)) {
			t.Errorf("renew after renew-till: %v", err)
		}
		// An expired TGT is not sent for a service ticket.
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host}); !IsCode(err, errorcode.KRB_AP_ERR_TKT_EXPIRED) {
			t.Errorf("expired TGT: %v", err)
		}
		if len(*events) != 0 {
			t.Errorf("refused requests were sent: %+v", *events)
		}
	})

	t.Run("validate", func(t *testing.T) {
		// A postdated, invalid TGT whose starttime has come, sealed in the krbtgt key like the KDC would.
		// Its starttime is an hour past: the validated ticket keeps it, so the reply's starttime is not "now".
		inv := forgeTGT(t, r, time.Now().Add(-time.Hour), 2*time.Hour,
			ticket.Flags(flags.MayPostDate, flags.PostDated, flags.Invalid, flags.PreAuthent))
		c, _ := newTestClient(t, cfg)
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: inv, Server: host}); !IsCode(err, errorcode.KRB_AP_ERR_TKT_NYV) {
			t.Errorf("invalid TGT used for a service ticket: %v, want KRB_AP_ERR_TKT_NYV", err)
		}
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: inv, Validate: true})
		if err != nil {
			t.Fatalf("validate: %v", err)
		}
		if f := res.Credential.Flags; f&ticket.FlagInvalid != 0 || f&ticket.FlagPostdated == 0 {
			t.Errorf("validated flags %s", ticket.FlagString(f))
		}
		if v := res.Credential; !v.StartTime.Equal(inv.StartTime) || !v.EndTime.Equal(inv.EndTime) || !v.Server.Equal(inv.Server) {
			t.Errorf("validated %s %v-%v, presented %v-%v", v.Server, v.StartTime, v.EndTime, inv.StartTime, inv.EndTime)
		}
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: res.Credential, Server: host}); err != nil {
			t.Errorf("TGS with the validated TGT: %v", err)
		}
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Validate: true}); !IsCode(err, errorcode.KDC_ERR_BADOPTION) {
			t.Errorf("validate a valid TGT: %v", err)
		}
	})

	t.Run("TCP only", func(t *testing.T) {
		tcfg := realmConfig(r.Name, r.Addr)
		tcfg.UDPPreferenceLimit = 1
		c, _ := newTestClient(t, tcfg)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: host})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reply.Network != TCP || len(res.Reply.Attempts) != 1 || res.Reply.Attempts[0].Network != TCP {
			t.Errorf("network %s attempts %+v", res.Reply.Network, res.Reply.Attempts)
		}
	})

	t.Run("request checks", func(t *testing.T) {
		c, _ := newTestClient(t, cfg)
		other := principal.Name{Components: host.Components, Realm: "OTHER.TEST", Type: host.Type}
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: other}); err == nil || !strings.Contains(err.Error(), "cross-realm") {
			t.Errorf("cross-realm: %v", err)
		}
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt}); err == nil {
			t.Errorf("no server accepted")
		}
		broken := tgt
		broken.Key = types.EncryptionKey{}
		if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: broken, Server: host}); err == nil {
			t.Errorf("TGT without session key accepted")
		}
		if _, err := FindTGT(&ticket.CCache{DefaultPrincipal: tgt.Client}, ""); !errors.Is(err, ErrNoTGT) {
			t.Errorf("FindTGT on an empty cache: %v", err)
		}
	})
}

// checkTGSRequestNoSum decrypts the authenticator of a decoded TGS-REQ without checking the checksum.
func checkTGSRequestNoSum(t *testing.T, req *ticket.KDCRequest, tgt ticket.Credential) (*ticket.KDCRequest, types.Authenticator) {
	t.Helper()
	var ap messages.APReq
	if err := ap.Unmarshal(req.PAData[0].PADataValue); err != nil {
		t.Fatal(err)
	}
	plain, err := crypto.DecryptEncPart(ap.EncryptedAuthenticator, tgt.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil {
		t.Fatal(err)
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	et, _ := crypto.GetEtype(tgt.Key.KeyType)
	if et.VerifyChecksum(tgt.Key.KeyValue, req.RawBody, auth.Cksum.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM) {
		t.Errorf("checksum verifies over the tampered body")
	}
	return req, auth
}

// forgeTGT seals a TGT for alice with the realm's current aes256 krbtgt key, valid from start for life, with the
// given flags, as our KDC would issue it.
func forgeTGT(t *testing.T, r *testenv.InProcRealm, start time.Time, life time.Duration, f asn1.BitString) ticket.Credential {
	t.Helper()
	entries, err := r.Admin.Keytab(context.Background(), []string{"krbtgt/" + ownRealmName})
	if err != nil {
		t.Fatal(err)
	}
	var kt ticket.KeytabEntry
	for _, e := range entries {
		if e.Key.KeyType == etypeID.AES256_CTS_HMAC_SHA1_96 && e.KVNO >= kt.KVNO {
			kt = e
		}
	}
	et, _ := crypto.GetEtype(etypeID.AES256_CTS_HMAC_SHA1_96)
	session, err := types.GenerateEncryptionKey(et)
	if err != nil {
		t.Fatal(err)
	}
	alice := mustPrincipal(t, "alice")
	start = start.UTC().Truncate(time.Second)
	part := messages.EncTicketPart{
		Flags: f, Key: session, CRealm: ownRealmName, CName: alice.PrincipalName(),
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}},
		AuthTime:  start.Add(-time.Minute), StartTime: start, EndTime: start.Add(life),
	}
	tgs := TGSPrincipal(ownRealmName)
	tkt, err := ticket.SealTicket(ownRealmName, tgs.PrincipalName(), part, kt.Key, int(kt.KVNO))
	if err != nil {
		t.Fatal(err)
	}
	der, err := ticket.MarshalTicket(tkt)
	if err != nil {
		t.Fatal(err)
	}
	return ticket.Credential{
		Client: alice, Server: tgs, Key: session,
		AuthTime: part.AuthTime, StartTime: part.StartTime, EndTime: part.EndTime,
		Flags: ticket.FlagsFromBitString(f), Ticket: der,
	}
}

// TestTGSKDCOffset: with the KDC's clock 10 minutes ahead (twice the skew), the AS exchange learns the offset,
// and the TGS exchange works only because the authenticator time and the reply checks are corrected by it.
func TestTGSKDCOffset(t *testing.T) {
	r := startOwnRealm(t)
	r.Clock.Advance(10 * time.Minute)
	cfg := realmConfig(r.Name, r.Addr)
	c, _ := newTestClient(t, cfg)
	as, err := c.Login(tgsCtx(t), ASRequest{Client: mustPrincipal(t, "alice"), Secret: PasswordSecret("alicepw")})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if as.KDCOffset < 9*time.Minute || as.KDCOffset > 11*time.Minute {
		t.Fatalf("KDC offset %v, want about 10m", as.KDCOffset)
	}
	host := mustPrincipal(t, "host/localhost")
	res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: as.Credential, Server: host, KDCOffset: as.KDCOffset})
	if err != nil {
		t.Fatalf("TGS with the offset: %v", err)
	}
	if d := time.Until(res.Credential.StartTime); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("starttime %v is not on the KDC's clock", res.Credential.StartTime)
	}
	if _, err := c.TGS(tgsCtx(t), TGSRequest{TGT: as.Credential, Server: host}); !IsCode(err, errorcode.KRB_AP_ERR_SKEW) {
		t.Errorf("TGS without the offset: %v, want KRB_AP_ERR_SKEW from the KDC", err)
	}
}
