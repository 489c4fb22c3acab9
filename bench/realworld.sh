#!/usr/bin/env bash
# Real-world benchmark (issue 11, "How it is checked"): `go test -count=1 ./...` against
# godist's first run (a fresh copy of the tree: empty binary cache, fresh --durations file)
# and its second run (same copy, same durations) on public modules fetched, pinned, through
# the module proxy, side by side in one run; then the phases of the two worst first runs.
# Prints one markdown table (results go to bench/REALWORLD.md by hand). See
# internal/benchreal for what is timed and how.
#
# Usage: bash bench/realworld.sh [module@version ...]   (none: the 11 of internal/benchreal)
#   REALWORLD_RUNS=N      rounds per module, each a fresh copy (default 3; medians)
#   REALWORLD_REV=REV     build godist (and the helper) from this commit of the repository,
#                         in a temporary git worktree (default HEAD: others' uncommitted
#                         edits do not reach the build)
#   GODIST=BIN            measure this godist binary instead of building one
#   REALWORLD_TIMEOUT=D   bound on every command the helper runs (default 10m)
#   REALWORLD_TOTAL=D     bound on the whole benchmark (default 3h)
#   REALWORLD_PROFILE=K   phase breakdown of the K worst first runs (default 2; 0: none)
#   REALWORLD_KEEP=1      keep every copy and output (the directory is named at the end)
# Network: only `go mod download` / `go mod tidy` through the module proxy; every timed run
# has GOPROXY=off.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rev=${REALWORLD_REV:-HEAD}
runs=${REALWORLD_RUNS:-3}
per=${REALWORLD_TIMEOUT:-10m}
total=${REALWORLD_TOTAL:-3h}
profile=${REALWORLD_PROFILE:-2}
case $runs in '' | *[!0-9]* | 0) echo "realworld: REALWORLD_RUNS must be a positive number, not '$runs'" >&2; exit 2 ;; esac
command -v go >/dev/null || { echo "realworld: no go on PATH" >&2; exit 1; }
command -v timeout >/dev/null || { echo "realworld: no timeout(1) on PATH (coreutils)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/realworld.XXXXXX")
tree=$work/tree
cleanup() {
	if [ -d "$tree" ]; then
		git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true
		git -C "$repo" worktree prune >/dev/null 2>&1 || true
	fi
	if [ "${REALWORLD_KEEP:-}" = 1 ]; then
		echo "realworld: work directory kept: $work" >&2
	else
		# The module cache's copies are read-only; make them removable first.
		chmod -R u+w "$work" 2>/dev/null || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

commit=$(git -C "$repo" rev-parse --verify "$rev^{commit}") || { echo "realworld: no commit '$rev'" >&2; exit 2; }
timeout 2m git -C "$repo" worktree add --detach "$tree" "$commit" >/dev/null 2>&1 ||
	{ echo "realworld: git worktree add $tree $commit failed" >&2; exit 1; }
echo "realworld: building from $(git -C "$tree" log --oneline -1)" >&2

godist=${GODIST:-}
if [ -z "$godist" ]; then
	godist=$work/godist
	(cd "$tree" && timeout 10m go build -o "$godist" ./cmd/godist) ||
		{ echo "realworld: go build ./cmd/godist at $commit failed" >&2; exit 1; }
fi
helper_src=$tree
if [ ! -d "$tree/internal/benchreal" ]; then
	echo "realworld: $commit has no internal/benchreal; building the helper from $repo" >&2
	helper_src=$repo
fi
(cd "$helper_src" && timeout 10m go build -o "$work/benchreal" ./internal/benchreal) ||
	{ echo "realworld: go build ./internal/benchreal failed" >&2; exit 1; }

echo "realworld: $(nproc) CPUs, $(go version), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
keep=()
[ "${REALWORLD_KEEP:-}" = 1 ] && keep=(-work "$work/runs")
status=0
timeout --kill-after=30s "$total" "$work/benchreal" -godist "$godist" -runs "$runs" -timeout "$per" \
	-profile "$profile" "${keep[@]}" "$@" || status=$?
[ $status = 124 ] && echo "realworld: stopped after $total (REALWORLD_TOTAL)" >&2
exit $status
