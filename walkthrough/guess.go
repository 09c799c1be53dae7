package walkthrough

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"
)

// guessTarget is a ciphertext sealed in a key made from a password, as an attacker holds it: message A of an
// AS-REP (client key, usage 3) or the enc-part of a ticket (service key, usage 2).
type guessTarget struct {
	// letter and what name the ciphertext ("A", "message A, the AS-REP enc-part").
	letter, what string
	// owner is whose password the key comes from.
	owner string
	// etype, salt and params are what string-to-key needs; source says where the attacker found them.
	etype  int32
	salt   string
	params []byte
	source string
	// usage is the key usage the ciphertext was sealed with; cipherSize its length.
	usage      int
	cipherSize int
	// open tries a key: it returns what the decrypted plaintext proves, and whether the integrity check passed.
	open func(types.EncryptionKey) (string, bool)
}

// guessResult is what the offline guessing found.
type guessResult struct {
	found    string
	perGuess time.Duration // median cost of one guess (string-to-key + one decryption)
}

// offlineGuess tries each candidate password against t the way an attacker's program would: string-to-key with
// the salt and iteration count the KDC published, then one decryption whose integrity check says yes or no. It
// is a demonstration over a handful of candidates, not a cracking tool: it shows that the check needs nobody's
// cooperation, and measures what one guess costs so the arithmetic below it is real.
func offlineGuess(t guessTarget, candidates []string, showKeys bool) (Step, guessResult) {
	iter, _ := s2kIterations(t.etype, t.params)
	s := Step{
		ID: "offline-guess", Title: "Offline guessing: the attacker tries passwords against " + t.what + ", with no one watching",
		From: ActorAttacker, To: ActorAttacker, Transport: "local", Time: time.Now(),
		Letters: []string{t.letter},
		Summary: "The attacker holds ciphertext sealed in a key made from " + t.owner + "'s password, and everything string-to-key " +
			"needs: the enctype, the salt and the iteration count. For each guess it derives a key and tries to decrypt. " +
			"Kerberos ciphertext carries an integrity check (an HMAC over the plaintext), so a wrong key is refused " +
			"at once and the right one announces itself: the attacker needs no KDC, no network and no luck, only time.",
	}
	s.Fields = []Field{
		field("target", t.what+", "+bytesText(t.cipherSize)+" of ciphertext, key usage "+strconv.Itoa(t.usage)),
		field("enctype", etypeName(t.etype)),
		field("salt", fmt.Sprintf("%q", t.salt), field("where from", t.source)),
	}
	if iter > 0 {
		s.Fields = append(s.Fields, field("iterations", strconv.Itoa(iter)))
	}
	s.Fields = append(s.Fields, field("function", s2kFunction(t.etype, iter)))
	var res guessResult
	var costs []time.Duration
	var tries []Field
	for _, pw := range candidates {
		start := time.Now()
		k, err := stringToKey(pw, t.etype, t.salt, t.params)
		proof, ok := "", false
		if err == nil {
			proof, ok = t.open(k)
		}
		costs = append(costs, time.Since(start))
		kv := "key " + abbrevKey(k.KeyValue, showKeys)
		if ok {
			tries = append(tries, field(fmt.Sprintf("%q", pw), kv+" → decrypts, integrity check passes: "+proof))
			s.Checks = append(s.Checks, Check{By: ActorAttacker, Result: CheckPass, Text: fmt.Sprintf(
				"guess %q: %s. The password is found", pw, proof)})
			res.found = pw
			break
		}
		tries = append(tries, field(fmt.Sprintf("%q", pw), kv+" → integrity check fails: wrong"))
		s.Checks = append(s.Checks, Check{By: ActorAttacker, Result: CheckFail, Text: fmt.Sprintf("guess %q: the integrity check fails", pw)})
	}
	s.Fields = append(s.Fields, field("guesses", strconv.Itoa(len(tries))+" candidates from a list of common passwords", tries...))
	sort.Slice(costs, func(i, j int) bool { return costs[i] < costs[j] })
	if len(costs) > 0 {
		res.perGuess = costs[len(costs)/2]
	}
	c := res.perGuess.Seconds()
	arith := []Field{
		field("one guess", "≈ "+humanSeconds(c)+" on one core of this machine (string-to-key + one decryption, measured just now)"),
		field("a list of 10 million leaked passwords", "10^7 × "+humanSeconds(c)+" ≈ "+humanSeconds(1e7*c)+" on one core; "+
			"guessing splits perfectly, so 100 cores take ≈ "+humanSeconds(1e5*c)),
		field("every 8-letter lower-case word", "26^8 ≈ 2.1×10^11 guesses ≈ "+humanSeconds(math.Pow(26, 8)*c)+" on one core"),
		field("a random 256-bit key", "2^256 ≈ 1.2×10^77 guesses ≈ "+humanSeconds(math.Pow(2, 256)*c)+
			": a key nobody chose cannot be guessed"),
	}
	s.Fields = append(s.Fields, field("the arithmetic", "what a guess costs, and what that means", arith...))
	s.Notes = []Note{
		{NoteWhy, "The iterations (PBKDF2) make each guess cost thousands of hashes, which slows an attacker by that factor " +
			"and no more: a password from a list of common ones still falls in hours. Only a password with real entropy, or " +
			"a random key, puts the answer out of reach."},
	}
	return s, res
}

// abbrevKey shows the first bytes of a guessed key (the walkthrough shows keys; the guesses are throw-away).
func abbrevKey(k []byte, show bool) string {
	if !show || len(k) == 0 {
		return "derived"
	}
	h := hexKey(k)
	if len(h) > 16 {
		h = h[:16] + "…"
	}
	return h
}

// humanSeconds prints a duration in seconds the way the arithmetic needs it: from microseconds to
// "1.2×10^65 years".
func humanSeconds(sec float64) string {
	const (
		minute = 60.0
		hour   = 60 * minute
		day    = 24 * hour
		year   = 365.25 * day
	)
	switch {
	case sec < 1e-3:
		return fmt.Sprintf("%.0f µs", sec*1e6)
	case sec < 1:
		return fmt.Sprintf("%.1f ms", sec*1e3)
	case sec < minute:
		return fmt.Sprintf("%.1f s", sec)
	case sec < hour:
		return fmt.Sprintf("%.0f minutes", sec/minute)
	case sec < 2*day:
		return fmt.Sprintf("%.1f hours", sec/hour)
	case sec < year:
		return fmt.Sprintf("%.0f days", sec/day)
	case sec < 1e6*year:
		return fmt.Sprintf("%s years", groupDigits(sec/year))
	}
	e := math.Floor(math.Log10(sec / year))
	return fmt.Sprintf("%.1f×10^%d years", sec/year/math.Pow(10, e), int(e))
}

// groupDigits prints a number below a million with thousands separators: 12,345.
func groupDigits(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
