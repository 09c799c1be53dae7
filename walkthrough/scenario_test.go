package walkthrough

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// scenarioStories runs every failure story once per test binary.
var scenarioStories = struct {
	once    sync.Once
	stories map[string]*Story
	err     error
}{}

func runScenarios(t *testing.T) map[string]*Story {
	t.Helper()
	scenarioStories.once.Do(func() {
		scenarioStories.stories = map[string]*Story{}
		dir, err := os.MkdirTemp("", "kerbkit-scenario-test-")
		if err != nil {
			scenarioStories.err = err
			return
		}
		defer os.RemoveAll(dir)
		for _, name := range ScenarioNames() {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			st, err := RunScenario(ctx, name, RunOptions{TempDir: dir})
			cancel()
			if err != nil {
				scenarioStories.err = err
				return
			}
			scenarioStories.stories[name] = st
		}
	})
	if scenarioStories.err != nil {
		t.Fatal(scenarioStories.err)
	}
	return scenarioStories.stories
}

// TestScenarios checks what each failure story must show: the receiver and the stage whose check failed (as the
// KDC or the service names it), the KRB-ERROR a real client gets, the steps that make the story, and a complete
// diagnosis.
func TestScenarios(t *testing.T) {
	want := map[string]struct {
		by, stage string
		code      int32
		steps     []string // step IDs that must be in the story
	}{
		"wrong-password":   {ActorAS, "preauth", 24, []string{"s2k", "as-req-2", "error-2"}},
		"no-preauth":       {ActorAttacker, "", 0, []string{"as-req-1", "as-rep", "offline-guess"}},
		"clock-skew":       {ActorService, "check-times", 37, []string{"tgs-rep", "ap-req"}},
		"replay":           {ActorService, "replay", 34, []string{"ap-rep", "wrap", "mic", "ap-req-2"}},
		"expired-tgt":      {ActorTGS, "authenticator", 32, []string{"client-check", "tgs-req"}},
		"stale-keytab":     {ActorService, "find-key", 44, []string{"tgs-rep", "ap-req"}},
		"tampered-ticket":  {ActorTGS, "open-tgt", 31, []string{"tamper", "tgs-req"}},
		"weak-service-key": {ActorAttacker, "", 0, []string{"tgs-rep", "offline-guess"}},
	}
	stories := runScenarios(t)
	if len(stories) != len(want) {
		t.Errorf("%d scenarios, want %d", len(stories), len(want))
	}
	for name, w := range want {
		st := stories[name]
		if st == nil {
			t.Errorf("no scenario %s", name)
			continue
		}
		f := st.Failure
		if f == nil {
			t.Errorf("%s: no failure", name)
			continue
		}
		if f.By != w.by || f.Stage != w.stage || f.Code != w.code {
			t.Errorf("%s: failure by %s stage %q code %d, want %s %q %d", name, f.By, f.Stage, f.Code, w.by, w.stage, w.code)
		}
		if st.Scenario != name || !strings.HasPrefix(st.Title, "Failure story: ") {
			t.Errorf("%s: scenario %q title %q", name, st.Scenario, st.Title)
		}
		if f.Check == "" || len(f.MIT) == 0 || len(f.Ours) == 0 || f.Protects == "" || len(f.Fix) == 0 || len(st.Intro) == 0 {
			t.Errorf("%s: incomplete diagnosis: %+v", name, f)
		}
		s := st.Step(f.StepID)
		if s == nil {
			t.Errorf("%s: the failure names step %q, which is not in the story", name, f.StepID)
			continue
		}
		if w.stage != "" {
			c := failedCheck(s)
			if c == nil || c.Stage != w.stage || c.By != w.by || c.Detail == "" || !strings.Contains(c.Detail, codeName(w.code)) {
				t.Errorf("%s: step %s has no failed %s check %s with the receiver's words: %+v", name, s.ID, w.by, w.stage, c)
			}
			// The stages after the failed one were not reached.
			after, skipped := false, 0
			for _, c := range s.Checks {
				if c.By != w.by || c.Stage == "" {
					continue
				}
				if after && c.Result != CheckSkip {
					t.Errorf("%s: stage %s after the failed one is %s, want %s", name, c.Stage, c.Result, CheckSkip)
				}
				if c.Result == CheckSkip {
					skipped++
				}
				after = after || c.Result == CheckFail
			}
			if w.stage != "preauth" && w.stage != "replay" && skipped == 0 {
				t.Errorf("%s: no stage marked not reached after %s", name, w.stage)
			}
			if st.Step(f.StepID) == nil || w.code != 0 && !hasKRBError(st, w.code) {
				t.Errorf("%s: no KRB-ERROR %d step", name, w.code)
			}
		}
		for _, id := range w.steps {
			if st.Step(id) == nil {
				t.Errorf("%s: no step %s (steps %v)", name, id, stepIDs(st))
			}
		}
		var text bytes.Buffer
		if err := WriteText(&text, st, TextOptions{}); err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(text.String()), " ")
		for _, want := range append([]string{"What went wrong", "The check that failed", "How to fix it"}, f.MIT[0]) {
			if !strings.Contains(flat, strings.Join(strings.Fields(want), " ")) {
				t.Errorf("%s: text lacks %q", name, want)
			}
		}
	}
	// The attacks: the guessing finds the password, and the attacker sends the replay.
	for _, name := range []string{"no-preauth", "weak-service-key"} {
		s := stories[name].Step("offline-guess")
		if s == nil || !hasCheck(s, CheckPass, "The password is found") || !hasField(s.Fields, "2^256") {
			t.Errorf("%s: the offline guessing does not find the password with its arithmetic", name)
		}
	}
	if s := stories["replay"].Step("ap-req-2"); s == nil || s.From != ActorAttacker {
		t.Errorf("replay: the second AP-REQ is not the attacker's: %+v", s)
	}
	if s := stories["no-preauth"].Step("as-req-1"); s == nil || s.From != ActorAttacker {
		t.Errorf("no-preauth: the AS-REQ is not the attacker's")
	}
	// The stories' own words match the real tools' (kclient's line is its own error text).
	if o := stories["wrong-password"].Failure.Ours[0]; o != "kclient: Password incorrect while getting initial credentials" {
		t.Errorf("wrong-password: kclient prints %q", o)
	}
	if o := stories["stale-keytab"].Failure.Ours; len(o) < 2 || !strings.Contains(o[1], "kvno 2 not found in keytab service.keytab (has kvno 1)") {
		t.Errorf("stale-keytab: the service's log line is %q", o)
	}
}

func hasKRBError(st *Story, code int32) bool {
	for _, s := range st.Steps {
		if s.Message == "KRB-ERROR" && hasField(s.Fields, codeName(code)) {
			return true
		}
	}
	return false
}

func stepIDs(st *Story) []string {
	var out []string
	for _, s := range st.Steps {
		out = append(out, s.ID)
	}
	return out
}

// scenarioPreface is what each docs/failures page says before the story.
func scenarioPreface(name string) string {
	return "<!-- Generated from a real run: go test ./walkthrough -run TestScenarioDocsGolden -update\n" +
		"     TestScenarioDocsGolden keeps it in sync; times, nonces, keys, ports and sizes are normalised when comparing. -->\n\n" +
		"```sh\nkclient walkthrough --scenario " + name + "          # this story on the terminal (--step, --json, --html FILE)\n```\n\n" +
		"[All failure stories](README.md) · [The story of a login that works](../walkthrough.md)"
}

// TestScenarioDocsGolden keeps docs/failures/*.md in sync with what the failure stories really say.
func TestScenarioDocsGolden(t *testing.T) {
	stories := runScenarios(t)
	dir := filepath.Join(docsDir, "failures")
	var index bytes.Buffer
	index.WriteString("<!-- Generated: go test ./walkthrough -run TestScenarioDocsGolden -update -->\n\n# Failure stories\n\n" +
		"`kclient walkthrough --scenario NAME` runs a real exchange that fails in a throw-away realm (the real KDC, service and " +
		"client, with injectable clocks where time matters) and explains it message by message: the check that failed, named " +
		"as the KDC or the service names it, the KRB-ERROR that came back, what MIT's and kerbkit's tools print, what the " +
		"check protects against, and how to fix the cause.\n\n| scenario | what goes wrong |\n|---|---|\n")
	for _, sc := range Scenarios() {
		index.WriteString("| [" + sc.Name + "](" + sc.Name + ".md) | " + mdEsc(sc.Summary) + " |\n")
	}
	index.WriteString("\n![The stale-keytab story as an HTML page (kclient walkthrough --scenario stale-keytab --html FILE)](stale-keytab.png)\n")
	pages := map[string][]byte{"README.md": index.Bytes()}
	for name, st := range stories {
		var b bytes.Buffer
		if err := WriteMarkdown(&b, st, MarkdownOptions{Preface: scenarioPreface(name)}); err != nil {
			t.Fatal(err)
		}
		pages[name+".md"] = b.Bytes()
	}
	for file, data := range pages {
		path := filepath.Join(dir, file)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with: go test ./walkthrough -run TestScenarioDocsGolden -update)", err)
		}
		if d := firstDiff(normalize(string(data)), normalize(string(want))); d != "" {
			t.Errorf("docs/failures/%s is out of date (regenerate with: go test ./walkthrough -run TestScenarioDocsGolden -update)\n%s", file, d)
		}
	}
}

// firstDiff describes the first differing line of two texts, or "" when they are equal.
func firstDiff(got, exp string) string {
	if got == exp {
		return ""
	}
	gl, el := strings.Split(got, "\n"), strings.Split(exp, "\n")
	for i := 0; i < max(len(gl), len(el)); i++ {
		var g, e string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(el) {
			e = el[i]
		}
		if g != e {
			return fmt.Sprintf("first difference at line %d:\n  docs: %q\n  run:  %q", i+1, e, g)
		}
	}
	return ""
}
