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
    },
    /// The models being served.
    Models {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
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

fn features_from_json(
    text: &str,
) -> Result<std::collections::HashMap<String, proto::FeatureValue>> {
    let text = match text.strip_prefix('@') {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
        None => text.to_string(),
    };
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "--features: not a JSON object of name -> value: {e}"
            ))
        })?;
    obj.into_iter()
        .map(|(k, v)| {
            use proto::feature_value::Kind;
            let kind = match v {
                serde_json::Value::Null => None,
                serde_json::Value::Number(n) => Some(Kind::Number(n.as_f64().unwrap_or(f64::NAN))),
                serde_json::Value::String(s) => Some(Kind::Text(s)),
                other => {
                    return Err(Error::Usage(format!(
                        "--features: {k}: expected a number, text or null, got {other}"
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
            ClientCommand::Score { addr, features, model, top_k, customer_id } => {
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
            ClientCommand::Health { addr } => {
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
            ClientCommand::Models { addr } => {
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
