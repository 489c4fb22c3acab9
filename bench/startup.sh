#!/usr/bin/env bash
# Gateway start-up, side by side in one run (issue 4): godist ping over ssh with a warm and
# a cold remote cache against a bare `ssh HOST true` on the same loopback sshd, and
# 16*popen against one popen. Usage: bench/startup.sh [iterations]   (default 20)
set -euo pipefail
n=${1:-20}
cd "$(dirname "$0")/.."
GODIST_REQUIRE_SSHD=1 go test -count=1 -run '^$' -bench 'Startup' -benchtime "${n}x" ./cmd/godist | tee /tmp/godist-startup.txt
awk '/^BenchmarkStartup/ { sub(/-[0-9]+$/, "", $1); t[$1] = $3 }
END {
	printf "ping ssh warm / ssh true: %.2f (target <= 1.25)\n", t["BenchmarkStartupPingSSHWarm"] / t["BenchmarkStartupSSHTrue"]
	printf "ping ssh cold / ssh true: %.2f (target <= 1.6)\n", t["BenchmarkStartupPingSSHCold"] / t["BenchmarkStartupSSHTrue"]
	printf "16*popen / 1 popen:       %.2f (target <= 2)\n", t["BenchmarkStartupPopen16"] / t["BenchmarkStartupPopen1"]
}' /tmp/godist-startup.txt
