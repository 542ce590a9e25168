use super::print_json;
use crate::error::{Error, Result};
use crate::proto;
use crate::proto::churn_service_client::ChurnServiceClient;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Score one customer: prints the response as JSON.
    Score {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Call the HTTP/JSON door at this URL (e.g. http://127.0.0.1:8080) instead of gRPC at --addr.
        #[arg(long)]
        http: Option<String>,
        /// Features as a JSON object (name -> number, text or null), or @FILE.
        #[arg(long)]
        features: String,
        /// "name" or "name@version" (default: the server's default model).
        #[arg(long, default_value = "")]
        model: String,
        #[arg(long, default_value_t = 3)]
        top_k: u32,
        #[arg(long, default_value = "")]
        customer_id: String,
    },
    /// The server's health, overall and for churn.v1.ChurnService.
    Health {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Ask the HTTP door at this URL (/v2/health/live and /ready) instead of gRPC at --addr.
        #[arg(long)]
        http: Option<String>,
    },
    /// The models being served.
    Models {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Ask the HTTP door at this URL (/v1/models) instead of gRPC at --addr.
        #[arg(long)]
        http: Option<String>,
    },
}

fn endpoint(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

async fn channel(addr: &str) -> Result<tonic::transport::Channel> {
    let e = endpoint(addr);
    tonic::transport::Endpoint::from_shared(e.clone())
        .map_err(|err| Error::Usage(format!("--addr {addr}: {err}")))?
        .connect()
        .await
        .map_err(|err| Error::Usage(format!("cannot connect to {e}: {err}")))
}

fn status_error(s: tonic::Status) -> Error {
    use tonic_types::StatusExt;
    let mut msg = format!("{:?}: {}", s.code(), s.message());
    if let Some(br) = s.get_details_bad_request() {
        for v in br.field_violations {
            msg.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    Error::Usage(msg)
}

fn value_json(v: &Option<proto::FeatureValue>) -> serde_json::Value {
    match v.as_ref().and_then(|v| v.kind.as_ref()) {
        Some(proto::feature_value::Kind::Number(x)) => serde_json::json!(x),
        Some(proto::feature_value::Kind::Text(s)) => serde_json::json!(s),
        None => serde_json::Value::Null,
    }
}

/// `--features`: the JSON text, or the file it names after `@`.
fn read_features(text: &str) -> Result<String> {
    match text.strip_prefix('@') {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Error::io(p, e)),
        None => Ok(text.to_string()),
    }
}

/// Why an HTTP call failed: the server answered with an error, or it could not be reached.
enum HttpFailure {
    Status(u16, String),
    Other(Error),
}

impl From<HttpFailure> for Error {
    fn from(f: HttpFailure) -> Error {
        match f {
            HttpFailure::Status(code, body) => {
                // The server's JSON error, with each named field on its own line.
                let mut msg = format!("HTTP {code}");
                match serde_json::from_str::<serde_json::Value>(&body) {
                    Ok(v) if v.get("error").is_some() => {
                        msg.push_str(&format!(": {}", v["error"].as_str().unwrap_or("")));
                        for d in v["details"].as_array().into_iter().flatten() {
                            msg.push_str(&format!(
                                "\n  {}: {}",
                                d["field"].as_str().unwrap_or(""),
                                d["description"].as_str().unwrap_or("")
                            ));
                        }
                    }
                    _ => msg.push_str(&format!(": {}", body.chars().take(300).collect::<String>())),
                }
                Error::Usage(msg)
            }
            HttpFailure::Other(e) => e,
        }
    }
}

/// One HTTP/1.1 call to the HTTP door at `base` (http://host:port); the JSON answer of a 2xx.
async fn http_call(
    base: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> std::result::Result<(u16, serde_json::Value), HttpFailure> {
    use http_body_util::BodyExt;
    let fail = |m: String| HttpFailure::Other(Error::Usage(m));
    let uri: http::Uri = base
        .trim_end_matches('/')
        .parse()
        .map_err(|e| fail(format!("--http {base}: {e} (expected http://HOST:PORT)")))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail(format!(
            "--http {base}: churn client speaks plain http:// (use curl for https://)"
        )));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| fail(format!("--http {base}: no host:port")))?
        .clone();
    let host = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let tcp = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| fail(format!("cannot connect to {base}: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| fail(format!("{base}: {e}")))?;
    tokio::spawn(conn);
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap_or_default())
        .unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(bytes)))
        .map_err(|e| fail(format!("{base}{path}: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| fail(format!("{base}{path}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(format!("{base}{path}: {e}")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !(200..300).contains(&status) {
        return Err(HttpFailure::Status(status, text));
    }
    let v = serde_json::from_str(&text)
        .map_err(|e| fail(format!("{base}{path}: the answer is not JSON: {e}")))?;
    Ok((status, v))
}

fn features_from_json(
    text: &str,
) -> Result<std::collections::HashMap<String, proto::FeatureValue>> {
    let text = read_features(text)?;
    let cells: crate::schema::NamedCells = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "--features: not a JSON object of name -> number, text or null: {e}"
        ))
    })?;
    cells
        .0
        .into_iter()
        .map(|(k, c)| {
            use crate::schema::JsonCell;
            use proto::feature_value::Kind;
            let kind = match c {
                JsonCell::Null => None,
                JsonCell::Number(x) => Some(Kind::Number(x)),
                JsonCell::Text(s) => Some(Kind::Text(s)),
                JsonCell::Invalid(what) => {
                    return Err(Error::Usage(format!(
                        "--features: {k}: expected a number, text or null, got {what}"
                    )));
                }
            };
            Ok((k, proto::FeatureValue { kind }))
        })
        .collect()
}

pub fn run(a: ClientArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Transport(format!("client runtime: {e}")))?;
    rt.block_on(async move {
        match a.command {
            ClientCommand::Score { http: Some(url), features, model, top_k, customer_id, .. } => {
                let features: serde_json::Value = serde_json::from_str(&read_features(&features)?)
                    .map_err(|e| Error::Usage(format!("--features: not JSON: {e}")))?;
                let body = serde_json::json!({"customer_id": customer_id, "features": features, "top_k": top_k, "model": model});
                let (_, v) = http_call(&url, "POST", "/v1/score", Some(body)).await?;
                print_json(&v);
            }
            ClientCommand::Health { http: Some(url), .. } => {
                let mut all = serde_json::Map::new();
                for (name, path) in [("live", "/v2/health/live"), ("ready", "/v2/health/ready")] {
                    let (status, _) = http_call(&url, "GET", path, None).await.or_else(|e| match e {
                        HttpFailure::Status(s, _) => Ok((s, serde_json::Value::Null)),
                        other => Err(other),
                    })?;
                    all.insert(name.into(), serde_json::json!(status == 200));
                }
                print_json(&all);
            }
            ClientCommand::Models { http: Some(url), .. } => {
                let (_, v) = http_call(&url, "GET", "/v1/models", None).await?;
                print_json(&v);
            }
            ClientCommand::Score { addr, features, model, top_k, customer_id, http: None } => {
                let req = proto::ScoreRequest { customer_id, features: features_from_json(&features)?, top_k, model };
                let mut c = ChurnServiceClient::new(channel(&addr).await?);
                let r = c.score(req).await.map_err(status_error)?.into_inner();
                let tier = proto::RiskTier::try_from(r.risk_tier).map(|t| t.as_str_name()).unwrap_or("?");
                print_json(&serde_json::json!({
                    "customer_id": r.customer_id,
                    "churn_probability": r.churn_probability,
                    "risk_tier": tier.trim_start_matches("RISK_TIER_"),
                    "reasons": r.reasons.iter().map(|x| serde_json::json!({"feature": x.feature, "value": value_json(&x.value), "contribution": x.contribution})).collect::<Vec<_>>(),
                    "model": r.model,
                    "baseline_probability": r.baseline_probability,
                    "imputed_features": r.imputed_features,
                    "unseen_levels": r.unseen_levels,
                }));
            }
            ClientCommand::Health { addr, http: None } => {
                use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
                let mut c = HealthClient::new(channel(&addr).await?);
                let mut all = serde_json::Map::new();
                for service in ["", "churn.v1.ChurnService"] {
                    let s = c.check(HealthCheckRequest { service: service.into() }).await.map_err(status_error)?.into_inner();
                    let name = ServingStatus::try_from(s.status).map(|s| s.as_str_name()).unwrap_or("UNKNOWN");
                    all.insert(if service.is_empty() { "(overall)".into() } else { service.into() }, name.into());
                }
                print_json(&all);
            }
            ClientCommand::Models { addr, http: None } => {
                let mut c = ChurnServiceClient::new(channel(&addr).await?);
                let r = c.list_models(proto::ListModelsRequest {}).await.map_err(status_error)?.into_inner();
                let models: Vec<serde_json::Value> = r
                    .models
                    .iter()
                    .map(|m| serde_json::json!({
                        "id": m.id,
                        "created_at": m.created_at,
                        "features": m.features.iter().map(|f| serde_json::json!({"name": f.name, "kind": f.kind})).collect::<Vec<_>>(),
                        "tiers": m.tiers.as_ref().map(|t| serde_json::json!({"medium": t.medium, "high": t.high})),
                        "holdout_metrics": m.holdout_metrics,
                        "sha256": m.sha256,
                    }))
                    .collect();
                print_json(&models);
            }
        }
        Ok(())
    })
}
