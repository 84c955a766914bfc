#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every test of the workspace.
#
# Today every test runs on the embedded profile, so no server is needed. As the Cassandra,
# Redis and Kafka adapters land, this script installs and starts each server it needs (and
# stops them on exit), so it stays the one command a fresh machine needs.
#
# Environment:
#   CARGO_TARGET_DIR   where to build (default: target/ in the repository)
#   TEST_THREADS       parallel tests per binary (default: cargo's choice)
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

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy --all-targets -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (cargo test --workspace)"
test_args=()
if [[ -n "${TEST_THREADS:-}" ]]; then
    test_args+=(--test-threads "$TEST_THREADS")
fi
cargo test --workspace --locked -- "${test_args[@]}"
