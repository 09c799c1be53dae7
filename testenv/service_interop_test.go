package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Real initiators (MIT gss-client, curl --negotiate, Java JGSS) against our
// sample service (cmd/kservice), with tickets from our KDC and the keytab it
// exported. See interop-peers.md §3-§5.

// kserviceBuilt holds the kservice binary built once per test binary.
var kserviceBuilt struct {
	once sync.Once
	path string
	err  error
}

// kserviceBinary builds ./cmd/kservice once (into the directory Binaries uses,
// which Main removes) and returns its path. $KERBKIT_KSERVICE_BIN names a
// prebuilt binary instead.
func kserviceBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KERBKIT_KSERVICE_BIN"); p != "" {
		return p
	}
	Binaries(t) // builds kdc and kclient, and makes built.dir
	kserviceBuilt.once.Do(func() {
		dir := built.dir
		if dir == "" { // prebuilt kdc/kclient: no shared directory to build into
			if dir, kserviceBuilt.err = os.MkdirTemp("", "kerbkit-kservice-"); kserviceBuilt.err != nil {
				return
			}
		}
		root, err := ModuleRoot()
		if err != nil {
			kserviceBuilt.err = err
			return
		}
		goTool, err := goCommand()
		if err != nil {
			kserviceBuilt.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
		defer cancel()
		out := filepath.Join(dir, "kservice")
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, "./cmd/kservice")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			kserviceBuilt.err = fmt.Errorf("go build -o %s ./cmd/kservice: %v\n%s", out, err, b)
			return
		}
		kserviceBuilt.path = out
	})
	if kserviceBuilt.err != nil {
		t.Fatalf("building kservice: %v", kserviceBuilt.err)
	}
	return kserviceBuilt.path
}

var (
	kserviceGSSRE  = regexp.MustCompile(`kservice: gss listening on (127\.0\.0\.1:([0-9]+))`)
	kserviceHTTPRE = regexp.MustCompile(`kservice: http listening on (127\.0\.0\.1:([0-9]+))`)
)

// kservice is a running cmd/kservice.
type kservice struct {
	proc     *Process
	gssPort  string
	httpPort string
}

// startKservice runs `kservice --keytab KT --listen 127.0.0.1:0 --http
// 127.0.0.1:0 ARGS...` and waits for both addresses. It is stopped by PID with
// SIGTERM at cleanup, and must then exit 0.
func startKservice(t *testing.T, keytab string, args ...string) *kservice {
	t.Helper()
	bin := kserviceBinary(t)
	args = append([]string{"--keytab", keytab, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}, args...)
	p, err := StartProcess(ClientEnviron(nil), bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	ks := &kservice{proc: p}
	t.Cleanup(func() {
		if err := p.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("kservice (pid %d) did not exit cleanly on SIGTERM: %s", p.PID(), describeExit(err))
		}
		if t.Failed() {
			t.Logf("---- kservice output (pid %d) ----\n%s", p.PID(), tail(p.Output(), 16000))
		}
	})
	for _, re := range []*regexp.Regexp{kserviceGSSRE, kserviceHTTPRE} {
		m, err := p.WaitOutput(re, StartTimeout)
		if err != nil {
			t.Fatalf("kservice: %v\n%s", err, p.Output())
		}
		if re == kserviceGSSRE {
			ks.gssPort = m[2]
		} else {
			ks.httpPort = m[2]
		}
	}
	t.Logf("kservice: gss on 127.0.0.1:%s, http on 127.0.0.1:%s (pid %d)", ks.gssPort, ks.httpPort, p.PID())
	return ks
}

// serviceRealm is our KDC with alice logged in by MIT kinit.
func serviceRealm(t *testing.T, o EnvOptions) (*Realm, []string) {
	t.Helper()
	RequireTool(t, "kinit")
	r := NewRealm(t, RealmOptions{})
	env := r.Env(o)
	mustMITKinit(t, env, UserPassword, UserName)
	return r, env
}

// TestServiceMITGSSClient: MIT gss-client (krb5 and SPNEGO, default flags =
// mutual + replay, wrapped and encrypted message, MIC requested) against
// kservice. gss-client checks our AP-REP and our MIC ("Signature verified");
// kservice logs the message and the authentication.
func TestServiceMITGSSClient(t *testing.T) {
	gssClient := RequireTool(t, "gss-client")
	r, env := serviceRealm(t, EnvOptions{Forwardable: true})
	ks := startKservice(t, r.Keytab, "--service", "host@localhost")
	for _, c := range []struct {
		name  string
		args  []string
		msg   string
		flags []string // gss-client's "context flag" lines
	}{
		{"krb5", nil, "hello", []string{"GSS_C_MUTUAL_FLAG", "GSS_C_REPLAY_FLAG", "GSS_C_CONF_FLAG", "GSS_C_INTEG_FLAG"}},
		{"spnego", []string{"-spnego"}, "hello spnego", []string{"GSS_C_MUTUAL_FLAG"}},
		{"nomutual", []string{"-nomutual"}, "no mutual", nil},
		{"seq+deleg", []string{"-seq", "-d"}, "delegated", []string{"GSS_C_SEQUENCE_FLAG", "GSS_C_DELEG_FLAG"}},
		{"spnego-nomutual", []string{"-spnego", "-nomutual"}, "spnego no mutual", nil},
		{"no wrap, no MIC", []string{"-nw", "-nm"}, "plain text", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"-port", ks.gssPort}, c.args...), "localhost", "host@localhost", c.msg)
			stdout, stderr, code := Run(t, env, "", gssClient, args...)
			if code != 0 {
				t.Fatalf("gss-client %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
			wantContains(t, "gss-client output", stdout, `"alice@`+r.Name+`" to "host/localhost@`+r.Name+`"`)
			if !slices.Contains(c.args, "-nm") {
				wantContains(t, "gss-client output", stdout, "Signature verified")
			}
			wantContains(t, "gss-client output", stdout, c.flags...)
			if _, err := ks.proc.WaitOutput(regexp.MustCompile(regexp.QuoteMeta(`received message: \"`+c.msg+`\"`)), StartTimeout); err != nil {
				t.Errorf("kservice did not log the message: %v", err)
			}
		})
	}
	out := ks.proc.Output()
	if n := strings.Count(out, "result=ok client=alice@"+r.Name+" service=host/localhost@"+r.Name); n != 6 {
		t.Errorf("kservice logged %d successful authentications, want 6:\n%s", n, out)
	}
	if strings.Contains(out, "result=failed") {
		t.Errorf("kservice logged a failure:\n%s", out)
	}
	// gss-client read an AP-REP with our subkey and sequence number.
	wantContains(t, "KRB5_TRACE", Trace(env), "Read AP-REP", "subkey aes256-cts")
}

// TestServiceMITGSSClientWrongService: a ticket for a principal kservice does
// not serve (--service HTTP@localhost) is refused with KRB_AP_ERR_NOT_US and
// gss-client fails.
func TestServiceMITGSSClientWrongService(t *testing.T) {
	gssClient := RequireTool(t, "gss-client")
	r, env := serviceRealm(t, EnvOptions{})
	ks := startKservice(t, r.Keytab, "--service", "HTTP@localhost")
	stdout, _, code := Run(t, env, "", gssClient, "-port", ks.gssPort, "localhost", "host@localhost", "x")
	if code == 0 {
		t.Fatalf("gss-client succeeded against a service that only accepts HTTP/localhost:\n%s", stdout)
	}
	if _, err := ks.proc.WaitOutput(regexp.MustCompile(`result=failed .*code=35 error=KRB_AP_ERR_NOT_US`), StartTimeout); err != nil {
		t.Error(err)
	}
}

// TestServiceCurlNegotiate: curl --negotiate gets 200 and "hello alice@REALM"
// (SPNEGO with an HTTP/localhost ticket); without a ticket (kdestroy) it gets
// 401. curl does not check our final token (interop-peers §4); the Go tests
// and gss-client do.
func TestServiceCurlNegotiate(t *testing.T) {
	curl := RequireTool(t, "curl")
	r, env := serviceRealm(t, EnvOptions{})
	ks := startKservice(t, r.Keytab)
	url := "http://localhost:" + ks.httpPort + "/"
	stdout, stderr, code := Run(t, env, "", curl, "-sS", "--negotiate", "-u", ":", "-w", "\nstatus=%{http_code}\n", url)
	if code != 0 {
		t.Fatalf("curl: exit %d: %s", code, stderr)
	}
	wantContains(t, "curl output", stdout, "hello alice@"+r.Name+"\n", "status=200")
	if _, err := ks.proc.WaitOutput(regexp.MustCompile(`mech=spnego-krb5 remote=127\.0\.0\.1:[0-9]+ result=ok client=alice@`+regexp.QuoteMeta(r.Name)+` service=HTTP/localhost@`), StartTimeout); err != nil {
		t.Error(err)
	}

	kdestroy := RequireTool(t, "kdestroy")
	if _, stderr, code := Run(t, env, "", kdestroy); code != 0 {
		t.Fatalf("kdestroy: %s", stderr)
	}
	stdout, _, code = Run(t, env, "", curl, "-sS", "--negotiate", "-u", ":", "-o", os.DevNull, "-w", "status=%{http_code}\n", url)
	if code != 0 || !strings.Contains(stdout, "status=401") {
		t.Fatalf("curl without a ticket: exit %d, %q; want 401", code, stdout)
	}
}

// kserviceJavaSource is interop-peers.md §5's JGSS sample-protocol client, except that
// the password comes on stdin rather than argv.
const kserviceJavaSource = `
import javax.security.auth.Subject; import javax.security.auth.callback.*; import javax.security.auth.login.*;
import org.ietf.jgss.*; import java.io.*; import java.net.Socket; import java.security.PrivilegedExceptionAction; import java.util.*;
public class GssSampleClient {
  public static void main(String[] a) throws Exception {
    String user=a[0], host=a[1]; int port=Integer.parseInt(a[2]); String svc=a[3];
    String pw=new BufferedReader(new InputStreamReader(System.in)).readLine();
    Map<String,String> o=new HashMap<>(); o.put("refreshKrb5Config","true"); o.put("useTicketCache","false");
    Configuration cfg=new Configuration(){ public AppConfigurationEntry[] getAppConfigurationEntry(String n){
      return new AppConfigurationEntry[]{new AppConfigurationEntry("com.sun.security.auth.module.Krb5LoginModule",
        AppConfigurationEntry.LoginModuleControlFlag.REQUIRED,o)};}};
    CallbackHandler cb=cs->{for(Callback c:cs){ if(c instanceof NameCallback) ((NameCallback)c).setName(user);
      else if(c instanceof PasswordCallback) ((PasswordCallback)c).setPassword(pw.toCharArray());}};
    LoginContext lc=new LoginContext("x",null,cb,cfg); lc.login();
    System.out.println("JAAS login OK");
    Subject.doAs(lc.getSubject(),(PrivilegedExceptionAction<Void>)()->{
      GSSManager m=GSSManager.getInstance();
      GSSContext ctx=m.createContext(m.createName(svc,GSSName.NT_HOSTBASED_SERVICE),
          new Oid("1.2.840.113554.1.2.2"),null,GSSContext.DEFAULT_LIFETIME);
      ctx.requestMutualAuth(true);
      try(Socket s=new Socket(host,port)){
        s.setSoTimeout(30000);
        DataOutputStream out=new DataOutputStream(s.getOutputStream()); DataInputStream in=new DataInputStream(s.getInputStream());
        out.writeByte(0x11); out.writeInt(0);
        byte[] t=new byte[0];
        while(true){ t=ctx.initSecContext(t,0,t.length);
          if(t!=null&&t.length>0){out.writeByte(0x02);out.writeInt(t.length);out.write(t);out.flush();}
          if(ctx.isEstablished()) break;
          in.readUnsignedByte(); t=new byte[in.readInt()]; in.readFully(t); }
        System.out.println("context established; mutual="+ctx.getMutualAuthState()+" src="+ctx.getSrcName()+" targ="+ctx.getTargName());
        byte[] msg="hello from java".getBytes(); byte[] w=ctx.wrap(msg,0,msg.length,new MessageProp(0,true));
        out.writeByte(0xe4); out.writeInt(w.length); out.write(w); out.flush();
        in.readUnsignedByte(); byte[] mic=new byte[in.readInt()]; in.readFully(mic);
        ctx.verifyMIC(mic,0,mic.length,msg,0,msg.length,new MessageProp(0,false));
        System.out.println("server MIC verified");
        out.writeByte(0x01); out.writeInt(0); out.flush(); }
      ctx.dispose(); return null; });
  }
}
`

// TestServiceJavaGSSClient: Java's JAAS login against our KDC, then JGSS with
// mutual authentication against kservice: Java checks our AP-REP
// (mutual=true) and our MIC over its wrapped message.
func TestServiceJavaGSSClient(t *testing.T) {
	java, javac := kserviceJava(t)
	r := NewRealm(t, RealmOptions{})
	env := r.Env(EnvOptions{})
	ks := startKservice(t, r.Keytab, "--service", "host@localhost")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "GssSampleClient.java"), []byte(kserviceJavaSource), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := Run(t, env, "", javac, "-d", dir, filepath.Join(dir, "GssSampleClient.java")); code != 0 {
		t.Fatalf("javac: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := Run(t, env, UserPassword, java, "-Djava.security.krb5.conf="+EnvValue(env, "KRB5_CONFIG"),
		"-cp", dir, "GssSampleClient", UserName, "127.0.0.1", ks.gssPort, "host@localhost")
	if code != 0 {
		t.Fatalf("java GssSampleClient: exit %d\n%s%s", code, stdout, stderr)
	}
	wantContains(t, "java output", stdout, "JAAS login OK", "mutual=true", "src="+r.Principal(UserName), "server MIC verified")
	if _, err := ks.proc.WaitOutput(regexp.MustCompile(regexp.QuoteMeta(`received message: \"hello from java\"`)), StartTimeout); err != nil {
		t.Error(err)
	}
}

// kserviceJava finds java and javac (OpenJDK), skipping (or failing with CI=true)
// when either is missing.
func kserviceJava(t *testing.T) (java, javac string) {
	t.Helper()
	for _, name := range []string{"java", "javac"} {
		p, err := LookTool(name)
		if err != nil {
			unavailable(t, "%s not found (install the Debian package openjdk-17-jdk-headless): %v", name, err)
		}
		if name == "java" {
			java = p
		} else {
			javac = p
		}
	}
	return java, javac
}
