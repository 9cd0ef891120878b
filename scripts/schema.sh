# Source this file (scripts/test does): `schema_test BIN [MAX_EXAMPLES]` runs Schemathesis (from
# PyPI, into a cached virtual environment) against /openapi.json of a running `BIN serve` on a
# fresh PostgreSQL database (CAFE24_TEST_DATABASE_URL) with the admin proxy and webhooks
# configured and the sandbox as Cafe24: every operation, generated valid and invalid inputs,
# every check. Bounded in examples and time; loopback only; stops what it started.

schema_test() {
  local bin=$1 examples=${2:-40} venv dir port sb_port db url status=0 pids=()
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/cafe24-oauth/schemathesis-venv"
  if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv" \
      && "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5' || return 1
  fi
  dir=$(mktemp -d /tmp/cafe24-schema.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sb_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  db="cafe24_schema_$RANDOM$RANDOM"
  psql -q "$CAFE24_TEST_DATABASE_URL" -c "CREATE DATABASE $db" || return 1
  url="${CAFE24_TEST_DATABASE_URL%/*}/$db"
  "$bin" sandbox --listen "127.0.0.1:$sb_port" --auto-approve --auto-create-malls \
    --redirect-uri "http://127.0.0.1:$port/oauth/callback" >"$dir/sandbox.log" 2>&1 &
  pids+=($!)
  env -i PATH="$PATH" HOME="$HOME" \
    CAFE24_CLIENT_ID=sandbox-client-id CAFE24_CLIENT_SECRET=sandbox-client-secret \
    CAFE24_REDIRECT_URI="http://127.0.0.1:$port/oauth/callback" CAFE24_SCOPES=mall.read_product,mall.read_store \
    CAFE24_BASE_URL="http://127.0.0.1:$sb_port/malls/{mall_id}" \
    EXPECTED_STATE_SECRET=schema-state-secret-0123456789abcdef0123 \
    TOKEN_ENCRYPTION_KEYS="$("$bin" keygen)" DATABASE_URL="$url" LISTEN_ADDR="127.0.0.1:$port" \
    CAFE24_ADMIN_TOKEN=schema-admin-token-0123456789abcdef0123 \
    CAFE24_WEBHOOK_AUTH=api-key CAFE24_WEBHOOK_KEY=schema-webhook-key-0123 \
    CAFE24_API_DEADLINE_SECS=5 RUST_LOG=warn \
    "$bin" serve >"$dir/serve.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "== schemathesis run /openapi.json (max $examples examples per operation)" >&2
  # From the scratch folder: Schemathesis keeps a cache where it runs.
  (cd "$dir" && timeout 600 "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --checks all --exclude-checks positive_data_acceptance \
    --phases examples,fuzzing,stateful \
    --max-examples "$examples" --workers 2 --seed 20261130 \
    --header "Authorization: Bearer schema-admin-token-0123456789abcdef0123" \
    --header "X-Api-Key: schema-webhook-key-0123" \
    --suppress-health-check all --max-response-time 15 \
    --report junit --report-dir "$dir/report") || status=1
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  if [ "$status" -ne 0 ]; then tail -n 20 "$dir/serve.log" >&2; fi
  psql -q "$CAFE24_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$dir"
  return "$status"
}
