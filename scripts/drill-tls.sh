#!/usr/bin/env bash
# Self-signed TLS certificate for the drill's proxy (CN=alfred.local, SAN 127.0.0.1 + localhost, 30 days).
#   scripts/drill-tls.sh DIR   writes DIR/server.crt + DIR/server.key, only if missing or expiring within 7 days
set -euo pipefail

dir="${1:-}"
[ -n "$dir" ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$dir"
crt="$dir/server.crt"
key="$dir/server.key"

if [ -s "$crt" ] && [ -s "$key" ] && openssl x509 -checkend $((7 * 24 * 3600)) -noout -in "$crt" >/dev/null 2>&1; then
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -nodes -newkey rsa:2048 -days 30 -sha256 \
  -keyout "$tmp/server.key" -out "$tmp/server.crt" -subj "/CN=alfred.local" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:alfred.local" >/dev/null 2>&1 \
  || { echo "error: openssl could not create the drill certificate" >&2; exit 1; }
chmod 600 "$tmp/server.key"
chmod 644 "$tmp/server.crt"
# Replace both files only once both exist, so the proxy never reads a half-written pair.
mv -f "$tmp/server.key" "$key"
mv -f "$tmp/server.crt" "$crt"
printf '[%s] drill TLS certificate written to %s (expires %s)\n' "$(date -u +%H:%M:%S)" "$dir" \
  "$(openssl x509 -enddate -noout -in "$crt" | cut -d= -f2)" >&2
