#!/usr/bin/env python3
"""Batch scoring, churn vs pandas + scikit-learn, CSV to CSV, on the same file in one run.

Builds a Telco-shaped CSV of N rows (the 7,043 Telco rows repeated with unique ids), then
  - pandas: read_csv, the same encoding as churn (median imputation, log1p TotalCharges,
    standardisation, one-hot), scikit-learn LogisticRegression.predict_proba, to_csv of id and
    probability (no tiers, no reasons: scikit-learn has none);
  - churn: `churn score` with probability, tier and the top-3 reasons.
With --parquet, the same rows as Parquet, Parquet to Parquet (pandas: read_parquet/to_parquet via
pyarrow). With --churn-only, pandas is skipped (for the 10M-row memory run).
With --model given more than once (e.g. the bundled linear model and an additive one), churn scores
the same file with each in turn. Reports rows/s and peak RSS of each. Usage (from the project
root, after cargo build --release):
  python benches/batch_vs_pandas.py [--rows 1000000] [--parquet] [--churn-only] [--model DIR ...]
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
ap.add_argument("--parquet", action="store_true")
ap.add_argument("--churn-only", action="store_true")
ap.add_argument("--model", action="append", help="model folder or file (default models/telco)")
a = ap.parse_args()
a.model = a.model or ["models/telco"]

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

def churn_run(model, src, out):
    t0 = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", a.bin, "score", "--model", model, "--input", src, "--output", out],
                         capture_output=True, text=True, check=True)
    secs = time.perf_counter() - t0
    return secs, int(res.stderr.strip().splitlines()[-1]) / 1024


def pandas_run(src, out):
    """In a child process, so each run's peak RSS is its own."""
    code = f"""
import pickle, resource, sys, time, pandas as pd
clf = pickle.load(open({os.path.join(tmp, 'clf.pkl')!r}, 'rb'))
t0 = time.perf_counter()
d = pd.read_parquet({src!r}) if {src!r}.endswith('.parquet') else pd.read_csv({src!r})
d['TotalCharges'] = pd.to_numeric(d['TotalCharges'], errors='coerce')
p = clf.predict_proba(d[{numeric + categorical!r}])[:, 1]
o = pd.DataFrame({{'customerID': d['customerID'], 'churn_probability': p}})
o.to_parquet({out!r}) if {out!r}.endswith('.parquet') else o.to_csv({out!r}, index=False)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs, rss = res.stdout.split()
    return float(secs), float(rss)


import pickle, sys
pickle.dump(clf, open(os.path.join(tmp, "clf.pkl"), "wb"))
# The generated files reach the disk before anything is timed, so neither tool pays for their
# writeback (churn syncs its own output before renaming it into place; pandas does not sync).
os.sync()
runs = [("CSV", big, ".csv")]
if a.parquet:
    pq = os.path.join(tmp, "customers.parquet")
    # Streamed, so the 10M-row file converts in bounded memory.
    import pyarrow.csv as pacsv, pyarrow.parquet as papq
    rdr = pacsv.open_csv(big, convert_options=pacsv.ConvertOptions(column_types={"TotalCharges": "float64"},
                                                                   null_values=["", " "], strings_can_be_null=False))
    with papq.ParquetWriter(pq, rdr.schema) as w:
        for b in rdr:
            w.write_batch(b)
    print(f"same rows as Parquet: {os.path.getsize(pq) / 1e6:.0f} MB")
    runs.append(("Parquet", pq, ".parquet"))
os.sync()
for name, src, ext in runs:
    times = []
    for model in a.model:
        churn_s, churn_rss = churn_run(model, src, os.path.join(tmp, "churn" + ext))
        print(f"{name}: churn score {model} (probability, tier, top-3 reasons): {churn_s:.2f} s, {a.rows / churn_s:,.0f} rows/s, peak RSS {churn_rss:.0f} MB")
        times.append((model, churn_s))
    if not a.churn_only:
        pandas_s, pandas_rss = pandas_run(src, os.path.join(tmp, "pandas" + ext))
        print(f"{name}: pandas + scikit-learn (probability only): {pandas_s:.2f} s, {a.rows / pandas_s:,.0f} rows/s, peak RSS {pandas_rss:.0f} MB")
        for model, churn_s in times:
            print(f"{name}: churn {model} is {pandas_s / churn_s:.1f}x pandas")
