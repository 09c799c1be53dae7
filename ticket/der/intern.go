package der

import (
	"hash/maphash"
	"sync/atomic"
)

// The strings of Kerberos messages (realms, name components) repeat from one
// message to the next: a KDC reads its own realm, "krbtgt" and the names of
// its busy clients and services in nearly every request. intern keeps the last
// short string of each slot of a small table, so that decoding a string read
// recently allocates nothing, and a decoded string never holds on to more of
// its message than itself. The table is lossy (a new string replaces the
// slot's) and bounded: internSlots × (maxInterned + 16) bytes, about 80 KB.
const (
	internSlots = 1024
	maxInterned = 64
)

var (
	internSeed = maphash.MakeSeed()
	interned   [internSlots]atomic.Pointer[string]
)

// intern returns b as a string, from the table when its slot holds it.
func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInterned {
		return string(b)
	}
	slot := &interned[maphash.Bytes(internSeed, b)%internSlots]
	if p := slot.Load(); p != nil && *p == string(b) { // the comparison does not allocate
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
