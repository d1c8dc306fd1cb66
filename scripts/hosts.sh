#!/usr/bin/env bash
# A test bed of "hosts" on one machine, for `slotcheck ... --hosts FILE` (README: "Testing a cluster on other
# machines"). Run as root.
#
#   scripts/hosts.sh up N DIR [--server redis|valkey] [--binary PATH] [--port PORT]
#   scripts/hosts.sh down DIR
#
# `up` makes N network namespaces `sc<tag>-<i>` on one bridge `scbr<tag>` (tag: 4 hex digits of DIR's path), each a
# host with its own address 198.18.<net>.<i> (198.18.0.0/15 is reserved for network benchmarks, RFC 2544; never
# 10/8, 172.16/12 or 192.168/16), its own sshd (Debian's openssh-server, a host key and a client key generated in
# DIR/ssh) and its own server binary to start (nothing is started but sshd: `slotcheck cluster up --hosts` starts
# the servers over SSH). The machine itself is the control node at 198.18.<net>.254 on the bridge. It writes
# DIR/hosts.toml, the hosts file for `--hosts`, and DIR/bed.env, what `down` removes.
#
# `down` removes everything `up` made: server and sshd processes (by the pids in DIR), SSH control masters of the
# bed's key, the namespaces (with every iptables rule inside them), veths and the bridge. Both are idempotent: `up`
# on a DIR that holds a bed runs `down` first; `down` on a DIR without one does nothing.
set -euo pipefail

die() { printf 'hosts.sh: error: %s\n' "$*" >&2; exit 2; }
say() { printf 'hosts.sh: %s\n' "$*" >&2; }

usage() { sed -n '5,6p' "$0" | sed 's/^# *//' >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, a bridge, sshd)"

# The bed's tag: 4 hex digits of DIR's absolute path, so beds in different DIRs never share a name.
tag_of() { printf '%s' "$1" | md5sum | cut -c1-4; }

# The third octet of a 198.18.x.0/24 no interface of this machine uses yet.
free_net() {
  local x
  for x in $(seq 0 255); do
    if ! ip -o -4 addr show | grep -q " 198\.18\.$x\."; then echo "$x"; return; fi
  done
  die "no free /24 left in 198.18.0.0/16"
}

# Kills the process whose pid is in file $1 (if it runs), SIGCONT first (a paused server ignores SIGTERM), then
# SIGTERM, then SIGKILL after 3 s.
kill_pidfile() {
  local file="$1" pid i
  [ -s "$file" ] || return 0
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

down() {
  local dir="$1" ns pid
  [ -f "$dir/bed.env" ] || { say "no bed in $dir"; return 0; }
  # shellcheck disable=SC1091
  . "$dir/bed.env"
  for pidfile in "$dir"/host*/server.pid "$dir"/host*/sshd.pid; do
    [ -e "$pidfile" ] && kill_pidfile "$pidfile"
  done
  # The veths first, by name: a namespace's own are otherwise removed by the kernel some time after
  # `ip netns delete` returns.
  for link in $(ip -o link show | grep -o "scv$BED_TAG[0-9]*" | sort -u); do
    ip link delete "$link" 2>/dev/null || true
  done
  # Whatever still runs inside a namespace (a server started by hand, an sshd session) dies with it.
  for ns in $BED_NAMESPACES; do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns delete "$ns" 2>/dev/null || true
    fi
  done
  ip link delete "$BED_BRIDGE" 2>/dev/null || true
  # SSH control masters opened with the bed's key (by slotcheck or by hand) would outlive it.
  for pid in $(pgrep -f -- "-i $dir/ssh/id_ed25519" 2>/dev/null || true); do kill -TERM "$pid" 2>/dev/null || true; done
  rm -f "$dir/bed.env" "$dir/hosts.toml"
  rm -rf "$dir"/host* "$dir/ssh"
  say "removed bed $BED_TAG ($BED_BRIDGE, $BED_NAMESPACES)"
}

# Writes one host's sshd_config: only the bed's client key, only on the host's own address.
sshd_config() {
  local dir="$1" i="$2" addr="$3"
  cat >"$dir/host$i/sshd_config" <<EOF
ListenAddress $addr
Port 22
HostKey $dir/ssh/host_ed25519
PidFile $dir/host$i/sshd.pid
AuthorizedKeysFile $dir/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 50
MaxStartups 50
LogLevel ERROR
EOF
}

# The server's start command line on host i: daemonized, with a pid file, AOF on (slotcheck's safe default).
start_line() {
  local binary="$1" addr="$2" port="$3" host_dir="$4"
  printf '%s --bind %s --port %s --cluster-enabled yes --cluster-config-file %s/data/nodes.conf ' \
    "$binary" "$addr" "$port" "$host_dir"
  printf -- '--cluster-node-timeout 2000 --dir %s/data --logfile %s/server.log --pidfile %s/server.pid ' \
    "$host_dir" "$host_dir" "$host_dir"
  printf -- '--daemonize yes --appendonly yes --appendfsync always --save "" --protected-mode no'
}

up() {
  local n="$1" dir="$2" server="$3" binary="$4" port="$5"
  [[ "$n" =~ ^[1-9][0-9]?$ ]] && [ "$n" -le 50 ] || die "N must be 1..50, got $n"
  command -v /usr/sbin/sshd >/dev/null || die "sshd not found: apt-get install -y openssh-server (scripts/setup.sh)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  down "$dir" >/dev/null 2>&1
  local tag net bridge namespaces="" i ns veth addr
  tag="$(tag_of "$dir")"
  net="$(free_net)"
  bridge="scbr$tag"
  for i in $(seq 1 "$n"); do namespaces+="sc$tag-$i "; done
  cat >"$dir/bed.env" <<EOF
BED_TAG=$tag
BED_NET=$net
BED_BRIDGE=$bridge
BED_NAMESPACES="${namespaces% }"
EOF
  trap 'say "up failed; removing what it made"; down "$dir"' ERR
  ip link add "$bridge" type bridge
  ip addr add "198.18.$net.254/24" dev "$bridge"
  ip link set "$bridge" up
  mkdir -p "$dir/ssh" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C "slotcheck-bed-host" -f "$dir/ssh/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C "slotcheck-bed-client" -f "$dir/ssh/id_ed25519"
  cp "$dir/ssh/id_ed25519.pub" "$dir/ssh/authorized_keys"
  : >"$dir/ssh/known_hosts"
  {
    echo "# slotcheck hosts file written by scripts/hosts.sh for the bed in $dir"
    echo "server = \"$server\""
    echo "client_addr = \"198.18.$net.254\""
  } >"$dir/hosts.toml"
  for i in $(seq 1 "$n"); do
    ns="sc$tag-$i"
    veth="scv$tag$i"
    addr="198.18.$net.$i"
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$bridge" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "$dir/host$i/data"
    sshd_config "$dir" "$i" "$addr"
    ip netns exec "$ns" /usr/sbin/sshd -f "$dir/host$i/sshd_config"
    echo "$addr $(cut -d' ' -f1,2 "$dir/ssh/host_ed25519.pub")" >>"$dir/ssh/known_hosts"
    cat >>"$dir/hosts.toml" <<EOF

[[host]]
name = "n$i"
addr = "$addr:$port"
start = '$(start_line "$binary" "$addr" "$port" "$dir/host$i")'
pid_file = "$dir/host$i/server.pid"
data_dir = "$dir/host$i/data"
log_file = "$dir/host$i/server.log"
ssh = { user = "root", host = "$addr", port = 22, identity = "$dir/ssh/id_ed25519", known_hosts = "$dir/ssh/known_hosts" }
EOF
  done
  trap - ERR
  # Every sshd answers before we return.
  for i in $(seq 1 "$n"); do
    local tries=0
    until ssh -q -o BatchMode=yes -o ConnectTimeout=2 -o UserKnownHostsFile="$dir/ssh/known_hosts" \
      -o StrictHostKeyChecking=yes -i "$dir/ssh/id_ed25519" "root@198.18.$net.$i" true 2>/dev/null; do
      tries=$((tries + 1))
      [ "$tries" -lt 50 ] || { down "$dir"; die "sshd on 198.18.$net.$i does not answer"; }
      sleep 0.1
    done
  done
  say "bed $tag: $n hosts 198.18.$net.1-$n on $bridge, control node 198.18.$net.254; hosts file $dir/hosts.toml"
  echo "$dir/hosts.toml"
}

cmd="${1:-}"
case "$cmd" in
  up)
    [ $# -ge 3 ] || usage
    n="$2"; dir="$3"; shift 3
    server=redis; binary=""; port=6379
    while [ $# -gt 0 ]; do
      case "$1" in
        --server) server="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        *) usage ;;
      esac
    done
    case "$server" in redis|valkey) ;; *) die "--server must be redis or valkey" ;; esac
    if [ -z "$binary" ]; then
      binary="$(command -v "$server-server" || true)"
      [ -n "$binary" ] || die "$server-server not on PATH: give --binary PATH"
    fi
    [ -x "$binary" ] || die "$binary is not executable"
    up "$n" "$dir" "$server" "$binary" "$port"
    ;;
  down)
    [ $# -eq 2 ] || usage
    [ -d "$2" ] || { say "no directory $2"; exit 0; }
    down "$(cd "$2" && pwd)"
    ;;
  *) usage ;;
esac
