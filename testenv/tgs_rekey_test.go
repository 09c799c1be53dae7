package testenv

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/kerbkit/kerbkit/ticket"
)

// TestTGSServiceRekey: `kdc principal passwd host/localhost --random-key` while
// `kdc serve` runs. A service ticket obtained before the change (kvno 1) still
// decrypts with the kvno-1 key of the keytab exported afterwards (which holds
// kvno 1 and 2), checked in Go and with MIT kvno -k on the old cache; a ticket
// obtained after the change has kvno 2 and decrypts with the new key, and not
// with a keytab that only has kvno 1.
func TestTGSServiceRekey(t *testing.T) {
	kvno := RequireTool(t, "kvno")
	klist := RequireTool(t, "klist")
	r := NewRealm(t, RealmOptions{})
	host := r.Principal("host/localhost")

	// Before: a kvno-1 ticket in the "old" cache.
	oldEnv := r.Env(EnvOptions{})
	mustMITKinit(t, oldEnv, UserPassword, UserName)
	stdout, stderr, code := Run(t, oldEnv, "", kvno, "host/localhost")
	if code != 0 {
		t.Fatalf("kvno host/localhost before the key change: exit %d: %s", code, strings.TrimSpace(stderr))
	}
	if n := tgsKvnoOf(stdout, host); n != 1 {
		t.Fatalf("kvno before the key change printed kvno %d, want 1:\n%s", n, stdout)
	}

	// The key change while serving, and a keytab with both kvnos.
	pid := r.Process().PID()
	stdout = r.mustKDC(t, "", "principal", "passwd", "host/localhost", "--random-key")
	t.Logf("kdc principal passwd: %s", strings.TrimSpace(stdout))
	both := filepath.Join(t.TempDir(), "both.keytab")
	r.ExportKeytab(t, both, "host/localhost")
	stdout, stderr, code = Run(t, oldEnv, "", klist, "-k", "-e", both)
	if code != 0 {
		t.Fatalf("klist -k %s: exit %d: %s", both, code, strings.TrimSpace(stderr))
	}
	kvnos := map[string]bool{}
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == host {
			kvnos[f[0]] = true
		}
	}
	if !kvnos["1"] || !kvnos["2"] || len(kvnos) != 2 {
		t.Errorf("klist -k both.keytab: %s kvnos %v, want exactly 1 and 2:\n%s", host, kvnos, stdout)
	}

	// Go: the old cached ticket says kvno 1 and opens with the kvno-1 key only.
	cc, err := ticket.ReadCCacheFile(CCachePath(oldEnv))
	if err != nil {
		t.Fatal(err)
	}
	var cred *ticket.Credential
	for i := range cc.Credentials {
		if cc.Credentials[i].Server.String() == host {
			cred = &cc.Credentials[i]
		}
	}
	if cred == nil {
		t.Fatalf("no %s ticket in the old cache", host)
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(cred.Ticket); err != nil {
		t.Fatalf("old cached ticket: %v", err)
	}
	if tkt.EncPart.KVNO != 1 {
		t.Errorf("old cached ticket is sealed with kvno %d, want 1", tkt.EncPart.KVNO)
	}
	kt, err := keytab.Load(both)
	if err != nil {
		t.Fatalf("keytab.Load %s: %v", both, err)
	}
	key1, _, err := kt.GetEncryptionKey(tkt.SName, tkt.Realm, 1, tkt.EncPart.EType)
	if err != nil {
		t.Fatalf("both.keytab has no kvno-1 key for etype %d: %v", tkt.EncPart.EType, err)
	}
	part, err := ticket.OpenTicket(tkt, key1)
	if err != nil {
		t.Errorf("the ticket issued before the key change does not open with the kvno-1 key of both.keytab: %v", err)
	} else if got := strings.Join(part.CName.NameString, "/") + "@" + part.CRealm; got != r.Principal(UserName) {
		t.Errorf("old ticket's client %s, want %s", got, r.Principal(UserName))
	}
	if key2, _, err := kt.GetEncryptionKey(tkt.SName, tkt.Realm, 2, tkt.EncPart.EType); err != nil {
		t.Errorf("both.keytab has no kvno-2 key for etype %d: %v", tkt.EncPart.EType, err)
	} else if _, err := ticket.OpenTicket(tkt, key2); err == nil {
		t.Errorf("the kvno-1 ticket also opens with the kvno-2 key: the key did not change")
	}

	// MIT: kvno -k both.keytab on the old cache uses the cached kvno-1 ticket.
	tgsKvnoFromCache(t, oldEnv, both, "host/localhost", host, 1)

	// After: a new ticket has kvno 2 and needs the new key.
	newEnv := r.Env(EnvOptions{})
	mustMITKinit(t, newEnv, UserPassword, UserName)
	stdout, stderr, code = Run(t, newEnv, "", kvno, "-k", both, "host/localhost")
	if code != 0 {
		t.Fatalf("kvno -k both.keytab after the key change: exit %d: %s\n%s", code, strings.TrimSpace(stderr), tgsTraceExcerpt(Trace(newEnv)))
	}
	wantContains(t, "kvno -k output", stdout, host+": kvno = 2, keytab entry valid")
	tgsRequireLog(t, r.Log, "TGS_REQ", "service="+host, "result=ISSUE", "kvno=2")
	// Negative control: the keytab exported before the change (kvno 1 only).
	// MIT 1.20 prints "kvno = 2, keytab entry invalid" and fails.
	stdout, stderr, code = Run(t, newEnv, "", kvno, "-k", r.Keytab, "host/localhost")
	if code == 0 {
		t.Errorf("kvno -k with the kvno-1-only keytab accepted a kvno-2 ticket")
	} else {
		wantContains(t, "kvno -k (kvno-1-only keytab) output", stdout+stderr, host+": kvno = 2, keytab entry invalid")
	}
	if r.Process().PID() != pid || r.Process().Exited() {
		t.Errorf("kdc serve (pid %d) restarted or exited during the key change", pid)
	}
}
