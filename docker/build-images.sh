#!/usr/bin/env bash
# docker/build-images.sh [IMAGE...] — builds the kerbkit container images without a registry.
#
#   kerbkit/kdc:dev            FROM scratch: the static kdc binary (runs `kdc dev`), uid 10001
#   kerbkit/kservice:dev       FROM scratch: the static kservice binary, uid 10001
#   kerbkit/mit-krb5:bookworm  Debian bookworm from debootstrap + MIT krb5, curl, Apache with
#                              mod_auth_gssapi (docker import; needs root and debootstrap)
#   kerbkit/client:dev         kerbkit/mit-krb5 plus the static kclient binary
#   kerbkit/etcd:dev           FROM scratch: Debian's etcd (etcd-server) and the libc it links
#
# IMAGE is any of kdc, kservice, mit, client, etcd (default: all; client needs mit; etcd is
# left out of the default, with a note, when the etcd binary is not installed). Binaries are
# built on this machine with CGO_ENABLED=0 (no Go image is needed). Every image is also tagged
# with a hash of its inputs (binaries, Dockerfile, package list, scripts) and not rebuilt while
# that tag exists, so a second run takes seconds; the moving tags above point at the newest.
# Older hash tags beyond the newest $KERBKIT_KEEP_IMAGES (default 3) per image are removed.
#
# stdout gets one NAME=REFERENCE line per image (and bin=DIR for the static binaries), for
# scripts and testenv; progress and a summary go to stderr. Exit status 3 means a prerequisite
# is missing (Docker, Go, root or debootstrap for the MIT image), anything else non-zero a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=${KERBKIT_DOCKER_BUILD:-$here/.build}
keep=${KERBKIT_KEEP_IMAGES:-3}

want=("$@")
etcd_bin=${ETCD_BIN:-$(command -v etcd || true)}
if [ ${#want[@]} -eq 0 ]; then
	want=(kdc kservice mit client)
	if [ -n "$etcd_bin" ]; then
		want+=(etcd)
	else
		echo "build-images.sh: no etcd binary (apt-get install etcd-server): not building kerbkit/etcd" >&2
	fi
fi
for w in "${want[@]}"; do
	case $w in kdc | kservice | mit | client | etcd) ;; *)
		echo "build-images.sh: unknown image $w (want kdc, kservice, mit, client or etcd)" >&2
		exit 2
		;;
	esac
done
wants() { local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
if wants client && ! wants mit; then want+=(mit); fi

log() { echo "build-images.sh: $*" >&2; }
die() { log "$*"; exit 1; }
missing() { log "$*"; exit 3; }

command -v docker >/dev/null || missing "docker not found"
docker info >/dev/null 2>&1 || missing "the Docker engine does not answer (docker info failed)"
command -v go >/dev/null || missing "go not found (the binaries are built on this machine)"
# Without the buildx plugin use the classic builder explicitly: it needs nothing pulled.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

mkdir -p "$build"
# One build at a time per checkout: parallel test runs share the build directory.
if command -v flock >/dev/null; then
	exec 9>"$build/.lock"
	flock -w 1800 9 || die "another build-images.sh holds $build/.lock"
fi

# hashdir DIR: a hash of every path, mode and content under DIR.
hashdir() {
	(cd "$1" && find . -printf '%p %m %y\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) |
		sha256sum | cut -c1-16
}
present() { docker image inspect "$1" >/dev/null 2>&1; }
# dbuild ARGS...: docker build, quiet unless it fails (the classic builder's
# deprecation notice is not news).
dbuild() {
	local out
	if ! out=$(docker build "$@" 2>&1); then
		echo "$out" >&2
		die "docker build $* failed"
	fi
}
size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1/1e6}'; }
summary=()
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

# prune REPO KEEPREF PATTERN: remove hash tags of REPO matching PATTERN beyond the newest $keep.
prune() {
	local n=0 ref
	for ref in $(docker images "$1" --format '{{.Repository}}:{{.Tag}}' | grep -E ":$3\$" || true); do
		[ "$ref" = "$2" ] && continue
		n=$((n + 1))
		[ "$n" -lt "$keep" ] && continue
		docker rmi "$ref" >/dev/null 2>&1 && log "removed old $ref" || true
	done
}

# scratch_image NAME BINARY: kerbkit/NAME from docker/NAME/Dockerfile with the binary.
scratch_image() {
	local name=$1 bin=$2 ctx=$build/ctx-$1 t0 h ref
	t0=$(now)
	rm -rf "$ctx"
	mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/state" "$ctx/out"
	cp "$here/$name/Dockerfile" "$ctx/"
	cp -r "$here/rootfs/." "$ctx/rootfs/"
	cp "$build/bin/$bin" "$ctx/rootfs/usr/local/bin/"
	chmod 0755 "$ctx/rootfs/usr/local/bin/$bin"
	chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
	chmod 1777 "$ctx/rootfs/tmp"
	chmod 0700 "$ctx/state"
	chmod 0755 "$ctx/out"
	h=$(hashdir "$ctx")
	ref=kerbkit/$name:$h
	if present "$ref"; then
		summary+=("kerbkit/$name:dev  $ref  $(size "$ref")  cached ($(took "$t0"))")
	else
		log "building $ref"
		dbuild -t "$ref" "$ctx"
		summary+=("kerbkit/$name:dev  $ref  $(size "$ref")  built ($(took "$t0"))")
	fi
	docker tag "$ref" "kerbkit/$name:dev"
	prune "kerbkit/$name" "$ref" '[0-9a-f]{16}'
	echo "$name=$ref"
}

t0=$(now)
log "building static binaries (CGO_ENABLED=0) into $build/bin"
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$build/bin/" ./cmd/kdc ./cmd/kservice ./cmd/kclient)
summary+=("binaries  $build/bin  ($(took "$t0"))")
echo "bin=$build/bin"

wants kdc && scratch_image kdc kdc
wants kservice && scratch_image kservice kservice

# etcd_image: kerbkit/etcd from Debian's binary and the shared objects it
# links (ldd), at the same paths, so it runs FROM scratch.
etcd_image() {
	local ctx=$build/ctx-etcd t0 h ref lib
	t0=$(now)
	[ -n "$etcd_bin" ] && [ -x "$etcd_bin" ] || missing "kerbkit/etcd needs the etcd binary: apt-get install -y etcd-server"
	rm -rf "$ctx"
	mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/state"
	cp "$here/etcd/Dockerfile" "$ctx/"
	cp -r "$here/rootfs/." "$ctx/rootfs/"
	cp -L "$etcd_bin" "$ctx/rootfs/usr/local/bin/etcd"
	for lib in $(ldd "$etcd_bin" | grep -o '/[^ ]*'); do
		mkdir -p "$ctx/rootfs$(dirname "$lib")"
		cp -L "$lib" "$ctx/rootfs$lib"
	done
	chmod 0755 "$ctx/rootfs/usr/local/bin/etcd"
	chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
	chmod 1777 "$ctx/rootfs/tmp"
	chmod 0700 "$ctx/state"
	h=$(hashdir "$ctx")
	ref=kerbkit/etcd:$h
	if present "$ref"; then
		summary+=("kerbkit/etcd:dev  $ref  $(size "$ref")  cached ($(took "$t0"))")
	else
		log "building $ref"
		dbuild -t "$ref" "$ctx"
		summary+=("kerbkit/etcd:dev  $ref  $(size "$ref")  built ($(took "$t0"))")
	fi
	docker tag "$ref" kerbkit/etcd:dev
	prune kerbkit/etcd "$ref" '[0-9a-f]{16}'
	echo "etcd=$ref"
}
wants etcd && etcd_image

if wants mit; then
	t0=$(now)
	# What `docker import` sets on the root: part of the hash, like the root's recipe.
	changes=(
		'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
		'ENV LANG=C.UTF-8'
		'CMD ["/bin/bash"]'
	)
	h=$( (cat "$here/mit-krb5/mkroot.sh" "$here/mit-krb5/packages"; printf '%s\n' "${changes[@]}") | sha256sum | cut -c1-16)
	mit=kerbkit/mit-krb5:bookworm-$h
	if present "$mit"; then
		summary+=("kerbkit/mit-krb5:bookworm  $mit  $(size "$mit")  cached ($(took "$t0"))")
	else
		tar=$(mktemp "${TMPDIR:-/var/tmp}/kerbkit-mit-root.XXXXXX.tar")
		trap 'rm -f "$tar"' EXIT
		sudo=()
		if [ "$(id -u)" != 0 ]; then
			command -v sudo >/dev/null || missing "the MIT image's root is made with debootstrap, which needs root: run this once as root"
			sudo=(sudo)
			if ! [ -t 0 ] && ! sudo -n true 2>/dev/null; then
				missing "the MIT image's root is made with debootstrap, which needs root: run 'sudo docker/build-images.sh' once"
			fi
		fi
		command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] ||
			missing "debootstrap not found: apt-get install -y debootstrap (it makes the MIT image's Debian root)"
		log "making the Debian bookworm root with debootstrap (about a minute with a warm cache, more without)"
		"${sudo[@]}" env KERBKIT_CACHE="${KERBKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kerbkit}" DEBIAN_MIRROR="${DEBIAN_MIRROR:-}" \
			"$here/mit-krb5/mkroot.sh" "$tar"
		args=()
		for c in "${changes[@]}"; do args+=(--change "$c"); done
		log "docker import $mit"
		"${sudo[@]}" cat "$tar" | docker import "${args[@]}" --message "kerbkit MIT krb5 peer (debootstrap bookworm)" - "$mit" >/dev/null
		"${sudo[@]}" rm -f "$tar"
		summary+=("kerbkit/mit-krb5:bookworm  $mit  $(size "$mit")  built ($(took "$t0"))")
	fi
	docker tag "$mit" kerbkit/mit-krb5:bookworm
	prune kerbkit/mit-krb5 "$mit" 'bookworm-[0-9a-f]{16}'
	echo "mit=$mit"

	if wants client; then
		t0=$(now)
		ctx=$build/ctx-client
		rm -rf "$ctx"
		mkdir -p "$ctx/rootfs/usr/local/bin"
		cp "$here/client/Dockerfile" "$ctx/"
		cp "$build/bin/kclient" "$ctx/rootfs/usr/local/bin/"
		chmod 0755 "$ctx/rootfs/usr/local/bin/kclient"
		echo "$mit" >"$ctx/base"
		h=$(hashdir "$ctx")
		ref=kerbkit/client:$h
		if present "$ref"; then
			summary+=("kerbkit/client:dev  $ref  $(size "$ref")  cached ($(took "$t0"))")
		else
			log "building $ref"
			dbuild --build-arg MIT_IMAGE="$mit" -t "$ref" "$ctx"
			summary+=("kerbkit/client:dev  $ref  $(size "$ref")  built ($(took "$t0"))")
		fi
		docker tag "$ref" kerbkit/client:dev
		prune kerbkit/client "$ref" '[0-9a-f]{16}'
		echo "client=$ref"
	fi
fi

for s in "${summary[@]}"; do log "$s"; done
