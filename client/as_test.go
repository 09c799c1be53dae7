package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// login runs one AS exchange against the realm with cfg, recording the trace.
func login(t *testing.T, cfg *Config, princ string, secret Secret, mod func(*Client)) (*ASResult, []Event, error) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var events []Event
	c.Trace = func(ev Event) { events = append(events, ev) }
	if mod != nil {
		mod(c)
	}
	p, err := ParsePrincipal(princ, cfg.Realm)
	if err != nil {
		t.Fatalf("ParsePrincipal: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Login(ctx, ASRequest{Client: p, Secret: secret})
	return res, events, err
}

// openTGT decrypts the TGT of cred with the krbtgt keytab exported from the MIT realm.
func openTGT(t *testing.T, r *testenv.MITRealm, cred ticket.Credential) messages.Ticket {
	t.Helper()
	kt, err := LoadKeytab(filepath.Join(r.Dir, "krbtgt.keytab"))
	if err != nil {
		t.Fatal(err)
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(cred.Ticket); err != nil {
		t.Fatalf("credential ticket does not decode: %v", err)
	}
	key, err := KeytabSecret(kt).key(TGSPrincipal(r.Name), tkt.EncPart.EType, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tkt.Decrypt(key); err != nil {
		t.Fatalf("TGT does not decrypt with the krbtgt key: %v", err)
	}
	return tkt
}

func TestLoginMIT(t *testing.T) {
	r := startMITRealm(t)
	alice := principal.Name{Realm: r.Name}
	alice.Components = []string{"alice"}

	t.Run("password", func(t *testing.T) {
		before := time.Now()
		res, events, err := login(t, realmConfig(r.Name, r.Addr), "alice", PasswordSecret("alicepw"), nil)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		cred := res.Credential
		if got := cred.Client.String(); got != "alice@"+r.Name {
			t.Errorf("client = %s", got)
		}
		if got, want := cred.Server.String(), "krbtgt/"+r.Name+"@"+r.Name; got != want {
			t.Errorf("server = %s, want %s", got, want)
		}
		if cred.Key.KeyType != etypeID.AES256_CTS_HMAC_SHA1_96 || len(cred.Key.KeyValue) != 32 {
			t.Errorf("session key etype %d len %d", cred.Key.KeyType, len(cred.Key.KeyValue))
		}
		if res.ReplyEtype != etypeID.AES256_CTS_HMAC_SHA1_96 || !res.Preauthenticated {
			t.Errorf("reply etype %d preauth %v", res.ReplyEtype, res.Preauthenticated)
		}
		for _, f := range []uint32{ticket.FlagInitial, ticket.FlagPreAuthent, ticket.FlagRenewable} {
			if cred.Flags&f == 0 {
				t.Errorf("flags %s lack %s", ticket.FlagString(cred.Flags), ticket.FlagString(f))
			}
		}
		if cred.Flags&ticket.FlagForwardable != 0 {
			t.Errorf("forwardable not requested but flags %s", ticket.FlagString(cred.Flags))
		}
		// Realm max_life is 10h; renewable-ok turns the requested 24h into renew-till.
		if d := cred.EndTime.Sub(before); d < 10*time.Hour-time.Minute || d > 10*time.Hour+time.Minute {
			t.Errorf("lifetime %v, want about 10h", d)
		}
		if d := cred.RenewTill.Sub(before); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
			t.Errorf("renew-till in %v, want about 24h", d)
		}
		if res.Reply.Network != UDP || res.Reply.KDC != r.Addr {
			t.Errorf("answered by %s %s", res.Reply.Network, res.Reply.KDC)
		}
		if res.KDCOffset != 0 {
			t.Errorf("KDC offset %v on one machine", res.KDCOffset)
		}
		var seq []string
		for _, ev := range events {
			seq = append(seq, ev.Message)
		}
		if got := strings.Join(seq, ","); got != "AS-REQ,KRB-ERROR,AS-REQ,AS-REP" {
			t.Errorf("trace = %s", got)
		}
		if len(events) == 4 && (!events[0].Sent || events[1].Sent || events[2].Round != 2 || events[3].KDC != r.Addr) {
			t.Errorf("trace details wrong: %+v", events)
		}
		tkt := openTGT(t, r, cred)
		etp := tkt.DecryptedEncPart
		if !etp.CName.Equal(alice.PrincipalName()) || etp.CRealm != r.Name {
			t.Errorf("TGT is for %v@%s", etp.CName.NameString, etp.CRealm)
		}
		if etp.Key.KeyType != cred.Key.KeyType || string(etp.Key.KeyValue) != string(cred.Key.KeyValue) {
			t.Errorf("TGT session key differs from the credential's")
		}
		if ticket.FlagsFromBitString(etp.Flags) != cred.Flags {
			t.Errorf("TGT flags %s, credential flags %s",
				ticket.FlagString(ticket.FlagsFromBitString(etp.Flags)), ticket.FlagString(cred.Flags))
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		_, _, err := login(t, realmConfig(r.Name, r.Addr), "alice", PasswordSecret("not-alicepw"), nil)
		var ke *KDCError
		if !errors.As(err, &ke) {
			t.Fatalf("err = %v, want *KDCError", err)
		}
		if ke.Code != errorcode.KDC_ERR_PREAUTH_FAILED || ke.Text() != "Password incorrect" || ke.Local {
			t.Errorf("code %d text %q local %v", ke.Code, ke.Text(), ke.Local)
		}
		if strings.Contains(err.Error(), "not-alicepw") {
			t.Errorf("password leaked into error: %v", err)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		_, _, err := login(t, realmConfig(r.Name, r.Addr), "nobody", PasswordSecret("x"), nil)
		if !IsCode(err, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN) {
			t.Fatalf("err = %v, want code 6", err)
		}
		var ke *KDCError
		errors.As(err, &ke)
		if want := "Client 'nobody@" + r.Name + "' not found in Kerberos database"; ke.Text() != want {
			t.Errorf("text %q, want %q", ke.Text(), want)
		}
	})

	t.Run("salt from etype-info2", func(t *testing.T) {
		// dave's key is salted with "dave" only (norealm): only the KDC's ETYPE-INFO2 salt gives the right key.
		res, _, err := login(t, realmConfig(r.Name, r.Addr), "dave", PasswordSecret("davepw"), nil)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if !res.Preauthenticated || res.ReplyEtype != etypeID.AES256_CTS_HMAC_SHA1_96 {
			t.Errorf("preauth %v etype %d", res.Preauthenticated, res.ReplyEtype)
		}
	})

	t.Run("no preauth", func(t *testing.T) {
		res, events, err := login(t, realmConfig(r.Name, r.Addr), "erin", PasswordSecret("erinpw"), nil)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if res.Preauthenticated || len(events) != 2 || res.Credential.Flags&ticket.FlagPreAuthent != 0 {
			t.Errorf("preauth %v, %d events, flags %s", res.Preauthenticated, len(events), ticket.FlagString(res.Credential.Flags))
		}
		_, _, err = login(t, realmConfig(r.Name, r.Addr), "erin", PasswordSecret("wrong"), nil)
		var ke *KDCError
		if !errors.As(err, &ke) || ke.Code != errorcode.KRB_AP_ERR_BAD_INTEGRITY || !ke.Local || ke.Text() != "Password incorrect" {
			t.Errorf("wrong password without preauth: %v", err)
		}
	})

	t.Run("keytab", func(t *testing.T) {
		kt, err := LoadKeytab(r.Keytab)
		if err != nil {
			t.Fatal(err)
		}
		ps := KeytabPrincipals(kt)
		if len(ps) != 1 || ps[0].String() != "svc/client@"+r.Name {
			t.Fatalf("keytab principals %v", ps)
		}
		res, _, err := login(t, realmConfig(r.Name, r.Addr), "svc/client", KeytabSecret(kt), nil)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if res.Credential.Client.String() != "svc/client@"+r.Name || !res.Preauthenticated {
			t.Errorf("client %s preauth %v", res.Credential.Client, res.Preauthenticated)
		}
		_, _, err = login(t, realmConfig(r.Name, r.Addr), "alice", KeytabSecret(kt), nil)
		if err == nil || !strings.Contains(err.Error(), "keytab has no key") {
			t.Errorf("keytab without alice: %v", err)
		}
	})

	t.Run("options over tcp", func(t *testing.T) {
		cfg := realmConfig(r.Name, r.Addr)
		cfg.UDPPreferenceLimit = 1
		cfg.Forwardable = true
		cfg.TicketLifetime = time.Hour
		cfg.RenewLifetime = 48 * time.Hour
		before := time.Now()
		res, events, err := login(t, cfg, "alice", PasswordSecret("alicepw"), nil)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		cred := res.Credential
		if res.Reply.Network != TCP || events[1].Network != TCP {
			t.Errorf("network %s, want tcp", res.Reply.Network)
		}
		if cred.Flags&ticket.FlagForwardable == 0 || cred.Flags&ticket.FlagRenewable == 0 {
			t.Errorf("flags %s, want F and R", ticket.FlagString(cred.Flags))
		}
		if d := cred.EndTime.Sub(before); d < time.Hour-time.Minute || d > time.Hour+time.Minute {
			t.Errorf("lifetime %v, want 1h", d)
		}
		if d := cred.RenewTill.Sub(before); d < 48*time.Hour-time.Minute || d > 48*time.Hour+time.Minute {
			t.Errorf("renewable for %v, want 48h", d)
		}
	})

	t.Run("rfc8009 enctype", func(t *testing.T) {
		cfg := realmConfig(r.Name, r.Addr)
		cfg.Etypes = []int32{etypeID.AES256_CTS_HMAC_SHA384_192}
		res, _, err := login(t, cfg, "alice", PasswordSecret("alicepw"), nil)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if res.ReplyEtype != etypeID.AES256_CTS_HMAC_SHA384_192 || res.Credential.Key.KeyType != etypeID.AES256_CTS_HMAC_SHA384_192 {
			t.Errorf("reply etype %d, session key etype %d", res.ReplyEtype, res.Credential.Key.KeyType)
		}
	})

	t.Run("client clock behind", func(t *testing.T) {
		// The local clock is 20 minutes slow (4x the skew): the offset learned from the PREAUTH_REQUIRED stime
		// keeps PA-ENC-TIMESTAMP acceptable, and the result reports the offset.
		res, _, err := login(t, realmConfig(r.Name, r.Addr), "alice", PasswordSecret("alicepw"), func(c *Client) {
			c.now = func() time.Time { return time.Now().Add(-20 * time.Minute) }
		})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if d := res.KDCOffset - 20*time.Minute; d < -2*time.Second || d > 2*time.Second {
			t.Errorf("KDC offset %v, want about 20m", res.KDCOffset)
		}
	})

	t.Run("unreachable realm", func(t *testing.T) {
		cfg := realmConfig(r.Name, r.Addr)
		cfg.KDCs[r.Name] = []string{"127.0.0.1:1"}
		cfg.Timeout = 500 * time.Millisecond
		_, _, err := login(t, cfg, "alice", PasswordSecret("alicepw"), nil)
		var ue *UnreachableError
		if !errors.Is(err, ErrKDCUnreachable) || !errors.As(err, &ue) || len(ue.Attempts) != 2 {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSecretRedacted(t *testing.T) {
	s := PasswordSecret("hunter2")
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(f, s); strings.Contains(got, "hunter2") {
			t.Errorf("%s shows the password: %s", f, got)
		}
	}
	kt := keytab.New()
	if got := fmt.Sprintf("%v", KeytabSecret(kt)); !strings.Contains(got, "keytab") {
		t.Errorf("keytab secret prints %q", got)
	}
}

func TestRoundOffset(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0},
		{-1200 * time.Millisecond, 0}, // authtime truncated, reply crossed a second boundary
		{-1999 * time.Millisecond, 0},
		{1500 * time.Millisecond, 0},
		{-10 * time.Minute, -10 * time.Minute},
		{15*time.Minute + 400*time.Millisecond, 15 * time.Minute},
	} {
		if got := roundOffset(tc.in); got != tc.want {
			t.Errorf("roundOffset(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
