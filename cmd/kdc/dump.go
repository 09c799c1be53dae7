package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kerbkit/kerbkit/store"
	"github.com/spf13/cobra"
)

func newDumpCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "dump [--db FILE|etcd://...] [-o FILE]",
		Short: "Write the realm as JSON lines (keys stay sealed under the master key): a backup, or to move it",
		Long: `dump writes the whole realm, one JSON object per line: a header with the realm and its
meta values, then every stored record exactly as stored, its long-term keys still sealed
under the master key. kdc load makes a new database from it, bbolt or etcd; dumps of the
same content are byte-identical whichever backend they come from. A dump is useless
without the master key file, which it does not contain: keep both, apart.
A bbolt database that kdc serve holds cannot be dumped while it runs; an etcd one can.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := e.openDB(cmd.Context(), nil, true)
			if err != nil {
				if errors.Is(err, store.ErrInUse) {
					return fmt.Errorf("kdc: %w; stop kdc serve, or copy the file and dump the copy", err)
				}
				return err
			}
			defer db.Close()
			var w io.Writer = e.stdout
			var f *os.File
			if out != "" && out != "-" {
				if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
					return fmt.Errorf("kdc: dump: %w", err)
				}
				w = f
			}
			if err := store.Dump(cmd.Context(), db, w); err != nil {
				if f != nil {
					f.Close()
					os.Remove(out)
				}
				return err
			}
			if f != nil {
				if err := f.Close(); err != nil {
					return fmt.Errorf("kdc: dump: %w", err)
				}
				fmt.Fprintf(e.stderr, "kdc: dumped %s to %s\n", db.Location(), out)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write to FILE (created, mode 0600) instead of standard output")
	_ = c.MarkFlagFilename("output")
	return c
}

func newLoadCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "load [--db FILE|etcd://...] [--master-key FILE] [DUMP|-]",
		Short: "Make a new database (bbolt or etcd) from a kdc dump",
		Long: `load creates the database named by --db from a dump (a file, or standard input): a bbolt
file that must not exist, or an etcd prefix that must be empty. The master key must be the
one the dump is sealed under: for bbolt the file FILE.mkey beside the database (copy it
there), for etcd --master-key. Every record is checked to open under it before it is
written; on any failure nothing is left behind.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := e.openOptions(nil)
			if err != nil {
				return err
			}
			var r io.Reader = e.stdin
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("kdc: load: %w", err)
				}
				defer f.Close()
				r = f
			}
			n, err := store.Load(cmd.Context(), e.db, opts, r)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "loaded %d records into %s\n", n, e.db)
			return nil
		},
	}
}
