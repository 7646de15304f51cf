# Shared settings for the stack scripts. Sourced, never run.
# Every path the stack writes lives under STACK_DIR (default: .stack in the repository).
set -euo pipefail

# The daemons these scripts start (Temporal, Podman, the SMTP relays, Prometheus) must not inherit
# the caller's open descriptors: a lock taken by whoever ran the script (`flock FILE scripts/...`)
# would otherwise stay held for as long as a daemon lives.
for _fd in 3 4 5 6 7 8 9; do eval "exec ${_fd}>&-"; done
unset _fd

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack}"
case "$STACK_DIR" in /*) ;; *) STACK_DIR="$REPO_ROOT/$STACK_DIR" ;; esac

TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
TEMPORAL_METRICS_PORT="${TEMPORAL_METRICS_PORT:-7239}"
# The codec server (docs/codec.md): the Temporal UI decodes through it and sends sealed decisions.
CODEC_PORT="${CODEC_PORT:-8234}"
# Operators the stack signs up on its codec server, each with a password and a personal token.
CODEC_OPERATORS=(alice bob)
DRILL_DB_PORT="${DRILL_DB_PORT:-55432}"
# Redis keeps its default port so `redis-cli` inside the container needs no flags (seed 002).
DRILL_REDIS_PORT="${DRILL_REDIS_PORT:-6379}"
DRILL_API_PORT="${DRILL_API_PORT:-58000}"
DRILL_TLS_PORT="${DRILL_TLS_PORT:-58443}"
DRILL_WORKER_PORT="${DRILL_WORKER_PORT:-58001}"
# The drill's SMTP relays (drill/src/smtp-peer.ts): the primary the api sends through, and the sandbox.
DRILL_SMTP_PORT="${DRILL_SMTP_PORT:-58025}"
DRILL_SMTP_SANDBOX_PORT="${DRILL_SMTP_SANDBOX_PORT:-58026}"

# The cluster profile (scripts/cluster.sh, `scripts/stack.sh up --temporal=cluster`): the Temporal server
# on a PostgreSQL of its own, its frontend behind mTLS. Its own ports, so it can run beside the dev server.
TEMPORAL_SERVER_VERSION=v1.29.1   # the server the Temporal CLI v1.5.1 embeds
TEMPORAL_UI_SERVER_VERSION=v2.42.1 # the Web UI the Temporal CLI v1.5.1 embeds
CLUSTER_DIR="$STACK_DIR/cluster"
CLUSTER_PORT="${CLUSTER_PORT:-7333}"
CLUSTER_UI_PORT="${CLUSTER_UI_PORT:-8333}"
CLUSTER_DB_PORT="${CLUSTER_DB_PORT:-55433}"
# The name the frontend's certificate is issued for, and clients verify.
CLUSTER_SERVER_NAME="${CLUSTER_SERVER_NAME:-temporal-frontend}"

# Pid files of the processes the scripts started (what `down` stops), and their logs.
STARTED="$STACK_DIR/started"
LOGS="$STACK_DIR/logs"

PODMAN_DIR="$STACK_DIR/podman"
PODMAN_SOCK="$PODMAN_DIR/podman.sock"
export CONTAINERS_CONF="$PODMAN_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf"

# The custom search attributes the engine upserts on every incident.
SEARCH_ATTRIBUTES=(IncidentScenario=Keyword IncidentSeverity=Int IncidentTarget=Keyword IncidentPhase=Keyword IncidentRunbook=Keyword)

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

temporal_bin() {
  if [ -n "${TEMPORAL_BIN:-}" ]; then echo "$TEMPORAL_BIN"; return; fi
  local gopath
  gopath="$(go env GOPATH 2>/dev/null || echo "$HOME/go")"
  echo "$gopath/bin/temporal"
}

# The Temporal server, its SQL schema tool and the Web UI server, as the cluster profile runs them:
# built by scripts/install.sh into the stack's bin directory, under names of their own (go install
# names them server, sql and server).
stack_bin() {
  case "$1" in
    temporal-server) echo "${TEMPORAL_SERVER_BIN:-$STACK_DIR/bin/temporal-server}" ;;
    temporal-sql-tool) echo "${TEMPORAL_SQL_TOOL_BIN:-$STACK_DIR/bin/temporal-sql-tool}" ;;
    temporal-ui-server) echo "${TEMPORAL_UI_SERVER_BIN:-$STACK_DIR/bin/temporal-ui-server}" ;;
    *) die "stack_bin: unknown binary $1" ;;
  esac
}

# The PostgreSQL schema of the cluster's server (temporal, visibility), as its module ships it.
temporal_schema_dir() {
  local modcache
  modcache="$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")"
  echo "$modcache/go.temporal.io/server@$TEMPORAL_SERVER_VERSION/schema/postgresql/v12"
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
  log "$what ready"
}

# stop_pidfile NAME: stops the process $STARTED/NAME.pid names (TERM, then KILL after 10 s), if it runs.
stop_pidfile() {
  local f="$STARTED/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$f"
}
