#!/usr/bin/env bash
# --shard balance (issue 6): 300 tests with heavy-tailed (Pareto) durations recorded in a
# durations file, split into 4 shards by scheduler.Shard, each shard timed with the tests'
# true durations plus one process start-up per package it runs. Target: the slowest shard
# within 10% of the mean shard (whenever no single test is longer than that by itself).
# Figures go to bench/SHARD.md. Usage: bench/shard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -run '^TestShardBalanceHeavyTail$' -v ./scheduler | grep -E 'shard_test.go|^(ok|FAIL|---)' | sed 's/^ *shard_test.go:[0-9]*: //'
go test -count=1 -run '^$' -bench '^BenchmarkShard$' -benchtime 200x ./scheduler | grep -E '^Benchmark'
