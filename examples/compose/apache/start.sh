#!/bin/sh
# Apache httpd with mod_auth_gssapi in the MIT image: its workers run as www-data, so they get
# their own copy of the keytab the KDC wrote (0600, owned by the KDC's uid) before httpd starts.
set -e
mkdir -p /srv/apache/htdocs /srv/apache/logs
install -o www-data -g www-data -m 0400 /etc/kerbkit/apache.keytab /srv/apache/http.keytab
chown www-data:www-data /srv/apache/logs
echo "hello negotiate" >/srv/apache/htdocs/index.txt
exec apache2 -f /srv/apache-conf/httpd.conf -DFOREGROUND
