#!/usr/bin/env bash
# A throwaway PostgreSQL server for the integration tests: Debian's package, a fresh data directory,
# listening on 127.0.0.1 only. Prints the URL of a superuser to stdout; everything else to stderr.
set -euo pipefail
PORT="${AGENTMON_TEST_POSTGRES_PORT:-55432}"
DATA="${1:-$(mktemp -d /tmp/agentmon-pg.XXXXXX)}"
bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(bindir)" ]; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2 \
    || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2; }
fi
BIN="$(bindir)"
# PostgreSQL refuses to run as root: the server runs as the postgres user when we are root
AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$DATA"
  AS=(runuser -u postgres --)
fi
"${AS[@]}" "$BIN/initdb" -D "$DATA/data" -U agentmon --auth=trust -E UTF8 >&2
"${AS[@]}" "$BIN/pg_ctl" -D "$DATA/data" -l "$DATA/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DATA -c fsync=off" start >&2
echo "postgresql://agentmon@127.0.0.1:$PORT/postgres"
