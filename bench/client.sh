#!/usr/bin/env bash
# Admin API client against the sandbox's real bucket (40 deep, drains 2/s), loopback only.
#   bench/client.sh                      # 16 tasks, 60 s per phase, 4 processes in phase 2
#   TASKS=32 SECS=30 PROCS=4 bench/client.sh
# Phase 1: one process, TASKS tasks hammering mall "solo" → calls/s vs the 2/s ideal, 429s.
# Phase 2: PROCS processes (TASKS tasks each) sharing mall "shared" → calls/s, 429 rate.
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS=${TASKS:-16}
SECS=${SECS:-60}
PROCS=${PROCS:-4}
OUT=bench/out; mkdir -p "$OUT"
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release -p cafe24-client --example load >&2
LOAD="$TARGET/release/examples/load"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SANDBOX="http://127.0.0.1:$PORT"
RUST_LOG=warn "$LOAD" sandbox --listen "127.0.0.1:$PORT" >"$OUT/client-sandbox.log" 2>&1 &
SB_PID=$!
trap 'kill "$SB_PID" 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "$SANDBOX/_sandbox/health" >/dev/null && break; sleep 0.1; done

stats() { curl -sf "$SANDBOX/_sandbox/stats/$1"; }

echo "phase 1: 1 process × $TASKS tasks, mall solo, ${SECS}s" >&2
"$LOAD" run --sandbox "$SANDBOX" --mall solo --tasks "$TASKS" --secs "$SECS" | tee "$OUT/client-solo.json"
SOLO_STATS=$(stats solo)

echo "phase 2: $PROCS processes × $TASKS tasks, mall shared, ${SECS}s" >&2
PIDS=()
for i in $(seq "$PROCS"); do
  "$LOAD" run --sandbox "$SANDBOX" --mall shared --tasks "$TASKS" --secs "$SECS" >"$OUT/client-shared-$i.json" &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
cat "$OUT"/client-shared-*.json
SHARED_STATS=$(stats shared)

python3 - "$SECS" "$SOLO_STATS" "$SHARED_STATS" "$OUT"/client-solo.json "$OUT"/client-shared-*.json <<'PY'
import json, sys
secs = float(sys.argv[1]); solo_s = json.loads(sys.argv[2]); shared_s = json.loads(sys.argv[3])
runs = [json.loads(open(p).read()) for p in sys.argv[4:]]
solo, shared = runs[0], runs[1:]
def line(name, ok, r429, attempts, st):
    steady = max(ok - 40, 0) / secs
    print(f"{name}: {ok} calls ok in {secs:.0f}s = {ok/secs:.2f}/s; past the 40-call burst {steady:.3f}/s "
          f"= {steady/2*100:.1f}% of the 2/s ideal; 429s seen by the client {r429} "
          f"({r429/attempts*100 if attempts else 0:.2f}% of attempts); sandbox api_calls={st['api_calls']} rate_limited={st['rate_limited']}")
line("1 process ", solo["calls_ok"], solo["attempts_429"], solo["attempts_200"] + solo["attempts_429"], solo_s)
ok = sum(r["calls_ok"] for r in shared); r429 = sum(r["attempts_429"] for r in shared)
line(f"{len(shared)} processes", ok, r429, ok + r429, shared_s)
PY
