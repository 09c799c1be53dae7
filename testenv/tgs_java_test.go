package testenv

import (
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/kerbkit/kerbkit/ticket"
)

// Java 17 (JAAS Krb5LoginModule + JGSS) against our KDC: a third client
// implementation. Its TGS-REQ carries no authenticator subkey (the reply is
// sealed with the TGT session key, usage 8) and sname name-type NT-UNKNOWN (0).

// javaTimeout bounds one run of the JVM.
const javaTimeout = 90 * time.Second

// javaClientSource is the client's source, relative to this package.
const javaClientSource = "testdata/java/KerbkitGssClient.java"

// javaKRB5OID is the krb5 GSS mechanism (RFC 1964): 1.2.840.113554.1.2.2.
var javaKRB5OID = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}

// javaClient compiles KerbkitGssClient.java with javac into t.TempDir() and
// returns the java binary and the classpath. It skips (or fails on CI) without
// javac and java.
func javaClient(t *testing.T) (java, classpath string) {
	t.Helper()
	javac := RequireTool(t, "javac")
	java = RequireTool(t, "java")
	src, err := filepath.Abs(javaClientSource)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, stderr, code := RunTimeout(t, javaTimeout, ClientEnviron(nil), "", javac, "-encoding", "UTF-8", "-Xlint:all", "-Werror", "-d", dir, src); code != 0 {
		t.Fatalf("javac %s: exit %d: %s", src, code, strings.TrimSpace(stderr))
	}
	return java, dir
}

// runJavaClient runs KerbkitGssClient USER SERVICE@HOST [ADDR PORT [MESSAGE]]
// in env with java.security.krb5.conf = env's KRB5_CONFIG and the password on
// stdin, bounded by javaTimeout.
func runJavaClient(t *testing.T, java, classpath string, env []string, user, password, service string, peer ...string) (stdout, stderr string, code int) {
	t.Helper()
	args := []string{
		"-Djava.security.krb5.conf=" + EnvValue(env, "KRB5_CONFIG"),
		// Java's own protocol trace (on stdout) when KERBKIT_JAVA_DEBUG is set.
		"-Dsun.security.krb5.debug=" + fmt.Sprint(os.Getenv("KERBKIT_JAVA_DEBUG") != ""),
		"-XX:TieredStopAtLevel=1",
		"-cp", classpath, "KerbkitGssClient", user, service,
	}
	args = append(args, peer...)
	return RunTimeout(t, javaTimeout, env, password+"\n", java, args...)
}

// javaTicketRE matches the client's "ticket ..." lines.
var javaTicketRE = regexp.MustCompile(`(?m)^ticket client=(\S+) server=(\S+) start=(\S+) end=(\S+) renewTill=(\S+) flags=(\S*) sessionKeyType=(-?[0-9]+)$`)

// TestTGSJavaGSS: Java logs in as alice with the password (AS exchange), then
// JGSS initSecContext for host@localhost gets a service ticket (TGS exchange
// without a subkey, sname type 0). The client prints the ticket; the test
// decodes the AP-REQ token Java produced and decrypts its ticket with the
// host/localhost key from `kdc keytab` (gokrb5 keytab.Load + ticket.OpenTicket).
func TestTGSJavaGSS(t *testing.T) {
	java, cp := javaClient(t)
	r := NewRealm(t, RealmOptions{})
	host := r.Principal("host/localhost")
	env := r.Env(EnvOptions{})
	stdout, stderr, code := runJavaClient(t, java, cp, env, UserName, UserPassword, "host@localhost")
	if code != 0 {
		t.Fatalf("java KerbkitGssClient alice host@localhost: exit %d\nstderr (tail):\n%s\nKDC log:\n%s",
			code, tail(stderr, 6000), tail(r.Log(), 4000))
	}
	wantContains(t, "java output", stdout,
		"login principal="+r.Principal(UserName),
		// JGSS prints the target as the host-based name it was given.
		"context established=true mutual=false src="+r.Principal(UserName)+" targ=host@localhost")
	tgsRequireLog(t, r.Log, "AS_REQ", "client="+r.Principal(UserName), "result=ISSUE")
	tgsRequireLog(t, r.Log, "TGS_REQ", "service="+host, "result=ISSUE")

	// The TGT and the service ticket JGSS stored in the Subject.
	var sawTGT, sawService bool
	for _, m := range javaTicketRE.FindAllStringSubmatch(stdout, -1) {
		client, server, start, end := m[1], m[2], m[3], m[4]
		if client != r.Principal(UserName) {
			t.Errorf("Java ticket client %q, want %q", client, r.Principal(UserName))
		}
		st, err1 := time.Parse(time.RFC3339, start)
		et, err2 := time.Parse(time.RFC3339, end)
		if err1 != nil || err2 != nil {
			t.Errorf("Java ticket times %q %q: %v %v", start, end, err1, err2)
			continue
		}
		if !et.After(time.Now()) || et.Sub(st) < time.Hour {
			t.Errorf("Java ticket for %s: start %s end %s, want valid for at least an hour", server, start, end)
		}
		switch server {
		case "krbtgt/" + r.Name + "@" + r.Name:
			sawTGT = true
		case host:
			sawService = true
			tgsNear(t, "Java service ticket start − now", time.Until(st), 0, time.Minute)
		}
	}
	if !sawTGT {
		t.Errorf("Java printed no TGT:\n%s", stdout)
	}
	if !sawService {
		t.Errorf("Java printed no service ticket for %s:\n%s", host, stdout)
	}

	// The AP-REQ token: 0x60-framed, krb5 OID, TOK_ID 01 00, AP-REQ.
	var tok []byte
	for _, l := range strings.Split(stdout, "\n") {
		if b64, ok := strings.CutPrefix(l, "token "); ok {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if err != nil {
				t.Fatalf("Java token: %v", err)
			}
			tok = b
		}
	}
	if tok == nil {
		t.Fatalf("Java printed no token:\n%s", stdout)
	}
	apreq := javaParseAPReqToken(t, tok)
	kt, err := keytab.Load(r.Keytab)
	if err != nil {
		t.Fatalf("keytab.Load %s: %v", r.Keytab, err)
	}
	tkt := apreq.Ticket
	if got := strings.Join(tkt.SName.NameString, "/"); got != "host/localhost" || tkt.Realm != r.Name {
		t.Errorf("Java's ticket is for %s@%s, want %s", got, tkt.Realm, host)
	}
	key, kvno, err := kt.GetEncryptionKey(tkt.SName, tkt.Realm, tkt.EncPart.KVNO, tkt.EncPart.EType)
	if err != nil {
		t.Fatalf("no keytab key for %v kvno %d etype %d: %v", tkt.SName.NameString, tkt.EncPart.KVNO, tkt.EncPart.EType, err)
	}
	part, err := ticket.OpenTicket(tkt, key)
	if err != nil {
		t.Fatalf("decrypting Java's service ticket with the keytab key (kvno %d): %v", kvno, err)
	}
	if got := strings.Join(part.CName.NameString, "/") + "@" + part.CRealm; got != r.Principal(UserName) {
		t.Errorf("Java's service ticket names client %s, want %s", got, r.Principal(UserName))
	}
	if part.StartTime.IsZero() || part.EndTime.Before(time.Now()) {
		t.Errorf("Java's service ticket times: start %v end %v", part.StartTime, part.EndTime)
	}
	t.Logf("Java's service ticket: sname type %d, kvno %d, etype %d, client %v, %v – %v",
		tkt.SName.NameType, tkt.EncPart.KVNO, tkt.EncPart.EType, part.CName.NameString, part.StartTime, part.EndTime)
}

// TestTGSJavaWrongPassword: Java's login fails with KDC_ERR_PREAUTH_FAILED and
// never reaches the TGS exchange.
func TestTGSJavaWrongPassword(t *testing.T) {
	java, cp := javaClient(t)
	r := NewRealm(t, RealmOptions{})
	_, stderr, code := runJavaClient(t, java, cp, r.Env(EnvOptions{}), UserName, "wrong-"+UserPassword, "host@localhost")
	if code == 0 {
		t.Fatal("Java login with a wrong password succeeded")
	}
	if !strings.Contains(stderr, "Pre-authentication information was invalid") && !strings.Contains(stderr, "(24)") {
		t.Errorf("Java stderr does not report PREAUTH_FAILED (24):\n%s", tail(stderr, 4000))
	}
	if lines := tgsLogLines(r.Log(), "TGS_REQ"); len(lines) != 0 {
		t.Errorf("a TGS request reached the KDC after a failed login:\n%s", strings.Join(lines, "\n"))
	}
}

// javaParseAPReqToken strips the GSS initial-context-token framing (RFC 2743
// §3.1, RFC 4121 §4.1) from tok and decodes the AP-REQ.
func javaParseAPReqToken(t *testing.T, tok []byte) messages.APReq {
	t.Helper()
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(tok, &outer); err != nil || len(rest) != 0 {
		t.Fatalf("GSS token framing: %v (%d trailing bytes)", err, len(rest))
	}
	if outer.Class != asn1.ClassApplication || outer.Tag != 0 {
		t.Fatalf("GSS token: tag class %d number %d, want [APPLICATION 0]", outer.Class, outer.Tag)
	}
	var oid asn1.ObjectIdentifier
	inner, err := asn1.Unmarshal(outer.Bytes, &oid)
	if err != nil {
		t.Fatalf("GSS token mech OID: %v", err)
	}
	if !oid.Equal(javaKRB5OID) {
		t.Fatalf("GSS token mech %v, want krb5 %v", oid, javaKRB5OID)
	}
	if len(inner) < 2 || inner[0] != 0x01 || inner[1] != 0x00 {
		t.Fatalf("GSS token TOK_ID % x, want 01 00 (AP-REQ)", inner[:min(2, len(inner))])
	}
	var apreq messages.APReq
	if err := apreq.Unmarshal(inner[2:]); err != nil {
		t.Fatalf("AP-REQ in Java's token: %v", err)
	}
	return apreq
}
