package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The container images themselves, as a user meets them: docker run of
// kerbkit/kdc, MIT kinit by host name in the MIT image, the health check,
// SIGTERM, a restart on the same volumes, and the compose example.

// readyAfter parses the time from `docker start` to the KDC's ready line using
// the engine's own timestamps (State.StartedAt and docker logs -t).
func readyAfter(t testing.TB, c *Container, line *regexp.Regexp) time.Duration {
	t.Helper()
	started, err := time.Parse(time.RFC3339Nano, c.Inspect(t, "{{.State.StartedAt}}"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := c.net.run(t, "", "logs", "-t", c.Name)
	for _, l := range strings.Split(out, "\n") {
		if ts, rest, ok := strings.Cut(l, " "); ok && line.MatchString(rest) {
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				t.Fatal(err)
			}
			return at.Sub(started)
		}
	}
	t.Fatalf("no line matching %q in the logs of %s", line, c.Name)
	return 0
}

// processUID returns the UID the container's main process runs as, from the
// host's view (docker top).
func processUID(t *testing.T, c *Container) string {
	t.Helper()
	out := c.net.must(t, "", "top", c.Name, "-o", "pid,uid,comm")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || len(strings.Fields(lines[1])) < 2 {
		t.Fatalf("docker top %s: %q", c.Name, out)
	}
	return strings.Fields(lines[1])[1]
}

// TestDockerKDCImage: docker run of kerbkit/kdc configured by environment
// serves a realm that MIT kinit in the client image logs in to by host name,
// and password changes from MIT kpasswd and kclient passwd on port 464; it
// runs as uid 10001, writes krb5.conf, keytabs and realm.json to its volume,
// becomes healthy by its own HEALTHCHECK, stops with exit 0 on SIGTERM, and a
// new container on the same volumes keeps the realm, its keys and principals
// added while it ran. Flags after the image work too.
func TestDockerKDCImage(t *testing.T) {
	imgs := BuildImages(t)
	n := NewDockerNetwork(t)
	db, out := n.Volume(t, "db"), n.Volume(t, "out")
	kdcOpts := ContainerOptions{
		Name: "kdc", Image: imgs.KDC, Hostname: "kdc.example.test", HealthInterval: 500 * time.Millisecond,
		Volumes: []string{db + ":/var/lib/kerbkit", out + ":/etc/kerbkit"},
		Env: []string{"KERBKIT_REALM=EXAMPLE.TEST", "KERBKIT_USERS=bob:bob-Pw-1", "KERBKIT_SERVICES=HTTP/www.example.test",
			"KERBKIT_ENCTYPES=aes256-cts,aes256-sha2", "KERBKIT_MAX_LIFE=10h"},
	}
	kdc := n.Start(t, kdcOpts)
	if _, err := kdc.WaitLog(kdcReadyRE, StartTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("kerbkit/kdc: ready %v after the container started (engine timestamps)", readyAfter(t, kdc, kdcReadyRE))
	if uid := processUID(t, kdc); uid != "10001" {
		t.Errorf("the KDC runs as uid %s, want 10001", uid)
	}

	client := n.Start(t, ContainerOptions{Name: "client", Image: imgs.Client, Hostname: "client.example.test", Init: true,
		Volumes: []string{out + ":/etc/kerbkit:ro"}, Args: []string{"sleep", "infinity"}})
	env := []string{"KRB5_CONFIG=/etc/kerbkit/krb5.conf", "KRB5CCNAME=FILE:/tmp/cc", "LC_ALL=C"}
	mustExec := func(stdin string, args ...string) string {
		t.Helper()
		stdout, stderr, code := client.Exec(t, env, stdin, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	// What the KDC wrote: the krb5.conf it wrote names it by host name, and the
	// files belong to uid 10001, the keytab and realm.json private.
	conf := mustExec("", "cat", "/etc/kerbkit/krb5.conf")
	wantContains(t, "krb5.conf", conf, "default_realm = EXAMPLE.TEST", "kdc = kdc.example.test:88", ".example.test = EXAMPLE.TEST")
	wantContains(t, "the volume", mustExec("", "stat", "-c", "%n %u %a", "/etc/kerbkit/krb5.conf", "/etc/kerbkit/service.keytab", "/etc/kerbkit/realm.json"),
		"/etc/kerbkit/krb5.conf 10001 644", "/etc/kerbkit/service.keytab 10001 600", "/etc/kerbkit/realm.json 10001 600")
	var info struct {
		Realm    string `json:"realm"`
		KDC      string `json:"kdc"`
		MaxLife  int    `json:"max_life_seconds"`
		Services []struct{ Principal string }
	}
	if err := json.Unmarshal([]byte(mustExec("", "cat", "/etc/kerbkit/realm.json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Realm != "EXAMPLE.TEST" || info.KDC != "kdc.example.test:88" || info.MaxLife != 36000 || len(info.Services) != 1 {
		t.Errorf("realm.json: %+v", info)
	}

	// MIT kinit by host name (the network's DNS), over UDP and TCP; the
	// service ticket decrypts with the exported keytab; the enctypes are the
	// ones asked for.
	mustExec("bob-Pw-1\n", "kinit", "bob")
	klist := mustExec("", "klist", "-e")
	wantContains(t, "klist -e", klist, "Default principal: bob@EXAMPLE.TEST", "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST")
	wantContains(t, "kvno -k", mustExec("", "kvno", "-k", "/etc/kerbkit/service.keytab", "HTTP/www.example.test"), "keytab entry valid")
	wantContains(t, "klist -k -e", mustExec("", "klist", "-k", "-e", "/etc/kerbkit/service.keytab"),
		"HTTP/www.example.test@EXAMPLE.TEST (aes256-cts-hmac-sha1-96)", "HTTP/www.example.test@EXAMPLE.TEST (aes256-cts-hmac-sha384-192)")
	if strings.Contains(mustExec("", "klist", "-k", "-e", "/etc/kerbkit/service.keytab"), "aes128") {
		t.Error("KERBKIT_ENCTYPES=aes256-cts,aes256-sha2 exported aes128 keys")
	}
	tcpEnv := append(append([]string(nil), env...), "KRB5_TRACE=/dev/stderr")
	mustExec("", "sh", "-c", `sed 's/udp_preference_limit = 1465/udp_preference_limit = 1/' /etc/kerbkit/krb5.conf >/tmp/tcp.conf`)
	if _, stderr, code := client.Exec(t, append(tcpEnv, "KRB5_CONFIG=/tmp/tcp.conf"), "bob-Pw-1\n", "kinit", "bob"); code != 0 ||
		!strings.Contains(stderr, "Sending TCP request to stream") {
		t.Errorf("kinit over TCP: exit %d\n%s", code, stderr)
	}
	// Password changes from the client container to the KDC container's port
	// 464 (RFC 3244): MIT kpasswd (which uses TCP), then kclient passwd (UDP
	// first). Each time the new password logs in and the old one no longer
	// does, and the KDC logs the change with its transport.
	wantContains(t, "krb5.conf", conf, "kpasswd_server = kdc.example.test:464")
	for i, c := range []struct {
		cmd          []string
		old, new, tr string
	}{
		{[]string{"kpasswd", "bob"}, "bob-Pw-1", "bob-Docker-Pw-2", "tcp"},
		{[]string{"kclient", "passwd", "bob", "--password-file", "-"}, "bob-Docker-Pw-2", "bob-Docker-Pw-3", "udp"},
	} {
		stdout, stderr, code := client.Exec(t, env, c.old+"\n"+c.new+"\n"+c.new+"\n", c.cmd...)
		if code != 0 || !strings.Contains(stdout, "Password changed") {
			t.Fatalf("%s: exit %d: %s%s", strings.Join(c.cmd, " "), code, stdout, stderr)
		}
		if _, _, code := client.Exec(t, env, c.old+"\n", "kinit", "bob"); code == 0 {
			t.Errorf("kinit with the password %s replaced succeeded", c.cmd[0])
		}
		mustExec(c.new+"\n", "kinit", "bob")
		if n := strings.Count(kdc.Logs(), "msg=kpasswd transport="+c.tr); n != 1 {
			t.Errorf("change %d: the KDC logged %d kpasswd changes over %s, want 1:\n%s", i, n, c.tr, kdc.Logs())
		}
	}
	const bobPw = "bob-Docker-Pw-3"
	// The keytab as it was before the restart.
	mustExec("", "cp", "/etc/kerbkit/service.keytab", "/tmp/before.keytab")

	// The image's own HEALTHCHECK (kdc probe) turns healthy.
	deadline := time.Now().Add(StartTimeout)
	for {
		status := kdc.Inspect(t, "{{.State.Health.Status}}")
		if status == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %q after %v: %s", status, StartTimeout, kdc.Inspect(t, "{{json .State.Health}}"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A principal added while serving (through the admin socket) and kept.
	if stdout, stderr, code := kdc.Exec(t, nil, "carol-Pw-2\n", "kdc", "principal", "add", "carol"); code != 0 {
		t.Fatalf("kdc principal add carol in the container: exit %d: %s%s", code, stdout, stderr)
	}

	// SIGTERM: a clean exit 0, quickly.
	start := time.Now()
	if code := kdc.Stop(t, 10*time.Second); code != 0 {
		t.Errorf("kerbkit/kdc exited %d on SIGTERM, want 0", code)
	}
	t.Logf("kerbkit/kdc stopped %v after docker stop", time.Since(start).Round(time.Millisecond))
	if _, err := kdc.WaitLog(regexp.MustCompile(`kdc: stopped`), StartTimeout); err != nil {
		t.Error(err)
	}
	kdc.Remove(t)

	// A new container on the same volumes: the same realm, keys and users.
	kdc2 := n.Start(t, kdcOpts)
	if _, err := kdc2.WaitLog(kdcReadyRE, StartTimeout); err != nil {
		t.Fatal(err)
	}
	wantContains(t, "restarted KDC output", kdc2.Logs(), "bob@EXAMPLE.TEST exists", "kept as it is")
	mustExec("carol-Pw-2\n", "kinit", "carol")
	mustExec(bobPw+"\n", "kinit", "bob") // the password kpasswd set survived the restart
	wantContains(t, "kvno -k with the keytab from before the restart",
		mustExec("", "kvno", "-k", "/tmp/before.keytab", "HTTP/www.example.test"), "keytab entry valid")
	// The keys are the same (only the entries' timestamps are new).
	keys := func(kt string) string {
		_, rest, _ := strings.Cut(mustExec("", "klist", "-k", "-K", "-e", kt), "\n") // past "Keytab name: …"
		return rest
	}
	if before, after := keys("/tmp/before.keytab"), keys("/etc/kerbkit/service.keytab"); before != after || !strings.Contains(after, "(0x") {
		t.Errorf("the keys changed across the restart:\n%s\n---\n%s", before, after)
	}

	// Flags after the image (CMD replaced) configure it as well; --json.
	flags := n.Start(t, ContainerOptions{Name: "flags", Image: imgs.KDC, Hostname: "kdc2.example.test",
		Args: []string{"dev", "--realm", "FLAGS.TEST", "--user", "dave:dave-Pw-3", "--json"}})
	m, err := flags.WaitLog(regexp.MustCompile(`(?m)^(\{"realm".*\})$`), StartTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m[1], `"realm":"FLAGS.TEST"`) || !strings.Contains(m[1], `"kdc":"kdc2.example.test:88"`) || !strings.Contains(m[1], `"user":"dave@FLAGS.TEST"`) {
		t.Errorf("kdc dev --json in the container: %s", m[1])
	}
}

// TestDockerKserviceImage: kerbkit/kservice runs as uid 10001 on the keytab the
// KDC container wrote, authenticates an MIT client by host name, and stops
// with exit 0 on SIGTERM.
func TestDockerKserviceImage(t *testing.T) {
	imgs := BuildImages(t)
	n := NewDockerNetwork(t)
	out := n.Volume(t, "out")
	kdc := n.Start(t, ContainerOptions{Name: "kdc", Image: imgs.KDC, Hostname: "kdc.kerbkit.test",
		Volumes: []string{out + ":/etc/kerbkit"}, Env: []string{"KERBKIT_SERVICES=host/svc.kerbkit.test,HTTP/svc.kerbkit.test"}})
	if _, err := kdc.WaitLog(kdcReadyRE, StartTimeout); err != nil {
		t.Fatal(err)
	}
	svc := n.Start(t, ContainerOptions{Name: "svc", Image: imgs.KService, Hostname: "svc.kerbkit.test",
		Volumes: []string{out + ":/etc/kerbkit:ro"}}) // the image's defaults: KRB5_KTNAME, :4444 and :8080
	if _, err := svc.WaitLog(kserviceUpRE, StartTimeout); err != nil {
		t.Fatal(err)
	}
	if uid := processUID(t, svc); uid != "10001" {
		t.Errorf("kservice runs as uid %s, want 10001", uid)
	}
	client := n.Start(t, ContainerOptions{Name: "client", Image: imgs.MIT, Init: true,
		Volumes: []string{out + ":/etc/kerbkit:ro"}, Args: []string{"sleep", "infinity"}})
	env := []string{"KRB5_CONFIG=/etc/kerbkit/krb5.conf", "KRB5CCNAME=FILE:/tmp/cc"}
	script := `set -e
echo kerbkit-dev | kinit alice >/dev/null
for i in $(seq 100); do (exec 3<>/dev/tcp/svc.kerbkit.test/8080) 2>/dev/null && break; sleep 0.1; done
curl -fsS --negotiate -u : http://svc.kerbkit.test:8080/
gss-client -port 4444 svc.kerbkit.test host@svc.kerbkit.test "hello kservice"`
	stdout, stderr, code := client.Exec(t, env, "", "bash", "-c", script)
	if code != 0 {
		t.Fatalf("client: exit %d\n%s%s", code, stdout, stderr)
	}
	wantContains(t, "client output", stdout, "hello alice@KERBKIT.TEST", "Signature verified")
	if code := svc.Stop(t, 10*time.Second); code != 0 {
		t.Errorf("kerbkit/kservice exited %d on SIGTERM, want 0", code)
	}
	if _, err := svc.WaitLog(regexp.MustCompile(`kservice: stopped`), StartTimeout); err != nil {
		t.Error(err)
	}
}

// composeCommand finds Compose: docker-compose, or the docker compose plugin.
func composeCommand(t *testing.T) []string {
	t.Helper()
	docker := RequireDocker(t)
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if err := exec.Command(docker, "compose", "version").Run(); err == nil {
		return []string{docker, "compose"}
	}
	unavailable(t, "neither docker-compose nor the docker compose plugin is installed (apt-get install -y docker-compose)")
	return nil
}

// TestDockerCompose: `docker-compose up` of examples/compose authenticates end
// to end: the client container logs in with MIT kinit and gets mutual
// authentication from kservice (gss-client, kclient over HTTP) and from Apache
// (kclient checks its AP-REP); the project is taken down with its volumes.
func TestDockerCompose(t *testing.T) {
	imgs := BuildImages(t)
	compose := composeCommand(t)
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples", "compose")
	project := fmt.Sprintf("%scompose-%d", DockerPrefix, os.Getpid())
	env := ClientEnviron(map[string]string{
		"KERBKIT_KDC_IMAGE": imgs.KDC, "KERBKIT_KSERVICE_IMAGE": imgs.KService,
		"KERBKIT_MIT_IMAGE": imgs.MIT, "KERBKIT_CLIENT_IMAGE": imgs.Client,
	})
	run := func(args ...string) (string, string, int) {
		t.Helper()
		a := append(append(append([]string(nil), compose[1:]...), "-p", project, "--project-directory", dir, "-f", filepath.Join(dir, "docker-compose.yml")), args...)
		return RunTimeout(t, 5*time.Minute, env, "", compose[0], a...)
	}
	t.Cleanup(func() {
		if _, stderr, code := run("down", "-v", "--remove-orphans"); code != 0 {
			t.Errorf("docker-compose down: %s", stderr)
		}
	})
	start := time.Now()
	stdout, stderr, code := run("up", "--no-color", "--exit-code-from", "client")
	if code != 0 {
		t.Fatalf("docker-compose up: exit %d\n%s\n%s", code, tail(stdout, 12000), tail(stderr, 4000))
	}
	t.Logf("docker-compose up took %v", time.Since(start).Round(time.Millisecond))
	wantContains(t, "docker-compose up output", stdout,
		"Signature verified",
		"hello alice@KERBKIT.TEST",
		"hello negotiate",
		"authenticated as alice@KERBKIT.TEST to HTTP/www.kerbkit.test@KERBKIT.TEST (mutual: server proved it holds the service key)",
		"authenticated as alice@KERBKIT.TEST to HTTP/apache.kerbkit.test@KERBKIT.TEST (mutual: server proved it holds the service key)",
		"client: alice authenticated to www.kerbkit.test and apache.kerbkit.test")
}

// BenchmarkDockerKDCStart measures `docker run` of kerbkit/kdc to a realm that
// answers: ns/op is the wall time from docker create to the ready line on the
// followed output, ready-ms/op the container's own start-to-ready by the
// engine's timestamps (kdc dev creating the realm, its user, services and
// keytab, and binding UDP and TCP 88). Run it with -benchtime=10x.
func BenchmarkDockerKDCStart(b *testing.B) {
	imgs := BuildImages(b)
	n := NewDockerNetwork(b)
	var inside time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := n.Start(b, ContainerOptions{Name: fmt.Sprintf("kdc%d", i), Image: imgs.KDC, Hostname: "kdc.kerbkit.test"})
		if _, err := c.WaitLog(kdcReadyRE, StartTimeout); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		inside += readyAfter(b, c, kdcReadyRE)
		c.Remove(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(inside.Microseconds())/1000/float64(b.N), "ready-ms/op")
}

// TestDockerSweep: what a killed test process of this host left behind (its
// PID is gone) is removed by the next run's sweep; what a live process owns is
// not touched.
func TestDockerSweep(t *testing.T) {
	docker := RequireDocker(t)
	// A PID that is surely not running: a child that has exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	deadOwner := fmt.Sprintf("%s/%d", host, cmd.Process.Pid)
	n := NewDockerNetwork(t) // owned by this (live) process
	dead := n.Name + "-left-behind"
	n.must(t, "", "network", "create", "--label", ownerLabel+"="+deadOwner, dead)
	t.Cleanup(func() { _, _, _ = n.run(t, "", "network", "rm", dead) })
	vol := n.Name + "-left-behind"
	n.must(t, "", "volume", "create", "--label", ownerLabel+"="+deadOwner, vol)
	t.Cleanup(func() { _, _, _ = n.run(t, "", "volume", "rm", "-f", vol) })

	sweepDocker(docker)
	nets := n.must(t, "", "network", "ls", "--format", "{{.Name}}")
	if strings.Contains(nets, dead) {
		t.Errorf("the sweep left network %s of dead owner %s", dead, deadOwner)
	}
	if !strings.Contains(nets, n.Name+"\n") {
		t.Errorf("the sweep removed network %s of this live process", n.Name)
	}
	if vols := n.must(t, "", "volume", "ls", "--format", "{{.Name}}"); strings.Contains(vols, vol) {
		t.Errorf("the sweep left volume %s of dead owner %s", vol, deadOwner)
	}
}
