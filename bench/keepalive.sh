#!/usr/bin/env bash
# Keep-alive sweep of 10,000 malls on PostgreSQL against the sandbox (refreshes per second,
# exactly one grant per mall), with bare refresh calls as the peer, in one run.
# Usage: bench/keepalive.sh [MALLS] [PEER_MALLS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh
cargo build --release --locked -p cafe24-bench --bin keepalive_sweep >&2
pg_start
trap pg_stop EXIT
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench" postgres
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench" RUST_LOG=warn ./target/release/keepalive_sweep "${1:-10000}" "${2:-2000}" "${3:-32}"
