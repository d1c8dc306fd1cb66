#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the servers, then formatting, lints and every
# test (unit, conformance, and end-to-end against real Redis 7.0 and Valkey 9.1 clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets -- --test-threads=2 "$@"
