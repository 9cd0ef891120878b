# Source this file: `pg_start` starts a throwaway PostgreSQL cluster on a free loopback port and
# exports CAFE24_TEST_DATABASE_URL; `pg_stop` stops it and removes its directory.
# initdb refuses to run as root, so as root the cluster runs as the unprivileged `postgres`
# user (created if missing). Fails loudly, never silently.

pg_bin_dir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
  local bin run port
  bin=$(pg_bin_dir) || { echo "pg.sh: PostgreSQL binaries (initdb) not found; install postgresql" >&2; return 1; }
  PG_TMPDIR=$(mktemp -d /tmp/cafe24-pg.XXXXXX)
  run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$PG_TMPDIR"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PG_TMPDIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_TMPDIR/initdb.log" 2>&1 \
    || { echo "pg.sh: initdb failed:" >&2; cat "$PG_TMPDIR/initdb.log" >&2; return 1; }
  port=$(pg_free_port)
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TMPDIR/data" -l "$PG_TMPDIR/server.log" -w -t 60 \
    -o "-p $port -k $PG_TMPDIR -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_EXTRA_OPTS:-}" start >/dev/null \
    || { echo "pg.sh: PostgreSQL did not start:" >&2; cat "$PG_TMPDIR/server.log" >&2; return 1; }
  PG_PORT=$port
  PG_BIN=$bin
  PG_RUN=("${run[@]}")
  export PG_TMPDIR PG_PORT PG_BIN
  export CAFE24_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "pg.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_TMPDIR)" >&2
}

pg_stop() {
  [ -n "${PG_TMPDIR:-}" ] && [ -d "$PG_TMPDIR/data" ] || return 0
  "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMPDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TMPDIR"
  PG_TMPDIR=
}
