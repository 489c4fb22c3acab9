#!/usr/bin/env bash
# godist rsync side by side with real rsync over one real sshd (see bench/RSYNC.md).
#
#   bash bench/rsync.sh [ROUNDS]      (default 5 rounds; figures are medians)
#
# The tree: about 1500 Go source files (a fixed slice of $GOROOT/src) and two Go test
# binaries built from this repository (scheduler.test, xspec.test). Three phases a round,
# each run by both tools into their own empty destination at the start of the round:
#   1. cold: the destination is empty;
#   2. changed: scheduler.test rebuilt from a one-line source change, 15 files edited;
#   3. unchanged: nothing changed.
# Each timing is a whole command, ssh connection included: `godist rsync --json --tx
# ssh=HOST` (whose worker binary is in the remote cache: a ping ships it first, untimed)
# and `rsync -a --delete --stats -e ssh`. Bytes: godist's bytes_sent (what the sync wrote
# to the gateway's transport) and rsync's "Total bytes sent"; neither counts ssh's own
# framing and encryption.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
# Outside the module: a tree of .go files under it would become part of `go test ./...`.
OUT=${OUT:-${TMPDIR:-/tmp}/godist-bench/rsync}
# The trees (source and both copies) live in $BENCH_DIR: tmpfs by default, so that the
# figures measure the tools, not a disk that other tenants of the machine keep busy.
BENCH_DIR=${BENCH_DIR:-/dev/shm/godist-bench-rsync}
[ -d "$(dirname "$BENCH_DIR")" ] || BENCH_DIR=$OUT/trees
rm -rf "$OUT" "$BENCH_DIR"
mkdir -p "$OUT" "$BENCH_DIR"
trap 'rm -rf "$BENCH_DIR"' EXIT
export GOFLAGS=-mod=mod

echo "building godist and the sshd helper..." >&2
CGO_ENABLED=0 go build -o "$OUT/godist" ./cmd/godist
go build -o "$OUT/sshdserve" ./internal/sshdtest/cmd/sshdserve

# The two versions of the test binaries, from a copy of this repository.
mkdir -p "$OUT/repo" "$OUT/binA" "$OUT/binB"
git archive HEAD | tar -x -C "$OUT/repo"
(cd "$OUT/repo" && go test -c -o "$OUT/binA/" ./scheduler ./xspec)
sed -i "s/expected godist's JSON durations format/expected the JSON durations format of godist/" "$OUT/repo/scheduler/durations.go"
(cd "$OUT/repo" && go test -c -o "$OUT/binB/" ./scheduler)
cmp -s "$OUT/binA/scheduler.test" "$OUT/binB/scheduler.test" && { echo "the change did not change the binary" >&2; exit 1; }

# The pristine tree.
GOROOT=$(go env GOROOT)
mkdir -p "$BENCH_DIR/pristine/bin"
(cd "$GOROOT/src" && find . -name '*.go' -size -40k | LC_ALL=C sort >"$OUT/list" && sed -n 1,1500p "$OUT/list" | tar -cf - -T -) | tar -xf - -C "$BENCH_DIR/pristine"
cp "$OUT/binA/scheduler.test" "$OUT/binA/xspec.test" "$BENCH_DIR/pristine/bin/"
NFILES=$(find "$BENCH_DIR/pristine" -type f | wc -l)
SIZE=$(du -sb "$BENCH_DIR/pristine" | cut -f1)

# sshd, stopped when this script exits (its stdin is the fifo we keep open).
mkfifo "$OUT/sshd.fifo"
"$OUT/sshdserve" -env "$OUT/sshd.env" <"$OUT/sshd.fifo" >"$OUT/sshd.log" 2>&1 &
SSHD_PID=$!
exec 9>"$OUT/sshd.fifo"
cleanup() { exec 9>&-; wait "$SSHD_PID" 2>/dev/null || true; rm -rf "$BENCH_DIR"; }
trap cleanup EXIT
for _ in $(seq 100); do [ -f "$OUT/sshd.env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$OUT/sshd.env"
export HOME=$SSHD_HOME SSH_AUTH_SOCK=
"$OUT/godist" ping --tx "ssh=$SSHD_ALIAS" >/dev/null # ships the worker into the remote cache

now() { date +%s%N; }
results="$OUT/results.tsv"
printf 'round\tphase\ttool\tms\tbytes\n' >"$results"

run_godist() { # phase round dest
	local t0 t1 line
	t0=$(now)
	line=$("$OUT/godist" rsync --json --tx "ssh=$SSHD_ALIAS" "$BENCH_DIR/src" "$3")
	t1=$(now)
	bytes=$(sed -n 's/.*"bytes_sent":\([0-9]*\).*/\1/p' <<<"$line")
	printf '%s\t%s\tgodist\t%d\t%s\n' "$2" "$1" $(((t1 - t0) / 1000000)) "$bytes" >>"$results"
}
run_rsync() {
	local t0 t1 out
	t0=$(now)
	out=$(rsync -a --delete --stats -e "ssh -F $SSHD_CONFIG" "$BENCH_DIR/src/" "$SSHD_ALIAS:$3/")
	t1=$(now)
	bytes=$(sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' <<<"$out" | tr -d ,)
	printf '%s\t%s\trsync\t%d\t%s\n' "$2" "$1" $(((t1 - t0) / 1000000)) "$bytes" >>"$results"
}
both() { # phase round: alternate who goes first
	if (($2 % 2)); then
		run_godist "$1" "$2" "$BENCH_DIR/dst-godist"
		run_rsync "$1" "$2" "$BENCH_DIR/dst-rsync"
	else
		run_rsync "$1" "$2" "$BENCH_DIR/dst-rsync"
		run_godist "$1" "$2" "$BENCH_DIR/dst-godist"
	fi
}

for r in $(seq "$ROUNDS"); do
	echo "round $r of $ROUNDS..." >&2
	rm -rf "$BENCH_DIR/src" "$BENCH_DIR/dst-godist" "$BENCH_DIR/dst-rsync"
	cp -a "$BENCH_DIR/pristine" "$BENCH_DIR/src"
	sync
	both 1-cold "$r"
	# One test binary rebuilt from a one-line change, 15 source files edited.
	cp "$OUT/binB/scheduler.test" "$BENCH_DIR/src/bin/scheduler.test"
	find "$BENCH_DIR/src" -name '*.go' | LC_ALL=C sort | awk 'NR % 100 == 7 && n++ < 15' |
		while read -r f; do echo "// edited in round $r" >>"$f"; done
	both 2-changed "$r"
	both 3-unchanged "$r"
	diff -r "$BENCH_DIR/src" "$BENCH_DIR/dst-godist" >/dev/null || { echo "godist's copy differs from the source" >&2; exit 1; }
	diff -r "$BENCH_DIR/src" "$BENCH_DIR/dst-rsync" >/dev/null || { echo "rsync's copy differs from the source" >&2; exit 1; }
done

echo
echo "tree: $NFILES files, $SIZE bytes, in $BENCH_DIR ($(stat -f -c %T "$BENCH_DIR")); $ROUNDS rounds, medians; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rsync: $(rsync --version | head -1)"
awk -F'\t' 'NR > 1 { k = $2 "\t" $3; ms[k] = ms[k] " " $4; by[k] = by[k] " " $5 }
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
	printf "%-12s %12s %12s %14s %14s %8s %8s\n", "phase", "godist ms", "rsync ms", "godist bytes", "rsync bytes", "time x", "bytes x"
	split("1-cold 2-changed 3-unchanged", ph, " ")
	for (i = 1; i <= 3; i++) {
		g = ph[i] "\tgodist"; s = ph[i] "\trsync"
		gm = median(ms[g]); sm = median(ms[s]); gb = median(by[g]); sb = median(by[s])
		printf "%-12s %12d %12d %14d %14d %8.2f %8.2f\n", ph[i], gm, sm, gb, sb, gm / sm, gb / sb
	}
}' "$results"
echo "(raw figures: $results)"
