package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/ticket"
)

// DestroyOptions are the flags of kclient destroy.
type DestroyOptions struct {
	Env *Env

	CCache string // -c
}

// NewCmdDestroy returns "kclient destroy". runF replaces the run function in tests; nil means destroyRun.
func NewCmdDestroy(env *Env, runF func(context.Context, *DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Destroy a credential cache (like kdestroy)",
		Long: `Overwrite the credential cache with zeros and remove it.

A missing cache is reported as "No credentials cache found" with exit status 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return destroyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.CCache, "cache", "c", "", "credential cache (default KRB5CCNAME, then FILE:/tmp/krb5cc_<uid>)")
	return cmd
}

// destroyRun zeroes and removes the cache file.
func destroyRun(_ context.Context, o *DestroyOptions) error {
	path, err := ticket.ResolveCCacheName(ccacheName(o.CCache, o.Env), o.Env.UID)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &userError{msg: "kclient: No credentials cache found while destroying cache", err: err}
	}
	if err != nil {
		return fmt.Errorf("kclient: destroying cache %s: %w", path, err)
	}
	if fi.Mode().IsRegular() {
		if err := zeroFile(path, fi.Size()); err != nil {
			return fmt.Errorf("kclient: destroying cache %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("kclient: destroying cache %s: %w", path, err)
	}
	return nil
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
