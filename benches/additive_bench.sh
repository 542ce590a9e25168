#!/usr/bin/env bash
# AUC and fit time of churn linear, churn additive, LightGBM and InterpretML's EBM on the same
# 70/30 Telco split, in one run. Peers come from PyPI into a venv (~/.cache/churn-bench-venv).
# usage: bash benches/additive_bench.sh   (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CHURN_BIN:-target/release/churn}
VENV=${BENCH_VENV:-$HOME/.cache/churn-bench-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q lightgbm interpret-core pandas scikit-learn
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
python3 ../shared/checks/lib/split.py data/telco_customer_churn.csv Churn "$T/t" >/dev/null
for kind in linear additive; do
  a=$(date +%s.%N)
  "$BIN" train --data "$T/t/train.csv" --label Churn --positive Yes --drop customerID --kind $kind \
    --seed 1 --out "$T/$kind" >/dev/null
  b=$(date +%s.%N)
  auc=$("$BIN" evaluate --model "$T/$kind" --data "$T/t/test.csv" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["auc"])')
  printf "churn %-9s AUC %.4f  fit %.2f s\n" "$kind" "$auc" "$(echo "$b - $a" | bc)"
done
"$VENV/bin/python" - "$T/t" <<'PY'
import sys, time, pandas as pd
from sklearn.metrics import roc_auc_score
d = sys.argv[1]
tr, te = pd.read_csv(f"{d}/train.csv"), pd.read_csv(f"{d}/test.csv")
def prep(df):
    x = df.drop(columns=["customerID", "Churn"])
    x["TotalCharges"] = pd.to_numeric(x["TotalCharges"], errors="coerce")
    for c in x.columns:
        if not pd.api.types.is_numeric_dtype(x[c]): x[c] = x[c].astype("category")
    return x, (df["Churn"] == "Yes").astype(int)
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
