# Source this file (scripts/test does): proves each generated target as a user would get it.
# `generated_python BIN`: writes a task file into a fresh temporary project, runs
# `BIN generate` there, installs the module's dev requirements into a cached virtual
# environment, then runs the module's own lint, format check, type check and tests (against the
# PostgreSQL of CAFE24_TEST_DATABASE_URL and the sandbox of BIN). Sets GENERATED_PYTHON_APP and
# GENERATED_PYTHON_VENV for what runs next (conformance, interoperation).

cache_dir() {
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/cafe24-oauth"
}

# A temporary project with a task file for LANGUAGE/FRAMEWORK; prints its directory.
generated_project() {
  local language=$1 framework=$2 dir
  dir=$(mktemp -d /tmp/cafe24-generated-"$language".XXXXXX)
  mkdir -p "$dir/.claude/pipeline-state"
  cat >"$dir/.claude/pipeline-state/task-oauth.md" <<TASK
# The pipeline's task, as scripts/test writes it.
app_name: inventory-alert-app
language: $language
framework: $framework
required_scopes:
  - mall.read_product
  - mall.read_store
output_dir: apps/inventory-alert-app/
include_webhook_handler: true
TASK
  echo "$dir"
}

# Every step is chained explicitly: callers run this as `generated_python BIN || status=1`,
# where `set -e` does not apply.
generated_python() {
  local bin=$1 project app venv stamp want
  project=$(generated_project python fastapi) || return 1
  (cd "$project" && "$bin" generate) >&2 || return 1
  app="$project/apps/inventory-alert-app"
  venv="$(cache_dir)/python-venv"
  want=$(cat "$app/requirements.txt" "$app/requirements-dev.txt" | sha256sum | cut -c1-16)
  stamp="$venv/.requirements-$want"
  if [ ! -f "$stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" \
      && "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$app/requirements-dev.txt" \
      && touch "$stamp" || return 1
  fi
  GENERATED_PYTHON_APP=$app
  GENERATED_PYTHON_VENV=$venv
  export GENERATED_PYTHON_APP GENERATED_PYTHON_VENV
  echo "== generated python/fastapi module: ruff, ruff format, mypy --strict, pytest" >&2
  (
    cd "$app" \
      && "$venv/bin/ruff" check . \
      && "$venv/bin/ruff" format --check . \
      && "$venv/bin/mypy" --strict . \
      && CAFE24_SANDBOX_BIN="$bin" "$venv/bin/pytest" -q -p no:cacheprovider
  )
}

# `generated_node BIN`: the Node/Express target the same way — generated from a task file,
# `npm install` from the registry (npm caches what it downloads), the module's own `npm test`
# (type check with tsc, then node --test against PostgreSQL and the sandbox), then the
# conformance kit against three `node server.js` processes.
generated_node() {
  local bin=$1 project app
  project=$(generated_project node express) || return 1
  (cd "$project" && "$bin" generate) >&2 || return 1
  app="$project/apps/inventory-alert-app"
  echo "== generated node/express module: npm install, npm test" >&2
  (cd "$app" && npm install --no-audit --no-fund --loglevel=error >&2 \
    && CAFE24_SANDBOX_BIN="$bin" npm test) || return 1
  echo "== cafe24-oauth conformance --processes 3 -- node server.js (the generated Node module)" >&2
  (cd "$app" && "$bin" conformance --processes 3 -- node server.js) || return 1
  # Interoperation: Node servers and the Rust worker on one database (codes exchanged by
  # either, rotations shared: one grant per rotation, none refused — the kit's cases).
  echo "== cafe24-oauth conformance --processes 2 --worker 'cafe24-oauth worker' -- node server.js" >&2
  (cd "$app" && "$bin" conformance --processes 2 --worker "$bin worker" -- node server.js) || return 1
  rm -rf "$project"
}

# `generated_kotlin BIN`: the Kotlin/Spring Boot target — generated from a task file, the
# module's own `mvn -B verify` (Kotlin warnings are errors; tests against PostgreSQL and the
# sandbox; Maven's repository ~/.m2 caches the downloads), then the conformance kit against three
# `java -jar` processes of the built app, and against two of them with the Rust worker.
generated_kotlin() {
  local bin=$1 project app jar
  project=$(generated_project kotlin spring) || return 1
  (cd "$project" && "$bin" generate) >&2 || return 1
  app="$project/apps/inventory-alert-app"
  echo "== generated kotlin/spring module: mvn -B verify" >&2
  (cd "$app" && CAFE24_SANDBOX_BIN="$bin" mvn -B -q -T 1 verify) || return 1
  jar=$(ls "$app"/target/*.jar | grep -v -- '-plain\.jar$' | head -n 1)
  echo "== cafe24-oauth conformance --processes 3 -- java -jar (the generated Kotlin module)" >&2
  (cd "$app" && "$bin" conformance --processes 3 -- java -jar "$jar") || return 1
  # Interoperation: Kotlin servers and the Rust worker on one database (codes exchanged by
  # either, rotations shared: one grant per rotation, none refused — the kit's cases).
  echo "== cafe24-oauth conformance --processes 2 --worker 'cafe24-oauth worker' -- java -jar (Kotlin + Rust)" >&2
  (cd "$app" && "$bin" conformance --processes 2 --worker "$bin worker" -- java -jar "$jar") || return 1
  rm -rf "$project"
}
