#!/usr/bin/env bash
# The cluster profile: Temporal as a production deployment runs it, beside the dev server on ports of
# its own. The multi-service server (frontend, history, matching, worker in one process) on a
# PostgreSQL of its own (initdb in .stack/cluster/pgdata), its schema applied with temporal-sql-tool;
# persistence and SQL visibility on that PostgreSQL; the frontend serving TLS and refusing clients
# without a certificate of the profile's CA; the Web UI server in front of it.
#   scripts/cluster.sh up       install what is missing, start what is not running (idempotent, seconds when ready)
#   scripts/cluster.sh status   each component and whether it is healthy (exit 1 if any is not)
#   scripts/cluster.sh down     stop the UI, the server and the database (their data stays)
#   scripts/cluster.sh env      the variables that point the engine and the temporal CLI at the cluster
# What it writes is under .stack/cluster (rm -rf it, after down, to start afresh), but for the
# database password, .stack/secrets/temporal-cluster-db-password, and its logs, .stack/logs/temporal-cluster*.log.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TLS_DIR="$CLUSTER_DIR/tls"
PG_DATA="$CLUSTER_DIR/pgdata"
PG_RUN="$CLUSTER_DIR/pgrun"
PG_BIN=/usr/lib/postgresql/15/bin
SERVER_ROOT="$CLUSTER_DIR/server"
UI_ROOT="$CLUSTER_DIR/ui"
ENGINE_ENV="$CLUSTER_DIR/engine.env"
# Beside the stack's other secrets (the secrets scan of the tests reads them all).
DB_PASSWORD="$STACK_DIR/secrets/temporal-cluster-db-password"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION=168h
# The services' own ports follow the frontend's; membership ports are 1000 below them.
HISTORY_PORT=$((CLUSTER_PORT + 1))
MATCHING_PORT=$((CLUSTER_PORT + 2))
WORKER_PORT=$((CLUSTER_PORT + 3))
CLUSTER_METRICS_PORT="${CLUSTER_METRICS_PORT:-$((CLUSTER_PORT + 6))}"

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# ---------- certificates: a CA of the profile's own, the frontend's certificate, client certificates ----------
# One certificate per client, so each is named in the frontend's view and can be replaced alone:
# the server's own system worker, these scripts (admin), the engine, the Web UI.
CLIENTS=(system-worker admin engine ui)

# cert_valid NAME DAYS: the certificate exists, is signed by the current CA and lasts DAYS more days.
cert_valid() {
  [ -s "$TLS_DIR/$1.crt" ] && [ -s "$TLS_DIR/$1.key" ] \
    && openssl x509 -checkend $(($2 * 24 * 3600)) -noout -in "$TLS_DIR/$1.crt" >/dev/null 2>&1 \
    && { [ "$1" = ca ] || openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/$1.crt" >/dev/null 2>&1; }
}

# issue NAME CN EXTENSIONS: a P-256 key and a certificate the CA signs for a year.
issue() {
  local name="$1" cn="$2" ext="$3" tmp
  tmp="$(mktemp -d)"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" "$ext" > "$tmp/ext"
  (umask 077
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$tmp/key" -out "$tmp/csr" -subj "/CN=$cn" \
    && openssl x509 -req -in "$tmp/csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -sha256 -extfile "$tmp/ext" -out "$tmp/crt") >/dev/null 2>&1 \
    || { rm -rf "$tmp"; die "tls: openssl could not issue the $name certificate"; }
  chmod 600 "$tmp/key"; chmod 644 "$tmp/crt"
  # The key first, then the certificate: a reader never pairs a new certificate with an old key.
  mv -f "$tmp/key" "$TLS_DIR/$name.key"
  mv -f "$tmp/crt" "$TLS_DIR/$name.crt"
  rm -rf "$tmp"
}

certs_up() {
  mkdir -p "$TLS_DIR"; chmod 700 "$TLS_DIR"
  local changed=0 c
  if ! cert_valid ca 30; then
    local tmp; tmp="$(mktemp -d)"
    printf '%s\n' "[req]" "distinguished_name = dn" "[dn]" "[ca]" "basicConstraints = critical,CA:TRUE" \
      "keyUsage = critical,keyCertSign,cRLSign" "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid:always" > "$tmp/cnf"
    (umask 077; openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 3650 -sha256 \
      -config "$tmp/cnf" -extensions ca -subj "/CN=remediation-engine cluster CA" -keyout "$tmp/key" -out "$tmp/crt") >/dev/null 2>&1 \
      || { rm -rf "$tmp"; die "tls: openssl could not create the cluster CA"; }
    chmod 600 "$tmp/key"; chmod 644 "$tmp/crt"
    mv -f "$tmp/key" "$TLS_DIR/ca.key"; mv -f "$tmp/crt" "$TLS_DIR/ca.crt"; rm -rf "$tmp"
    log "cluster CA created: $TLS_DIR/ca.crt"
    changed=1
  fi
  if ! cert_valid frontend 7; then
    issue frontend "$CLUSTER_SERVER_NAME" "extendedKeyUsage=serverAuth
subjectAltName=DNS:$CLUSTER_SERVER_NAME,DNS:localhost,IP:127.0.0.1"
    changed=1
  fi
  for c in "${CLIENTS[@]}"; do
    if ! cert_valid "$c" 7; then issue "$c" "$c" "extendedKeyUsage=clientAuth"; changed=1; fi
  done
  [ "$changed" = 0 ] || log "cluster certificates written to $TLS_DIR"
}

# ---------- PostgreSQL of the cluster's own ----------
# PostgreSQL refuses to run as root: as root, it runs as the postgres user; otherwise as the caller.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_owned() { if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$@"; fi; }
pg_healthy() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CLUSTER_DB_PORT"; }
psql_admin() { as_pg "$PG_BIN/psql" -q -tA -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$CLUSTER_DB_PORT" -U postgres -d postgres "$@"; }

db_password() {
  if [ ! -s "$DB_PASSWORD" ]; then
    mkdir -p "$(dirname "$DB_PASSWORD")"; chmod 700 "$(dirname "$DB_PASSWORD")"
    (umask 077; openssl rand -hex 24 > "$DB_PASSWORD")
  fi
  cat "$DB_PASSWORD"
}

db_up() {
  [ -x "$PG_BIN/initdb" ] || die "cluster db: PostgreSQL 15 is not installed (scripts/install.sh installs postgresql-15)"
  mkdir -p "$PG_DATA" "$PG_RUN"
  pg_owned "$PG_DATA" "$PG_RUN"; chmod 700 "$PG_DATA" "$PG_RUN"
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    # Local connections only through the socket directory, which only its owner can enter; TCP needs a password.
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 \
      >"$LOGS/temporal-cluster-initdb.log" 2>&1 || die "cluster db: initdb failed (see $LOGS/temporal-cluster-initdb.log)"
    log "cluster db: initialised $PG_DATA"
  fi
  if ! pg_healthy; then
    local logf="$LOGS/temporal-cluster-db.log"
    touch "$logf"; pg_owned "$logf"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$logf" -w -t 30 \
      -o "-p $CLUSTER_DB_PORT -k $PG_RUN -c listen_addresses=127.0.0.1" start >/dev/null \
      || die "cluster db: PostgreSQL did not start on $CLUSTER_DB_PORT (see $logf)"
    log "cluster db: PostgreSQL on 127.0.0.1:$CLUSTER_DB_PORT"
  fi
  # The server's role (idempotent). SQL goes through stdin so no password shows in ps.
  if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='temporal'")" != "1" ]; then
    psql_admin -c "CREATE ROLE temporal LOGIN CREATEDB" >/dev/null || die "cluster db: creating role temporal failed"
  fi
  printf "ALTER ROLE temporal WITH LOGIN CREATEDB PASSWORD '%s';\n" "$(db_password)" | psql_admin >/dev/null \
    || die "cluster db: setting temporal's password failed"
}

# ---------- schema: temporal-sql-tool with the schema files of the server's module ----------
sql_tool() { # sql_tool DATABASE ARGS...
  local db="$1"; shift
  SQL_PASSWORD="$(db_password)" "$(stack_bin temporal-sql-tool)" --plugin postgres12 --ep 127.0.0.1 -p "$CLUSTER_DB_PORT" \
    -u temporal --db "$db" "$@"
}

schema_up() {
  local schema; schema="$(temporal_schema_dir)"
  [ -d "$schema" ] || die "cluster schema: $schema is missing (scripts/install.sh --temporal=cluster downloads it)"
  local db dir
  for db in temporal temporal_visibility; do
    dir=temporal; [ "$db" = temporal_visibility ] && dir=visibility
    if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$db'")" != "1" ]; then
      sql_tool "$db" create-database >>"$LOGS/temporal-cluster-schema.log" 2>&1 \
        || die "cluster schema: creating database $db failed (see $LOGS/temporal-cluster-schema.log)"
    fi
    if [ "$(as_pg "$PG_BIN/psql" -q -tA -h "$PG_RUN" -p "$CLUSTER_DB_PORT" -U postgres -d "$db" -c "SELECT to_regclass('public.schema_version') IS NOT NULL")" != "t" ]; then
      sql_tool "$db" setup-schema -v 0.0 >>"$LOGS/temporal-cluster-schema.log" 2>&1 \
        || die "cluster schema: setting up $db failed (see $LOGS/temporal-cluster-schema.log)"
      log "cluster schema: $db created"
    fi
    # Applies the versions newer than the database's (none when it is current): also the upgrade path.
    sql_tool "$db" update-schema -d "$schema/$dir/versioned" >>"$LOGS/temporal-cluster-schema.log" 2>&1 \
      || die "cluster schema: updating $db from $schema/$dir/versioned failed (see $LOGS/temporal-cluster-schema.log)"
  done
}

# ---------- the server ----------
write_server_config() {
  mkdir -p "$SERVER_ROOT/config"
  # A template (first line): the database password comes from the server's environment, not from this file.
  cat > "$SERVER_ROOT/config/production.yaml.tmp" <<YAML
# enable-template
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:$CLUSTER_DB_PORT"
        connectProtocol: tcp
        user: temporal
        password: '{{ env "TEMPORAL_CLUSTER_DB_PASSWORD" }}'
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:$CLUSTER_DB_PORT"
        connectProtocol: tcp
        user: temporal
        password: '{{ env "TEMPORAL_CLUSTER_DB_PASSWORD" }}'
        maxConns: 4
        maxIdleConns: 4
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:$CLUSTER_METRICS_PORT"
  tls:
    frontend:
      server:
        certFile: $TLS_DIR/frontend.crt
        keyFile: $TLS_DIR/frontend.key
        requireClientAuth: true
        clientCaFiles: [$TLS_DIR/ca.crt]
      client:
        serverName: $CLUSTER_SERVER_NAME
        rootCaFiles: [$TLS_DIR/ca.crt]
    systemWorker:
      certFile: $TLS_DIR/system-worker.crt
      keyFile: $TLS_DIR/system-worker.key
      client:
        serverName: $CLUSTER_SERVER_NAME
        rootCaFiles: [$TLS_DIR/ca.crt]
    # Certificates replaced on disk (scripts/cluster.sh renews them) are read again without a restart.
    refreshInterval: 1h
services:
  frontend:
    rpc: { grpcPort: $CLUSTER_PORT, membershipPort: $((CLUSTER_PORT - 1000)), bindOnLocalHost: true }
  history:
    rpc: { grpcPort: $HISTORY_PORT, membershipPort: $((HISTORY_PORT - 1000)), bindOnLocalHost: true }
  matching:
    rpc: { grpcPort: $MATCHING_PORT, membershipPort: $((MATCHING_PORT - 1000)), bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: $WORKER_PORT, membershipPort: $((WORKER_PORT - 1000)), bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$CLUSTER_PORT"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $SERVER_ROOT/config/dynamic.yaml
  pollInterval: 60s
YAML
  mv "$SERVER_ROOT/config/production.yaml.tmp" "$SERVER_ROOT/config/production.yaml"
  cat > "$SERVER_ROOT/config/dynamic.yaml" <<YAML
# The engine lists its guards and keepers by query; the default of 10 visibility calls a second is tight.
frontend.namespaceRPS.visibility:
  - value: 100
# Nexus needs the frontend's HTTP API, which the profile does not serve.
system.enableNexus:
  - value: false
# A few thousand cached executions are plenty on one host, and keep the server's memory small.
history.hostLevelCacheMaxSize:
  - value: 8192
# Worker versioning: a version that is no longer current is checked for open pinned workflows every
# second, after a second's grace for visibility to catch up, instead of every 3 minutes after 3
# minutes, so scripts/rollout.ts status says drained within seconds of the last incident on it
# closing (the rolling-upgrade test waits for it). A production cluster keeps the defaults.
matching.wv.VersionDrainageStatusRefreshInterval:
  - value: 1s
matching.wv.VersionDrainageStatusVisibilityGracePeriod:
  - value: 1s
YAML
}

# The temporal CLI as these scripts use it against the cluster: with the admin client certificate.
cluster_cli() {
  "$(temporal_bin)" "$@" --address "127.0.0.1:$CLUSTER_PORT" --tls-server-name "$CLUSTER_SERVER_NAME" \
    --tls-ca-path "$TLS_DIR/ca.crt" --tls-cert-path "$TLS_DIR/admin.crt" --tls-key-path "$TLS_DIR/admin.key"
}
server_healthy() { cluster_cli operator cluster health 2>/dev/null | grep -q SERVING; }

# A fingerprint of what the running server read at start: a change restarts it.
server_config_sha() { cat "$SERVER_ROOT/config/"*.yaml "$TLS_DIR/frontend.crt" "$DB_PASSWORD" | sha256sum | cut -c1-16; }

server_up() {
  write_server_config
  local sha; sha="$(server_config_sha)"
  if server_healthy; then
    [ "$(cat "$SERVER_ROOT/started.sha" 2>/dev/null)" != "$sha" ] || return 0
    if [ ! -f "$STARTED/temporal-cluster.pid" ]; then
      log "the cluster's configuration changed: restart the server on :$CLUSTER_PORT (not started by this script) to use it"
      return 0
    fi
    log "the cluster's configuration changed: restarting the server"
  fi
  stop_pidfile temporal-cluster
  log "starting the Temporal server (cluster profile) on 127.0.0.1:$CLUSTER_PORT"
  # The database password only in the server's environment (its config file is a template).
  (
    export TEMPORAL_CLUSTER_DB_PASSWORD; TEMPORAL_CLUSTER_DB_PASSWORD="$(db_password)"
    exec setsid nohup "$(stack_bin temporal-server)" --root "$SERVER_ROOT" --config config --env production \
      --allow-no-auth start >>"$LOGS/temporal-cluster.log" 2>&1 < /dev/null
  ) &
  echo $! > "$STARTED/temporal-cluster.pid"
  echo "$sha" > "$SERVER_ROOT/started.sha"
  wait_for "Temporal server (cluster)" 90 server_healthy \
    || die "cluster: the server did not become healthy in 90 s (see $LOGS/temporal-cluster.log)"
}

# The namespace and the engine's search attributes (SQL visibility keeps them per namespace).
namespace_up() {
  if ! cluster_cli operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    cluster_cli operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" >/dev/null \
      || die "cluster: creating namespace $NAMESPACE failed"
    log "cluster: namespace $NAMESPACE created (retention $RETENTION)"
  fi
  wait_for "search attributes (cluster)" 60 search_attributes_registered \
    || die "cluster: registering the search attributes on $NAMESPACE failed (see $LOGS/temporal-cluster.log)"
}

# Registers the missing ones (a new namespace takes a few seconds to be known everywhere: retried).
search_attributes_registered() {
  local have sa missing=0
  have="$(cluster_cli operator search-attribute list --namespace "$NAMESPACE" -o json 2>/dev/null)" || return 1
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    if ! grep -q "\"${sa%%=*}\"" <<<"$have"; then
      missing=1
      cluster_cli operator search-attribute create --namespace "$NAMESPACE" --name "${sa%%=*}" --type "${sa#*=}" >/dev/null 2>&1 || true
    fi
  done
  [ "$missing" = 0 ]
}

# ---------- the Web UI server ----------
ui_healthy() { curl -fsS -o /dev/null "http://127.0.0.1:$CLUSTER_UI_PORT/" 2>/dev/null; }

ui_up() {
  mkdir -p "$UI_ROOT/config"
  # Signals and updates enabled, as on the dev server's UI; payloads decoded through the codec server.
  cat > "$UI_ROOT/config/production.yaml" <<YAML
temporalGrpcAddress: "127.0.0.1:$CLUSTER_PORT"
host: 127.0.0.1
port: $CLUSTER_UI_PORT
enableUi: true
defaultNamespace: $NAMESPACE
hideLogs: true
cors:
  cookieInsecure: true
tls:
  caFile: $TLS_DIR/ca.crt
  certFile: $TLS_DIR/ui.crt
  keyFile: $TLS_DIR/ui.key
  serverName: $CLUSTER_SERVER_NAME
  enableHostVerification: true
codec:
  endpoint: "http://127.0.0.1:$CODEC_PORT"
YAML
  if ui_healthy; then return; fi
  stop_pidfile temporal-cluster-ui
  log "starting the Web UI (cluster profile) on 127.0.0.1:$CLUSTER_UI_PORT"
  setsid nohup "$(stack_bin temporal-ui-server)" --root "$UI_ROOT" --config config --env production start \
    >>"$LOGS/temporal-cluster-ui.log" 2>&1 < /dev/null &
  echo $! > "$STARTED/temporal-cluster-ui.pid"
  wait_for "Web UI (cluster)" 30 ui_healthy || die "cluster: the Web UI did not answer on $CLUSTER_UI_PORT (see $LOGS/temporal-cluster-ui.log)"
}

# ---------- the engine's view of it ----------
# The variables the engine's config (config/engine.yaml, temporal.tls) and the temporal CLI read.
write_engine_env() {
  cat > "$ENGINE_ENV" <<ENV
TEMPORAL_ADDRESS=127.0.0.1:$CLUSTER_PORT
TEMPORAL_NAMESPACE=$NAMESPACE
TEMPORAL_TLS_SERVER_NAME=$CLUSTER_SERVER_NAME
TEMPORAL_TLS_SERVER_CA_CERT_PATH=$TLS_DIR/ca.crt
TEMPORAL_TLS_CLIENT_CERT_PATH=$TLS_DIR/engine.crt
TEMPORAL_TLS_CLIENT_KEY_PATH=$TLS_DIR/engine.key
ENV
}

cmd_up() {
  local t0=$SECONDS
  mkdir -p "$CLUSTER_DIR" "$STARTED" "$LOGS"
  bash "$REPO_ROOT/scripts/install.sh" --temporal=cluster
  certs_up
  db_up
  schema_up
  server_up
  namespace_up
  ui_up
  write_engine_env
  log "cluster up in $((SECONDS - t0)) s — frontend 127.0.0.1:$CLUSTER_PORT (mTLS), UI http://127.0.0.1:$CLUSTER_UI_PORT; engine: $ENGINE_ENV"
}

cmd_status() {
  local rc=0
  status_line() { if "${@:2}" >/dev/null 2>&1; then printf '%-16s healthy\n' "$1"; else printf '%-16s DOWN\n' "$1"; return 1; fi; }
  status_line cluster-db pg_healthy || rc=1
  status_line cluster-server server_healthy || rc=1
  status_line cluster-ui ui_healthy || rc=1
  return $rc
}

cmd_down() {
  stop_pidfile temporal-cluster-ui
  stop_pidfile temporal-cluster
  if [ -s "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 && log "stopped the cluster's PostgreSQL" || true
  fi
}

cmd_env() {
  [ -s "$ENGINE_ENV" ] || die "the cluster profile has not been started (scripts/cluster.sh up)"
  sed 's/^/export /' "$ENGINE_ENV"
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  down) cmd_down ;;
  env) cmd_env ;;
  -h|--help|help) usage ;;
  *) usage; exit 2 ;;
esac
