#!/usr/bin/env bash
# Benchmark of GET /oauth/callback on PostgreSQL, against the physical limit: pgbench inserting
# into the serverless spec's table as the spec creates it (id, code, state, created_at; no
# trigger, no further index) with the same concurrency on the same cluster, in the same run.
#   bench/callback.sh                # defaults: 16 connections, 15 s per phase
#   CONCURRENCY=32 DURATION=20 bench/callback.sh
# Loopback only; every phase is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh

CONCURRENCY=${CONCURRENCY:-16}
MODERATE=${MODERATE:-4}
DURATION=${DURATION:-15}
THREADS=2
OUT=bench/out; mkdir -p "$OUT"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked -p cafe24-cli --bin cafe24-oauth >&2
cargo build --release --locked -p cafe24-core --example mint_states >&2

pg_start
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; pg_stop; }
trap cleanup EXIT

PSQL=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres)
"${PSQL[@]}" -c "CREATE DATABASE bench" postgres
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
export EXPECTED_STATE_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CAFE24_CLIENT_ID=bench CAFE24_CLIENT_SECRET=bench-secret CAFE24_SCOPES=mall.read_product
export CAFE24_REDIRECT_URI=https://app.example.com/oauth/callback
export DATABASE_MAX_CONNECTIONS=$CONCURRENCY RUST_LOG=warn
PORT=$(pg_free_port)
export LISTEN_ADDR=127.0.0.1:$PORT

./target/release/cafe24-oauth migrate >&2
# The public callback alone (as the serverless spec deploys it): no in-process worker.
./target/release/cafe24-oauth serve --no-migrate --no-worker 2>"$OUT/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "bench: the server did not start:" >&2; cat "$OUT/server.log" >&2; exit 1; }

# Enough distinct states that no request ever repeats one (a repeat would be a 409).
NEEDED=${STATES:-750000}
# Each state names one of 100,000 malls, as installs do (one mall's pending codes are capped).
./target/release/examples/mint_states "$NEEDED" benchmall 100000 > "$OUT/paths.txt"

run_wrk() { # connections seconds
  BENCH_PATHS="$OUT/paths.txt" BENCH_THREADS=$THREADS \
    wrk -t "$THREADS" -c "$1" -d "${2}s" --latency -s bench/callback.lua "http://127.0.0.1:$PORT" \
    | tee -a "$OUT/wrk.txt" | grep '^RESULT'
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# Every measured phase starts from a quiet database: the previous phase's dirty pages flushed
# and its inserts vacuumed, so its checkpoint or autovacuum does not land in the next phase.
quiesce() { "${PSQL[@]}" -c "VACUUM cafe24.authorization_codes" -c "CHECKPOINT" bench; }

# Warm-up, then the measured phases. Each phase takes fresh paths: split the file.
split -n l/3 -d "$OUT/paths.txt" "$OUT/paths."
cp "$OUT/paths.00" "$OUT/paths.txt"; run_wrk "$CONCURRENCY" 3 >/dev/null
quiesce; cp "$OUT/paths.01" "$OUT/paths.txt"; SAT=$(run_wrk "$CONCURRENCY" "$DURATION")
quiesce; cp "$OUT/paths.02" "$OUT/paths.txt"; MOD=$(run_wrk "$MODERATE" "$DURATION")

for r in "$SAT" "$MOD"; do
  if [ "$(field errors_status "$r")" != 0 ]; then echo "bench: non-2xx responses: $r" >&2; exit 1; fi
done
STORED=$("${PSQL[@]}" -tA -c "SELECT count(*) FROM cafe24.authorization_codes" bench)

# The physical limit: the serverless spec's table and its INSERT, prepared, same concurrency,
# same cluster.
"${PSQL[@]}" -c "CREATE SCHEMA spec" -c "CREATE TABLE spec.authorization_codes (
    id bigserial PRIMARY KEY, code text NOT NULL, state text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())" bench
cat > "$OUT/insert.sql" <<'SQL'
\set n random(1, 9000000000000)
INSERT INTO spec.authorization_codes (code, state) VALUES ('bench-code', 'pgbench-' || :n || '-' || :client_id) RETURNING id;
SQL
quiesce
PGB=$("$PG_BIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "$CONCURRENCY" -j "$THREADS" \
  -T "$DURATION" -f "$OUT/insert.sql" bench 2>&1 | tee "$OUT/pgbench.txt")
PG_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$PGB" | head -1)

rps() { awk -v n="$(field requests "$1")" -v s="$(field seconds "$1")" 'BEGIN { printf "%.0f", n / s }'; }
SAT_RPS=$(rps "$SAT"); MOD_RPS=$(rps "$MOD")
RATIO=$(awk -v a="$SAT_RPS" -v b="$PG_TPS" 'BEGIN { printf "%.2f", a / b }')

cat <<REPORT
== GET /oauth/callback on PostgreSQL ($(nproc) cores; server, load generator and database share them)
saturated  c=$CONCURRENCY : $SAT_RPS req/s   p50 $(field p50_ms "$SAT") ms   p99 $(field p99_ms "$SAT") ms
moderate   c=$MODERATE  : $MOD_RPS req/s   p50 $(field p50_ms "$MOD") ms   p99 $(field p99_ms "$MOD") ms
pgbench    c=$CONCURRENCY : ${PG_TPS%.*} inserts/s (the serverless spec's table, no trigger; prepared)
ratio callback/pgbench: $RATIO   (bar >= 0.5; p99 at c=$MODERATE: bar < 5 ms)
rows stored by the callback (warm-up + both phases): $STORED; every response was 2xx
REPORT
awk -v r="$RATIO" -v p="$(field p99_ms "$MOD")" 'BEGIN {
  ok1 = r >= 0.5; ok2 = p < 5
  printf "  bar callback/pgbench %.2f >= 0.5: %s\n", r, ok1 ? "met" : "MISSED"
  printf "  bar p99 at c=4 %.2f ms < 5 ms: %s\n", p, ok2 ? "met" : "MISSED"
  exit !(ok1 && ok2)
}'
