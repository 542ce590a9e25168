#![allow(dead_code)]
//! The gRPC test harness: `churn serve` started on free ports, a model repository in a temp folder,
//! and Telco rows as churn.v1 requests.
use crate::common::*;
use churn::proto::churn_service_client::ChurnServiceClient;
use churn::proto::{FeatureValue, ScoreRequest, feature_value::Kind};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tonic::transport::Channel;
use tonic_types::StatusExt;

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The HTTP door's base URL (http://127.0.0.1:PORT, or https:// with TLS).
    pub http: String,
    pub metrics: String,
    _log: tempfile::NamedTempFile,
}

impl Server {
    /// Starts `churn serve` on free ports and waits for its address line.
    pub fn start(models: &Path, extra: &[&str]) -> Server {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_churn"))
            .args([
                "serve",
                "--models",
                models.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(if extra.contains(&"--http-addr") {
                &[][..]
            } else {
                &["--http-addr", "127.0.0.1:0"][..]
            })
            .args(if extra.contains(&"--poll-seconds") {
                &[][..]
            } else {
                &["--poll-seconds", "0.2"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grab = |pat: &str, end: char| -> String {
            let i = line
                .find(pat)
                .unwrap_or_else(|| panic!("no '{pat}' in: {line}"))
                + pat.len();
            line[i..]
                .split(end)
                .next()
                .unwrap()
                .trim_end_matches(';')
                .to_string()
        };
        let addr = format!("http://{}", grab("gRPC on ", ' ').trim_end_matches(','));
        let metrics = format!("http://{}/metrics", grab("metrics on http://", '/'));
        let http = if line.contains("HTTP on ") {
            grab("HTTP on ", ' ').trim_end_matches(',').to_string()
        } else {
            String::new()
        };
        Server {
            child,
            addr,
            http,
            metrics,
            _log: log,
        }
    }

    pub async fn client(&self) -> ChurnServiceClient<Channel> {
        ChurnServiceClient::connect(self.addr.clone())
            .await
            .unwrap()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._log.path()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A repository holding the bundled model as telco/1.
pub fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(
        dir.path(),
        "telco",
        1,
        &root().join("models/telco/1/model.json"),
    );
    dir
}

/// Copies a model file into `repo/name/version/model.json` atomically (temp file + rename).
pub fn install(repo: &Path, name: &str, version: u64, from: &Path) -> PathBuf {
    let d = repo.join(name).join(version.to_string());
    std::fs::create_dir_all(&d).unwrap();
    let tmp = d.join(".model.json.tmp");
    std::fs::copy(from, &tmp).unwrap();
    let path = d.join("model.json");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

pub fn num(x: f64) -> FeatureValue {
    FeatureValue {
        kind: Some(Kind::Number(x)),
    }
}

pub fn text(s: &str) -> FeatureValue {
    FeatureValue {
        kind: Some(Kind::Text(s.into())),
    }
}

/// The first Telco rows as requests, with their JSON for `churn explain`.
pub fn telco_requests(n: usize) -> Vec<(ScoreRequest, serde_json::Value)> {
    telco_rows(n)
        .into_iter()
        .map(|(customer_id, map)| {
            let features = map
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        serde_json::Value::Number(x) => num(x.as_f64().unwrap()),
                        other => text(other.as_str().unwrap()),
                    };
                    (k.clone(), value)
                })
                .collect();
            let request = ScoreRequest {
                customer_id,
                features,
                top_k: 3,
                model: String::new(),
            };
            (request, serde_json::Value::Object(map))
        })
        .collect()
}

pub fn violations(s: &tonic::Status) -> Vec<(String, String)> {
    s.get_details_bad_request()
        .expect("a google.rpc.BadRequest detail")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

pub async fn channel(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

impl Server {
    /// A client of the Open Inference Protocol service on the same port.
    pub async fn v2_client(
        &self,
    ) -> churn::inference::grpc_inference_service_client::GrpcInferenceServiceClient<Channel> {
        churn::inference::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
            self.addr.clone(),
        )
        .await
        .unwrap()
    }
}

/// GET over HTTP/1.1 with the standard library: enough for a metrics page.
pub async fn reqwest_like_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}
