#!/usr/bin/env bash
# Callback -> tokens stored latency on PostgreSQL (p50/p99), sequential and concurrent, with the
# bare token round trip as the floor, in one run; then again with the worker woken by NOTIFY only.
# Usage: bench/exchange.sh [SEQ] [TOTAL] [CONC]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh
cargo build --release --locked -p cafe24-bench --bin exchange_latency >&2
pg_start
trap pg_stop EXIT
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench" postgres
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench" RUST_LOG=warn ./target/release/exchange_latency "${1:-300}" "${2:-2000}" "${3:-16}"
# The same with the worker woken only by NOTIFY (coalesced by the server, §6.3 of the contract),
# as a worker in another process is.
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench_notify" postgres
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench_notify" EXCHANGE_WAKE=notify RUST_LOG=warn \
  ./target/release/exchange_latency "${1:-300}" "${2:-2000}" "${3:-16}"
# And with the insert trigger notifying in each commit (before migration 0005; the Lambda path).
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench_trigger" postgres
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench_trigger" EXCHANGE_WAKE=notify \
  BENCH_CODE_NOTIFY=trigger RUST_LOG=warn ./target/release/exchange_latency "${1:-300}" "${2:-2000}" "${3:-16}"
