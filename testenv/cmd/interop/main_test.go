package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportAndTable: rows written in completion order come back in matrix
// order; the table has one line per row and the counts; a failed row shows its
// error, the peer command with its output, and the end of its trace.
func TestReportAndTable(t *testing.T) {
	rows := []result{
		{Row: 2, KDC: "kerbkit", Check: "login", Peer: "MIT kinit", Transport: "tcp", Enctype: "aes-sha1", Result: "fail", Seconds: 0.5,
			Error: "kinit u02: exit 1: kinit: Password incorrect", Command: "kinit u02", Output: "kinit: Password incorrect while getting initial credentials",
			Trace: strings.Repeat("early line\n", 50) + "[12] Received error from KDC: -1765328360/Preauthentication failed\n"},
		{Row: 1, KDC: "kerbkit", Check: "login", Peer: "MIT kinit", Transport: "udp", Enctype: "aes-sha1", Result: "pass", Seconds: 0.25},
		{Row: 3, KDC: "MIT", Check: "gss mutual", Peer: "kclient -> MIT gss-server", Transport: "udp", Enctype: "aes-sha2", Host: "gss.mit.test", Result: "pass", Seconds: 1},
	}
	path := filepath.Join(t.TempDir(), "report.jsonl")
	var b bytes.Buffer
	for _, r := range rows {
		line, _ := json.Marshal(r)
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Row != 1 || got[1].Row != 2 || got[2].Row != 3 {
		t.Fatalf("readReport order: %+v", got)
	}

	var out bytes.Buffer
	printTable(&out, "docker", got, 61*time.Second)
	printFailures(&out, got)
	s := out.String()
	for _, want := range []string{
		"kerbkit interop matrix, docker mode",
		"KDC      CHECK       PEER                       TRANSPORT  ENCTYPE   SERVICE HOST  RESULT  TIME",
		"kerbkit  login       MIT kinit                  tcp        aes-sha1  -             FAIL    0.50s",
		"MIT      gss mutual  kclient -> MIT gss-server  udp        aes-sha2  gss.mit.test  pass    1.00s",
		"3 rows: 2 pass, 1 fail; wall time 1m1s",
		"==== FAIL kerbkit / login / MIT kinit / tcp / aes-sha1\nkinit u02: exit 1: kinit: Password incorrect",
		"---- $ kinit u02\n    kinit: Password incorrect while getting initial credentials",
		"    [12] Received error from KDC: -1765328360/Preauthentication failed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "early line"); n != 29 {
		t.Errorf("trace excerpt has %d early lines, want the last 30 lines only (29 + the error)", n)
	}
	if _, err := readReport(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("readReport of a missing file succeeded")
	}
	if err := os.WriteFile(path, []byte("{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readReport(path); err == nil {
		t.Error("readReport accepted a bad line")
	}
}

// TestRunStateExplainsSkip: a site skipped for a missing peer is explained
// with go test's own message; rows are counted as they end.
func TestRunStateExplainsSkip(t *testing.T) {
	var progress, why bytes.Buffer
	st := newRunState("docker", false, &progress)
	for _, e := range []event{
		{Action: "run", Test: "TestInteropMatrix/docker"},
		{Action: "output", Test: "TestInteropMatrix/docker", Output: "    interop_docker_test.go:50: Docker is not available\n"},
		{Action: "skip", Test: "TestInteropMatrix/docker"},
		{Action: "pass", Test: "TestInteropMatrix/native/kerbkit_login"}, // another site: not ours
	} {
		line, _ := json.Marshal(e)
		st.consume(line)
	}
	st.consume([]byte("not an event"))
	st.explain(&why)
	if !strings.Contains(why.String(), "TestInteropMatrix/docker: skip") || !strings.Contains(why.String(), "Docker is not available") {
		t.Errorf("explain: %q", why.String())
	}
	if progress.Len() != 0 {
		t.Errorf("progress for a row of another site: %q", progress.String())
	}
	st.consume([]byte(`{"Action":"pass","Test":"TestInteropMatrix/docker/kerbkit/login/MIT_kinit/udp/aes-sha1","Elapsed":0.3}`))
	if !strings.Contains(progress.String(), "pass   1  kerbkit/login/MIT_kinit/udp/aes-sha1 (0.30s)") {
		t.Errorf("progress: %q", progress.String())
	}
}

// TestBadArguments: usage errors exit 2 before running anything.
func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
