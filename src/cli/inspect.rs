use super::{fmt_metric, print_json};
use crate::error::Result;
use crate::model::ChurnModel;
use crate::model::file::FeatureEntry;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// Print the whole model file as JSON, with the feature ranking.
    #[arg(long)]
    json: bool,
}

/// A feature's importance: the standard deviation of its contribution over the training rows
/// (log-odds), so numeric and categorical features compare on one scale.
fn importance(f: &FeatureEntry) -> f64 {
    match f {
        FeatureEntry::Numeric(n) => match (&n.shape, n.weight) {
            (Some(s), _) => {
                let mean = crate::model::additive::shape_mean(s);
                (s.values
                    .iter()
                    .zip(&s.shares)
                    .map(|(v, w)| w * (v - mean).powi(2))
                    .sum::<f64>()
                    + s.missing_share * (s.missing_value - mean).powi(2))
                .sqrt()
            }
            (None, w) => w.unwrap_or(0.0).abs(),
        },
        FeatureEntry::Categorical(c) => {
            let mean: f64 = c.levels.iter().map(|l| l.share * l.weight).sum();
            c.levels
                .iter()
                .map(|l| l.share * (l.weight - mean).powi(2))
                .sum::<f64>()
                .sqrt()
        }
    }
}

pub fn run(a: InspectArgs) -> Result<()> {
    let model = ChurnModel::load(&a.model)?;
    let f = model.file();
    let mut ranked: Vec<&FeatureEntry> = f.features.iter().collect();
    ranked.sort_by(|a, b| importance(b).total_cmp(&importance(a)));
    if a.json {
        print_json(&serde_json::json!({
            "path": model.path(),
            "sha256": model.sha256(),
            "model": f,
            "ranking": ranked.iter().map(|e| serde_json::json!({"feature": e.name(), "importance": importance(e)})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let t = &f.training;
    println!(
        "{} (format {}, created {} by churn {})",
        model.id(),
        f.format,
        f.created_at,
        f.churn_version
    );
    println!(
        "file {} sha256 {}",
        model
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        model.sha256()
    );
    println!(
        "trained on {} ({} rows, sha256 {}), label {} = \"{}\" ({:.1}% positive)",
        t.data_file,
        t.rows,
        &t.data_sha256[..t.data_sha256.len().min(12)],
        t.label,
        t.positive,
        100.0 * t.positive_share
    );
    let holdout = match &t.time_split {
        Some(ts) => format!(
            "holdout {} (the latest: {} from {} on)",
            t.holdout_fraction, ts.column, ts.holdout_from
        ),
        None => format!("holdout {}", t.holdout_fraction),
    };
    println!(
        "kind {} ({})",
        f.kind.name(),
        t.kind_chosen_by.as_deref().unwrap_or("format 1: linear")
    );
    for k in &t.kinds_tried {
        println!(
            "  {:<9} cv log loss {:.5}  cv AUC {:.4}",
            k.kind.name(),
            k.cv_log_loss,
            k.cv_auc
        );
    }
    if let Some(a) = &t.additive {
        println!(
            "additive: smoothing {} ({}), ridge {}, up to {} bins, {} of {} pairs kept",
            a.smoothing,
            a.smoothing_chosen_by,
            a.ridge,
            a.max_bins,
            a.interactions_kept,
            a.interactions_requested
        );
        for note in &a.notes {
            println!("  note: {note}");
        }
    }
    println!(
        "l2 {} ({}), {holdout}, {} folds, seed {}, solver {}",
        t.l2, t.l2_chosen_by, t.folds, t.seed, t.solver.name
    );
    println!(
        "baseline probability {:.4} (logit {:.4})",
        crate::model::sigmoid(f.baseline_logit),
        f.baseline_logit
    );
    println!(
        "tiers: HIGH p >= {:.4}, MEDIUM p >= {:.4}",
        f.tiers.high, f.tiers.medium
    );
    if let Some(h) = &f.metrics.holdout {
        println!(
            "holdout: AUC {}  PR-AUC {}  log loss {}  Brier {}  lift {}",
            fmt_metric(h.auc),
            fmt_metric(h.pr_auc),
            fmt_metric(h.log_loss),
            fmt_metric(h.brier),
            fmt_metric(h.top_decile_lift)
        );
    }
    println!("features by importance (std of contribution, log-odds):");
    for e in ranked {
        match e {
            FeatureEntry::Numeric(n) if n.shape.is_some() => {
                let shape = n.shape.as_ref().unwrap();
                println!(
                    "  {:<24} {:>7.4}  numeric shape, {} bins (value: log-odds, centred):",
                    n.name,
                    importance(e),
                    shape.values.len()
                );
                for (b, (v, w)) in shape.values.iter().zip(&shape.shares).enumerate() {
                    let lo = if b == 0 {
                        "-inf".to_string()
                    } else {
                        format!("{}", shape.edges[b - 1])
                    };
                    let hi = shape
                        .edges
                        .get(b)
                        .map_or("+inf".to_string(), |x| format!("{x}"));
                    println!(
                        "      [{lo:>10}, {hi:>10})  {v:+.4}  ({:.1}% of rows)",
                        100.0 * w
                    );
                }
                println!(
                    "      missing               {:+.4}  ({:.1}% of rows)",
                    shape.missing_value,
                    100.0 * shape.missing_share
                );
            }
            FeatureEntry::Numeric(n) => println!(
                "  {:<24} {:>7.4}  numeric{}  weight {:+.4} per std ({:.4}), impute {}",
                n.name,
                importance(e),
                if n.transform == crate::schema::Transform::None {
                    String::new()
                } else {
                    format!(" {}", n.transform.name())
                },
                n.weight.unwrap_or(0.0),
                n.std,
                n.impute
            ),
            FeatureEntry::Categorical(c) => {
                let mean: f64 = c.levels.iter().map(|l| l.share * l.weight).sum();
                let levels: Vec<String> = c
                    .levels
                    .iter()
                    .map(|l| format!("{} {:+.3}", l.value, l.weight - mean))
                    .collect();
                println!(
                    "  {:<24} {:>7.4}  categorical: {}",
                    c.name,
                    importance(e),
                    levels.join(", ")
                );
            }
        }
    }
    match &f.health {
        Some(h) => {
            println!(
                "health: {} usage measures ({}); bands RED < {} <= YELLOW < {} <= GREEN",
                h.measures.len(),
                h.chosen_by,
                h.bands[0],
                h.bands[1]
            );
            for m in &h.measures {
                let p = &m.percentiles;
                println!(
                    "  {:<32} {} is healthier (AUC {:.3}), weight {}, median {}, 10th-90th percentile {} to {}",
                    m.feature,
                    if m.direction > 0 { "more" } else { "less" },
                    m.staying_auc,
                    m.weight,
                    p[49],
                    p[9],
                    p[89]
                );
            }
        }
        None => println!(
            "health: none (no usage measures; train with --usage COLS, or on a churn features table)"
        ),
    }
    if !f.pairs.is_empty() {
        println!("pairs (each a table over coarse bins, log-odds, centred):");
        for p in &f.pairs {
            let (lo, hi) = p
                .values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(*v), b.max(*v))
                });
            println!(
                "  {} x {}: {} x {} cells, values {lo:+.4} to {hi:+.4}",
                p.features[0],
                p.features[1],
                p.axes[0].bins(),
                p.axes[1].bins()
            );
        }
    }
    Ok(())
}
