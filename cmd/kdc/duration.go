package main

import (
	"time"

	"github.com/kerbkit/kerbkit/client"
	"github.com/spf13/pflag"
)

// durationValue is a flag that reads durations the way MIT tools and krb5.conf
// write them ("7d", "10h", "1d12h", "3600"), which time.ParseDuration cannot.
type durationValue struct{ d *time.Duration }

var _ pflag.Value = durationValue{}

func (v durationValue) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := client.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (durationValue) Type() string { return "duration" }

// durationFlag registers a duration flag with MIT-style parsing.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(durationValue{p}, name, usage)
}
