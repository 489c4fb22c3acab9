#!/usr/bin/env bash
# Side-by-side timing of godist against go test and pytest-xdist on local workers, in one
# run (issue 2's benchmark). Usage: bench/local.sh [runs]   (default 5 runs each; median)
# Needs: go; for the pytest-xdist twin, Debian's python3-pytest-xdist (apt-get install -y
# python3-pytest-xdist). Prints a table; nothing here asserts a time.
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/godist" "$root/cmd/godist"

# A module with a package of 400 tests that each sleep 25 ms, and one of 2000 empty tests.
mkdir -p "$work/m/sleep" "$work/m/empty" "$work/py"
printf 'module benchmod\n\ngo 1.26\n' > "$work/m/go.mod"
{
	printf 'package sleep\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
	for i in $(seq 1 400); do printf 'func TestSleep%03d(t *testing.T) { time.Sleep(25 * time.Millisecond) }\n' "$i"; done
} > "$work/m/sleep/sleep_test.go"
{
	printf 'package empty\n\nimport "testing"\n\n'
	for i in $(seq 1 2000); do printf 'func TestEmpty%04d(t *testing.T) {}\n' "$i"; done
} > "$work/m/empty/empty_test.go"
{
	printf 'import time\n\n'
	for i in $(seq 1 400); do printf 'def test_sleep%03d():\n    time.sleep(0.025)\n\n' "$i"; done
} > "$work/py/test_sleep.py"

# median of N timings of a command, in seconds
timeit() {
	local ts=()
	for _ in $(seq 1 "$runs"); do
		local s e
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || true
		e=$(date +%s.%N)
		ts+=("$(echo "$e - $s" | bc)")
	done
	printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

cd "$work/m"
export GODIST_CACHE_DIR=off # every figure is of a run, as go test -count=1

go test -count=1 ./... >/dev/null 2>&1 || true # warm the build cache
"$work/godist" -n 8 --durations "$work/d.json" ./... >/dev/null 2>&1 || true # warm durations

echo "machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), runs per figure: $runs (median)"
printf '%-58s %8s\n' "what" "seconds"
sleep_godist=$(timeit "$work/godist" -n 8 --durations "$work/d.json" ./sleep)
printf '%-58s %8.3f\n' "400 x 25ms: godist -n 8 ./sleep" "$sleep_godist"
printf '%-58s %8.3f\n' "400 x 25ms: go test -count=1 ./sleep (serial)" "$(timeit go test -count=1 ./sleep)"
if /usr/bin/python3 -c "import xdist" 2>/dev/null; then
	cd "$work/py"
	printf '%-58s %8.3f\n' "400 x 25ms: pytest -n 8 (pytest-xdist, twin suite)" "$(timeit /usr/bin/python3 -m pytest -q -p no:cacheprovider -n 8 test_sleep.py)"
	cd "$work/m"
else
	printf '%-58s %8s\n' "400 x 25ms: pytest -n 8 (pytest-xdist not installed)" "-"
fi
printf '%-58s %8.3f\n' "2000 empty: godist -n 2 ./empty" "$(timeit "$work/godist" -n 2 --durations "$work/d.json" ./empty)"
printf '%-58s %8.3f\n' "2000 empty: go test -count=1 ./empty" "$(timeit go test -count=1 ./empty)"
echo "ideal for 400 x 25ms on 8 workers: 1.250 s; parallel efficiency = 1.25 / godist time = $(echo "scale=2; 1.25 / $sleep_godist" | bc)"
