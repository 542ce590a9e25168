use super::print_json;
use crate::error::{Error, FieldViolation, Result};
use crate::model::{ChurnModel, Contribution, FeatureValue, sigmoid};
use crate::schema::Value;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// One customer's features as a JSON object (name -> number, text or null), or @FILE.
    #[arg(long)]
    features: String,
    /// How many reasons to show.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Fail on missing features instead of imputing them.
    #[arg(long)]
    strict: bool,
    /// Print probability, tier, baseline, every contribution and the reasons as JSON.
    #[arg(long)]
    json: bool,
}

fn json_value(c: &FeatureValue) -> serde_json::Value {
    match c {
        FeatureValue::Number(x) => serde_json::json!(x),
        FeatureValue::Level(s) => serde_json::json!(s),
    }
}

fn contribution_json(c: &Contribution) -> serde_json::Value {
    serde_json::json!({"feature": c.feature, "value": json_value(&c.value), "contribution": c.contribution, "imputed": c.imputed})
}

pub fn run(a: ExplainArgs) -> Result<()> {
    let model = ChurnModel::load(&a.model)?;
    let text = match a.features.strip_prefix('@') {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
        None => a.features.clone(),
    };
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "--features: not a JSON object of name -> value: {e}"
            ))
        })?;
    let mut bad = Vec::new();
    let mut named = Vec::with_capacity(obj.len());
    for (k, v) in &obj {
        let value = match v {
            serde_json::Value::Null => Value::Missing,
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::Text(s),
            other => {
                bad.push(FieldViolation {
                    field: k.clone(),
                    description: format!("expected a number, text or null, got {other}"),
                });
                continue;
            }
        };
        named.push((k.as_str(), value));
    }
    let explained = if bad.is_empty() {
        model.explain_named(named, a.strict)
    } else {
        Err(bad)
    };
    let e = explained.map_err(Error::InvalidFeatures)?;
    let reasons = e.reasons(a.top_k);
    if a.json {
        let mut out = serde_json::json!({
            "model": model.id(),
            "kind": model.kind().name(),
            "churn_probability": e.probability,
            "risk_tier": e.tier.as_str(),
            "logit": e.logit,
            "baseline_logit": e.baseline_logit,
            "baseline_probability": sigmoid(e.baseline_logit),
            "contributions": e.contributions.iter().map(contribution_json).collect::<Vec<_>>(),
            "reasons": reasons.iter().map(|c| contribution_json(c)).collect::<Vec<_>>(),
            "imputed_features": e.imputed,
            "unseen_levels": e.unseen,
        });
        if !e.terms.is_empty() {
            // Additive: every term, centred; a feature's contribution is its main term plus half
            // of each pair it is in.
            out["terms"] = e
                .terms
                .iter()
                .map(|t| serde_json::json!({"features": t.features, "value": t.value}))
                .collect();
        }
        if let Some(h) = e.health {
            out["health_score"] = serde_json::json!(h.score);
            out["health_band"] = serde_json::json!(h.band.as_str());
            out["action"] = serde_json::json!(h.action.as_str());
            out["health_reasons"] = e
                .health_reasons
                .iter()
                .take(a.top_k)
                .map(|r| {
                    serde_json::json!({"measure": r.measure, "value": r.value, "percentile": r.percentile})
                })
                .collect();
        }
        print_json(&out);
        return Ok(());
    }
    println!(
        "{}: churn probability {:.4} ({}); baseline {:.4} (the training-average customer)",
        model.id(),
        e.probability,
        e.tier.as_str(),
        sigmoid(e.baseline_logit)
    );
    println!("top reasons (log-odds; positive raises the risk):");
    for c in reasons {
        let v = match &c.value {
            FeatureValue::Number(x) => format!("{x}"),
            FeatureValue::Level(s) => s.clone(),
        };
        println!(
            "  {:<40} {:+.4}",
            format!("{} = {}", c.feature, v),
            c.contribution
        );
    }
    match e.health {
        Some(h) => {
            println!(
                "health {:.1} ({}); action {}; lowest usage (percentile among training customers, higher is healthier):",
                h.score,
                h.band.as_str(),
                h.action.as_str()
            );
            for r in e.health_reasons.iter().take(a.top_k) {
                println!(
                    "  {:<40} {:5.1}",
                    format!("{} = {}", r.measure, r.value),
                    r.percentile
                );
            }
        }
        None => println!("health: none (the model has no usage measures)"),
    }
    if !e.imputed.is_empty() {
        println!("imputed (missing): {}", e.imputed.join(", "));
    }
    if !e.unseen.is_empty() {
        println!("unseen levels: {}", e.unseen.join(", "));
    }
    Ok(())
}
