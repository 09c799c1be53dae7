package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDockerReplicasOnEtcd: the replica topology in containers (issue 13):
// three kerbkit/etcd members, two kerbkit/kdc replicas serving the realm from
// them, and an MIT client whose krb5.conf lists both replicas. Replica A and
// one etcd member are cut off the network (docker network disconnect): logins
// go on through B, a principal added meanwhile logs in; when they are back, A
// has caught up. The replicas' health checks (kdc probe with the health
// report) stay healthy.
func TestDockerReplicasOnEtcd(t *testing.T) {
	imgs := BuildImages(t)
	if imgs.Etcd == "" {
		unavailable(t, "no kerbkit/etcd image (apt-get install etcd-server, then docker/build-images.sh)")
	}
	n := NewDockerNetwork(t)
	const realm = "DOCKER.TEST"
	var initial, endpoints []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("etcd%d=http://etcd%d:2380", i, i))
		endpoints = append(endpoints, fmt.Sprintf("etcd%d:2379", i))
	}
	var members []*Container
	for i := range 3 {
		h := fmt.Sprintf("etcd%d", i)
		members = append(members, n.Start(t, ContainerOptions{Name: h, Image: imgs.Etcd, Hostname: h, Args: []string{
			"--name", h, "--data-dir", "/var/lib/etcd/data",
			"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://" + h + ":2379",
			"--listen-peer-urls", "http://0.0.0.0:2380", "--initial-advertise-peer-urls", "http://" + h + ":2380",
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--logger", "zap", "--log-level", "warn",
		}}))
	}
	url := "etcd://" + strings.Join(endpoints, ",") + "/kerbkit"

	// The admin and client box: MIT tools, kclient, and our static kdc.
	kdcBin, err := os.ReadFile(filepath.Join(imgs.BinDir, "kdc"))
	if err != nil {
		t.Fatal(err)
	}
	box := n.Start(t, ContainerOptions{Name: "client", Image: imgs.Client, Hostname: "client", Init: true,
		Files: []ContainerFile{{Path: "/usr/local/bin/kdc", Data: kdcBin, Mode: 0o755}},
		Args:  []string{"sleep", "infinity"}})
	admin := func(stdin string, args ...string) (string, int) {
		t.Helper()
		args = append([]string{"/usr/local/bin/kdc"}, append(args, "--db", url, "--master-key", "/root/realm.mkey")...)
		out, stderr, code := box.Exec(t, nil, stdin, args...)
		return out + stderr, code
	}
	var out string
	var code int
	for range 50 { // the cluster elects its leader
		if out, code = admin("", "init", "--realm", realm); code == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("kdc init on etcd in containers: %s", out)
	}
	if out, code := admin("alice-pw\n", "principal", "add", "alice"); code != 0 {
		t.Fatalf("principal add: %s", out)
	}
	mk, err := box.ReadFile(t, "/root/realm.mkey")
	if err != nil {
		t.Fatal(err)
	}

	replica := func(name string) *Container {
		return n.Start(t, ContainerOptions{Name: name, Image: imgs.KDC, Hostname: name, HealthInterval: time.Second,
			Env: []string{"KERBKIT_DB=" + url, "KERBKIT_MASTER_KEY=/var/lib/kerbkit/realm.mkey", "KERBKIT_REALM=" + realm,
				"KERBKIT_ADMIN_LISTEN=0.0.0.0:8088"},
			Files: []ContainerFile{{Path: "/var/lib/kerbkit/realm.mkey", Data: []byte(mk), Mode: 0o600, UID: 10001, GID: 10001}},
			Args:  []string{"serve", "--listen", "0.0.0.0:88"}})
	}
	a, b := replica("kdc-a"), replica("kdc-b")
	listening := regexp.MustCompile(`listening on`)
	for _, r := range []*Container{a, b} {
		if _, err := r.WaitLog(listening, 60*time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", r.Name, err, r.Logs())
		}
	}
	conf := func(kdcs ...string) string {
		var s strings.Builder
		fmt.Fprintf(&s, "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n rdns = false\n[realms]\n %s = {\n", realm, realm)
		for _, k := range kdcs {
			fmt.Fprintf(&s, "  kdc = %s:88\n", k)
		}
		s.WriteString(" }\n")
		return s.String()
	}
	box.CopyIn(t, ContainerFile{Path: "/etc/krb5-both.conf", Data: []byte(conf("kdc-a", "kdc-b"))},
		ContainerFile{Path: "/etc/krb5-a.conf", Data: []byte(conf("kdc-a"))})
	kinit := func(conf, user, pw string) (string, int) {
		t.Helper()
		o, e, code := box.Exec(t, []string{"KRB5_CONFIG=" + conf, "KRB5CCNAME=FILE:/tmp/cc-" + user}, pw+"\n", "kinit", user)
		return o + e, code
	}
	kinitUntil := func(conf, user, pw string) {
		t.Helper()
		var out string
		for range 50 {
			var code int
			if out, code = kinit(conf, user, pw); code == 0 {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("kinit %s with %s: %s", user, conf, out)
	}
	kinitUntil("/etc/krb5-both.conf", "alice", "alice-pw")
	kinitUntil("/etc/krb5-a.conf", "alice", "alice-pw")

	healthy := func(c *Container) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := strings.TrimSpace(c.Inspect(t, "{{.State.Health.Status}}"))
			if st == "healthy" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s health: %s\n%s", c.Name, st, c.Inspect(t, "{{json .State.Health}}"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	healthy(a)
	healthy(b)

	// Cut off replica A and etcd member 2.
	n.must(t, "", "network", "disconnect", n.Name, a.Name)
	n.must(t, "", "network", "disconnect", n.Name, members[2].Name)
	if out, code := kinit("/etc/krb5-both.conf", "alice", "alice-pw"); code != 0 {
		t.Fatalf("kinit with replica A cut off: %s", out)
	}
	var addOut string
	added := false
	for range 20 { // etcd1 or etcd0 may have to elect a new leader
		if addOut, code = admin("bob-pw\n", "principal", "add", "bob"); code == 0 {
			added = true
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !added {
		t.Fatalf("principal add with an etcd member cut off: %s", addOut)
	}
	kinitUntil("/etc/krb5-both.conf", "bob", "bob-pw")
	// A, cut off from everything, still answers... nobody can reach it; it
	// says so in its health report once it is back.

	n.must(t, "", "network", "connect", "--alias", "kdc-a", n.Name, a.Name)
	n.must(t, "", "network", "connect", "--alias", "etcd2", n.Name, members[2].Name)
	kinitUntil("/etc/krb5-a.conf", "bob", "bob-pw")
	// The health report turns ok at the next answered probe (once a second).
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, code = box.Exec(t, nil, "", "curl", "-sf", "http://kdc-a:8088/healthz")
		if code == 0 && strings.Contains(out, `"status": "ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kdc-a health after reconnect: exit %d %s", code, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("kdc-a health after reconnect:\n%s", out)
	if !strings.Contains(a.Logs(), "etcd unreachable; serving logins from memory") {
		t.Errorf("kdc-a logged nothing about losing etcd:\n%s", a.Logs())
	}
	healthy(a)
}
