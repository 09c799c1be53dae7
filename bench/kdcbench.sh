#!/usr/bin/env bash
# kdcbench.sh — what one Kerberos exchange costs our KDC, and how it compares
# with MIT krb5kdc on this machine.
#
#   bench/kdcbench.sh                 # in-process benchmarks, then ours vs MIT over loopback
#   INPROC=0 bench/kdcbench.sh        # only the loopback comparison
#   LOOP=0 bench/kdcbench.sh          # only the in-process benchmarks
#   RUNS=3 DUR=10s CONC=8 MODES="as tgs" PROTOS="udp tcp" MIT_MODE=nols bench/kdcbench.sh
#   HALF=0 bench/kdcbench.sh          # without the latency pass at half the saturated rate
#   RT=1 bench/kdcbench.sh            # both KDCs and the load at SCHED_FIFO priority (root): on a machine
#                                     # busy with other work, figures of the code rather than of the scheduler
#   PRINCIPALS=100000 bench/kdcbench.sh   # our realm holds that many more principals (bench/fill), and the
#                                     # memory section adds a sweep that makes every one of them ask for a ticket
#   TW_REUSE_MS=1 bench/kdcbench.sh   # (root) for the run, this host reuses its own TIME_WAIT ports after 1 ms
#                                     # instead of 1 s (net.ipv4.tcp_tw_reuse_delay, Linux 6.14+); see load_cpu
#
# In process: `go test -bench` on kdc/ (µs and allocations per AS and TGS
# exchange, with -cpu 1,2 for the parallel ones).
# Loopback: our `kdc serve` and, if installed, MIT's krb5kdc, each with a fresh
# realm, one user and host/localhost, each pinned to CPU 0 while bench/loadgen
# runs on CPU 1; the KDC not being measured is paused (SIGSTOP). For each cell
# it prints the median rate of RUNS runs, the KDC's CPU time per request, and
# the ratio ours/MIT; then our KDC's memory (its resident set, and the process's
# own anonymous part) at start and at its peak under the load. MIT_MODE=nols
# (default) sets disable_last_success, MIT's fastest setting; MIT_MODE=default
# measures MIT as shipped, which writes its database on every login. Everything
# listens on 127.0.0.1; every process started is stopped by PID at exit.
set -u
RUNS=${RUNS:-3}; DUR=${DUR:-10s}; CONC=${CONC:-8}
MODES=${MODES:-"as tgs"}; PROTOS=${PROTOS:-"udp tcp"}; MIT_MODE=${MIT_MODE:-nols}
INPROC=${INPROC:-1}; LOOP=${LOOP:-1}; RT=${RT:-0}; HALF=${HALF:-1}; PRINCIPALS=${PRINCIPALS:-0}
TW_REUSE_MS=${TW_REUSE_MS:-}
TW_SYSCTL=/proc/sys/net/ipv4/tcp_tw_reuse_delay

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d /tmp/kdcbench.XXXXXX)
STARTED=()
finish() {
	for pid in "${STARTED[@]:-}"; do
		[ -n "$pid" ] || continue
		kill -CONT "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null
	done
	sleep 0.2
	[ -n "${TW_SAVED:-}" ] && echo "$TW_SAVED" >"$TW_SYSCTL"
	rm -rf "$WORK"
}
trap finish EXIT
fail() { echo "kdcbench: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

if [ "$INPROC" = 1 ]; then
	echo "== in process (go test -bench ./kdc/): median of 5"
	go test -run '^$' -bench '^Benchmark(ASPreauth|PreauthRequired|TGS)$' -benchmem -count 5 ./kdc/ >"$WORK/inproc.txt" 2>&1 ||
		fail "benchmarks failed: $(tail -5 "$WORK/inproc.txt")"
	# GOGC=400: about the target kdc serve's tuner keeps (the live heap plus 8 MB, over the 2-3 MB live heap of
	# a benchmark); under the default the collector runs so often on two cores that it, not the KDC, sets the pace.
	GOGC=400 go test -run '^$' -bench '^Benchmark(ASPreauth|TGS)Parallel$' -benchmem -count 5 -cpu 1,2 ./kdc/ >>"$WORK/inproc.txt" 2>&1 ||
		fail "parallel benchmarks failed: $(tail -5 "$WORK/inproc.txt")"
	awk '/^Benchmark/ {
			name = $1; ns[name] = ns[name] " " $3
			for (i = 4; i <= NF; i++) if ($(i+1) == "allocs/op") allocs[name] = $i
		}
		END {
			for (n in ns) {
				c = split(substr(ns[n], 2), v, " ")
				for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
				printf "%-34s %10.1f %10s\n", n, v[int((c + 1) / 2)] / 1000, allocs[n]
			}
		}' "$WORK/inproc.txt" | sort >"$WORK/inproc.table"
	printf '%-34s %10s %10s\n' benchmark µs/op allocs/op
	cat "$WORK/inproc.table"
	echo
fi
[ "$LOOP" = 1 ] || exit 0

have taskset || fail "needs taskset (util-linux)"
# Over TCP the KDC lets the client close first (DESIGN.md), so the client holds TIME_WAIT: one host opening
# 10k+ connections a second to one port then spends most of connect(2) looking for a port whose TIME_WAIT is
# older than tcp_tw_reuse_delay (1 s), and the generator, not the KDC, is the limit (load_cpu near 1.00).
# Many real clients on many hosts do not have that problem; TW_REUSE_MS models them.
if [ -n "$TW_REUSE_MS" ]; then
	case "$TW_REUSE_MS" in *[!0-9]*) fail "TW_REUSE_MS=$TW_REUSE_MS: want a number of milliseconds" ;; esac
	[ -w "$TW_SYSCTL" ] || fail "TW_REUSE_MS needs root and a kernel with net.ipv4.tcp_tw_reuse_delay (Linux 6.14+)"
	TW_SAVED=$(cat "$TW_SYSCTL")
	echo "$TW_REUSE_MS" 2>/dev/null >"$TW_SYSCTL" || fail "cannot set net.ipv4.tcp_tw_reuse_delay to $TW_REUSE_MS"
	echo "(net.ipv4.tcp_tw_reuse_delay = $TW_REUSE_MS ms for this run; $TW_SAVED ms restored at exit)"
fi
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs: the KDC on CPU 0, the load on CPU 1"
go build -o "$WORK/" ./cmd/kdc ./bench/loadgen ./bench/fill >"$WORK/build.log" 2>&1 || fail "build: $(head -c 400 "$WORK/build.log")"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listening() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# mem PID -> "RSS_KB ANON_KB"
mem() { awk '/^Rss:/ {r = $2} /^Anonymous:/ {a = $2} END {print r + 0, a + 0}' "/proc/$1/smaps_rollup" 2>/dev/null; }
# peakmem PID FILE: until killed, keep in FILE the largest RSS of PID seen (and its anonymous part), every 0.1 s.
peakmem() {
	local peak=0 r a
	while sleep 0.1; do
		read -r r a < <(mem "$1") || continue
		if [ "${r:-0}" -gt "$peak" ]; then peak=$r; echo "$r $a" >"$2"; fi
	done
}
mb() { awk -v r="$1" -v a="$2" 'BEGIN {printf "%5.1f MB (own %5.1f MB)", r / 1024, a / 1024}'; }
# pin PID: every thread of PID on CPU 0, at SCHED_FIFO with RT=1.
pin() {
	taskset -acp 0 "$1" >/dev/null
	if [ "$RT" = 1 ]; then
		for t in /proc/"$1"/task/*; do chrt -f -p 10 "${t##*/}" >/dev/null || fail "chrt (RT=1 needs root)"; done
	fi
}
RUNLOAD=(taskset -c 1)
[ "$RT" = 1 ] && RUNLOAD=(chrt -f 10 taskset -c 1)

# Ours.
OURS_PORT=$(freeport)
KDC="$WORK/kdc"
"$KDC" init --realm OURS.BENCH --db "$WORK/ours.db" >/dev/null || fail "kdc init"
echo 'bench-alice-pw' | "$KDC" principal add alice --db "$WORK/ours.db" >/dev/null || fail "kdc principal add"
"$KDC" principal add host/localhost --random-key --db "$WORK/ours.db" >/dev/null || fail "kdc principal add"
if [ "$PRINCIPALS" -gt 0 ]; then
	"$WORK/fill" --db "$WORK/ours.db" --count "$PRINCIPALS" --prefix filler >"$WORK/fill.log" 2>&1 || fail "$(cat "$WORK/fill.log")"
fi
setsid "$KDC" serve --db "$WORK/ours.db" --listen "127.0.0.1:$OURS_PORT" >"$WORK/ours.log" 2>&1 &
OURS=$!; STARTED+=("$OURS")
listening "$OURS_PORT" || fail "our KDC did not start: $(tail -3 "$WORK/ours.log")"
pin "$OURS"
sleep 1
read -r START_RSS START_ANON < <(mem "$OURS")

# MIT, if installed.
MIT=""
if have krb5kdc && have kdb5_util && have kadmin.local; then
	MIT_PORT=$(freeport); M="$WORK/mit"; mkdir -p "$M"
	nols=false; [ "$MIT_MODE" = nols ] && nols=true
	cat >"$M/kdc.conf" <<-EOF
	[kdcdefaults]
	  kdc_listen = 127.0.0.1:$MIT_PORT
	  kdc_tcp_listen = 127.0.0.1:$MIT_PORT
	[realms]
	  MIT.BENCH = {
	    database_name = $M/principal
	    key_stash_file = $M/stash
	    acl_file = $M/kadm5.acl
	    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	    default_principal_flags = +preauth
	  }
	[dbmodules]
	  MIT.BENCH = {
	    disable_last_success = $nols
	    disable_lockout = $nols
	  }
	[logging]
	  kdc = FILE:$M/kdc.log
	EOF
	: >"$M/kadm5.acl"
	printf '[libdefaults]\n  default_realm = MIT.BENCH\n[realms]\n  MIT.BENCH = {\n    kdc = 127.0.0.1:%s\n  }\n' "$MIT_PORT" >"$M/krb5.conf"
	export KRB5_KDC_PROFILE="$M/kdc.conf" KRB5_CONFIG="$M/krb5.conf"
	kdb5_util create -s -r MIT.BENCH -P "bench-master-$$" >/dev/null 2>&1 || fail "kdb5_util create"
	kadmin.local -r MIT.BENCH -q "addprinc -pw bench-bob-pw bob" >/dev/null 2>&1
	kadmin.local -r MIT.BENCH -q "addprinc -randkey host/localhost" >/dev/null 2>&1
	setsid krb5kdc -n -r MIT.BENCH >"$M/out" 2>&1 &
	MIT=$!; STARTED+=("$MIT")
	unset KRB5_KDC_PROFILE KRB5_CONFIG
	listening "$MIT_PORT" || fail "krb5kdc did not start: $(cat "$M/out")"
	pin "$MIT"
else
	echo "(MIT krb5kdc not installed: our figures only; apt-get install krb5-kdc krb5-admin-server)"
fi

# measure PID ADDR REALM USER PASSWORD MODE PROTO -> "rps p99_us cpu_us_per_request errors client_cpu"
measure() {
	local pid=$1 t0 t1 line
	t0=$(ticks "$pid")
	line=$("${RUNLOAD[@]}" "$WORK/loadgen" --kdc "$2" --realm "$3" --user "$4" --password "$5" --mode "$6" --proto "$7" \
		--conc "$CONC" --duration "$DUR" --warmup 1s 2>>"$WORK/load.err" | grep '^RESULT')
	t1=$(ticks "$pid")
	if [ -z "$line" ]; then
		echo "kdcbench: load on $2 ($6/$7) failed: $(tail -1 "$WORK/load.err")" >&2
		echo "0 0 0 1 0"
		return
	fi
	echo "$line" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		# CPU per request over the whole run, warm-up included
		n = f["ok"] * (f["dur_s"] + 1) / f["dur_s"]
		printf "%s %s %.0f %s %s\n", f["rps"], f["p99_us"], (n > 0 ? dt / hz * 1e6 / n : 0), f["errors"], f["client_cpu"] }'
}
# halfload ADDR REALM USER PASSWORD MODE PROTO RATE -> the RESULT line of a paced run
halfload() {
	"${RUNLOAD[@]}" "$WORK/loadgen" --kdc "$1" --realm "$2" --user "$3" --password "$4" --mode "$5" --proto "$6" \
		--conc "$CONC" --duration "$DUR" --warmup 1s --rate "$7" 2>>"$WORK/load.err" | grep '^RESULT'
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

echo "== loopback, KDC on CPU 0, load on CPU 1, concurrency $CONC, median of $RUNS x $DUR (MIT: $MIT_MODE, RT=$RT)"
printf '%-8s %10s %10s %7s %12s %12s %9s %9s %9s\n' cell ours/s mit/s ratio ours_us/req mit_us/req ours_p99 load_cpu errors
summary=""; limited=""
peakmem "$OURS" "$WORK/peak" &
PEAKER=$!; STARTED+=("$PEAKER")
for mode in $MODES; do
	for proto in $PROTOS; do
		: >"$WORK/o"; : >"$WORK/m"
		for _ in $(seq 1 "$RUNS"); do
			[ -n "$MIT" ] && kill -STOP "$MIT"
			measure "$OURS" "127.0.0.1:$OURS_PORT" OURS.BENCH alice bench-alice-pw "$mode" "$proto" >>"$WORK/o"
			[ -n "$MIT" ] && kill -CONT "$MIT"
			if [ -n "$MIT" ]; then
				kill -STOP "$OURS"
				measure "$MIT" "127.0.0.1:$MIT_PORT" MIT.BENCH bob bench-bob-pw "$mode" "$proto" >>"$WORK/m"
				kill -CONT "$OURS"
			fi
		done
		o=$(cut -d' ' -f1 "$WORK/o" | median); ou=$(cut -d' ' -f3 "$WORK/o" | median); op=$(cut -d' ' -f2 "$WORK/o" | median)
		oe=$(awk '{s += $4} END {print s + 0}' "$WORK/o"); oc=$(cut -d' ' -f5 "$WORK/o" | median)
		m=-; mu=-; ratio=-
		if [ -n "$MIT" ]; then
			m=$(cut -d' ' -f1 "$WORK/m" | median); mu=$(cut -d' ' -f3 "$WORK/m" | median)
			ratio=$(awk -v a="$o" -v b="$m" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
			summary="$summary $mode/$proto=$ratio"
		fi
		printf '%-8s %10.0f %10s %7s %12s %12s %9s %9s %9s\n' "$mode/$proto" "$o" "$m" "$ratio" "$ou" "$mu" "$op" "$oc" "$oe"
		if awk -v c="$oc" 'BEGIN {exit !(c >= 0.9)}'; then
			limited="$limited $mode/$proto"
		fi
		echo "$mode $proto $o ${m/-/0}" >>"$WORK/saturated"
	done
done
[ -n "$summary" ] && echo "ratio ours/MIT ($MIT_MODE):$summary"
if [ -n "$limited" ]; then
	echo "load_cpu >= 0.90 in$limited: the load generator, not our KDC, was the limit there (ours_us/req is then"
	echo "  inflated by the KDC's idle time); over TCP, TW_REUSE_MS=1 (root) lifts the generator's TIME_WAIT limit (README)"
fi
kill "$PEAKER" 2>/dev/null; wait "$PEAKER" 2>/dev/null

# Our KDC's memory: the resident set, and the process's own (anonymous) part of it; the rest is the executable's
# pages and, with many principals, the database file's, page cache the kernel can take back.
echo "== memory of our KDC (PRINCIPALS=$PRINCIPALS: alice, host/localhost and that many more)"
echo "at start:                      $(mb "$START_RSS" "$START_ANON")"
read -r r a <"$WORK/peak" && echo "at its peak under the load:    $(mb "$r" "$a")"
if [ "$PRINCIPALS" -gt 0 ]; then
	[ -n "$MIT" ] && kill -STOP "$MIT"
	for _ in 1 2; do
		"${RUNLOAD[@]}" "$WORK/loadgen" --kdc "127.0.0.1:$OURS_PORT" --realm OURS.BENCH --user filler --mode sweep \
			--count "$PRINCIPALS" --conc "$CONC" >>"$WORK/sweep.log" 2>&1 || fail "sweep: $(tail -1 "$WORK/sweep.log")"
	done
	read -r r a < <(mem "$OURS")
	echo "every principal asked twice:   $(mb "$r" "$a")"
	: >"$WORK/peak"
	peakmem "$OURS" "$WORK/peak" &
	PEAKER=$!; STARTED+=("$PEAKER")
	measure "$OURS" "127.0.0.1:$OURS_PORT" OURS.BENCH alice bench-alice-pw as udp >/dev/null
	kill "$PEAKER" 2>/dev/null; wait "$PEAKER" 2>/dev/null
	read -r r a <"$WORK/peak" && echo "then at its peak under AS/UDP: $(mb "$r" "$a")"
	[ -n "$MIT" ] && kill -CONT "$MIT"
fi

# Latency where a KDC should run: at half of the rate it saturates at, paced (one run per cell and KDC).
# p99_us counts from when each request was due; late_p99 is how late the load generator itself sent (its
# own scheduling on its one CPU), send_p99 the latency from the actual send, arrive_p99 from the actual send to
# the reply's arrival in the kernel (SO_TIMESTAMPNS): without the generator's own delay in reading it.
if [ "$HALF" = 1 ]; then
	echo "== at half the saturated rate, paced, $DUR"
	printf '%-8s %-4s %9s %9s %9s %9s %9s %9s %10s %7s\n' cell kdc target/s got/s p50_us p99_us late_p99 send_p99 arrive_p99 errors
	while read -r mode proto sat msat; do
		for who in ours mit; do
			if [ "$who" = ours ]; then
				[ -n "$MIT" ] && kill -STOP "$MIT"
				half=$(awk -v r="$sat" 'BEGIN {printf "%.0f", r / 2}')
				line=$(halfload "127.0.0.1:$OURS_PORT" OURS.BENCH alice bench-alice-pw "$mode" "$proto" "$half")
				[ -n "$MIT" ] && kill -CONT "$MIT"
			else
				[ -n "$MIT" ] || continue
				kill -STOP "$OURS"
				half=$(awk -v r="$msat" 'BEGIN {printf "%.0f", r / 2}')
				line=$(halfload "127.0.0.1:$MIT_PORT" MIT.BENCH bob bench-bob-pw "$mode" "$proto" "$half")
				kill -CONT "$OURS"
			fi
			echo "$line" | awk -v c="$mode/$proto" -v w="$who" -v t="$half" '{
				for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
				printf "%-8s %-4s %9s %9.0f %9s %9s %9s %9s %10s %7s\n", c, w, t, f["rps"], f["p50_us"], f["p99_us"], f["late_p99_us"], f["send_p99_us"], f["arrive_p99_us"], f["errors"] }'
		done
	done <"$WORK/saturated"
fi
exit 0
