// Package kerbkittest starts throw-away Kerberos realms for Go tests, in the
// process of the test: kerbkit's KDC on 127.0.0.1 with a port of its own, a
// fresh database, and a generated krb5.conf, all in a temporary directory.
//
//	func TestLogin(t *testing.T) {
//		t.Parallel() // realms never share a port or a file
//		realm := kerbkittest.New(t, kerbkittest.Options{})
//		realm.AddUser("alice", "alice-password")
//		keytab := realm.AddService("HTTP/localhost") // a keytab for the service under test
//		ccache := realm.Login("alice")               // a credential cache holding alice's TGT
//
//		// Point the code under test at the realm explicitly:
//		//   realm.Krb5Conf                the krb5.conf path (realm.Krb5ConfText() for its text)
//		//   realm.KDCAddr                 127.0.0.1:PORT, UDP and TCP
//		//   realm.GoKRB5Config()          the same file parsed by gokrb5
//		//   realm.GoKRB5Client("alice")   a logged-in gokrb5 client
//		//   realm.Environ(ccache)         KRB5_CONFIG and KRB5CCNAME for a child process (kinit, curl, ...)
//		_, _ = keytab, ccache
//	}
//
// What a realm gives:
//
//   - Typed fields and methods instead of environment variables: [Realm.Name],
//     [Realm.KDCAddr], [Realm.Krb5Conf], [Realm.AddUser], [Realm.AddService]
//     (returns a keytab path), [Realm.Login] (returns a credential cache path),
//     [Realm.GoKRB5Config] and [Realm.GoKRB5Client] for gokrb5,
//     [Realm.ClientConfig] for kerbkit's own client package, [Realm.Admin] for
//     everything else (disable a principal, change its keys).
//   - No fixed ports and no shared files: every realm binds 127.0.0.1:0 and
//     keeps its files in its own directory, so tests may run in parallel with
//     dozens of realms at once. Nothing in the test process's environment is
//     changed; [Realm.Environ] builds the environment of a child process.
//   - An adjustable krb5.conf: [Options.Libdefaults] and
//     [Options.RealmSettings], or [Realm.AddLibdefaults] and
//     [Realm.AddRealmSettings] later.
//   - An injectable clock ([Clock]): move the KDC ten minutes ahead to test
//     expiry and renewal without sleeping.
//   - Cleanup by t.Cleanup, and the KDC's log (one line per request) in the
//     test log when the test fails.
//
// A realm runs real Kerberos over real sockets, so MIT's tools (kinit, klist,
// kvno), gokrb5, Java and curl work against it as against any KDC. [Start]
// makes a realm without a testing.TB, for TestMain or an Example.
package kerbkittest
