package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/internal/cli"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// DestroyOptions are the flags of kclient destroy.
type DestroyOptions struct {
	Env *Env

	CCache    string // -c
	All       bool   // -A: every cache of the collection
	Quiet     bool   // -q
	Principal string // -p: the cache of this principal in the collection
}

// NewCmdDestroy returns "kclient destroy". runF replaces the run function in tests; nil means destroyRun.
func NewCmdDestroy(env *Env, runF func(context.Context, *DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Destroy a credential cache (like kdestroy)",
		Long: `Overwrite the credential cache with zeros and remove it, as kdestroy does.

The cache is -c, else KRB5CCNAME, else FILE:/tmp/krb5cc_<uid>. A cache that is not there is reported ("No
credentials cache found") and is not an error. With -A every cache of the collection goes (all caches of a DIR:
collection; for a FILE: cache, that cache); with -p the cache of that principal in the collection. When other
caches of the collection remain, a line on standard error says so, unless -q. A cache that cannot be removed
is reported with "Ticket cache NOT destroyed!" (with the terminal bell unless -q) and exit status 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return destroyRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	f.BoolVarP(&opts.All, "all", "A", false, "destroy every credential cache of the collection")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no bell on failure, no note about other caches")
	f.StringVarP(&opts.Principal, "principal", "p", "", "destroy the cache of this principal in the collection")
	return cmd
}

// destroyRun zeroes and removes the cache file (or, with -A, every cache of the collection).
func destroyRun(_ context.Context, o *DestroyOptions) error {
	if o.All && o.Principal != "" {
		return cli.Usagef("-A option is exclusive with -p option")
	}
	def, err := ticket.ParseCCacheName(ccacheName(o.CCache, o.Env), o.Env.UID)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	if o.All {
		names, err := ticket.CCacheCollection(def)
		if err != nil {
			return fmt.Errorf("kclient: while listing credential caches: %w", err)
		}
		// Like kdestroy -A, a cache that cannot be removed is reported and the others still go.
		for _, n := range names {
			if err := destroyCache(n.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(o.Env.ErrOut, errorLine(fmt.Errorf("kclient: %w while destroying cache %s", err, n)))
			}
		}
		return nil
	}
	target := def
	if o.Principal != "" {
		if target, err = cacheOf(o.Env, def, o.Principal); err != nil {
			return err
		}
	}
	if err := destroyCache(target.Path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &statusError{code: cli.ExitOK, msg: "kclient: No credentials cache found while destroying cache", err: err}
		}
		fmt.Fprintln(o.Env.ErrOut, errorLine(fmt.Errorf("kclient: %w while destroying cache", err)))
		if o.Quiet {
			fmt.Fprintln(o.Env.ErrOut, "Ticket cache NOT destroyed!")
		} else {
			fmt.Fprintln(o.Env.ErrOut, "Ticket cache \aNOT\a destroyed!")
		}
		return &statusError{code: cli.ExitFailure, err: err}
	}
	if !o.Quiet && o.Principal == "" {
		if rest, err := ticket.CCacheCollection(def); err == nil && len(rest) > 0 {
			fmt.Fprintln(o.Env.ErrOut, "Other credential caches present, use -A to destroy all")
		}
	}
	return nil
}

// cacheOf finds the cache of a principal in the collection of def (kdestroy -p, kinit into a collection).
func cacheOf(env *Env, def ticket.CCacheName, name string) (ticket.CCacheName, error) {
	cfg, err := loadConfig(env)
	if err != nil {
		return ticket.CCacheName{}, err
	}
	p, err := client.ParsePrincipal(name, cfg.Realm)
	if err != nil {
		return ticket.CCacheName{}, fmt.Errorf("kclient: %w while parsing principal name %s", err, name)
	}
	if n, ok := findInCollection(def, p); ok {
		return n, nil
	}
	// kdestroy's words, with the name as given.
	return ticket.CCacheName{}, &userError{msg: fmt.Sprintf("kclient: Matching credential not found while finding cache for %s", name)}
}

// findInCollection returns the first cache of def's collection whose default principal is p.
func findInCollection(def ticket.CCacheName, p principal.Name) (ticket.CCacheName, bool) {
	names, err := ticket.CCacheCollection(def)
	if err != nil {
		return ticket.CCacheName{}, false
	}
	for _, n := range names {
		if cc, err := ticket.ReadCCacheFile(n.Path); err == nil && cc.DefaultPrincipal.Equal(p) {
			return n, true
		}
	}
	return ticket.CCacheName{}, false
}

// destroyCache zeroes and removes one cache file; a missing file is fs.ErrNotExist.
func destroyCache(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		if err := zeroFile(path, fi.Size()); err != nil {
			return err
		}
	}
	return os.Remove(path)
}

// zeroFile overwrites the first size bytes of the file with zeros and syncs, so the session keys do not
// linger on disk after removal (as kdestroy does).
func zeroFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	zeros := make([]byte, 4096)
	for left := size; left > 0; {
		n := int64(len(zeros))
		if left < n {
			n = left
		}
		if _, err := f.Write(zeros[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
