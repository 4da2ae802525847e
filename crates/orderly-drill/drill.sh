#!/usr/bin/env bash
# The rolling-update drill, from the command line (see crates/orderly-drill/README.md).
#
#   crates/orderly-drill/drill.sh short   CI (well under 2 minutes): a rolling restart of 3
#                                         `fab apc` replicas under sub-recipe load, 0 failed
#                                         requests expected and every answered run in
#                                         PostgreSQL, and the late-propagation control on
#                                         `fab apc` (failures expected); the same rolling
#                                         restart of the example replicas; then both negative
#                                         controls on them, failures expected.
#   crates/orderly-drill/drill.sh long    10 rolling restarts of 3 `fab apc` replicas under
#                                         sustained sub-recipe load (FAB_RATE a second, default
#                                         200), every answered run in PostgreSQL; then 10 of 3
#                                         example replicas under 1000 requests/s, in three
#                                         client modes: pooled HTTP/1.1, fresh HTTP/1.1
#                                         connections, pooled HTTP/2 end to end. 0 failed
#                                         requests expected in each.
#
# Both modes then run the queue drill (`orderly-drill queue`) on the local RabbitMQ and
# PostgreSQL (AMQP_URL, POSTGRES_URL or DATABASE_URL): rolling restarts of consumer replicas
# under sustained publishing (every confirmed message's effect exactly once), SIGKILLs (nothing
# lost, duplicates within the in-flight bound), and the negative control, a consumer that
# acknowledges before its effect is durable, which must lose messages. The replicas are
# `fab fdc` consuming FDC sample batches (each message a batch of one sample on its own tool;
# its effect a row of fab's own `fdc_batches`, whose `deliveries` count shows a duplicate; the
# drill's database prepared by fab-fdc-setup.sh: `fab migrate` and released FDC limits); the
# negative control runs orderly-amqp's amqp_zero_loss_consumer example with ACK_BEFORE_EFFECT=1.
# short: on RabbitMQ, 3,000 messages at 1,000/s, 2 restarts or 3 kills of `fab fdc`, then the
# control (5,000 messages). long: `fab fdc` on RabbitMQ and on NATS JetStream (NATS_URL), 30,000 messages at
# 1,000/s, 10 restarts or 10 kills each; then the zero-loss examples: 60,000 at 2,000/s on
# RabbitMQ, 30,000 at 1,000/s on NATS, 10 restarts or 10 kills, and both negative controls. The
# NATS short drills of the examples are in `cargo test -p orderly-drill` (tests/it/queue.rs).
#
# PROFILE=debug|release (default: debug for short, release for long); REPLICA_CMD replaces the
# example replica; QUEUE_REPLICA_CMD and NATS_QUEUE_REPLICA_CMD the examples' consumers in the
# long queue drills (default: orderly-amqp's amqp_zero_loss_consumer and orderly-nats'
# nats_zero_loss_consumer); OUT is where the JSON reports and work directories go (default: a
# new temporary directory); POSTGRES_URL is the server the `fab apc` drills get a database of
# their own on (default postgres://postgres@127.0.0.1:5432/postgres; dropped at exit). Exit
# status 0 when every drill met its expectation.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=${1:-short}
case "$mode" in
  short) profile=${PROFILE:-debug} ;;
  long) profile=${PROFILE:-release} ;;
  *) echo "usage: $0 short|long" >&2; exit 2 ;;
esac
flag=(); [ "$profile" = release ] && flag=(--release)
# Every binary and example of the workspace at once, with the features `cargo test
# --workspace --all-features` unifies: after the test suite this builds nothing new, where
# per-package builds would each compile the dependency tree again with other features.
cargo build "${flag[@]}" --locked --workspace --all-features --bins --examples
bin=${CARGO_TARGET_DIR:-target}/$profile
replica=${REPLICA_CMD:-$bin/examples/01_replica}
no_drain=$bin/examples/02_no_drain_replica
consumer=${QUEUE_REPLICA_CMD:-$bin/examples/amqp_zero_loss_consumer}
# The negative control's consumer: the same example, acknowledging before its effect.
bad_consumer="env ACK_BEFORE_EFFECT=1 $bin/examples/amqp_zero_loss_consumer"
nats_consumer=${NATS_QUEUE_REPLICA_CMD:-$bin/examples/nats_zero_loss_consumer}
nats_bad_consumer="env ZERO_LOSS_ACKNOWLEDGE=before-effect $bin/examples/nats_zero_loss_consumer"
out=${OUT:-$(mktemp -d -t orderly-drill-XXXXXX)}
mkdir -p "$out"
echo "reports in $out"

failed=0
# queue NAME ARGS...: one queue drill, like `drill`.
queue() {
  local name=$1; shift
  printf '\n==> %s\n' "$name"
  if "$bin/orderly-drill" queue --work-dir "$out/$name" --report "$out/$name.json" "$@" \
      2>"$out/$name.log"; then
    :
  else
    echo "!!! $name did not meet its expectation (exit $?); log: $out/$name.log"
    failed=1
  fi
}

# drill NAME ARGS...: one drill, its summary on stdout, its log in $out/NAME.log.
drill() {
  local name=$1; shift
  printf '\n==> %s\n' "$name"
  if "$bin/orderly-drill" --work-dir "$out/$name" --report "$out/$name.json" \
      --records "$out/$name.jsonl" "$@" \
      2>"$out/$name.log"; then
    :
  else
    echo "!!! $name did not meet its expectation (exit $?); log: $out/$name.log"
    failed=1
  fi
}

# --- fab apc -------------------------------------------------------------------------------------
# fab_setup: builds `fab`, creates a database for this drill (dropped at exit), migrates it with
# `fab migrate`, creates the controller configuration through a temporary `fab apc`, and leaves
# in fab_args the drill options for `fab apc` replicas under sub-recipe load: each request a new
# lot on a new thread (`{id}` is the request's drill id), its own Idempotency-Key.
pg_url=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
fab_db=
fab_teardown() {
  if [ -n "$fab_db" ]; then
    psql "$pg_url" -qc "DROP DATABASE IF EXISTS $fab_db WITH (FORCE)" >/dev/null || true
  fi
}
fab_setup() {
  local fab=$bin/fab token
  fab_db=orderly_drill_fab_$(date +%s)_$$
  trap fab_teardown EXIT
  psql "$pg_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $fab_db" >/dev/null
  # The same server, this database (any query string, e.g. sslmode, is kept).
  local base=${pg_url%%\?*} query=
  [ "$base" != "$pg_url" ] && query=?${pg_url#*\?}
  export DATABASE_URL=${base%/*}/$fab_db$query
  token() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
  fab_tool=tool-$(token)
  local engineer=engineer-$(token)
  # Two engineers: the `fab fdc` queue drills' setup releases a spec set (four eyes).
  export DRILL_FAB_BIN=$fab DRILL_ENGINEER=$engineer DRILL_ENGINEER_2=engineer-$(token)
  export FAB_TOKENS="tool:$fab_tool,engineer:$engineer,engineer:$DRILL_ENGINEER_2,admin:admin-$(token)"
  "$fab" migrate >"$out/fab-migrate.log" 2>&1

  # One temporary replica for the controller configuration of the scope (soc-a, N5, M1).
  PORT=0 ADMIN_PORT=0 LOG_FORMAT=json "$fab" apc >"$out/fab-setup.log" 2>&1 &
  local pid=$! api= admin= n
  for n in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { echo "fab apc (setup) exited; see $out/fab-setup.log" >&2; return 1; }
    # Its JSON log says where it listens (port 0: the system chose).
    admin=$(jq -Rr 'fromjson? | select(.message // "" | startswith("fab admin listening"))
      | .url' "$out/fab-setup.log" | head -1) || true
    [ -n "$admin" ] && curl -fs -o /dev/null "$admin/readyz" && break
    sleep 0.1
  done
  # Ready, so the API has said where it listens.
  api=$(jq -Rr 'fromjson? | select(.message == "fab API listening") | .url' \
    "$out/fab-setup.log" | head -1) || true
  [ -n "$api" ] || { echo "fab apc (setup) never got ready; see $out/fab-setup.log" >&2; return 1; }
  curl -fsS -X POST "$api/v1/apc/configs" -H "Authorization: Bearer $engineer" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: drill-setup-$fab_db" \
    --data-binary @- >"$out/fab-config.json" <<'JSON'
{"product": "soc-a", "technology": "N5", "layer": "M1", "sr_limits": {"min": 30.0, "max": 50.0},
 "params": {"kind": {"type": "ewma", "lambda": 0.3}, "target": 45.0, "model_gain": -5.0,
  "process_gain": -5.0, "nominal": 40.0, "feedback_weight": 1.0, "technology_weight": 0.0,
  "outlier_k": 3.5, "initial_sigma": 1.0, "sigma_lambda": 0.05, "max_step": 0.02,
  "deadband": 0.05, "max_consecutive_outliers": 3, "idle_limit": 604800000,
  "feedforward_window": 28800000}}
JSON
  kill -TERM "$pid"
  wait "$pid" || { echo "fab apc (setup) did not exit 0; see $out/fab-setup.log" >&2; return 1; }

  cat >"$out/subrecipe.json" <<'JSON'
{"lot": {"lot": "LOT-{id}", "thread": {"fab": "fab-1", "tool": "scanner-07", "product": "soc-a",
  "technology": "N5", "layer": "M1", "reticle": "RT-{id}"}, "product_kind": "mobile"},
 "mode": {"mode": "formula"}}
JSON
  fab_args=(--replica-cmd "$fab apc" --method POST --path /v1/apc/subrecipe
    --header "Authorization: Bearer $fab_tool" --header 'Content-Type: application/json'
    --header "Idempotency-Key: drill-{id}" --body-file "$out/subrecipe.json"
    --expect-status 200)
}

# fab_ledger NAME: every request the drill NAME saw answered 200 has its run record in
# PostgreSQL, and there is no other (a failed drill's handled-but-failed requests aside).
fab_ledger() {
  local name=$1 ok rows missing
  ok=$(jq -r .ok "$out/$name.json")
  rows=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM apc_runs")
  # The lots of the 200s (LOT-<id>) against the lots of the stored run records.
  missing=$(jq -r 'select(.outcome == "ok") | "LOT-\(.id)"' "$out/$name.jsonl" |
    psql "$DATABASE_URL" -qtA -v ON_ERROR_STOP=1 -c "CREATE TEMP TABLE ok_lots (lot TEXT PRIMARY KEY)" \
      -c "COPY ok_lots FROM STDIN" \
      -c "SELECT count(*) FROM ok_lots WHERE lot NOT IN
            (SELECT record::jsonb #>> '{lot,lot}' FROM apc_runs)")
  printf '%s: %s ok, %s run records in PostgreSQL, %s ok without a run record\n' \
    "$name" "$ok" "$rows" "$missing"
  if [ "$ok" != "$rows" ] || [ "$missing" != 0 ]; then
    echo "!!! $name: the run records do not match the successful requests"
    failed=1
  fi
}

# --- fab fdc on a broker -------------------------------------------------------------------------
# The queue drill's target options for `fab fdc` (after fab_setup, which exports the tokens and
# DRILL_* variables fab-fdc-setup.sh reads): each message a batch of one in-spec sample on its own
# tool, the effects read from fab's fdc_batches. `{queue}` and `{consumer}` are the drill's queue
# or stream and durable consumer; port 0 so that replicas share the host.
fdc_target=(--setup-cmd "$PWD/crates/orderly-drill/fab-fdc-setup.sh"
  --effects-query "SELECT id, deliveries FROM fdc_batches"
  --body '{"tool":"drill-{n}","parameter":"drill-temp","samples":[{"at":1000,"value":23.0}]}')
fdc_amqp=(--replica-cmd "env PORT=0 ADMIN_PORT=0 FDC_QUEUE={queue} $bin/fab fdc" "${fdc_target[@]}")
fdc_nats=(--broker nats --prefetch 64
  --replica-cmd "env PORT=0 ADMIN_PORT=0 FDC_STREAM={queue} FDC_CONSUMER={consumer} FDC_ACK_WAIT=2s $bin/fab fdc"
  "${fdc_target[@]}")

case "$mode" in
  short)
    fab_setup
    drill fab-rolling-restart "${fab_args[@]}" --replicas 3 --rollouts 1 --clients 8 \
      --propagation-delay 500ms --shutdown-delay 1s
    fab_ledger fab-rolling-restart
    # The same drill sees fab's losses when the endpoint outlives the replica's drain (after the
    # run-record check: the requests it loses may have committed their runs).
    drill fab-control-late-propagation "${fab_args[@]}" --replicas 3 --rollouts 1 --clients 8 \
      --propagation-delay 1s --shutdown-delay 200ms --expect-failures
    drill rolling-restart --replica-cmd "$replica" --replicas 3 --rollouts 1 --clients 8 \
      --propagation-delay 500ms --shutdown-delay 1s
    drill control-no-drain --replica-cmd "$no_drain" --replicas 3 --rollouts 1 --clients 8 \
      --propagation-delay 500ms --expect-failures
    drill control-late-propagation --replica-cmd "$replica" --replicas 3 --rollouts 1 \
      --clients 8 --propagation-delay 1s --shutdown-delay 200ms --expect-failures
    # 3,000 messages: a debug `fab fdc` ingests a few hundred batches a second, and the drain
    # after the publishing is most of a short drill's time.
    queue fab-fdc-queue-rolling-restart "${fdc_amqp[@]}" --replicas 3 --restarts 2 \
      --messages 3000 --rate 1000
    queue fab-fdc-queue-sigkill "${fdc_amqp[@]}" --replicas 3 --sigkills 3 \
      --messages 3000 --rate 1000
    queue queue-control-ack-before-effect --replica-cmd "$bad_consumer" --replicas 3 \
      --sigkills 3 --messages 5000 --rate 1000 --expect-loss
    ;;
  long)
    # Sustained: an open model at FAB_RATE sub-recipes a second (each one a PostgreSQL
    # transaction), below what 3 replicas serve on this machine so that latency stays meaningful.
    fab_setup
    drill fab-long "${fab_args[@]}" --replicas 3 --rollouts 10 --rate "${FAB_RATE:-200}" \
      --propagation-delay 500ms --shutdown-delay 1s --steady 2s --pause 1s
    fab_ledger fab-long
    common=(--replica-cmd "$replica" --replicas 3 --rollouts 10 --rate 1000
      --propagation-delay 500ms --shutdown-delay 1s --steady 2s --pause 1s)
    drill long-pooled-http1 "${common[@]}" --connections pooled --http http1
    drill long-fresh-http1 "${common[@]}" --connections fresh --http http1
    drill long-pooled-http2 "${common[@]}" --connections pooled --http http2 \
      --upstream-http http2
    fdc_long=(--replicas 3 --messages 30000 --rate 1000)
    queue fab-fdc-queue-long-rolling-restart "${fdc_amqp[@]}" "${fdc_long[@]}" --restarts 10
    queue fab-fdc-queue-long-sigkill "${fdc_amqp[@]}" "${fdc_long[@]}" --sigkills 10
    queue fab-fdc-queue-long-nats-rolling-restart "${fdc_nats[@]}" "${fdc_long[@]}" --restarts 10
    queue fab-fdc-queue-long-nats-sigkill "${fdc_nats[@]}" "${fdc_long[@]}" --sigkills 10
    queue queue-long-rolling-restart --replica-cmd "$consumer" --replicas 3 --restarts 10 \
      --messages 60000 --rate 2000
    queue queue-long-sigkill --replica-cmd "$consumer" --replicas 3 --sigkills 10 \
      --messages 60000 --rate 2000
    queue queue-long-control-ack-before-effect --replica-cmd "$bad_consumer" --replicas 3 \
      --sigkills 10 --messages 60000 --rate 2000 --expect-loss
    nats=(--broker nats --prefetch 64 --replicas 3 --messages 30000 --rate 1000)
    queue queue-long-nats-rolling-restart --replica-cmd "$nats_consumer" "${nats[@]}" --restarts 10
    queue queue-long-nats-sigkill --replica-cmd "$nats_consumer" "${nats[@]}" --sigkills 10
    queue queue-long-nats-control --replica-cmd "$nats_bad_consumer" "${nats[@]}" --sigkills 10 \
      --expect-loss
    ;;
esac
exit "$failed"
