package kdc

import (
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// infinity stands for "no limit" in time computations.
var infinity = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// unlimited maps an absent or epoch KerberosTime to infinity: a till or rtime of
// 19700101000000Z means "as long as policy allows" (RFC 4120 §5.4.1), and Heimdal
// sends exactly that.
func unlimited(t time.Time) time.Time {
	if t.IsZero() || !t.After(ticket.Epoch) {
		return infinity
	}
	return t
}

func minTime(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.Before(m) {
			m = t
		}
	}
	return m
}

// capDuration returns the smallest positive limit; 0 means "no limit" for
// per-principal values.
func capDuration(realm time.Duration, perPrincipal ...time.Duration) time.Duration {
	c := realm
	for _, d := range perPrincipal {
		if d > 0 && d < c {
			c = d
		}
	}
	return c
}

// isSet reports whether option bit b is set in KDCOptions.
func isSet(opts asn1.BitString, b int) bool { return types.IsFlagSet(&opts, b) }

// lifetimes is the outcome of the time policy for a new ticket.
type lifetimes struct {
	start, end, renewTill time.Time
	postdated, renewable  bool
}

// timeLimits bounds a ticket: the lifetime and renewable-lifetime caps and the
// absolute limits (principal expirations, or the TGT's endtime and renew-till).
type timeLimits struct {
	maxLife, maxRenew time.Duration
	endLimit          time.Time // endtime may not pass this
	renewLimit        time.Time // renew-till may not pass this
	canRenew          bool      // false when renewable tickets are not allowed at all
	canPostdate       bool
}

// computeTimes applies RFC 4120 §3.1.3 / §3.3.3 and MIT's kdc_util.c rules to the
// request body: starttime (now, or from when postdating), endtime
// min(till, start+maxLife, limits), and renew-till for RENEWABLE or RENEWABLE-OK.
func (k *KDC) computeTimes(body requestTimes, now time.Time, lim timeLimits) (lifetimes, error) {
	var lt lifetimes
	lt.start = now
	if !body.from.IsZero() && body.from.After(now) {
		switch {
		case body.postdated && lim.canPostdate:
			lt.start, lt.postdated = body.from, true
		case body.postdated:
			return lt, kerr(errorcode.KDC_ERR_BADOPTION, "POSTDATE_NOT_ALLOWED", nil)
		case body.from.After(now.Add(k.skew)):
			return lt, kerr(errorcode.KDC_ERR_CANNOT_POSTDATE, "CANNOT_POSTDATE",
				fmt.Errorf("from %s is in the future without POSTDATED", body.from.UTC().Format(time.RFC3339)))
		}
	}
	till := unlimited(body.till)
	lt.end = minTime(till, lt.start.Add(lim.maxLife), unlimited(lim.endLimit))
	if lt.end.Sub(lt.start) < k.minLife {
		return lt, kerr(errorcode.KDC_ERR_NEVER_VALID, "NEVER_VALID",
			fmt.Errorf("ticket would live %s", lt.end.Sub(lt.start).Round(time.Second)))
	}

	// The renewable rule (RFC 4120 §3.1.3, §3.3.3; the rule of MIT's
	// kdc_get_ticket_renewtime):
	//   - RENEWABLE asks for rtime (absent or epoch = infinity, as MIT kvno sends
	//     it). The ticket is renewable whenever renewable tickets are allowed, with
	//     renew-till = min(rtime, start + max renewable life, the limits). That may
	//     be no later than the end time when the client asked for that (a Python
	//     library always sends rtime = till): the client gets what it asked for,
	//     never a renew-till past its rtime, which MIT clients refuse.
	//   - RENEWABLE-OK alone turns a till we cut short into a renew-till, and
	//     gives a renewable ticket only when the capped renew-till is later than
	//     the end time: otherwise renewing could not extend anything.
	var rtime time.Time
	switch {
	case body.renewable:
		rtime = unlimited(body.rtime)
	case body.renewableOK && till.After(lt.end):
		rtime = till
	default:
		return lt, nil
	}
	if !lim.canRenew || lim.maxRenew <= 0 {
		return lt, nil
	}
	rtime = minTime(rtime, lt.start.Add(lim.maxRenew), unlimited(lim.renewLimit))
	if body.renewable || rtime.After(lt.end) {
		lt.renewable, lt.renewTill = true, rtime
	}
	return lt, nil
}

// requestTimes is the part of a request body the time policy reads.
type requestTimes struct {
	from, till, rtime                 time.Time
	postdated, renewable, renewableOK bool
}

func timesOf(opts asn1.BitString, from, till, rtime time.Time) requestTimes {
	return requestTimes{
		from: from, till: till, rtime: rtime,
		postdated:   isSet(opts, flags.PostDated),
		renewable:   isSet(opts, flags.Renewable),
		renewableOK: isSet(opts, flags.RenewableOK),
	}
}

// lifeLimits collects the lifetime caps of the realm and the principals involved.
func (k *KDC) lifeLimits(recs ...*principal.Record) timeLimits {
	pol := k.store.Policy()
	lim := timeLimits{maxLife: pol.MaxLife, maxRenew: pol.MaxRenew, canRenew: pol.MaxRenew > 0, canPostdate: true}
	for _, r := range recs {
		lim.maxLife = capDuration(lim.maxLife, r.MaxLife)
		lim.maxRenew = capDuration(lim.maxRenew, r.MaxRenew)
		if !r.Expires.IsZero() {
			lim.endLimit = minTime(unlimited(lim.endLimit), r.Expires)
			lim.renewLimit = minTime(unlimited(lim.renewLimit), r.Expires)
		}
	}
	return lim
}

// selectEtype returns the first enctype in the client's preference list that every
// check accepts (RFC 4120 §3.1.3: the KDC uses the client's order).
func selectEtype(requested []int32, ok func(int32) bool) (int32, bool) {
	for _, e := range requested {
		if ok(e) {
			return e, true
		}
	}
	return 0, false
}

// serviceKey returns the key a ticket for rec is sealed in: the current key of
// the first enctype the principal holds (the strongest, in creation order).
func serviceKey(rec *principal.Record) (principal.Key, error) {
	kvno := rec.KVNO()
	for _, k := range rec.Keys {
		if k.KVNO == kvno {
			return k, nil // what rec.CurrentKeys()[0] is, without the slice
		}
	}
	return principal.Key{}, kerr(errorcode.KDC_ERR_NULL_KEY, "NO_SERVICE_KEY", fmt.Errorf("%s has no keys", rec.Name))
}

// wireName is the principal a PrincipalName of a decoded message names, in
// realm. Unlike principal.FromPrincipalName it shares the components with the
// message, which nothing on the request path modifies.
func wireName(pn types.PrincipalName, realm string) principal.Name {
	return principal.Name{Components: pn.NameString, Realm: realm, Type: pn.NameType}
}

// hasKeyOf returns a test for "rec holds a current key of this enctype": the
// client's reply key must be one, and session keys are made only in enctypes
// the service has a key of (protocol-notes §3.4).
func hasKeyOf(rec *principal.Record) func(int32) bool {
	return func(e int32) bool {
		_, ok := rec.FindKey(e, 0)
		return ok
	}
}
