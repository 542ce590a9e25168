use super::{fmt_metric, print_json};
use crate::error::Result;
use crate::model::ChurnModel;
use crate::model::evaluate::evaluate_file;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// Labelled data: CSV or Parquet, with the model's feature columns and its label column.
    #[arg(long)]
    data: PathBuf,
    /// Label column (default: the model's).
    #[arg(long)]
    label: Option<String>,
    /// Label value meaning churned (default: the model's).
    #[arg(long)]
    positive: Option<String>,
    /// CSV field delimiter (default: found from the header line: comma, semicolon, tab or pipe).
    #[arg(long, value_parser = super::delimiter)]
    delimiter: Option<u8>,
    /// Print the evaluation as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: EvaluateArgs) -> Result<()> {
    let model = ChurnModel::load(&a.model)?;
    let e = evaluate_file(
        &model,
        &a.data,
        a.label.as_deref(),
        a.positive.as_deref(),
        a.delimiter,
    )?;
    if a.json {
        print_json(&e);
        return Ok(());
    }
    let m = &e.metrics;
    println!(
        "{} on {}: {} rows, {} churned ({:.1}%)",
        e.model,
        e.data_file,
        m.rows,
        m.positives,
        100.0 * m.positives as f64 / m.rows as f64
    );
    println!("  AUC             {}", fmt_metric(m.auc));
    println!("  PR-AUC          {}", fmt_metric(m.pr_auc));
    println!("  log loss        {}", fmt_metric(m.log_loss));
    println!("  Brier           {}", fmt_metric(m.brier));
    println!("  top-decile lift {}", fmt_metric(m.top_decile_lift));
    println!("tiers:");
    for t in &e.tiers {
        println!(
            "  {:<6} {:>8} customers, churn rate {}",
            t.tier,
            t.rows,
            fmt_metric(t.churn_rate)
        );
    }
    println!("confusion at the tier cuts (predicted churn = at or above the cut):");
    println!(
        "  {:<18} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "cut", "TP", "FP", "TN", "FN", "precision", "recall"
    );
    for (name, c) in [("MEDIUM", &e.at_medium_cut), ("HIGH", &e.at_high_cut)] {
        println!(
            "  {:<18} {:>8} {:>8} {:>8} {:>8} {:>9.4} {:>7.4}",
            format!("{name} p>={:.4}", c.threshold),
            c.true_positives,
            c.false_positives,
            c.true_negatives,
            c.false_negatives,
            c.precision,
            c.recall
        );
    }
    println!("calibration (equal-count bins):");
    println!(
        "  {:>8} {:>14} {:>13}",
        "rows", "mean predicted", "observed rate"
    );
    for b in &m.calibration {
        println!(
            "  {:>8} {:>14.4} {:>13.4}",
            b.rows, b.mean_predicted, b.observed_rate
        );
    }
    for (what, list) in [
        ("imputed cells", &e.imputed_cells),
        ("unseen levels", &e.unseen_cells),
    ] {
        if !list.is_empty() {
            let s: Vec<String> = list
                .iter()
                .map(|c| format!("{} {}", c.feature, c.cells))
                .collect();
            println!("{what}: {}", s.join(", "));
        }
    }
    if e.rejected_rows > 0 {
        println!(
            "rejected rows (not scored, left out of every figure above): {}",
            e.rejected_rows
        );
        for r in &e.rejected {
            println!("  line {} column '{}': {}", r.line, r.column, r.reason);
        }
        if e.rejected_rows > e.rejected.len() as u64 {
            println!("  ... {} more", e.rejected_rows - e.rejected.len() as u64);
        }
    }
    Ok(())
}
