#!/usr/bin/env python3
"""Batch scoring, churn vs pandas + scikit-learn, CSV to CSV, on the same file in one run.

Builds a Telco-shaped CSV of N rows (the 7,043 Telco rows repeated with unique ids), then
  - pandas: read_csv, the same encoding as churn (median imputation, log1p TotalCharges,
    standardisation, one-hot), scikit-learn LogisticRegression.predict_proba, to_csv of id and
    probability (no tiers, no reasons: scikit-learn has none);
  - churn: `churn score` with probability, tier and the top-3 reasons.
Reports rows/s and peak RSS of each. Usage (from the project root, after cargo build --release):
  python benches/batch_vs_pandas.py [--rows 1000000]
"""
import argparse, csv, os, resource, subprocess, tempfile, time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--bin", default="target/release/churn")
a = ap.parse_args()

src = "data/telco_customer_churn.csv"
with open(src, newline="") as f:
    r = csv.reader(f); header = next(r); rows = list(r)
tmp = tempfile.mkdtemp()
big = os.path.join(tmp, "customers.csv")
with open(big, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n"); w.writerow(header)
    for i in range(a.rows):
        row = list(rows[i % len(rows)]); row[0] = f"{row[0]}-{i}"; w.writerow(row)
print(f"{a.rows} rows, {os.path.getsize(big) / 1e6:.0f} MB: {big}")

# scikit-learn model trained on Telco with churn's encoding (training is not timed).
df = pd.read_csv(src)
df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce")
numeric = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
categorical = [c for c in df.columns if c not in numeric + ["customerID", "Churn"]]
num = make_pipeline(SimpleImputer(strategy="median"),
                    ColumnTransformer([("log", FunctionTransformer(np.log1p), [3])], remainder="passthrough"),
                    StandardScaler())
pre = ColumnTransformer([("num", num, numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
clf = make_pipeline(pre, LogisticRegression(C=0.1, max_iter=5000)).fit(df[numeric + categorical], df["Churn"] == "Yes")

t0 = time.perf_counter()
d = pd.read_csv(big)
d["TotalCharges"] = pd.to_numeric(d["TotalCharges"], errors="coerce")
p = clf.predict_proba(d[numeric + categorical])[:, 1]
pd.DataFrame({"customerID": d["customerID"], "churn_probability": p}).to_csv(os.path.join(tmp, "pandas.csv"), index=False)
pandas_s = time.perf_counter() - t0
pandas_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

out = os.path.join(tmp, "churn.csv")
t0 = time.perf_counter()
res = subprocess.run(["/usr/bin/time", "-f", "%M", a.bin, "score", "--model", "models/telco", "--input", big, "--output", out],
                     capture_output=True, text=True, check=True)
churn_s = time.perf_counter() - t0
churn_rss = int(res.stderr.strip().splitlines()[-1]) / 1024
print(f"pandas + scikit-learn (probability only): {pandas_s:.2f} s, {a.rows / pandas_s:,.0f} rows/s, peak RSS {pandas_rss:.0f} MB")
print(f"churn score (probability, tier, top-3 reasons): {churn_s:.2f} s, {a.rows / churn_s:,.0f} rows/s, peak RSS {churn_rss:.0f} MB")
print(f"churn is {pandas_s / churn_s:.1f}x pandas")
