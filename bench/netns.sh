#!/usr/bin/env bash
# bench/netns.sh: shipping a module to 3 hosts over 20 ms, 100 Mbit/s links — godist against
# rsync -a by hand. Needs root, iproute2, sshd, rsync (the testbed of internal/netnstest).
#
# The testbed (internal/netnstest/cmd/testbed): hosts h1, h2 and h3 (h3 behind h1, reached by
# ProxyJump h1), each its own network namespace with its own sshd and HOME, every host's link
# shaped to DELAY each way and RATE (netem, or the testbed's relay links on a kernel without
# sch_netem). Everything runs in the testbed's client namespace; nothing touches the root
# namespace's network.
#
# The content: this module's tree (git archive HEAD) and its test binaries, built as godist
# links them (go test -c -ldflags='-s -w' -o DIR/), for every package but cmd/godist (whose
# TestMain builds godist) and the difftest command. Measured, each cold (the hosts' godist
# caches and destination directories emptied) and warm (again, nothing changed):
#   - godist rsync --tx ssh=h1 --tx ssh=h2 --tx ssh=h3 STAGE DEST (cold: the worker too);
#   - rsync -a (and rsync -az) over OpenSSH's ssh to the 3 hosts at once, the same STAGE;
#   - a real run, godist --dist each -run '^$' over the 3 hosts (tree + every binary to every
#     host + one process per binary and host), against the same run on 3 local workers.
# GODIST_CACHE_DIR=off throughout.
#
#   bash bench/netns.sh [DELAY [RATE]]     (defaults: 20ms 100mbit)
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY=${1:-20ms}
RATE=${2:-100mbit}
HOSTS=(h1 h2 h3)

WORK=$(mktemp -d /tmp/godist-bench-netns-XXXXXX)
cleanup() {
	# Closing the testbed's stdin tears it down; then wait for it to be gone.
	if [ -n "${TB_IN:-}" ]; then exec {TB_IN}>&-; fi
	if [ -n "${TB_CHILD:-}" ]; then wait "$TB_CHILD" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building godist, the testbed command and the content" >&2
CGO_ENABLED=0 go build -o "$WORK/godist" ./cmd/godist
go build -o "$WORK/testbed" ./internal/netnstest/cmd/testbed
mapfile -t PKGS < <(go list ./... | grep -v -e '/cmd/godist$' -e '/difftest/cmd/')
mkdir -p "$WORK/stage/tree" "$WORK/stage/bin"
git archive HEAD | tar -x -C "$WORK/stage/tree"
go test -c -ldflags='-s -w' -o "$WORK/stage/bin/" "${PKGS[@]}" >/dev/null
TREE_FILES=$(find "$WORK/stage/tree" -type f | wc -l)
TREE_BYTES=$(du -sb "$WORK/stage/tree" | cut -f1)
BIN_FILES=$(find "$WORK/stage/bin" -type f | wc -l)
BIN_BYTES=$(du -sb "$WORK/stage/bin" | cut -f1)

echo "== bringing the testbed up: ${HOSTS[*]}, $DELAY each way, $RATE" >&2
coproc TB { exec "$WORK/testbed" -hosts h1,h2,h3/h1 -delay "$DELAY" -rate "$RATE"; }
TB_CHILD=$TB_PID
TB_IN=${TB[1]:-}
TB_OUT=${TB[0]:-}
[ -n "$TB_OUT" ] || { echo "bench/netns.sh: the testbed command ended at once" >&2; exit 1; }
TB_ENV=()
TB_HOSTS=()
while IFS= read -r line <&"$TB_OUT"; do
	[ "$line" = READY ] && break
	eval "$line"
done
[ -n "${TB_CLIENT_NS:-}" ] || { echo "bench/netns.sh: the testbed did not come up" >&2; exit 1; }
SSHCFG=""
for v in "${TB_ENV[@]}"; do case $v in HOME=*) SSHCFG="${v#HOME=}/.ssh/config" ;; esac; done

client() { ip netns exec "$TB_CLIENT_NS" env "${TB_ENV[@]}" GODIST_CACHE_DIR=off NO_COLOR=1 "$@"; }
home() { local v="TB_HOME_$1"; echo "${!v}"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }
fresh() { # empty the hosts' godist caches and the destinations
	for h in "${HOSTS[@]}"; do rm -rf "$(home "$h")/.cache/godist" "$(home "$h")/bench-godist" "$(home "$h")/bench-rsync"; done
}
# A session starts in the account's home directory (/root), not in the testbed's HOME for
# the host: chdir= there, and absolute destinations for rsync.
TX=()
for h in "${HOSTS[@]}"; do TX+=(--tx "ssh=$h//chdir=$(home "$h")"); done
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 |"); echo "   $1: $2 s ($3)" >&2; }

godist_rsync() {
	local t out
	t=$(now)
	out=$(client "$WORK/godist" rsync --json "${TX[@]}" "$WORK/stage" bench-godist)
	local s
	s=$(since "$t")
	local bytes
	bytes=$(echo "$out" | sed -n 's/.*"bytes_sent": *\([0-9]*\).*/\1/p' | sum)
	row "$1" "$s" "$(numfmt --to=iec --suffix=B "$bytes") sent to the 3 hosts"
}
rsync_by_hand() { # $1 label, $2 rsync flags
	local t
	t=$(now)
	local pids=()
	for h in "${HOSTS[@]}"; do
		client rsync "$2" --stats -e "ssh -F $SSHCFG" "$WORK/stage/" "$h:$(home "$h")/bench-rsync/" >"$WORK/rsync-$h.out" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	local s
	s=$(since "$t")
	local bytes
	bytes=$(cat "$WORK"/rsync-h*.out | sed -n 's/^Total bytes sent: \([0-9,.]*\).*/\1/p' | tr -d ,. | sum)
	row "$1" "$s" "$(numfmt --to=iec --suffix=B "$bytes") sent to the 3 hosts"
}
godist_run() { # $1 label, then godist's gateway flags
	local label=$1
	shift
	local t
	t=$(now)
	client "$WORK/godist" --dist each "$@" -run '^$' --durations "$WORK/durations.json" "${PKGS[@]}" >"$WORK/run.out" 2>&1 ||
		{ cat "$WORK/run.out" >&2; exit 1; }
	row "$label" "$(since "$t")" "$(grep -c '^ok' "$WORK/run.out") package results"
}

raw_ssh() { # what the links carry: N MB through plain ssh to each host at once
	local t
	t=$(now)
	local pids=()
	for h in "${HOSTS[@]}"; do
		head -c "${1}000000" /dev/zero | client ssh -F "$SSHCFG" "$h" 'cat > /dev/null' &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	row "ssh, ${1} MB of zeros to each host at once (the links' ceiling)" "$(since "$t")" "$((3 * $1)) MB"
}

echo "== measuring" >&2
raw_ssh 40
fresh
godist_rsync "godist rsync, cold (worker too)"
godist_rsync "godist rsync, warm"
for h in "${HOSTS[@]}"; do rm -rf "$(home "$h")/bench-godist"; done
godist_rsync "godist rsync, destinations emptied (worker cached)"
fresh
rsync_by_hand "rsync -a, cold" -a
rsync_by_hand "rsync -a, warm" -a
fresh
rsync_by_hand "rsync -az, cold" -az
rsync_by_hand "rsync -az, warm" -az
# The run: warm the local build first (godist keeps its binaries between runs).
client "$WORK/godist" --dist each --tx popen -run '^$' --durations "$WORK/durations.json" "${PKGS[@]}" >/dev/null 2>&1 || true
godist_run "godist --dist each -run '^\$', 3 local workers (no shipping)" --tx popen --tx popen --tx popen
fresh
godist_run "godist --dist each -run '^\$', 3 hosts, cold" "${TX[@]}"
godist_run "godist --dist each -run '^\$', 3 hosts, warm" "${TX[@]}"

echo
echo "Content: the tree, $TREE_FILES files, $(numfmt --to=iec --suffix=B "$TREE_BYTES"); $BIN_FILES test binaries, $(numfmt --to=iec --suffix=B "$BIN_BYTES") (to each of 3 hosts). Links: $TB_LINKS, $DELAY each way, $RATE. $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
echo "| what | seconds | notes |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
