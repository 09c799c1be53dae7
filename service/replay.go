package service

import (
	"github.com/kerbkit/kerbkit/internal/replay"
)

// DefaultSkew is the allowed clock difference between client and service
// (RFC 4120 §1.6 suggests 5 minutes; MIT's clockskew default).
const DefaultSkew = replay.DefaultSkew

// DefaultReplayCacheSize caps the entries of a ReplayCache. With entries kept
// for 2×skew (10 minutes) it allows about 430 authentications a second
// sustained, in roughly 20 MiB.
const DefaultReplayCacheSize = replay.DefaultSize

// Replay cache verdicts; test with errors.Is.
var (
	// ErrReplay: the same authenticator (server, client, ctime, cusec) was
	// already accepted within the skew window (KRB_AP_ERR_REPEAT).
	ErrReplay = replay.ErrReplay
	// ErrBeforeCache: the authenticator was made before this cache started,
	// so a previous instance may have accepted it (see ReplayCache).
	ErrBeforeCache = replay.ErrBeforeCache
	// ErrReplayCacheFull: the cache is at its bound with nothing expired; the
	// request is refused rather than forgetting an entry still in its window.
	ErrReplayCacheFull = replay.ErrFull
)

// ReplayCacheOptions configure NewReplayCache (Skew, MaxEntries, Now, Start).
// The zero value means defaults.
type ReplayCacheOptions = replay.Options

// ReplayCache remembers the authenticators a service accepted (RFC 4120
// §3.2.3). It is bounded, safe for concurrent use, and refuses authenticators
// made before it started, so nothing captured before a restart can be replayed
// after it; see the replay package for the details. Services sharing a
// principal must share one cache. The KDC's kpasswd service uses the same type.
type ReplayCache = replay.Cache

// NewReplayCache returns an empty cache.
func NewReplayCache(o ReplayCacheOptions) *ReplayCache { return replay.New(o) }
