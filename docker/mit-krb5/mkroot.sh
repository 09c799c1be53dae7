#!/usr/bin/env bash
# mkroot.sh OUT.tar — the root file system of the MIT krb5 peer image.
#
# Debian bookworm made with debootstrap (variant minbase) plus the packages listed in
# ./packages, written as a tar for `docker import`. No registry and no base image are
# needed: only debootstrap, a Debian mirror ($DEBIAN_MIRROR, default deb.debian.org) and
# root (debootstrap makes device nodes and chroots). The packages are unpacked first and
# configured in a second stage with a policy-rc.d that forbids starting services, so
# apache2 and krb5kdc never start on the building machine. Downloaded .debs are kept in
# $KERBKIT_CACHE/debootstrap (default ~/.cache/kerbkit) so a rebuild downloads nothing.
set -euo pipefail

out=${1:?usage: mkroot.sh OUT.tar}
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${KERBKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kerbkit}/debootstrap
[ "$(id -u)" = 0 ] || { echo "mkroot.sh: debootstrap needs root (run with sudo)" >&2; exit 3; }
export PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap >/dev/null || { echo "mkroot.sh: debootstrap not found (apt-get install -y debootstrap)" >&2; exit 3; }

pkgs=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages" | tr -s '[:space:]' ',' | sed 's/,$//')
mkdir -p "$cache"
root=$(mktemp -d "${TMPDIR:-/var/tmp}/kerbkit-mit-root.XXXXXX")

# Unmount whatever debootstrap left mounted under the root, and only then remove it,
# never crossing into another file system.
cleanup() {
	local m
	for m in $(findmnt -rn -o TARGET | grep -F "$root" | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	if findmnt -rn -o TARGET | grep -qF "$root"; then
		echo "mkroot.sh: $root still has mounts; not removing it" >&2
		return
	fi
	rm -rf --one-file-system "$root"
}
trap cleanup EXIT

echo "mkroot.sh: debootstrap $suite from $mirror with: $pkgs" >&2
debootstrap --variant=minbase --foreign --cache-dir="$cache" --include="$pkgs" "$suite" "$root" "$mirror" >&2
printf '#!/bin/sh\n# no service starts while the image is built\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
chroot "$root" /debootstrap/debootstrap --second-stage >&2
rm -f "$root/usr/sbin/policy-rc.d"

# Slim it down: package lists, caches, docs (copyright files stay), man pages, locales.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/* \
	"$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
# No host identity inside the image.
: >"$root/etc/hostname"
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"

tar --numeric-owner --xattrs -C "$root" -cf "$out" .
echo "mkroot.sh: wrote $out ($(du -h "$out" | cut -f1))" >&2
