package kdc

import "context"

// Stage is one named step of the AS or TGS exchange: what the KDC checks, in its own words.
type Stage struct {
	// Name identifies the stage in StageResult ("decode", "preauth", "open-tgt", ...).
	Name string
	// Doc says what the stage checks and why, for people (the walkthrough shows it).
	Doc string
}

// ASStages are the stages of the AS exchange in the order the KDC runs them [RFC 4120 §3.1.2]; Config.Observer
// is told how each one ended.
var ASStages = []Stage{
	{"decode", "the request names a client and a server of this realm, and asks for no option that needs a ticket in hand " +
		"(renew, validate, forwarded, proxy, enc-tkt-in-skey)"},
	{"lookup", "the client and the server are in the realm's database"},
	{"policy", "neither principal is disabled or expired, and the client's password has not expired"},
	{"reply-key", "the KDC holds a key of the client for one of the enctypes the request asks for; the first such enctype " +
		"will seal the reply"},
	{"preauth", "a client that requires pre-authentication sent PA-ENC-TIMESTAMP, which decrypts with the client's key " +
		"from the database (key usage 1), or, inside FAST armor (RFC 6113), PA-ENCRYPTED-CHALLENGE, which decrypts with " +
		"the client challenge key made from the armor key and the client's key (key usage 54); its time is within the " +
		"clock skew; without it the answer is PREAUTH_REQUIRED with the hints (PA-ETYPE-INFO2) to make the key"},
	{"issue", "the ticket's times fit the request and the realm's limits; a fresh session key is sealed in the ticket " +
		"(the server's key) and in the reply part (the client's key)"},
}

// TGSStages are the stages of the TGS exchange in the order the KDC runs them [RFC 4120 §3.3.2]; Config.Observer
// is told how each one ended.
var TGSStages = []Stage{
	{"decode", "the request carries PA-TGS-REQ: an AP-REQ with a ticket and an authenticator, without user-to-user or " +
		"mutual authentication, and names a server"},
	{"open-tgt", "the ticket is a TGT of this realm (krbtgt), the KDC has the krbtgt key of its kvno and enctype, and it " +
		"decrypts with it (key usage 2): only the KDC could have made it"},
	{"authenticator", "the authenticator decrypts with the session key inside the TGT (key usage 7), names the TGT's " +
		"client, is within the clock skew; the TGT is valid now; and the authenticator's keyed checksum over the req-body " +
		"as received verifies (key usage 6), so the request was not altered"},
	{"client", "the TGT's client is still in the database, neither disabled nor expired"},
	{"options", "every option asked for is allowed by the TGT's flags (forwardable, proxiable, renewable, postdate)"},
	{"server", "the service asked for is in the realm's database, neither disabled nor expired, with a key to seal the " +
		"new ticket in"},
	{"issue", "the new ticket's times fit the TGT and the service's limits; a fresh session key is sealed in the ticket " +
		"(the service's key) and in the reply part (the TGT's session key, or the authenticator's subkey)"},
}

// StageResult is how one stage of one request ended, as told to Config.Observer. Err is nil when the stage
// passed; it is the KRB-ERROR the request is answered with otherwise.
type StageResult struct {
	// Exchange is "AS" or "TGS".
	Exchange string
	// Stage is a Name of ASStages or TGSStages.
	Stage string
	Err   *Error
}

// asSteps and tgsSteps run the stages after decode and before issue, by name.
var asSteps = []struct {
	name string
	run  func(*KDC, context.Context, *asRequest) error
}{{"lookup", (*KDC).lookupAS}, {"policy", (*KDC).checkASPolicy}, {"reply-key", (*KDC).selectReplyKey}, {"preauth", (*KDC).checkPreauth}}

var tgsSteps = []struct {
	name string
	run  func(*KDC, context.Context, *tgsRequest) error
}{{"authenticator", (*KDC).authenticatorAndFAST}, {"client", (*KDC).lookupClient}, {"options", (*KDC).checkTGSOptions}, {"server", (*KDC).lookupServer}}

// observe tells the observer, if there is one, how a stage ended, and returns err. Without an observer it costs
// one comparison.
func (k *KDC) observe(exchange, stage string, err error) error {
	if k.observer != nil {
		r := StageResult{Exchange: exchange, Stage: stage}
		if err != nil {
			r.Err = asError(err)
		}
		k.observer(r)
	}
	return err
}

// authenticatorAndFAST is the "authenticator" stage: the authenticator, then
// the PA-FX-FAST its subkey arms, if any (fast.go). FAST has no stage of its
// own so that the stage tables, and what the walkthrough prints from them,
// stay those of the plain exchange.
func (k *KDC) authenticatorAndFAST(ctx context.Context, tr *tgsRequest) error {
	if err := k.checkAuthenticator(ctx, tr); err != nil {
		return err
	}
	return k.tgsFAST(ctx, tr)
}
