use super::print_json;
use crate::error::{Error, Result};
use crate::model::{ChurnModel, FeatureValue, sigmoid};
use crate::schema::NamedCells;
use crate::serve::http::v1::ScoreJson;
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

pub fn run(a: ExplainArgs) -> Result<()> {
    let model = ChurnModel::load(&a.model)?;
    let text = match a.features.strip_prefix('@') {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
        None => a.features.clone(),
    };
    let cells: NamedCells = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "--features: not a JSON object of name -> number, text or null: {e}"
        ))
    })?;
    let (named, bad) = cells.values();
    let explained = if bad.is_empty() {
        model.explain_named(named, a.strict)
    } else {
        Err(bad)
    };
    let e = explained.map_err(Error::InvalidFeatures)?;
    let reasons = e.reasons(a.top_k);
    if a.json {
        print_json(&ScoreJson::new(&model, &e, a.top_k, None));
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
