#!/usr/bin/env bash
# Prometheus + Alertmanager for drills, wired to the alert receiver.
#   scripts/alerting.sh up       render configs, create the receiver's token files, start what is not running
#                                (a running one reloads its rendered config); idempotent
#   scripts/alerting.sh status   each component and whether it is healthy (exit 1 if any is not)
#   scripts/alerting.sh down     stop only what this script started
# Settings (environment): PROMETHEUS_PORT (59090), ALERTMANAGER_PORT (59093), RECEIVER_URL
# (http://127.0.0.1:8095), ALERTING_INTERVAL (scrape/evaluation interval, 5s), ALERTING_RESEND_DELAY
# (10s), ALERTING_EXTRA_RULES (rule files copied into rules.d/, space separated).
# Data, logs and pid files: $STACK_DIR/alerting.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMETHEUS_PORT="${PROMETHEUS_PORT:-59090}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-59093}"
RECEIVER_URL="${RECEIVER_URL:-http://127.0.0.1:${RECEIVER_PORT:-8095}}"
ALERTING_INTERVAL="${ALERTING_INTERVAL:-5s}"
# How often Prometheus re-sends firing alerts; short, so an alert sent before Alertmanager was
# discovered is not lost for a minute (Alertmanager deduplicates the repeats).
ALERTING_RESEND_DELAY="${ALERTING_RESEND_DELAY:-10s}"
ALERTING_DIR="$STACK_DIR/alerting"
SECRETS="$STACK_DIR/secrets"
PROM_BIN="${PROMETHEUS_BIN:-$(command -v prometheus || true)}"
AM_BIN="${ALERTMANAGER_BIN:-$(command -v prometheus-alertmanager || command -v alertmanager || true)}"

prom_url="http://127.0.0.1:$PROMETHEUS_PORT"
am_url="http://127.0.0.1:$ALERTMANAGER_PORT"

prom_healthy() { curl -fsS -o /dev/null "$prom_url/-/ready" 2>/dev/null; }
am_healthy() { curl -fsS -o /dev/null "$am_url/-/ready" 2>/dev/null; }

# pid_alive NAME: the pid file exists and names a live process of that program (not a reused pid).
pid_alive() {
  local pidfile="$ALERTING_DIR/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

ensure_token() {
  local f="$SECRETS/$1"
  mkdir -p "$SECRETS"
  chmod 700 "$SECRETS"
  if [ ! -s "$f" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$f")
    log "created $f"
  fi
}

render() {
  mkdir -p "$ALERTING_DIR/prometheus-data" "$ALERTING_DIR/alertmanager-data" "$ALERTING_DIR/rules.d"
  cp "$REPO_ROOT/config/prometheus/alert-rules.yml" "$ALERTING_DIR/alert-rules.yml"
  find "$ALERTING_DIR/rules.d" -name '*.yml' -delete
  local f
  for f in ${ALERTING_EXTRA_RULES:-}; do cp "$f" "$ALERTING_DIR/rules.d/"; done
  local receiver_hostport="${RECEIVER_URL#http://}"
  receiver_hostport="${receiver_hostport%%/*}"
  sed -e "s/^\(  scrape_interval:\).*/\1 $ALERTING_INTERVAL/" \
      -e "s/^\(  evaluation_interval:\).*/\1 $ALERTING_INTERVAL/" \
      -e "s/127\.0\.0\.1:59093/127.0.0.1:$ALERTMANAGER_PORT/g" \
      -e "s/127\.0\.0\.1:59090/127.0.0.1:$PROMETHEUS_PORT/g" \
      -e "s/127\.0\.0\.1:8095/$receiver_hostport/g" \
      "$REPO_ROOT/config/prometheus/prometheus.yml" > "$ALERTING_DIR/prometheus.yml"
  sed -e "s#http://127\.0\.0\.1:8095#${RECEIVER_URL%/}#" \
      -e "s#credentials_file: .*#credentials_file: $SECRETS/receiver-alertmanager-token#" \
      "$REPO_ROOT/config/alertmanager/alertmanager.yml" > "$ALERTING_DIR/alertmanager.yml"
  if command -v promtool >/dev/null; then
    promtool check config "$ALERTING_DIR/prometheus.yml" >/dev/null || die "rendered prometheus.yml is invalid (promtool check config $ALERTING_DIR/prometheus.yml)"
  fi
  if command -v amtool >/dev/null; then
    amtool check-config "$ALERTING_DIR/alertmanager.yml" >/dev/null || die "rendered alertmanager.yml is invalid (amtool check-config $ALERTING_DIR/alertmanager.yml)"
  fi
}

alertmanager_up() {
  if pid_alive alertmanager alertmanager && am_healthy; then
    curl -fsS -X POST -o /dev/null "$am_url/-/reload" || die "alertmanager: reload failed (see $ALERTING_DIR/alertmanager.log)"
    return
  fi
  if am_healthy; then die "something else answers on $am_url; set ALERTMANAGER_PORT"; fi
  log "starting Alertmanager on $am_url"
  setsid nohup "$AM_BIN" --config.file="$ALERTING_DIR/alertmanager.yml" \
    --storage.path="$ALERTING_DIR/alertmanager-data" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address= \
    --log.level=warn >>"$ALERTING_DIR/alertmanager.log" 2>&1 </dev/null &
  echo $! > "$ALERTING_DIR/alertmanager.pid"
  wait_for "Alertmanager" 30 am_healthy || die "alertmanager: not ready in 30 s (see $ALERTING_DIR/alertmanager.log)"
}

prometheus_up() {
  if pid_alive prometheus prometheus && prom_healthy; then
    curl -fsS -X POST -o /dev/null "$prom_url/-/reload" || die "prometheus: reload failed (see $ALERTING_DIR/prometheus.log)"
    return
  fi
  if prom_healthy; then die "something else answers on $prom_url; set PROMETHEUS_PORT"; fi
  log "starting Prometheus on $prom_url"
  setsid nohup "$PROM_BIN" --config.file="$ALERTING_DIR/prometheus.yml" \
    --storage.tsdb.path="$ALERTING_DIR/prometheus-data" \
    --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle \
    --rules.alert.resend-delay="$ALERTING_RESEND_DELAY" \
    --log.level=warn >>"$ALERTING_DIR/prometheus.log" 2>&1 </dev/null &
  echo $! > "$ALERTING_DIR/prometheus.pid"
  wait_for "Prometheus" 60 prom_healthy || die "prometheus: not ready in 60 s (see $ALERTING_DIR/prometheus.log)"
}

stop_one() {
  local name="$1" pattern="$2" pidfile="$ALERTING_DIR/$1.pid" pid i
  if pid_alive "$name" "$pattern"; then
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

cmd_up() {
  [ -n "$PROM_BIN" ] || die "prometheus is not installed (Debian package prometheus; scripts/install.sh)"
  [ -n "$AM_BIN" ] || die "alertmanager is not installed (Debian package prometheus-alertmanager; scripts/install.sh)"
  mkdir -p "$ALERTING_DIR"
  ensure_token receiver-alertmanager-token
  ensure_token receiver-generic-token
  render
  alertmanager_up
  prometheus_up
  log "alerting up: Prometheus $prom_url, Alertmanager $am_url → $RECEIVER_URL/alerts/alertmanager"
}

cmd_status() {
  local rc=0
  if pid_alive prometheus prometheus && prom_healthy; then echo "prometheus    ok    $prom_url (pid $(cat "$ALERTING_DIR/prometheus.pid"))"
  elif prom_healthy; then echo "prometheus    ok    $prom_url (not started by this script)"
  else echo "prometheus    DOWN  $prom_url"; rc=1; fi
  if pid_alive alertmanager alertmanager && am_healthy; then echo "alertmanager  ok    $am_url (pid $(cat "$ALERTING_DIR/alertmanager.pid"))"
  elif am_healthy; then echo "alertmanager  ok    $am_url (not started by this script)"
  else echo "alertmanager  DOWN  $am_url"; rc=1; fi
  if curl -fsS -o /dev/null "${RECEIVER_URL%/}/healthz" 2>/dev/null; then echo "receiver      ok    $RECEIVER_URL"
  else echo "receiver      DOWN  $RECEIVER_URL (npm run receiver)"; rc=1; fi
  return $rc
}

cmd_down() {
  stop_one prometheus prometheus
  stop_one alertmanager alertmanager
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  down) cmd_down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
