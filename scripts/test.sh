#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the servers, then formatting, lints and every
# test (unit, conformance, and end-to-end against real Redis 7.0 and Valkey 9.1 clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
before="$(pgrep -c -x 'redis-server|valkey-server' || true)"
cargo test --workspace -- --test-threads=2 "$@"
# No server process may outlive the suite (each test also checks its own pids).
after="$(pgrep -c -x 'redis-server|valkey-server' || true)"
if [ "$after" -gt "$before" ]; then
  echo "test.sh: $((after - before)) server process(es) outlived the suite:" >&2
  pgrep -a -x 'redis-server|valkey-server' >&2
  exit 1
fi
