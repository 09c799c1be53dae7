#!/usr/bin/env bash
# etcd-vs-bbolt.sh: per-replica AS and TGS throughput of kdc serve on bbolt and on a three-member etcd cluster,
# side by side on this machine (issue 13).
#
# Builds ./cmd/kdc and kdcload (../shared/tools/kdcload, or $KDCLOAD_DIR), starts a three-member etcd cluster
# (Debian's etcd-server) and two KDCs with the same principals: one on a bbolt file, one on the etcd cluster. Both
# KDCs are pinned to CPU 0, kdcload to CPU 1; each cell is measured while the other KDC is stopped (SIGSTOP),
# alternating per run. Prints one RESULT-derived line per cell with the median rps of the runs.
#
#   scripts/etcd-vs-bbolt.sh                          # 3 runs x 5 s per cell, AS and TGS over UDP, 8 workers
#   RUNS=5 DUR=10s MODES=as CONC=4 scripts/etcd-vs-bbolt.sh
#
# Everything listens on 127.0.0.1; every process it starts is stopped by PID on exit.
set -u
RUNS=${RUNS:-3}; DUR=${DUR:-5s}; CONC=${CONC:-8}; MODES=${MODES:-"as tgs"}; PROTO=${PROTO:-udp}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KDCLOAD_DIR=${KDCLOAD_DIR:-}
for d in "$KDCLOAD_DIR" "$ROOT/../shared/tools/kdcload" "$ROOT/../../shared/tools/kdcload"; do
  [ -n "$d" ] && [ -f "$d/main.go" ] && { KDCLOAD_DIR=$d; break; }
done
T=$(mktemp -d /tmp/etcd-vs-bbolt.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; sleep 0.3; rm -rf "$T"; }
trap cleanup EXIT
die() { echo "etcd-vs-bbolt: $*" >&2; exit 1; }
for t in etcd taskset go python3; do command -v $t >/dev/null || die "needs $t (apt-get install -y etcd-server util-linux)"; done
[ -f "$KDCLOAD_DIR/main.go" ] || die "kdcload not found (set KDCLOAD_DIR)"
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

(cd "$ROOT" && go build -o "$T/bin/" ./cmd/kdc) >"$T/build.log" 2>&1 || die "kdc does not build: $(head -c 300 "$T/build.log")"
(cd "$KDCLOAD_DIR" && go build -o "$T/bin/kdcload" .) >>"$T/build.log" 2>&1 || die "kdcload does not build"
KDC=$T/bin/kdc

# Three etcd members on CPU 1 (idle while logins run: the request path reads memory).
CL=(); EP=(); INITIAL=""
for i in 0 1 2; do CL[$i]=$(freeport); PP=$(freeport); INITIAL="$INITIAL,m$i=http://127.0.0.1:$PP"; PEER[$i]=$PP; EP+=("127.0.0.1:${CL[$i]}"); done
INITIAL=${INITIAL#,}
for i in 0 1 2; do
  setsid taskset -c 1 etcd --name m$i --data-dir "$T/etcd$i" --listen-client-urls http://127.0.0.1:${CL[$i]} \
    --advertise-client-urls http://127.0.0.1:${CL[$i]} --listen-peer-urls http://127.0.0.1:${PEER[$i]} \
    --initial-advertise-peer-urls http://127.0.0.1:${PEER[$i]} --initial-cluster "$INITIAL" \
    --initial-cluster-state new --logger zap --log-level error >"$T/etcd$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 0 1 2; do waitport ${CL[$i]} || die "etcd m$i did not listen"; done
URL="etcd://$(IFS=,; echo "${EP[*]}")/bench"

setup() { # $1 = --db value, then extra flags
  local db=$1; shift
  for _ in $(seq 1 50); do "$KDC" init --realm BENCH.TEST --db "$db" "$@" >/dev/null 2>&1 && break; sleep 0.2; done
  echo 'Bench-user1-pw' | "$KDC" principal add user1 --db "$db" "$@" >/dev/null || die "principal add on $db failed"
  "$KDC" principal add host/bench.test --random-key --db "$db" "$@" >/dev/null || die "service add on $db failed"
}
setup "$T/bolt.db"
setup "$URL" --master-key "$T/etcd.mkey"
BP=$(freeport); EPORT=$(freeport)
setsid taskset -c 0 "$KDC" serve --db "$T/bolt.db" --listen 127.0.0.1:$BP --kpasswd-listen none --log-level error >"$T/bolt-kdc.log" 2>&1 &
BPID=$!; PIDS+=($BPID)
setsid taskset -c 0 "$KDC" serve --db "$URL" --master-key "$T/etcd.mkey" --listen 127.0.0.1:$EPORT --kpasswd-listen none --log-level error >"$T/etcd-kdc.log" 2>&1 &
EPID=$!; PIDS+=($EPID)
waitport $BP || die "bbolt KDC did not listen: $(tail -3 "$T/bolt-kdc.log")"
waitport $EPORT || die "etcd KDC did not listen: $(tail -3 "$T/etcd-kdc.log")"

run() { # $1 label $2 port $3 mode
  taskset -c 1 "$T/bin/kdcload" --kdc 127.0.0.1:$2 --realm BENCH.TEST --user user1 --password 'Bench-user1-pw' \
    --service host/bench.test --mode "$3" --proto "$PROTO" --concurrency "$CONC" --duration "$DUR" --warmup 1s \
    --label "$1" 2>&1 | grep '^RESULT'
}
rps() { sed -n 's/.* rps=\([0-9.]*\).*/\1/p'; }
med() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
for mode in $MODES; do
  : >"$T/b.$mode"; : >"$T/e.$mode"
  for r in $(seq 1 "$RUNS"); do
    kill -STOP $EPID; kill -CONT $BPID; run bbolt $BP $mode | tee -a "$T/raw" | rps >>"$T/b.$mode"
    kill -STOP $BPID; kill -CONT $EPID; run etcd $EPORT $mode | tee -a "$T/raw" | rps >>"$T/e.$mode"
  done
  kill -CONT $BPID
  b=$(med <"$T/b.$mode"); e=$(med <"$T/e.$mode")
  echo "$mode/$PROTO conc=$CONC runs=$RUNS x $DUR: bbolt ${b} rps, etcd ${e} rps, etcd/bbolt $(python3 -c "print(f'{$e/$b:.2f}' if $b else 'n/a')")"
done
[ -n "${VERBOSE:-}" ] && cat "$T/raw"
exit 0
