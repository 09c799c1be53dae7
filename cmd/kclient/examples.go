package main

// examples are the Example sections of the kclient commands, by command path; cli.Prepare sets them, and
// TestExamples checks that every command has one and that each kclient line in them parses.
var examples = map[string]string{
	"kclient": `# Log in, look at the tickets, get a service ticket, log out:
kclient login alice@EXAMPLE.COM
kclient list -f -e
kclient ticket HTTP/www.example.com
kclient destroy

# Shell completion (bash; also zsh, fish, powershell):
source <(kclient completion bash)`,

	"kclient login": `# Password from the terminal (or one line of standard input):
kclient login alice@EXAMPLE.COM
# No krb5.conf needed:
kclient login alice --realm EXAMPLE.COM --kdc kdc.example.com:88
# A service logs in with its keytab:
kclient login -k -t /etc/krb5.keytab HTTP/www.example.com
# Ten hours, renewable for a week, forwardable and proxiable:
kclient login -l 10h -r 7d -f -p alice
# Not forwardable even when krb5.conf says forwardable = true; say what is used:
kclient login -F -V alice
# A ticket that starts in an hour, validated once it has started:
kclient login -s 1h alice
kclient login -v
# Renew the ticket in the cache:
kclient login -R
# An initial ticket for a service other than krbtgt (kinit -S):
kclient login -S kadmin/changepw alice
# Into a cache of its own, or a DIR: collection:
kclient login -c FILE:/tmp/alice.cc alice
KRB5CCNAME=DIR:/run/user/1000/krb5cc kclient login bob`,

	"kclient passwd": `# Change your password (current, then new twice, without echo):
kclient passwd alice@EXAMPLE.COM
# From a script: three lines (current, new, new) in a file of mode 0600:
kclient passwd alice --password-file /run/secrets/alice-passwords
# No krb5.conf needed:
kclient passwd alice --realm EXAMPLE.COM --kdc kdc.example.com:88 --kpasswd-server kdc.example.com:464`,

	"kclient list": `# The default cache, with flags and enctypes (klist -f -e):
kclient list -f -e
# Another cache:
kclient list FILE:/tmp/alice.cc
# In a script: are there valid tickets?
kclient list -s || kclient login alice
# The caches of a DIR: collection, or all of them in full:
kclient list -l
kclient list -A
# A keytab, with timestamps and enctypes (klist -k -t -e):
kclient list -k -t -e /etc/krb5.keytab`,

	"kclient ticket": `# Service tickets, like kvno:
kclient ticket host/server.example.com HTTP/www.example.com
# Check that a keytab opens the ticket, as the service will:
kclient ticket -k /etc/krb5.keytab host/server.example.com
# host/<each host>, in the realm [domain_realm] gives it:
kclient ticket -S host server1.example.com server2.example.com
# An AES-128 session key:
kclient ticket -e aes128-cts-hmac-sha1-96 host/server.example.com`,

	"kclient destroy": `kclient destroy
# One cache of the collection, quietly:
kclient destroy -q -c FILE:/tmp/alice.cc
# Every cache of the collection:
kclient destroy -A`,

	"kclient renew": `kclient login -r 7d alice
kclient renew
kclient renew -c FILE:/tmp/alice.cc`,

	"kclient request": `# MIT's GSS sample protocol (gss-server, kservice), with mutual authentication:
kclient request host/localhost --addr 127.0.0.1:4444
kclient request host@localhost --addr 127.0.0.1:4444 --spnego
# HTTP Negotiate; the server must prove itself in its final token:
kclient request --http http://localhost:8080/
# Show every message of the exchange:
kclient request --explain host/localhost --addr 127.0.0.1:4444`,

	"kclient walkthrough": `kclient walkthrough
kclient walkthrough --step
kclient walkthrough --html kerberos.html
kclient walkthrough --json`,
}
