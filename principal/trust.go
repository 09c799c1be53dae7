package principal

import "github.com/jcmturner/gokrb5/v8/iana/nametype"

// CrossRealmKrbtgt returns krbtgt/to@from, the inter-realm key that lets clients
// of realm from reach realm to: from's KDC seals cross-realm TGTs in it and to's
// KDC opens them, so both realms hold it, with the same keys [RFC 4120 §1.2].
// Derived from a password it has the default salt "from" + "krbtgt" + "to", as
// MIT's `kadmin addprinc krbtgt/to@from` gives it.
func CrossRealmKrbtgt(to, from string) Name {
	return Name{Components: []string{"krbtgt", to}, Realm: from, Type: nametype.KRB_NT_SRV_INST}
}

// IsIncomingTrust reports whether n is krbtgt/realm@OTHER for another realm: the
// inter-realm key by which realm accepts OTHER's clients. It is the one kind of
// record a realm's store holds under another realm's name.
func (n Name) IsIncomingTrust(realm string) bool {
	return n.IsKrbtgt() && n.Components[1] == realm && n.Realm != realm && n.Realm != ""
}
