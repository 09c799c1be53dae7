package main

// examples are the Example sections of the kdc commands that do not set their own, by command path; cli.Prepare
// sets them, and TestExamples checks that every command has one and that each kdc line in them parses.
var examples = map[string]string{
	"kdc": `# A realm of your own:
kdc init --realm EXAMPLE.COM --db /var/lib/kerbkit/kdc.db
kdc principal add alice --db /var/lib/kerbkit/kdc.db
kdc principal add HTTP/www.example.com --random-key --db /var/lib/kerbkit/kdc.db
kdc keytab HTTP/www.example.com -o http.keytab --db /var/lib/kerbkit/kdc.db
kdc serve --db /var/lib/kerbkit/kdc.db --listen 0.0.0.0:88

# A throwaway realm on loopback, in one command:
kdc dev

# Shell completion (bash; also zsh, fish, powershell):
source <(kdc completion bash)`,

	"kdc init": `kdc init --realm EXAMPLE.COM --db /var/lib/kerbkit/kdc.db
# A realm on etcd (the master key file is created: copy it to every KDC):
kdc init --realm EXAMPLE.COM --db etcd://10.0.0.1:2379,10.0.0.2:2379/kerbkit --master-key realm.mkey
# Shorter tickets than the defaults (24h, renewable for 7d):
kdc init --realm EXAMPLE.COM --max-life 10h --max-renew 2d --db kdc.db`,

	"kdc serve": `kdc serve --db /var/lib/kerbkit/kdc.db --listen 0.0.0.0:88
# One of several replicas on an etcd cluster, with its health report:
kdc serve --db etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/kerbkit --master-key /etc/kerbkit/realm.mkey --listen 0.0.0.0:88 --admin-listen 127.0.0.1:8088
# A free port on loopback, printed on standard error:
kdc serve --db kdc.db --listen 127.0.0.1:0 --log-level debug
# Refer services of hosts in example.net to a trusted realm (kdc trust add OTHER.EXAMPLE):
kdc serve --db kdc.db --listen 0.0.0.0:88 --domain-realm .example.net=OTHER.EXAMPLE`,

	"kdc principal": `kdc principal add alice
kdc principal list
kdc principal show alice`,

	"kdc principal add": `# The password is prompted for (or read as one line of standard input):
kdc principal add alice --db kdc.db
echo 'alice-password' | kdc principal add alice --db kdc.db
# A service, with random keys:
kdc principal add HTTP/www.example.com --random-key --db kdc.db
# Only AES-SHA2 keys, tickets of at most 8 hours:
kdc principal add bob --enctypes aes256-cts-hmac-sha384-192 --max-life 8h --db kdc.db
# With a password and lockout policy (kdc policy list); without one, "default" applies:
kdc principal add carol --policy strict --db kdc.db`,

	"kdc principal list": `kdc principal list --db kdc.db
kdc principal list --db etcd://127.0.0.1:2379/kerbkit --master-key realm.mkey`,

	"kdc dump": `kdc dump --db kdc.db -o realm.dump
kdc dump --db etcd://127.0.0.1:2379/kerbkit --master-key realm.mkey > realm.dump`,

	"kdc load": `# bbolt to etcd (the same master key):
kdc dump --db kdc.db -o realm.dump
kdc load --db etcd://127.0.0.1:2379/kerbkit --master-key kdc.db.mkey realm.dump
# etcd back to a new bbolt file:
cp realm.mkey new.db.mkey
kdc dump --db etcd://127.0.0.1:2379/kerbkit --master-key realm.mkey | kdc load --db new.db -`,

	"kdc principal show": `kdc principal show alice --db kdc.db
kdc principal show HTTP/www.example.com@EXAMPLE.COM --db kdc.db`,

	"kdc principal delete": `kdc principal delete bob --db kdc.db`,

	"kdc principal passwd": `# A new password (prompted for), keeping the old keys for tickets issued before:
kdc principal passwd alice --db kdc.db
# New random keys for a service, then a new keytab:
kdc principal passwd HTTP/www.example.com --random-key --db kdc.db
kdc keytab HTTP/www.example.com -o http.keytab --db kdc.db
# The principal's policy applies (length, classes, history); an administrator may override it:
kdc principal passwd alice --ignore-policy --db kdc.db`,

	"kdc principal disable": `kdc principal disable bob --db kdc.db`,

	"kdc principal enable": `kdc principal enable bob --db kdc.db`,

	"kdc principal purgekeys": `# Drop every old kvno of a service once no ticket needs them:
kdc principal purgekeys HTTP/www.example.com --db kdc.db
# Keep the one before the current:
kdc principal purgekeys HTTP/www.example.com --keep 1 --db kdc.db`,

	"kdc keytab": `kdc keytab HTTP/www.example.com -o http.keytab --db kdc.db
# Several principals in one keytab:
kdc keytab host/server.example.com HTTP/server.example.com -o server.keytab --db kdc.db`,

	"kdc dev": `kdc dev
# Keep the realm between runs:
kdc dev --dir ~/.kerbkit-dev`,

	"kdc check": `kdc check --db /var/lib/kerbkit/kdc.db`,
}
