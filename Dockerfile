# syntax=docker/dockerfile:1
# The engine's image: one image, three processes, chosen by the command.
#   docker run IMAGE worker         the Temporal worker (every runbook and its activities)
#   docker run IMAGE receiver       the alert receiver (webhooks in, incident workflows out)
#   docker run IMAGE codec-server   the Temporal UI's remote codec (docs/codec.md)
# Anything else is run as given (docker run -it IMAGE sh). See docs/production.md.
#
# Debian (glibc), not Alpine: @temporalio/core-bridge ships prebuilt glibc binaries.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- deps: every dependency, exactly as locked ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# ---- build: tsc to dist/, then the pre-bundled workflow code dist/workflow-bundle.js ----
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
# scripts/fault.ts imports the drill's fault catalog, so tsc compiles it too.
COPY drill/src ./drill/src
RUN npm run build

# ---- prod-deps: runtime dependencies only ----
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# MALLOC_ARENA_MAX=2 and the worker's --optimize-for-size keep a worker with hundreds of open
# incidents under 400 MiB resident (BENCHMARKS.md, concurrency); the same flags as `npm run worker`.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    ENGINE_CONFIG=/app/config/engine.yaml \
    WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    STACK_DIR=/var/lib/remediation
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY config ./config
# State and secret mount points owned by the unprivileged user, so named volumes mounted here start
# with that ownership (state: the worker's notifications; receiver: unrouted alerts).
RUN mkdir -p /var/lib/remediation/secrets /var/lib/remediation/state /var/lib/remediation/receiver \
 && chown -R node:node /var/lib/remediation \
 && chmod 700 /var/lib/remediation/secrets
COPY --chmod=755 <<'EOF' /usr/local/bin/remediation-engine
#!/bin/sh
# worker | receiver | codec-server [ARGS...]: the engine process; anything else runs as given.
set -e
case "${1:-worker}" in
  worker) [ "$#" -gt 0 ] && shift; exec node --optimize-for-size /app/dist/src/workers/main.js "$@" ;;
  receiver) shift; exec node /app/dist/src/receiver/main.js "$@" ;;
  codec-server) shift; exec node /app/dist/src/codec-server/main.js "$@" ;;
  *) exec "$@" ;;
esac
EOF
USER node
# Worker metrics (worker.metricsAddress), the receiver's webhooks, the codec server.
EXPOSE 9464 8095 8234
ENTRYPOINT ["remediation-engine"]
CMD ["worker"]
