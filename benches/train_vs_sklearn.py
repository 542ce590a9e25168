#!/usr/bin/env python3
"""Training speed and quality, churn vs scikit-learn, on the same data in one run.

Generates N rows x 20 numeric features (seeded; correlated features, a logistic ground truth),
writes train.parquet and a 200k-row test.parquet, then
  - scikit-learn: LogisticRegression(C=1, lbfgs, defaults) fit on the raw features, and in a
    StandardScaler pipeline (its best case: lbfgs converges far faster on scaled data); AUC on test;
  - churn: `churn train --l2 1 --holdout 0 --folds 0` (the same objective: C = 1/alpha), then
    `churn evaluate` on test.
Prints fit seconds (the solver alone: sklearn's .fit, churn's final fit), end-to-end seconds
(read + fit), AUCs and their ratio. Usage (from the project root, after cargo build --release):
  python benches/train_vs_sklearn.py [--rows 1000000] [--repeat 3]
"""
import argparse, json, os, subprocess, sys, tempfile, time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--features", type=int, default=20)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--bin", default="target/release/churn")
ap.add_argument("--linfa", action="store_true", help="also time --solver linfa (the reference) once")
a = ap.parse_args()

rng = np.random.default_rng(7)
f = a.features
# One distribution for train and test: fixed scales, shifts and true weights.
scale, shift = rng.uniform(0.5, 50, f), rng.uniform(-10, 10, f)
true_w = np.linspace(-1, 1, f)
def make(n):
    z = rng.standard_normal((n, f))
    x = z + 0.3 * z[:, [0]]                       # correlated columns
    x[:, 1] = np.exp(x[:, 1])                      # one skewed column
    logit = (x - x.mean(axis=0)) / x.std(axis=0) @ true_w - 1.2
    x = x * scale + shift                          # varied scales
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(f)])
    df["churned"] = y
    return df

tmp = tempfile.mkdtemp()
train_path, test_path = os.path.join(tmp, "train.parquet"), os.path.join(tmp, "test.parquet")
make(a.rows).to_parquet(train_path, index=False)
make(200_000).to_parquet(test_path, index=False)
print(f"data: {a.rows} x {f} train, 200000 test, in {tmp}")

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
sk_fit, sk_total, churn_fit, churn_total, sks_fit = [], [], [], [], []
for r in range(a.repeat):
    t0 = time.perf_counter()
    df = pd.read_parquet(train_path)
    X, y = df.drop(columns="churned").to_numpy(), df["churned"].to_numpy()
    t1 = time.perf_counter()
    clf = LogisticRegression(C=1.0).fit(X, y)
    t2 = time.perf_counter()
    sk_fit.append(t2 - t1); sk_total.append(t2 - t0)
    test = pd.read_parquet(test_path)
    sk_auc = roc_auc_score(test["churned"], clf.predict_proba(test.drop(columns="churned").to_numpy())[:, 1])
    t1 = time.perf_counter()
    scaled = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(X, y)
    sks_fit.append(time.perf_counter() - t1)
    sks_auc = roc_auc_score(test["churned"], scaled.predict_proba(test.drop(columns="churned").to_numpy())[:, 1])

    out = os.path.join(tmp, f"m{r}")
    t0 = time.perf_counter()
    res = subprocess.run([a.bin, "train", "--data", train_path, "--label", "churned", "--l2", "1",
                          "--holdout", "0", "--folds", "0", "--out", out, "--json"],
                         capture_output=True, text=True, check=True)
    churn_total.append(time.perf_counter() - t0)
    rep = json.loads(res.stdout)
    churn_fit.append(rep["report"]["seconds"]["final_fit"])
    ev = json.loads(subprocess.run([a.bin, "evaluate", "--model", out, "--data", test_path, "--json"],
                                   capture_output=True, text=True, check=True).stdout)
    churn_auc = ev["auc"]
    iters = rep["solver"]["iterations"]

best = min
print(f"scikit-learn {__import__('sklearn').__version__} lbfgs: fit {best(sk_fit):.3f} s, "
      f"read+fit {best(sk_total):.3f} s, {clf.n_iter_[0]} iterations, test AUC {sk_auc:.6f}")
print(f"scikit-learn scaler+lbfgs:    fit {best(sks_fit):.3f} s (scaler included), "
      f"{scaled[-1].n_iter_[0]} iterations, test AUC {sks_auc:.6f}")
print(f"churn lbfgs-fused:           fit {best(churn_fit):.3f} s, "
      f"read+fit {best(churn_total):.3f} s (whole `churn train` process), {iters} iterations, test AUC {churn_auc:.6f}")
print(f"fit speed-up vs raw {best(sk_fit) / best(churn_fit):.2f}x, vs scaled {best(sks_fit) / best(churn_fit):.2f}x; "
      f"end-to-end vs raw read+fit {best(sk_total) / best(churn_total):.2f}x; "
      f"|AUC difference| raw {abs(sk_auc - churn_auc):.2e}, scaled {abs(sks_auc - churn_auc):.2e} (best of {a.repeat})")

if a.linfa:
    out = os.path.join(tmp, "linfa")
    t0 = time.perf_counter()
    res = subprocess.run([a.bin, "train", "--data", train_path, "--label", "churned", "--l2", "1",
                          "--holdout", "0", "--folds", "0", "--solver", "linfa", "--out", out, "--json"],
                         capture_output=True, text=True, check=True)
    rep = json.loads(res.stdout)
    ev = json.loads(subprocess.run([a.bin, "evaluate", "--model", out, "--data", test_path, "--json"],
                                   capture_output=True, text=True, check=True).stdout)
    print(f"churn --solver linfa:        fit {rep['report']['seconds']['final_fit']:.3f} s, "
          f"test AUC {ev['auc']:.6f} (linfa-logistic's own fit, default tolerance)")
