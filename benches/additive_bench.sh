#!/usr/bin/env bash
# AUC and fit time of churn linear, churn additive, LightGBM and InterpretML's EBM, each dataset's
# four on the same train/test files in one run:
#   - telco: the 70/30 split of the acceptance checks (../shared/checks/lib/split.py);
#   - cdnow: `churn features` on the CDNOW log (README's spec and dates), a backtest by time:
#     trained on the snapshots more than 90 days (the horizon) before 1997-10-28 (04-01 to 06-30),
#     tested on those from 1997-10-28 on.
# Peers come from PyPI into a venv (~/.cache/churn-bench-venv).
# usage: bash benches/additive_bench.sh [telco|cdnow ...]   (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CHURN_BIN:-target/release/churn}
VENV=${BENCH_VENV:-$HOME/.cache/churn-bench-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q lightgbm interpret-core pandas scikit-learn
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
DATASETS=${*:-telco cdnow}

# bench NAME DIR LABEL POSITIVE DROP...: the four fits on DIR/train.csv, scored on DIR/test.csv.
bench() {
  local name=$1 dir=$2 label=$3 positive=$4; shift 4
  local drops=("$@") args=()
  for c in "${drops[@]}"; do args+=(--drop "$c"); done
  echo "== $name: $(($(wc -l <"$dir/train.csv") - 1)) training rows, $(($(wc -l <"$dir/test.csv") - 1)) test rows"
  for kind in linear additive; do
    a=$(date +%s.%N)
    "$BIN" train --data "$dir/train.csv" --label "$label" --positive "$positive" "${args[@]}" \
      --kind $kind --seed 1 --out "$T/$name-$kind" >/dev/null
    b=$(date +%s.%N)
    auc=$("$BIN" evaluate --model "$T/$name-$kind" --data "$dir/test.csv" --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["auc"])')
    printf "churn %-9s AUC %.4f  fit %.2f s\n" "$kind" "$auc" "$(echo "$b - $a" | bc)"
  done
  "$VENV/bin/python" - "$dir" "$label" "$positive" "${drops[@]}" <<'PY'
import sys, time, pandas as pd
from sklearn.metrics import roc_auc_score
d, label, positive, drops = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
tr, te = pd.read_csv(f"{d}/train.csv"), pd.read_csv(f"{d}/test.csv")
def prep(df):
    x = df.drop(columns=drops + [label])
    if "TotalCharges" in x: x["TotalCharges"] = pd.to_numeric(x["TotalCharges"], errors="coerce")
    for c in x.columns:
        if not pd.api.types.is_numeric_dtype(x[c]): x[c] = x[c].astype("category")
    return x, (df[label].astype(str) == positive).astype(int)
xt, yt = prep(tr); xv, yv = prep(te)
for c in xv.columns:
    if str(xt[c].dtype) == "category": xv[c] = pd.Categorical(xv[c], categories=xt[c].cat.categories)
import lightgbm as lgb
a = time.time(); m = lgb.LGBMClassifier(verbose=-1, random_state=1).fit(xt, yt); b = time.time()
print(f"LightGBM        AUC {roc_auc_score(yv, m.predict_proba(xv)[:, 1]):.4f}  fit {b - a:.2f} s")
from interpret.glassbox import ExplainableBoostingClassifier
a = time.time(); m = ExplainableBoostingClassifier(random_state=1).fit(xt, yt); b = time.time()
print(f"EBM             AUC {roc_auc_score(yv, m.predict_proba(xv)[:, 1]):.4f}  fit {b - a:.2f} s")
PY
}

for ds in $DATASETS; do
  case $ds in
  telco)
    python3 ../shared/checks/lib/split.py data/telco_customer_churn.csv Churn "$T/telco" >/dev/null
    bench telco "$T/telco" Churn Yes customerID
    ;;
  cdnow)
    "$BIN" features --events data/cdnow/cdnow_master.csv --spec examples/features/cdnow.toml \
      --from 1997-04-01 --to 1997-12-01 --every 30d --horizon 90d --out "$T/cdnow.csv" >/dev/null
    mkdir -p "$T/cdnow"
    python3 - "$T/cdnow.csv" "$T/cdnow" <<'PY'
import csv, sys
from datetime import date, timedelta
cut = date(1997, 10, 28)
with open(sys.argv[1]) as f:
    r = csv.reader(f); head = next(r); rows = list(r)
s = head.index("snapshot")
day = lambda row: date.fromisoformat(row[s])
for name, keep in (("train", lambda d: d < cut - timedelta(days=90)), ("test", lambda d: d >= cut)):
    with open(f"{sys.argv[2]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(head); w.writerows(x for x in rows if keep(day(x)))
PY
    bench cdnow "$T/cdnow" churned 1 customer_id snapshot
    ;;
  *) echo "unknown dataset $ds (telco, cdnow)" >&2; exit 2 ;;
  esac
done
