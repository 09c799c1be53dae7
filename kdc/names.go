package kdc

import (
	"context"
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
)

// Names: aliases, enterprise principal names and the canonicalize option (RFC
// 6806), and the clear refusals of what this KDC does not do (anonymous and
// PKINIT).

// Name types and options of RFC 6806 and RFC 6112 that gokrb5 does not name.
const (
	ntEnterprise = 10 // NT-ENTERPRISE (RFC 6806 §5)
	ntWellknown  = 11 // NT-WELLKNOWN (RFC 6111 §3)

	optCanonicalize     = 15 // KDC option canonicalize (RFC 6806 §3)
	optRequestAnonymous = 16 // KDC option request-anonymous (RFC 6112 §4.1)

	paPKASReqOld = 14 // PA-PK-AS-REQ_OLD (Windows 2000 PKINIT)
)

// lookupASClient finds the AS client under its name or one of its aliases, or,
// for an enterprise name "user@domain" (RFC 6806 §5), the principal that name
// is an alias of or else user@domain itself when domain is our realm. Clients
// of other realms get no referral: they are unknown, as before.
func (k *KDC) lookupASClient(ctx context.Context, as *asRequest) error {
	rec, err := k.lookup(ctx, as.cname)
	if errors.Is(err, principal.ErrNotFound) && as.cname.Type == ntEnterprise && len(as.cname.Components) == 1 {
		n, perr := principal.Parse(as.cname.Components[0], k.realm)
		if perr != nil {
			return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_NOT_FOUND", fmt.Errorf("enterprise name: %w", perr))
		}
		if n.Realm != k.realm {
			return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_NOT_FOUND", fmt.Errorf("enterprise name of realm %q", n.Realm))
		}
		rec, err = k.lookup(ctx, n)
	}
	switch {
	case errors.Is(err, principal.ErrNotFound):
		return kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_NOT_FOUND", nil)
	case err != nil:
		return kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	as.client = rec
	return nil
}

// canonicalName is the name a reply carries for a principal requested as
// asked and found as rec: the stored (canonical) name when the client asked
// for canonicalization or used an enterprise name (RFC 6806 §5: the reply
// names the principal itself), else the name as asked, as MIT answers an
// alias without the option. The second result reports a change.
func canonicalName(asked types.PrincipalName, rec *principal.Record, opts asn1.BitString, enterprise bool) (types.PrincipalName, bool) {
	if !(isSet(opts, optCanonicalize) || enterprise) || wireName(asked, rec.Name.Realm).Equal(rec.Name) {
		return asked, false
	}
	return rec.Name.PrincipalName(), true
}

// refuseUnsupportedAS answers anonymous and PKINIT requests with a code and
// text that say what is missing, instead of the "not found" or "preauth
// required" loops they would otherwise get (MIT: KDC_ERR_POLICY for anonymous
// requests when anonymous is disabled; PKINIT padata unknown to the KDC).
func refuseUnsupportedAS(as *asRequest) error {
	b := as.req.Body
	if isSet(b.KDCOptions, optRequestAnonymous) || isAnonymous(b.CName) {
		return kerr(errorcode.KDC_ERR_POLICY, "ANONYMOUS_NOT_SUPPORTED",
			errors.New("anonymous tickets (RFC 6112) are not issued by this KDC"))
	}
	_, pk := as.req.PA(patype.PA_PK_AS_REQ)
	_, pkOld := as.req.PA(paPKASReqOld)
	_, ts := as.req.PA(patype.PA_ENC_TIMESTAMP)
	if (pk || pkOld) && !ts {
		return kerr(errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, "PKINIT_NOT_SUPPORTED",
			errors.New("PKINIT (RFC 4556) is not supported by this KDC; use a password or keytab"))
	}
	return nil
}

// isAnonymous reports the anonymous principal WELLKNOWN/ANONYMOUS (RFC 6111 §3).
func isAnonymous(pn types.PrincipalName) bool {
	return len(pn.NameString) == 2 && pn.NameString[0] == "WELLKNOWN" && pn.NameString[1] == "ANONYMOUS"
}
