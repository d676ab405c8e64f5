# A throwaway PostgreSQL cluster for the conformance suites (sourced by run.sh): initdb into a temp
# dir, pg_ctl on a free loopback port, as the `postgres` user when run as root (initdb refuses root).
# Sets PG_CLUSTER_URL. Needs the PostgreSQL server binaries (apt-get install -y postgresql).

pg_cluster_bin() {
  if [[ -n "${CALLSIGN_PG_BIN:-}" ]]; then echo "$CALLSIGN_PG_BIN"; return; fi
  local newest
  newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [[ -n "$newest" && -x "$newest/initdb" ]]; then echo "$newest"; return; fi
  dirname "$(command -v initdb)"
}

pg_cluster_as() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_cluster_start() {
  PG_CLUSTER_BIN="$(pg_cluster_bin)"
  PG_CLUSTER_DIR="$(mktemp -d -t callsign-pg-XXXXXX)"
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PG_CLUSTER_DIR"; fi
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  pg_cluster_as "$PG_CLUSTER_BIN/initdb" -D "$PG_CLUSTER_DIR/data" -U postgres --auth=trust \
    -E UTF8 --no-sync >/dev/null
  pg_cluster_as "$PG_CLUSTER_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -l "$PG_CLUSTER_DIR/postgres.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $PG_CLUSTER_DIR" -w -t 60 start >/dev/null
  PG_CLUSTER_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export PG_CLUSTER_URL
}

pg_cluster_stop() {
  if [[ -n "${PG_CLUSTER_DIR:-}" && -d "$PG_CLUSTER_DIR" ]]; then
    pg_cluster_as "$PG_CLUSTER_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_CLUSTER_DIR"
  fi
}
