#!/usr/bin/env bash
# The detection matrix: every injected client and server bug and every scenario against Redis 7.0 and
# Valkey 9.1, several seeds each, plus clean runs (migrations only; pauses shorter than the node
# timeout; Valkey's atomic migration), then a table: case, server, runs, detected, anomaly
# classes, false alarms.
#
#   scripts/matrix.sh                      # everything: 3 seeds per case, 10 per clean case
#   SEEDS=1 CLEAN_SEEDS=2 scripts/matrix.sh
#   SERVERS=valkey CASES="bug:stale-moved clean:atomic" scripts/matrix.sh
#
# Environment: SERVERS (default "redis valkey"), SEEDS, CLEAN_SEEDS, DURATION (default 15s;
# scenarios fix their own), CASES (names from the table below; default all), OUT (default
# store/matrix/<time>). Runs the release binary (built first). Each run's directory holds its
# history, results.json and detection.json; OUT/runs.tsv has one line per run.
#
# "detected" counts runs whose detection.json names the expected class; for a scenario only runs
# in which its precondition occurred count (the column says in how many it did). "false alarms"
# counts clean runs with an invalid verdict or any anomaly class.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=${SERVERS:-"redis valkey"}
SEEDS=${SEEDS:-3}
CLEAN_SEEDS=${CLEAN_SEEDS:-10}
DURATION=${DURATION:-15s}
OUT=${OUT:-store/matrix/$(date +%Y%m%dT%H%M%S)}

migrations="--nemesis migrate --migrate-interval 1500ms"
# Pauses of at most 1.5 s (the node timeout is 2 s), one every ~3 s.
pauses="--nemesis-interval 3s --fault-hold 1500ms"

# case name | servers it applies to | arguments
declare -A ARGS=(
  [bug:ask-without-asking]="--client-bug ask-without-asking $migrations"
  [bug:ask-as-moved]="--client-bug ask-as-moved $migrations"
  [bug:retry-without-info]="--client-bug retry-without-info --nemesis pause $pauses --timeout 250ms"
  [bug:stale-moved]="--client-bug stale-moved $migrations"
  [bug:write-to-replica]="--client-bug write-to-replica --replicas 1 $migrations"
  [bug:no-asking-in-multi]="--client-bug no-asking-in-multi --workload rw-register --slots 4 $migrations"
  [bug:tryagain-as-fail-after-apply]="--client-bug tryagain-as-fail-after-apply --slots 4 $migrations"
  [scenario:partitioned-master]="--scenario partitioned-master"
  [scenario:restart-empty]="--scenario restart-empty"
  [scenario:abort-strands]="--scenario abort-strands"
  [scenario:finalize-early]="--scenario finalize-early"
  # Redis 7.0 must detect it (redis/redis#6339); Valkey (fixed in 8.0) must not: 0/n is right there.
  [scenario:failover-mid-migration]="--scenario failover-mid-migration"
  [clean:migrate]="$migrations"
  [clean:pause]="--nemesis migrate,pause --migrate-interval 1500ms $pauses"
  [clean:atomic]="--nemesis atomic --migrate-interval 1500ms"
  # Server-side bugs injected by the fault proxy in front of every node (src/harness/proxy/bug.rs).
  [server:lost-write]="--server-bug lost-write $migrations"
  [server:stale-read]="--server-bug stale-read $migrations"
  [server:duplicate-write]="--server-bug duplicate-write $migrations"
  [server:moved-after-apply]="--server-bug moved-after-apply $migrations"
)
ORDER="bug:ask-without-asking bug:ask-as-moved bug:retry-without-info bug:stale-moved
  bug:write-to-replica bug:no-asking-in-multi bug:tryagain-as-fail-after-apply server:lost-write server:stale-read server:duplicate-write
  server:moved-after-apply scenario:partitioned-master scenario:restart-empty scenario:abort-strands
  scenario:finalize-early scenario:failover-mid-migration clean:migrate clean:pause clean:atomic"
CASES=${CASES:-$ORDER}

applies() { # case server
  case "$1" in
    clean:atomic) [ "$2" = valkey ] ;;
    *) true ;;
  esac
}

target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p slotcheck >&2
bin="$target/release/slotcheck"
mkdir -p "$OUT"
tsv="$OUT/runs.tsv"
printf 'case\tserver\tseed\texit\tverdict\texpected\tdetected\tprecondition\tclasses\tfalse_alarm\tseconds\n' >"$tsv"

for case in $CASES; do
  [ -n "${ARGS[$case]+x}" ] || { echo "matrix.sh: unknown case $case" >&2; exit 254; }
  seeds=$SEEDS
  [ "${case%%:*}" = clean ] && seeds=$CLEAN_SEEDS
  for server in $SERVERS; do
    applies "$case" "$server" || continue
    for seed in $(seq 1 "$seeds"); do
      dir="$OUT/${case/:/-}/$server/$seed"
      mkdir -p "$(dirname "$dir")"
      start=$(date +%s)
      # shellcheck disable=SC2086 # the case's arguments are words
      set +e
      "$bin" test --server "$server" --seed "$seed" --duration "$DURATION" --output "$dir" \
        ${ARGS[$case]} >"$dir.out" 2>&1
      code=$?
      set -e
      secs=$(($(date +%s) - start))
      if [ -f "$dir/detection.json" ]; then
        jq -r --arg c "$case" --arg s "$server" --arg n "$seed" --arg x "$code" --arg t "$secs" '
          [$c, $s, $n, $x, .verdict, (.expected // "-"),
           (if .detected == null then "-" else (.detected | tostring) end),
           (if .precondition == null then "-" else (.precondition.occurred | tostring) end),
           ((.classes | to_entries | map("\(.key)=\(.value)") | join(",")) | if . == "" then "-" else . end),
           ((.client_bug == null and .server_bug == null and .scenario == null
             and (.verdict == "invalid" or (.classes | length) > 0)) | tostring),
           $t] | @tsv' "$dir/detection.json" >>"$tsv"
      else
        printf '%s\t%s\t%s\t%s\terror\t-\t-\t-\t-\t-\t%s\n' "$case" "$server" "$seed" "$code" "$secs" >>"$tsv"
      fi
      tail -n 1 "$tsv" | cut -f1-10 >&2
    done
  done
done

python3 - "$tsv" <<'EOF'
import csv, sys
from collections import OrderedDict, Counter
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = OrderedDict()
for r in rows:
    groups.setdefault((r["case"], r["server"]), []).append(r)
print(f"{'case':<30} {'server':<7} {'runs':>4}  {'detected':<16} {'anomaly classes (runs)':<44} false alarms")
for (case, server), rs in groups.items():
    runs, errors = len(rs), sum(r["verdict"] == "error" for r in rs)
    kind = case.split(":")[0]
    seen = Counter()
    for r in rs:
        for c in r["classes"].split(","):
            if c != "-":
                seen[c.split("=")[0]] += 1
    classes = ", ".join(f"{c} ({n})" for c, n in seen.most_common()) or "none"
    if kind == "clean":
        detected, alarms = "-", str(sum(r["false_alarm"] == "true" for r in rs))
    elif kind == "scenario":
        met = [r for r in rs if r["precondition"] == "true"]
        hit = sum(r["detected"] == "true" for r in met)
        detected, alarms = f"{hit}/{len(met)} (pre {len(met)}/{runs})", "-"
    else:
        hit = sum(r["detected"] == "true" for r in rs)
        detected, alarms = f"{hit}/{runs}", "-"
    if errors:
        detected += f" [{errors} errors]"
    print(f"{case:<30} {server:<7} {runs:>4}  {detected:<16} {classes:<44} {alarms}")
EOF
echo "runs: $tsv" >&2
