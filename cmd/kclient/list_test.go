package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// layoutCache exercises every klist layout rule: renew-till, flags, etypes, "for client", a referral-style
// ticket server, an undecodable ticket and a hidden configuration entry.
func layoutCache() *ticket.CCache {
	tgt := sampleCred()
	svc := sampleCred()
	svc.Server = princ("host/localhost", "R") // its ticket names krbtgt/R: "Ticket server" line
	svc.RenewTill = time.Time{}
	svc.Flags = ticket.FlagForwardable
	svc.Key = types.EncryptionKey{KeyType: 17, KeyValue: make([]byte, 16)}
	svc.Ticket = encodeTicket(20)
	garbled := sampleCred()
	garbled.Client = princ("bob", "R")
	garbled.Server = princ("HTTP/web", "R")
	garbled.Ticket = []byte("not a ticket")
	forBob := sampleCred()
	forBob.Client = princ("bob", "R")
	forBob.Server = princ("krbtgt/R", "R")
	forBobNoRenew := forBob
	forBobNoRenew.RenewTill = time.Time{}
	conf := sampleCred()
	conf.Server = principal.Name{Components: []string{"krb5_ccache_conf_data", "fast_avail"}, Realm: ticket.ConfigRealm}
	return &ticket.CCache{Version: 4, DefaultPrincipal: princ("alice", "R"),
		Credentials: []ticket.Credential{conf, tgt, svc, garbled, forBob, forBobNoRenew}}
}

func TestWriteListLayout(t *testing.T) {
	// Expected output as MIT klist 1.20 -f -e prints this cache with TZ=UTC.
	want := `Ticket cache: FILE:/tmp/x
Default principal: alice@R

Valid starting     Expires            Service principal
11/25/26 02:24:57  11/25/26 12:24:57  krbtgt/R@R
	renew until 11/26/26 02:24:57, Flags: RIA
	Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96 
11/25/26 02:24:57  11/25/26 12:24:57  host/localhost@R
	Flags: F, Etype (skey, tkt): aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha384-192 
	Ticket server: krbtgt/R@R
11/25/26 02:24:57  11/25/26 12:24:57  HTTP/web@R
	for client bob@R, renew until 11/26/26 02:24:57, Flags: RIA
11/25/26 02:24:57  11/25/26 12:24:57  krbtgt/R@R
	for client bob@R, renew until 11/26/26 02:24:57, Flags: RIA
	Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96 
11/25/26 02:24:57  11/25/26 12:24:57  krbtgt/R@R
	for client bob@R, Flags: RIA, Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96 
`
	var b strings.Builder
	if err := writeList(&b, "FILE:/tmp/x", layoutCache(), true, true, time.UTC); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestListMatchesMITKlist writes the layout cache and compares kclient list with MIT klist for every
// combination of -f and -e.
func TestListMatchesMITKlist(t *testing.T) {
	testenv.RequireTool(t, "klist")
	path := filepath.Join(t.TempDir(), "cc")
	if err := ticket.WriteCCacheFile(path, layoutCache()); err != nil {
		t.Fatal(err)
	}
	noRealm := []string{"KRB5_CONFIG=/dev/null"} // klist needs no KDC
	for _, args := range [][]string{nil, {"-f"}, {"-e"}, {"-f", "-e"}} {
		want := mitCmd(t, noRealm, "", "klist", append(args, "FILE:"+path)...)
		got := runKClient(t, nil, "", append([]string{"list", "-c", "FILE:" + path}, args...)...)
		if got.code != 0 || got.stdout != want {
			t.Errorf("list %v:\n--- kclient (exit %d, %s)\n%s--- klist\n%s", args, got.code, got.stderr, got.stdout, want)
		}
	}
}

func TestReadLine(t *testing.T) {
	r := strings.NewReader("secret\r\nnext line\n")
	got, err := readLine(r)
	if err != nil || got != "secret" {
		t.Fatalf("readLine = %q, %v", got, err)
	}
	if r.Len() != len("next line\n") {
		t.Errorf("readLine consumed more than one line: %d bytes left", r.Len())
	}
	if got, err := readLine(strings.NewReader("no newline")); err != nil || got != "no newline" {
		t.Errorf("last line without newline: %q %v", got, err)
	}
	if _, err := readLine(strings.NewReader("")); err == nil {
		t.Error("empty input: no error")
	}
	if _, err := readLine(strings.NewReader(strings.Repeat("x", maxPasswordLine+1))); err == nil {
		t.Error("overlong line: no error")
	}
}
