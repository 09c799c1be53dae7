package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// listTimeLayout is how MIT klist prints times in the C locale (strftime "%x %X"): 11/25/26 02:24:57.
const listTimeLayout = "01/02/06 15:04:05"

// ListOptions are the flags of kclient list.
type ListOptions struct {
	Env *Env

	CCache string // -c
	Flags  bool   // -f
	Etypes bool   // -e
	// Location is the time zone for printed times; nil means time.Local.
	Location *time.Location
}

// NewCmdList returns "kclient list". runF replaces the run function in tests; nil means listRun.
func NewCmdList(env *Env, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tickets in a credential cache (like klist)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.BoolVarP(&opts.Flags, "flags", "f", false, "show ticket flags")
	f.BoolVarP(&opts.Etypes, "etypes", "e", false, "show session key and ticket enctypes")
	return cmd
}

// listRun prints the cache like MIT klist: header, then one entry per ticket, configuration entries hidden.
func listRun(_ context.Context, o *ListOptions) error {
	path, cc, err := readCCache(o.Env, o.CCache, "")
	if err != nil {
		return err
	}
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	return writeList(o.Env.Out, "FILE:"+path, cc, o.Flags, o.Etypes, loc)
}

// writeList renders the klist output for cc.
func writeList(w io.Writer, name string, cc *ticket.CCache, showFlags, showEtypes bool, loc *time.Location) error {
	var b strings.Builder
	def := cc.DefaultPrincipal.String()
	fmt.Fprintf(&b, "Ticket cache: %s\nDefault principal: %s\n\n", name, def)
	width := len(listTimeLayout)
	fmt.Fprintf(&b, "%-*s  %-*s  %s\n", width, "Valid starting", width, "Expires", "Service principal")
	ts := func(t time.Time) string {
		if t.IsZero() {
			return fmt.Sprintf("%-*s", width, "")
		}
		return t.In(loc).Format(listTimeLayout)
	}
	for _, c := range cc.Credentials {
		if c.IsConfig() {
			continue
		}
		start := c.StartTime
		if start.IsZero() {
			start = c.AuthTime
		}
		fmt.Fprintf(&b, "%s  %s  %s\n", ts(start), ts(c.EndTime), c.Server)
		// The extra lines follow klist's layout: fields share a tab-indented line, separated by ", ", and a
		// line is ended once it holds enough (renew-till counts double).
		extra := 0
		sep := func() {
			if extra == 0 {
				b.WriteString("\t")
			} else {
				b.WriteString(", ")
			}
		}
		if cl := c.Client.String(); cl != def {
			sep()
			fmt.Fprintf(&b, "for client %s", cl)
			extra++
		}
		if !c.RenewTill.IsZero() {
			sep()
			fmt.Fprintf(&b, "renew until %s", ts(c.RenewTill))
			extra += 2
		}
		if extra > 3 {
			b.WriteString("\n")
			extra = 0
		}
		if showFlags {
			if fl := ticket.FlagString(c.Flags); fl != "" {
				sep()
				fmt.Fprintf(&b, "Flags: %s", fl)
				extra++
			}
		}
		if extra > 2 {
			b.WriteString("\n")
			extra = 0
		}
		// Like klist, the ticket's etype and server are left out when the ticket does not decode.
		tkt, tktOK := decodeTicket(c.Ticket)
		if showEtypes && tktOK {
			sep()
			fmt.Fprintf(&b, "Etype (skey, tkt): %s, %s ", klistEnctype(c.Key.KeyType), klistEnctype(tkt.EncPart.EType))
			extra++
		}
		if extra > 0 {
			b.WriteString("\n")
		}
		// A ticket issued for another name than the entry's (a referral) is shown as klist does.
		if ts := principal.FromPrincipalName(tkt.SName, tkt.Realm); tktOK && !ts.Equal(c.Server) {
			fmt.Fprintf(&b, "\tTicket server: %s\n", ts)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// decodeTicket decodes a DER Ticket [RFC 4120 §5.3], surviving malformed input.
func decodeTicket(der []byte) (tkt messages.Ticket, ok bool) {
	defer func() {
		if recover() != nil {
			tkt, ok = messages.Ticket{}, false
		}
	}()
	if err := tkt.Unmarshal(der); err != nil {
		return messages.Ticket{}, false
	}
	return tkt, true
}

// klistEnctype names an enctype as klist -e does: MIT's name, or "etype N", after "DEPRECATED:" for the
// enctypes MIT calls weak or deprecated and for numbers it does not know.
func klistEnctype(e int32) string {
	if principal.EnctypeDeprecated(e) {
		return "DEPRECATED:" + principal.EnctypeName(e)
	}
	return principal.EnctypeName(e)
}
