package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// MaxReferralHops bounds the cross-realm TGTs ServiceTicket follows for one service, as MIT's
// KRB5_REFERRAL_MAXHOPS does.
const MaxReferralHops = 10

// ErrReferralLoop is wrapped when a KDC refers the client to a realm it has already been through.
var ErrReferralLoop = errors.New("referral loop")

// ErrTooManyReferrals is wrapped when more than MaxReferralHops cross-realm TGTs were needed.
var ErrTooManyReferrals = errors.New("too many referrals")

// ServiceTicketRequest asks for a service ticket in any realm the client's realm trusts, directly or through
// referrals [RFC 4120 §1.2, §3.3.1; RFC 6806 §8].
type ServiceTicketRequest struct {
	// TGT is the client's ticket-granting ticket krbtgt/REALM@REALM.
	TGT ticket.Credential
	// Server is the service. Its realm is where it lives (from the name, or krb5.conf [domain_realm]); ""
	// is the referral realm: the TGT's realm is asked, with canonicalize, and may refer the client on.
	Server principal.Name
	// Forwardable and KDCOffset are as in TGSRequest.
	Forwardable bool
	KDCOffset   time.Duration
	// CachedTGT, if set, returns a cross-realm TGT krbtgt/realm@ANY already held for the TGT's client, so
	// that it is not asked for again.
	CachedTGT func(realm string) (ticket.Credential, bool)
}

// ServiceTicketResult is a service ticket and the way it was reached.
type ServiceTicketResult struct {
	// TGSResult is the service ticket, from the last exchange.
	*TGSResult
	// CrossRealmTGTs are the cross-realm TGTs obtained on the way, in order, to be cached.
	CrossRealmTGTs []ticket.Credential
	// Realms are the realms whose KDCs were asked, in order (one entry for a service of the TGT's realm).
	Realms []string
}

// ServiceTicket gets a ticket for r.Server, crossing realms as needed, the way MIT's krb5_get_credentials does:
//
//  1. for a service of another realm B, a cross-realm TGT krbtgt/B@A is taken from CachedTGT or asked of the
//     client's realm A (a KDC may answer with a TGT for a realm closer to B, which is then asked in turn);
//  2. the service is asked of the realm of the TGT in hand; an answer that is a cross-realm TGT
//     krbtgt/C@B (a referral) moves the request on to C's KDCs, whose addresses come from Config.KDCs
//     (krb5.conf [realms]).
//
// Referrals are asked for (canonicalize) when the service's realm is unknown (""), and after a KDC does not
// know a host-based service of its own realm. At most MaxReferralHops cross-realm TGTs are followed, and no
// realm twice. Without a foreign realm in play it is one TGS exchange, exactly as TGS.
func (c *Client) ServiceTicket(ctx context.Context, r ServiceTicketRequest) (*ServiceTicketResult, error) {
	tgt := r.TGT
	realm := tgtRealm(tgt)
	res := &ServiceTicketResult{}
	path := newReferralPath(realm)
	server := r.Server
	referralRealm := server.Realm == ""
	// next moves to the realm of a new cross-realm TGT.
	next := func(cred ticket.Credential) error {
		if err := path.advance(tgtRealm(cred)); err != nil {
			return fmt.Errorf("client: %w while looking for %s (realms asked: %s)", err, r.Server, strings.Join(path.realms, ", "))
		}
		res.CrossRealmTGTs = append(res.CrossRealmTGTs, cred)
		tgt, realm = cred, tgtRealm(cred)
		return nil
	}

	// 1. A TGT for the service's realm.
	if !referralRealm && server.Realm != realm {
		if cached, ok := cachedTGT(r, server.Realm); ok {
			tgt, realm = cached, server.Realm
			_ = path.advance(realm) // the first step cannot loop
		}
		for realm != server.Realm {
			got, err := c.TGS(ctx, TGSRequest{TGT: tgt, Server: principal.CrossRealmKrbtgt(server.Realm, realm),
				Forwardable: r.Forwardable, KDCOffset: r.KDCOffset})
			if err != nil {
				return nil, fmt.Errorf("client: getting a cross-realm TGT for %s from %s: %w", server.Realm, realm, err)
			}
			if err := next(got.Credential); err != nil {
				return nil, err
			}
		}
	}

	// 2. The service, following referrals.
	canonicalize := referralRealm
	for {
		ask := server
		ask.Realm = realm
		got, err := c.TGS(ctx, TGSRequest{TGT: tgt, Server: ask, Forwardable: r.Forwardable, KDCOffset: r.KDCOffset,
			Canonicalize: canonicalize})
		if err != nil && !canonicalize && hostBased(ask) && IsCode(err, errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN) {
			// Not a service of this realm: maybe the KDC knows whose it is [RFC 6806 §8].
			canonicalize = true
			continue
		}
		if err != nil {
			return nil, err
		}
		if got.Credential.Server.IsKrbtgt() && !ask.IsKrbtgt() && !isReferral(got.Credential, ask) {
			// A "referral" to the KDC's own realm goes nowhere (MIT: KRB5_KDCREP_MODIFIED).
			return nil, fmt.Errorf("client: %s answered a request for %s with %s: %w", realm, ask, got.Credential.Server,
				&KDCError{Code: errorcode.KRB_AP_ERR_MODIFIED, Local: true, Client: tgt.Client.String(), Server: ask.String()})
		}
		if !isReferral(got.Credential, ask) {
			res.TGSResult, res.Realms = got, path.realms
			return res, nil
		}
		if err := next(got.Credential); err != nil {
			return nil, err
		}
		canonicalize = true
	}
}

// referralPath is the realms a ServiceTicket call went through, bounded and loop-free.
type referralPath struct {
	realms []string
	seen   map[string]bool
}

func newReferralPath(start string) *referralPath {
	return &referralPath{realms: []string{start}, seen: map[string]bool{start: true}}
}

// advance records a move to realm to: ErrReferralLoop if it was visited, ErrTooManyReferrals past
// MaxReferralHops moves.
func (p *referralPath) advance(to string) error {
	switch {
	case p.seen[to]:
		return fmt.Errorf("%w: referred back to %s", ErrReferralLoop, to)
	case len(p.realms) > MaxReferralHops:
		return fmt.Errorf("%w (more than %d)", ErrTooManyReferrals, MaxReferralHops)
	}
	p.seen[to] = true
	p.realms = append(p.realms, to)
	return nil
}

// tgtRealm is the realm whose KDCs open a TGT: krbtgt/REALM@ISSUER.
func tgtRealm(c ticket.Credential) string {
	if c.Server.IsKrbtgt() {
		return c.Server.Components[1]
	}
	return c.Server.Realm
}

// isReferral reports whether a reply to a request for asked is a cross-realm TGT instead.
func isReferral(c ticket.Credential, asked principal.Name) bool {
	return c.Server.IsKrbtgt() && !asked.IsKrbtgt() && c.Server.Components[1] != c.Server.Realm
}

// hostBased reports whether a name looks like a host-based service (service/host.domain), the names KDCs
// refer for.
func hostBased(n principal.Name) bool {
	return len(n.Components) == 2 && !n.IsKrbtgt() && strings.Contains(n.Components[1], ".") &&
		(n.Type == nametype.KRB_NT_SRV_HST || n.Type == nametype.KRB_NT_PRINCIPAL || n.Type == nametype.KRB_NT_UNKNOWN ||
			n.Type == nametype.KRB_NT_SRV_INST)
}

func cachedTGT(r ServiceTicketRequest, realm string) (ticket.Credential, bool) {
	if r.CachedTGT == nil {
		return ticket.Credential{}, false
	}
	return r.CachedTGT(realm)
}

// FindCrossRealmTGT returns a usable cross-realm TGT krbtgt/realm@ANY of the cache's default principal, the
// newest one, for ServiceTicketRequest.CachedTGT. Expired tickets (on the cache's KDC clock) are skipped.
func FindCrossRealmTGT(cc *ticket.CCache, realm string, now time.Time) (ticket.Credential, bool) {
	best := -1
	for i, c := range cc.Credentials {
		if c.IsConfig() || !c.Server.IsKrbtgt() || c.Server.Components[1] != realm || c.Server.Realm == realm ||
			!c.Client.Equal(cc.DefaultPrincipal) || len(c.Key.KeyValue) == 0 || !now.Before(c.EndTime) {
			continue
		}
		if best < 0 || c.EndTime.After(cc.Credentials[best].EndTime) {
			best = i
		}
	}
	if best < 0 {
		return ticket.Credential{}, false
	}
	return cc.Credentials[best], true
}
