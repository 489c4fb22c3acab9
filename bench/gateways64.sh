#!/usr/bin/env bash
# 64 gateways on this machine (issue 14): eight real OpenSSH sshds on 127.0.0.1
# (internal/sshdtest/cmd/sshdserve), `--tx 8*ssh=hN` to each (64 gateways) against `--tx
# ssh=hN` (8 gateways), on a module of 10 packages x 500 tests of 1 ms, durations recorded
# by a first run, GODIST_CACHE_DIR=off; and go test -count=1 on the same module.
#
#   bash bench/gateways64.sh [ROUNDS]      # default 2
#
# Everything it starts (the sshds, through the pipes it holds open) and makes (one
# temporary directory) is gone when it exits.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2}
case $rounds in '' | *[!0-9]* | 0) echo "gateways64: ROUNDS must be a positive number, not '$rounds'" >&2; exit 2 ;; esac
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || { echo "gateways64: no sshd (apt-get install openssh-server)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gateways64.XXXXXX")
pids=()
cleanup() {
	for fd in 11 12 13 14 15 16 17 18; do eval "exec $fd>&-" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$repo" && CGO_ENABLED=0 go build -o "$work/godist" ./cmd/godist && go build -o "$work/sshdserve" ./internal/sshdtest/cmd/sshdserve)

# The module: 10 packages of 500 tests of 1 ms each.
mod=$work/mod
mkdir -p "$mod"
printf 'module gw64.example\n\ngo 1.21\n' >"$mod/go.mod"
for p in 0 1 2 3 4 5 6 7 8 9; do
	mkdir -p "$mod/p$p"
	{
		printf 'package p%s\n\nimport (\n\t"testing"\n\t"time"\n)\n\n' "$p"
		for t in $(seq 1 500); do printf 'func Test%03d(t *testing.T) { time.Sleep(time.Millisecond) }\n' "$t"; done
	} >"$mod/p$p/p_test.go"
done

# Eight sshds, each alive while this script holds its pipe open (fd 11..18).
home=$work/home
mkdir -p "$home/.ssh"
aliases=()
for i in 1 2 3 4 5 6 7 8; do
	mkfifo "$work/in$i"
	"$work/sshdserve" -env "$work/env$i" <"$work/in$i" &
	pids+=($!)
	eval "exec $((10 + i))>\"$work/in$i\""
done
for i in 1 2 3 4 5 6 7 8; do
	for _ in $(seq 1 300); do [ -e "$work/env$i" ] && break; sleep 0.1; done
	[ -e "$work/env$i" ] || { echo "gateways64: sshd $i did not come up" >&2; exit 1; }
	# shellcheck disable=SC1090
	. "$work/env$i"
	cat "$SSHD_CONFIG" >>"$home/.ssh/config"
	printf '\n' >>"$home/.ssh/config"
	aliases+=("$SSHD_ALIAS")
done

txs8=() txs64=()
for a in "${aliases[@]}"; do
	txs8+=(--tx "ssh=$a")
	txs64+=(--tx "8*ssh=$a")
done
cd "$mod"
export GODIST_CACHE_DIR=off HOME="$home"
d=$work/durations.json
run() { # label, args...: one timed run, its last line
	local label=$1
	shift
	local s e out code=0
	s=$(date +%s%N)
	out=$("$work/godist" --durations "$d" "$@" ./... 2>&1) || code=$?
	e=$(date +%s%N)
	printf '%-14s %6.2f s  exit %d  %s\n' "$label" "$(echo "($e - $s)/1000000000" | bc -l)" "$code" "$(printf '%s\n' "$out" | grep -E 'passed|error|lost' | tail -1)"
}
echo "gateways64: $(nproc) CPUs, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
run "record" "${txs8[@]}" >/dev/null
for r in $(seq 1 "$rounds"); do
	run "8 gateways" "${txs8[@]}"
	run "64 gateways" "${txs64[@]}"
done
s=$(date +%s%N)
go test -count=1 ./... >/dev/null
e=$(date +%s%N)
printf '%-14s %6.2f s\n' "go test" "$(echo "($e - $s)/1000000000" | bc -l)"
