#!/usr/bin/env bash
# Two builds of churn side by side, in one run: serving (churn.v1 and V2 through the load
# generator) and batch scoring (1M Telco-shaped rows, CSV -> CSV), alternating A and B so that the
# machine's drift falls on both. Each folder holds a `churn` and a `loadgen` binary, e.g. copied
# from target/release and target/release/examples of two checkouts.
# Usage: bash benches/compare_bench.sh DIR_A DIR_B [seconds per serving scenario, default 5] [batch runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 secs=${3:-5} runs=${4:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

serve_one() {  # serve_one DIR LABEL
  local dir=$1 label=$2 log=$work/serve.log
  "$dir/churn" serve --models models --addr 127.0.0.1:0 --http-addr off --metrics-addr off >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do grep -q "gRPC on" "$log" && break; sleep 0.1; done
  local addr=http://$(grep -o "gRPC on [0-9.:]*" "$log" | cut -d' ' -f3)
  local gen=$dir/loadgen
  for s in "score 1 1" "score 1 32" "batch 100 1" "infer 1 32" "infer 100 1"; do
    set -- $s
    echo "[$label] $("$gen" --addr "$addr" --method "$1" --rows "$2" --concurrency "$3" --seconds "$secs" | tail -1)"
  done
  echo "[$label] server peak RSS $(awk '/VmHWM/{print $2" "$3}' /proc/$pid/status)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "== serving, ${secs} s per scenario"
serve_one "$a" A
serve_one "$b" B

echo "== batch: 1,000,000 Telco-shaped rows, CSV -> CSV"
python3 - "$work/in.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open("data/telco_customer_churn.csv", newline="")))
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n"); w.writerow(rows[0]); n = 0; k = 0
    while n < 1_000_000:
        for r in rows[1:]:
            if n == 1_000_000: break
            w.writerow([f"{r[0]}-{k}"] + r[1:]); n += 1
        k += 1
PY
sync
for i in $(seq "$runs"); do
  for side in A B; do
    dir=$a; [ $side = B ] && dir=$b
    /usr/bin/time -f "%e s, peak RSS %M KB" -o "$work/time" \
      "$dir/churn" score --model models/telco --input "$work/in.csv" --output "$work/out_$side.csv" --id customerID >/dev/null
    echo "[$side] run $i: $(cat "$work/time")"
  done
done
cmp -s <(cut -d, -f1-3 "$work/out_A.csv") <(cut -d, -f1-3 "$work/out_B.csv") \
  && echo "A and B wrote the same ids, probabilities and tiers" \
  || echo "A and B differ in ids, probabilities or tiers"
