#!/bin/bash
# The client container of the compose example: log in as alice with MIT kinit, then authenticate
# to the kerbkit sample service and to Apache with mutual authentication. gss-client checks the
# server's AP-REP and MIC ("Signature verified"); kclient request --http checks the AP-REP in the
# server's final Negotiate token (curl does not check it).
set -euo pipefail

# The services start after the KDC is healthy; give them a bounded moment to listen.
wait_tcp() {
	local i
	for i in $(seq 1 150); do
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		sleep 0.2
	done
	echo "client: $1:$2 does not accept connections" >&2
	return 1
}
wait_tcp www.kerbkit.test 4444
wait_tcp www.kerbkit.test 80
wait_tcp apache.kerbkit.test 80

step() { echo; echo "client: \$ $*"; }

step kinit alice
echo "$ALICE_PASSWORD" | kinit alice >/dev/null
klist

step gss-client www.kerbkit.test host@www.kerbkit.test
gss-client -port 4444 www.kerbkit.test host@www.kerbkit.test "hello from client.kerbkit.test" |
	tee /tmp/gss.out
grep -q "Signature verified" /tmp/gss.out

step curl --negotiate http://www.kerbkit.test/
curl -fsS --negotiate -u : http://www.kerbkit.test/

step curl --negotiate http://apache.kerbkit.test/index.txt
curl -fsS --negotiate -u : http://apache.kerbkit.test/index.txt

step kclient request --http http://www.kerbkit.test/
kclient request --http http://www.kerbkit.test/

step kclient request --http http://apache.kerbkit.test/index.txt
kclient request --http http://apache.kerbkit.test/index.txt

step klist
klist
echo
echo "client: alice authenticated to www.kerbkit.test and apache.kerbkit.test, and both proved themselves (mutual authentication)"
