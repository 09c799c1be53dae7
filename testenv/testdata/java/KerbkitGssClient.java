// KerbkitGssClient is a third Kerberos client implementation for kerbkit's interop tests (testenv): Java's JAAS
// Krb5LoginModule for the AS exchange and JGSS for the TGS exchange and the krb5 GSS context. Java sends no TGS
// subkey (so the TGS-REP is sealed with the TGT session key, usage 8) and sname name-type NT-UNKNOWN (0).
//
// Usage (the password is one line on stdin, never in argv):
//
//   java -Djava.security.krb5.conf=KRB5CONF KerbkitGssClient USER SERVICE@HOST
//   java -Djava.security.krb5.conf=KRB5CONF KerbkitGssClient USER SERVICE@HOST ADDR PORT [MESSAGE]
//
// Without ADDR PORT it logs in, creates a context for SERVICE@HOST (a host-based service name) without mutual
// authentication, produces the first context token (the TGS exchange happens here) and prints what it got:
//
//   login principal=alice@REALM
//   context established=true mutual=false src=alice@REALM targ=host@localhost lifetime=...
//   ticket client=alice@REALM server=host/localhost@REALM start=2026-...Z end=...Z renewTill=...Z flags=...
//       sessionKeyType=18
//   token <base64 of the 0x60-framed krb5 AP-REQ token>
//
// With ADDR PORT it runs MIT's gss-sample protocol (interop-peers.md section 3) against ADDR:PORT with mutual
// authentication: 0x11 NOOP|CONTEXT_NEXT, then CONTEXT tokens both ways until the context is established (the
// acceptor's AP-REP is verified by JGSS), then MESSAGE wrapped and sealed with DATA|WRAPPED|ENCRYPTED|SEND_MIC
// (0xe4), then the acceptor's MIC of MESSAGE is verified, then a NOOP closes. It prints the same "login", "context"
// and "ticket" lines plus "mic verified". Any failure prints "error ..." on stderr and exits 1.
//
// Add -Dsun.security.krb5.debug=true for Java's own protocol trace.

import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.PrivilegedExceptionAction;
import java.text.SimpleDateFormat;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.Map;
import java.util.TimeZone;
import javax.security.auth.Subject;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.CallbackHandler;
import javax.security.auth.callback.NameCallback;
import javax.security.auth.callback.PasswordCallback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.kerberos.KerberosTicket;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import javax.security.auth.login.LoginContext;
import org.ietf.jgss.GSSContext;
import org.ietf.jgss.GSSManager;
import org.ietf.jgss.GSSName;
import org.ietf.jgss.MessageProp;
import org.ietf.jgss.Oid;

public final class KerbkitGssClient {
  // gss-sample token flags (MIT src/appl/gss-sample/gss-misc.h).
  static final int TOKEN_NOOP = 0x01, TOKEN_CONTEXT = 0x02, TOKEN_DATA = 0x04, TOKEN_MIC = 0x08,
      TOKEN_CONTEXT_NEXT = 0x10, TOKEN_WRAPPED = 0x20, TOKEN_ENCRYPTED = 0x40, TOKEN_SEND_MIC = 0x80;
  static final int MAX_TOKEN = 1 << 20;
  static final int SOCKET_TIMEOUT_MS = 30_000;
  static final String KRB5_MECH = "1.2.840.113554.1.2.2";

  public static void main(String[] args) {
    try {
      System.exit(run(args));
    } catch (Exception e) {
      System.err.println("error " + e);
      for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
        System.err.println("caused by " + c);
      }
      System.exit(1);
    }
  }

  static int run(String[] args) throws Exception {
    if (args.length != 2 && args.length != 4 && args.length != 5) {
      System.err.println("usage: KerbkitGssClient USER SERVICE@HOST [ADDR PORT [MESSAGE]]  (password on stdin)");
      return 2;
    }
    final String user = args[0], service = args[1];
    final String addr = args.length >= 4 ? args[2] : null;
    final int port = args.length >= 4 ? Integer.parseInt(args[3]) : 0;
    final String message = args.length == 5 ? args[4] : "hello from java";
    final char[] password = readPassword();

    Map<String, String> opts = new HashMap<>();
    opts.put("refreshKrb5Config", "true");
    opts.put("useTicketCache", "false");
    opts.put("doNotPrompt", "false");
    opts.put("storeKey", "false");
    Configuration cfg = new Configuration() {
      @Override
      public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
        return new AppConfigurationEntry[] {new AppConfigurationEntry(
            "com.sun.security.auth.module.Krb5LoginModule",
            AppConfigurationEntry.LoginModuleControlFlag.REQUIRED, opts)};
      }
    };
    CallbackHandler cb = callbacks -> {
      for (Callback c : callbacks) {
        if (c instanceof NameCallback) {
          ((NameCallback) c).setName(user);
        } else if (c instanceof PasswordCallback) {
          ((PasswordCallback) c).setPassword(password);
        } else {
          throw new UnsupportedCallbackException(c);
        }
      }
    };
    LoginContext lc = new LoginContext("kerbkit", new Subject(), cb, cfg);
    lc.login(); // AS exchange
    final Subject subject = lc.getSubject();
    System.out.println("login principal=" + subject.getPrincipals().iterator().next().getName());

    Subject.doAs(subject, (PrivilegedExceptionAction<Void>) () -> {
      GSSManager m = GSSManager.getInstance();
      GSSName target = m.createName(service, GSSName.NT_HOSTBASED_SERVICE);
      GSSContext ctx = m.createContext(target, new Oid(KRB5_MECH), null, GSSContext.DEFAULT_LIFETIME);
      try {
        if (addr == null) {
          ctx.requestMutualAuth(false);
          byte[] tok = ctx.initSecContext(new byte[0], 0, 0); // TGS exchange, then the AP-REQ token
          printContext(ctx);
          printTickets(subject);
          System.out.println("token " + Base64.getEncoder().encodeToString(tok));
        } else {
          ctx.requestMutualAuth(true);
          ctx.requestConf(true);
          ctx.requestInteg(true);
          sampleProtocol(ctx, subject, addr, port, message);
        }
      } finally {
        ctx.dispose();
      }
      return null;
    });
    lc.logout();
    return 0;
  }

  // sampleProtocol runs the gss-sample client side (MIT gss-client.c client_establish_context + call_server).
  static void sampleProtocol(GSSContext ctx, Subject subject, String addr, int port, String message)
      throws Exception {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(addr, port), SOCKET_TIMEOUT_MS);
      s.setSoTimeout(SOCKET_TIMEOUT_MS);
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      DataInputStream in = new DataInputStream(s.getInputStream());
      sendToken(out, TOKEN_NOOP | TOKEN_CONTEXT_NEXT, new byte[0]);
      byte[] tok = new byte[0];
      while (true) {
        tok = ctx.initSecContext(tok, 0, tok.length);
        if (tok != null && tok.length > 0) {
          sendToken(out, TOKEN_CONTEXT, tok);
        }
        if (ctx.isEstablished()) {
          break;
        }
        Token t = readToken(in);
        if ((t.flags & TOKEN_CONTEXT) == 0) {
          throw new IOException(String.format("expected a CONTEXT token, got flags 0x%02x", t.flags));
        }
        tok = t.body;
      }
      printContext(ctx);
      printTickets(subject);
      if (!ctx.getMutualAuthState()) {
        throw new IOException("context established without mutual authentication");
      }
      byte[] msg = message.getBytes(StandardCharsets.UTF_8);
      byte[] wrapped = ctx.wrap(msg, 0, msg.length, new MessageProp(0, true));
      sendToken(out, TOKEN_DATA | TOKEN_WRAPPED | TOKEN_ENCRYPTED | TOKEN_SEND_MIC, wrapped);
      Token mic = readToken(in);
      if ((mic.flags & TOKEN_MIC) == 0) {
        throw new IOException(String.format("expected a MIC token, got flags 0x%02x", mic.flags));
      }
      ctx.verifyMIC(mic.body, 0, mic.body.length, msg, 0, msg.length, new MessageProp(0, false));
      System.out.println("mic verified");
      sendToken(out, TOKEN_NOOP, new byte[0]);
    }
  }

  static final class Token {
    final int flags;
    final byte[] body;

    Token(int flags, byte[] body) {
      this.flags = flags;
      this.body = body;
    }
  }

  static void sendToken(DataOutputStream out, int flags, byte[] body) throws IOException {
    out.writeByte(flags);
    out.writeInt(body.length);
    out.write(body);
    out.flush();
  }

  static Token readToken(DataInputStream in) throws IOException {
    int flags = in.readUnsignedByte();
    int len = in.readInt();
    if (len < 0 || len > MAX_TOKEN) {
      throw new IOException("token length " + len + " out of range");
    }
    byte[] body = new byte[len];
    in.readFully(body);
    return new Token(flags, body);
  }

  static void printContext(GSSContext ctx) throws Exception {
    System.out.println("context established=" + ctx.isEstablished() + " mutual=" + ctx.getMutualAuthState()
        + " src=" + ctx.getSrcName() + " targ=" + ctx.getTargName() + " lifetime=" + ctx.getLifetime());
  }

  // printTickets prints every Kerberos ticket in the subject: the TGT from the login and the service ticket that
  // JGSS stores there after the TGS exchange.
  static void printTickets(Subject subject) {
    for (KerberosTicket t : subject.getPrivateCredentials(KerberosTicket.class)) {
      StringBuilder flags = new StringBuilder();
      boolean[] f = t.getFlags();
      for (int i = 0; f != null && i < f.length; i++) {
        if (f[i]) {
          flags.append(flags.length() == 0 ? "" : ",").append(i);
        }
      }
      System.out.println("ticket client=" + t.getClient() + " server=" + t.getServer()
          + " start=" + time(t.getStartTime()) + " end=" + time(t.getEndTime())
          + " renewTill=" + time(t.getRenewTill()) + " flags=" + flags
          + " sessionKeyType=" + t.getSessionKeyType());
    }
  }

  static String time(Date d) {
    if (d == null) {
      return "-";
    }
    SimpleDateFormat f = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss'Z'");
    f.setTimeZone(TimeZone.getTimeZone("UTC"));
    return f.format(d);
  }

  static char[] readPassword() throws IOException {
    String line = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
    if (line == null || line.isEmpty()) {
      throw new IOException("no password on stdin");
    }
    return line.toCharArray();
  }
}
