#!/usr/bin/env bash
# Result cache benchmark (issue 12, "How it is checked"), side by side in one run, on
# godist's own module and on a public module (pinned, through the module proxy):
#   1. go test ./... twice, godist ./... twice: the second runs, timed (go test's is all
#      "(cached)"; godist's must take at most 1.2x as long);
#   2. a small change in one package (an init function that the linker keeps, so that
#      every binary linking it changes): which packages each re-runs; godist must re-run
#      exactly those that go test re-runs, the ones whose test binary links the package;
#   3. a fresh copy of the tree at the same place (every file's modification time new, as
#      a CI checkout): which packages each reuses (go test keys files its tests open by
#      modification time, godist by content).
# Every run uses caches of its own (GOCACHE, XDG_CACHE_HOME, the result cache) under one
# temporary directory, removed at the end (CACHE_KEEP=1 keeps it); nothing else is touched.
# The network is used only to fetch the public module through the module proxy.
#
#   bash bench/cache.sh                 # CACHE_RUNS=3 timed second runs each (median)
#   CACHE_SELF=0 bash bench/cache.sh    # the public module only
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${CACHE_RUNS:-3}
public=${CACHE_MODULE:-github.com/spf13/afero@v1.15.0}
public_change=${CACHE_MODULE_CHANGE:-tarfs/fs.go}
self_change=${CACHE_SELF_CHANGE:-resultcache/inputs.go}
work=$(mktemp -d "${TMPDIR:-/tmp}/cachebench.XXXXXX")
cleanup() {
	git -C "$repo" worktree remove --force "$work/self" >/dev/null 2>&1 || true
	git -C "$repo" worktree prune >/dev/null 2>&1 || true
	if [ "${CACHE_KEEP:-}" = 1 ]; then
		echo "cache: kept $work" >&2
	else
		chmod -R u+w "$work" 2>/dev/null || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export GOCACHE=$work/gocache XDG_CACHE_HOME=$work/xdg GODIST_CACHE_DIR=$work/results NO_COLOR=1
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$GOCACHE" "$XDG_CACHE_HOME"
(cd "$repo" && go build -o "$work/godist" ./cmd/godist)
godist=$work/godist

now() { date +%s.%N; }
# secs CMD...: run CMD (output to $work/last.out), print its wall time in seconds.
secs() {
	local s e
	s=$(now)
	"$@" >"$work/last.out" 2>&1 || true
	e=$(now)
	echo "$e - $s" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# cached FILE: the packages FILE reports "(cached)", sorted; ran FILE: those it reports
# with a time (they ran).
cached() { { grep -E $'^ok  \t[^\t]+\t\\(cached\\)' "$1" || true; } | cut -f2 | sort -u; }
ran() { { grep -E $'^(ok  |FAIL)\t[^\t]+\t[0-9.]+s' "$1" || true; } | cut -f2 | sort -u; }
count() { grep -c . <<<"$1" || true; }

bench() { # bench NAME DIR CHANGEFILE
	local name=$1 dir=$2 change=$3 i t
	cd "$dir"
	go test ./... >"$work/gt1.out" 2>&1 || true
	"$godist" ./... >"$work/gd1.out" 2>&1 || true
	local gt=() gd=()
	for ((i = 0; i < runs; i++)); do
		gt+=("$(secs go test ./...)")
		cp "$work/last.out" "$work/gt2.out"
		gd+=("$(secs "$godist" ./...)")
		cp "$work/last.out" "$work/gd2.out"
	done
	local gtm gdm
	gtm=$(printf '%s\n' "${gt[@]}" | median)
	gdm=$(printf '%s\n' "${gd[@]}" | median)
	local npk
	npk=$(count "$(ran "$work/gt1.out")")
	# 2. one-line change.
	printf '\nvar cacheBenchSink int\n\nfunc init() { cacheBenchSink += %s }\n' "$RANDOM" >>"$change"
	go test ./... >"$work/gt3.out" 2>&1 || true
	"$godist" ./... >"$work/gd3.out" 2>&1 || true
	local gtr gdr same=no
	gtr=$(ran "$work/gt3.out")
	gdr=$(ran "$work/gd3.out")
	[ "$gtr" = "$gdr" ] && same=yes
	# 3. a fresh copy at the same place.
	mv "$dir" "$dir.saved"
	cp -r "$dir.saved" "$dir"
	cd "$dir"
	go test ./... >"$work/gt4.out" 2>&1 || true
	"$godist" ./... >"$work/gd4.out" 2>&1 || true
	local gtc gdc only
	gtc=$(cached "$work/gt4.out")
	gdc=$(cached "$work/gd4.out")
	only=$(comm -13 <(echo "$gtc") <(echo "$gdc") | paste -sd, -)
	printf '| %s | %d | %.2f | %.2f | %.2f %s | %s: %d / %d (%s) | %d / %d | %s |\n' "$name" "$npk" "$gtm" "$gdm" \
		"$(echo "$gdm / $gtm" | bc -l)" "$( (($(echo "$gdm <= 1.2 * $gtm" | bc))) && echo ✓ || echo ✗)" \
		"$(basename "$change")" "$(count "$gtr")" "$(count "$gdr")" "$same" \
		"$(count "$gtc")" "$(count "$gdc")" "${only:-none}"
	{
		echo "== $name: second runs go test ${gt[*]} / godist ${gd[*]}"
		echo "-- re-run after the change, go test:"; echo "$gtr"
		echo "-- re-run after the change, godist:"; echo "$gdr"
		echo "-- cached after a fresh copy, go test:"; echo "$gtc"
		echo "-- cached after a fresh copy, godist:"; echo "$gdc"
	} >>"$work/details.txt"
}

echo "cache: $(nproc) CPUs, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg), godist $(git -C "$repo" rev-parse --short HEAD)" >&2
echo "| module | packages with tests | go test 2nd s (cached) | godist 2nd s | ratio (≤ 1.2) | one-line change in: packages re-run by go test / godist (same) | fresh copy: cached by go test / godist | cached by godist only |"
echo "|---|---|---|---|---|---|---|---|"
if [ "${CACHE_SELF:-1}" = 1 ]; then
	git -C "$repo" worktree add --detach "$work/self" HEAD >/dev/null 2>&1
	bench "github.com/godist/godist (HEAD)" "$work/self" "$work/self/$self_change"
fi
(
	mkdir -p "$work/fetch" && cd "$work/fetch"
	GOFLAGS=-mod=mod go mod download -json "$public" >"$work/dl.json"
)
src=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$work/dl.json")
mkdir -p "$work/pub"
cp -r "$src" "$work/pub/tree"
chmod -R u+w "$work/pub/tree"
(cd "$work/pub/tree" && go mod tidy >/dev/null 2>&1)
bench "$public" "$work/pub/tree" "$work/pub/tree/$public_change"
echo >&2
cat "$work/details.txt" >&2
