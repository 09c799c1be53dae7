#!/usr/bin/env bash
# Runs every fuzz target of the module for a budget each and prints the
# executions per target. Usage: scripts/fuzz.sh [BUDGET] [PACKAGE-PATTERN]
#   scripts/fuzz.sh            # 60s per target, every package
#   scripts/fuzz.sh 5m ./kdc   # 5 minutes per target in ./kdc
# New crashers land in the package's testdata/fuzz/ directory, where plain
# `go test` runs them from then on: commit them with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-60s}"
pattern="${2:-./...}"
status=0
printf '%-40s %-24s %12s %s\n' package target execs result
for pkg in $(go list "$pattern"); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for target in $targets; do
    # A short minimization budget: the default (60s per new input) stalls
    # targets whose inputs are large, such as whole database files.
    out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" -fuzzminimizetime 100x 2>&1) && result=ok || { result=FAIL; status=1; }
    execs=$(printf '%s\n' "$out" | sed -n 's/.*execs: \([0-9]*\).*/\1/p' | tail -1)
    printf '%-40s %-24s %12s %s\n' "${pkg#github.com/kerbkit/kerbkit/}" "$target" "${execs:-?}" "$result"
    if [ "$result" = FAIL ]; then printf '%s\n' "$out" | tail -20; fi
  done
done
exit $status
