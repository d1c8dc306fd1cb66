#!/usr/bin/env bash
# The demo on a fresh machine: installs the servers, builds slotcheck, and runs a 30 s test on a
# 3-master cluster with 20 clients while slots migrate, against Redis 7.0 and then Valkey 9.1.
# Usage: scripts/demo.sh [redis|valkey ...] [-- extra `slotcheck test` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
servers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do servers+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#servers[@]} -gt 0 ] || servers=(redis valkey)
scripts/setup.sh
cargo build --release --quiet
status=0
for server in "${servers[@]}"; do
  echo
  echo "=== slotcheck test --server $server ==="
  target/release/slotcheck test --server "$server" --masters 3 --clients 20 --duration 30s "$@" || status=$?
done
exit "$status"
