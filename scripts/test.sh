#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the servers, then formatting, lints and every
# test (unit, conformance, and end-to-end against real Redis 7.0 and Valkey 9.1 clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# setup.sh installed the client libraries under test: their tests must run, not skip.
export SLOTCHECK_REQUIRE_CLIENTS=1
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Live server processes (zombies left to a PID 1 that does not reap them are dead and not counted).
servers() {
  ps -eo stat=,comm= | awk '$1 !~ /^Z/ && ($2 == "redis-server" || $2 == "valkey-server" || $2 == "pika")' | wc -l
}
before="$(servers)"
# tests/remote.rs lives on its own namespace bed (its own addresses, sshds and iptables, nothing on
# loopback) and mostly waits on its runs: it runs beside the rest, which skip it, so the suite's
# wall time stays within CI's budget. Its output follows the rest's.
cargo test --workspace --no-run -q
remote_bin="$(cargo test --test remote --no-run 2>&1 | sed -n 's/.*Executable tests\/remote.rs (\(.*\))/\1/p')"
if [ -z "$remote_bin" ]; then
  echo "test.sh: could not find the tests/remote.rs binary" >&2
  exit 1
fi
remote_log="$(mktemp)"
# The test binary itself, not a second cargo, which would wait for the first one's lock.
"$remote_bin" --test-threads=1 "$@" >"$remote_log" 2>&1 &
remote_pid=$!
rest=0
cargo test --workspace -- --test-threads=2 --skip remote_hosts_ "$@" || rest=$?
remote=0
wait "$remote_pid" || remote=$?
echo "test.sh: tests/remote.rs (run beside the rest):"
cat "$remote_log"
rm -f "$remote_log"
if [ "$rest" -ne 0 ] || [ "$remote" -ne 0 ]; then
  exit 1
fi
# No server process may outlive the suite (each test also checks its own pids).
after="$(servers)"
if [ "$after" -gt "$before" ]; then
  echo "test.sh: $((after - before)) server process(es) outlived the suite:" >&2
  ps -eo pid=,stat=,args= | awk '$2 !~ /^Z/ && $3 ~ /((redis|valkey)-server|pika)/' >&2
  exit 1
fi
# PikiwiDB has no package to install: its tests run only when given a binary. Say so plainly,
# since cargo hides a passing test's own "skipped" line.
if [ -z "${SLOTCHECK_PIKIWIDB_SERVER:-}" ]; then
  echo "test.sh: the PikiwiDB tests (tests/pika.rs, tests/pika_run.rs, workloads/tests/codis_router.rs)" \
    "were SKIPPED: set SLOTCHECK_PIKIWIDB_SERVER to a pika 4.0 binary to run them"
fi
