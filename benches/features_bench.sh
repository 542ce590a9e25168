#!/usr/bin/env bash
# `churn features` speed and memory on event logs scaled up from data/socialnet (337,400 events,
# 295 accounts). Two logs of the same size show what memory follows:
#   distinct: COPIES copies with new account ids  -> COPIES x the events, COPIES x the customers
#   same:     COPIES copies with the same ids     -> COPIES x the events, the same 295 customers
#   many:     200,000 synthetic customers with 25 events each (5M events), no subscriptions
# Prints events/s (of the reading pass, as the command reports it), wall time and peak RSS.
# Usage: benches/features_bench.sh [COPIES=20]; SPEC=FILE passes --spec FILE to every run (e.g. a
# spec with `[metrics] per_user = false` to measure what counting distinct users costs).
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-20}
BIN=target/release/churn
cargo build --release --quiet
DIR=target/features-bench
mkdir -p "$DIR"
src=data/socialnet
many=$DIR/events-many.csv
if [ ! -s "$many" ]; then
  # Each customer is active from a random day for a random span of the first half of 2020.
  awk 'BEGIN {
    srand(7); split("0 31 60 91 121 152 182", start, " ")
    print "customer_id,timestamp,event_type,value"
    for (c = 0; c < 200000; c++) {
      first = int(rand() * 150); life = 1 + int(rand() * (181 - first))
      for (e = 0; e < 25; e++) {
        d = first + int(rand() * life)
        for (m = 1; d >= start[m + 1]; m++) {}
        printf "u%d,2020-%02d-%02dT%02d:%02d:%02d,%d,%.2f\n", c, m, d - start[m] + 1,
          int(rand() * 24), int(rand() * 60), int(rand() * 60), int(rand() * 4), rand() * 50
      }
    }
  }' >"$many"
fi
for kind in distinct same many; do
  f=$DIR/events-$kind-x$COPIES.csv
  [ "$kind" = many ] && f=$many
  if [ ! -s "$f" ]; then
    zcat "$src/event.csv.gz" | awk -F, -v n="$COPIES" -v kind="$kind" '
      NR == 1 { print "customer_id,timestamp,event_type,user_id,value"; next }
      { rows[NR] = $0 }
      END {
        for (k = 0; k < n; k++)
          for (i = 2; i <= NR; i++) {
            split(rows[i], c, ",")
            id = (kind == "distinct") ? c[1] + 1000 * k : c[1]
            print id "," c[2] "," c[3] "," c[4] "," c[5]
          }
      }' >"$f"
  fi
  subs=$DIR/subs-$kind-x$COPIES.csv
  subs_args=(--subscriptions "$subs")
  [ "$kind" = many ] && subs_args=(--label no-activity)
  if [ "$kind" != many ] && [ ! -s "$subs" ]; then
    awk -F, -v n="$COPIES" -v kind="$kind" '
      NR == 1 { print "customer_id,plan,start_date,end_date,mrr,quantity,units,bill_period_months,discount"; next }
      { rows[NR] = $0 }
      END {
        for (k = 0; k < (kind == "distinct" ? n : 1); k++)
          for (i = 2; i <= NR; i++) {
            row = rows[i]; split(row, c, ",")
            sub(/^[^,]*/, c[1] + 1000 * k, row); print row
          }
      }' "$src/subscription.csv" >"$subs"
  fi
  events=$(($(wc -l <"$f") - 1))
  sync
  /usr/bin/time -f "%e %M" -o "$DIR/time.txt" "$BIN" features --events "$f" "${subs_args[@]}" ${SPEC:+--spec "$SPEC"} \
    --from 2020-02-01 --to 2020-05-01 --every 14d --horizon 28d --out "$DIR/features-$kind.csv" --json >"$DIR/summary.json"
  read -r wall rss <"$DIR/time.txt"
  python3 - "$DIR/summary.json" "$kind" "$events" "$wall" "$rss" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); kind, events, wall, rss = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"{kind:9s} {events:>10,} events {s['customers']:>7,} customers -> {s['rows']:>7,} rows: "
      f"read {s['events_per_second']/1e6:.2f}M events/s, total {wall:.2f} s ({events/wall/1e6:.2f}M events/s end to end), "
      f"peak RSS {rss/1024:.0f} MB, {s['bytes_per_customer']} bytes of totals per customer")
PY
done
