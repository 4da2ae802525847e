#!/usr/bin/env bash
# Sub-recipe throughput and latency of `fab apc` on PostgreSQL, against pgbench running the
# same SQL on the same database: the physical limit of this workload on this machine.
#
#   cargo build --release -p fab && apps/fab/benches/subrecipe.sh
#
# Knobs (environment): DURATION (seconds per measured run, 10), WARMUP (seconds before each,
# 2), CONCURRENCY (closed-loop clients, "16 64"), DATABASE_MAX_CONNECTIONS (fab's pool, fab's
# default 10 when unset), POSTGRES_URL (server, postgres://postgres@127.0.0.1:5432/postgres),
# FAB_BIN (the fab binary, target/release/fab).
#
# The workload is the drill's (crates/orderly-drill/drill.sh): every request a new lot on a new
# thread with its own Idempotency-Key, formula mode. For each concurrency C:
#   fab      a fresh `fab apc` on a fresh database; wrk -t2 -cC keeps C requests in flight
#            (closed loop) for DURATION; wrk's latency histogram gives p50 and p99.
#   pgbench  subrecipe.pgbench (the statements one sub-recipe runs, in the same transactions,
#            with the JSON documents of a real sub-recipe as bound parameters, -M prepared as
#            sqlx does); pgbench -cC -j2 for DURATION; p50 and p99 from its per-transaction log.
# Both count the database's commits and inserted rows per request (pg_stat_database), which
# shows they do the same work. wrk, fab, pgbench and PostgreSQL share the machine's cores.
set -euo pipefail

need() { # command, install hint
  command -v "$1" >/dev/null || { echo "subrecipe.sh needs $1: $2" >&2; exit 1; }
}
need wrk "apt-get install -y wrk"
need pgbench "apt-get install -y postgresql-client"
need psql "apt-get install -y postgresql-client"
need curl "apt-get install -y curl"
need jq "apt-get install -y jq"

here=$(dirname "$(realpath "$0")")
duration=${DURATION:-10}
warmup=${WARMUP:-2}
read -r -a concurrency <<<"${CONCURRENCY:-16 64}"
bin=${FAB_BIN:-target/release/fab}
[ -x "$bin" ] || bin=${CARGO_TARGET_DIR:-target}/release/fab
[ -x "$bin" ] || { echo "no fab binary at $bin: cargo build --release -p fab (or set FAB_BIN)" >&2; exit 1; }
bin=$(realpath "$bin")

pg_url=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=fab_subrecipe_$(date +%s)_$$
out=$(mktemp -d)
fab_pid=
cleanup() {
  if [ -n "$fab_pid" ]; then kill -TERM "$fab_pid" 2>/dev/null || true; wait "$fab_pid" 2>/dev/null || true; fi
  psql "$pg_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT

psql "$pg_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $db" >/dev/null
base=${pg_url%%\?*} query=
[ "$base" != "$pg_url" ] && query=?${pg_url#*\?}
url=${base%/*}/$db$query
token() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
tool=tool-$(token)
engineer=engineer-$(token)
tokens="tool:$tool,engineer:$engineer"
DATABASE_URL=$url "$bin" migrate >"$out/migrate.log" 2>&1 \
  || { cat "$out/migrate.log" >&2; exit 1; }

api= admin=
fab_start() { # starts `fab apc` on the database; sets fab_pid, api, admin
  local log=$out/fab.log n
  : >"$log"
  env -i PATH="$PATH" DATABASE_URL="$url" FAB_TOKENS="$tokens" PORT=0 ADMIN_PORT=0 \
    LOG_FORMAT=json ${DATABASE_MAX_CONNECTIONS:+DATABASE_MAX_CONNECTIONS=$DATABASE_MAX_CONNECTIONS} \
    "$bin" apc >"$log" 2>&1 &
  fab_pid=$!
  admin=
  for n in $(seq 600); do
    kill -0 "$fab_pid" 2>/dev/null || { cat "$log" >&2; echo "fab apc exited" >&2; exit 1; }
    admin=$(jq -Rr 'fromjson? | select(.message // "" | startswith("fab admin listening"))
      | .url' "$log" | head -1) || true
    [ -n "$admin" ] && curl -fs -o /dev/null "$admin/readyz" && break
    sleep 0.05
  done
  api=$(jq -Rr 'fromjson? | select(.message == "fab API listening") | .url' "$log" | head -1) || true
  [ -n "$api" ] || { cat "$log" >&2; echo "fab apc never got ready" >&2; exit 1; }
}
fab_stop() {
  kill -TERM "$fab_pid"
  wait "$fab_pid" || { cat "$out/fab.log" >&2; echo "fab apc did not exit 0" >&2; exit 1; }
  fab_pid=
}
# The database's commits and inserted rows so far (flushed by backends as they exit).
counters() {
  psql "$pg_url" -tAF' ' -c "SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = '$db'"
}

# The controller configuration of the scope, and one sub-recipe whose stored rows give the
# pgbench script its values.
fab_start
curl -fsS -o /dev/null -X POST "$api/v1/apc/configs" -H "Authorization: Bearer $engineer" \
  -H 'Content-Type: application/json' -H "Idempotency-Key: bench-config" --data-binary @- <<'JSON'
{"product": "soc-a", "technology": "N5", "layer": "M1", "sr_limits": {"min": 30.0, "max": 50.0},
 "params": {"kind": {"type": "ewma", "lambda": 0.3}, "target": 45.0, "model_gain": -5.0,
  "process_gain": -5.0, "nominal": 40.0, "feedback_weight": 1.0, "technology_weight": 0.0,
  "outlier_k": 3.5, "initial_sigma": 1.0, "sigma_lambda": 0.05, "max_step": 0.02,
  "deadband": 0.05, "max_consecutive_outliers": 3, "idle_limit": 604800000,
  "feedforward_window": 28800000}}
JSON
curl -fsS -o "$out/sample.json" -X POST "$api/v1/apc/subrecipe" -H "Authorization: Bearer $tool" \
  -H 'Content-Type: application/json' -H "Idempotency-Key: bench-sample" --data-binary @- <<'JSON'
{"lot": {"lot": "LOT-sample-0-0", "thread": {"fab": "fab-1", "tool": "scanner-07", "product": "soc-a",
  "technology": "N5", "layer": "M1", "reticle": "RT-sample-0-0"}, "product_kind": "mobile"},
 "mode": {"mode": "formula"}}
JSON
fab_stop

# The sample's rows, as pgbench -D variables (bound parameters, as fab binds them).
sql() { psql "$url" -v ON_ERROR_STOP=1 -tAc "$1"; }
transitions=$(sql "SELECT count(*) FROM apc_transitions")
[ "$transitions" = 2 ] || {
  echo "a new thread's sub-recipe stored $transitions transitions, subrecipe.pgbench inserts 2: update it" >&2
  exit 1
}
tk=$(sql "SELECT thread_key FROM apc_threads")
vars=(-D "principal=$(sql "SELECT principal FROM idempotency WHERE idem_key = 'bench-sample'")"
  -D "hash=$(sql "SELECT request_hash FROM idempotency WHERE idem_key = 'bench-sample'")"
  -D "status=$(sql "SELECT status FROM idempotency WHERE idem_key = 'bench-sample'")"
  -D "reply=$(sql "SELECT body FROM idempotency WHERE idem_key = 'bench-sample'")"
  -D "tool=scanner-07" -D "scope=$(sql "SELECT scope FROM apc_configs")"
  -D "tk=$tk"
  -D "version=$(sql "SELECT version FROM apc_threads")"
  -D "state=$(sql "SELECT state FROM apc_threads")"
  -D "v1=$(sql "SELECT version FROM apc_transitions ORDER BY version LIMIT 1")"
  -D "t1=$(sql "SELECT transition FROM apc_transitions ORDER BY version LIMIT 1")"
  -D "v2=$(sql "SELECT version FROM apc_transitions ORDER BY version DESC LIMIT 1")"
  -D "t2=$(sql "SELECT transition FROM apc_transitions ORDER BY version DESC LIMIT 1")"
  -D "record=$(sql "SELECT record FROM apc_runs")"
  -D "now=$(sql "SELECT at FROM apc_runs")"
  -D seq=0)

# percentiles FILE: p50 and p99 (µs, nearest rank) of the numbers in FILE.
percentiles() {
  sort -n "$1" | awk '{a[NR]=$1} END {
    if (NR == 0) { print "0 0"; exit }
    i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
    i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
    print a[i50], a[i99] }'
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$2"; } # NAME FILE: NAME=value from the WRK line

rows=()
for c in "${concurrency[@]}"; do
  # fab: a fresh replica, warmed up, then measured.
  before=$(counters)
  fab_start
  wrk -t2 -c"$c" -d"${warmup}s" --timeout 30s -s "$here/subrecipe.lua" "$api" -- "w$c" "$tool" \
    >"$out/wrk-warm.txt"
  wrk -t2 -c"$c" -d"${duration}s" --timeout 30s -s "$here/subrecipe.lua" "$api" -- "m$c" "$tool" \
    >"$out/wrk.txt"
  fab_stop
  after=$(counters)
  for f in wrk-warm wrk; do
    grep -q '^WRK ' "$out/$f.txt" || { cat "$out/$f.txt" >&2; echo "wrk printed no result" >&2; exit 1; }
    [ "$(field errors "$out/$f.txt")" = 0 ] || {
      cat "$out/$f.txt" "$out/fab.log" >&2; echo "fab: failed requests (wrk errors) at -c$c" >&2; exit 1
    }
  done
  n=$(field requests "$out/wrk.txt")
  fab_rps=$(awk -v n="$n" -v us="$(field duration_us "$out/wrk.txt")" 'BEGIN {printf "%.0f", n / us * 1e6}')
  fab_p50=$(field p50_us "$out/wrk.txt")
  fab_p99=$(field p99_us "$out/wrk.txt")
  # Per request, warm-up included (fab's pool flushed its counters when it exited); requests
  # still in flight when wrk stopped are not counted by wrk, hence "about".
  total=$((n + $(field requests "$out/wrk-warm.txt")))
  fab_work=$(awk -v b="$before" -v a="$after" -v n="$total" 'BEGIN {
    split(b, x, " "); split(a, y, " "); printf "%.2f/%.2f", (y[1] - x[1]) / n, (y[2] - x[2]) / n }')

  # pgbench: the same statements, the same concurrency.
  pgbench -n -M prepared -c"$c" -j2 -T"$warmup" "${vars[@]}" -D "p=w$c" \
    -f "$here/subrecipe.pgbench" "$url" >"$out/pgbench-warm.txt" 2>&1 \
    || { cat "$out/pgbench-warm.txt" >&2; exit 1; }
  before=$(counters)
  rm -f "$out"/pgb.*
  pgbench -n -M prepared -c"$c" -j2 -T"$duration" "${vars[@]}" -D "p=m$c" \
    --log --log-prefix="$out/pgb" -f "$here/subrecipe.pgbench" "$url" >"$out/pgbench.txt" 2>&1 \
    || { cat "$out/pgbench.txt" >&2; exit 1; }
  after=$(counters)
  grep -q 'number of failed transactions: 0 ' "$out/pgbench.txt" \
    || ! grep -q 'number of failed transactions' "$out/pgbench.txt" \
    || { cat "$out/pgbench.txt" >&2; echo "pgbench: failed transactions at -c$c" >&2; exit 1; }
  pg_tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out/pgbench.txt")
  pg_tps=$(printf '%.0f' "$pg_tps")
  cat "$out"/pgb.* | awk '{print $3}' >"$out/pgb-latency.txt"
  read -r pg_p50 pg_p99 < <(percentiles "$out/pgb-latency.txt")
  pg_n=$(wc -l <"$out/pgb-latency.txt")
  pg_work=$(awk -v b="$before" -v a="$after" -v n="$pg_n" 'BEGIN {
    split(b, x, " "); split(a, y, " "); printf "%.2f/%.2f", (y[1] - x[1]) / n, (y[2] - x[2]) / n }')

  ratio=$(awk -v f="$fab_rps" -v p="$pg_tps" 'BEGIN {printf "%.2f", f / p}')
  rows+=("$(printf '%5s | %8s %8.2f %8.2f %10s | %8s %8.2f %8.2f %10s | %5s' "$c" \
    "$fab_rps" "$(awk -v v="$fab_p50" 'BEGIN {print v / 1000}')" \
    "$(awk -v v="$fab_p99" 'BEGIN {print v / 1000}')" "$fab_work" \
    "$pg_tps" "$(awk -v v="$pg_p50" 'BEGIN {print v / 1000}')" \
    "$(awk -v v="$pg_p99" 'BEGIN {print v / 1000}')" "$pg_work" "$ratio")")
done

echo "sub-recipe (new lot, new thread), ${duration}s closed loop per run, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%5s | %8s %8s %8s %10s | %8s %8s %8s %10s | %5s\n' \
  clients "fab/s" "p50 ms" "p99 ms" "commits/rows" "pgbench/s" "p50 ms" "p99 ms" "commits/rows" ratio
printf '%s\n' "${rows[@]}"
echo "commits/rows: PostgreSQL commits and inserted rows per request (fab: about, warm-up included)"
