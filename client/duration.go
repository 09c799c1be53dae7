package client

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxDurationSeconds is the largest duration accepted: Kerberos deltas are signed 32-bit seconds.
const maxDurationSeconds = math.MaxInt32

// ParseDuration parses a duration the way MIT kinit -l/-r and krb5.conf do: plain seconds ("3600"), unit
// groups in the order d, h, m, s ("10h", "1d", "30m", "7d", "1d12h", "1h30m10s", spaces allowed between groups),
// or [Nd]h:m[:s] ("2:30", "1d2:00:00"). Negative, empty and overlong values are errors.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("client: empty duration")
	}
	secs, err := parseSeconds(in)
	if err != nil {
		return 0, fmt.Errorf("client: invalid duration %q: %w", s, err)
	}
	return time.Duration(secs) * time.Second, nil
}

// parseSeconds does the work of ParseDuration and returns whole seconds.
func parseSeconds(s string) (int64, error) {
	if isDigits(s) {
		return checkedSeconds(s, 1, 0)
	}
	var total int64
	rest := s
	// An optional "Nd" prefix may precede the h:m[:s] form.
	if strings.Contains(rest, ":") {
		if i := strings.IndexByte(rest, 'd'); i >= 0 {
			v, err := checkedSeconds(strings.TrimSpace(rest[:i]), 86400, 0)
			if err != nil {
				return 0, err
			}
			total = v
			rest = strings.TrimSpace(rest[i+1:])
		}
		parts := strings.Split(rest, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return 0, fmt.Errorf("want h:m or h:m:s")
		}
		mult := []int64{3600, 60, 1}
		for i, p := range parts {
			if i > 0 && len(p) != 2 {
				return 0, fmt.Errorf("minutes and seconds need two digits")
			}
			v, err := checkedSeconds(p, mult[i], total)
			if err != nil {
				return 0, err
			}
			if i > 0 && v-total >= 60*mult[i] {
				return 0, fmt.Errorf("%s out of range", p)
			}
			total = v
		}
		return total, nil
	}
	units := "dhms"
	mult := map[byte]int64{'d': 86400, 'h': 3600, 'm': 60, 's': 1}
	next := 0 // index in units of the next allowed unit
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t")
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("want a number followed by d, h, m or s")
		}
		u := strings.IndexByte(units[next:], rest[i])
		if u < 0 {
			return 0, fmt.Errorf("unit %q unknown or out of order", rest[i])
		}
		next += u + 1
		v, err := checkedSeconds(rest[:i], mult[rest[i]], total)
		if err != nil {
			return 0, err
		}
		total = v
		rest = rest[i+1:]
	}
	return total, nil
}

// checkedSeconds returns base + digits*mult, failing on non-digits or when the result exceeds the limit.
func checkedSeconds(digits string, mult, base int64) (int64, error) {
	if !isDigits(digits) {
		return 0, fmt.Errorf("%q is not a number", digits)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > maxDurationSeconds/mult || base+n*mult > maxDurationSeconds {
		return 0, fmt.Errorf("too long")
	}
	return base + n*mult, nil
}

// isDigits reports whether s is a non-empty string of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
