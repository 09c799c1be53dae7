// Command kclient is the Kerberos client of the toolkit: login (like kinit), list (like klist) and destroy (like
// kdestroy). The protocol work lives in package client; this is only the command line.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := Main(ctx, os.Args[1:], DefaultEnv())
	stop()
	os.Exit(code)
}
