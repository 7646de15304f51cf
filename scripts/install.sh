#!/usr/bin/env bash
# Installs everything the engine and its drill stack need, from the package registries only.
# Idempotent: each step checks first and costs milliseconds when already done.
#   scripts/install.sh                      what the default stack (the Temporal dev server) needs
#   scripts/install.sh --temporal=cluster   also the cluster profile's server, schema tool and UI (scripts/cluster.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(podman runc busybox-static redis-server postgresql-15 openssl curl ca-certificates prometheus prometheus-alertmanager chromium
  # The Alfred replica's Python stack in drill/alfred, and the commands the seeds run in its
  # containers: python, alembic, rq.
  python3 python-is-python3 python3-fastapi python3-uvicorn python3-sqlalchemy python3-alembic alembic
  python3-psycopg2 python3-redis python3-rq python3-httpx
  # Maven (and with it a Java runtime): Temporal's time-skipping test server comes from Maven Central.
  maven
  # zsh: the tests check the client's zsh completion script with the shell itself (zsh -n).
  zsh)

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then return; fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install of ${missing[*]} failed"
  # The Debian postgresql package starts its own cluster on 5432; the drill runs its own, so stop it.
  if command -v pg_ctlcluster >/dev/null 2>&1; then $sudo pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
  # redis-server's package starts a system service on 6379; the drill runs its own on its own port.
  if command -v service >/dev/null 2>&1; then $sudo service redis-server stop >/dev/null 2>&1 || true; fi
}

install_temporal_cli() {
  local bin; bin="$(temporal_bin)"
  if [ -x "$bin" ]; then return; fi
  command -v go >/dev/null || die "Go is needed to build the Temporal CLI (go >= 1.25)"
  log "building the Temporal CLI v1.5.1 with go install (first time only, takes a few minutes)"
  if ! CGO_ENABLED=0 go install github.com/temporalio/cli/cmd/temporal@v1.5.1; then
    log "go install failed; retrying without the checksum database (modules still come from the proxy)"
    CGO_ENABLED=0 GOSUMDB=off go install github.com/temporalio/cli/cmd/temporal@v1.5.1 || die "building the Temporal CLI failed"
  fi
  [ -x "$bin" ] || die "Temporal CLI not found at $bin after go install (set TEMPORAL_BIN)"
}

# Docker Compose v2 as the docker CLI's plugin, built from the Go module proxy: the drill runs as a
# compose project, and the seeds' `docker compose ...` commands work against it. v2.32.4 is the newest
# release `go install` accepts (later go.mod files carry an exclude directive).
COMPOSE_VERSION=v2.32.4
compose_plugin() { echo "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"; }

install_compose() {
  local plugin; plugin="$(compose_plugin)"
  # A plugin built with go install reports its version as "dev": read the module version instead.
  if [ -x "$plugin" ] && go version -m "$plugin" 2>/dev/null | grep -qE "^\s+mod\s+github.com/docker/compose/v2\s+$COMPOSE_VERSION\s"; then return; fi
  command -v docker >/dev/null || die "the docker CLI is needed for docker compose (Debian: apt-get install docker.io)"
  command -v go >/dev/null || die "Go is needed to build Docker Compose (go >= 1.25)"
  log "building Docker Compose $COMPOSE_VERSION with go install (first time only, about 2 minutes)"
  local gobin; gobin="$(mktemp -d)"
  if ! CGO_ENABLED=0 GOBIN="$gobin" go install "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION"; then
    log "go install failed; retrying without the checksum database (modules still come from the proxy)"
    CGO_ENABLED=0 GOSUMDB=off GOBIN="$gobin" go install "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" || die "building Docker Compose failed"
  fi
  mkdir -p "$(dirname "$plugin")"
  install -m 755 "$gobin/cmd" "$plugin"
  rm -rf "$gobin"
}

# The cluster profile's binaries (scripts/cluster.sh): the Temporal server and its SQL schema tool at the
# version the CLI embeds, and the Web UI server the CLI embeds, each built with go install into a
# temporary GOBIN and installed under the stack's bin directory by a name of its own (go install names
# them server, sql and server). Built only for the cluster profile; kept while the module version
# the binary carries is the wanted one.
# go_install_as NAME PACKAGE MODULE VERSION MINUTES
go_install_as() {
  local name="$1" pkg="$2" mod="$3" version="$4" minutes="$5" dest gobin
  dest="$(stack_bin "$name")"
  if [ -x "$dest" ] && go version -m "$dest" 2>/dev/null | grep -qE "^\s+mod\s+$mod\s+$version\s"; then return; fi
  command -v go >/dev/null || die "Go is needed to build $name (go >= 1.25)"
  log "building $name ($pkg@$version) with go install (first time only, about $minutes)"
  gobin="$(mktemp -d)"
  if ! CGO_ENABLED=0 GOBIN="$gobin" go install "$pkg@$version"; then
    log "go install failed; retrying without the checksum database (modules still come from the proxy)"
    CGO_ENABLED=0 GOSUMDB=off GOBIN="$gobin" go install "$pkg@$version" || { rm -rf "$gobin"; die "building $name failed"; }
  fi
  mkdir -p "$(dirname "$dest")"
  install -m 755 "$gobin/$(basename "$pkg")" "$dest"
  rm -rf "$gobin"
}

install_temporal_cluster() {
  go_install_as temporal-server go.temporal.io/server/cmd/server go.temporal.io/server "$TEMPORAL_SERVER_VERSION" "5 minutes"
  go_install_as temporal-sql-tool go.temporal.io/server/cmd/tools/sql go.temporal.io/server "$TEMPORAL_SERVER_VERSION" "10 seconds"
  go_install_as temporal-ui-server github.com/temporalio/ui-server/v2/cmd/server github.com/temporalio/ui-server/v2 "$TEMPORAL_UI_SERVER_VERSION" "a minute"
  # The schema the sql tool applies ships with the server's module, which go install left in the cache.
  [ -d "$(temporal_schema_dir)" ] || go mod download "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" >/dev/null \
    || die "downloading go.temporal.io/server@$TEMPORAL_SERVER_VERSION for its schema failed"
}

# Temporal's time-skipping test server (the Java SDK's io.temporal:temporal-test-server), for the tests
# that skip hours of workflow time in seconds (test/workflows/*.time-skipping.test.ts): Maven copies it
# and its dependencies from Maven Central into $STACK_DIR/test-server/lib, and scripts/temporal-test-server
# runs it from there. Done again only when scripts/test-server/pom.xml changes.
TEST_SERVER_POM="$REPO_ROOT/scripts/test-server/pom.xml"

install_test_server() {
  local dir="$STACK_DIR/test-server" want have=""
  want="$(sha256sum "$TEST_SERVER_POM" | cut -d' ' -f1)"
  [ -f "$dir/pom.sha256" ] && have="$(cat "$dir/pom.sha256")"
  if [ "$want" = "$have" ] && compgen -G "$dir/lib/temporal-test-server-*.jar" >/dev/null; then return; fi
  command -v mvn >/dev/null || die "Maven is needed for Temporal's test server (Debian: apt-get install maven)"
  command -v java >/dev/null || die "a Java runtime is needed for Temporal's test server (Debian: apt-get install default-jre-headless)"
  log "copying Temporal's test server from Maven Central (first time only, about 10 seconds)"
  mkdir -p "$dir"
  rm -rf "$dir/lib.new"
  if ! mvn -B -q -f "$TEST_SERVER_POM" dependency:copy-dependencies -DoutputDirectory="$dir/lib.new" >"$dir/mvn.log" 2>&1; then
    tail -n 30 "$dir/mvn.log" >&2
    die "copying the test server with Maven failed (log: $dir/mvn.log)"
  fi
  rm -rf "$dir/lib"
  mv "$dir/lib.new" "$dir/lib"
  echo "$want" > "$dir/pom.sha256"
}

install_npm_packages() {
  cd "$REPO_ROOT"
  local want have=""
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  [ -f node_modules/.lock-sha256 ] && have="$(cat node_modules/.lock-sha256)"
  if [ "$want" = "$have" ]; then return; fi
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
  echo "$want" > node_modules/.lock-sha256
}

# The compiled client bin/remediate runs (scripts/build-cli.sh: about a second; nothing when dist is
# newer than the sources).
build_client() {
  bash "$REPO_ROOT/scripts/build-cli.sh" || die "building the client (scripts/build-cli.sh) failed"
}

main() {
  local cluster=0 a
  for a in "$@"; do
    case "$a" in
      --temporal=cluster) cluster=1 ;;
      --temporal=dev) ;;
      *) die "usage: scripts/install.sh [--temporal=dev|cluster] (unknown option $a)" ;;
    esac
  done
  install_debian_packages
  install_temporal_cli
  install_compose
  install_npm_packages
  build_client
  install_test_server
  if [ "$cluster" = 1 ]; then install_temporal_cluster; fi
}
main "$@"
