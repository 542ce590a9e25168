#!/usr/bin/env python3
"""Drives `churn serve` with the stock Python Triton client (tritonclient.grpc) and records what it
saw as JSON; tests/v2_tritonclient.rs checks that record against churn.v1's answers for the same rows.

usage: v2_tritonclient.py ADDR MODEL ROWS_CSV N OUT_JSON
The inputs are built from ModelMetadata alone, as a platform integration would: FP64 for numbers
(a blank cell is NaN, which churn reads as missing), BYTES for categoricals (a blank is empty)."""
import csv
import json
import sys

import numpy as np
import tritonclient.grpc as tc
from tritonclient.utils import InferenceServerException

addr, model, rows_csv, n, out_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
c = tc.InferenceServerClient(addr)
record = {
    "live": c.is_server_live(),
    "ready": c.is_server_ready(),
    "model_ready": c.is_model_ready(model),
    "unknown_model_ready": c.is_model_ready("no-such-model"),
}
sm = c.get_server_metadata()
record["server"] = {"name": sm.name, "version": sm.version}
meta = c.get_model_metadata(model)
record["metadata"] = {
    "name": meta.name,
    "versions": list(meta.versions),
    "inputs": [[t.name, t.datatype, list(t.shape)] for t in meta.inputs],
    "outputs": [[t.name, t.datatype, list(t.shape)] for t in meta.outputs],
}

with open(rows_csv, newline="") as f:
    rows = [r for _, r in zip(range(n), csv.DictReader(f))]


def tensors(rows, override=None):
    out = []
    for t in meta.inputs:
        if override and t.name in override:
            out.append(override[t.name])
            continue
        cells = [r[t.name].strip() for r in rows]
        if t.datatype == "BYTES":
            arr = np.array([v.encode() for v in cells], dtype=np.object_)
        else:
            arr = np.array([float(v) if v else np.nan for v in cells], dtype=np.float64)
        i = tc.InferInput(t.name, [len(rows)], t.datatype)
        i.set_data_from_numpy(arr)
        out.append(i)
    return out


def infer(rows, outputs=None):
    res = c.infer(model, tensors(rows), outputs=outputs, request_id="interop-1")
    r = res.get_response()
    got = {"id": r.id, "model_version": r.model_version, "outputs": [o.name for o in r.outputs]}
    for o in r.outputs:
        a = res.as_numpy(o.name)
        got[o.name + ".shape"] = list(a.shape)
        got[o.name] = [v.decode() for v in a.ravel()] if a.dtype == np.object_ else a.ravel().tolist()
    return got


record["one_row"] = infer(rows[:1])
record["all_rows"] = infer(rows)
record["only_probability"] = infer(rows[:5], outputs=[tc.InferRequestedOutput("churn_probability")])


def error_of(call):
    try:
        call()
        return None
    except InferenceServerException as e:
        return {"status": str(e.status()), "message": e.message()}


numeric = next(t.name for t in meta.inputs if t.datatype != "BYTES")
as_text = tc.InferInput(numeric, [1], "BYTES")
as_text.set_data_from_numpy(np.array([rows[0][numeric].encode()], dtype=np.object_))
record["errors"] = {
    "wrong_dtype": error_of(lambda: c.infer(model, tensors(rows[:1], {numeric: as_text}))),
    "unknown_model": error_of(lambda: c.infer("no-such-model", tensors(rows[:1]))),
    "missing_input": error_of(lambda: c.infer(model, tensors(rows[:1])[1:])),
    "unknown_output": error_of(
        lambda: c.infer(model, tensors(rows[:1]), outputs=[tc.InferRequestedOutput("reasons")])
    ),
}
with open(out_path, "w") as f:
    json.dump(record, f)
