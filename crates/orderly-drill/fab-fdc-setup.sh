#!/usr/bin/env bash
# The queue drill's setup command for `fab fdc` (`orderly-drill queue --setup-cmd`): prepares
# the drill's own database as a scaled-out fab expects it, before the first replica starts.
#
#   1. `fab migrate` (scaled out, migrations are an admin task, never a replica's);
#   2. a released spec set with FDC limits for the parameter `drill-temp` (μ 23.0, σ 0.1, spec
#      22.5–23.5), through a temporary `fab spec`: FDC dead-letters samples of a parameter with
#      no released limits, so without them every message would go to the dead-letter queue.
#
# Environment: DATABASE_URL (the drill's database, set by the drill), DRILL_FAB_BIN (the `fab`
# binary), FAB_TOKENS with two engineers, DRILL_ENGINEER and DRILL_ENGINEER_2 (their tokens: a
# spec set needs four eyes). Output: this script's log (the drill keeps it as setup.log).
set -euo pipefail
: "${DATABASE_URL:?}" "${DRILL_FAB_BIN:?}" "${FAB_TOKENS:?}" "${DRILL_ENGINEER:?}" "${DRILL_ENGINEER_2:?}"

"$DRILL_FAB_BIN" migrate

log=$(mktemp -t fab-fdc-setup-XXXXXX.log)
PORT=0 ADMIN_PORT=0 LOG_FORMAT=json "$DRILL_FAB_BIN" spec >"$log" 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
admin=
for _ in $(seq 600); do
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "fab spec (setup) exited" >&2; exit 1; }
  # Its JSON log says where it listens (port 0: the system chose).
  admin=$(jq -Rr 'fromjson? | select(.message // "" | startswith("fab admin listening"))
    | .url' "$log" | head -1) || true
  [ -n "$admin" ] && curl -fs -o /dev/null "$admin/readyz" && break
  sleep 0.1
done
api=$(jq -Rr 'fromjson? | select(.message == "fab API listening") | .url' "$log" | head -1) || true
[ -n "$api" ] || { cat "$log"; echo "fab spec (setup) never got ready" >&2; exit 1; }

post() { # post PATH TOKEN BODY: the response body on stdout, a non-2xx fails
  curl -fsS -X POST "$api$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: drill-setup-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
    --data-binary "$3"
}
set_json=$(post /v1/spec/sets "$DRILL_ENGINEER" '{"content": {"sr_limits": [], "fdc_limits": [{
  "parameter": "drill-temp", "spec": {"lo": 22.5, "hi": 23.5}, "mean": 23.0, "sigma": 0.1,
  "deadband": 0.05, "physical": {"lo": 0.0, "hi": 100.0}, "rules": ["beyond3_sigma"],
  "max_gap": 5000, "stuck_samples": 10}]}}')
version=$(jq -r .version <<<"$set_json")
post "/v1/spec/sets/$version/approve" "$DRILL_ENGINEER_2" '{}' >/dev/null
post "/v1/spec/sets/$version/release" "$DRILL_ENGINEER" '{}' >/dev/null
echo "spec set $version released with FDC limits for drill-temp"
kill -TERM "$pid"
wait "$pid" || { cat "$log"; echo "fab spec (setup) did not exit 0" >&2; exit 1; }
