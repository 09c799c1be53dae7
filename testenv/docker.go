package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Docker mode: our KDC and service and the MIT peers in containers on a
// user-defined network, with real host names resolved by the network's DNS.
// Everything goes through the docker CLI (no bind mounts, no published ports),
// so it works with a remote engine too. Containers, networks and volumes are
// named with a random prefix ([DockerPrefix]…), labelled with the owning
// process and removed in t.Cleanup, also when the test fails; images stay.

// Bounds of the Docker mode.
const (
	// DockerPrefix starts the name of every container, network and volume.
	DockerPrefix = "kerbkit-it-"
	// DockerTimeout bounds one docker CLI command (create, exec, rm, …).
	DockerTimeout = 90 * time.Second
	// ImageBuildTimeout bounds docker/build-images.sh (a cold debootstrap).
	ImageBuildTimeout = 20 * time.Minute
	// ownerLabel marks what testenv created with "HOST/PID" of its process.
	ownerLabel = "kerbkit.testenv.owner"
)

// dockerPath finds the docker CLI.
func dockerPath() (string, error) {
	p, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("docker CLI not found on PATH: %w", err)
	}
	return p, nil
}

// dockerUp holds the result of the one `docker info` per process.
var dockerUp struct {
	once sync.Once
	path string
	err  error
}

// RequireDocker returns the docker CLI once the engine answers. Without
// Docker the test is skipped with a message, or fails when CI=true.
func RequireDocker(t testing.TB) string {
	t.Helper()
	dockerUp.once.Do(func() {
		p, err := dockerPath()
		if err != nil {
			dockerUp.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, p, "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err != nil {
			dockerUp.err = fmt.Errorf("docker info: %v: %s", err, strings.TrimSpace(string(out)))
			return
		}
		dockerUp.path = p
		sweepDocker(p)
	})
	if dockerUp.err != nil {
		unavailable(t, "Docker is not available, so the Docker interop suite cannot run (install Docker Engine and start it): %v", dockerUp.err)
	}
	return dockerUp.path
}

// DockerImages are the images docker/build-images.sh built, by content-hash
// tag, so a test uses exactly the images of the code under test.
type DockerImages struct {
	KDC      string // kerbkit/kdc:<hash>
	KService string // kerbkit/kservice:<hash>
	MIT      string // kerbkit/mit-krb5:bookworm-<hash>
	Client   string // kerbkit/client:<hash> (MIT tools + kclient)
	Etcd     string // kerbkit/etcd:<hash>, or "" when no etcd binary was installed
	BinDir   string // the static binaries the images hold
}

var imagesBuilt struct {
	once sync.Once
	imgs DockerImages
	err  error
	skip bool   // a prerequisite is missing (no root, no debootstrap)
	out  string // the script's progress and summary (stderr)
}

// BuildImages runs docker/build-images.sh once per test binary (seconds when
// nothing changed: images are tagged by a hash of their inputs) and returns
// the images. A missing prerequisite of the MIT image (root, debootstrap) skips
// the test, or fails it when CI=true; any other failure fails it.
func BuildImages(t testing.TB) DockerImages {
	t.Helper()
	RequireDocker(t)
	imagesBuilt.once.Do(func() {
		start := time.Now()
		buildImages()
		t.Logf("docker/build-images.sh took %v:\n%s", time.Since(start).Round(time.Millisecond), tail(imagesBuilt.out, 2000))
	})
	if imagesBuilt.err != nil {
		if imagesBuilt.skip {
			unavailable(t, "%v", imagesBuilt.err)
		}
		t.Fatalf("building the images: %v", imagesBuilt.err)
	}
	return imagesBuilt.imgs
}

func buildImages() {
	root, err := ModuleRoot()
	if err != nil {
		imagesBuilt.err = err
		return
	}
	script := filepath.Join(root, "docker", "build-images.sh")
	ctx, cancel := context.WithTimeout(context.Background(), ImageBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = childAttr(true)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	if err != nil {
		imagesBuilt.err = fmt.Errorf("%s (%v): %v\n%s", script, time.Since(start).Round(time.Second), err, tail(stderr.String(), 6000))
		imagesBuilt.skip = exitCode(err) == 3
		return
	}
	imagesBuilt.out = stderr.String()
	refs := map[string]string{}
	for _, l := range strings.Split(stdout.String(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			refs[k] = v
		}
	}
	imagesBuilt.imgs = DockerImages{KDC: refs["kdc"], KService: refs["kservice"], MIT: refs["mit"], Client: refs["client"], Etcd: refs["etcd"], BinDir: refs["bin"]}
	if imagesBuilt.imgs.KDC == "" || imagesBuilt.imgs.MIT == "" || imagesBuilt.imgs.Client == "" || imagesBuilt.imgs.KService == "" {
		imagesBuilt.err = fmt.Errorf("%s printed no image references:\n%s", script, stdout.String())
	}
}

// owner is this process's label value.
func owner() string {
	h, _ := os.Hostname()
	return h + "/" + strconv.Itoa(os.Getpid())
}

// sweepDocker removes containers, networks and volumes that an earlier test
// process on this host created and could not clean up (it was killed, e.g. by
// a go test timeout): those whose owner label names this host and a PID that is
// no longer running. Nothing of a live process is touched.
func sweepDocker(docker string) {
	host, _ := os.Hostname()
	dead := func(o string) bool {
		h, pid, ok := strings.Cut(o, "/")
		n, err := strconv.Atoi(pid)
		if !ok || h != host || err != nil || n <= 0 {
			return false
		}
		return errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
	}
	list := func(args ...string) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, docker, args...).Output()
		if err != nil {
			return nil
		}
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if name, o, ok := strings.Cut(l, "|"); ok && strings.HasPrefix(name, DockerPrefix) && dead(o) {
				names = append(names, name)
			}
		}
		return names
	}
	format := `{{.Names}}|{{.Label "` + ownerLabel + `"}}`
	filter := "label=" + ownerLabel
	steps := []struct {
		rm    []string
		names []string
	}{
		{[]string{"rm", "-f", "-v"}, list("ps", "-a", "--filter", filter, "--format", format)},
		{[]string{"network", "rm"}, list("network", "ls", "--filter", filter, "--format", strings.Replace(format, ".Names", ".Name", 1))},
		{[]string{"volume", "rm", "-f"}, list("volume", "ls", "--filter", filter, "--format", strings.Replace(format, ".Names", ".Name", 1))},
	}
	for _, s := range steps {
		if len(s.names) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), DockerTimeout)
		_ = exec.CommandContext(ctx, docker, append(s.rm, s.names...)...).Run()
		cancel()
	}
}

// DockerNetwork is a user-defined bridge network: containers on it reach each
// other by host name and network alias through Docker's DNS.
type DockerNetwork struct {
	Name   string // PREFIX + random hex
	docker string
}

// NewDockerNetwork creates a network with a unique name, removed in
// t.Cleanup after the containers on it (cleanups run last-in first-out).
func NewDockerNetwork(t testing.TB) *DockerNetwork {
	t.Helper()
	docker := RequireDocker(t)
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := &DockerNetwork{Name: DockerPrefix + hex.EncodeToString(b[:]), docker: docker}
	n.must(t, "", "network", "create", "--label", ownerLabel+"="+owner(), n.Name)
	t.Cleanup(func() {
		if _, stderr, code := n.run(t, "", "network", "rm", n.Name); code != 0 {
			t.Errorf("docker network rm %s: %s", n.Name, strings.TrimSpace(stderr))
		}
	})
	return n
}

// run runs the docker CLI, bounded by DockerTimeout, logging it as [Run] does.
func (n *DockerNetwork) run(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return RunTimeout(t, DockerTimeout, nil, stdin, n.docker, args...)
}

// must runs the docker CLI and fails the test unless it exits 0.
func (n *DockerNetwork) must(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, code := n.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	return stdout
}

// Volume creates a named volume NETWORK-name, removed in t.Cleanup, and
// returns its name. A fresh volume mounted where the image has a directory
// takes that directory's contents, owner and mode.
func (n *DockerNetwork) Volume(t testing.TB, name string) string {
	t.Helper()
	v := n.Name + "-" + name
	n.must(t, "", "volume", "create", "--label", ownerLabel+"="+owner(), v)
	t.Cleanup(func() {
		if _, stderr, code := n.run(t, "", "volume", "rm", "-f", v); code != 0 {
			t.Errorf("docker volume rm %s: %s", v, strings.TrimSpace(stderr))
		}
	})
	return v
}

// ContainerFile is a file copied into a container before it starts.
type ContainerFile struct {
	Path     string // absolute path in the container
	Data     []byte
	Mode     int64 // default 0644
	UID, GID int
}

// ContainerOptions describe a container for [DockerNetwork.Start].
type ContainerOptions struct {
	Name     string   // short name; the container is NETWORK-Name
	Image    string   // image reference
	Hostname string   // host name, also a network alias (resolvable by the others)
	Aliases  []string // more network aliases
	Env      []string // KEY=VALUE
	Volumes  []string // VOLUME:/path[:ro]
	Tmpfs    []string // directories on a tmpfs (empty at start: Files must not go there)
	Files    []ContainerFile
	User     string // --user, default the image's
	// HealthInterval, when set, runs the image's HEALTHCHECK that often (and
	// from the start), so a test need not wait for the image's interval.
	HealthInterval time.Duration
	Init           bool     // --init: a PID 1 that reaps and forwards signals (for `sleep infinity`)
	Args           []string // the command (after the image)
	// Entrypoint replaces the image's entrypoint when set.
	Entrypoint string
}

// Container is a running container; its output is followed (docker logs -f)
// from the start.
type Container struct {
	Name     string
	Hostname string
	Image    string
	net      *DockerNetwork
	logs     *Process
	started  time.Time
	removed  bool
}

// Start creates the container, copies Files in, starts it and follows its
// output. In t.Cleanup it is removed (docker rm -f, with its anonymous
// volumes) and, if the test failed, its output is written to the test log.
func (n *DockerNetwork) Start(t testing.TB, o ContainerOptions) *Container {
	t.Helper()
	c := &Container{Name: n.Name + "-" + o.Name, Hostname: o.Hostname, Image: o.Image, net: n}
	args := []string{"create", "--name", c.Name, "--network", n.Name, "--label", ownerLabel + "=" + owner()}
	if o.Hostname != "" {
		args = append(args, "--hostname", o.Hostname, "--network-alias", o.Hostname)
	}
	for _, a := range o.Aliases {
		args = append(args, "--network-alias", a)
	}
	for _, e := range o.Env {
		args = append(args, "-e", e)
	}
	for _, v := range o.Volumes {
		args = append(args, "-v", v)
	}
	for _, d := range o.Tmpfs {
		args = append(args, "--tmpfs", d)
	}
	if o.User != "" {
		args = append(args, "--user", o.User)
	}
	if o.Init {
		args = append(args, "--init")
	}
	if o.HealthInterval > 0 {
		args = append(args, "--health-interval", o.HealthInterval.String(), "--health-start-period", "0s")
	}
	if o.Entrypoint != "" {
		args = append(args, "--entrypoint", o.Entrypoint)
	}
	args = append(append(args, o.Image), o.Args...)
	n.must(t, "", args...)
	t.Cleanup(func() { c.Remove(t) })
	if len(o.Files) > 0 {
		c.CopyIn(t, o.Files...)
	}
	c.started = time.Now()
	n.must(t, "", "start", c.Name)
	p, err := StartProcess(nil, n.docker, "logs", "-f", c.Name)
	if err != nil {
		t.Fatal(err)
	}
	c.logs = p
	return c
}

// Remove removes the container (docker rm -f -v) and stops following its
// output; it is done in t.Cleanup anyway, and only the first call acts.
func (c *Container) Remove(t testing.TB) {
	t.Helper()
	if c.removed {
		return
	}
	c.removed = true
	if t.Failed() && c.logs != nil {
		t.Logf("---- container %s (%s) output ----\n%s", c.Name, c.Image, tail(c.logs.Output(), 16000))
	}
	if _, stderr, code := c.net.run(t, "", "rm", "-f", "-v", c.Name); code != 0 {
		t.Errorf("docker rm -f %s: %s", c.Name, strings.TrimSpace(stderr))
	}
	if c.logs != nil {
		_ = c.logs.Stop(syscall.SIGTERM)
	}
}

// Exec runs args in the container (docker exec, with -i when stdin is not
// empty) with the environment env (KEY=VALUE) and returns its output and exit
// code, bounded by [CommandTimeout].
func (c *Container) Exec(t testing.TB, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	a := []string{"exec"}
	if stdin != "" {
		a = append(a, "-i")
	}
	for _, e := range env {
		a = append(a, "-e", e)
	}
	a = append(append(a, c.Name), args...)
	return RunTimeout(t, CommandTimeout, nil, stdin, c.net.docker, a...)
}

// CopyIn copies files into the container (docker cp of a tar stream, which
// works on stopped containers and on images without a shell). Missing parent
// directories are created (0755); existing ones keep their mode.
func (c *Container) CopyIn(t testing.TB, files ...ContainerFile) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(filepath.Clean(f.Path), "/"), Mode: mode,
			Size: int64(len(f.Data)), Uid: f.UID, Gid: f.GID, ModTime: time.Now()}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	c.net.must(t, buf.String(), "cp", "-", c.Name+":/")
}

// ReadFile returns a file of the container (docker cp to a tar stream), or an
// error if it cannot be read.
func (c *Container) ReadFile(t testing.TB, path string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DockerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.net.docker, "cp", c.Name+":"+path, "-").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("docker cp %s:%s: %s", c.Name, path, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	tr := tar.NewReader(bytes.NewReader(out))
	if _, err := tr.Next(); err != nil {
		return "", fmt.Errorf("docker cp %s:%s: %w", c.Name, path, err)
	}
	b, err := io.ReadAll(tr)
	return string(b), err
}

// WaitLog waits up to timeout for the container's output to match re and
// returns the submatches.
func (c *Container) WaitLog(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	m, err := c.logs.WaitOutput(re, timeout)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	return m, nil
}

// Logs returns the container's output so far.
func (c *Container) Logs() string { return c.logs.Output() }

// Started is when `docker start` was run.
func (c *Container) Started() time.Time { return c.started }

// Inspect returns docker inspect --format FORMAT for the container.
func (c *Container) Inspect(t testing.TB, format string) string {
	t.Helper()
	return strings.TrimSpace(c.net.must(t, "", "inspect", "--format", format, c.Name))
}

// Stop stops the container with SIGTERM (docker stop, SIGKILL after grace)
// and returns its exit code.
func (c *Container) Stop(t testing.TB, grace time.Duration) int {
	t.Helper()
	c.net.must(t, "", "stop", "-t", strconv.Itoa(int(grace/time.Second)), c.Name)
	code, err := strconv.Atoi(c.Inspect(t, "{{.State.ExitCode}}"))
	if err != nil {
		t.Fatalf("exit code of %s: %v", c.Name, err)
	}
	return code
}
