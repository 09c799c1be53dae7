package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// TestListEtypeNamesMatchMITKlist lists a cache whose session keys and tickets use every enctype number MIT
// has ever assigned a name to (and some it has not, including negative ones) and compares kclient list -e
// with MIT klist -e, so the enctype name table cannot drift from MIT's.
func TestListEtypeNamesMatchMITKlist(t *testing.T) {
	testenv.RequireTool(t, "klist")
	c := &ticket.CCache{Version: 4, DefaultPrincipal: princ("alice", "R")}
	var etypes []int32
	for e := int32(-140); e <= 30; e++ {
		if e < -2 && e > -130 {
			continue
		}
		etypes = append(etypes, e)
	}
	etypes = append(etypes, 65, 66, 0x7fff)
	for _, e := range etypes {
		cr := sampleCred()
		cr.Server = princ(fmt.Sprintf("host/e%d", e), "R")
		cr.Key = types.EncryptionKey{KeyType: e, KeyValue: make([]byte, 16)}
		cr.Ticket = encodeTicket(e)
		c.Credentials = append(c.Credentials, cr)
	}
	path := filepath.Join(t.TempDir(), "cc")
	if err := ticket.WriteCCacheFile(path, c); err != nil {
		t.Fatal(err)
	}
	want := mitCmd(t, []string{"KRB5_CONFIG=/dev/null"}, "", "klist", "-e", "FILE:"+path)
	got := runKClient(t, nil, "", "list", "-e", "-c", "FILE:"+path)
	if got.code != 0 || got.stdout != want {
		t.Errorf("list -e:\n--- kclient (exit %d, %s)\n%s--- klist\n%s", got.code, got.stderr, got.stdout, want)
	}
}
