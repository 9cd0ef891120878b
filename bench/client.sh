#!/usr/bin/env bash
# Admin API client against the sandbox's real bucket (40 deep, drains 2/s), loopback only, the
# processes sharing one PostgreSQL database and so each mall's fleet-wide budget.
#   bench/client.sh                      # 16 tasks, 60 s per phase, 4 processes, 100 malls
#   TASKS=32 SECS=30 PROCS=4 MALLS=100 MALL_TASKS=2 bench/client.sh
# Phase 1: one process, TASKS tasks hammering mall "solo" → calls/s vs the 2/s ideal, 429s.
# Phase 2: PROCS processes (TASKS tasks each) sharing mall "shared" → calls/s, 429 rate.
# Phase 3: PROCS processes, MALL_TASKS tasks per mall each, MALLS malls → per-mall spread.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh

TASKS=${TASKS:-16}
SECS=${SECS:-60}
PROCS=${PROCS:-4}
MALLS=${MALLS:-100}
MALL_TASKS=${MALL_TASKS:-2}
OUT=bench/out; mkdir -p "$OUT"
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --locked -p cafe24-client --example load >&2
LOAD="$TARGET/release/examples/load"

pg_start
SB_PID=
cleanup() { [ -n "$SB_PID" ] && kill "$SB_PID" 2>/dev/null; wait 2>/dev/null; pg_stop; }
trap cleanup EXIT
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench_client" postgres
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench_client"
TOKEN_ENCRYPTION_KEYS="k1:$(head -c 32 /dev/urandom | base64)"
export TOKEN_ENCRYPTION_KEYS RUST_LOG=${RUST_LOG:-error}

PORT=$(pg_free_port)
SANDBOX="http://127.0.0.1:$PORT"
"$LOAD" sandbox --listen "127.0.0.1:$PORT" >"$OUT/client-sandbox.log" 2>&1 &
SB_PID=$!
for _ in $(seq 100); do curl -sf "$SANDBOX/_sandbox/health" >/dev/null && break; sleep 0.1; done

stats() { curl -sf "$SANDBOX/_sandbox/stats/$1"; }
fleet() { # name procs mall malls tasks
  local name=$1 procs=$2 mall=$3 malls=$4 tasks=$5 pids=() i
  "$LOAD" install --sandbox "$SANDBOX" --mall "$mall" --malls "$malls"
  echo "$name: $procs process(es) × $tasks task(s) per mall, $malls mall(s) \"$mall\", ${SECS}s" >&2
  for i in $(seq "$procs"); do
    "$LOAD" run --sandbox "$SANDBOX" --mall "$mall" --malls "$malls" --tasks "$tasks" --secs "$SECS" \
      >"$OUT/client-$name-$i.json" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
}

fleet solo 1 solo 1 "$TASKS"
fleet shared "$PROCS" shared 1 "$TASKS"
fleet malls "$PROCS" fleet "$MALLS" "$MALL_TASKS"
SOLO_STATS=$(stats solo); SHARED_STATS=$(stats shared)

# What one budget statement costs the database: pgbench drawing calls from 10,000 malls'
# budgets (c=16, prepared, 10 s), for the capacity estimate in docs/scaling.md.
cat > "$OUT/take.sql" <<'SQL'
\set m random(1, 10000)
SELECT * FROM cafe24.take_api_call('pgbench' || :m, 39, 2, 3600);
SQL
TAKE_TPS=$("$PG_BIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 16 -j 2 -T 10 \
  -f "$OUT/take.sql" bench_client 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
echo "budget statements the database sustains (pgbench, c=16, 10,000 malls): ${TAKE_TPS%.*}/s" \
  "= the full 2/s of $(awk -v t="$TAKE_TPS" 'BEGIN { printf "%d", t / 2 }') malls at once"

python3 - "$SECS" "$SOLO_STATS" "$SHARED_STATS" "$OUT" <<'PY'
import glob, json, statistics, sys
secs = float(sys.argv[1]); sandbox = {"solo": json.loads(sys.argv[2]), "shared": json.loads(sys.argv[3])}
out = sys.argv[4]
def runs(name):
    return [json.loads(open(p).read()) for p in sorted(glob.glob(f"{out}/client-{name}-*.json"))]
def totals(rs):
    ok = sum(r["calls_ok"] for r in rs); r429 = sum(r["attempts_429"] for r in rs)
    attempts = sum(r["attempts_200"] + r["attempts_429"] for r in rs)
    fallback = sum(r["paced_fallback"] for r in rs)
    return ok, r429, attempts, fallback
bars = []
for name, label in (("solo", "1 process"), ("shared", None)):
    rs = runs(name); ok, r429, attempts, fallback = totals(rs)
    steady = max(ok - 40, 0) / secs; share = steady / 2 * 100; rate = r429 / attempts * 100 if attempts else 0
    st = sandbox[name]
    print(f"{label or f'{len(rs)} processes'} on one mall: {ok} calls ok in {secs:.0f}s; past the 40-call burst "
          f"{steady:.3f}/s = {share:.1f}% of the 2/s ideal; 429s {r429} = {rate:.2f}% of {attempts} attempts; "
          f"paced by the fallback share {fallback}; sandbox api_calls={st['api_calls']} rate_limited={st['rate_limited']}")
    bars.append((f"{name}: ideal share", share, 98 if name == "solo" else 95, ">="))
    bars.append((f"{name}: 429 % of attempts", rate, 0 if name == "solo" else 1, "<=" if name == "solo" else "<"))
rs = runs("malls"); ok, r429, attempts, fallback = totals(rs)
per = {}
for r in rs:
    for mall, n in r["per_mall"].items():
        per[mall] = per.get(mall, 0) + n
steady = sorted(max(n - 40, 0) / secs for n in per.values())
total = sum(steady) / (2 * len(steady)) * 100
print(f"{len(rs)} processes × {len(per)} malls: {ok} calls ok; per mall past the burst min {steady[0]:.3f}/s, "
      f"median {statistics.median(steady):.3f}/s, max {steady[-1]:.3f}/s (spread min/max {steady[0]/steady[-1]:.3f}); "
      f"{total:.1f}% of the {2*len(per)}/s ideal in total; 429s {r429} = {r429/attempts*100 if attempts else 0:.2f}% "
      f"of {attempts} attempts; paced by the fallback share {fallback}")
bars.append(("malls: ideal share in total", total, 95, ">="))
bars.append(("malls: slowest mall / fastest", steady[0] / steady[-1], 0.9, ">="))
failed = 0
for label, value, bar, op in bars:
    ok_bar = {">=": value >= bar, "<=": value <= bar, "<": value < bar}[op]
    failed += not ok_bar
    print(f"  bar {label}: {value:.3f} {op} {bar}: {'met' if ok_bar else 'MISSED'}")
sys.exit(1 if failed else 0)
PY
