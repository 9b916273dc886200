#!/usr/bin/env bash
# Reproducible gateway-overhead benchmark: builds the release binaries, then runs
# `switchboard-loadtest bench` (backend fixture alone vs behind the gateway) and writes
# loadtest/RESULTS.md. Extra arguments go to `bench`, e.g. `--calls 50000 --clients 1,16,64`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p switchboard -p switchboard-demo -p switchboard-loadtest
target_dir="${CARGO_TARGET_DIR:-target}"

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD 2>/dev/null; then commit="$commit (with uncommitted changes)"; fi

exec "$target_dir/release/switchboard-loadtest" bench \
  --gateway-bin "$target_dir/release/switchboard" \
  --backend-bin "$target_dir/release/switchboard-demo" \
  --label "commit $commit, release profile" \
  --out loadtest/RESULTS.md \
  "$@"
