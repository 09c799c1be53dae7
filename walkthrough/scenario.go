package walkthrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/clock"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// ScenarioInfo names a failure story.
type ScenarioInfo struct {
	// Name is what --scenario takes.
	Name string `json:"name"`
	// Title is a one-line heading; Summary says in a sentence what goes wrong.
	Title   string `json:"title"`
	Summary string `json:"summary"`
}

// scenario is a failure story: how its realm differs from the standard one, and what is played in it.
type scenario struct {
	ScenarioInfo
	// user and password override the realm's user (a deliberately weak password, for the guessing stories).
	user, password string
	// spec varies the realm; clocks are set up before it is called.
	spec func(sc *scene) realmSpec
	// play runs the exchanges and fills in the story and its failure.
	play func(ctx context.Context, sc *scene) error
}

// scenarios are the failure stories, in the order `--scenario list` shows them.
var scenarios = []scenario{
	{ScenarioInfo: ScenarioInfo{Name: "wrong-password", Title: "A wrong password: KDC_ERR_PREAUTH_FAILED",
		Summary: "The user mistypes the password; the KDC cannot open the encrypted timestamp and refuses, never having seen the password."},
		play: playWrongPassword},
	{ScenarioInfo: ScenarioInfo{Name: "no-preauth", Title: "No pre-authentication: anyone can ask for message A, and guess the password offline",
		Summary: "A principal without requires-preauth gets message A sent to whoever asks in its name; A is sealed in a key made from the password."},
		user: "bob", password: "dragon", spec: func(*scene) realmSpec { return realmSpec{userNoPreauth: true} },
		play: playNoPreauth},
	{ScenarioInfo: ScenarioInfo{Name: "clock-skew", Title: "Clock skew: KRB_AP_ERR_SKEW",
		Summary: "The service's clock is ten minutes ahead; by its clock the client's fresh authenticator is ten minutes old."},
		spec: func(sc *scene) realmSpec {
			sc.svcClock.Set(10 * time.Minute)
			return realmSpec{serviceNow: sc.svcClock.Now}
		},
		play: playClockSkew},
	{ScenarioInfo: ScenarioInfo{Name: "replay", Title: "A replayed authenticator: KRB_AP_ERR_REPEAT",
		Summary: "An attacker captures a working AP-REQ off the wire and sends it again; the service's replay cache has seen it."},
		play: playReplay},
	{ScenarioInfo: ScenarioInfo{Name: "expired-tgt", Title: "An expired ticket-granting ticket: KRB_AP_ERR_TKT_EXPIRED",
		Summary: "The user logged in eleven hours ago; the TGT lived ten. The TGS refuses to issue anything with it."},
		spec: func(sc *scene) realmSpec { return realmSpec{kdcNow: sc.kdcClock.Now} },
		play: playExpiredTGT},
	{ScenarioInfo: ScenarioInfo{Name: "stale-keytab", Title: "A service key rotated without updating the keytab: KRB_AP_ERR_BADKEYVER",
		Summary: "The KDC has the service's new key (kvno 2) and issues tickets in it; the service's keytab still holds kvno 1."},
		play: playStaleKeytab},
	{ScenarioInfo: ScenarioInfo{Name: "tampered-ticket", Title: "A ticket tampered with in transit: KRB_AP_ERR_BAD_INTEGRITY",
		Summary: "Something on the path changes one byte of the TGT in a TGS-REQ; the KDC's integrity check catches it."},
		play: playTampered},
	{ScenarioInfo: ScenarioInfo{Name: "weak-service-key", Title: "A service key made from a weak password: any user can guess it offline",
		Summary: "Any user of the realm can get a ticket for the service; the ticket is sealed in a key made from a guessable password."},
		spec: func(*scene) realmSpec { return realmSpec{servicePassword: weakServicePassword} },
		play: playWeakServiceKey},
}

// weakServicePassword is the deliberately weak password of the weak-service-key story.
const weakServicePassword = "Password1"

// commonPasswords are the few guesses the guessing stories try, the right one among them: a demonstration, not
// a word list.
var commonPasswords = []string{"123456", "password", "qwerty", "letmein", "iloveyou", "dragon", "Password1"}

// Scenarios lists the failure stories.
func Scenarios() []ScenarioInfo {
	out := make([]ScenarioInfo, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.ScenarioInfo
	}
	return out
}

// ScenarioNames returns the names --scenario takes.
func ScenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.Name)
	}
	return out
}

// scene is a failure story being played: the realm, the recorder, and the story being filled in.
type scene struct {
	o         RunOptions
	env       *realmEnv
	rec       *Recorder
	user, svc principal.Name
	cfg       *client.Config
	st        *Story
	// kdcClock and svcClock are the KDC's and the service's clocks (used only when spec says so).
	kdcClock, svcClock *clock.Offset
	// err is the error the failing exchange returned.
	err error
}

// RunScenario plays the failure story name (see Scenarios) in a throw-away realm, as Run does for the story of
// a login that works: the real KDC and service, the injectable clocks where time matters, and the real client.
// The story names the check that failed as its receiver names it, the KRB-ERROR that came back, what MIT's and
// our tools print, what the check protects against and how to fix the cause.
func RunScenario(ctx context.Context, name string, o RunOptions) (*Story, error) {
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("walkthrough: no scenario %q (one of: %s)", name, strings.Join(ScenarioNames(), ", "))
	}
	sn := scenarios[i]
	if sn.user != "" {
		o.User, o.Password = sn.user, sn.password
	}
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	sc := &scene{o: o, kdcClock: &clock.Offset{}, svcClock: &clock.Offset{}}
	var spec realmSpec
	if sn.spec != nil {
		spec = sn.spec(sc)
	}
	env, err := startRealm(ctx, o, spec)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	sc.env = env
	if sc.user, err = client.ParsePrincipal(o.User, o.Realm); err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	if sc.svc, err = client.ParsePrincipal(o.Service, o.Realm); err != nil {
		return nil, fmt.Errorf("walkthrough: %w", err)
	}
	sc.cfg = &client.Config{Realm: o.Realm, KDCs: map[string][]string{o.Realm: {env.kdcAddr}}}
	sc.st = &Story{
		Title: "Failure story: " + sn.Title, View: ViewRealm, Scenario: sn.Name,
		Realm: o.Realm, Client: sc.user.String(), Service: sc.svc.String(),
		KDCAddr: env.kdcAddr, ServiceAddr: env.svcAddr, Failure: &Failure{},
	}
	if err := sn.play(ctx, sc); err != nil {
		return nil, fmt.Errorf("walkthrough: scenario %s: %w", name, err)
	}
	sc.rec.Flush()
	sc.st.Steps = sc.rec.Steps()
	sc.diagnose()
	return sc.st, nil
}

// newRecorder makes the scene's recorder: every key of the realm known, the password the user typed (if any),
// and the KDC's and the service's checks heard.
func (sc *scene) newRecorder(typed string, hasPassword bool) {
	sc.rec = NewRecorder(Options{
		View: ViewRealm, RealmKey: storeKeys(sc.env.store), Password: typed, HasPassword: hasPassword,
		ShowPassword: true, ShowKeys: true,
	})
	sc.env.listen(sc.rec)
}

// typePassword records the user typing a password: string-to-key with the salt and enctype the realm keeps.
func (sc *scene) typePassword(ctx context.Context) {
	if rec, err := sc.env.store.Get(ctx, sc.user); err == nil {
		if ks := rec.CurrentKeys(); len(ks) > 0 {
			sc.rec.StringToKey(sc.user, ks[0].Etype, ks[0].Salt, nil,
				"the realm's record of "+sc.user.String()+"; the KDC announces the same in PA-ETYPE-INFO2")
		}
	}
}

// newClient returns a client of the realm whose messages the recorder sees as actor's.
func (sc *scene) newClient(actor string, kdcAddr string) (*client.Client, error) {
	cfg := sc.cfg
	if kdcAddr != "" {
		cfg = &client.Config{Realm: sc.o.Realm, KDCs: map[string][]string{sc.o.Realm: {kdcAddr}}}
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	c.Trace = func(ev client.Event) {
		w := Wire{Data: ev.Data, Sent: ev.Sent, Addr: ev.KDC, Network: string(ev.Network), Round: ev.Round, Time: ev.Time, Actor: actor}
		sc.rec.Add(w)
	}
	return c, nil
}

// login runs the AS exchange for the user with the right password.
func (sc *scene) login(ctx context.Context) (*client.ASResult, error) {
	c, err := sc.newClient(ActorClient, "")
	if err != nil {
		return nil, err
	}
	return c.Login(ctx, client.ASRequest{Client: sc.user, Secret: client.PasswordSecret(sc.o.Password)})
}

// serviceTicket runs the TGS exchange for the service with the TGT of as.
func (sc *scene) serviceTicket(ctx context.Context, as *client.ASResult) (*client.TGSResult, error) {
	c, err := sc.newClient(ActorClient, "")
	if err != nil {
		return nil, err
	}
	return c.TGS(ctx, client.TGSRequest{TGT: as.Credential, Server: sc.svc})
}

// request runs the AP exchange with the service over the GSS sample protocol, every byte the client writes
// also kept in sent (for the replay story).
func (sc *scene) request(ctx context.Context, tgs *client.TGSResult, sent *bytes.Buffer) error {
	ap, err := client.NewAPRequest(tgs.Credential, client.APOptions{})
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", sc.env.svcAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	var c net.Conn = conn
	if sent != nil {
		c = &tapConn{Conn: conn, sent: sent}
	}
	_, err = client.GSSSample(ctx, sc.rec.RecordConn(c), ap, client.GSSSampleOptions{Message: []byte(sc.o.Message), Timeout: 5 * time.Second})
	return err
}

// kclientLine is what kclient prints for err, as its commands word it: KDC errors as "<MIT text> <during>"
// (kclient login and ticket), everything else as the error itself (kclient request).
func kclientLine(err error, during string) string {
	var rej *client.RejectedError
	var ke *client.KDCError
	switch {
	case errors.As(err, &rej):
		return "kclient: " + strings.TrimPrefix(err.Error(), "client: ")
	case errors.As(err, &ke):
		return "kclient: " + ke.Text() + " " + during
	}
	return "kclient: " + strings.TrimPrefix(err.Error(), "client: ")
}

// serviceLogLine is the service's log line for the refused authentication (what kservice prints).
func (sc *scene) serviceLogLine() []string {
	lines := sc.env.svcLog.lines("msg=authentication", "result=failed")
	for i, l := range lines {
		lines[i] = "kservice log: " + strings.ReplaceAll(l, sc.env.dir+"/", "")
	}
	return lines
}

// diagnose completes the failure from the steps: which receiver check failed, on which step, and the
// KRB-ERROR that came back.
func (sc *scene) diagnose() {
	f := sc.st.Failure
	for i := len(sc.st.Steps) - 1; i >= 0 && f.Check == ""; i-- {
		s := &sc.st.Steps[i]
		if c := failedCheck(s); c != nil {
			f.StepID, f.By, f.Stage, f.Check, f.Detail = s.ID, c.By, c.Stage, c.Text, strings.ReplaceAll(c.Detail, sc.env.dir+"/", "")
			c.Detail = f.Detail
		}
	}
	var ke *client.KDCError
	if errors.As(sc.err, &ke) && !ke.Local {
		f.Code, f.CodeName, f.EText = ke.Code, codeName(ke.Code), ke.EText
	}
}

// tapConn keeps a copy of what is written.
type tapConn struct {
	net.Conn
	mu   sync.Mutex
	sent *bytes.Buffer
}

func (t *tapConn) Write(b []byte) (int, error) {
	n, err := t.Conn.Write(b)
	t.mu.Lock()
	t.sent.Write(b[:n])
	t.mu.Unlock()
	return n, err
}

// ---------------------------------------------------------------------------------------------------------
// The stories.

func playWrongPassword(ctx context.Context, sc *scene) error {
	typed := mistype(sc.o.Password)
	sc.newRecorder(typed, true)
	sc.typePassword(ctx)
	c, err := sc.newClient(ActorClient, "")
	if err != nil {
		return err
	}
	_, sc.err = c.Login(ctx, client.ASRequest{Client: sc.user, Secret: client.PasswordSecret(typed)})
	if !client.IsCode(sc.err, 24) {
		return fmt.Errorf("login with a wrong password: want KDC_ERR_PREAUTH_FAILED, got %v", sc.err)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("The realm %s has the user %s, whose password is %q. The user types %q instead: two letters swapped. "+
			"Everything below really crossed the loopback interface, between the real client and the real KDC.", sc.o.Realm, sc.user, sc.o.Password, typed),
		"Watch what the KDC gets: not the password, not even the key, only a timestamp encrypted in the key the client " +
			"derived from what was typed. The KDC tries to decrypt it with the key it stores; the integrity check fails, and " +
			"that is all the KDC learns.",
	}
	f.MIT = []string{"kinit: Password incorrect while getting initial credentials"}
	f.Ours = []string{kclientLine(sc.err, "while getting initial credentials")}
	f.Protects = "The password never leaves the client, and the KDC never sees it: it stores only the key derived from it, " +
		"and the client proves it has the same key by encrypting the current time. A wrong password gives another key, the " +
		"timestamp does not decrypt, and the KDC refuses without sending message A, so nobody learns anything to guess " +
		"the password from. Because the timestamp must be within the clock skew, a captured PA-ENC-TIMESTAMP is useless " +
		"a few minutes later."
	f.Fix = []string{
		"Type the password again (Caps Lock, keyboard layout).",
		"If it is forgotten, an administrator sets a new one: kdc principal passwd " + sc.o.User + " (MIT: kadmin -q \"cpw " + sc.o.User + "\").",
		"If it happens with a keytab (kinit -k), the keytab holds old keys: export it again after every password or key change.",
	}
	st.Outro = []string{"The KDC refused without revealing anything, and without ever having seen what was typed."}
	return nil
}

// mistype swaps the last two letters of a password.
func mistype(pw string) string {
	r := []rune(pw)
	if len(r) < 2 {
		return pw + "x"
	}
	r[len(r)-1], r[len(r)-2] = r[len(r)-2], r[len(r)-1]
	if string(r) == pw {
		return pw + "x"
	}
	return string(r)
}

func playNoPreauth(ctx context.Context, sc *scene) error {
	// The attacker knows the name, not the password: the recorder is given none, and opens A with the realm's key.
	sc.newRecorder("", false)
	c, err := sc.newClient(ActorAttacker, "")
	if err != nil {
		return err
	}
	var asRep []byte
	trace := c.Trace
	c.Trace = func(ev client.Event) {
		if !ev.Sent && ev.Message == "AS-REP" {
			asRep = bytes.Clone(ev.Data)
		}
		trace(ev)
	}
	// The attacker's request is an ordinary AS-REQ in bob's name. It does not know the password, so the client it
	// uses cannot open the reply; it does not need to, it keeps the ciphertext.
	_, sc.err = c.Login(ctx, client.ASRequest{Client: sc.user, Secret: client.PasswordSecret("the attacker does not know it")})
	if asRep == nil {
		return fmt.Errorf("the KDC answered no AS-REP to an AS-REQ without pre-authentication: %v", sc.err)
	}
	var rep ticket.KDCRepWire
	if err := unmarshalApp(asRep, &rep, 11); err != nil {
		return err
	}
	salt := sc.user.Salt()
	source := "the default salt (realm + name), which is public"
	var params []byte
	for _, h := range padataHints(rep.PAData) {
		if h.EType == rep.EncPart.EType {
			if h.Salt != "" {
				salt = h.Salt
			}
			params, source = h.S2KParams, "PA-ETYPE-INFO2 in the AS-REP the attacker received"
		}
	}
	target := guessTarget{
		letter: "A", what: "message A (the AS-REP enc-part)", owner: sc.user.String(),
		etype: rep.EncPart.EType, salt: salt, params: params, source: source,
		usage: int(keyusage.AS_REP_ENCPART), cipherSize: len(rep.EncPart.Cipher),
		open: func(k types.EncryptionKey) (string, bool) {
			part, err := ticket.DecryptReplyPart(rep.EncPart, k, keyusage.AS_REP_ENCPART)
			if err != nil {
				return "", false
			}
			return fmt.Sprintf("A decrypts to an EncASRepPart with the session key and the nonce %d", part.Nonce), true
		},
	}
	step, res := offlineGuess(target, commonPasswords, true)
	sc.rec.AddStep(step)
	if res.found != sc.o.Password {
		return fmt.Errorf("offline guessing found %q, want %q", res.found, sc.o.Password)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("The realm %s has the user %s with the password %q (deliberately one of the most common passwords), "+
			"created without the requires-preauth flag (kdc principal add %s --no-preauth).", sc.o.Realm, sc.user, sc.o.Password, sc.o.User),
		"The attacker is not bob and does not know the password. It only knows the name. It sends an ordinary AS-REQ in bob's " +
			"name, and the KDC, which requires no proof from bob, answers with message A: the session key sealed in bob's key, " +
			"which is made from bob's password. The attacker takes A home and guesses, offline, as fast as its machines allow.",
	}
	f.StepID, f.By = "offline-guess", ActorAttacker
	f.Check = "nothing on the wire failed: " + sc.user.String() + " does not require pre-authentication, so the AS answered an " +
		"AS-REQ that proved nothing, and handed out ciphertext made with the password"
	f.MIT = []string{
		"kinit bob: works as always; nothing warns that anyone else can get the same reply",
		"kadmin.local -q \"getprinc bob\": Attributes: (REQUIRES_PRE_AUTH is missing)",
	}
	f.Ours = []string{"kclient login bob: works as always", "kdc principal show bob: requires_preauth is false"}
	f.Protects = "Pre-authentication (PA-ENC-TIMESTAMP) makes the client prove it knows the key before the KDC sends anything " +
		"sealed in it. Without it, the AS answers anyone who asks (\"AS-REP roasting\"), and every answer is a free, offline " +
		"password-guessing oracle: the integrity check of message A says when a guess is right."
	f.Fix = []string{
		"Require pre-authentication for every user: kdc principal add without --no-preauth (the default); MIT: " +
			"kadmin -q \"modprinc +requires_preauth bob\", and default_principal_flags = +preauth in kdc.conf.",
		"Use passwords with real entropy (a passphrase of random words), so that even ciphertext that leaks cannot be guessed.",
		"Watch the KDC log for AS-REQs without padata that are answered with AS-REPs.",
	}
	st.Outro = []string{"A handful of guesses found the password, with nobody able to notice: the KDC saw one ordinary request."}
	return nil
}

func playClockSkew(ctx context.Context, sc *scene) error {
	sc.newRecorder(sc.o.Password, true)
	sc.typePassword(ctx)
	as, err := sc.login(ctx)
	if err != nil {
		return err
	}
	tgs, err := sc.serviceTicket(ctx, as)
	if err != nil {
		return err
	}
	sc.err = sc.request(ctx, tgs, nil)
	if !client.IsCode(sc.err, 37) {
		return fmt.Errorf("AP exchange with a skewed service: want KRB_AP_ERR_SKEW, got %v", sc.err)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("The realm %s, its KDC and the client agree on the time. The service %s runs on a host whose clock is "+
			"ten minutes ahead (the walkthrough set the service's injectable clock 10 minutes forward).", sc.o.Realm, sc.svc),
		"The login and the service ticket work: the KDC's clock is right. Then the client sends its authenticator, stamped " +
			"with the time; by the service's clock it was made ten minutes ago, beyond the five minutes allowed.",
	}
	f.MIT = []string{
		"gss-server (MIT's sample service, on the fast host): GSS-API error accepting context: Clock skew too great",
		"gss-client, reading the KRB-ERROR: GSS-API error initializing context: Clock skew too great",
		"with the service's clock behind instead, MIT's acceptor first finds the brand-new ticket not yet valid and says " +
			"Ticket not yet valid (KRB_AP_ERR_TKT_NYV); kerbkit checks the authenticator's time first, in RFC 4120 §3.2.3's " +
			"order, and says Clock skew too great either way",
	}
	f.Ours = append([]string{kclientLine(sc.err, "")}, sc.serviceLogLine()...)
	f.Protects = "An authenticator is only proof of anything while it is fresh: the service accepts it within the clock skew " +
		"(5 minutes) of its own clock, and remembers the ones it accepted for that long (the replay cache). An authenticator " +
		"captured off the wire is therefore useless minutes later, without the service keeping anything forever."
	f.Fix = []string{
		"Keep every host's clock synchronised (chrony or systemd-timesyncd against the same NTP servers as the KDC).",
		"Do not widen clockskew in krb5.conf to hide it: that widens the window in which a captured authenticator works.",
		"Clients adjust to the KDC's clock by themselves (MIT: kdc_timesync, from the KDC's time in its replies), so a wrong " +
			"client clock rarely shows; a wrong service clock always does.",
	}
	st.Outro = []string{"Every message was genuine; only the service's clock was wrong."}
	return nil
}

func playReplay(ctx context.Context, sc *scene) error {
	sc.newRecorder(sc.o.Password, true)
	sc.typePassword(ctx)
	as, err := sc.login(ctx)
	if err != nil {
		return err
	}
	tgs, err := sc.serviceTicket(ctx, as)
	if err != nil {
		return err
	}
	var sent bytes.Buffer
	if err := sc.request(ctx, tgs, &sent); err != nil {
		return err
	}
	// The attacker, who saw the connection, sends its first two tokens again: NOOP|CONTEXT_NEXT and the context
	// token with the AP-REQ, byte for byte.
	opening, err := sampleOpening(sent.Bytes())
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", sc.env.svcAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	rc := sc.rec.recordConnAs(conn, ActorAttacker)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.Write(opening); err != nil {
		return err
	}
	flags, tok, err := ticket.ReadSampleToken(rc, maxRecordedToken)
	if err != nil {
		return fmt.Errorf("reading the service's answer to the replay: %w", err)
	}
	if flags&ticket.SampleContext == 0 || len(tok) == 0 {
		return fmt.Errorf("the service answered the replay with flags 0x%02x", flags)
	}
	_, krbErr, err := ticket.ParseKRB5Token(tok)
	if err != nil {
		return fmt.Errorf("the service's answer to the replay: %w", err)
	}
	m, err := ticket.ParseKRBError(krbErr)
	if err != nil {
		return fmt.Errorf("the service's answer to the replay: %w", err)
	}
	if m.KRBError.ErrorCode != 34 {
		return fmt.Errorf("the replay got %s, want KRB_AP_ERR_REPEAT", codeName(m.KRBError.ErrorCode))
	}
	sc.err = &client.KDCError{Code: m.KRBError.ErrorCode, EText: m.KRBError.EText}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("%s logs in, gets a ticket for %s and authenticates to it, as in the walkthrough. An attacker on the network "+
			"records that connection. A moment later it opens a connection of its own and sends the client's first tokens "+
			"again, byte for byte: the AP-REQ with ticket E and authenticator G.", sc.user, sc.svc),
		"The attacker cannot decrypt anything, but it does not need to: if the service believed the AP-REQ, the attacker would " +
			"be talking to it as " + sc.user.String() + ". Everything in it is genuine: the ticket decrypts, the authenticator " +
			"decrypts, the names match, the time is fresh.",
	}
	f.MIT = []string{"gss-server (MIT's sample service, with its replay cache on): GSS-API error accepting context: Request is a replay"}
	f.Ours = sc.serviceLogLine()
	f.Protects = "A ticket can be used many times, so its authenticator is what proves the sender holds the session key now. " +
		"Without a replay cache an authenticator could be replayed for the whole clock-skew window; with it, each " +
		"(client, server, ctime, cusec) is accepted once. Only an authenticator that passed every other check is entered, " +
		"so refused requests cannot fill the cache."
	f.Fix = []string{
		"Nothing to fix when an attacker did it: the service did its job.",
		"When honest clients see it: instances of a service that share a principal must share one replay cache; an " +
			"application must not resend the same AP-REQ on retry, but make a new one.",
		"Better still, protect the channel (TLS, or GSS wrap tokens as here): a replayed AP-REQ then gets the attacker a " +
			"context it has no keys for.",
	}
	st.Outro = []string{"The genuine request went through; the same bytes a second time did not."}
	return nil
}

// sampleOpening returns the first two GSS sample-protocol tokens of a client's stream, as sent: NOOP with
// CONTEXT_NEXT, and the context token.
func sampleOpening(b []byte) ([]byte, error) {
	r := bytes.NewReader(b)
	for i := 0; i < 2; i++ {
		flags, _, err := ticket.ReadSampleToken(r, maxRecordedToken)
		if err != nil {
			return nil, fmt.Errorf("the recorded connection: %w", err)
		}
		if i == 1 && flags&ticket.SampleContext == 0 {
			return nil, fmt.Errorf("the second token has flags 0x%02x, not a context token", flags)
		}
	}
	return b[:len(b)-r.Len()], nil
}

func playExpiredTGT(ctx context.Context, sc *scene) error {
	sc.newRecorder(sc.o.Password, true)
	// The login happens "yesterday morning": the KDC's clock is eleven hours back while it issues the TGT.
	sc.kdcClock.Set(-11 * time.Hour)
	sc.typePassword(ctx)
	as, err := sc.login(ctx)
	if err != nil {
		return err
	}
	sc.kdcClock.Set(0)
	// kclient (like MIT's kvno) looks at the TGT's endtime first and does not send it: that is what the user sees.
	_, local := sc.serviceTicket(ctx, as)
	var lke *client.KDCError
	if !errors.As(local, &lke) || !lke.Local || lke.Code != 32 {
		return fmt.Errorf("TGS exchange with an expired TGT: want the client's own KRB_AP_ERR_TKT_EXPIRED, got %v", local)
	}
	sc.rec.AddStep(Step{
		ID: "client-check", Title: "The client looks at the TGT's endtime first, and does not send it",
		From: ActorClient, To: ActorClient, Transport: "local",
		Summary: "Before it builds a TGS-REQ, the client compares the endtime of the TGT in its credential cache with its " +
			"clock (allowing the clock skew). The TGT expired an hour ago, so it stops here and sends nothing: kclient ticket, " +
			"like MIT's kvno, reports \"Ticket expired\" without asking the KDC.",
		Fields: []Field{
			field("TGT endtime", kTime(as.Credential.EndTime)),
			field("now", kTime(time.Now())),
		},
		Checks: []Check{{By: ActorClient, Result: CheckFail, Text: "the TGT is valid now (endtime " + kTime(as.Credential.EndTime) +
			", more than the clock skew ago): " + kclientLine(local, "while getting credentials for "+sc.svc.String())}},
		Notes: []Note{{NoteWhy, "The client's check only spares a round trip; it protects nothing, since a client can skip it. " +
			"What protects the realm is that the TGS checks the same endtime, sealed inside the ticket where the client cannot " +
			"change it. The next message is what a client that skips its own check (or one whose krb5.conf allows a clock skew " +
			"of hours) sends."}},
	})
	// A client that does not stop itself: a clockskew of 12 hours in its configuration lets the TGT through.
	lax := &client.Config{Realm: sc.o.Realm, KDCs: map[string][]string{sc.o.Realm: {sc.env.kdcAddr}}, Clockskew: 12 * time.Hour}
	c, err := client.New(lax)
	if err != nil {
		return err
	}
	c.Trace = sc.rec.Trace
	_, sc.err = c.TGS(ctx, client.TGSRequest{TGT: as.Credential, Server: sc.svc})
	if !client.IsCode(sc.err, 32) || errors.As(sc.err, &lke) && lke.Local {
		return fmt.Errorf("TGS exchange with an expired TGT: want the TGS's KRB_AP_ERR_TKT_EXPIRED, got %v", sc.err)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("%s logged in eleven hours ago; the realm %s issues tickets for at most %s. To make that real, the walkthrough "+
			"ran the login with the KDC's injectable clock set eleven hours back, then set it right. (The client took the KDC's "+
			"time from its PREAUTH_REQUIRED answer, as MIT's and Heimdal's clients do, so the login itself went through.)",
			sc.user, sc.o.Realm, shortDuration(realmMaxLife)),
		"Now the client wants a service ticket with that TGT. The authenticator would be fresh; the ticket is not. The " +
			"client notices first; a client that does not is refused by the TGS.",
	}
	during := "while getting credentials for " + sc.svc.String()
	f.MIT = []string{"kvno: Ticket expired " + during + " (kvno too refuses before sending)"}
	f.Ours = []string{kclientLine(local, during) + " (kclient ticket refuses before sending, as kvno does)"}
	f.Protects = "A ticket is a bearer credential for its lifetime: whoever holds it and its session key (a copied credential " +
		"cache) can use it. The endtime the KDC sealed inside the ticket bounds that: after it, the ticket is worthless to " +
		"its owner and to a thief alike, and the client cannot change it without breaking the integrity check."
	f.Fix = []string{
		"Log in again: kclient login " + sc.o.User + " (MIT: kinit).",
		"For long jobs, ask for a renewable ticket (kclient login -r 7d) and renew it before it expires (kinit -R), or " +
			"let a keytab-based service get its own tickets (kinit -k).",
	}
	st.Outro = []string{"Nothing was wrong with the TGT but its age; the TGS checks that on every use."}
	return nil
}

func playStaleKeytab(ctx context.Context, sc *scene) error {
	sc.newRecorder(sc.o.Password, true)
	// The administrator rotates the service's key (kvno 1 -> 2) and does not export a new keytab: the running
	// service still has kvno 1.
	info, err := sc.env.admin.ChangeKeys(ctx, sc.o.Service, "", true)
	if err != nil {
		return err
	}
	sc.typePassword(ctx)
	as, err := sc.login(ctx)
	if err != nil {
		return err
	}
	tgs, err := sc.serviceTicket(ctx, as)
	if err != nil {
		return err
	}
	sc.err = sc.request(ctx, tgs, nil)
	if !client.IsCode(sc.err, 44) {
		return fmt.Errorf("AP exchange with a stale keytab: want KRB_AP_ERR_BADKEYVER, got %v", sc.err)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("The service %s was set up with a keytab holding its key, kvno 1. Then an administrator gave it a new key "+
			"(kdc principal passwd %s --random-key: now kvno %d), and nobody exported a new keytab for the service.", sc.svc, sc.o.Service, info.KVNO),
		fmt.Sprintf("The KDC seals every new ticket for %s in its current key, kvno %d, and says so in the ticket's clear "+
			"enc-part header. The service looks for that kvno in its keytab and does not find it.", sc.svc, info.KVNO),
	}
	f.MIT = []string{
		fmt.Sprintf("gss-server (MIT's acceptor): GSS-API error accepting context: Request ticket server %s kvno %d not found "+
			"in keytab; keytab is likely out of date", sc.svc, info.KVNO),
		"gss-client, reading the KRB-ERROR: GSS-API error initializing context: Key version is not available",
		fmt.Sprintf("kvno %s shows the ticket's kvno (%d); klist -k on the keytab shows the keytab's (1)", sc.o.Service, info.KVNO),
	}
	f.Ours = append([]string{kclientLine(sc.err, "")}, sc.serviceLogLine()...)
	f.Protects = "The kvno lets a service hold several generations of its key, so that tickets issued before a key change " +
		"keep working until they expire. It also makes this mistake obvious: the service says which kvno it was asked for " +
		"and which it has, instead of failing to decrypt."
	f.Fix = []string{
		"Export the keytab again and give it to the service: kdc keytab " + sc.o.Service + " -o service.keytab (it holds every " +
			"kvno the KDC keeps, so tickets in the old key keep working too).",
		"With MIT, beware that kadmin ktadd itself makes a new random key (and so a new kvno) unless given -norandkey: " +
			"running it twice, or on two hosts, leaves one keytab stale.",
		"kservice reloads a keytab file that changed on disk; other services may need a restart.",
	}
	st.Outro = []string{"The ticket was genuine and sealed in the service's real key; the service just did not have that key yet."}
	return nil
}

func playTampered(ctx context.Context, sc *scene) error {
	sc.newRecorder(sc.o.Password, true)
	sc.typePassword(ctx)
	as, err := sc.login(ctx)
	if err != nil {
		return err
	}
	px, err := startTamperProxy(sc.env.kdcAddr, sc.rec)
	if err != nil {
		return err
	}
	defer px.close()
	// The TGS exchange goes through the proxy, which records what it forwards; the client's own trace is off.
	c, err := client.New(&client.Config{Realm: sc.o.Realm, KDCs: map[string][]string{sc.o.Realm: {px.addr}}})
	if err != nil {
		return err
	}
	_, sc.err = c.TGS(ctx, client.TGSRequest{TGT: as.Credential, Server: sc.svc})
	if !client.IsCode(sc.err, 31) {
		return fmt.Errorf("TGS exchange with a tampered TGT: want KRB_AP_ERR_BAD_INTEGRITY, got %v", sc.err)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("%s logs in and gets a TGT. When the client sends it to the TGS, something on the path (here a small "+
			"UDP proxy between the client and the KDC) changes one byte of the TGT's ciphertext: what an attacker would do "+
			"hoping to turn the client's name into another, or push the endtime out.", sc.user),
		"The TGS decrypts the TGT with its own key and checks the integrity tag that was computed over the plaintext when the " +
			"ticket was made. One changed byte, and the tag no longer matches.",
	}
	during := "while getting credentials for " + sc.svc.String()
	f.MIT = []string{"kvno: Decrypt integrity check failed " + during}
	f.Ours = []string{kclientLine(sc.err, during)}
	f.Protects = "Kerberos encryption is authenticated: every ciphertext carries an HMAC of its plaintext keyed with a key " +
		"derived from the same key (RFC 3961, RFC 3962). Nobody without the key can change a ticket's client, times, " +
		"flags or session key, or splice parts of two tickets together: the receiver notices before it reads a field."
	f.Fix = []string{
		"Nothing in Kerberos to fix: the ticket did its job. Find what changes packets on the path.",
		"If it happens without an attacker: a corrupted credential cache (kdestroy, log in again), or a KDC whose krbtgt key " +
			"was replaced by one with the same kvno (keys must get a new kvno whenever they change).",
	}
	st.Outro = []string{"One byte changed in transit, and the TGS refused the ticket without reading anything from it."}
	return nil
}

func playWeakServiceKey(ctx context.Context, sc *scene) error {
	sc.newRecorder(sc.o.Password, true)
	sc.typePassword(ctx)
	as, err := sc.login(ctx)
	if err != nil {
		return err
	}
	tgs, err := sc.serviceTicket(ctx, as)
	if err != nil {
		return err
	}
	tkt, err := decodeTicket(tgs.Credential.Ticket)
	if err != nil {
		return err
	}
	server := principal.FromPrincipalName(tkt.SName, tkt.Realm)
	target := guessTarget{
		letter: "E", what: "ticket E's enc-part", owner: server.String(),
		etype: tkt.EncPart.EType, salt: server.Salt(), source: "the default salt (realm + name), which is public",
		usage: int(keyusage.KDC_REP_TICKET), cipherSize: len(tkt.EncPart.Cipher),
		open: func(k types.EncryptionKey) (string, bool) {
			part, err := ticket.OpenTicket(messages.Ticket{Realm: tkt.Realm, SName: tkt.SName, EncPart: tkt.EncPart}, k)
			if err != nil {
				return "", false
			}
			return fmt.Sprintf("E decrypts to an EncTicketPart for client %s", principal.FromPrincipalName(part.CName, part.CRealm)), true
		},
	}
	step, res := offlineGuess(target, commonPasswords, true)
	sc.rec.AddStep(step)
	if res.found != weakServicePassword {
		return fmt.Errorf("offline guessing found %q, want %q", res.found, weakServicePassword)
	}
	st, f := sc.st, sc.st.Failure
	st.Intro = []string{
		fmt.Sprintf("The service %s was created with a password, %q, instead of a random key (kdc principal add %s --password). "+
			"Its key is string-to-key of that password, with a public salt.", sc.svc, weakServicePassword, sc.o.Service),
		fmt.Sprintf("%s is an ordinary user of the realm. Like every user, it may ask the TGS for a ticket to any service: the "+
			"TGS does not know who is allowed to use what, the service decides. The ticket E is sealed in the service's key. "+
			"The user never sends it to the service; it takes it home and guesses.", sc.user),
	}
	f.StepID, f.By = "offline-guess", ActorAttacker
	f.Check = "nothing on the wire failed: any user may get a ticket for any service, and this service's ticket is sealed " +
		"in a key made from a guessable password"
	f.MIT = []string{fmt.Sprintf("kvno %s: %s: kvno = %d (works as always; nothing warns)", sc.o.Service, sc.svc, tgs.KVNO)}
	f.Ours = []string{fmt.Sprintf("kclient ticket %s: works as always; the ticket is in the cache", sc.o.Service)}
	f.Protects = "Service keys are meant to be random: then a ticket is sealed in a key nobody can guess, and handing tickets to " +
		"any user costs nothing. A key made from a password turns every ticket into an offline guessing oracle for that " +
		"password (\"Kerberoasting\"), and once the attacker has the service key it can forge tickets for the service in " +
		"anyone's name (a \"silver ticket\"), without the KDC."
	f.Fix = []string{
		"Give services random keys: kdc principal passwd " + sc.o.Service + " --random-key, then export the keytab " +
			"(MIT: kadmin -q \"addprinc -randkey " + sc.o.Service + "\" and ktadd).",
		"If a service must have a password (an account shared with another system), make it long and random, and change it.",
	}
	st.Outro = []string{"Seven guesses found the service's password; with it, the attacker can read every ticket for the service and make its own."}
	return nil
}

// tamperProxy is a UDP relay between the client and the KDC that flips one byte of the TGT's ciphertext in every
// TGS-REQ, and records what it forwards.
type tamperProxy struct {
	addr string
	pc   net.PacketConn
	done chan struct{}
}

func startTamperProxy(kdcAddr string, rec *Recorder) (*tamperProxy, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &tamperProxy{addr: pc.LocalAddr().String(), pc: pc, done: make(chan struct{})}
	go p.serve(kdcAddr, rec)
	return p, nil
}

func (p *tamperProxy) close() {
	p.pc.Close()
	<-p.done
}

// serve relays request/reply pairs until the socket is closed; every read is bounded in time.
func (p *tamperProxy) serve(kdcAddr string, rec *Recorder) {
	defer close(p.done)
	buf := make([]byte, 65535)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		req := bytes.Clone(buf[:n])
		if ticket.MessageType(req) == 12 {
			req = tamperTGT(req, rec)
			rec.Add(Wire{Data: req, Sent: true, Addr: kdcAddr, Network: "udp",
				Framing: "one UDP datagram, altered in transit (see the step before)"})
		}
		up, err := net.Dial("udp", kdcAddr)
		if err != nil {
			return
		}
		_ = up.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := up.Write(req); err == nil {
			if m, err := up.Read(buf); err == nil {
				rep := bytes.Clone(buf[:m])
				rec.Add(Wire{Data: rep, Addr: kdcAddr, Network: "udp"})
				_, _ = p.pc.WriteTo(rep, from)
			}
		}
		up.Close()
	}
}

// tamperTGT flips every bit of one byte in the middle of the TGT's ciphertext of a TGS-REQ, and records the
// change as a step of the attacker.
func tamperTGT(req []byte, rec *Recorder) []byte {
	r, err := ticket.ParseKDCRequest(req)
	if err != nil {
		return req
	}
	v, ok := r.PA(1)
	if !ok {
		return req
	}
	var ap ticket.APReqWire
	if unmarshalApp(v, &ap, 14) != nil {
		return req
	}
	t, err := decodeTicket(ap.Ticket.Bytes)
	if err != nil || len(t.EncPart.Cipher) < 2 {
		return req
	}
	at := bytes.Index(req, t.EncPart.Cipher)
	if at < 0 {
		return req
	}
	i := len(t.EncPart.Cipher) / 2
	out := bytes.Clone(req)
	out[at+i] ^= 0xff
	rec.AddStep(Step{
		ID: "tamper", Title: "In transit: one byte of the TGT is changed", From: ActorAttacker, To: ActorAttacker,
		Transport: "local", Letters: []string{"C"},
		Framing: "done on the path between the client and the KDC, to a message in flight; neither end can see it happen",
		Summary: "The TGS-REQ the client sent passes through the attacker's hands on its way to the KDC. It cannot read the " +
			"TGT (sealed in the TGS's key) but it can change it: here it inverts one byte of the ciphertext, as an attack on " +
			"an unauthenticated cipher would, to change a field inside without knowing the key.",
		Fields: []Field{
			field("message", fmt.Sprintf("the client's TGS-REQ, %s", bytesText(len(req)))),
			field("changed", fmt.Sprintf("byte %d of the message: byte %d of the %s of ciphertext of the TGT (message B, carried as C)",
				at+i, i, bytesText(len(t.EncPart.Cipher)))),
			field("before", fmt.Sprintf("0x%02x", req[at+i])),
			field("after", fmt.Sprintf("0x%02x (every bit flipped)", out[at+i])),
		},
		Notes: []Note{{NoteWhy, "The rest of the request is untouched and still valid: the authenticator, its checksum over the " +
			"req-body, the names. Only the ticket's ciphertext differs."}},
	})
	return out
}
