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
# One run of the driver on a database of its own; extra arguments are environment settings.
run() { # DATABASE [NAME=VALUE…]
  local db=$1; shift
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE $db" postgres
  env DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$db" RUST_LOG=warn "$@" \
    ./target/release/exchange_latency "$SEQ" "$TOTAL" "$CONC"
}
SEQ=${1:-300} TOTAL=${2:-2000} CONC=${3:-16}
run bench
# The same with the worker woken only by NOTIFY (coalesced by the server, §6.3 of the contract),
# as a worker in another process is.
run bench_notify EXCHANGE_WAKE=notify
# And with the insert trigger notifying in each commit (before migration 0005; the Lambda path).
run bench_trigger EXCHANGE_WAKE=notify BENCH_CODE_NOTIFY=trigger
