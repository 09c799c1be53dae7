package kdc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// Cross-realm trust [RFC 4120 §1.2, §3.3.1; RFC 6806 §8]. Two realms A and B
// trust each other through inter-realm keys both hold: krbtgt/B@A lets A's
// clients reach B (A seals cross-realm TGTs in it, B opens them), krbtgt/A@B
// lets B's clients reach A. In A's store the first is an ordinary principal of
// A; the second, named in realm B, is the one record a store keeps outside its
// own realm. Nothing here runs for a request that stays in the realm, except
// one string comparison per stage.

// maxReferralLabels bounds how many domain suffixes of a host name are tried
// as realm names when looking for a referral.
const maxReferralLabels = 8

// crossRealmState is what a cross-realm request adds to tgsRequest.
type crossRealmState struct {
	// replySName, when set, is the server the ticket and the reply name
	// instead of the request's sname (a referral: krbtgt/THEIRS); referral is
	// then the realm referred to.
	replySName types.PrincipalName
	referral   string
	// transited is the issued ticket's transited contents for a client of
	// another realm.
	transited []byte
}

// cross returns tr's cross-realm state, making it on first use.
func (tr *tgsRequest) cross() *crossRealmState {
	if tr.xr == nil {
		tr.xr = &crossRealmState{}
	}
	return tr.xr
}

// foreignTGT reports whether the presented ticket was issued by another realm
// (krbtgt/OURS@OTHER, sealed in the inter-realm key), as set by openTGT.
func (tr *tgsRequest) foreignTGT(k *KDC) bool { return tr.apreq.Ticket.Realm != k.realm }

// tgtError is the KRB-ERROR for a presented TGT that cannot be opened: for a
// cross-realm TGT the status names the inter-realm key, which is what an
// operator has to compare with the other realm.
func (k *KDC) tgtError(tr *tgsRequest, code int32, status string, cause error) *Error {
	if !tr.foreignTGT(k) {
		return kerr(code, status, cause)
	}
	name := "krbtgt/" + k.realm + "@" + tr.apreq.Ticket.Realm
	switch code {
	case errorcode.KRB_AP_ERR_BADKEYVER:
		status = "INTER_REALM_KVNO_UNKNOWN"
	case errorcode.KRB_AP_ERR_NOKEY:
		status = "INTER_REALM_ETYPE_UNKNOWN"
	case errorcode.KRB_AP_ERR_BAD_INTEGRITY:
		status = "INTER_REALM_KEY_MISMATCH"
	}
	if cause == nil {
		cause = errors.New("inter-realm key " + name)
	} else {
		cause = fmt.Errorf("inter-realm key %s: %w", name, cause)
	}
	return kerr(code, status, cause)
}

// noTrust is the answer to a cross-realm TGT from a realm we hold no
// inter-realm key of: the ticket's server is unknown to us, as MIT answers
// (kdc_get_server_key: KDC_ERR_S_PRINCIPAL_UNKNOWN).
func (k *KDC) noTrust(tr *tgsRequest) error {
	return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "NO_TRUST_WITH_REALM",
		fmt.Errorf("no inter-realm key krbtgt/%s@%s", k.realm, logString(tr.apreq.Ticket.Realm)))
}

// checkForeignClient runs, in the "client" stage, for a client of another
// realm: such a client is not looked up (our database does not hold it), but
// the path it came by is checked [RFC 4120 §3.3.3.2], and what the issued
// ticket's transited field will say is kept in tr.transited:
//
//   - a cross-realm TGT never speaks for a client of our own realm: a realm we
//     trust may not mint our users;
//   - the realms the TGT says were transited, plus the TGT's issuing realm when
//     it is not the client's own (MIT add_to_transited), must each be allowed
//     by Config.TransitRealms; with none configured only direct trust passes,
//     which is the common case (KDC_ERR_POLICY "BAD_TRANSIT" otherwise, as
//     MIT's reject_bad_transit).
func (k *KDC) checkForeignClient(tr *tgsRequest) error {
	issuer := tr.apreq.Ticket.Realm
	if tr.client.Realm == k.realm {
		return kerr(errorcode.KDC_ERR_POLICY, "CROSS_REALM_LOCAL_CLIENT",
			fmt.Errorf("a ticket issued by %s names a client of this realm", logString(issuer)))
	}
	tt := tr.tgt.Transited
	if tt.TRType != ticket.TransitedDomainX500Compress && len(tt.Contents) > 0 {
		return kerr(errorcode.KDC_ERR_TRTYPE_NOSUPP, "VALIDATE_TRANSIT_TYPE", fmt.Errorf("tr-type %d", tt.TRType))
	}
	realms, err := ticket.DecodeTransited(tt.Contents)
	if err != nil {
		return kerr(errorcode.KDC_ERR_POLICY, "BAD_TRANSIT", err)
	}
	// A TGT of our own (issued to this foreign client earlier) already carries
	// the path we checked; another realm's TGT adds that realm unless it is
	// the client's own.
	if issuer != tr.client.Realm && issuer != k.realm {
		realms = append(realms, issuer)
	}
	for _, r := range realms {
		switch {
		case r == k.realm || r == tr.client.Realm:
			return kerr(errorcode.KDC_ERR_POLICY, "BAD_TRANSIT", fmt.Errorf("the path of %s loops through %s", tr.client, logString(r)))
		case !k.transitAllowed(r):
			return kerr(errorcode.KDC_ERR_POLICY, "BAD_TRANSIT",
				fmt.Errorf("%s came through %s, which is not a transit realm of this KDC", tr.client, logString(r)))
		}
	}
	if len(realms) > 0 {
		tr.cross().transited = ticket.EncodeTransited(realms)
	}
	return nil
}

// transitAllowed reports whether Config.TransitRealms lets realm appear on a
// client's path.
func (k *KDC) transitAllowed(realm string) bool {
	for _, r := range k.transitRealms {
		if r == realm || r == "*" {
			return true
		}
	}
	return false
}

// transitedFor is the transited field of a ticket issued for tr
// [RFC 4120 §3.3.3.2]: empty for a client of this realm and for direct trust,
// else the realms checkForeignClient found.
func (tr *tgsRequest) transitedFor() messages.TransitedEncoding {
	c := []byte{}
	if tr.xr != nil && tr.xr.transited != nil {
		c = tr.xr.transited
	}
	return messages.TransitedEncoding{TRType: ticket.TransitedDomainX500Compress, Contents: c}
}

// crossRealmFlags marks a ticket for a client of another realm as having had
// its path checked (TRANSITED-POLICY-CHECKED, RFC 4120 §2.7), so services
// need not check it again.
func (k *KDC) crossRealmFlags(tr *tgsRequest, f *asn1.BitString) {
	if tr.client.Realm != k.realm {
		types.SetFlag(f, flags.TransitedPolicyChecked)
	}
}

// lookupOtherRealm answers a request whose body names another realm: a service
// of a realm we hold an outgoing inter-realm key for gets a cross-realm TGT
// krbtgt/THEIRS@OURS instead [RFC 4120 §3.3.1: "the KDC will issue a TGT for
// the remote realm"], which the client presents to that realm's KDC.
func (k *KDC) lookupOtherRealm(ctx context.Context, tr *tgsRequest) error {
	realm := tr.req.Body.Realm
	// The realm becomes a name component (krbtgt/REALM): it must fit as one.
	if tr.renew || !principal.InBounds(types.PrincipalName{NameString: []string{realm}}, k.realm) {
		return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVER_REALM_UNKNOWN", fmt.Errorf("request for realm %q", logString(realm)))
	}
	ok, err := k.referTo(ctx, tr, realm)
	if err != nil {
		return err
	}
	if !ok {
		return kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVER_REALM_UNKNOWN",
			fmt.Errorf("request for realm %q, which this realm has no inter-realm key for", logString(realm)))
	}
	return nil
}

// lookupReferral runs when a requested service is not in the database: a
// host-based name (two components, the second a dotted host name) asked with
// the canonicalize option is referred to the trusted realm its host's domain
// names, by the DNS-suffix convention MIT's clients fall back on (a host
// svc.b.example is in realm B.EXAMPLE, else EXAMPLE) [RFC 6806 §8; MIT
// find_referral_tgs]. Unlike MIT, NT-PRINCIPAL names qualify too: that is what
// `kvno host/svc.b.example` sends. It reports whether it referred.
func (k *KDC) lookupReferral(ctx context.Context, tr *tgsRequest) (bool, error) {
	b := tr.req.Body
	if !isSet(b.KDCOptions, flags.Canonicalize) || isSet(b.KDCOptions, flags.EncTktInSkey) || tr.renew {
		return false, nil
	}
	sn := b.SName
	switch sn.NameType {
	case nametype.KRB_NT_UNKNOWN, nametype.KRB_NT_PRINCIPAL, nametype.KRB_NT_SRV_INST, nametype.KRB_NT_SRV_HST:
	default:
		return false, nil
	}
	if len(sn.NameString) != 2 || sn.NameString[0] == "krbtgt" {
		return false, nil
	}
	host := sn.NameString[1]
	if realm, ok := k.hostRealm(host); ok {
		if realm == k.realm {
			return false, nil
		}
		return k.referTo(ctx, tr, realm)
	}
	for i := 0; i < maxReferralLabels; i++ {
		dot := strings.IndexByte(host, '.')
		if dot < 0 || dot == len(host)-1 {
			break
		}
		host = host[dot+1:]
		realm := strings.ToUpper(host)
		if realm == k.realm {
			continue // a referral to ourselves
		}
		ok, err := k.referTo(ctx, tr, realm)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// hostRealm looks a host up in Config.DomainRealms as MIT's
// krb5_get_host_realm reads [domain_realm]: the host name itself, then each
// of its domains from the longest (".b.example", ".example").
func (k *KDC) hostRealm(host string) (string, bool) {
	if len(k.domainRealms) == 0 {
		return "", false
	}
	h := strings.ToLower(host)
	if r, ok := k.domainRealms[h]; ok {
		return r, true
	}
	for i := 0; i < maxReferralLabels; i++ {
		dot := strings.IndexByte(h, '.')
		if dot < 0 {
			break
		}
		if r, ok := k.domainRealms[h[dot:]]; ok {
			return r, true
		}
		h = h[dot+1:]
	}
	return "", false
}

// lowerKeys copies m with lower-cased keys.
func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// referTo makes tr a request for the cross-realm TGT krbtgt/realm@OURS if the
// store holds that inter-realm key: the ticket and the reply then name it
// instead of the service asked for [RFC 6806 §8].
func (k *KDC) referTo(ctx context.Context, tr *tgsRequest, realm string) (bool, error) {
	name := principal.Name{Components: []string{"krbtgt", realm}, Realm: k.realm, Type: nametype.KRB_NT_SRV_INST}
	rec, err := k.store.Get(ctx, name)
	switch {
	case errors.Is(err, principal.ErrNotFound):
		return false, nil
	case err != nil:
		return false, kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	if err := checkServerRecord(rec, tr); err != nil {
		return false, err
	}
	tr.sname, tr.server = name, rec
	tr.cross().replySName = name.PrincipalName()
	tr.xr.referral = realm
	return true, nil
}
