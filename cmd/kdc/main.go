// Command kdc is the kerbkit Key Distribution Center: it creates and administers a
// realm's principal database and serves Kerberos over UDP and TCP.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
