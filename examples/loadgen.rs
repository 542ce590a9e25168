//! Load generator for `churn serve`: latency percentiles and throughput of churn.v1 Score or
//! ScoreBatch, or the Open Inference Protocol's ModelInfer, at a given concurrency, over a few HTTP/2
//! connections, for a bounded time. Requests are real Telco rows. Usage:
//!   cargo run --release --example loadgen -- --addr http://127.0.0.1:50051 \
//!       --method score|batch|infer --concurrency 32 --seconds 10 [--rows 100] [--connections 4] \
//!       [--warmup 1] [--ca ca.pem] [--api-key KEY]
//! `infer` sends raw tensors, one per input as ModelMetadata lists them, `--rows` rows per call,
//! the way tritonclient does. `--ca` speaks TLS to an `https://` address, trusting that CA (the
//! server's name must be `localhost`); `--api-key` sends `authorization: Bearer KEY` on every call.
use churn::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn::inference::model_infer_request::InferInputTensor;
use churn::inference::{ModelInferRequest, ModelMetadataRequest};
use churn::proto::churn_service_client::ChurnServiceClient;
use churn::proto::{FeatureValue, ScoreBatchRequest, ScoreRequest, feature_value::Kind};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    method: String,
    concurrency: usize,
    connections: usize,
    seconds: f64,
    warmup: f64,
    rows: usize,
    ca: Option<String>,
    api_key: Option<String>,
}

fn parse() -> Args {
    let mut a = Args {
        addr: "http://127.0.0.1:50051".into(),
        method: "score".into(),
        concurrency: 1,
        connections: 0,
        seconds: 10.0,
        warmup: 1.0,
        rows: 100,
        ca: None,
        api_key: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--addr" => a.addr = v,
            "--method" => a.method = v,
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            "--connections" => a.connections = v.parse().expect("--connections N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds S"),
            "--warmup" => a.warmup = v.parse().expect("--warmup S"),
            "--rows" => a.rows = v.parse().expect("--rows N"),
            "--ca" => a.ca = Some(v),
            "--api-key" => a.api_key = Some(v),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.seconds > 0.0 && a.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    assert!(
        matches!(a.method.as_str(), "score" | "batch" | "infer"),
        "--method score|batch|infer"
    );
    assert!(a.rows >= 1, "--rows must be at least 1");
    if a.connections == 0 {
        a.connections = a.concurrency.clamp(1, 4);
    }
    a
}

fn telco_rows(n: usize) -> Vec<ScoreRequest> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/telco_customer_churn.csv");
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    rdr.records()
        .take(n)
        .map(|r| {
            let r = r.unwrap();
            let mut features = HashMap::new();
            for (h, v) in header.iter().zip(r.iter()) {
                if h == "customerID" || h == "Churn" || v.trim().is_empty() {
                    continue;
                }
                let kind = match v.parse::<f64>() {
                    Ok(x) => Kind::Number(x),
                    Err(_) => Kind::Text(v.to_string()),
                };
                features.insert(h.clone(), FeatureValue { kind: Some(kind) });
            }
            ScoreRequest {
                customer_id: r[0].to_string(),
                features,
                top_k: 3,
                model: String::new(),
            }
        })
        .collect()
}

/// V2 requests of `rows` Telco rows each, raw tensors built from the model's metadata.
type Bearer = Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>;

/// A request carrying the API key, if there is one.
fn with_key<T>(bearer: &Bearer, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(b) = bearer {
        req.metadata_mut().insert("authorization", b.clone());
    }
    req
}

async fn infer_requests(
    client: &mut GrpcInferenceServiceClient<tonic::transport::Channel>,
    bearer: &Bearer,
    rows: &[ScoreRequest],
    per_call: usize,
) -> Vec<ModelInferRequest> {
    let meta = client
        .model_metadata(with_key(
            bearer,
            ModelMetadataRequest {
                name: "telco".into(),
                version: String::new(),
            },
        ))
        .await
        .expect("ModelMetadata")
        .into_inner();
    rows.chunks_exact(per_call)
        .map(|chunk| {
            let mut req = ModelInferRequest {
                model_name: meta.name.clone(),
                ..Default::default()
            };
            for t in &meta.inputs {
                let mut raw = Vec::new();
                for r in chunk {
                    match (
                        t.datatype.as_str(),
                        r.features.get(&t.name).and_then(|v| v.kind.clone()),
                    ) {
                        ("BYTES", Some(Kind::Text(s))) => {
                            raw.extend_from_slice(&(s.len() as u32).to_le_bytes());
                            raw.extend_from_slice(s.as_bytes());
                        }
                        ("BYTES", _) => raw.extend_from_slice(&0u32.to_le_bytes()),
                        (_, Some(Kind::Number(x))) => raw.extend_from_slice(&x.to_le_bytes()),
                        (_, _) => raw.extend_from_slice(&f64::NAN.to_le_bytes()),
                    }
                }
                req.inputs.push(InferInputTensor {
                    name: t.name.clone(),
                    datatype: t.datatype.clone(),
                    shape: vec![chunk.len() as i64],
                    ..Default::default()
                });
                req.raw_input_contents.push(raw.into());
            }
            req
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let a = parse();
    let rows = telco_rows(a.rows.max(100));
    let mut channels = Vec::new();
    for _ in 0..a.connections {
        let mut ep = tonic::transport::Endpoint::from_shared(a.addr.clone())
            .unwrap()
            .tcp_nodelay(true);
        if let Some(ca) = &a.ca {
            let pem = std::fs::read_to_string(ca).expect("--ca: read the CA file");
            ep = ep
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(pem))
                        .domain_name("localhost"),
                )
                .expect("--ca: TLS configuration");
        }
        channels.push(ep.connect().await.expect("connect"));
    }
    let bearer: Bearer = a
        .api_key
        .as_ref()
        .map(|k| format!("Bearer {k}").parse().expect("--api-key: ASCII"));
    let infer = if a.method == "infer" {
        let mut c = GrpcInferenceServiceClient::new(channels[0].clone());
        infer_requests(&mut c, &bearer, &rows, a.rows).await
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(a.warmup);
    let end = warm_end + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let ch = channels[w % channels.len()].clone();
        let mut v1 = ChurnServiceClient::new(ch.clone());
        let mut v2 = GrpcInferenceServiceClient::new(ch);
        let rows = rows.clone();
        let infer = infer.clone();
        let method = a.method.clone();
        let batch_rows = a.rows;
        let bearer = bearer.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let (mut calls, mut errors) = (0u64, 0u64);
            let mut i = w;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = match method.as_str() {
                    "batch" => {
                        let req = ScoreBatchRequest {
                            rows: rows[..batch_rows].to_vec(),
                            model: String::new(),
                            top_k: 3,
                        };
                        v1.score_batch(with_key(&bearer, req)).await.is_ok()
                    }
                    "infer" => {
                        i = (i + 1) % infer.len();
                        v2.model_infer(with_key(&bearer, infer[i].clone()))
                            .await
                            .is_ok()
                    }
                    _ => {
                        i = (i + 1) % rows.len();
                        v1.score(with_key(&bearer, rows[i].clone())).await.is_ok()
                    }
                };
                if t >= warm_end {
                    h.record(t.elapsed().as_micros().max(1) as u64).unwrap();
                    calls += 1;
                    errors += u64::from(!ok);
                }
            }
            (h, calls, errors)
        }));
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut calls, mut errors) = (0, 0);
    for t in tasks {
        let (th, c, e) = t.await.unwrap();
        h.add(th).unwrap();
        calls += c;
        errors += e;
    }
    let per_call = if a.method == "score" { 1 } else { a.rows };
    println!(
        "{} concurrency {} connections {}{}: {} calls in {:.1} s, {:.0} calls/s ({:.0} rows/s), errors {}; latency us p50 {} p90 {} p99 {} p99.9 {} max {}",
        a.method,
        a.concurrency,
        a.connections,
        if a.method != "score" {
            format!(" rows {}", a.rows)
        } else {
            String::new()
        },
        calls,
        a.seconds,
        calls as f64 / a.seconds,
        (calls as usize * per_call) as f64 / a.seconds,
        errors,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}
