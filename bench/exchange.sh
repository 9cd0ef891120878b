#!/usr/bin/env bash
# Callback -> tokens stored latency on PostgreSQL (p50/p99), sequential and concurrent, with the
# bare token round trip as the floor, in one run. Usage: bench/exchange.sh [SEQ] [TOTAL] [CONC]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh
cargo build --release --locked -p cafe24-bench --bin exchange_latency >&2
pg_start
trap pg_stop EXIT
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench" postgres
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench" RUST_LOG=warn ./target/release/exchange_latency "${1:-300}" "${2:-2000}" "${3:-16}"
