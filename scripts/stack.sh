#!/usr/bin/env bash
# The engine's local stack: the codec server (and the codec's secrets), Temporal dev server (+ UI,
# decoding through the codec server), Podman's Docker API, and the drill target (the "alfred"
# gateway: api, worker, db, redis, tls proxy) as the Docker Compose project "alfred"
# (drill/docker-compose.yml), run by Docker Compose v2 against Podman.
#   scripts/stack.sh up       install what is missing, start what is not running (idempotent, seconds when ready)
#   scripts/stack.sh up --temporal=cluster   the same with Temporal as a cluster on PostgreSQL with mTLS
#                             (scripts/cluster.sh) instead of the dev server; the first run builds it (minutes)
#   scripts/stack.sh status   each component and whether it is healthy (exit 1 if any is not)
#   scripts/stack.sh down     stop only what this script started (the dev server or the cluster, whichever runs)
#   scripts/stack.sh reset    down, then delete the drill's containers and data (keeps Temporal's history)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECRETS="$STACK_DIR/secrets"
BUILD="$STACK_DIR/build"
HOST_MOUNTS=(-v /usr:/usr:ro -v /lib:/lib:ro -v /lib64:/lib64:ro -v /etc:/etc:ro)
API_TAGS=(1.0.0 1.1.0)
CURRENT_TAG="1.1.0"
BAD_TAG="1.2.0-bad"
AUTH_BUG_TAG="1.2.1-authbug"

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

pm() { podman --url "unix://$PODMAN_SOCK" "$@"; }

secret() { # secret NAME: prints the secret, creating it (random, 0600) the first time
  local f="$SECRETS/$1"
  if [ ! -s "$f" ]; then (umask 077; openssl rand -hex 24 > "$f"); fi
  cat "$f"
}

# ---------- codec: the secrets file, demo operators, the codec server (docs/codec.md) ----------
CODEC_SECRETS="$SECRETS/codec.yaml"
codec_secrets() { "$REPO_ROOT/node_modules/.bin/tsx" "$REPO_ROOT/scripts/codec-secrets.ts" "$@" --file "$CODEC_SECRETS"; }

# codec_operator_has NAME password|token: the operator is in the secrets file with that credential.
codec_operator_has() {
  (cd "$REPO_ROOT" && node -e '
    const [file, name, what] = process.argv.slice(1);
    const doc = require("yaml").parse(require("fs").readFileSync(file, "utf8")) ?? {};
    const op = (doc.operators ?? []).find((o) => o.name === name);
    process.exit(op && op[what] ? 0 : 1);' "$CODEC_SECRETS" "$1" "$2")
}

# The codec's keys are created once and never replaced (old histories need them: rotate with
# scripts/codec-secrets.ts instead). Each demo operator gets a random password
# ($SECRETS/operators/<name>.password) and a personal token ($SECRETS/tokens/<name>), both 0600.
# Sets CODEC_CHANGED=1 when it changed the file (a running codec server reads it only at start).
CODEC_CHANGED=0
codec_secrets_up() {
  if [ ! -s "$CODEC_SECRETS" ]; then
    codec_secrets init >/dev/null || die "codec: creating $CODEC_SECRETS failed"
    log "codec secrets created: $CODEC_SECRETS (encryption key k1, seal key s1)"
    CODEC_CHANGED=1
  fi
  chmod 600 "$CODEC_SECRETS"
  mkdir -p "$SECRETS/operators" "$SECRETS/tokens"
  chmod 700 "$SECRETS/operators" "$SECRETS/tokens"
  local name pw tok fresh
  for name in "${CODEC_OPERATORS[@]}"; do
    pw="$SECRETS/operators/$name.password"
    fresh=0
    if [ ! -s "$pw" ]; then (umask 077; openssl rand -hex 12 > "$pw"); fresh=1; fi
    # The file holds the password, the secrets file its scrypt hash: a new password is (re-)stored.
    if [ "$fresh" = 1 ] || ! codec_operator_has "$name" password; then
      codec_secrets add-operator "$name" < "$pw" >/dev/null || die "codec: storing $name's password failed"
      log "codec operator $name: password in $pw"
      CODEC_CHANGED=1
    fi
    tok="$SECRETS/tokens/$name"
    if [ ! -s "$tok" ] || ! codec_operator_has "$name" token; then
      (umask 077; codec_secrets add-token "$name" 2>/dev/null > "$tok.tmp") || die "codec: creating $name's token failed"
      mv "$tok.tmp" "$tok"
      log "codec operator $name: personal token in $tok"
      CODEC_CHANGED=1
    fi
  done
}

codec_healthy() { curl -fsS -o /dev/null "http://127.0.0.1:$CODEC_PORT/healthz" 2>/dev/null; }

codec_server_up() {
  if codec_healthy; then
    [ "$CODEC_CHANGED" = 1 ] || return 0
    if [ ! -f "$STARTED/codec-server.pid" ]; then
      log "the codec secrets changed: restart the codec server on :$CODEC_PORT (not started by this script) to use them"
      return 0
    fi
    log "the codec secrets changed: restarting the codec server"
  fi
  stop_pidfile codec-server
  log "starting the codec server on 127.0.0.1:$CODEC_PORT"
  # The dev server's UI and the cluster profile's (scripts/cluster.sh) decode through it.
  CODEC_UI_ORIGINS="http://127.0.0.1:$TEMPORAL_UI_PORT,http://localhost:$TEMPORAL_UI_PORT,http://127.0.0.1:$CLUSTER_UI_PORT,http://localhost:$CLUSTER_UI_PORT" \
    setsid nohup "$REPO_ROOT/node_modules/.bin/tsx" "$REPO_ROOT/src/codec-server/main.ts" \
      --config "$REPO_ROOT/config/codec-server.yaml" --secrets "$CODEC_SECRETS" --host 127.0.0.1 --port "$CODEC_PORT" \
      >>"$LOGS/codec-server.log" 2>&1 < /dev/null &
  echo $! > "$STARTED/codec-server.pid"
  wait_for "codec server" 30 codec_healthy || die "codec server: /healthz did not answer on $CODEC_PORT (see $LOGS/codec-server.log)"
}

codec_up() {
  codec_secrets_up
  codec_server_up
}

# ---------- Temporal ----------
temporal_healthy() { "$(temporal_bin)" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" 2>/dev/null | grep -q SERVING; }
ui_healthy() { curl -fsS -o /dev/null "http://127.0.0.1:$TEMPORAL_UI_PORT/"; }

temporal_up() {
  if temporal_healthy; then return; fi
  mkdir -p "$STACK_DIR/temporal"
  # SQLite's default rollback journal with synchronous=FULL syncs the disk several times per
  # transaction, and every workflow task is a transaction: under load the server waits on the disk
  # with its CPU half idle. A write-ahead log with synchronous=NORMAL syncs only at checkpoints; a
  # crash of the server loses nothing committed, a power cut can lose the last transactions (see
  # BENCHMARKS.md: 500 approvals drain about 3x faster).
  local args=(server start-dev --db-filename "$STACK_DIR/temporal/temporal.db" --ip 127.0.0.1
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal
    --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" --metrics-port "$TEMPORAL_METRICS_PORT" --log-level warn
    --ui-codec-endpoint "http://127.0.0.1:$CODEC_PORT")
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa"); done
  log "starting Temporal dev server on 127.0.0.1:$TEMPORAL_PORT (UI :$TEMPORAL_UI_PORT)"
  setsid nohup "$(temporal_bin)" "${args[@]}" >>"$LOGS/temporal.log" 2>&1 < /dev/null &
  echo $! > "$STARTED/temporal.pid"
  wait_for "Temporal" 60 temporal_healthy || die "temporal: did not become healthy in 60 s (see $LOGS/temporal.log)"
  # Search attributes are also registered idempotently here, for a server started by other means.
  local sa
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    "$(temporal_bin)" operator search-attribute create --address "127.0.0.1:$TEMPORAL_PORT" \
      --name "${sa%%=*}" --type "${sa#*=}" >/dev/null 2>&1 || true
  done
}

# ---------- Podman (Docker Engine API) ----------
podman_healthy() { curl -fsS --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1; }

podman_up() {
  mkdir -p "$PODMAN_DIR"
  cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
CONF
  cat > "$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "vfs"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/run"
CONF
  if ! podman_healthy; then
    rm -f "$PODMAN_SOCK"
    log "starting Podman's Docker API at $PODMAN_SOCK"
    setsid nohup podman system service --time=0 "unix://$PODMAN_SOCK" >>"$LOGS/podman.log" 2>&1 < /dev/null &
    echo $! > "$STARTED/podman.pid"
    wait_for "Podman API" 30 podman_healthy || die "podman: API socket did not answer in 30 s (see $LOGS/podman.log)"
  fi
  # Containers whose processes died with everything else (a crash, a killed session): Podman's state
  # still says running and refuses to start them. They are removed; compose recreates them.
  local name pid
  while read -r name pid; do
    [ -n "$name" ] && [ "${pid:-0}" -gt 0 ] 2>/dev/null || continue
    if ! kill -0 "$pid" 2>/dev/null; then
      log "container $name: its process $pid is gone though Podman says running; removed for compose to recreate"
      pm rm -f -t 0 "$name" >/dev/null 2>&1 || true
    fi
  done < <(pm ps --filter status=running --format '{{.Names}} {{.Pid}}' 2>/dev/null)
}

# ---------- images ----------
image_label() { pm image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null || true; }

make_base_rootfs() { # a static busybox rootfs; host programs (python3, postgres, redis) come in as read-only mounts
  local root="$1"
  rm -rf "$root"; mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/app" "$root/var/run" "$root/run"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for c in sh ls cat echo sleep df du env ps kill; do ln -sf busybox "$root/bin/$c"; done
}

# A fingerprint of the replica's code as baked into the images: a container built from other code is stale.
app_sha() { (cd "$BUILD/rootfs/app" && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum | sha256sum | cut -c1-16); }

build_images() {
  make_base_rootfs "$BUILD/rootfs"
  if ! pm image exists localhost/remediation-base:1; then
    tar -C "$BUILD/rootfs" -cf "$BUILD/base.tar" .
    pm import "$BUILD/base.tar" localhost/remediation-base:1 >/dev/null || die "images: podman import of the base image failed"
    log "built localhost/remediation-base:1"
  fi
  # The Alfred replica (drill/alfred: FastAPI, SQLAlchemy, alembic, RQ on the host's Debian python3),
  # baked into tagged images with /app as the working directory, as the seeds run it.
  (cd "$REPO_ROOT/drill/alfred" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - .) | tar -C "$BUILD/rootfs/app" -xf - \
    || die "images: copying drill/alfred into the image failed"
  local sha; sha="$(app_sha)"
  local tag role head
  local -A packed=()
  rm -f "$BUILD"/app-*.tar
  for role in api worker; do
    for tag in "${API_TAGS[@]}" "$BAD_TAG" "$AUTH_BUG_TAG"; do
      local img="localhost/alfred-$role:$tag"
      head="$(release_head "$tag")"
      # The image label names the code and the migrations it ships: other code or another head rebuilds it.
      if [ "$(image_label "$img" app.sha)" = "$sha.$head" ]; then continue; fi
      [ -n "${packed[$head]:-}" ] || { release_tar "$head" "$BUILD/app-$head.tar"; packed[$head]=1; }
      local bad=0; [ "$tag" = "$BAD_TAG" ] && bad=1
      local authbug=0; [ "$tag" = "$AUTH_BUG_TAG" ] && authbug=1
      pm import \
        --change "ENV APP_VERSION=$tag" --change "ENV APP_ROLE=$role" --change "ENV DRILL_BAD_RELEASE=$bad" --change "ENV DRILL_AUTH_BUG=$authbug" \
        --change "ENV PYTHONDONTWRITEBYTECODE=1" --change "ENV PYTHONUNBUFFERED=1" --change "WORKDIR /app" \
        --change "LABEL app.sha=$sha.$head" --change "LABEL org.opencontainers.image.version=$tag" \
        --change "CMD [\"/usr/bin/python3\", \"-m\", \"app\", \"$role\"]" \
        "$BUILD/app-$head.tar" "$img" >/dev/null || die "images: podman import of $img failed"
      log "built $img (migrations up to $head)"
    done
  done
  rm -f "$BUILD"/app-*.tar
}

# release_head TAG: the newest alembic revision release TAG ships (drill/releases.tsv).
release_head() {
  local head; head="$(awk -F'\t' -v t="$1" '$1 == t { print $2 }' "$REPO_ROOT/drill/releases.tsv")"
  [ -n "$head" ] || die "images: release $1 is not in drill/releases.tsv"
  echo "$head"
}

# release_tar HEAD FILE: the image's root file system with the migrations up to HEAD only.
release_tar() {
  local head="$1" out="$2" versions="$BUILD/rootfs/app/src/backend/migrations/versions" f rev
  local -a exclude=()
  for f in "$versions"/*.py; do
    rev="$(basename "$f")"; rev="${rev%%_*}"
    if [[ "$rev" =~ ^[0-9]+$ ]] && (( 10#$rev > 10#$head )); then exclude+=(--exclude "./app/src/backend/migrations/versions/$(basename "$f")"); fi
  done
  tar -C "$BUILD/rootfs" "${exclude[@]}" -cf "$out" . || die "images: packing the release with migrations up to $head failed"
}

# ---------- SMTP relays (host processes: the api runs on the host network) ----------
smtp_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 3 <&3" 2>/dev/null | grep -qE '^[245][0-9]{2}$'; }
smtp_healthy() { smtp_answers "$DRILL_SMTP_PORT" && smtp_answers "$DRILL_SMTP_SANDBOX_PORT"; }

smtp_up() {
  if smtp_healthy; then return; fi
  stop_pidfile smtp-relays
  log "starting the drill's SMTP relays (primary :$DRILL_SMTP_PORT, sandbox :$DRILL_SMTP_SANDBOX_PORT)"
  STACK_DIR="$STACK_DIR" DRILL_SMTP_PORT="$DRILL_SMTP_PORT" DRILL_SMTP_SANDBOX_PORT="$DRILL_SMTP_SANDBOX_PORT" \
    setsid nohup "$REPO_ROOT/node_modules/.bin/tsx" "$REPO_ROOT/drill/src/smtp-peer.ts" >>"$LOGS/smtp-relays.log" 2>&1 < /dev/null &
  echo $! > "$STARTED/smtp-relays.pid"
  wait_for "SMTP relays" 30 smtp_healthy || die "smtp: the relays did not answer in 30 s (see $LOGS/smtp-relays.log)"
}

# ---------- drill containers: the Docker Compose project "alfred" (drill/docker-compose.yml) ----------
container_running() { [ "$(pm container inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = "true" ]; }

# docker compose (v2, the CLI plugin scripts/install.sh builds) against Podman's Docker API.
compose() { DOCKER_HOST="unix://$PODMAN_SOCK" docker compose --project-directory "$REPO_ROOT/drill" -f "$REPO_ROOT/drill/docker-compose.yml" "$@"; }

# The files the compose file reads: drill/.env (paths and ports, so `docker compose ...` works from
# drill/ by hand too) and $STACK_DIR/drill/app.env (the services' secrets, mode 600).
write_compose_env() {
  cat > "$REPO_ROOT/drill/.env" <<ENV
STACK_DIR=$STACK_DIR
DRILL_DB_PORT=$DRILL_DB_PORT
DRILL_REDIS_PORT=$DRILL_REDIS_PORT
DRILL_API_PORT=$DRILL_API_PORT
DRILL_WORKER_PORT=$DRILL_WORKER_PORT
DRILL_TLS_PORT=$DRILL_TLS_PORT
DRILL_SMTP_PORT=$DRILL_SMTP_PORT
ENV
  local app_env="$STACK_DIR/drill/app.env"
  (umask 077; cat > "$app_env.tmp" <<ENV
DATABASE_URL=postgres://alfred:$(secret alfred-db-password)@127.0.0.1:$DRILL_DB_PORT/alfred
REDIS_URL=redis://127.0.0.1:$DRILL_REDIS_PORT
ADMIN_KEY=$(secret alfred-admin-key)
JWT_SECRET=$(secret alfred-jwt-secret)
ENV
  )
  mv "$app_env.tmp" "$app_env"
}

# compose_up SERVICE...: create what is missing, start what is stopped; a container the engine
# recreated (another tag, env or memory limit) is kept as it is, as `docker compose up` keeps it.
compose_up() {
  compose up -d --no-recreate --no-deps "$@" >>"$LOGS/compose.log" 2>&1 \
    || die "compose: up $* failed (see $LOGS/compose.log)"
}

db_up() {
  local data="$STACK_DIR/drill/pgdata"
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"; chown postgres:postgres "$data"; chmod 700 "$data"
    secret postgres-password > /dev/null
    local pw="$STACK_DIR/drill/pwfile"; (umask 077; cat "$SECRETS/postgres-password" > "$pw"); chown postgres "$pw"
    su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/initdb -D '$data' -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile='$pw'" \
      >"$LOGS/initdb.log" 2>&1 || die "db: initdb failed (see $LOGS/initdb.log)"
    rm -f "$pw"
  fi
  compose_up db
  wait_for "drill db" 30 pg_isready -q -h 127.0.0.1 -p "$DRILL_DB_PORT" || die "db: not accepting connections on $DRILL_DB_PORT"
  # Roles and database for the app (idempotent). SQL goes through stdin so no password shows in ps.
  local app_pw; app_pw="$(secret alfred-db-password)"
  export PGPASSWORD; PGPASSWORD="$(secret postgres-password)"
  local q=(psql -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DRILL_DB_PORT" -U postgres -d postgres)
  if [ "$("${q[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='alfred'")" != "1" ]; then
    "${q[@]}" -c "CREATE ROLE alfred LOGIN" >/dev/null || die "db: creating role alfred failed"
  fi
  printf "ALTER ROLE alfred WITH LOGIN PASSWORD '%s';\n" "$app_pw" | "${q[@]}" >/dev/null || die "db: setting alfred's password failed"
  # A database the earlier TypeScript drill migrated (schema_migrations, no alembic_version) cannot be
  # taken over by alembic: it starts afresh, and so does the dump taken from it.
  if [ "$("${q[@]}" -c "SELECT 1 FROM pg_database WHERE datname='alfred'")" = "1" ] \
     && [ "$(psql -q -tA -h 127.0.0.1 -p "$DRILL_DB_PORT" -U postgres -d alfred -c \
          "SELECT to_regclass('public.schema_migrations') IS NOT NULL AND to_regclass('public.alembic_version') IS NULL")" = "t" ]; then
    if pm container exists alfred-api; then compose stop api worker proxy >>"$LOGS/compose.log" 2>&1 || true; fi
    "${q[@]}" -c "DROP DATABASE alfred WITH (FORCE)" >/dev/null || die "db: dropping the old drill database failed"
    rm -f "$STACK_DIR/drill/backups/alfred-latest.dump"
    redis-cli -p "$DRILL_REDIS_PORT" flushdb >/dev/null 2>&1 || true
    log "drill database recreated for alembic (it was migrated by the old drill)"
  fi
  if [ "$("${q[@]}" -c "SELECT 1 FROM pg_database WHERE datname='alfred'")" != "1" ]; then
    "${q[@]}" -c "CREATE DATABASE alfred OWNER alfred" >/dev/null || die "db: creating database alfred failed"
  fi
  unset PGPASSWORD
}

# An app container built from an older bundle is replaced, so `up` always runs the current drill code.
replace_stale() {
  local name="$1" sha="$2"
  pm container exists "$name" || return 0
  local label; label="$(pm container inspect --format '{{ index .Config.Labels "app.sha" }}' "$name" 2>/dev/null)"
  # The label is <code>.<alembic head>: a container on any release of the current code is kept.
  if [ "${label%%.*}" != "$sha" ]; then
    pm rm -f "$name" >/dev/null && log "replacing $name (drill code changed)"
  fi
}

app_up() {
  local sha; sha="$(app_sha)"
  for c in alfred-api alfred-worker alfred-proxy; do replace_stale "$c" "$sha"; done
  compose_up api
  wait_for "drill api" 30 curl -fsS -o /dev/null "http://127.0.0.1:$DRILL_API_PORT/health" \
    || die "api: /health did not answer on $DRILL_API_PORT (docker compose logs api)"
  compose_up worker proxy
  wait_for "drill worker" 30 curl -fsS -o /dev/null "http://127.0.0.1:$DRILL_WORKER_PORT/health" \
    || die "worker: /health did not answer on $DRILL_WORKER_PORT (docker compose logs worker)"
  wait_for "drill tls proxy" 30 curl -kfsS -o /dev/null "https://127.0.0.1:$DRILL_TLS_PORT/health" \
    || die "proxy: https /health did not answer on $DRILL_TLS_PORT (docker compose logs proxy)"
}

redis_ours() { container_running alfred-redis && redis-cli -p "$DRILL_REDIS_PORT" ping; }

redis_up() {
  compose_up redis
  # Another redis-server on the same port (Debian's own service) would answer PING too: ours must run.
  wait_for "drill redis" 20 redis_ours || die "redis: no PONG from alfred-redis on $DRILL_REDIS_PORT (is another redis-server bound to it? docker compose logs redis)"
}

# The dump the restore runbooks use, where the seeds keep it (/backups/alfred-latest.dump), taken
# once as alfred after the api has migrated and seeded the database, as `pg_dump -U alfred` would.
backup_up() {
  if [ -s "$STACK_DIR/drill/backups/alfred-latest.dump" ]; then return; fi
  compose exec -T db pg_dump -Fc -U alfred -d alfred -f /backups/alfred-latest.dump \
    || die "db: pg_dump into /backups/alfred-latest.dump failed"
  log "drill backup written to $STACK_DIR/drill/backups/alfred-latest.dump"
}

drill_up() {
  mkdir -p "$STACK_DIR/drill/backups" "$STACK_DIR/drill/tls" "$STACK_DIR/drill/evidence"
  chown postgres "$STACK_DIR/drill/backups"
  bash "$REPO_ROOT/scripts/drill-tls.sh" "$STACK_DIR/drill/tls" || die "tls: creating the drill certificate failed"
  build_images
  write_compose_env
  db_up
  redis_up
  smtp_up
  app_up
  backup_up
}

# Which Temporal `up` started last: dev (the dev server, the default) or cluster (scripts/cluster.sh).
PROFILE_FILE="$STACK_DIR/temporal-profile"
temporal_profile() { cat "$PROFILE_FILE" 2>/dev/null || echo dev; }

cmd_up() {
  local t0=$SECONDS profile=dev a
  for a in "$@"; do
    case "$a" in
      --temporal=dev|--temporal=cluster) profile="${a#--temporal=}" ;;
      *) usage >&2; die "unknown option $a" ;;
    esac
  done
  mkdir -p "$STACK_DIR" "$SECRETS" "$STARTED" "$LOGS" "$BUILD"
  chmod 700 "$SECRETS"
  bash "$REPO_ROOT/scripts/install.sh"
  codec_up
  local ui="http://127.0.0.1:$TEMPORAL_UI_PORT"
  if [ "$profile" = cluster ]; then
    bash "$REPO_ROOT/scripts/cluster.sh" up || die "the cluster profile did not come up"
    ui="http://127.0.0.1:$CLUSTER_UI_PORT"
  else
    temporal_up
  fi
  echo "$profile" > "$PROFILE_FILE"
  podman_up
  drill_up
  write_env "$profile"
  log "stack up in $((SECONDS - t0)) s — Temporal ($profile) UI: $ui"
}

# The engine reads its coordinates from this file (no secrets in it: those stay in $SECRETS). With
# the cluster profile, also the frontend's name, its CA and the engine's client certificate.
write_env() {
  {
    if [ "$1" = cluster ]; then cat "$CLUSTER_DIR/engine.env"; else echo "TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT"; fi
    echo "DOCKER_SOCKET=$PODMAN_SOCK"
    echo "STACK_DIR=$STACK_DIR"
  } > "$STACK_DIR/engine.env"
}

status_line() { # status_line NAME CHECK...
  local name="$1"; shift
  if "$@" >/dev/null 2>&1; then printf '%-16s healthy\n' "$name"; else printf '%-16s DOWN\n' "$name"; return 1; fi
}

cmd_status() {
  local rc=0
  status_line codec-server codec_healthy || rc=1
  if [ "$(temporal_profile)" = cluster ]; then
    bash "$REPO_ROOT/scripts/cluster.sh" status || rc=1
  else
    status_line temporal temporal_healthy || rc=1
    status_line temporal-ui ui_healthy || rc=1
  fi
  status_line podman-api podman_healthy || rc=1
  status_line alfred-db pg_isready -q -h 127.0.0.1 -p "$DRILL_DB_PORT" || rc=1
  status_line alfred-redis redis-cli -p "$DRILL_REDIS_PORT" ping || rc=1
  status_line alfred-api curl -fsS "http://127.0.0.1:$DRILL_API_PORT/health" || rc=1
  status_line alfred-worker curl -fsS "http://127.0.0.1:$DRILL_WORKER_PORT/health" || rc=1
  status_line alfred-proxy curl -kfsS "https://127.0.0.1:$DRILL_TLS_PORT/health" || rc=1
  status_line smtp-relays smtp_healthy || rc=1
  return $rc
}

cmd_down() {
  if podman_healthy; then
    local ids; ids="$(pm ps -q --filter label=remediation.managed-by=stack)"
    [ -z "$ids" ] || { pm stop -t 3 $ids >/dev/null 2>&1 || true; log "stopped drill containers"; }
  fi
  # Exec sessions (df, pg_dump) leave a conmon behind for a few minutes; none outlives `down`.
  pkill -f "conmon .*$PODMAN_DIR/storage" 2>/dev/null || true
  stop_pidfile receiver
  stop_pidfile worker
  stop_pidfile codec-server
  stop_pidfile smtp-relays
  [ -x "$REPO_ROOT/scripts/alerting.sh" ] && bash "$REPO_ROOT/scripts/alerting.sh" down || true
  stop_pidfile podman
  stop_pidfile temporal
  if [ -d "$CLUSTER_DIR" ]; then bash "$REPO_ROOT/scripts/cluster.sh" down; fi
}

cmd_reset() {
  if podman_healthy; then
    local ids; ids="$(pm ps -aq --filter label=com.docker.compose.project=alfred)"
    [ -z "$ids" ] || pm rm -f $ids >/dev/null 2>&1 || true
  fi
  cmd_down
  rm -rf "$STACK_DIR/drill"
  log "drill containers and data removed"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  status) cmd_status ;;
  down) cmd_down ;;
  reset) cmd_reset ;;
  -h|--help|help) usage ;;
  *) usage; exit 2 ;;
esac
