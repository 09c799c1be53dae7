package testenv

import (
	"fmt"
	"strings"
)

// Klist is the parsed output of MIT `klist [-f] [-e]` for a credential cache.
type Klist struct {
	Cache     string // "FILE:/…" from "Ticket cache:"
	Principal string // from "Default principal:"
	Tickets   []KlistTicket
}

// KlistTicket is one credential in [Klist].
type KlistTicket struct {
	Start      string // "Valid starting" column
	Expires    string // "Expires" column
	Server     string // "Service principal" column
	RenewUntil string // from "renew until …" ("" if absent)
	Flags      string // from "Flags: …" (with -f; "" if absent)
	SessionKey string // session key enctype (with -e)
	TicketKey  string // ticket enctype (with -e)
}

// HasFlags reports whether every letter of want is among the ticket's flags.
func (k KlistTicket) HasFlags(want string) bool {
	for _, c := range want {
		if !strings.ContainsRune(k.Flags, c) {
			return false
		}
	}
	return true
}

// Ticket returns the ticket for server, or nil.
func (k *Klist) Ticket(server string) *KlistTicket {
	for i := range k.Tickets {
		if k.Tickets[i].Server == server {
			return &k.Tickets[i]
		}
	}
	return nil
}

// ParseKlist parses MIT klist output produced with LC_ALL=C (dates as
// "MM/DD/YY HH:MM:SS").
func ParseKlist(out string) (*Klist, error) {
	k := &Klist{}
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(line, "Ticket cache:"):
			k.Cache = strings.TrimSpace(strings.TrimPrefix(line, "Ticket cache:"))
		case strings.HasPrefix(line, "Default principal:"):
			k.Principal = strings.TrimSpace(strings.TrimPrefix(line, "Default principal:"))
		case strings.HasPrefix(line, "Valid starting"):
			inTable = true
		case !inTable:
			continue
		case line[0] == ' ' || line[0] == '\t':
			if len(k.Tickets) == 0 {
				return nil, fmt.Errorf("klist: detail line before any ticket: %q", line)
			}
			parseKlistDetail(&k.Tickets[len(k.Tickets)-1], trimmed)
		default:
			f := strings.Fields(line)
			if len(f) < 5 {
				return nil, fmt.Errorf("klist: unexpected ticket line %q", line)
			}
			k.Tickets = append(k.Tickets, KlistTicket{
				Start:   f[0] + " " + f[1],
				Expires: f[2] + " " + f[3],
				Server:  f[len(f)-1],
			})
		}
	}
	if k.Principal == "" {
		return nil, fmt.Errorf("klist: no \"Default principal\" line in %q", out)
	}
	return k, nil
}

// parseKlistDetail reads an indented line made of the parts "renew until …",
// "Flags: …" and "Etype (skey, tkt): a, b", joined by ", " (klist puts them on
// one line when it can), or "Addresses: …".
func parseKlistDetail(t *KlistTicket, s string) {
	if before, etypes, ok := strings.Cut(s, "Etype (skey, tkt):"); ok {
		a, b, _ := strings.Cut(etypes, ",")
		t.SessionKey, t.TicketKey = strings.TrimSpace(a), strings.TrimSpace(b)
		s = strings.TrimSuffix(strings.TrimSpace(before), ",")
	}
	if before, flags, ok := strings.Cut(s, "Flags:"); ok {
		t.Flags = strings.TrimSpace(flags)
		s = strings.TrimSuffix(strings.TrimSpace(before), ",")
	}
	if rest, ok := strings.CutPrefix(s, "renew until "); ok {
		t.RenewUntil = strings.TrimSpace(rest)
	}
}
