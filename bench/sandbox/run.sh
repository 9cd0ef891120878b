#!/usr/bin/env bash
# Sandbox throughput over loopback: the token endpoint (refresh grants, one rotation chain per
# mall) and GET /products, next to a trivial endpoint of the same server stack
# (/_sandbox/health) as the peer / physical limit of this machine, all in one run.
#
#   bench/sandbox/run.sh [--secs 5] [--concurrency 32] [--max 500000]
#
# Builds in release (honours CARGO_TARGET_DIR). Loopback only; every phase is bounded in time
# and in request count.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p cafe24-sandbox --example loadgen
target="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) CPU(s), $(uname -sr)"
exec "$target/release/examples/loadgen" "$@"
