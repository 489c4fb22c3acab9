#!/usr/bin/env bash
# The --timeline page of a run of 50,000 tests on 64 gateways (issue 13): its size, the time
# godist takes to write it, and the time headless Chromium takes to open it.
# Usage: bench/timeline.sh [runs]   (default 5; medians are printed)
#
# The pages are the synthetic runs of timeline/large_test.go (TestLargeRun): 500 packages,
# test durations spread as a real suite's (80% under 1 ms, 0.5% up to 3 s) in 2000 or 10000
# processes, or every test about a pixel wide (0.1-5 ms) in 2000 processes.
# For each page Chromium runs `runs` times: --dump-dom, with a probe script put in the page
# that records the time from navigation to the first paint (Chromium paints while it parses),
# to the load event (the whole page parsed), the time a forced layout of the whole page then
# takes, and the time of the first animation frame after load (the whole chart laid out,
# about to paint); and --screenshot (load, layout and paint), timed from outside against the
# same for an empty page (Chromium's own start-up).
set -euo pipefail
runs=${1:-5}
cd "$(dirname "$0")/.."
chromium=$(command -v chromium || command -v chromium-browser) || { echo "chromium is not installed (make deps)"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== writing the pages (TestLargeRun)"
GODIST_TIMELINE_OUT=$out go test -count=1 -run 'TestLargeRun$' -v ./timeline | grep -E 'MB,|^(ok|FAIL)'
echo "== writing the page, godist side (BenchmarkWrite50k: layout and HTML of the 2000-process run)"
go test -count=1 -run '^$' -bench 'Write50k' -benchtime 5x ./timeline | grep '^Benchmark'

printf '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>empty</title></head><body></body></html>\n' > "$out/empty.html"
probe='<script>addEventListener("load",function(){var d=document.documentElement,t0=performance.now();document.body.getBoundingClientRect();var s=document.querySelector("svg");if(s)s.getBBox();d.setAttribute("data-load-ms",t0.toFixed(0));d.setAttribute("data-layout-ms",(performance.now()-t0).toFixed(0));requestAnimationFrame(function(){d.setAttribute("data-frame-ms",performance.now().toFixed(0));performance.getEntriesByType("paint").forEach(function(e){if(e.name=="first-paint")d.setAttribute("data-paint-ms",e.startTime.toFixed(0))})})});</script>'

flags=(--headless --disable-gpu --no-first-run --no-default-browser-check --disable-background-networking
	--disable-component-update --disable-sync --disable-extensions --disable-default-apps --mute-audio
	"--host-resolver-rules=MAP * ~NOTFOUND" --proxy-server=http://127.0.0.1:9)
[ "$(id -u)" = 0 ] && flags+=(--no-sandbox)

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# shot FILE: wall-clock milliseconds of one --screenshot of FILE.
shot() {
	local t0 t1
	t0=$(ms)
	"$chromium" "${flags[@]}" --user-data-dir="$out/profile" --window-size=1800,1300 --hide-scrollbars \
		--screenshot="$out/shot.png" "file://$1" >/dev/null 2>&1
	t1=$(ms)
	echo $((t1 - t0))
}

row() { printf '%-34s %7s %9s %8s %10s %9s %8s %11s\n' "$@"; }
row page size paint_ms load_ms layout_ms frame_ms shot_ms shot-empty
base=$(for i in $(seq "$runs"); do shot "$out/empty.html"; done | median)
row empty.html - - - - - "$base" 0
attr() { sed -n "s/.*data-$1=\"\([0-9]*\)\".*/\1/p" <<<"$2"; }
for page in "$out"/timeline-50k-*.html; do
	name=$(basename "$page")
	sed "0,/<head>/s##<head>$probe#" "$page" > "$out/probe.html"
	paints=() loads=() layouts=() frames=()
	for i in $(seq "$runs"); do
		dom=$("$chromium" "${flags[@]}" --user-data-dir="$out/profile" --dump-dom "file://$out/probe.html" 2>/dev/null | grep -m1 -o '<html[^>]*>')
		paints+=("$(attr paint-ms "$dom")") loads+=("$(attr load-ms "$dom")")
		layouts+=("$(attr layout-ms "$dom")") frames+=("$(attr frame-ms "$dom")")
	done
	med() { printf '%s\n' "$@" | grep . | median; }
	s=$(for i in $(seq "$runs"); do shot "$page"; done | median)
	size=$(printf '%.2fM' "$(echo "$(stat -c %s "$page") / 1048576" | bc -l)")
	row "$name" "$size" "$(med "${paints[@]}")" "$(med "${loads[@]}")" "$(med "${layouts[@]}")" "$(med "${frames[@]}")" "$s" $((s - base))
done
