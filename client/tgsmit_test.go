package client

import (
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbkit/kerbkit/ticket"
)

// TestTGSMIT runs our TGS exchange against a real MIT krb5kdc: the service ticket must open with the service's
// MIT keytab, and renewal, errors and TCP must behave as with MIT's own clients.
func TestTGSMIT(t *testing.T) {
	r := startMITRealm(t)
	cfg := realmConfig(r.Name, r.Addr)
	res, _, err := login(t, cfg, "alice", PasswordSecret("alicepw"), nil)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	tgt := res.Credential
	svc, err := ParsePrincipal("svc/client", r.Name)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("service ticket", func(t *testing.T) {
		c, events := newTestClient(t, cfg)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: svc})
		if err != nil {
			t.Fatalf("TGS: %v", err)
		}
		cred := res.Credential
		if !cred.Server.Equal(svc) || !cred.Client.Equal(tgt.Client) {
			t.Errorf("credential %s -> %s", cred.Client, cred.Server)
		}
		if !res.SubkeyReply {
			t.Errorf("MIT's reply was not sealed in our subkey (usage 9)")
		}
		kt, err := LoadKeytab(r.Keytab)
		if err != nil {
			t.Fatal(err)
		}
		var tkt messages.Ticket
		if err := tkt.Unmarshal(cred.Ticket); err != nil {
			t.Fatal(err)
		}
		key, err := KeytabSecret(kt).key(svc, tkt.EncPart.EType, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		etp, err := ticket.OpenTicket(tkt, key)
		if err != nil {
			t.Fatalf("service ticket does not open with the MIT keytab: %v", err)
		}
		if !etp.CName.Equal(tgt.Client.PrincipalName()) || string(etp.Key.KeyValue) != string(cred.Key.KeyValue) {
			t.Errorf("ticket client %v, session key matches reply: %v", etp.CName.NameString, string(etp.Key.KeyValue) == string(cred.Key.KeyValue))
		}
		if res.KVNO < 1 || cred.Flags&ticket.FlagInitial != 0 || cred.Flags&ticket.FlagPreAuthent == 0 {
			t.Errorf("kvno %d flags %s", res.KVNO, ticket.FlagString(cred.Flags))
		}
		if cred.EndTime.After(tgt.EndTime) || cred.StartTime.Before(tgt.StartTime) {
			t.Errorf("times %v-%v outside the TGT's %v-%v", cred.StartTime, cred.EndTime, tgt.StartTime, tgt.EndTime)
		}
		checkTGSRequest(t, (*events)[0].Data, tgt)
	})

	t.Run("TCP only", func(t *testing.T) {
		tcfg := realmConfig(r.Name, r.Addr)
		tcfg.UDPPreferenceLimit = 1
		c, _ := newTestClient(t, tcfg)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: svc})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reply.Network != TCP || len(res.Reply.Attempts) != 1 {
			t.Errorf("network %s attempts %+v", res.Reply.Network, res.Reply.Attempts)
		}
	})

	t.Run("renew", func(t *testing.T) {
		c, _ := newTestClient(t, cfg)
		res, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Renew: true})
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		n := res.Credential
		if !n.RenewTill.Equal(tgt.RenewTill) || n.StartTime.Before(tgt.StartTime) || n.EndTime.Before(tgt.EndTime) {
			t.Errorf("renewed %v-%v renew-till %v; old %v-%v %v", n.StartTime, n.EndTime, n.RenewTill, tgt.StartTime, tgt.EndTime, tgt.RenewTill)
		}
		t.Logf("MIT renewed flags %s (TGT %s)", ticket.FlagString(n.Flags), ticket.FlagString(tgt.Flags))
		openTGT(t, r, n)
	})

	t.Run("errors", func(t *testing.T) {
		c, _ := newTestClient(t, cfg)
		nope, _ := ParsePrincipal("host/nope", r.Name)
		_, err := c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: nope})
		var ke *KDCError
		if !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN {
			t.Fatalf("unknown service: %v", err)
		}
		if got, want := ke.Text(), "Server host/nope@KRB.TEST not found in Kerberos database"; got != want {
			t.Errorf("Text() %q, want %q", got, want)
		}
		// MIT answers a modified body with KRB_AP_ERR_BAD_INTEGRITY (31); RFC 4120 says KRB_AP_ERR_MODIFIED (41).
		c.tgsBodyHook = func(body []byte) []byte {
			var b messages.KDCReqBody
			if err := b.Unmarshal(body); err != nil {
				t.Fatal(err)
			}
			b.Till = b.Till.Add(-time.Second)
			out, _ := b.Marshal()
			return out
		}
		_, err = c.TGS(tgsCtx(t), TGSRequest{TGT: tgt, Server: svc})
		if !IsCode(err, errorcode.KRB_AP_ERR_BAD_INTEGRITY) && !IsCode(err, errorcode.KRB_AP_ERR_MODIFIED) {
			t.Errorf("modified body: %v, want code 31 or 41", err)
		}
	})
}
