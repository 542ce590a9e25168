#!/usr/bin/env bash
# `churn report` speed and memory at scale, each run measured with /usr/bin/time:
#   model: the bundled telco model on 1,000,106 labelled rows (data/telco_customer_churn.csv
#          repeated 142 times with new ids), beside `churn evaluate` on the same file (the report
#          scores the same rows and adds curves, deciles, importance and effects);
#   churn: the socialnet log copied COPIES times with new account ids (7.1M events, 6,195
#          customers, with subscriptions) and the 5M-event log of 200,000 synthetic customers
#          (events only), both made by benches/features_bench.sh, beside `churn features` on them.
# Usage: benches/report_bench.sh [COPIES=21]
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-21}
BIN=target/release/churn
cargo build --release --quiet
DIR=target/report-bench
mkdir -p "$DIR"
big=$DIR/telco-1m.csv
if [ ! -s "$big" ]; then
  awk -F, 'NR == 1 { print; next } { rows[NR] = $0 }
    END { for (k = 0; k < 142; k++) for (i = 2; i <= NR; i++) { r = rows[i]; sub(/^[^,]*/, "c" k "-&", r); print r } }' \
    data/telco_customer_churn.csv >"$big"
fi
# The event logs (and the features figures on them, for comparison).
echo "== churn features on the same logs (benches/features_bench.sh $COPIES)"
benches/features_bench.sh "$COPIES"
FB=target/features-bench
timed() {  # timed LABEL ARGS...: runs churn ARGS, prints wall time and peak RSS
  local label=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$DIR/time.txt" "$BIN" "$@" >"$DIR/out.txt"
  read -r wall rss <"$DIR/time.txt"
  printf '%-40s %7.2f s  peak RSS %5d MB  %s\n' "$label" "$wall" $((rss / 1024)) "$(head -c 160 "$DIR/out.txt" | tr '\n' ' ')"
}
echo "== churn report"
rows=$(($(wc -l <"$big") - 1))
timed "evaluate, $rows rows" evaluate --model models/telco --data "$big"
timed "report --model --data, $rows rows" report --model models/telco --data "$big" --out "$DIR/model.html"
timed "report --model (stored holdout)" report --model models/telco --out "$DIR/model-stored.html"
ev=$FB/events-distinct-x$COPIES.csv
timed "report --events, $(($(wc -l <"$ev") - 1)) events, subs" report --events "$ev" \
  --subscriptions "$FB/subs-distinct-x$COPIES.csv" --out "$DIR/churn-distinct.html"
many=$FB/events-many.csv
timed "report --events, $(($(wc -l <"$many") - 1)) events, no subs" report --events "$many" --out "$DIR/churn-many.html"
ls -l "$DIR"/*.html | awk '{ printf "%s %.0f kB\n", $NF, $5 / 1024 }'
