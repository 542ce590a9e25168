//! Soak: a bounded run (60 s; CHURN_SOAK_SECONDS to change) of mixed good and bad traffic from 8
//! callers against one server with API keys: churn.v1 Score, ScoreBatch and ScoreStream, V2
//! ModelInfer, bad features, wrong dtypes, wrong keys and unknown models. Every good call must
//! answer exactly what the same row got before the soak, every bad one its error code, and the
//! server's memory must stay flat after warm-up.
mod common;
mod grpc;
use churn::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn::inference::model_infer_request::InferInputTensor;
use churn::inference::{ModelInferRequest, ModelMetadataRequest};
use churn::proto::churn_service_client::ChurnServiceClient;
use churn::proto::{ScoreBatchRequest, ScoreRequest};
use grpc::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;

const KEY: &str = "k-soak-4b1e92";

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

fn with_key<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}

/// One row as raw V2 tensors (FP64 numbers, BYTES texts; absent = NaN or empty).
fn v2_row(inputs: &[(String, String)], row: &ScoreRequest) -> ModelInferRequest {
    use churn::proto::feature_value::Kind;
    let mut req = ModelInferRequest {
        model_name: "telco".into(),
        ..Default::default()
    };
    for (name, dt) in inputs {
        let v = row.features.get(name).and_then(|v| v.kind.clone());
        let raw = match (dt.as_str(), v) {
            ("BYTES", Some(Kind::Text(s))) => {
                let mut b = (s.len() as u32).to_le_bytes().to_vec();
                b.extend_from_slice(s.as_bytes());
                b
            }
            ("BYTES", _) => 0u32.to_le_bytes().to_vec(),
            (_, Some(Kind::Number(x))) => x.to_le_bytes().to_vec(),
            (_, _) => f64::NAN.to_le_bytes().to_vec(),
        };
        req.inputs.push(InferInputTensor {
            name: name.clone(),
            datatype: dt.clone(),
            shape: vec![1],
            ..Default::default()
        });
        req.raw_input_contents.push(raw.into());
    }
    req
}

#[derive(Default)]
struct Tally(BTreeMap<&'static str, u64>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_good_and_bad_traffic_for_a_bounded_time_keeps_answers_right_and_memory_flat() {
    let seconds: u64 = std::env::var("CHURN_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{KEY}\n")).unwrap();
    let repo = repo();
    let srv = Server::start(repo.path(), &["--api-keys", keys.to_str().unwrap()]);
    let pid = srv.child.id();
    let ch = channel(&srv.addr).await;

    // The answers before the soak: churn.v1 for 200 rows.
    let rows: Vec<ScoreRequest> = telco_requests(200).into_iter().map(|r| r.0).collect();
    let mut v1 = ChurnServiceClient::new(ch.clone());
    let mut want = Vec::new();
    for r in &rows {
        let p = v1
            .score(with_key(r.clone(), KEY))
            .await
            .unwrap()
            .into_inner()
            .churn_probability;
        want.push(p);
    }
    let mut v2 = GrpcInferenceServiceClient::new(ch.clone());
    let meta = v2
        .model_metadata(with_key(
            ModelMetadataRequest {
                name: "telco".into(),
                version: String::new(),
            },
            KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    let inputs: Vec<(String, String)> = meta
        .inputs
        .into_iter()
        .map(|t| (t.name, t.datatype))
        .collect();

    let start = Instant::now();
    let warm = start + Duration::from_secs(seconds.min(10) / 2 + 1);
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let (rows, want, inputs) = (rows.clone(), want.clone(), inputs.clone());
        let ch: Channel = ch.clone();
        tasks.push(tokio::spawn(async move {
            let mut v1 = ChurnServiceClient::new(ch.clone());
            let mut v2 = GrpcInferenceServiceClient::new(ch);
            let mut tally = Tally::default();
            let mut i = w;
            while Instant::now() < end {
                i = (i + 7) % rows.len();
                let row = &rows[i];
                match (i + w) % 8 {
                    1 => {
                        // A stream of 5 rows, the third one bad: it alone carries an error.
                        let mut reqs: Vec<ScoreRequest> =
                            (0..5).map(|k| rows[(i + k) % rows.len()].clone()).collect();
                        reqs[2].features.insert("colour".into(), Default::default());
                        let out = v1
                            .score_stream(with_key(tokio_stream::iter(reqs), KEY))
                            .await
                            .unwrap();
                        let mut out = out.into_inner();
                        let mut k = 0;
                        while let Some(r) = out.message().await.unwrap() {
                            if k == 2 {
                                assert_eq!(r.error.unwrap().code, Code::InvalidArgument as i32);
                            } else {
                                assert_eq!(r.churn_probability, want[(i + k) % rows.len()]);
                            }
                            k += 1;
                        }
                        assert_eq!(k, 5);
                        tally.add("ScoreStream (5 rows, one bad)");
                    }
                    0 => {
                        let r = v1.score(with_key(row.clone(), KEY)).await.unwrap();
                        assert_eq!(r.into_inner().churn_probability, want[i], "row {i}");
                        tally.add("Score (good)");
                    }
                    2 => {
                        let k = (i % 150).max(1);
                        let batch = ScoreBatchRequest {
                            rows: rows[..k].to_vec(),
                            ..Default::default()
                        };
                        let r = v1.score_batch(with_key(batch, KEY)).await.unwrap();
                        for (j, s) in r.into_inner().rows.iter().enumerate() {
                            assert_eq!(s.churn_probability, want[j], "batch row {j}");
                        }
                        tally.add("ScoreBatch (good, 1-149 rows)");
                    }
                    3 => {
                        let r = v2.model_infer(with_key(v2_row(&inputs, row), KEY)).await;
                        let r = r.unwrap().into_inner();
                        let p =
                            f64::from_le_bytes(r.raw_output_contents[0][..8].try_into().unwrap());
                        assert_eq!(p, want[i], "V2 row {i}");
                        tally.add("ModelInfer (good)");
                    }
                    4 => {
                        let mut bad = row.clone();
                        bad.features.insert(
                            "tenure".into(),
                            churn::proto::FeatureValue {
                                kind: Some(churn::proto::feature_value::Kind::Text("ten".into())),
                            },
                        );
                        let e = v1.score(with_key(bad, KEY)).await.unwrap_err();
                        assert_eq!(e.code(), Code::InvalidArgument);
                        tally.add("Score (text for a number)");
                    }
                    5 => {
                        let mut bad = v2_row(&inputs, row);
                        bad.inputs[0].datatype = "FP32".into();
                        let e = v2.model_infer(with_key(bad, KEY)).await.unwrap_err();
                        assert_eq!(e.code(), Code::InvalidArgument);
                        tally.add("ModelInfer (wrong dtype)");
                    }
                    6 => {
                        let e = v1
                            .score(with_key(row.clone(), "k-wrong"))
                            .await
                            .unwrap_err();
                        assert_eq!(e.code(), Code::Unauthenticated);
                        tally.add("Score (wrong key)");
                    }
                    _ => {
                        let mut other = row.clone();
                        other.model = "nope".into();
                        let e = v1.score(with_key(other, KEY)).await.unwrap_err();
                        assert_eq!(e.code(), Code::NotFound);
                        tally.add("Score (unknown model)");
                    }
                }
            }
            tally
        }));
    }
    tokio::time::sleep_until(warm.into()).await;
    let rss_warm = rss_kb(pid);
    let mut total = Tally::default();
    for t in tasks {
        for (k, n) in t.await.unwrap().0 {
            *total.0.entry(k).or_default() += n;
        }
    }
    let rss_end = rss_kb(pid);
    let calls: u64 = total.0.values().sum();
    eprintln!(
        "soak {seconds} s: {calls} calls; server RSS {rss_warm} kB after warm-up, {rss_end} kB at the end"
    );
    for (k, n) in &total.0 {
        eprintln!("  {k}: {n}");
    }
    assert_eq!(total.0.len(), 8, "every kind of call was tried");
    // Flat: growth after warm-up well under what a per-call leak of even 100 bytes would show.
    let budget = 16 * 1024 + calls / 10 / 1024;
    assert!(
        rss_end <= rss_warm + budget,
        "server memory grew from {rss_warm} kB to {rss_end} kB over {calls} calls"
    );
    // And it still answers.
    let r = v1.score(with_key(rows[0].clone(), KEY)).await.unwrap();
    assert_eq!(r.into_inner().churn_probability, want[0]);
}
