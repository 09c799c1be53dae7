// Command interop runs kerbkit's interop matrix against real MIT krb5 peers and
// prints one table: check × peer × KDC × transport × enctype, pass or fail,
// and for each failure the peer's own error and its KRB5_TRACE.
//
//	go run ./testenv/cmd/interop            # peers installed on this host (Debian: krb5-user, krb5-kdc, ...)
//	go run ./testenv/cmd/interop --docker   # peers in containers; needs Docker only
//
// Both modes run the same rows (TestInteropMatrix in package testenv, run
// with go test). Docker mode builds the images first with
// docker/build-images.sh (seconds when they are current). The exit status is 0
// when every row passed, 1 when one failed, 2 when the matrix could not run.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// result is one row of the report testenv writes ($KERBKIT_INTEROP_REPORT);
// it mirrors testenv.InteropResult.
type result struct {
	Row       int     `json:"row"`
	Mode      string  `json:"mode"`
	Check     string  `json:"check"`
	Peer      string  `json:"peer"`
	KDC       string  `json:"kdc"`
	Transport string  `json:"transport"`
	Enctype   string  `json:"enctype"`
	Host      string  `json:"host"`
	Result    string  `json:"result"`
	Seconds   float64 `json:"seconds"`
	Error     string  `json:"error,omitempty"`
	Command   string  `json:"command,omitempty"`
	Output    string  `json:"output,omitempty"`
	Trace     string  `json:"trace,omitempty"`
}

// event is a line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

type options struct {
	docker  bool
	run     string
	verbose bool
	json    bool
	timeout time.Duration
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	o := options{}
	fs := flag.NewFlagSet("interop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.docker, "docker", false, "run the peers in containers (needs Docker) instead of those installed on this host")
	fs.StringVar(&o.run, "run", "", "only rows matching this go test -run pattern over KDC/check/peer/transport/enctype, e.g. 'kerbkit/login' or '////aes-sha2'")
	fs.BoolVar(&o.verbose, "v", false, "also print go test's own output (every peer command and its output)")
	fs.BoolVar(&o.json, "json", false, "print the rows as JSON instead of a table")
	fs.DurationVar(&o.timeout, "timeout", 25*time.Minute, "bound for the whole run (go test -timeout)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./testenv/cmd/interop [--docker] [--run PATTERN] [-v] [--json]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "interop: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := runMatrix(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "interop: %v\n", err)
	}
	return code
}

// mode is the site name the rows run on.
func (o options) mode() string {
	if o.docker {
		return "docker"
	}
	return "native"
}

func runMatrix(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return 2, err
	}
	report, err := os.CreateTemp("", "kerbkit-interop-*.jsonl")
	if err != nil {
		return 2, err
	}
	report.Close()
	defer os.Remove(report.Name())

	pattern := "^TestInteropMatrix$/^" + o.mode() + "$"
	if o.run != "" {
		pattern += "/" + o.run
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-json", "-timeout", o.timeout.String(), "-run", pattern, "./testenv")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KERBKIT_INTEROP_REPORT="+report.Name())
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 2, err
	}
	fmt.Fprintf(stderr, "interop: go test -run '%s' ./testenv (%s mode)\n", pattern, o.mode())
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 2, err
	}
	st := newRunState(o.mode(), o.verbose, stderr)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		st.consume(sc.Bytes())
	}
	waitErr := cmd.Wait()
	wall := time.Since(start)

	rows, err := readReport(report.Name())
	if err != nil {
		return 2, err
	}
	if len(rows) == 0 {
		st.explain(stderr)
		return 2, fmt.Errorf("no row ran (go test: %v)", waitErr)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return 2, err
		}
	} else {
		printTable(stdout, o.mode(), rows, wall)
		printFailures(stdout, rows)
	}
	failed := 0
	for _, r := range rows {
		if r.Result != "pass" {
			failed++
		}
	}
	switch {
	case failed > 0:
		return 1, nil
	case waitErr != nil:
		st.explain(stderr)
		return 1, fmt.Errorf("every row passed but go test failed: %v", waitErr)
	}
	return 0, nil
}

// runState follows go test's events: progress per row, and the output of
// tests that were skipped or failed outside a row (a missing peer, the site's
// setup), to explain a run without rows.
type runState struct {
	mode    string
	verbose bool
	w       io.Writer
	output  map[string]*strings.Builder
	ended   map[string]string // test → pass, fail, skip
	order   []string
	done    int
}

func newRunState(mode string, verbose bool, w io.Writer) *runState {
	return &runState{mode: mode, verbose: verbose, w: w, output: map[string]*strings.Builder{}, ended: map[string]string{}}
}

// siteTest is the name of the site's subtest.
func (s *runState) siteTest() string { return "TestInteropMatrix/" + s.mode }

func (s *runState) consume(line []byte) {
	var e event
	if err := json.Unmarshal(line, &e); err != nil {
		if s.verbose {
			fmt.Fprintf(s.w, "%s\n", line)
		}
		return
	}
	if e.Test != "" && e.Action == "output" {
		b := s.output[e.Test]
		if b == nil {
			b = &strings.Builder{}
			s.output[e.Test] = b
			s.order = append(s.order, e.Test)
		}
		if b.Len() < 1<<20 {
			b.WriteString(e.Output)
		}
	}
	if s.verbose && e.Action == "output" {
		fmt.Fprint(s.w, e.Output)
	}
	switch e.Action {
	case "pass", "fail", "skip":
		if e.Test == "" {
			return
		}
		s.ended[e.Test] = e.Action
		if row, ok := strings.CutPrefix(e.Test, s.siteTest()+"/"); ok && !s.verbose {
			s.done++
			fmt.Fprintf(s.w, "  %-4s %3d  %s (%.2fs)\n", e.Action, s.done, row, e.Elapsed)
		}
	}
}

// explain prints why the site did not run or failed outside the rows.
func (s *runState) explain(w io.Writer) {
	for _, t := range []string{s.siteTest(), "TestInteropMatrix"} {
		if res := s.ended[t]; res == "skip" || res == "fail" {
			out := ""
			if b := s.output[t]; b != nil {
				out = lastLines(b.String(), 40)
			}
			fmt.Fprintf(w, "interop: %s: %s\n%s\n", t, res, out)
			return
		}
	}
	if b := s.output[""]; b != nil {
		fmt.Fprintln(w, lastLines(b.String(), 40))
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// readReport reads the JSON lines testenv wrote, in table order.
func readReport(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("report %s: %w", path, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sortRows(rows)
	return rows, nil
}

// sortRows puts rows in the matrix's order.
func sortRows(rows []result) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Row < rows[j].Row })
}

// modeNote says where the peers ran.
var modeNote = map[string]string{
	"native": "peers installed on this host; KDCs and services on 127.0.0.1, service host localhost",
	"docker": "peers in containers on a user-defined network; every host known only to the network's DNS",
}

// printTable prints the matrix.
func printTable(w io.Writer, mode string, rows []result, wall time.Duration) {
	fmt.Fprintf(w, "\nkerbkit interop matrix, %s mode (%s)\n\n", mode, modeNote[mode])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KDC\tCHECK\tPEER\tTRANSPORT\tENCTYPE\tSERVICE HOST\tRESULT\tTIME")
	pass := 0
	for _, r := range rows {
		host := r.Host
		if host == "" {
			host = "-"
		}
		res := strings.ToUpper(r.Result)
		if r.Result == "pass" {
			pass++
			res = "pass"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2fs\n", r.KDC, r.Check, r.Peer, r.Transport, r.Enctype, host, res, r.Seconds)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d rows: %d pass, %d fail; wall time %v\n", len(rows), pass, len(rows)-pass, wall.Round(100*time.Millisecond))
}

// printFailures prints each failed row's error, the peer command and its
// output, and the end of the client's KRB5_TRACE.
func printFailures(w io.Writer, rows []result) {
	for _, r := range rows {
		if r.Result == "pass" {
			continue
		}
		fmt.Fprintf(w, "\n==== FAIL %s / %s / %s / %s / %s\n%s\n", r.KDC, r.Check, r.Peer, r.Transport, r.Enctype, r.Error)
		if r.Command != "" {
			fmt.Fprintf(w, "---- $ %s\n%s\n", r.Command, indentBlock(r.Output))
		}
		if r.Trace != "" {
			fmt.Fprintf(w, "---- KRB5_TRACE (last lines)\n%s\n", indentBlock(lastLines(r.Trace, 30)))
		}
	}
}

func indentBlock(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (nothing)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// moduleRoot finds the kerbkit module from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run it inside the kerbkit module (go run ./testenv/cmd/interop)")
	}
	root := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(root, "testenv", "interop_test.go")); err != nil {
		return "", fmt.Errorf("%s has no testenv/interop_test.go: run it inside the kerbkit module", root)
	}
	return root, nil
}
