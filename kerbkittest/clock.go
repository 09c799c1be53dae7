package kerbkittest

import "github.com/kerbkit/kerbkit/internal/clock"

// Clock is a settable clock for a realm's KDC: real time plus an offset that a
// test moves, so it can act "ten minutes later" (an expired ticket, a renewal)
// without sleeping. The zero value is real time. It is safe for concurrent use.
//
// Clients keep their own clocks: kerbkit's client and MIT kinit learn the KDC's
// time from its pre-authentication error and follow it, gokrb5 does not and
// fails with a clock skew error once the offset passes five minutes, as it
// would against a real KDC. Run MIT tools under faketime with the same offset
// to move them too.
type Clock = clock.Offset
