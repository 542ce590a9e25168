#!/usr/bin/env bash
# What `churn score --history` costs: 1M Telco-shaped rows (the 7,043 rows repeated with unique
# ids) scored CSV -> CSV without a history, then as two consecutive runs (the second one loads the
# first as each customer's previous run) into a folder of Parquet runs and into a PostgreSQL table,
# and with the scores in a PostgreSQL table of the same database. Wall time and peak RSS from
# /usr/bin/time, ROUNDS times each, in one sitting.
# Usage: benches/history_bench.sh [ROUNDS=3]; DATABASE_URL (default the local test database).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
BIN=target/release/churn
cargo build --release --quiet --bin churn
DIR=target/history-bench
mkdir -p "$DIR"
IN=$DIR/telco-1m.csv
if [ ! -s "$IN" ]; then
  python3 - "$IN" <<'PY'
import csv, sys
rows = list(csv.reader(open("data/telco_customer_churn.csv")))
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(rows[0])
    n, k = 0, 0
    while n < 1_000_000:
        for r in rows[1:]:
            if n == 1_000_000:
                break
            w.writerow([f"{r[0]}-{k}"] + r[1:])
            n += 1
        k += 1
PY
fi
run() {  # run LABEL ARGS...: one timed `churn score` over the 1M rows
  local label=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$DIR/time.txt" "$BIN" score --model models/telco --input "$IN" \
    --id customerID "$@" >/dev/null
  read -r wall rss <"$DIR/time.txt"
  printf '%-44s %6.2f s  %7.0f rows/s  peak RSS %4d MB\n' "$label" "$wall" "$(echo "1000000 / $wall" | bc -l)" $((rss / 1024))
}
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  rm -rf "$DIR/runs"
  psql "$URL" -qc "DROP TABLE IF EXISTS public.churn_bench_history, public.churn_bench_scores" 2>/dev/null
  run "no history" --output "$DIR/scores.csv"
  run "Parquet folder, first run" --output "$DIR/scores.csv" --history "$DIR/runs" --as-of 2026-12-01
  run "Parquet folder, second run (1M previous)" --output "$DIR/scores.csv" --history "$DIR/runs" --as-of 2026-12-02
  run "PostgreSQL table, first run" --output "$DIR/scores.csv" --history "$URL" \
    --history-table public.churn_bench_history --as-of 2026-12-01
  run "PostgreSQL table, second run (1M previous)" --output "$DIR/scores.csv" --history "$URL" \
    --history-table public.churn_bench_history --as-of 2026-12-02
  run "scores to a table, no history" --output "$URL" --output-table public.churn_bench_scores
  run "scores to a table, history in its transaction" --output "$URL" --output-table public.churn_bench_scores \
    --history "$URL" --history-table public.churn_bench_history --as-of 2026-12-03
done
psql "$URL" -qc "DROP TABLE IF EXISTS public.churn_bench_history, public.churn_bench_scores" 2>/dev/null
