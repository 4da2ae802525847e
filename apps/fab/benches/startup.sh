#!/usr/bin/env bash
# `fab all` exec → first /readyz 200, and the idle RSS of `fab apc`.
#
#   cargo build --release -p fab && apps/fab/benches/startup.sh [runs]
#
# Each run starts `fab all` in a fresh empty directory (so the SQLite file is created and
# migrated: the cold embedded default) and polls /readyz with curl every millisecond; the
# figure includes up to one poll interval and curl's own start. Then the same directory again
# (warm: file exists, nothing to migrate). Idle RSS: `fab apc` on PostgreSQL ($POSTGRES_URL),
# read from /proc after it has been ready for a second.
set -euo pipefail
runs=${1:-10}
bin=${FAB_BIN:-target/release/fab}
[ -x "$bin" ] || bin=${CARGO_TARGET_DIR:-target}/release/fab
bin=$(realpath "$bin")
port=$((20000 + RANDOM % 20000))
admin=$((port + 1))

measure() { # dir → ms
  local dir=$1 start end pid
  start=$(date +%s%N)
  (cd "$dir" && exec env -i PORT=$port ADMIN_PORT=$admin LOG_FORMAT=json "$bin" all >/dev/null 2>&1) &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz"; do
    kill -0 $pid 2>/dev/null || { echo "fab exited before it was ready" >&2; exit 1; }
    sleep 0.001
  done
  end=$(date +%s%N)
  kill -TERM $pid; wait $pid || true
  echo $(((end - start) / 1000))
}

cold=(); warm=()
for _ in $(seq "$runs"); do
  dir=$(mktemp -d)
  cold+=("$(measure "$dir")")
  warm+=("$(measure "$dir")")
  rm -rf "$dir"
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "min %.1f ms, median %.1f ms, max %.1f ms (n=%d)\n", a[1]/1000, a[int((NR+1)/2)]/1000, a[NR]/1000, NR}'; }
echo "fab all exec → /readyz 200, cold (new SQLite file, migrated): $(stats "${cold[@]}")"
echo "fab all exec → /readyz 200, warm (existing file):             $(stats "${warm[@]}")"

base=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=fab_bench_$$
psql "$base" -qc "CREATE DATABASE $db" >/dev/null
url="${base%/*}/$db"
DATABASE_URL=$url "$bin" migrate >/dev/null
env -i DATABASE_URL="$url" FAB_TOKENS=tool:bench-token-1 PORT=$port ADMIN_PORT=$admin "$bin" apc >/dev/null 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz"; do sleep 0.01; done
sleep 1
echo "fab apc idle RSS (PostgreSQL, ready): $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
kill -TERM $pid; wait $pid || true
psql "$base" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
