#!/usr/bin/env bash
# Benchmarks of channel/ against py.execnet popen channels and a raw pipe,
# on this machine, side by side. See channel/BENCH.md.
#
# Usage: bash bench/channel.sh [benchtime]   (default 3s)
# Needs: go, and Debian's python3-execnet (apt-get install -y python3-execnet).
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-3s}

echo "== machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"
echo "== raw pipe: dd if=/dev/zero bs=1M count=4096 | cat > /dev/null (3 runs)"
for i in 1 2 3; do
	(dd if=/dev/zero bs=1M count=4096 | cat > /dev/null) 2>&1 | tail -1
done

echo "== execnet popen channels"
if /usr/bin/python3 -c 'import execnet' 2>/dev/null; then
	/usr/bin/python3 channel/bench_execnet.py 3
else
	echo "python3-execnet not installed: apt-get install -y python3-execnet"
fi

echo "== channel: go test -run='^\$' -bench='Process|RawPipe' -benchtime=$benchtime -count=3 ./channel"
go test -run='^$' -bench='Process|RawPipe' -benchtime="$benchtime" -count=3 ./channel
echo "== $(uptime | sed 's/.*load/load/')"
