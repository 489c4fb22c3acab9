#!/usr/bin/env bash
# Chaos runs (issue 14, part 3): godist over local workers, two real sshds on 127.0.0.1
# (one straight, one through a TCP proxy the harness owns) and a godist serve (through a
# proxy), RUNS times, each with one to three random faults injected at random moments:
# killed workers, test processes, sshd sessions and masters (SIGKILL, SIGINT), cut and
# frozen links. Every run is held to go test's outcome of the same module (see
# internal/chaos). Prints a line per bad run (with where its logs are), the fault mix and
#   runs=N lost=0 doubled=0 wrong=0 hung=0 orphans=0 max_detect_s=X
# Usage: bash bench/chaos.sh RUNS   (CHAOS_SEED=S repeats a campaign; CHAOS_KEEPALIVE=3s)
# Needs sshd and ssh-keygen (make deps installs them). Network: loopback only.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-}
case $runs in '' | *[!0-9]* | 0) echo "chaos: usage: bash bench/chaos.sh RUNS (a positive number)" >&2; exit 2 ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/godist-chaos.XXXXXX")
mkdir -p "$work/bin"
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/bin/godist" ./cmd/godist && go build -o "$work/bin/chaos" ./internal/chaos/cmd/chaos)
exec "$work/bin/chaos" -godist "$work/bin/godist" -fixtures "$repo/fixtures" -runs "$runs" \
	-seed "${CHAOS_SEED:-0}" -keepalive "${CHAOS_KEEPALIVE:-3s}" -work "$work/run"
