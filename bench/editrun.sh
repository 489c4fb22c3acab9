#!/usr/bin/env bash
# A run after an edit, side by side: for each godist binary given, in a fresh copy of the
# module at MODULE_DIR, go test runs once (its test cache) and godist once (its binaries and
# result cache); then a test is added to TEST_FILE (a path in the module) before each timed
# run, so that go test and godist each find one package changed since their last run.
# Usage: bench/editrun.sh MODULE_DIR TEST_FILE ROUNDS GODIST...   (bench/REALWORLD.md)
# Nothing here asserts a time.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: bench/editrun.sh MODULE_DIR TEST_FILE ROUNDS GODIST..." >&2; exit 2; }
src=$1 file=$2 rounds=$3
shift 3
[ -f "$src/go.mod" ] || { echo "editrun: no go.mod in $src" >&2; exit 2; }
[ -f "$src/$file" ] || { echo "editrun: no $file in $src" >&2; exit 2; }
export GOCACHE=${GOCACHE:-$(go env GOCACHE)} GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=readonly NO_COLOR=1
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
for r in $(seq "$rounds"); do
	for g in "$@"; do
		w=$(mktemp -d)
		cp -r "$src" "$w/tree"
		chmod -R u+w "$w/tree"
		(
			cd "$w/tree"
			export XDG_CACHE_HOME=$w/cache
			go test ./... >/dev/null 2>&1 || true
			"$g" ./... >/dev/null 2>&1 || true
			printf '\nfunc TestEditProbe%s(t *testing.T) {}\n' "$r$RANDOM" >>"$file"
			gt=$(secs go test ./...)
			printf '\nfunc TestEditProbe%s(t *testing.T) {}\n' "$r$RANDOM" >>"$file"
			gd=$(secs "$g" ./...)
			printf 'round %s %s: go test %.2f s, godist %.2f s\n' "$r" "$g" "$gt" "$gd"
		)
		rm -rf "$w"
	done
done
