#!/usr/bin/env bash
# The cluster checker of the test suite (tests/integration/cluster_faults_test.cc), run longer:
# keyed increments through a cluster aggregator under a rebalance, kill -9 and restart of a
# node, SIGSTOP past its lease, a move, an etcd restart and a drain, with SECONDS of load
# spread between the faults (default 300). Prints the checker's figures (increments,
# acknowledged, unknown, lost, doubled, moves, faults by kind).
# Usage: bench/checker.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cmake --preset test >/dev/null
cmake --build --preset test --target shardctl integration_tests >/dev/null
SHARDCTL_CHECKER_SECONDS=${1:-300} build/test/tests/integration_tests \
  --gtest_filter='ClusterFaultsTest.*'
