#!/usr/bin/env bash
# Lambda benchmark: the real `bootstrap` against the serverless spec's Python handler (psycopg 3,
# a module-level connection reused while warm), both started by the same local Runtime API
# harness as crates/lambda's tests and fed the same API Gateway events, in the same run:
# cold start (process start → first response), warm latency p50/p99, peak memory (VmHWM);
# then callback → tokens stored on the Lambda path (the callback function, and the exchange
# function invoked as the scheduler does, overlapping), against a bare token round trip.
#   bench/lambda.sh                      # 10 cold starts each, 2000 warm invocations each, 100 codes
#   COLD_RUNS=20 INVOCATIONS=5000 CODES=300 bench/lambda.sh
# Loopback only; bounded by the counts above.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh

COLD_RUNS=${COLD_RUNS:-10}
INVOCATIONS=${INVOCATIONS:-2000}
CODES=${CODES:-100}
TARGET=${CARGO_TARGET_DIR:-target}
VENV=${LAMBDA_BENCH_VENV:-/tmp/cafe24-lambda-bench-venv}

# The Python peer's dependency, from PyPI, in its own venv.
if ! "$VENV/bin/python" -c 'import psycopg' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'psycopg[binary]>=3.1,<4'
fi
echo "python peer: $("$VENV/bin/python" --version), psycopg $("$VENV/bin/python" -c 'import psycopg; print(psycopg.__version__)')" >&2

cargo build --release --locked -p cafe24-lambda --bin bootstrap --example lambda_bench >&2

pg_start
trap pg_stop EXIT
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE lambda_bench" postgres
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=lambda_bench
unset DATABASE_URL PGPASSWORD

"$TARGET/release/examples/lambda_bench" "$TARGET/release/bootstrap" "$VENV/bin/python" \
  bench/lambda/runtime.py "$COLD_RUNS" "$INVOCATIONS" "$CODES"
