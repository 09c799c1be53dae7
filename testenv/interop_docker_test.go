package testenv

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dockerSite runs the interop matrix in containers on one user-defined
// network, with nothing from the host but the docker CLI:
//
//	kdc.kerbkit.test     kerbkit/kdc (kdc dev): realm KERBKIT.TEST, keytabs in the kerbkit-conf volume
//	www.kerbkit.test     kerbkit/kservice: GSS sample protocol :4444, HTTP Negotiate :8080
//	gss.kerbkit.test     MIT gss-server :4444 with its keytab from our KDC
//	apache.kerbkit.test  Apache httpd + mod_auth_gssapi :80 with its keytab from our KDC
//	kdc.mit.test         MIT krb5kdc: realm MIT.TEST, keytab in the mit-conf volume
//	gss.mit.test         MIT gss-server :4444 with its keytab from the MIT KDC
//	client.kerbkit.test  kerbkit/client: MIT kinit, klist, kvno, gss-client, curl and our kclient
//
// Every host name is only known to the network's DNS (the client's /etc/hosts
// does not have them; Realms checks that).
type dockerSite struct {
	client  *Container
	clients atomic.Int32
}

// Host names and ports of the Docker site.
const (
	dockerRealm    = "KERBKIT.TEST"
	dockerDomain   = "kerbkit.test"
	dockerMITRealm = "MIT.TEST"
	dockerMITHost  = "mit.test"
	dockerGSSPort  = "4444"
	dockerHTTPPort = "8080"
	dockerConfDir  = "/etc/kerbkit" // our KDC's output volume, read-only elsewhere
	dockerMITDir   = "/etc/mit"     // the MIT KDC's keytab volume
)

var (
	kdcReadyRE    = regexp.MustCompile(`Realm \S+ is up on (\S+) \(UDP and TCP\)`)
	mitReadyRE    = regexp.MustCompile(`commencing operation`)
	kserviceUpRE  = regexp.MustCompile(`kservice: http listening on`)
	mitSetupDieRE = regexp.MustCompile(`(?m)^MIT SETUP FAILED`)
)

func (s *dockerSite) Realms(t *testing.T, ourUsers, mitUsers []string) (ours, mit *siteRealm) {
	imgs := BuildImages(t)
	n := NewDockerNetwork(t)
	conf := n.Volume(t, "kerbkit-conf")
	mitConf := n.Volume(t, "mit-conf")
	host := func(h string) string { return h + "." + dockerDomain }
	mitHost := func(h string) string { return h + "." + dockerMITHost }

	// The MIT KDC first: making its database takes longest.
	mitKDC := startDockerMITKDC(t, n, imgs, mitHost("kdc"), mitConf, mitUsers, "host/"+mitHost("gss"))
	var userSpecs []string
	for _, u := range append([]string{UserName}, ourUsers...) {
		userSpecs = append(userSpecs, u+":"+UserPassword)
	}
	kdc := n.Start(t, ContainerOptions{
		Name: "kdc", Image: imgs.KDC, Hostname: host("kdc"),
		Volumes: []string{conf + ":" + dockerConfDir},
		Env: []string{
			"KERBKIT_REALM=" + dockerRealm,
			"KERBKIT_USERS=" + strings.Join(userSpecs, ","),
			"KERBKIT_SERVICES=" + strings.Join([]string{
				"host/" + host("www") + "=www.keytab", "HTTP/" + host("www") + "=www.keytab",
				"host/" + host("gss") + "=gss.keytab", "HTTP/" + host("apache") + "=apache.keytab"}, ","),
			"KERBKIT_MAX_RENEW=7d",
		},
	})
	if _, err := kdc.WaitLog(kdcReadyRE, StartTimeout); err != nil {
		t.Fatal(err)
	}

	www := n.Start(t, ContainerOptions{
		Name: "www", Image: imgs.KService, Hostname: host("www"),
		Volumes: []string{conf + ":" + dockerConfDir + ":ro"},
		Args:    []string{"--keytab", dockerConfDir + "/www.keytab", "--listen", "0.0.0.0:" + dockerGSSPort, "--http", "0.0.0.0:" + dockerHTTPPort},
	})
	gss := startDockerGSSServer(t, n, imgs, "gss", host("gss"), conf+":"+dockerConfDir+":ro", dockerConfDir+"/gss.keytab", dockerConfDir+"/krb5.conf")
	apache := startDockerApache(t, n, imgs, host("apache"), conf+":"+dockerConfDir+":ro", dockerConfDir+"/apache.keytab", dockerConfDir+"/krb5.conf")

	waitDockerMITKDC(t, mitKDC)
	mitGSS := startDockerGSSServer(t, n, imgs, "mit-gss", mitHost("gss"), mitConf+":"+dockerMITDir+":ro", dockerMITDir+"/gss.keytab", dockerMITDir+"/krb5.conf")

	s.client = n.Start(t, ContainerOptions{
		Name: "client", Image: imgs.Client, Hostname: host("client"), Init: true,
		Volumes: []string{conf + ":" + dockerConfDir + ":ro", mitConf + ":" + dockerMITDir + ":ro"},
		Args:    []string{"sleep", "infinity"},
	})
	if _, err := www.WaitLog(kserviceUpRE, StartTimeout); err != nil {
		t.Fatal(err)
	}
	// The acceptors accept TCP, and every service host is known to the
	// network's DNS only: not in the client's /etc/hosts.
	script := `set -e
for hp in "$@"; do
  h=${hp%:*} p=${hp##*:}
  if grep -qw "$h" /etc/hosts; then echo "$h is in /etc/hosts"; exit 1; fi
  getent hosts "$h" >/dev/null || { echo "$h does not resolve"; exit 1; }
  i=0
  until (exec 3<>"/dev/tcp/$h/$p") 2>/dev/null; do
    i=$((i+1)); [ $i -lt 200 ] || { echo "$h:$p does not accept TCP"; exit 1; }; sleep 0.1
  done
done`
	if out, stderr, code := s.client.Exec(t, nil, "", "bash", "-c", script, "wait",
		host("kdc")+":88", host("www")+":"+dockerGSSPort, host("www")+":"+dockerHTTPPort, host("gss")+":"+dockerGSSPort,
		host("apache")+":80", mitHost("kdc")+":88", mitHost("gss")+":"+dockerGSSPort); code != 0 {
		t.Fatalf("the site's hosts: %s%s", out, stderr)
	}

	ours = &siteRealm{
		Kind: "kerbkit", Name: dockerRealm, KDC: host("kdc") + ":88", Domains: []string{"." + dockerDomain}, Log: kdc.Logs,
		KService: &siteService{Host: host("www"), GSSPort: dockerGSSPort, GSSAddr: host("www") + ":" + dockerGSSPort,
			URL: "http://" + host("www") + ":" + dockerHTTPPort + "/", Keytab: dockerConfDir + "/www.keytab",
			Log: func(*testing.T) string { return www.Logs() }},
		GSSServer: &siteService{Host: host("gss"), GSSPort: dockerGSSPort, GSSAddr: host("gss") + ":" + dockerGSSPort,
			Keytab: dockerConfDir + "/gss.keytab", Log: gss.log},
		Apache: &siteService{Host: host("apache"), URL: "http://" + host("apache") + "/", Keytab: dockerConfDir + "/apache.keytab",
			Log: apache.log},
	}
	mit = &siteRealm{
		Kind: "MIT", Name: dockerMITRealm, KDC: mitHost("kdc") + ":88", Domains: []string{"." + dockerMITHost}, Log: mitKDC.Logs,
		GSSServer: &siteService{Host: mitHost("gss"), GSSPort: dockerGSSPort, GSSAddr: mitHost("gss") + ":" + dockerGSSPort,
			Keytab: dockerMITDir + "/gss.keytab", Log: mitGSS.log},
	}
	return ours, mit
}

func (s *dockerSite) Client(t *testing.T, r *siteRealm, o EnvOptions) siteClient {
	dir := fmt.Sprintf("/tmp/client%d", s.clients.Add(1))
	s.client.CopyIn(t, ContainerFile{Path: dir + "/krb5.conf", Data: []byte(KRB5Conf(r.Name, r.KDC, o))})
	return &dockerClient{c: s.client, dir: dir, env: []string{
		"KRB5_CONFIG=" + dir + "/krb5.conf",
		"KRB5CCNAME=FILE:" + dir + "/ccache",
		"KRB5_TRACE=" + dir + "/trace.log",
		"KRB5RCACHETYPE=none",
		"LC_ALL=C",
	}}
}

// dockerClient runs peers in the client container with its own files.
type dockerClient struct {
	c   *Container
	dir string
	env []string
}

func (c *dockerClient) Run(t *testing.T, stdin, tool string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return c.c.Exec(t, c.env, stdin, append([]string{tool}, args...)...)
}

func (c *dockerClient) Trace(t *testing.T) string {
	s, _ := c.c.ReadFile(t, c.dir+"/trace.log")
	return s
}

// dockerAcceptor is an acceptor container whose log is a file in it.
type dockerAcceptor struct {
	*Container
	logFile string
}

func (a *dockerAcceptor) log(t *testing.T) string {
	s, err := a.ReadFile(t, a.logFile)
	if err != nil {
		return err.Error()
	}
	return s
}

// startDockerGSSServer runs MIT's gss-server for host@HOST with keytab, on
// port 4444 of every address of its container.
func startDockerGSSServer(t *testing.T, n *DockerNetwork, imgs DockerImages, name, hostname, volume, keytab, krb5conf string) *dockerAcceptor {
	t.Helper()
	c := n.Start(t, ContainerOptions{
		Name: name, Image: imgs.MIT, Hostname: hostname, Init: true, Volumes: []string{volume},
		Env:  []string{"KRB5_CONFIG=" + krb5conf, "KRB5RCACHETYPE=none", "KRB5_TRACE=/tmp/gss-server.trace", "LC_ALL=C"},
		Args: []string{"gss-server", "-port", dockerGSSPort, "-keytab", keytab, "-logfile", "/tmp/gss-server.log", "host@" + hostname},
	})
	t.Cleanup(func() {
		if t.Failed() {
			tr, _ := c.ReadFile(t, "/tmp/gss-server.trace")
			t.Logf("---- gss-server %s KRB5_TRACE ----\n%s", hostname, tail(tr, 8000))
		}
	})
	return &dockerAcceptor{Container: c, logFile: "/tmp/gss-server.log"}
}

// startDockerApache runs Apache httpd with mod_auth_gssapi as hostname on port
// 80, with the same httpd.conf as the native tests; the keytab is copied for
// the www-data workers before httpd starts.
func startDockerApache(t *testing.T, n *DockerNetwork, imgs DockerImages, hostname, volume, keytab, krb5conf string) *dockerAcceptor {
	t.Helper()
	const root = "/srv/apache"
	start := `set -e
install -o www-data -g www-data -m 0400 "$1" ` + root + `/http.keytab
mkdir -p ` + root + `/logs && chown www-data:www-data ` + root + `/logs
exec apache2 -f ` + root + `/httpd.conf -DFOREGROUND`
	c := n.Start(t, ContainerOptions{
		Name: "apache", Image: imgs.MIT, Hostname: hostname, Init: true, Volumes: []string{volume},
		Env: []string{"KRB5_CONFIG=" + krb5conf, "KRB5RCACHETYPE=none", "KRB5_TRACE=" + root + "/logs/krb5.trace", "LC_ALL=C"},
		Files: []ContainerFile{
			{Path: root + "/httpd.conf", Data: []byte(apacheConf(root, "0.0.0.0:80", hostname, root+"/http.keytab"))},
			{Path: root + "/htdocs/index.txt", Data: []byte("hello negotiate\n")},
			{Path: root + "/start.sh", Data: []byte(start), Mode: 0o755},
		},
		Args: []string{"sh", root + "/start.sh", keytab},
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"error.log", "krb5.trace"} {
				s, _ := c.ReadFile(t, root+"/logs/"+f)
				t.Logf("---- Apache %s %s ----\n%s", hostname, f, tail(s, 8000))
			}
		}
	})
	return &dockerAcceptor{Container: c, logFile: root + "/logs/access.log"}
}

// startDockerMITKDC runs MIT krb5kdc for MIT.TEST as hostname: the database is
// made with kdb5_util and kadmin.local (the users with UserPassword, service
// with random keys, its keytab to gss.keytab in the volume) by the same
// kdc.conf the native MIT realm uses, then `krb5kdc -n` logs to stderr. The
// database is on a tmpfs: MIT's db2 backend syncs every write, which costs
// hundreds of milliseconds per principal on a loaded overlay file system.
func startDockerMITKDC(t *testing.T, n *DockerNetwork, imgs DockerImages, hostname, volume string, users []string, service string) *Container {
	t.Helper()
	const dir, db = "/etc/mitkdc", "/var/lib/mitkdc"
	o := MITRealmOptions{Name: dockerMITRealm, Enctypes: interopMITEnctypes}.withDefaults()
	var kadmin strings.Builder
	for _, u := range append([]string{UserName}, users...) {
		fmt.Fprintf(&kadmin, "addprinc -pw %s %s\n", UserPassword, u) // on kadmin.local's stdin, not in argv
	}
	fmt.Fprintf(&kadmin, "addprinc -randkey %s\nktadd -k %s/gss.keytab %s\n", service, dockerMITDir, service)
	setup := `set -u
fail() { echo "MIT SETUP FAILED: $*"; cat /tmp/setup.log; exit 1; }
: >` + db + `/kadm5.acl
kdb5_util create -s -r ` + dockerMITRealm + ` -P kerbkit-master >/tmp/setup.log 2>&1 || fail kdb5_util
kadmin.local -r ` + dockerMITRealm + ` <` + dir + `/kadmin.txt >>/tmp/setup.log 2>&1 || fail kadmin.local
if grep -E 'while |Unknown request|usage:' /tmp/setup.log; then fail kadmin.local; fi
[ -s ` + dockerMITDir + `/gss.keytab ] || fail ktadd
cp ` + dir + `/krb5.conf ` + dockerMITDir + `/krb5.conf
exec krb5kdc -n -r ` + dockerMITRealm
	c := n.Start(t, ContainerOptions{
		Name: "mit-kdc", Image: imgs.MIT, Hostname: hostname, Init: true,
		Volumes: []string{volume + ":" + dockerMITDir}, Tmpfs: []string{db},
		Env: []string{"KRB5_CONFIG=" + dir + "/krb5.conf", "KRB5_KDC_PROFILE=" + dir + "/kdc.conf", "KRB5RCACHETYPE=none", "LC_ALL=C"},
		Files: []ContainerFile{
			{Path: dir + "/kdc.conf", Data: []byte(mitKDCConf(dockerMITRealm, "88", db, "STDERR", o))},
			{Path: dir + "/krb5.conf", Data: []byte(KRB5Conf(dockerMITRealm, hostname+":88", EnvOptions{Domains: []string{"." + dockerMITHost}}))},
			{Path: dir + "/kadmin.txt", Data: []byte(kadmin.String()), Mode: 0o600},
			{Path: dir + "/setup.sh", Data: []byte(setup), Mode: 0o755},
		},
		Args: []string{"sh", dir + "/setup.sh"},
	})
	return c
}

// waitDockerMITKDC waits until the MIT KDC serves, or fails the test with its
// setup log.
func waitDockerMITKDC(t *testing.T, c *Container) {
	t.Helper()
	// Creating the database and the users can take seconds on a loaded machine.
	const wait = 3 * StartTimeout
	for {
		if mitSetupDieRE.MatchString(c.Logs()) {
			t.Fatalf("MIT KDC setup failed:\n%s", c.Logs())
		}
		if mitReadyRE.MatchString(c.Logs()) {
			t.Logf("MIT krb5kdc %s ready %v after its start", c.Hostname, time.Since(c.Started()).Round(time.Millisecond))
			return
		}
		if time.Since(c.Started()) > wait {
			log, _ := c.ReadFile(t, "/tmp/setup.log")
			t.Fatalf("MIT krb5kdc in %s not ready after %v:\n%s\n---- setup.log ----\n%s", c.Name, wait, c.Logs(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
