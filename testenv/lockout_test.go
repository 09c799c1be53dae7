package testenv

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMITKinitLockout: against `kdc serve`, wrong passwords through MIT kinit
// until the policy's max failures lock the principal; then the right one is
// refused with "Client's credentials have been revoked"; `kdc principal
// show` prints the count and the lockout; `kdc principal unlock` (through the
// admin socket) lets the user in again; the audit log has the lockout and
// the unlock.
func TestMITKinitLockout(t *testing.T) {
	r := NewRealm(t, RealmOptions{})
	r.mustKDC(t, "", "policy", "add", "lock3", "--max-failures", "3", "--failure-interval", "1h", "--lockout-duration", "0")
	r.mustKDC(t, "", "principal", "modify", UserName, "--policy", "lock3")
	env := r.Env(EnvOptions{})
	mustMITKinit(t, env, UserPassword, UserName)
	for i := range 3 {
		_, stderr, code := mitKinit(t, env, "not-"+UserPassword, UserName)
		if code == 0 || strings.Contains(stderr, "revoked") {
			t.Fatalf("wrong password %d: exit %d: %s", i+1, code, stderr)
		}
		// The count is written off the request path: wait for it, bounded.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(r.mustKDC(t, "", "principal", "show", UserName), "Failed logins:     "+string(rune('1'+i))) {
			if time.Now().After(deadline) {
				t.Fatalf("failure %d not counted:\n%s", i+1, r.mustKDC(t, "", "principal", "show", UserName))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	_, stderr, code := mitKinit(t, env, UserPassword, UserName)
	if code == 0 || !strings.Contains(stderr, "Client's credentials have been revoked") {
		t.Fatalf("the right password after the lockout: exit %d: %s", code, stderr)
	}
	show := r.mustKDC(t, "", "principal", "show", UserName)
	wantContains(t, "principal show", show, "Policy:            lock3", "Failed logins:     3", "Lockout:           locked until unlocked")
	r.mustKDC(t, "", "principal", "unlock", UserName)
	mustMITKinit(t, env, UserPassword, UserName)
	b, err := os.ReadFile(r.DB + ".audit.log")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "audit log", string(b), `"who":"kdc","what":"lockout","target":"`+UserName+"@"+r.Name, `"what":"principal-unlock"`, `"what":"policy-add","target":"lock3"`)
	if strings.Contains(string(b), UserPassword) {
		t.Fatal("a password in the audit log")
	}
}
