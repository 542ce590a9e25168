#!/usr/bin/env python3
"""Drives the HTTP door of `churn serve` with stock Python clients and records what they saw as
JSON; tests/http.rs checks the record against the gRPC door's answers for the same rows.

usage: http_clients.py BASE_URL MODEL ROWS_CSV N OUT_JSON
- requests: POST /v1/score for each row, and POST /v1/score:batch with all of them;
- tritonclient.http: health, metadata, and ModelInfer with binary tensors (its default) and with
  JSON tensors, every output; and a V2 JSON request with nested data sent by requests.
Features come from ModelMetadata alone: FP64 for numbers (a blank cell is missing: left out of a
churn.v1 row, NaN in a binary tensor, null in JSON), BYTES for categoricals (a blank is "")."""
import csv
import json
import sys

import numpy as np
import requests
import tritonclient.http as th

base, model, rows_csv, n, out_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
host = base.split("://", 1)[1]
c = th.InferenceServerClient(host)
meta = c.get_model_metadata(model)
kinds = {t["name"]: t["datatype"] for t in meta["inputs"]}
rows = list(csv.DictReader(open(rows_csv, newline="")))[:n]


def features(r):
    out = {}
    for name, dt in kinds.items():
        v = r[name].strip()
        if v == "":
            continue
        out[name] = float(v) if dt != "BYTES" else v
    return out


record = {
    "live": c.is_server_live(),
    "ready": c.is_server_ready(),
    "model_ready": c.is_model_ready(model),
    "server": c.get_server_metadata(),
    "metadata": meta,
}
s = requests.Session()
record["score"] = []
for r in rows:
    x = s.post(f"{base}/v1/score", json={"customer_id": r["customerID"], "features": features(r), "model": model, "top_k": 19})
    x.raise_for_status()
    record["score"].append(x.json())
x = s.post(f"{base}/v1/score:batch", json={"rows": [{"customer_id": r["customerID"], "features": features(r)} for r in rows], "model": model, "top_k": 19})
x.raise_for_status()
record["batch"] = x.json()["rows"]


def tensors(binary):
    out = []
    for name, dt in kinds.items():
        vals = [features(r).get(name) for r in rows]
        if dt == "BYTES":
            arr = np.array([("" if v is None else v).encode() for v in vals], dtype=np.object_)
        else:
            arr = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        t = th.InferInput(name, [len(rows)], dt)
        t.set_data_from_numpy(arr, binary_data=binary)
        out.append(t)
    return out


names = [o["name"] for o in meta["outputs"]]
for label, binary in (("v2_binary", True), ("v2_json", False)):
    res = c.infer(model, tensors(binary), outputs=[th.InferRequestedOutput(o, binary_data=binary) for o in names], request_id=label)
    got = {"id": res.get_response()["id"], "model_version": res.get_response()["model_version"]}
    for o in names:
        a = res.as_numpy(o)
        got[o + ".shape"] = list(a.shape)
        got[o] = [v.decode() if isinstance(v, bytes) else v if isinstance(v, str) else float(v) for v in a.reshape(-1)]
    record[label] = got

# The protocol's nested form: each row's element in its own list, missing as null.
body = {"inputs": [{"name": name, "shape": [len(rows)], "datatype": dt,
                    "data": [[features(r).get(name, "" if dt == "BYTES" else None)] for r in rows]}
                   for name, dt in kinds.items()],
        "outputs": [{"name": "churn_probability"}]}
x = s.post(f"{base}/v2/models/{model}/infer", json=body)
x.raise_for_status()
record["v2_nested"] = x.json()
json.dump(record, open(out_path, "w"))
