// Package testenv runs throw-away Kerberos realms and real peer implementations
// for end-to-end interop tests, in the spirit of MIT's src/util/k5test.py. It is
// kerbkit's own interop harness; Go programs that want a realm in their tests
// use the documented package kerbkittest instead.
//
// Three kinds of realm or peer are available:
//
//   - [Realm]: our own KDC (the kdc binary built from ./cmd/kdc), initialised in a
//     temporary directory and served on 127.0.0.1 with an ephemeral port.
//   - [MITRealm]: a real MIT krb5kdc in a temporary directory, for testing our
//     client against an independent KDC.
//   - [Heimdal]: Heimdal's client tools, extracted from Debian's heimdal-clients
//     package (it conflicts with MIT's krb5-user, so it is never installed).
//
// Every client command gets a private environment from [Realm.Env] or
// [MITRealm.Env]: a generated krb5.conf (KRB5_CONFIG), a private credential
// cache (KRB5CCNAME), no replay cache and an MIT trace file (KRB5_TRACE). Commands
// run through [Run], which bounds each one by [CommandTimeout].
//
// Everything listens on 127.0.0.1 only; every process started here is stopped by
// PID in t.Cleanup, SIGTERM first and SIGKILL after a bound. On test failure the
// KDC log and the client trace files are written to the test log.
//
// Missing peer binaries make a test skip with the Debian package to install,
// except when CI=true, where a missing peer is a failure ([RequireTool]).
//
// Docker mode runs the same peers in containers, with real host names on a
// user-defined network: [BuildImages] runs docker/build-images.sh (kerbkit/kdc,
// kerbkit/kservice, kerbkit/mit-krb5, kerbkit/client, tagged by a hash of their
// inputs), [NewDockerNetwork] makes a network with [DockerNetwork.Volume]s and
// [DockerNetwork.Start]s [Container]s on it, driven with [Container.Exec] through
// the docker CLI alone. Names start with [DockerPrefix]; everything is removed in
// t.Cleanup. Without Docker a test skips ([RequireDocker]), with CI=true it fails.
// TestInteropMatrix runs one set of rows natively and in Docker; `go run
// ./testenv/cmd/interop [--docker]` prints them as a table.
package testenv
