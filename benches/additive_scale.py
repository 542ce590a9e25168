#!/usr/bin/env python3
"""The additive kind at scale: 1M rows x 20 numeric features, churn against LightGBM, one run.

Seeded synthetic data with a non-linear truth (thresholds, a U shape, a saturating curve and one
interaction, the rest linear or noise), 1M training rows and 200k test rows as Parquet. Times
`churn train --kind additive` and `--kind linear` (the defaults: 20% holdout, 5-fold CV, final fit
on every row) as whole processes, with their peak RSS from /usr/bin/time, and LightGBM's fit with
its defaults on the same rows; AUC of each on the test rows.
Usage (from the project root, after cargo build --release):
  ~/.cache/churn-bench-venv/bin/python benches/additive_scale.py [--rows 1000000]
"""
import argparse, json, os, re, subprocess, tempfile, time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--bin", default="target/release/churn")
ap.add_argument("--no-lightgbm", action="store_true")
a = ap.parse_args()

F = 20
rng = np.random.default_rng(15)


def make(n):
    x = rng.standard_normal((n, F))
    x[:, 3] = np.exp(x[:, 3])  # skewed
    x[:, 4] = rng.integers(0, 30, n)  # counts
    logit = (
        -1.0
        + 1.5 * (x[:, 0] > 0.5)  # threshold
        + 0.8 * x[:, 1] ** 2 - 0.8  # U shape
        - 1.2 * np.log1p(x[:, 3])  # saturating
        + 0.05 * x[:, 4]
        + 1.0 * (x[:, 5] > 0) * (x[:, 6] > 0)  # one interaction
        + x[:, 7:12] @ np.linspace(-0.5, 0.5, 5)  # linear
    )  # columns 12..19: noise
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(F)])
    df["churned"] = y
    return df


tmp = tempfile.mkdtemp()
train_path, test_path = os.path.join(tmp, "train.parquet"), os.path.join(tmp, "test.parquet")
make(a.rows).to_parquet(train_path, index=False)
test = make(200_000)
test.to_parquet(test_path, index=False)
print(f"data: {a.rows} x {F} train, 200000 test, in {tmp}")


def churn(kind):
    out = os.path.join(tmp, kind)
    t0 = time.perf_counter()
    r = subprocess.run(
        ["/usr/bin/time", "-v", a.bin, "train", "--data", train_path, "--label", "churned",
         "--kind", kind, "--seed", "1", "--out", out, "--json"],
        capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    rep = json.loads(r.stdout)
    ev = subprocess.run([a.bin, "evaluate", "--model", out, "--data", test_path, "--json"],
                        capture_output=True, text=True, check=True)
    auc = json.loads(ev.stdout)["auc"]
    secs = rep["report"]["seconds"]
    print(f"churn {kind:<9} AUC {auc:.4f}  train process {wall:.2f} s "
          f"(read {rep['read_seconds']:.2f} s, fit {secs['total']:.2f} s)  peak RSS {rss:.0f} MB")


churn("additive")
churn("linear")
if not a.no_lightgbm:
    import lightgbm as lgb
    t0 = time.perf_counter()
    df = pd.read_parquet(train_path)
    X, y = df.drop(columns="churned"), df["churned"]
    t1 = time.perf_counter()
    m = lgb.LGBMClassifier(verbose=-1, random_state=1).fit(X, y)
    t2 = time.perf_counter()
    auc = roc_auc_score(test["churned"], m.predict_proba(test.drop(columns="churned"))[:, 1])
    print(f"LightGBM        AUC {auc:.4f}  read {t1 - t0:.2f} s, fit {t2 - t1:.2f} s")
