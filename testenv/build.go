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

// BuildTimeout bounds the one `go build` of our binaries per test binary.
const BuildTimeout = 5 * time.Minute

// built holds the result of building cmd/kdc and cmd/kclient, once per process.
var built struct {
	once    sync.Once
	dir     string
	kdc     string
	kclient string
	err     error
}

// Main runs the tests and removes the binaries built by [Binaries]. Use it from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// ModuleRoot returns the directory of the main module's go.mod.
func ModuleRoot() (string, error) {
	goTool, err := goCommand()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// goCommand finds the go tool.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := "/usr/local/go/bin/go"
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("go tool not found on PATH")
}

// Binaries builds ./cmd/kdc and ./cmd/kclient once per test binary and returns
// their paths. A build failure fails the test: these are the things under test.
// $KERBKIT_KDC_BIN and $KERBKIT_KCLIENT_BIN, when both are set, name prebuilt
// binaries to test instead (e.g. a release build).
func Binaries(t testing.TB) (kdc, kclient string) {
	t.Helper()
	built.once.Do(func() {
		kdc, kclient := os.Getenv("KERBKIT_KDC_BIN"), os.Getenv("KERBKIT_KCLIENT_BIN")
		if kdc != "" && kclient != "" {
			built.kdc, built.kclient = kdc, kclient
			return
		}
		buildBinaries()
	})
	if built.err != nil {
		t.Fatalf("building our binaries: %v", built.err)
	}
	return built.kdc, built.kclient
}

func buildBinaries() {
	root, err := ModuleRoot()
	if err != nil {
		built.err = err
		return
	}
	goTool, err := goCommand()
	if err != nil {
		built.err = err
		return
	}
	dir, err := os.MkdirTemp("", "kerbkit-testenv-bin-")
	if err != nil {
		built.err = err
		return
	}
	built.dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", dir+string(filepath.Separator), "./cmd/kdc", "./cmd/kclient")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		built.err = fmt.Errorf("go build -o %s/ ./cmd/kdc ./cmd/kclient (in %s): %v\n%s", dir, root, err, out)
		return
	}
	built.kdc = filepath.Join(dir, "kdc")
	built.kclient = filepath.Join(dir, "kclient")
}
