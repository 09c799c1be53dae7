// Command kservice is the kerbkit sample Kerberos service: it accepts MIT's GSS
// sample protocol (what gss-client speaks, krb5 or SPNEGO) and, optionally,
// HTTP Negotiate, verifying tickets with a keytab.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }
