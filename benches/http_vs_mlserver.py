#!/usr/bin/env python3
"""Prepares benches/http_bench.sh: the same Telco row as a churn.v1 JSON body, as a V2 REST body for
churn (one tensor per feature), and two ways for MLServer, each with its scikit-learn model:
- `telco`: the raw row (the same tensors, with the pandas content type MLServer's scikit-learn
  runtime reads) into a pipeline that one-hot encodes and standardises, then a logistic regression:
  the peer of churn's linear model, taking what churn takes;
- `telco_encoded`: MLServer's fastest case, the row already encoded by the caller as one FP64
  [1, K] tensor into the logistic regression alone (numpy in, no pandas, no pipeline).
usage: http_vs_mlserver.py TELCO_CSV OUT_DIR"""
import csv, json, os, sys

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

telco, out = sys.argv[1], sys.argv[2]
num = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
df = pd.read_csv(telco)
df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce")
y = (df.pop("Churn") == "Yes").astype(int)
df = df.drop(columns=["customerID"])
cat = [c for c in df.columns if c not in num]
pipe = make_pipeline(
    ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        ("cat", OneHotEncoder(handle_unknown="ignore"), cat),
    ], sparse_threshold=0),
    LogisticRegression(max_iter=1000),
)
pipe.fit(df, y)
model_dir = os.path.join(out, "mlserver", "telco")
os.makedirs(model_dir, exist_ok=True)
joblib.dump(pipe, os.path.join(model_dir, "model.joblib"))
json.dump({"name": "telco", "implementation": "mlserver_sklearn.SKLearnModel",
           "parameters": {"uri": "./model.joblib", "version": "1"}},
          open(os.path.join(model_dir, "model-settings.json"), "w"))

encoded = pipe[0].transform(df)
bare = LogisticRegression(max_iter=1000).fit(encoded, y)
enc_dir = os.path.join(out, "mlserver", "telco_encoded")
os.makedirs(enc_dir, exist_ok=True)
joblib.dump(bare, os.path.join(enc_dir, "model.joblib"))
json.dump({"name": "telco_encoded", "implementation": "mlserver_sklearn.SKLearnModel",
           "parameters": {"uri": "./model.joblib", "version": "1"}},
          open(os.path.join(enc_dir, "model-settings.json"), "w"))

row = next(r for r in csv.DictReader(open(telco, newline="")) if all(v.strip() for v in r.values()))
features = {k: (float(v) if k in num else v) for k, v in row.items() if k not in ("customerID", "Churn")}
json.dump({"customer_id": row["customerID"], "features": features}, open(os.path.join(out, "v1.json"), "w"))
inputs = [{"name": k, "shape": [1], "datatype": "FP64" if k in num else "BYTES", "data": [v]} for k, v in features.items()]
json.dump({"inputs": inputs, "outputs": [{"name": "churn_probability"}]}, open(os.path.join(out, "v2_churn.json"), "w"))
json.dump({"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]},
          open(os.path.join(out, "v2_mlserver.json"), "w"))
x = pipe[0].transform(pd.DataFrame([features]))
json.dump({"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP64", "data": x.reshape(-1).tolist()}],
           "outputs": [{"name": "predict_proba"}]}, open(os.path.join(out, "v2_mlserver_encoded.json"), "w"))
print(f"sklearn P(churn) for {row['customerID']}: {pipe.predict_proba(pd.DataFrame([features]))[0][1]:.4f}")
