#!/usr/bin/env python3
"""Holdout AUC on Telco, churn vs scikit-learn, same split and same encoding.

Split: stratified 70/30 (seeded, standard library), written as train.csv / test.csv.
Encoding on both sides: numeric columns (SeniorCitizen, tenure, MonthlyCharges, TotalCharges)
median-imputed and standardised, TotalCharges as log1p when --log1p; every categorical level
one-hot encoded. scikit-learn: LogisticRegression(lbfgs) at C = 1 and at each C = 1/alpha of churn's
L2 grid (the best one is reported, chosen on the test split, so it flatters scikit-learn); churn:
`churn train --holdout 0` (L2 by 5-fold CV on train.csv), then `churn evaluate` on test.csv.
Usage (from the project root, after cargo build --release):
  python benches/telco_vs_sklearn.py [--seed 7] [--log1p]
"""
import argparse, csv, json, os, random, subprocess, tempfile

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="data/telco_customer_churn.csv")
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--log1p", action="store_true")
ap.add_argument("--bin", default="target/release/churn")
a = ap.parse_args()

with open(a.data, newline="") as f:
    r = csv.reader(f); header = next(r); rows = list(r)
li = header.index("Churn")
rng = random.Random(a.seed)
train, test = [], []
for k in sorted({row[li] for row in rows}):
    g = [row for row in rows if row[li] == k]; rng.shuffle(g); n = round(len(g) * 0.3)
    test += g[:n]; train += g[n:]
tmp = tempfile.mkdtemp()
for name, part in (("train.csv", train), ("test.csv", test)):
    with open(os.path.join(tmp, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n"); w.writerow(header); w.writerows(part)

def frame(name):
    df = pd.read_csv(os.path.join(tmp, name))
    df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce")
    return df.drop(columns=["customerID", "Churn"]), (df["Churn"] == "Yes").astype(int)
Xtr, ytr = frame("train.csv"); Xte, yte = frame("test.csv")
numeric = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
categorical = [c for c in Xtr.columns if c not in numeric]
def pipe(C):
    log = FunctionTransformer(np.log1p) if a.log1p else "passthrough"
    num = make_pipeline(SimpleImputer(strategy="median"), ColumnTransformer(
        [("t", log, [3])], remainder="passthrough"), StandardScaler())
    pre = ColumnTransformer([("num", num, numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    return make_pipeline(pre, LogisticRegression(C=C, max_iter=5000))
sk = {}
for alpha in [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]:
    m = pipe(1.0 / alpha).fit(Xtr, ytr)
    sk[alpha] = roc_auc_score(yte, m.predict_proba(Xte)[:, 1])

out = os.path.join(tmp, "m")
cmd = [a.bin, "train", "--data", os.path.join(tmp, "train.csv"), "--label", "Churn", "--positive", "Yes",
       "--id", "customerID", "--holdout", "0", "--seed", "1", "--out", out, "--json"]
if a.log1p:
    cmd += ["--transform", "TotalCharges=log1p"]
rep = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
ev = json.loads(subprocess.run([a.bin, "evaluate", "--model", out, "--data", os.path.join(tmp, "test.csv"), "--json"],
                               capture_output=True, text=True, check=True).stdout)
best = max(sk, key=sk.get)
print(f"split seed {a.seed}: {len(train)} train, {len(test)} test; TotalCharges log1p: {a.log1p}")
print(f"scikit-learn C=1:            test AUC {sk[1.0]:.5f}")
print(f"scikit-learn best C=1/{best:g}: test AUC {sk[best]:.5f}")
print(f"churn (l2 {rep['l2']:g} by CV):       test AUC {ev['auc']:.5f}   difference to best {ev['auc'] - sk[best]:+.5f}")
