package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// HeimdalPackages are the Debian packages extracted by [Heimdal]: the clients
// and every Heimdal library they load. heimdal-clients conflicts with MIT's
// krb5-user, so none of them is installed; they are unpacked with dpkg -x.
var HeimdalPackages = []string{
	"heimdal-clients",
	"libasn1-8-heimdal",
	"libhcrypto5-heimdal",
	"libheimbase1-heimdal",
	"libheimntlm0-heimdal",
	"libhx509-5-heimdal",
	"libkafs0-heimdal",
	"libkrb5-26-heimdal",
	"libroken19-heimdal",
	"libsl0-heimdal",
	"libwind0-heimdal",
}

// HeimdalLibraryPackages are HeimdalPackages without heimdal-clients: what
// `apt-get install` may add as a fallback (they coexist with MIT krb5).
var HeimdalLibraryPackages = HeimdalPackages[1:]

// heimdalTools maps each wrapper [Heimdal] writes to the binary and leading
// arguments it runs.
var heimdalTools = map[string][]string{
	"kinit.heimdal":    {"kinit.heimdal"},
	"kgetcred":         {"kgetcred"},
	"kdestroy.heimdal": {"kdestroy.heimdal"},
	"heimtools":        {"heimtools"},
	"klist.heimdal":    {"heimtools", "klist"},
	"ktutil.heimdal":   {"ktutil.heimdal"},
}

var heimdalOnce struct {
	mu  sync.Mutex
	dir string
	err error
	ok  bool
}

// HeimdalTimeout bounds the download and extraction of the Heimdal packages.
const HeimdalTimeout = 5 * time.Minute

// Heimdal returns a directory of Heimdal 7.8 client tools: kinit.heimdal,
// kgetcred, kdestroy.heimdal, heimtools, klist.heimdal (= heimtools klist) and
// ktutil.heimdal. Each is a small wrapper that sets LD_LIBRARY_PATH to the
// extracted libraries and execs the extracted binary, so they run as they are.
//
// The packages in [HeimdalPackages] are fetched with `apt-get download` and
// unpacked with `dpkg -x` once into a cache directory, $KERBKIT_HEIMDAL_DIR or
// os.TempDir()/kerbkit-heimdal, reused by later runs. If the extracted libraries
// do not load, `apt-get install -y` of [HeimdalLibraryPackages] is tried as a
// fallback (as root only). Failures skip the test, or fail it when CI=true.
func Heimdal(t testing.TB) string {
	t.Helper()
	heimdalOnce.mu.Lock()
	defer heimdalOnce.mu.Unlock()
	if !heimdalOnce.ok {
		heimdalOnce.dir, heimdalOnce.err = fetchHeimdal(t)
		heimdalOnce.ok = true
	}
	if heimdalOnce.err != nil {
		unavailable(t, "Heimdal clients unavailable: %v", heimdalOnce.err)
	}
	return heimdalOnce.dir
}

// heimdalCacheDir is where the Heimdal packages are unpacked.
func heimdalCacheDir() string {
	if d := os.Getenv("KERBKIT_HEIMDAL_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "kerbkit-heimdal")
}

func fetchHeimdal(t testing.TB) (string, error) {
	root := heimdalCacheDir()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(root, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	bin := filepath.Join(root, "bin")
	if heimdalWorks(bin) == nil {
		return bin, nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), HeimdalTimeout)
	defer cancel()
	tree := filepath.Join(root, "tree")
	if _, err := os.Stat(filepath.Join(tree, "usr", "bin", "kinit.heimdal")); err != nil {
		if err := downloadHeimdal(ctx, t, root, tree); err != nil {
			return "", err
		}
	}
	if err := writeHeimdalWrappers(root, tree, bin); err != nil {
		return "", err
	}
	err = heimdalWorks(bin)
	if err == nil {
		return bin, nil
	}
	// Fallback: the extracted libraries did not load; install them system-wide.
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%v (as root, `apt-get install -y %s` would be tried)", err, strings.Join(HeimdalLibraryPackages, " "))
	}
	t.Logf("Heimdal: extracted binaries do not run (%v); trying apt-get install -y %s", err, strings.Join(HeimdalLibraryPackages, " "))
	if out, ierr := runIn(ctx, "", "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, HeimdalLibraryPackages...)...); ierr != nil {
		return "", fmt.Errorf("%v; apt-get install: %v\n%s", err, ierr, tail(out, 2000))
	}
	if err := heimdalWorks(bin); err != nil {
		return "", err
	}
	return bin, nil
}

// downloadHeimdal fetches HeimdalPackages and unpacks them into tree.
func downloadHeimdal(ctx context.Context, t testing.TB, root, tree string) error {
	for _, tool := range []string{"apt-get", "dpkg"} {
		if _, err := LookTool(tool); err != nil {
			return fmt.Errorf("%v (needed to fetch heimdal-clients)", err)
		}
	}
	dl, err := os.MkdirTemp(root, "download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	// _apt cannot write into a 0700 temp dir; apt then downloads as root with a
	// warning. Make it readable so the sandboxed download works where it can.
	_ = os.Chmod(dl, 0o755)
	args := append([]string{"download"}, HeimdalPackages...)
	out, err := runIn(ctx, dl, "apt-get", args...)
	if err != nil && os.Geteuid() == 0 {
		// A fresh machine may have no package lists yet.
		t.Logf("Heimdal: apt-get download failed (%v); running apt-get update once", err)
		if uout, uerr := runIn(ctx, "", "apt-get", "update"); uerr != nil {
			return fmt.Errorf("apt-get update: %v\n%s", uerr, tail(uout, 2000))
		}
		out, err = runIn(ctx, dl, "apt-get", args...)
	}
	if err != nil {
		return fmt.Errorf("apt-get download %s: %v\n%s", strings.Join(HeimdalPackages, " "), err, tail(out, 2000))
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) == 0 {
		return fmt.Errorf("apt-get download left no .deb files:\n%s", tail(out, 2000))
	}
	staging, err := os.MkdirTemp(root, "tree-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	for _, deb := range debs {
		if out, err := runIn(ctx, "", "dpkg", "-x", deb, staging); err != nil {
			return fmt.Errorf("dpkg -x %s: %v\n%s", filepath.Base(deb), err, out)
		}
	}
	_ = os.Chmod(staging, 0o755)
	os.RemoveAll(tree)
	if err := os.Rename(staging, tree); err != nil {
		return err
	}
	t.Logf("Heimdal: unpacked %d packages into %s", len(debs), tree)
	return nil
}

// writeHeimdalWrappers writes one shell wrapper per tool into bin.
func writeHeimdalWrappers(root, tree, bin string) error {
	libs, _ := filepath.Glob(filepath.Join(tree, "usr", "lib", "*", "libkrb5.so.26"))
	var libDirs []string
	for _, l := range libs {
		libDirs = append(libDirs, filepath.Dir(l))
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for name, target := range heimdalTools {
		exe := filepath.Join(tree, "usr", "bin", target[0])
		if _, err := os.Stat(exe); err != nil {
			return fmt.Errorf("heimdal-clients has no %s: %w", target[0], err)
		}
		var b strings.Builder
		b.WriteString("#!/bin/sh\n# Written by kerbkit testenv: runs Heimdal's " + target[0] + " from the unpacked package.\n")
		if len(libDirs) > 0 {
			fmt.Fprintf(&b, "LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\nexport LD_LIBRARY_PATH\n", shellQuote(strings.Join(libDirs, ":")))
		}
		fmt.Fprintf(&b, "exec %s", shellQuote(exe))
		for _, a := range target[1:] {
			fmt.Fprintf(&b, " %s", shellQuote(a))
		}
		b.WriteString(" \"$@\"\n")
		tmp := filepath.Join(bin, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(b.String()), 0o755); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	return nil
}

// heimdalWorks checks that the wrapped kinit.heimdal runs.
func heimdalWorks(bin string) error {
	kinit := filepath.Join(bin, "kinit.heimdal")
	if _, err := os.Stat(kinit); err != nil {
		return err
	}
	for name := range heimdalTools {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := runIn(ctx, "", kinit, "--version")
	if err != nil || !strings.Contains(out, "Heimdal") {
		return fmt.Errorf("%s --version: %v: %s", kinit, err, strings.TrimSpace(out))
	}
	return nil
}

// runIn runs a helper command in dir with combined output.
func runIn(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	cmd.SysProcAttr = childAttr(true)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
