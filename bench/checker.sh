#!/usr/bin/env bash
# The cluster checkers of the test suite, run longer: keyed increments through a cluster
# aggregator, every one retried with its key until acknowledged, then the total checked.
#   - tests/integration/cluster_faults_test.cc (one copy per shard): a rebalance, kill -9 and
#     restart of a node, SIGSTOP past its lease, a move, an etcd restart and a drain;
#   - tests/integration/replication_test.cc (R=2, --ack all): kill -9 of a primary's node,
#     SIGSTOP past its lease, a partition (nftables), a lost data directory, a follower paused
#     before its primary dies; lost and doubled after each.
# SECONDS of load (default 300) are spread between the faults of each. Prints each checker's
# figures (increments, acknowledged, unknown, lost, doubled, moves or time to recover).
# Usage: bench/checker.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cmake --preset test >/dev/null
cmake --build --preset test --target shardctl integration_tests >/dev/null
SHARDCTL_CHECKER_SECONDS=${1:-300} build/test/tests/integration_tests \
  --gtest_filter='ClusterFaultsTest.*:ReplicationTest.CheckerLosesNothing*'
