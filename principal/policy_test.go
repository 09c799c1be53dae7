package principal

import (
	"errors"
	"testing"
	"time"
)

func TestCheckPasswordRules(t *testing.T) {
	pol := &Policy{Name: "p", MinLength: 8, MinClasses: 3, History: 3}
	n, _ := Parse("alice", "KRB.TEST")
	keys, err := KeysFromPassword(n, "Old-pass-1", DefaultEnctypes, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecord(n, keys, time.Now())
	for _, c := range []struct{ pw, reason string }{
		{"", ReasonEmpty},
		{"Ab1-xyz", ReasonTooShort},               // 7 characters
		{"abcdefgh12", ReasonClasses},             // 2 classes
		{"ÄÖÜäöüßé", ReasonClasses},               // 8 characters, one class (other)
		{"Old-pass-1", ReasonReused},              // the current password
		{"New-pass-1", ""},                        // fine
		{"éé-Abcdef", ""},                         // other, punctuation, upper, lower
		{"12345678Ab", ""},                        // digits, upper, lower
		{"Ab1\u00a0\u00a0\u00a0\u00a0\u00a0", ""}, // 8 code points (MIT would count bytes)
	} {
		err := CheckPassword(pol, rec, c.pw)
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%q refused: %v", c.pw, err)
		case c.reason != "" && (err == nil || err.Error() != c.reason || !errors.Is(err, ErrPasswordQuality)):
			t.Errorf("%q: %v, want %q", c.pw, err, c.reason)
		}
	}
	if err := CheckPassword(nil, rec, "x"); err != nil {
		t.Fatalf("no policy: %v", err)
	}
	if err := CheckPassword(pol, nil, "Old-pass-1"); err != nil {
		t.Fatalf("new principal: %v", err)
	}
}

// TestPasswordHistory: with history 3 the current and the two passwords
// before it are refused, the one before those is allowed again.
func TestPasswordHistory(t *testing.T) {
	pol := &Policy{Name: "p", History: 3}
	n, _ := Parse("bob", "KRB.TEST")
	keys, _ := KeysFromPassword(n, "pw-1", DefaultEnctypes, 1)
	rec := NewRecord(n, keys, time.Now())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, pw := range []string{"pw-2", "pw-3", "pw-4"} {
		if err := rec.SetPassword(pol, pw, now, false); err != nil {
			t.Fatalf("%s: %v", pw, err)
		}
	}
	if len(rec.KeyHistory) != 2 || rec.KVNO() != 4 {
		t.Fatalf("history %d keys, kvno %d", len(rec.KeyHistory), rec.KVNO())
	}
	for _, pw := range []string{"pw-4", "pw-3", "pw-2"} {
		if err := CheckPassword(pol, rec, pw); err == nil || err.Error() != ReasonReused {
			t.Errorf("%s: %v", pw, err)
		}
	}
	if err := CheckPassword(pol, rec, "pw-1"); err != nil {
		t.Errorf("pw-1, four passwords back: %v", err)
	}
	// History 1 (as in MIT) checks nothing; the override skips the rules.
	if err := CheckPassword(&Policy{Name: "h1", History: 1}, rec, "pw-4"); err != nil {
		t.Errorf("history 1: %v", err)
	}
	if err := rec.SetPassword(pol, "pw-4", now, true); err != nil {
		t.Errorf("ignorePolicy: %v", err)
	}
	withLife := &Policy{Name: "l", MaxLife: time.Hour}
	if err := rec.SetPassword(withLife, "pw-9", now, false); err != nil || !rec.PasswordExpires.Equal(now.Add(time.Hour)) || !rec.LastPasswordChange.Equal(now) {
		t.Fatalf("expiry: %v %v", rec.PasswordExpires, err)
	}
	if len(rec.KeyHistory) != 0 {
		t.Fatalf("a policy without history keeps %d keys", len(rec.KeyHistory))
	}
}

func TestRecordFailure(t *testing.T) {
	pol := &Policy{Name: "p", MaxFailures: 3, FailureInterval: time.Minute, LockoutDuration: 10 * time.Minute}
	r := &Record{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if r.RecordFailure(pol, t0, 1) || r.RecordFailure(pol, t0.Add(10*time.Second), 1) {
		t.Fatal("locked early")
	}
	// Past the interval the count starts again.
	if r.RecordFailure(pol, t0.Add(2*time.Minute), 1) || r.FailCount != 1 {
		t.Fatalf("count after the interval: %d", r.FailCount)
	}
	if r.RecordFailure(pol, t0.Add(2*time.Minute), 1) || !r.RecordFailure(pol, t0.Add(2*time.Minute), 1) {
		t.Fatal("not locked at 3")
	}
	if !r.Locked(t0.Add(11*time.Minute)) || r.Locked(t0.Add(13*time.Minute)) {
		t.Fatalf("locked until %v", r.LockedUntil)
	}
	// After the lockout passed, a failure starts a new count.
	if r.RecordFailure(pol, t0.Add(13*time.Minute), 1) || r.FailCount != 1 || !r.LockedUntil.IsZero() {
		t.Fatalf("after the lockout: %+v", r)
	}
	forever := &Policy{Name: "f", MaxFailures: 1}
	r = &Record{}
	if !r.RecordFailure(forever, t0, 1) || !r.Locked(t0.Add(1000*time.Hour)) {
		t.Fatal("duration 0 is not until unlocked")
	}
	r.Unlock()
	if r.Locked(t0) || r.FailCount != 0 {
		t.Fatal("unlock")
	}
	if (&Record{}).RecordFailure(&Policy{Name: "n"}, t0, 5) {
		t.Fatal("max failures 0 locked")
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{{}, {Name: "a b"}, {Name: "x", MinClasses: 6}, {Name: "x", History: MaxHistory + 1}, {Name: "x", MaxLife: -1}} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := DefaultPasswordPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
}
