#!/usr/bin/env bash
# Differential test (issue 9, "How it is checked"): go test -json against
# `godist --jsonfile F --durations D -n 2` on godist's fixtures and on public modules fetched
# through the module proxy (versions pinned in internal/difftest/modules.go), compared test by
# test. Prints one markdown table; results go to bench/DIFFTEST.md by hand.
#
# Usage: bash bench/difftest.sh [module[@version] | fixtures ...]   (none: all of them)
#   GODIST=BIN            check this godist binary instead of building ./cmd/godist
#   DIFFTEST_DETAILS=FILE where the details go (default: a new file in $TMPDIR, named at the end)
#   DIFFTEST_KEEP=1       keep every copy, stream and log (the work directory is named at the end)
#   DIFFTEST_FLAGS=...    more difftest flags (-n 4, -timeout 10m)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/difftest.XXXXXX")
if [ "${DIFFTEST_KEEP:-}" = 1 ]; then
	trap 'echo "difftest: work directory kept: $work" >&2' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi
godist=${GODIST:-}
if [ -z "$godist" ]; then
	godist=$work/godist
	CGO_ENABLED=0 go build -o "$godist" ./cmd/godist
fi
go build -o "$work/difftest" ./internal/difftest/cmd/difftest
details=${DIFFTEST_DETAILS:-$(mktemp --suffix=.md "${TMPDIR:-/tmp}/difftest-details.XXXXXX")}
status=0
# shellcheck disable=SC2086
"$work/difftest" -godist "$godist" -fixtures fixtures -work "$work/runs" -details "$details" ${DIFFTEST_FLAGS:-} "$@" || status=$?
echo "difftest: details in $details" >&2
exit $status
