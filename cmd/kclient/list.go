package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// listTimeLayout is how MIT klist prints times in the C locale (strftime "%x %X"): 11/25/26 02:24:57.
const listTimeLayout = "01/02/06 15:04:05"

// ListOptions are the flags of kclient list.
type ListOptions struct {
	Env *Env

	Name       string // NAME argument: the cache (or with -k the keytab), as klist takes it
	CCache     string // -c
	Flags      bool   // -f
	Etypes     bool   // -e
	Status     bool   // -s: exit status only
	Keytab     bool   // -k: list a keytab
	Timestamps bool   // -t: keytab entry timestamps (with -k)
	Keys       bool   // -K: keytab keys (with -k)
	Collection bool   // -l: list the caches of the collection
	All        bool   // -A: show every cache of the collection
	// Location is the time zone for printed times; nil means time.Local.
	Location *time.Location
	// Now is the clock for -s and "(Expired)"; nil means time.Now.
	Now func() time.Time
}

// NewCmdList returns "kclient list". runF replaces the run function in tests; nil means listRun.
func NewCmdList(env *Env, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List the tickets in a credential cache, or the keys of a keytab (like klist)",
		Long: `List the tickets in a credential cache, in MIT klist's layout: the cache name and default principal, then
each ticket's start and end time and service, with -f its flags, with -e its enctypes.

The cache is NAME or -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>; FILE: and DIR: caches are read.
  -s   print nothing; exit 0 if the cache holds a ticket-granting ticket that has not expired (or, with no
       TGT, any ticket that has not), else 1
  -l   list the caches of the collection (a DIR: collection's caches, or the one FILE: cache) with their
       principals, "(Expired)" after those with no valid ticket
  -A   show every cache of the collection
  -k   list the keytab NAME (default KRB5_KTNAME, then /etc/krb5.keytab) instead: key version and principal of
       each entry, with -t its timestamp, with -e its enctype, with -K its key in hex`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.BoolVarP(&opts.Flags, "flags", "f", false, "show ticket flags")
	f.BoolVarP(&opts.Etypes, "etypes", "e", false, "show session key and ticket enctypes (with -k: key enctypes)")
	f.BoolVarP(&opts.Status, "status", "s", false, "print nothing, set the exit status: 0 if the cache holds valid tickets")
	f.BoolVarP(&opts.Keytab, "keytab", "k", false, "list a keytab (NAME, else KRB5_KTNAME, else "+defaultKeytab+")")
	f.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "with -k: show each entry's timestamp")
	f.BoolVarP(&opts.Keys, "keys", "K", false, "with -k: show each entry's key (in hex)")
	f.BoolVarP(&opts.Collection, "list-all", "l", false, "list the credential caches of the collection")
	f.BoolVarP(&opts.All, "all", "A", false, "show every credential cache of the collection")
	return cmd
}

// checkListFlags refuses the combinations klist refuses.
func checkListFlags(o *ListOptions) error {
	if o.Keytab {
		if o.Flags || o.Status || o.Collection || o.All || o.CCache != "" {
			return cli.Usagef("-k lists a keytab and takes none of -c, -f, -s, -l, -A")
		}
		return nil
	}
	switch {
	case o.Timestamps || o.Keys:
		return cli.Usagef("-t and -K show keytab entries: use them with -k")
	case o.Collection && (o.All || o.Status):
		return cli.Usagef("-l lists the caches of the collection and takes neither -A nor -s")
	case o.CCache != "" && o.Name != "":
		return cli.Usagef("name the cache once: -c %s or %s", o.CCache, o.Name)
	}
	return nil
}

// listRun prints the cache like MIT klist: header, then one entry per ticket, configuration entries hidden; or
// the collection (-l, -A), the status (-s) or a keytab (-k).
func listRun(_ context.Context, o *ListOptions) error {
	if err := checkListFlags(o); err != nil {
		return err
	}
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if o.Keytab {
		return listKeytab(o, loc)
	}
	ccFlag := o.CCache
	if o.Name != "" {
		ccFlag = o.Name
	}
	if o.Collection || o.All {
		return listCollection(o, ccFlag, loc, now())
	}
	name, cc, err := readCCacheName(o.Env, ccFlag, "")
	if o.Status {
		if err != nil || !cacheCurrent(cc, now()) {
			return &statusError{code: cli.ExitFailure, err: err}
		}
		return nil
	}
	if err != nil {
		return err
	}
	return writeList(o.Env.Out, name.String(), cc, o.Flags, o.Etypes, loc)
}

// listCollection is list -l (the caches of the collection, one line each) and list -A (each cache in full). The
// exit status is 0 when at least one cache was listed (with -s -A: when at least one holds valid tickets).
func listCollection(o *ListOptions, ccFlag string, loc *time.Location, now time.Time) error {
	def, err := ticket.ParseCCacheName(ccacheName(ccFlag, o.Env), o.Env.UID)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	names, err := ticket.CCacheCollection(def)
	if err != nil {
		return fmt.Errorf("kclient: while listing ccache collection: %w", err)
	}
	var b strings.Builder
	ok := false
	if o.Collection {
		fmt.Fprintf(&b, "%-30s %s\n", "Principal name", "Cache name")
		fmt.Fprintf(&b, "%-30s %s\n", "--------------", "----------")
	}
	for i, n := range names {
		cc, err := ticket.ReadCCacheFile(n.Path)
		switch {
		case o.Collection:
			if err != nil {
				continue // an empty or unreadable cache file, as klist skips it
			}
			p := cc.DefaultPrincipal.String()
			if len(p) > 30 {
				p = p[:30]
			}
			fmt.Fprintf(&b, "%-30s %s", p, n)
			if !cacheCurrent(cc, now) {
				b.WriteString(" (Expired)")
			}
			b.WriteString("\n")
			ok = true
		case o.Status:
			if err == nil && cacheCurrent(cc, now) {
				ok = true
			}
		default:
			if i > 0 {
				b.WriteString("\n")
			}
			if err != nil {
				fmt.Fprintln(o.Env.ErrOut, errorLine(fmt.Errorf("kclient: %s: %w", n, err)))
				continue
			}
			if err := writeList(&b, n.String(), cc, o.Flags, o.Etypes, loc); err != nil {
				return err
			}
			ok = true
		}
	}
	if _, err := io.WriteString(o.Env.Out, b.String()); err != nil {
		return err
	}
	if !ok {
		return &statusError{code: cli.ExitFailure}
	}
	return nil
}

// cacheCurrent is klist -s's test: a cache holding a ticket-granting ticket of its principal's realm is current
// when that ticket has not expired; a cache without one, when any ticket (configuration entries aside) has not.
func cacheCurrent(cc *ticket.CCache, now time.Time) bool {
	tgs := client.TGSPrincipal(cc.DefaultPrincipal.Realm)
	foundTGT, currentTGT, currentOther := false, false, false
	for _, c := range cc.Credentials {
		switch {
		case c.Server.Equal(tgs):
			foundTGT = true
			currentTGT = currentTGT || c.EndTime.After(now)
		case !c.IsConfig() && c.EndTime.After(now):
			currentOther = true
		}
	}
	if foundTGT {
		return currentTGT
	}
	return currentOther
}

// listKeytab is list -k: the keytab's entries as klist -k prints them.
func listKeytab(o *ListOptions, loc *time.Location) error {
	spec := o.Name
	if spec == "" {
		spec = o.Env.Getenv("KRB5_KTNAME")
	}
	if spec == "" {
		spec = defaultKeytab
	}
	path := keytabPath(spec, "")
	display := spec
	if path == spec {
		display = "FILE:" + spec
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Keytab name: %s\n", display)
	kt, err := client.LoadKeytab(path)
	if err != nil {
		// klist prints the name, then fails when it starts reading.
		_, _ = io.WriteString(o.Env.Out, b.String())
		if errors.Is(err, fs.ErrNotExist) {
			return &userError{msg: fmt.Sprintf("kclient: Key table file '%s' not found while starting keytab scan", path), err: err}
		}
		return &userError{msg: "kclient: " + strings.TrimPrefix(err.Error(), "client: ") + " while starting keytab scan", err: err}
	}
	width := len(listTimeLayout)
	if o.Timestamps {
		fmt.Fprintf(&b, "KVNO %-*s Principal\n", width, "Timestamp")
		fmt.Fprintf(&b, "---- %s %s\n", strings.Repeat("-", width), strings.Repeat("-", 78-width-len("KVNO ")))
	} else {
		fmt.Fprintf(&b, "KVNO Principal\n---- %s\n", strings.Repeat("-", 74))
	}
	for _, e := range kt.Entries {
		p := principal.Name{Components: e.Principal.Components, Realm: e.Principal.Realm}
		fmt.Fprintf(&b, "%4d ", e.KVNO)
		if o.Timestamps {
			fmt.Fprintf(&b, "%s ", e.Timestamp.In(loc).Format(listTimeLayout))
		}
		b.WriteString(p.String())
		if o.Etypes {
			fmt.Fprintf(&b, " (%s) ", klistEnctype(e.Key.KeyType))
		}
		if o.Keys {
			fmt.Fprintf(&b, " (0x%s)", hex.EncodeToString(e.Key.KeyValue))
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(o.Env.Out, b.String())
	return err
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
