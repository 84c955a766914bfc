#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every test of the workspace, against real
# servers that this script installs (when missing), starts on loopback, and stops again on exit:
#   - Apache Cassandra (deploy/local/cassandra.sh), one node;
#   - Apache Kafka (deploy/local/kafka.sh), one KRaft broker;
#   - a Redis 7 cluster (deploy/local/redis-cluster.sh), 3 masters and 3 replicas (the
#     replicas let tests kill a master and watch the failover);
#   - the production topology over those (deploy/local/stack.sh): two message-service instances
#     on the cluster profile behind nginx, for the end-to-end tests in tests/e2e;
# then the demo web client's browser test (tests/web/run.sh: Debian's chromium driven by
# playwright-core, both installed when missing); and last the store on a 3-node Cassandra ring
# (crates/chat-cassandra/tests/ring.rs, which kills, then pauses, a node under traffic).
#
# The test servers get their own data folder and ports, so a development Cassandra started by
# hand is left alone.
#
# Environment:
#   CARGO_TARGET_DIR      where to build (default: target/ in the repository)
#   CARGO_INCREMENTAL     incremental compilation (default 0: a clean build needs half the disk)
#   TEST_MIN_FREE_MIB     refuse to start with less free disk than this (default 4096)
#   TEST_THREADS          parallel tests per binary (default: cargo's choice)
#   TEST_SERVERS_HOME     data of the test servers (default: a fresh temporary folder)
#   TEST_CASSANDRA_PORT   CQL port of the test Cassandra (default 19042)
#   TEST_KAFKA_PORT       port of the test Kafka broker (default 19092; controller +1)
#   TEST_REDIS_PORT       port of the first test Redis node (default 19101; nodes use +0..+5,
#                         cluster bus +10000)
#   TEST_NGINX_PORT       nginx's port in the test stack (default 18088)
#   TEST_INSTANCE_PORT    port of the first test instance (default 18181; the second +1)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

step() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        step "installing the $component component"
        rustup component add "$component"
    fi
done

# A fresh clone builds everything once; incremental caches would only double the disk it needs.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# The build and the servers' data need room; say so plainly instead of failing mid-link.
target_parent=${CARGO_TARGET_DIR:-$repo/target}
while [[ ! -d "$target_parent" ]]; do target_parent=$(dirname "$target_parent"); done
free_mib=$(df -Pm "$target_parent" | awk 'NR == 2 { print $4 }')
needed_mib=${TEST_MIN_FREE_MIB:-4096}
if (( free_mib < needed_mib )); then
    echo "only ${free_mib} MiB free under $target_parent; the suite needs about ${needed_mib} MiB" \
        "(build + server data). Free some disk or set TEST_MIN_FREE_MIB." >&2
    exit 1
fi

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy --all-targets --all-features -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "building the tests"
cargo test --workspace --locked --no-run
cargo test -p chat-cassandra --features ring-tests --test ring --locked --no-run
cargo build -p chat-bench --locked

servers_home=${TEST_SERVERS_HOME:-$(mktemp -d -t chat-test-servers.XXXXXX)}
export CHAT_CASSANDRA_HOME=$servers_home/cassandra
export CASSANDRA_PORT=${TEST_CASSANDRA_PORT:-19042}
export CASSANDRA_STORAGE_PORT=${TEST_CASSANDRA_STORAGE_PORT:-17000}
export CASSANDRA_JMX_PORT=${TEST_CASSANDRA_JMX_PORT:-17199}
export CHAT_TEST_CASSANDRA=127.0.0.1:$CASSANDRA_PORT
export CHAT_KAFKA_HOME=$servers_home/kafka
export KAFKA_PORT=${TEST_KAFKA_PORT:-19092}
export KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
export CHAT_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export CHAT_REDIS_HOME=$servers_home/redis-cluster
export REDIS_CLUSTER_PORT=${TEST_REDIS_PORT:-19101}
export CHAT_TEST_REDIS=127.0.0.1:$REDIS_CLUSTER_PORT,127.0.0.1:$((REDIS_CLUSTER_PORT + 1)),127.0.0.1:$((REDIS_CLUSTER_PORT + 2))
export CHAT_STACK_HOME=$servers_home/stack
export STACK_PUBLIC_PORT=${TEST_NGINX_PORT:-18088}
export STACK_INSTANCE_PORT=${TEST_INSTANCE_PORT:-18181}
export STACK_INSTANCES=2
export STACK_REDIS_REPLICAS=1
export CHAT_TEST_NGINX=127.0.0.1:$STACK_PUBLIC_PORT
# The binary `cargo test --no-run` built (the chat-server tests need it): no release build.
export MESSAGE_SERVICE_BIN=${CARGO_TARGET_DIR:-$repo/target}/debug/message-service

stop_servers() {
    step "stopping the test servers"
    bash deploy/local/stack.sh down --wipe || true
    bash deploy/local/cassandra.sh stop --wipe || true
    bash deploy/local/kafka.sh stop --wipe || true
    bash deploy/local/redis-cluster.sh stop --wipe || true
    if [[ -z "${TEST_SERVERS_HOME:-}" ]]; then
        rm -rf "$servers_home"
    fi
}
trap stop_servers EXIT

step "starting Cassandra (deploy/local/cassandra.sh, CQL on 127.0.0.1:$CASSANDRA_PORT)"
bash deploy/local/cassandra.sh start --nodes 1

step "starting Kafka (deploy/local/kafka.sh, broker on 127.0.0.1:$KAFKA_PORT)"
bash deploy/local/kafka.sh start

step "starting the Redis cluster (deploy/local/redis-cluster.sh, nodes from 127.0.0.1:$REDIS_CLUSTER_PORT)"
bash deploy/local/redis-cluster.sh start --replicas

step "starting the stack: 2 instances behind nginx on 127.0.0.1:$STACK_PUBLIC_PORT (deploy/local/up.sh)"
bash deploy/local/up.sh

step "tests (cargo test --workspace)"
test_args=()
if [[ -n "${TEST_THREADS:-}" ]]; then
    test_args+=(--test-threads "$TEST_THREADS")
fi
cargo test --workspace --locked -- "${test_args[@]}"

# Every benchmark phase, tiny, on the stack the tests used: fails on a lost message, never on speed.
step "benchmark tool, smoke run (chat-bench --smoke)"
"${CARGO_TARGET_DIR:-$repo/target}/debug/chat-bench" --smoke --out "$servers_home/chat-bench"

step "browser test of the demo web client (tests/web/run.sh)"
bash tests/web/run.sh

# Last, the store on a 3-node ring (replication factor 3, QUORUM): migrations agree on every
# node, and a node killed under traffic stops no write and loses no acknowledged message. The
# single node and the stack over it make way for the ring (same ports, on 127.0.0.1–3).
step "a 3-node Cassandra ring, one node killed, then paused, under traffic (crates/chat-cassandra/tests/ring.rs)"
bash deploy/local/stack.sh down
bash deploy/local/cassandra.sh stop --wipe
bash deploy/local/cassandra.sh start --nodes 3
export CHAT_TEST_CASSANDRA_RING=127.0.0.1:$CASSANDRA_PORT,127.0.0.2:$CASSANDRA_PORT,127.0.0.3:$CASSANDRA_PORT
cargo test -p chat-cassandra --features ring-tests --test ring --locked -- "${test_args[@]}"
