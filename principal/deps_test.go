package principal_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWireLayerLinksNoDatabase keeps the layering of DESIGN.md: the wire layer and
// the roles built on it (ticket, client, service) must not link a database, so a
// program that only authenticates does not carry bbolt or etcd.
func TestWireLayerLinksNoDatabase(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	for _, pkg := range []string{"principal", "ticket", "client", "service"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/kerbkit/kerbkit/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "go.etcd.io/") || dep == "github.com/kerbkit/kerbkit/store" {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
