#!/usr/bin/env bash
# The HTTP benchmarks of SPEC §6, on loopback; after the build, about four minutes on an idle
# machine, at most about half an hour on a busy one (see QUIET_WAIT):
#
# 1. HTTP overhead: requests/s of GET /hello ("hello"; the same axum Router in each) served by
#    the benchmark server (benches/server, package orderly-http-bench-server) in its three
#    modes: `bare` (hyper + hyper-util's auto builder in a plain accept loop), `orderly`
#    (HttpServer and Admin at their defaults, tracing-subscriber's JSON lines at INFO on
#    stdout, sent to /dev/null, no metrics recorder) and `telemetry` (the same with
#    orderly-telemetry's Logs and Metrics, as a production service runs). wrk, keep-alive,
#    the servers pinned to core 0 and wrk to core 1.
#    All the servers run at once, each on its own port, and after a 2 s warm-up each the load
#    goes to each in turn: bare, orderly, telemetry, bare, … (ROUNDS rounds of DURATION per
#    server; the modes in MODES, bare first). Target: each ≥ 95 % of bare, read from the
#    median of the same-round ratios (the mean of rounds is shown too).
# 2. The same servers' user-space instructions per request, counted by callgrind over 5 s of the
#    same load: slower, but unlike requests/s it does not move with the machine's load.
# 3. Drain exactness: `cargo bench --bench drain` (see benches/drain.rs). Target: exit within
#    T + 20 ms of the start of a request in flight for T.
#
#   crates/orderly-http/benches/http.sh
#   ROUNDS=3 DURATION=20s CONNECTIONS=64 crates/orderly-http/benches/http.sh
#   MODES="bare telemetry" ACCESS_LOG=off DRAIN=0 crates/orderly-http/benches/http.sh
#
# ACCESS_LOG=info|debug|off is passed to the servers (the access log of the orderly and
# telemetry modes); DRAIN=0 skips step 3.
#
# Before each round it waits (at most QUIET_WAIT=120 s) until the machine is idle, and measures
# a run again (twice at most) when other processes took more than 10 % of a core during it; the
# table shows how much they took. The servers listen on BENCH_PORT (default 18080) and the
# ports after it, two per mode.
#
# Needs wrk (`apt-get install -y wrk`); valgrind for step 2. Not part of the test suite: it
# measures, it does not test.
set -euo pipefail
cd "$(dirname "$0")/../../.."

rounds=${ROUNDS:-10}
read -r -a modes <<<"${MODES:-bare orderly telemetry}"
if [[ ${modes[0]} != bare ]]; then
    echo "MODES must start with bare (the baseline): $MODES" >&2
    exit 1
fi
duration=${DURATION:-3s}
connections=${CONNECTIONS:-32}
port=${BENCH_PORT:-18080}
quiet_wait=${QUIET_WAIT:-120}
last_port=$((port + 2 * ${#modes[@]} - 1))
server=target/release/orderly-http-bench-server

if ! command -v wrk >/dev/null; then
    echo "wrk not found: apt-get update && apt-get install -y wrk" >&2
    exit 1
fi
for p in $(seq "$port" "$last_port"); do
    if ss -Htln "sport = :$p" | grep -q .; then
        echo "port $p is in use (the servers take $port to $last_port); pick another with BENCH_PORT=..." >&2
        exit 1
    fi
done

echo "==> build"
cargo build --release --locked -p orderly-http-bench-server
cargo bench --locked -p orderly-http --bench drain --no-run

# Server on core 0, load generator on core 1, when there are two cores to pin to.
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    on_server=(taskset -c 0)
    on_client=(taskset -c 1)
    pinning="server on core 0, wrk on core 1"
else
    on_server=()
    on_client=()
    pinning="not pinned (fewer than 2 cores or no taskset)"
fi

scratch=$(mktemp -d)
cleanup() {
    for pid in "${all_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

# Starts the server in mode $1 on port $2 (admin port $2 + 1), under the command in $3..., if
# any; waits (at most 20 s) until it answers. Sets server_pid; adds it to all_pids.
all_pids=()
start_server() {
    local mode=$1 on=$2
    shift 2
    PORT=$on ADMIN_PORT=$((on + 1)) SHUTDOWN_DELAY=0s \
        "${on_server[@]}" "$@" "$server" "$mode" >/dev/null 2>"$scratch/$mode.err" &
    server_pid=$!
    all_pids+=("$server_pid")
    for _ in $(seq 200); do
        if curl -sf -o /dev/null --max-time 1 "$(url_of "$on")"; then return; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "the $mode server did not answer $(url_of "$on"):" >&2
    cat "$scratch/$mode.err" >&2
    exit 1
}

stop_server() {
    kill -TERM "$1"
    wait "$1" || true # the bare server dies of SIGTERM (143)
}

url_of() { echo "http://127.0.0.1:$1/hello"; }

# CPU time in clock ticks: of the machine (busy, total), of one process, and of this script's
# waited-for children (wrk).
machine_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
process_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
children_cpu() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }

# Waits until the machine has been idle (>= 90 %) for two samples of 2 s, at most $quiet_wait s:
# other builds on the machine take the CPU the servers are measured on.
wait_quiet() {
    local deadline=$((SECONDS + quiet_wait)) calm=0 busy0 total0 busy1 total1
    while ((calm < 2)); do
        if ((SECONDS >= deadline)); then
            echo "    (not idle after ${quiet_wait}s; measuring anyway: see the others column)"
            return
        fi
        read -r busy0 total0 < <(machine_cpu)
        sleep 2
        read -r busy1 total1 < <(machine_cpu)
        if ((100 * (busy1 - busy0) <= 10 * (total1 - total0))); then
            calm=$((calm + 1))
        else
            calm=0
        fi
    done
}

# Loads the server on port $2 for $1.
load() {
    timeout 120 "${on_client[@]}" wrk -t1 -c"$connections" -d"$1" --latency "$(url_of "$2")"
}

# One measured run of the server in mode $2, as run number $1: appends "run mode requests/s p50
# p99 errors server-CPU% CPU/request-us others%" to $results.
measure() {
    local busy0 total0 busy1 total1 server0 server1 wrk0 wrk1 pid=${pids[$2]}
    read -r busy0 total0 < <(machine_cpu)
    server0=$(process_cpu "$pid")
    wrk0=$(children_cpu)
    load "$duration" "${ports[$2]}" >"$scratch/wrk.out"
    read -r busy1 total1 < <(machine_cpu)
    server1=$(process_cpu "$pid")
    wrk1=$(children_cpu)
    # wrk: "123456 requests in 10.00s, ...", "Requests/sec: 12345.67", "50%  1.23ms",
    # "Non-2xx or 3xx responses: 3", "Socket errors: connect 0, read 0, write 0, timeout 0".
    # The server's CPU time per request depends little on how much CPU others took.
    awk -v run="$1" -v mode="$2" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" \
        -v busy=$((busy1 - busy0)) -v total=$((total1 - total0)) \
        -v server=$((server1 - server0)) -v wrk=$((wrk1 - wrk0)) '
        / requests in / { requests = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = $2 }
        $1 == "99%" { p99 = $2 }
        /^  Non-2xx/ { errors += $NF }
        /Socket errors:/ { for (i = 4; i <= NF; i += 2) errors += $i }
        END {
            per_core = total / cores
            printf "%s %s %s %s %s %d %.0f %.2f %.0f\n", run, mode, rps, p50, p99, errors,
                100 * server / per_core, 1e6 * server / hz / requests,
                100 * (busy - server - wrk) / per_core
        }
    ' "$scratch/wrk.out" >"$scratch/run"
}

echo
echo "==> throughput: wrk -t1 -c$connections -d$duration --latency; $pinning"
echo "    modes: ${modes[*]}, all started at once, each on its own port; ACCESS_LOG=${ACCESS_LOG:-(default)}"
# Every server runs throughout, and the load goes to each in turn: the runs of one round are
# seconds apart, with no start in between. This VM's speed drifts by tens of per cent from one
# minute to the next (other guests on its host); short alternating runs see the same drift.
declare -A pids ports
next_port=$port
for mode in "${modes[@]}"; do
    start_server "$mode" "$next_port"
    pids[$mode]=$server_pid
    ports[$mode]=$next_port
    next_port=$((next_port + 2))
    load 2s "${ports[$mode]}" >/dev/null
done
echo "    load before: $(uptime)"
results="$scratch/results"
run=0
for _ in $(seq "$rounds"); do
    wait_quiet
    for mode in "${modes[@]}"; do
        run=$((run + 1))
        # A run during which others took more than 10 % of a core is measured again (twice at
        # most): other benchmarks on the machine alternate too, and could fall on one mode only.
        for attempt in 1 2 3; do
            measure "$run" "$mode"
            others=$(awk '{ print $9 }' "$scratch/run")
            if ((others <= 10)) || ((attempt == 3)); then break; fi
            echo "    run $run ($mode) disturbed: others took ${others} % of a core; again"
        done
        tee -a "$results" <"$scratch/run"
    done
done
echo "    load after:  $(uptime)"
for mode in "${modes[@]}"; do stop_server "${pids[$mode]}"; done

echo
awk '
    BEGIN {
        printf "%-4s %-9s %11s %9s %9s %7s %11s %12s %7s\n", "run", "server", "requests/s",
            "p50", "p99", "errors", "server CPU", "CPU/request", "others"
    }
    {
        printf "%-4s %-9s %11.0f %9s %9s %7d %10d%% %9.2f us %6d%%\n", $1, $2, $3, $4, $5, $6,
            $7, $8, $9
        failed += $6
        if ($2 == "bare") { bare_rps = $3; bare_cpu = $8 }
        else {
            if (!($2 in seen)) { seen[$2] = 1; order[++modes] = $2 }
            by_rps[$2] = by_rps[$2] sprintf(" %.1f %%", 100 * $3 / bare_rps)
            ratio[$2, ++rounds[$2]] = 100 * $3 / bare_rps
            by_cpu[$2] = by_cpu[$2] sprintf(" %.1f %%", 100 * bare_cpu / $8)
        }
        rps_sum[$2] += $3; cpu_sum[$2] += $8; n[$2]++
    }
    END {
        print "server CPU: % of one core; CPU/request: the server process\x27s user + system time per"
        print "request; others: CPU time used by other processes during the run, % of one core"
        bare = rps_sum["bare"] / n["bare"]; bare_c = cpu_sum["bare"] / n["bare"]
        for (i = 1; i <= modes; i++) {
            m = order[i]
            print m " / bare (same round), requests/s:" by_rps[m] "; CPU per request (bare / " m "):" by_cpu[m]
            printf "mean requests/s: bare %.0f, %s %.0f; %s / bare = %.1f %% (target >= 95 %%)\n",
                bare, m, rps_sum[m] / n[m], m, 100 * rps_sum[m] / n[m] / bare
            k = rounds[m]
            for (a = 1; a <= k; a++) sorted[a] = ratio[m, a]
            for (a = 2; a <= k; a++) for (b = a; b > 1 && sorted[b - 1] > sorted[b]; b--) {
                t = sorted[b]; sorted[b] = sorted[b - 1]; sorted[b - 1] = t
            }
            median = (k % 2) ? sorted[(k + 1) / 2] : (sorted[k / 2] + sorted[k / 2 + 1]) / 2
            printf "median of the same-round ratios: %s / bare = %.1f %% (%d rounds)\n", m, median, k
            printf "mean CPU per request: bare %.2f us, %s %.2f us; bare / %s = %.1f %%\n",
                bare_c, m, cpu_sum[m] / n[m], m, 100 * bare_c / (cpu_sum[m] / n[m])
        }
        if (failed > 0) printf "WARNING: %d failed requests\n", failed
    }
' "$results"

echo
echo "==> user-space instructions per request (callgrind: the same on a busy machine)"
if command -v valgrind >/dev/null; then
    declare -A per_request
    for mode in "${modes[@]}"; do
        start_server "$mode" "$port" valgrind --tool=callgrind \
            --callgrind-out-file="$scratch/callgrind.$mode"
        load 2s "$port" >/dev/null
        callgrind_control --zero "$server_pid" >/dev/null 2>&1
        load 5s "$port" >"$scratch/wrk.out"
        callgrind_control --dump "$server_pid" >/dev/null 2>&1
        stop_server "$server_pid"
        requests=$(awk '/ requests in / { print $1 }' "$scratch/wrk.out")
        instructions=$(callgrind_annotate "$scratch/callgrind.$mode.1" |
            awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
        per_request[$mode]=$((instructions / requests))
        printf '%-8s %9d instructions/request (%d requests)\n' "$mode" "${per_request[$mode]}" \
            "$requests"
    done
    for mode in "${modes[@]:1}"; do
        echo "$mode / bare = $((100 * per_request[$mode] / per_request[bare])) %"
    done
else
    echo "    skipped: no valgrind (apt-get install -y valgrind)"
fi

if [[ ${DRAIN:-1} == 0 ]]; then exit 0; fi
echo
echo "==> drain exactness"
wait_quiet
echo "    load before: $(uptime)"
cargo bench --locked -p orderly-http --bench drain
echo "    load after:  $(uptime)"
