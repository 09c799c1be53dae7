package kdc

import (
	"slices"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// TestObserver: the observer hears every stage of ASStages and TGSStages, by name and in order, for requests that
// succeed; for a refused request the stages up to the one that refused it, that one with the KRB-ERROR's code
// and status, and nothing after.
func TestObserver(t *testing.T) {
	var got []StageResult
	r := newTestRealm(t, func(c *Config) { c.Observer = func(s StageResult) { got = append(got, s) } })
	names := func(ex string) []string {
		var out []string
		for _, s := range got {
			if s.Exchange == ex {
				out = append(out, s.Stage)
			}
		}
		return out
	}
	all := func(stages []Stage) []string {
		var out []string
		for _, s := range stages {
			out = append(out, s.Name)
		}
		return out
	}

	rep, part := r.login(nil)
	if n := names("AS"); !slices.Equal(n, all(ASStages)) {
		t.Errorf("AS stages %v, want %v", n, all(ASStages))
	}
	for _, s := range got {
		if s.Err != nil {
			t.Errorf("stage %s of a good login failed: %v", s.Stage, s.Err)
		}
	}
	got = nil
	reply := newTGS(r, rep, part).send()
	if reply[0] != 0x6d {
		t.Fatalf("TGS answer with tag 0x%02x, want a TGS-REP", reply[0])
	}
	if n := names("TGS"); !slices.Equal(n, all(TGSStages)) {
		t.Errorf("TGS stages %v, want %v (reply tag %d)", n, all(TGSStages), reply[0])
	}

	// A wrong password: the preauth stage fails with PREAUTH_FAILED, issue is never reached.
	got = nil
	req := asReq("alice")
	req.PAData = append(req.PAData, encTimestamp(t, randomKey(t, 18), r.clock.Now()))
	expectError(t, r.exchange(marshalAS(t, req)), errorcode.KDC_ERR_PREAUTH_FAILED)
	want := []string{"decode", "lookup", "policy", "reply-key", "preauth"}
	if n := names("AS"); !slices.Equal(n, want) {
		t.Fatalf("AS stages %v, want %v", n, want)
	}
	last := got[len(got)-1]
	if last.Err == nil || last.Err.Code != errorcode.KDC_ERR_PREAUTH_FAILED || last.Err.Status != "PREAUTH_FAILED" {
		t.Errorf("preauth stage: %+v", last.Err)
	}
	for _, s := range append(slices.Clone(ASStages), TGSStages...) {
		if s.Name == "" || s.Doc == "" {
			t.Errorf("stage %+v has no name or doc", s)
		}
	}
}
