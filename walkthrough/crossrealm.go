package walkthrough

import (
	"bytes"

	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbkit/kerbkit/principal"
)

// Cross-realm exchanges [RFC 4120 §1.2, §3.3.1; RFC 6806 §8]: a TGS of realm A that does not hold the service
// answers with a cross-realm TGT krbtgt/B@A, sealed in the inter-realm key realms A and B share; the client
// presents it to B's TGS, which opens it with its copy of that key and issues the service ticket. The
// recorder tells these messages apart from the single-realm ones by the ticket names alone.

// isCrossRealmTGS reports whether p is a cross-realm ticket-granting service krbtgt/B@A (B is not A).
func isCrossRealmTGS(p principal.Name) bool {
	return p.IsKrbtgt() && p.Components[1] != p.Realm
}

// interRealmOwner describes the inter-realm key krbtgt/B@A for a KeyInfo.
func interRealmOwner(p principal.Name) string {
	return p.String() + "'s long-term key: the inter-realm key realms " + p.Realm + " and " + p.Components[1] +
		" share (" + p.Realm + "'s TGS seals cross-realm TGTs in it, " + p.Components[1] + "'s opens them)"
}

// presentsCrossRealmTGT reports whether a TGS-REQ's ticket is the cross-realm TGT the previous TGS-REP brought
// (its message E): the client has moved on to the other realm's TGS.
func (r *Recorder) presentsCrossRealmTGT(t messages.Ticket, raw []byte) bool {
	return isCrossRealmTGS(principal.FromPrincipalName(t.SName, t.Realm)) && r.st.svc.raw != nil && bytes.Equal(r.st.svc.raw, raw)
}

// crossRealmTGSReq adjusts a TGS-REQ step that presents a cross-realm TGT.
func crossRealmTGSReq(s *Step, tgs principal.Name) {
	other := tgs.Components[1]
	s.Title = "TGS-REQ to realm " + other + ": message C (the cross-realm TGT and the service wanted) and message D (an authenticator)"
	s.Summary = "The client takes the cross-realm TGT it was given to the TGS of " + other + ", a realm that trusts " +
		tgs.Realm + ". It is the same exchange as in its own realm: the ticket, and an authenticator in the ticket's " +
		"session key. " + other + "'s TGS opens the ticket with its copy of the inter-realm key " + tgs.String() +
		"; it does not know the client, and trusts " + tgs.Realm + "'s word for who it is."
	s.Notes = append(s.Notes, Note{NoteModern, "Cross-realm [RFC 4120 §1.2, §3.3.3.2]: the TGS of " + other +
		" issues the service ticket for a client of " + tgs.Realm + " without looking it up; it records in the " +
		"ticket's transited field the realms the request came through besides the client's (none with direct " +
		"trust), and refuses a path through realms it does not trust."})
}

// crossRealmTGSRep adjusts a TGS-REP step whose ticket E is a cross-realm TGT, and returns the check that
// replaces "E is for the service asked for".
func crossRealmTGSRep(s *Step, tgt, asked principal.Name) Check {
	other := tgt.Components[1]
	referral := !asked.IsKrbtgt()
	if referral {
		s.Title = "TGS-REP, a referral: message E is a cross-realm TGT for realm " + other + ", message F its session key"
		s.Summary = "The TGS of " + tgt.Realm + " does not hold " + asked.String() + ", but knows it belongs to realm " +
			other + ", which " + tgt.Realm + " trusts. Instead of a service ticket it sends a ticket-granting ticket for " +
			other + "'s TGS, sealed in the inter-realm key both realms hold, with a fresh session key in F."
	} else {
		s.Title = "TGS-REP: message E is a cross-realm TGT for realm " + other + ", message F its session key"
		s.Summary = "The client asked " + tgt.Realm + "'s TGS for a ticket to " + other + "'s TGS, and gets one: E is sealed " +
			"in the inter-realm key both realms hold, F carries its session key."
	}
	s.Notes = append(s.Notes, Note{NoteModern, "Cross-realm trust [RFC 4120 §1.2; referrals: RFC 6806 §8]: realms " +
		tgt.Realm + " and " + other + " share the key of " + tgt.String() + ", made by both administrators from " +
		"one password (kdc trust add, or MIT's kadmin addprinc). Nothing else is shared: " + other +
		" has no copy of " + tgt.Realm + "'s users or of its own krbtgt key."})
	text := "F and E name " + tgt.String() + ": a TGT for realm " + other
	if referral {
		text += " instead of the service asked for (a referral): the client asks " + other + "'s TGS next"
	}
	return Check{By: ActorClient, Result: CheckPass, Text: text}
}

// crossRealmStageTexts says what the other realm's TGS checks where it differs from a TGS-REQ in the client's
// own realm (kdc/crossrealm.go): the inter-realm key opens the ticket, and the client is not looked up.
func crossRealmStageTexts(s *Step) {
	for i, c := range s.Checks {
		if c.By != ActorTGS {
			continue
		}
		switch c.Stage {
		case "open-tgt":
			s.Checks[i].Text = "the ticket is a cross-realm TGT for this realm (krbtgt/THIS@OTHER), the KDC holds that " +
				"inter-realm key for its kvno and enctype (kdc trust add), and it decrypts with it (key usage 2): only " +
				"the other realm's KDC, which holds the same key, could have made it"
		case "client":
			s.Checks[i].Text = "the client is of another realm, so it is not looked up; instead its path is checked: a " +
				"cross-realm ticket never names a client of this realm, and every realm in the transited field (and " +
				"the issuing realm, if not the client's) must be one this KDC accepts as a transit realm (direct trust " +
				"passes)"
		}
	}
}
