#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), new inputs kept outside the repo
# so that the committed corpus stays small (seeds and regressions only). Needs cargo-fuzz
# (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain take the sanitizer flags.
# Usage: bash fuzz/run.sh [seconds per target] [target ...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model_file feature_map v2_tensors csv_records)
work=${CHURN_FUZZ_WORK:-${TMPDIR:-/tmp}/churn-fuzz-corpus}
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  echo "== $t for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | grep -E "DONE|ERROR|SUMMARY|panicked|Test unit written" || true
done
