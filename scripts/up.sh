#!/usr/bin/env bash
# Brings the whole engine up on its embedded stack and runs its main job:
#   the codec server (http://127.0.0.1:8234), Temporal dev server + UI (http://127.0.0.1:8233), the
#   drill target, Prometheus + Alertmanager, the engine's worker and alert receiver, then a demo drill.
# Usage: scripts/up.sh [--no-demo] [--detach] [--temporal=dev|cluster]
#   --no-demo            skip the demo drill
#   --detach             return after start-up, leaving worker and receiver running (stop: scripts/stack.sh down)
#   --temporal=cluster   on the cluster profile (scripts/cluster.sh: the Temporal server on PostgreSQL,
#                        its frontend behind mTLS, its UI on :8333) instead of the dev server
# Without --detach it stays in the foreground showing the engine's logs; Ctrl-C stops worker and receiver.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

demo=1; detach=0; profile=dev
for a in "$@"; do
  case "$a" in
    --no-demo) demo=0 ;;
    --detach) detach=1 ;;
    --temporal=dev|--temporal=cluster) profile="${a#--temporal=}" ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $a (see --help)" ;;
  esac
done

RECEIVER_URL="http://127.0.0.1:${RECEIVER_PORT:-8095}"
WORKER_METRICS="http://127.0.0.1:9464/metrics"
CODEC_URL="http://127.0.0.1:$CODEC_PORT"
export STACK_DIR
# Where the engine's client script finds the codec server (codec.serverUrl in config/engine.yaml).
export CODEC_SERVER_URL="$CODEC_URL"
# The demo reads incidents as alice (the stack's demo operator, scripts/stack.sh).
as_alice() { REMEDIATE_CREDENTIALS="$STACK_DIR/secrets/tokens/alice" bin/remediate "$@"; }
# The drill's incidents settle (absorb repeats of their alert) for 10 s instead of a minute.
export INCIDENT_SETTLE_MS="${INCIDENT_SETTLE_MS:-10000}"

bash scripts/stack.sh up --temporal="$profile"
bash scripts/alerting.sh up
# The engine's coordinates for this profile (scripts/stack.sh writes them): with the cluster, its
# address, its CA and the engine's client certificate, read by config/engine.yaml.
set -a
# shellcheck disable=SC1091
source "$STACK_DIR/engine.env"
set +a
UI_URL="http://127.0.0.1:$TEMPORAL_UI_PORT"
if [ "$profile" = cluster ]; then UI_URL="http://127.0.0.1:$CLUSTER_UI_PORT"; fi

start_process() { # start_process NAME HEALTH-URL COMMAND...
  local name="$1" url="$2"; shift 2
  local was="$STACK_DIR/started/$name.profile"
  if curl -fsS -o /dev/null "$url" 2>/dev/null; then
    if [ "$(cat "$was" 2>/dev/null || echo dev)" = "$profile" ]; then log "$name already running"; return; fi
    # Started for the other Temporal: stopped, and started again for this one.
    log "$name runs against the other Temporal profile: restarting it"
    kill "$(cat "$STACK_DIR/started/$name.pid")" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while curl -fsS -o /dev/null "$url" 2>/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] || die "$name: did not stop (pid file $STACK_DIR/started/$name.pid)"
      sleep 0.2
    done
  fi
  log "starting $name"
  setsid nohup "$@" >>"$STACK_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$STACK_DIR/started/$name.pid"
  echo "$profile" > "$was"
  wait_for "$name" 90 curl -fsS -o /dev/null "$url" || die "$name: did not come up (see $STACK_DIR/logs/$name.log)"
}

# The worker's memory settings, as in package.json's "worker" script (BENCHMARKS.md, concurrency).
start_process worker "$WORKER_METRICS" env MALLOC_ARENA_MAX=2 node --optimize-for-size --import tsx src/workers/main.ts
start_process receiver "$RECEIVER_URL/healthz" node_modules/.bin/tsx src/receiver/main.ts

post_alert() { # post_alert ALERTNAME SUMMARY
  curl -fsS "$RECEIVER_URL/alerts/generic" -H "Authorization: Bearer $(cat "$STACK_DIR/secrets/receiver-generic-token")" \
    -H 'Content-Type: application/json' \
    -d "{\"alertname\":\"$1\",\"status\":\"firing\",\"target\":\"alfred\",\"annotations\":{\"summary\":\"$2\"}}"
  echo
}

# Alfred's users, during the demo: the same chat question every 2 s from a seeded key (drill/README.md).
# The runbook verifies recovery by the cache hit rate of the api's SLA window (seed 002): without
# requests there is no hit rate to see, and the incident would rightly escalate as not observed.
users() {
  while :; do
    curl -s -o /dev/null -m 5 "http://127.0.0.1:$DRILL_API_PORT/v1/chat/completions" \
      -H 'Authorization: Bearer test-key-1' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"demo: what is the capital of France?"}]}' || true
    sleep 2
  done
}

if [ "$demo" = 1 ]; then
  users &
  users_pid=$!
  trap 'kill "$users_pid" 2>/dev/null || true' EXIT
  log "demo 1/2: kill the drill's Redis; the alert starts cacheFailure, which restarts it by itself"
  npx tsx scripts/fault.ts kill-redis
  post_alert CacheFailure "redis does not answer PING"
  as_alice show incident-cacheFailure-alfred >/dev/null 2>&1 || true
  log "waiting for the incident to verify and settle (repeats of its alert join it meanwhile)"
  for _ in $(seq 1 90); do
    phase="$(as_alice show incident-cacheFailure-alfred --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).phase)}catch{console.log("")}})')"
    [ "$phase" = "CLOSED" ] && break
    sleep 1
  done
  as_alice show incident-cacheFailure-alfred || true
  kill "$users_pid" 2>/dev/null || true

  log "demo 2/2: fill Redis to maxmemory; the incident waits for an operator's approval to evict cache keys"
  npx tsx scripts/fault.ts fill-redis
  post_alert CacheFailure "redis refuses writes (OOM)"
  cat <<MSG

  Open the Temporal UI: $UI_URL/namespaces/default/workflows/incident-cacheFailure-alfred
  (signed in to the codec server first, see below). Its current details show the pending step. To
  approve from the UI: "Send a Signal", signal "approve",
  input: {"stepId":"evict-cache","incidentId":"incident-cacheFailure-alfred"}
  (who approves is who you signed in as: the codec server seals it with your name).
  Or from a shell, as alice (her personal token is the credential):
    REMEDIATE_CREDENTIALS=$STACK_DIR/secrets/tokens/alice bin/remediate approve incident-cacheFailure-alfred evict-cache
  (the workflow re-checks before acting, then verifies; the demo's requester is the receiver, so any
   configured approver — alice, bob, carol — may approve).

MSG
fi

cat <<MSG
  Payloads are encrypted (docs/codec.md): the Temporal UI decodes them, and sends decisions sealed with
  your name, through the codec server $CODEC_URL. Sign in there first, in the same browser:
    $CODEC_URL/login   as alice or bob, passwords in $STACK_DIR/secrets/operators/<name>.password
  The UI is started with that codec endpoint; if it still shows encrypted payloads, open its codec
  settings (the data encoder button in the navigation), set the endpoint to $CODEC_URL and tick
  "Include cross-origin credentials". Use 127.0.0.1 for both (localhost is another site to the cookie).
  The client script signs in with a personal token: $STACK_DIR/secrets/tokens/<name>, e.g.
    bin/remediate login < $STACK_DIR/secrets/tokens/alice     (or REMEDIATE_CREDENTIALS=that file)

  Temporal UI      $UI_URL  ($profile profile)
  codec server     $CODEC_URL  (docs/codec.md)
  alert receiver   $RECEIVER_URL  (docs/receiver.md)
  worker metrics   $WORKER_METRICS
  Prometheus       http://127.0.0.1:59090   Alertmanager http://127.0.0.1:59093
  client           bin/remediate --help
  stop everything  scripts/stack.sh down
MSG

if [ "$detach" = 1 ]; then exit 0; fi
stop_engine() {
  for p in receiver worker; do
    f="$STACK_DIR/started/$p.pid"
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null && rm -f "$f"
  done
  log "worker and receiver stopped (the stack keeps running: scripts/stack.sh down)"
  exit 0
}
trap stop_engine INT TERM
log "following worker and receiver logs; Ctrl-C stops them"
tail -n 0 -F "$STACK_DIR/logs/worker.log" "$STACK_DIR/logs/receiver.log" &
wait
