package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// WalkthroughOptions are the flags of kclient walkthrough.
type WalkthroughOptions struct {
	Env *Env

	HTML     string // --html FILE
	JSON     bool   // --json
	Scenario string // --scenario NAME|list
	Step     bool   // --step
	NoColor  bool   // --no-color
}

// NewCmdWalkthrough returns "kclient walkthrough". runF replaces the run function in tests; nil means
// walkthroughRun.
func NewCmdWalkthrough(env *Env, runF func(context.Context, *WalkthroughOptions) error) *cobra.Command {
	opts := &WalkthroughOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "walkthrough [--scenario NAME|list] [--step] [--json] [--html FILE]",
		Short: "Run a whole Kerberos login and service request in-process and explain every message (A to H)",
		Long: `Run the whole Kerberos story with nothing to set up, and explain it message by message.

The walkthrough creates a realm in a temporary bbolt database (a user with a password, a service with a random
key), starts the KDC on 127.0.0.1 over real UDP and TCP and the GSS sample service over TCP, and runs the client:
password to key, the AS-REQ and its PREAUTH_REQUIRED answer, the AS-REQ with PA-ENC-TIMESTAMP, the AS-REP
(messages A and B), the TGS-REQ (C and D), the TGS-REP (E and F), the AP-REQ (G) and the AP-REP (H).

For each message it shows the classic letter and the RFC 4120 name, who sent it to whom and over which
transport, its size, its decoded fields, each encrypted part with the key that protects it (whose key, enctype,
kvno, key usage) and, since the walkthrough owns every key of its realm, the decrypted contents; what the
receiver checks before it believes the message; and where modern Kerberos differs from the classic description.
Everything is stopped and deleted at the end.

--scenario NAME runs a failure story instead, in the same realm and the same views: a real exchange that fails
(wrong-password, no-preauth, clock-skew, replay, expired-tgt, stale-keytab, tampered-ticket, weak-service-key),
explained message by message, with the check that failed named as the KDC or the service names it, the
KRB-ERROR that came back, what MIT's and kerbkit's tools print, what the check protects against and how to fix
the cause. --scenario list names them.

Colour is used only when standard output is a terminal (--no-color, NO_COLOR turn it off). --step waits for
Enter after each message. --json prints the same story for programs. --html FILE writes it as one
self-contained HTML page with a sequence diagram.`,
		Example: `  kclient walkthrough                          # the whole story of a login that works
  kclient walkthrough --step                   # one message at a time
  kclient walkthrough --scenario list          # the failure stories
  kclient walkthrough --scenario clock-skew    # what KRB_AP_ERR_SKEW is, and how to fix it
  kclient walkthrough --scenario replay --html replay.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return walkthroughRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.HTML, "html", "", "write the story as one self-contained HTML page to FILE")
	f.BoolVar(&opts.JSON, "json", false, "print the story as JSON")
	f.BoolVar(&opts.Step, "step", false, "wait for Enter after each message")
	f.BoolVar(&opts.NoColor, "no-color", false, "no ANSI colours, even on a terminal")
	f.StringVar(&opts.Scenario, "scenario", "", "run a failure story instead (\"list\" names them)")
	_ = cmd.RegisterFlagCompletionFunc("scenario", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return append(walkthrough.ScenarioNames(), "list"), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// walkthroughRun runs the story and renders it as asked.
func walkthroughRun(ctx context.Context, o *WalkthroughOptions) error {
	if o.Step && o.JSON {
		return &usageError{err: errors.New("--step pages the text story; it cannot be combined with --json")}
	}
	if o.Scenario == "list" {
		return listScenarios(o)
	}
	var st *walkthrough.Story
	var err error
	if o.Scenario != "" {
		if !slices.Contains(walkthrough.ScenarioNames(), o.Scenario) {
			return &usageError{err: fmt.Errorf("no scenario %q (kclient walkthrough --scenario list names them)", o.Scenario)}
		}
		st, err = walkthrough.RunScenario(ctx, o.Scenario, walkthrough.RunOptions{})
	} else {
		st, err = walkthrough.Run(ctx, walkthrough.RunOptions{})
	}
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	return showStory(o.Env, st, storyView{HTML: o.HTML, JSON: o.JSON, Step: o.Step, NoColor: o.NoColor})
}

// storyView is how a story is to be shown: --html FILE, --json, --step, --no-color.
type storyView struct {
	HTML    string
	JSON    bool
	Step    bool
	NoColor bool
}

// showStory renders a story as asked: the HTML page to a file, then JSON, a line about the page, or the text
// (paged with --step).
func showStory(env *Env, st *walkthrough.Story, v storyView) error {
	if v.HTML != "" {
		var b bytes.Buffer
		if err := walkthrough.WriteHTML(&b, st); err != nil {
			return fmt.Errorf("kclient: %w", err)
		}
		if err := writeFileAtomic(v.HTML, b.Bytes()); err != nil {
			return fmt.Errorf("kclient: writing %s: %w", v.HTML, err)
		}
	}
	switch {
	case v.JSON:
		return walkthrough.WriteJSON(env.Out, st)
	case v.HTML != "" && !v.Step:
		_, err := fmt.Fprintf(env.Out, "wrote %s: %d messages, %s; open it in a browser\n",
			v.HTML, len(st.Steps), strings.Join(st.Letters(), " "))
		return err
	}
	to := walkthrough.TextOptions{Color: walkthrough.ColorEnabled(env.Out, v.NoColor, env.Getenv)}
	if !v.Step {
		return walkthrough.WriteText(env.Out, st, to)
	}
	return pageSteps(env, st, to)
}

// listScenarios prints the failure stories, or them as JSON.
func listScenarios(o *WalkthroughOptions) error {
	list := walkthrough.Scenarios()
	if o.JSON {
		enc := json.NewEncoder(o.Env.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	var b strings.Builder
	b.WriteString("Failure stories (kclient walkthrough --scenario NAME):\n")
	width := 0
	for _, s := range list {
		width = max(width, len(s.Name))
	}
	for _, s := range list {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, s.Name, s.Title)
	}
	_, err := io.WriteString(o.Env.Out, b.String())
	return err
}

// pageSteps prints the story one step at a time, waiting for Enter (or q to stop) between steps. When the input
// ends, the rest is printed without waiting.
func pageSteps(env *Env, st *walkthrough.Story, to walkthrough.TextOptions) error {
	in := bufio.NewReader(env.In)
	waiting := true
	if _, err := io.WriteString(env.Out, walkthrough.IntroText(st, to)); err != nil {
		return err
	}
	for i := range st.Steps {
		if waiting {
			fmt.Fprintf(env.ErrOut, "── %d/%d: press Enter for %s (q + Enter to stop) ", i+1, len(st.Steps), stepLabel(&st.Steps[i]))
			line, err := in.ReadString('\n')
			fmt.Fprintln(env.ErrOut)
			if strings.TrimSpace(line) == "q" {
				return nil
			}
			if err != nil {
				waiting = false
			}
		}
		if _, err := io.WriteString(env.Out, walkthrough.StepText(&st.Steps[i], i+1, len(st.Steps), to)); err != nil {
			return err
		}
	}
	_, err := io.WriteString(env.Out, walkthrough.OutroText(st, to))
	return err
}

// stepLabel names a step in the pager's prompt: "the AS-REP (A B)".
func stepLabel(s *walkthrough.Step) string {
	name := s.Message
	if name == "" {
		name = "password to key"
	}
	if len(s.Letters) > 0 && s.Letters[0] != "pre" {
		name += " (" + strings.Join(s.Letters, " ") + ")"
	}
	return name
}

// writeFileAtomic writes data to path through a temporary file in the same directory, mode 0644.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newExplainer returns the --explain explainer of a command: it writes to the command's standard output, in
// colour only on a terminal (NO_COLOR turns colour off).
func newExplainer(env *Env, o walkthrough.ExplainOptions) *walkthrough.Explainer {
	o.Text = walkthrough.TextOptions{Color: walkthrough.ColorEnabled(env.Out, false, env.Getenv)}
	return walkthrough.NewExplainer(env.Out, o)
}

// dialGSSSample is client.DialGSSSample, with the connection recorded by ex when ex is not nil (--explain).
func dialGSSSample(ctx context.Context, addr string, ap *client.APContext, so client.GSSSampleOptions, ex *walkthrough.Explainer) (*client.GSSSampleResult, error) {
	if ex == nil {
		return client.DialGSSSample(ctx, addr, ap, so)
	}
	timeout := so.Timeout
	if timeout <= 0 {
		timeout = client.DefaultSampleTimeout
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	defer conn.Close()
	return client.GSSSample(ctx, ex.Conn(conn), ap, so)
}

// explainHTTPClient returns an HTTP client whose Negotiate tokens ex records (--explain), following no
// redirects as client.Negotiate's own does; nil when ex is nil, so that client.Negotiate uses its own.
func explainHTTPClient(ex *walkthrough.Explainer) *http.Client {
	if ex == nil {
		return nil
	}
	return &http.Client{
		Transport:     ex.HTTP(nil),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
