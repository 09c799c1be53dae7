package walkthrough

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTMLSelfContained checks that the page loads nothing from anywhere and holds the whole story: an inline
// SVG with four lifelines and an arrow per message, and a <details> section per step that the arrows link to.
func TestHTMLSelfContained(t *testing.T) {
	st := runStory(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, st); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "<link", "@import", "@font-face", "<iframe", "<img", "http://", "https://", "//fonts."} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("page contains %q: it must be self-contained", bad)
		}
	}
	for _, m := range regexp.MustCompile(`(?i)\b(src|href|xlink:href)\s*=\s*["']([^"']*)["']`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[2], "#") {
			t.Errorf("%s=%q leaves the page", m[1], m[2])
		}
	}
	for _, m := range regexp.MustCompile(`url\(([^)]*)\)`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "#") {
			t.Errorf("url(%s) leaves the page", m[1])
		}
	}
	if n := strings.Count(page, "<svg"); n != 1 {
		t.Errorf("%d <svg> elements, want 1", n)
	}
	if n := strings.Count(page, `class="lifeline"`); n != 4 {
		t.Errorf("%d lifelines, want 4 (client, AS, TGS, service)", n)
	}
	if n := strings.Count(page, `class="arrow"`); n < 8 {
		t.Errorf("%d arrows, want at least 8", n)
	}
	if n := strings.Count(page, "<details"); n != len(st.Steps) {
		t.Errorf("%d <details>, want one per step (%d)", n, len(st.Steps))
	}
	for _, s := range st.Steps {
		if !strings.Contains(page, `id="step-`+s.ID+`"`) || !strings.Contains(page, `href="#step-`+s.ID+`"`) {
			t.Errorf("step %s has no section or no arrow linking to it", s.ID)
		}
	}
	for _, want := range []string{"key usage</th><td>3:", "key usage</th><td>12:", "ctime and cusec are exactly those of authenticator G"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// chromiumPath is Debian's chromium package binary.
const chromiumPath = "/usr/bin/chromium"

// TestHTMLRendersInChromium renders the page in headless Chromium and checks the screenshot. With -update the
// screenshot becomes docs/walkthrough.png. Without Chromium the test is skipped, unless CI=true.
func TestHTMLRendersInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found and CI=true: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s not found: apt-get install -y chromium to run this test", chromiumPath)
	}
	st := runStory(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "walkthrough.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "walkthrough.png")
	screenshot(t, page, shot)

	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 1200 || r.Dy() != 1600 {
		t.Errorf("screenshot is %dx%d, want 1200x1600", r.Dx(), r.Dy())
	}
	if n := distinctColors(img, 2000); n < 200 {
		t.Errorf("screenshot has %d distinct colours: the page did not render", n)
	}
	if dark := darkShare(img); dark < 0.02 {
		t.Errorf("only %.1f%% dark pixels: no text or diagram rendered", dark*100)
	}
	if *update {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docsDir, "walkthrough.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(docsDir, "walkthrough.png"))
	}
}

// screenshot runs headless Chromium on page. Chromium runs in its own process group, which is killed if it
// does not finish within a minute.
func screenshot(t *testing.T, page, out string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir="+t.TempDir(), "--screenshot="+out, "--window-size=1200,1600",
		"file://"+page)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if outp, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, outp)
	}
}

// distinctColors counts the distinct colours of img, up to limit.
func distinctColors(img image.Image, limit int) int {
	seen := map[uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[(cr>>8)<<16|(cg>>8)<<8|cb>>8] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// darkShare is the share of dark pixels (text, arrows, the header).
func darkShare(img image.Image) float64 {
	r := img.Bounds()
	dark, total := 0, 0
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if (cr>>8)+(cg>>8)+(cb>>8) < 3*110 {
				dark++
			}
			total++
		}
	}
	return float64(dark) / float64(total)
}

// TestScenarioHTML checks every failure story's page: self-contained, the attacker's lifeline when an attacker
// plays, the diagnosis linked to the failed step, which is open; and renders one in headless Chromium (with
// -update the screenshot becomes docs/failures/stale-keytab.png).
func TestScenarioHTML(t *testing.T) {
	for name, st := range runScenarios(t) {
		var b bytes.Buffer
		if err := WriteHTML(&b, st); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		for _, bad := range []string{"<script", "<link", "http://", "https://"} {
			if strings.Contains(strings.ToLower(page), bad) {
				t.Errorf("%s: page contains %q", name, bad)
			}
		}
		lifelines := 4
		if hasActor(st, ActorAttacker) {
			lifelines = 5
		}
		if n := strings.Count(page, `class="lifeline"`); n != lifelines {
			t.Errorf("%s: %d lifelines, want %d", name, n, lifelines)
		}
		f := st.Failure
		if !strings.Contains(page, `id="what-went-wrong"`) || !strings.Contains(page, `<a href="#step-`+f.StepID+`">Go to the step`) {
			t.Errorf("%s: no diagnosis linking to step %s", name, f.StepID)
		}
		if !strings.Contains(page, `class="step card failed" id="step-`+f.StepID+`" open>`) {
			t.Errorf("%s: the failed step %s is not open and marked", name, f.StepID)
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found and CI=true: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s not found: apt-get install -y chromium to render the page", chromiumPath)
	}
	dir := t.TempDir()
	page, shot := filepath.Join(dir, "stale-keytab.html"), filepath.Join(dir, "stale-keytab.png")
	var b bytes.Buffer
	if err := WriteHTML(&b, runScenarios(t)["stale-keytab"]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	screenshot(t, page, shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if n := distinctColors(img, 2000); n < 200 {
		t.Errorf("screenshot has %d distinct colours: the page did not render", n)
	}
	if *update {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docsDir, "failures", "stale-keytab.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
