//! The Open Inference Protocol (KServe V2) service over loopback with a real tonic client, next to
//! churn.v1 on the same port: readiness and metadata, ModelInfer raw and typed against churn.v1's
//! scores for the same rows, the outputs list, the [N, F] matrix form, versions, and every error.
mod common;
mod grpc;
use churn::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use churn::inference::*;
use common::*;
use grpc::*;
use prost::bytes::Bytes;
use std::collections::HashMap;
use tonic::Code;

/// One Telco row's inputs as the V2 tensors take them.
#[derive(Clone)]
enum Cell {
    Number(f64),
    Text(String),
}

/// The model's inputs (name, datatype) from ModelMetadata.
type Inputs = Vec<(String, String)>;

/// Rows as V2 input tensors, one per input: absent numbers are NaN and absent texts empty, which
/// the server reads as missing, like an absent feature in churn.v1.
fn v2_request(inputs: &Inputs, rows: &[HashMap<String, Cell>], raw: bool) -> ModelInferRequest {
    let mut req = ModelInferRequest {
        model_name: "telco".into(),
        id: "req-7".into(),
        ..Default::default()
    };
    for (name, dt) in inputs {
        let mut t = InferInputTensor {
            name: name.clone(),
            datatype: dt.clone(),
            shape: vec![rows.len() as i64],
            ..Default::default()
        };
        let mut c = InferTensorContents::default();
        for r in rows {
            match (dt.as_str(), r.get(name)) {
                ("BYTES", Some(Cell::Text(s))) => c.bytes_contents.push(Bytes::from(s.clone())),
                ("BYTES", _) => c.bytes_contents.push(Bytes::new()),
                (_, Some(Cell::Number(x))) => c.fp64_contents.push(*x),
                (_, _) => c.fp64_contents.push(f64::NAN),
            }
        }
        if raw {
            let mut b = Vec::new();
            for s in &c.bytes_contents {
                b.extend_from_slice(&(s.len() as u32).to_le_bytes());
                b.extend_from_slice(s);
            }
            for x in &c.fp64_contents {
                b.extend_from_slice(&x.to_le_bytes());
            }
            req.raw_input_contents.push(b.into());
        } else {
            t.contents = Some(c);
        }
        req.inputs.push(t);
    }
    req
}

fn telco_cells(n: usize) -> Vec<HashMap<String, Cell>> {
    telco_rows(n)
        .into_iter()
        .map(|(_, m)| {
            m.into_iter()
                .map(|(k, v)| {
                    let c = match v {
                        serde_json::Value::Number(x) => Cell::Number(x.as_f64().unwrap()),
                        other => Cell::Text(other.as_str().unwrap().to_string()),
                    };
                    (k, c)
                })
                .collect()
        })
        .collect()
}

/// An output tensor's values, read from raw or typed contents.
fn fp64_output(resp: &ModelInferResponse, name: &str) -> (Vec<i64>, Vec<f64>) {
    let k = resp
        .outputs
        .iter()
        .position(|o| o.name == name)
        .unwrap_or_else(|| panic!("no output {name}"));
    let o = &resp.outputs[k];
    assert_eq!(o.datatype, "FP64");
    let v = if resp.raw_output_contents.is_empty() {
        o.contents.as_ref().unwrap().fp64_contents.clone()
    } else {
        resp.raw_output_contents[k]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    (o.shape.clone(), v)
}

fn bytes_output(resp: &ModelInferResponse, name: &str) -> (Vec<i64>, Vec<String>) {
    let k = resp.outputs.iter().position(|o| o.name == name).unwrap();
    let o = &resp.outputs[k];
    assert_eq!(o.datatype, "BYTES");
    let v = if resp.raw_output_contents.is_empty() {
        o.contents
            .as_ref()
            .unwrap()
            .bytes_contents
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    } else {
        let mut rest = &resp.raw_output_contents[k][..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            out.push(String::from_utf8(rest[4..4 + n].to_vec()).unwrap());
            rest = &rest[4 + n..];
        }
        out
    };
    (o.shape.clone(), v)
}

fn tier_name(t: i32) -> &'static str {
    match churn::proto::RiskTier::try_from(t).unwrap() {
        churn::proto::RiskTier::Low => "LOW",
        churn::proto::RiskTier::Medium => "MEDIUM",
        churn::proto::RiskTier::High => "HIGH",
        churn::proto::RiskTier::Unspecified => "?",
    }
}

type V2Client = churn::inference::grpc_inference_service_client::GrpcInferenceServiceClient<
    tonic::transport::Channel,
>;

/// ModelMetadata of telco at `version` ("" = the serving one).
async fn metadata(c: &mut V2Client, version: &str) -> ModelMetadataResponse {
    c.model_metadata(ModelMetadataRequest {
        name: "telco".into(),
        version: version.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn inputs_of(c: &mut V2Client) -> Inputs {
    let m = metadata(c, "").await;
    m.inputs.into_iter().map(|t| (t.name, t.datatype)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_metadata_describe_the_model_exactly() {
    let repo = repo();
    let model = root().join("models/telco/1/model.json");
    install(repo.path(), "telco", 2, &model);
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.v2_client().await;

    assert!(
        c.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        c.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let sm = c
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sm.name, "churn");
    assert_eq!(sm.version, env!("CARGO_PKG_VERSION"));
    for (name, version, ready) in [
        ("telco", "", true),
        ("telco", "1", true),
        ("telco", "2", true),
        ("telco", "3", false),
        ("telco", "x", false),
        ("nope", "", false),
    ] {
        let r = c
            .model_ready(ModelReadyRequest {
                name: name.into(),
                version: version.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.ready, ready, "{name}@{version}");
    }

    // Inputs: every feature, in schema order, FP64 for numbers and BYTES for categoricals.
    let file = json(&std::fs::read_to_string(&model).unwrap());
    let features = file["features"].as_array().unwrap();
    let m = metadata(&mut c, "").await;
    assert_eq!(m.name, "telco");
    assert_eq!(m.versions, ["1", "2"]);
    assert_eq!(m.platform, "churn");
    assert_eq!(m.inputs.len(), features.len());
    for (t, f) in m.inputs.iter().zip(features) {
        assert_eq!(t.name, f["name"].as_str().unwrap());
        let want = if f["kind"] == "categorical" {
            "BYTES"
        } else {
            "FP64"
        };
        assert_eq!((t.datatype.as_str(), t.shape.as_slice()), (want, &[-1][..]));
    }
    let outs: Vec<(&str, &str, &[i64])> = m
        .outputs
        .iter()
        .map(|t| (t.name.as_str(), t.datatype.as_str(), t.shape.as_slice()))
        .collect();
    let f = features.len() as i64;
    assert_eq!(
        outs,
        vec![
            ("churn_probability", "FP64", &[-1][..]),
            ("risk_tier", "BYTES", &[-1][..]),
            ("contributions", "FP64", &[-1, f][..]),
        ]
    );
    assert_eq!(metadata(&mut c, "1").await.versions, ["1"]);

    for (name, version) in [("nope", ""), ("telco", "9"), ("telco", "x")] {
        let err = c
            .model_metadata(ModelMetadataRequest {
                name: name.into(),
                version: version.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{name}@{version}");
        assert!(err.message().contains(name), "{}", err.message());
    }

    // Health reports the V2 service, and reflection lists it.
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel(&srv.addr).await);
    let s = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "inference.GRPCInferenceService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_infer_equals_churn_v1_for_1000_rows_raw_and_typed() {
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.v2_client().await;
    let mut v1 = srv.client().await;
    let inputs = inputs_of(&mut c).await;
    let cells = telco_cells(1000);
    assert!(
        cells.iter().any(|r| !r.contains_key("TotalCharges")),
        "the rows include a blank TotalCharges, sent as NaN"
    );

    // churn.v1 for the same rows, with every reason.
    let reqs = telco_requests(1000);
    let mut want = Vec::new();
    for (mut r, _) in reqs {
        r.top_k = inputs.len() as u32;
        want.push(v1.score(r).await.unwrap().into_inner());
    }

    for raw in [true, false] {
        let resp = c
            .model_infer(v2_request(&inputs, &cells, raw))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.raw_output_contents.is_empty(), !raw, "raw in, raw out");
        assert_eq!(
            (
                resp.model_name.as_str(),
                resp.model_version.as_str(),
                resp.id.as_str()
            ),
            ("telco", "1", "req-7")
        );
        let names: Vec<&str> = resp.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["churn_probability", "risk_tier", "contributions"]);
        let (shape, p) = fp64_output(&resp, "churn_probability");
        assert_eq!(shape, [1000]);
        let (shape, tiers) = bytes_output(&resp, "risk_tier");
        assert_eq!(shape, [1000]);
        let (shape, contributions) = fp64_output(&resp, "contributions");
        let f = inputs.len();
        assert_eq!(shape, [1000, f as i64]);
        assert_eq!(contributions.len(), 1000 * f);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(p[i], w.churn_probability, "row {i} (raw {raw})");
            assert_eq!(tiers[i], tier_name(w.risk_tier), "row {i}");
            let row = &contributions[i * f..(i + 1) * f];
            // Every reason churn.v1 gives is the same number in the same feature's column; the
            // features the row lacks (imputed) are never reasons.
            assert_eq!(w.reasons.len(), f - w.imputed_features.len());
            for r in &w.reasons {
                let col = inputs.iter().position(|(n, _)| *n == r.feature).unwrap();
                assert_eq!(row[col], r.contribution, "row {i} {}", r.feature);
            }
        }
    }

    // One row.
    let resp = c
        .model_infer(v2_request(&inputs, &cells[..1], true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fp64_output(&resp, "churn_probability").1,
        [want[0].churn_probability]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outputs_list_and_the_model_version_are_honoured() {
    let repo = repo();
    let other = tempfile::tempdir().unwrap();
    // Version 2: the same data with another seed, so its scores differ from version 1's.
    let v2 = train_telco(
        root().join(TELCO).to_str().unwrap(),
        other.path(),
        &["--seed", "11", "--positive", "Yes", "--l2", "0.5"],
    );
    install(repo.path(), "telco", 2, &v2);
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.v2_client().await;
    let inputs = inputs_of(&mut c).await;
    let cells = telco_cells(3);

    let mut req = v2_request(&inputs, &cells, true);
    req.outputs = ["contributions", "risk_tier"]
        .map(|n| InferRequestedOutputTensor {
            name: n.into(),
            ..Default::default()
        })
        .to_vec();
    let resp = c.model_infer(req.clone()).await.unwrap().into_inner();
    let names: Vec<&str> = resp.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["contributions", "risk_tier"], "in the order asked");
    assert_eq!(resp.raw_output_contents.len(), 2);
    assert_eq!(resp.model_version, "2", "\"\" is the serving version");

    req.outputs.truncate(0);
    let latest = c.model_infer(req.clone()).await.unwrap().into_inner();
    req.model_version = "1".into();
    let first = c.model_infer(req.clone()).await.unwrap().into_inner();
    assert_eq!(first.model_version, "1");
    assert_ne!(
        fp64_output(&first, "churn_probability").1,
        fp64_output(&latest, "churn_probability").1
    );

    req.outputs = ["churn_probability", "reasons"]
        .map(|n| InferRequestedOutputTensor {
            name: n.into(),
            ..Default::default()
        })
        .to_vec();
    let err = c.model_infer(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = violations(&err);
    assert_eq!(v[0].0, "reasons");
    assert!(
        v[0].1
            .contains("churn_probability, risk_tier, contributions")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_numeric_model_takes_one_matrix() {
    // A model of Telco's numeric columns only.
    let dir = tempfile::tempdir().unwrap();
    let mut rdr = csv::Reader::from_path(root().join(TELCO)).unwrap();
    let h = rdr.headers().unwrap().clone();
    let keep = [
        "customerID",
        "SeniorCitizen",
        "tenure",
        "MonthlyCharges",
        "Churn",
    ];
    let idx: Vec<usize> = keep
        .iter()
        .map(|k| h.iter().position(|c| c == *k).unwrap())
        .collect();
    let mut text = keep.join(",") + "\n";
    for r in rdr.records().take(3000) {
        let r = r.unwrap();
        text += &(idx.iter().map(|&i| &r[i]).collect::<Vec<_>>().join(",") + "\n");
    }
    let data = write(dir.path(), "numeric.csv", &text);
    let model = train_telco(&data, &dir.path().join("m"), &["--positive", "Yes"]);
    let repo = tempfile::tempdir().unwrap();
    install(repo.path(), "telco", 1, &model);
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.v2_client().await;
    let inputs = inputs_of(&mut c).await;
    assert_eq!(inputs.len(), 3);

    // FP32 values, as one [N, 3] matrix and as three FP64 columns of the same (widened) numbers.
    let rows: Vec<[f32; 3]> = (0..50)
        .map(|i| [(i % 2) as f32, i as f32 * 1.5, 20.0 + i as f32 * 0.37])
        .collect();
    let mut m = ModelInferRequest {
        model_name: "telco".into(),
        inputs: vec![InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![50, 3],
            ..Default::default()
        }],
        ..Default::default()
    };
    m.raw_input_contents = vec![
        rows.iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    ];
    let cells: Vec<HashMap<String, Cell>> = rows
        .iter()
        .map(|r| {
            inputs
                .iter()
                .zip(r)
                .map(|((n, _), x)| (n.clone(), Cell::Number(*x as f64)))
                .collect()
        })
        .collect();
    let by_matrix = c.model_infer(m.clone()).await.unwrap().into_inner();
    let by_columns = c
        .model_infer(v2_request(&inputs, &cells, true))
        .await
        .unwrap()
        .into_inner();
    let p = fp64_output(&by_matrix, "churn_probability").1;
    assert_eq!(p.len(), 50);
    assert_eq!(p, fp64_output(&by_columns, "churn_probability").1);
    assert_eq!(
        fp64_output(&by_matrix, "contributions").1,
        fp64_output(&by_columns, "contributions").1
    );

    // A bad value in the matrix names the tensor, row and column.
    let mut bad = m.clone();
    let mut b = bad.raw_input_contents[0].to_vec();
    b[(7 * 3 + 1) * 4..(7 * 3 + 2) * 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    bad.raw_input_contents[0] = b.into();
    let err = c.model_infer(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = violations(&err);
    assert_eq!(v[0].0, "features");
    assert!(v[0].1.starts_with("row 7, column 1 (tenure)"), "{v:?}");
    // A matrix of the wrong width.
    m.inputs[0].shape = vec![75, 2];
    let err = c.model_infer(m).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("[N, 3]"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_code_and_names_the_tensor() {
    let repo = repo();
    let srv = Server::start(repo.path(), &["--max-batch", "100"]);
    let mut c = srv.v2_client().await;
    let inputs = inputs_of(&mut c).await;
    let cells = telco_cells(5);
    let good = v2_request(&inputs, &cells, true);
    let pos = |name: &str| inputs.iter().position(|(n, _)| n == name).unwrap();
    let code_and_violations = |r: Result<tonic::Response<ModelInferResponse>, tonic::Status>| {
        let e = r.unwrap_err();
        let v = if e.code() == Code::InvalidArgument {
            violations(&e)
        } else {
            Vec::new()
        };
        (e.code(), e.message().to_string(), v)
    };

    // Wrong datatype: a number sent as BYTES of its own text.
    let mut r = good.clone();
    let k = pos("tenure");
    r.inputs[k].datatype = "BYTES".into();
    let mut b = Vec::new();
    for _ in 0..5 {
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(b"12");
    }
    r.raw_input_contents[k] = b.into();
    let (code, msg, v) = code_and_violations(c.model_infer(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("tenure"), "{msg}");
    assert_eq!(v[0].0, "tenure");

    // Wrong shape.
    let mut r = good.clone();
    r.inputs[pos("Contract")].shape = vec![5, 2];
    let (code, _, v) = code_and_violations(c.model_infer(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(v[0].0, "Contract");
    assert!(v[0].1.contains("shape [5, 2]"), "{v:?}");

    // A byte length that does not match the shape.
    let mut r = good.clone();
    let k = pos("MonthlyCharges");
    r.raw_input_contents[k] = r.raw_input_contents[k].slice(..36);
    let (code, _, v) = code_and_violations(c.model_infer(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(v[0].0, "MonthlyCharges");
    assert!(v[0].1.contains("36 bytes"), "{v:?}");

    // A missing input.
    let mut r = good.clone();
    let k = pos("gender");
    r.inputs.remove(k);
    r.raw_input_contents.remove(k);
    let (code, _, v) = code_and_violations(c.model_infer(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(v[0].0, "gender");
    assert!(v[0].1.contains("missing input"), "{v:?}");

    // A bad value: named by tensor and row; every one of them listed.
    let mut r = v2_request(&inputs, &cells, false);
    let k = pos("tenure");
    r.inputs[k].contents.as_mut().unwrap().fp64_contents[3] = f64::INFINITY;
    r.inputs[pos("TotalCharges")]
        .contents
        .as_mut()
        .unwrap()
        .fp64_contents[1] = -f64::INFINITY;
    let (code, _, v) = code_and_violations(c.model_infer(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0].0, "TotalCharges");
    assert!(
        v[0].1.starts_with("row 1: expected a finite number"),
        "{v:?}"
    );
    assert_eq!(v[1].0, "tenure");
    assert!(v[1].1.starts_with("row 3:"), "{v:?}");

    // Many bad values: the first 20 are listed and the rest counted.
    let many: Vec<HashMap<String, Cell>> = telco_cells(60)
        .into_iter()
        .map(|mut r| {
            r.insert("tenure".into(), Cell::Number(f64::INFINITY));
            r
        })
        .collect();
    let (_, _, v) = code_and_violations(c.model_infer(v2_request(&inputs, &many, true)).await);
    assert_eq!(v.len(), 21);
    assert_eq!(v[20].1, "40 more bad values not listed");

    // More rows than --max-batch.
    let big = telco_cells(101);
    let (code, msg, _) = code_and_violations(c.model_infer(v2_request(&inputs, &big, true)).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("limit of 100"), "{msg}");

    // Unknown model or version.
    for (name, version) in [("nope", ""), ("telco", "4")] {
        let mut r = good.clone();
        r.model_name = name.into();
        r.model_version = version.into();
        let (code, msg, _) = code_and_violations(c.model_infer(r).await);
        assert_eq!(code, Code::NotFound, "{name}@{version}");
        assert!(msg.contains("telco@1"), "lists what is served: {msg}");
    }

    // The server is still fine, and churn.v1 beside it.
    assert!(c.model_infer(good.clone()).await.is_ok());
    let mut v1 = srv.client().await;
    assert!(v1.score(telco_requests(1)[0].0.clone()).await.is_ok());
    drop(srv);

    // --strict: NaN (a missing number) is refused, naming the tensor and row.
    let srv = Server::start(repo.path(), &["--strict"]);
    let mut c = srv.v2_client().await;
    let mut r = v2_request(&inputs, &cells, false);
    r.inputs[pos("tenure")]
        .contents
        .as_mut()
        .unwrap()
        .fp64_contents[2] = f64::NAN;
    let (code, _, v) = code_and_violations(c.model_infer(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(v[0].0, "tenure");
    assert!(v[0].1.starts_with("row 2: missing"), "{v:?}");
}
