#!/bin/sh
# First start of alfred-db (docker-entrypoint-initdb.d): the app's role and database, as
# scripts/stack.sh creates them. The password comes from a compose secret and reaches psql through
# stdin (printf is a shell builtin), so it never shows in ps or in the logs.
set -eu
pw="$(sed "s/'/''/g" /run/secrets/alfred-db-password)"
printf "CREATE ROLE alfred LOGIN PASSWORD '%s';\n" "$pw" |
  psql -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres >/dev/null
psql -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE alfred OWNER alfred"
