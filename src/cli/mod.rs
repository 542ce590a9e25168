//! The `churn` command line: argument definitions and one function per subcommand. Each prints its
//! human report (or JSON with --json) to stdout; errors go back to `main`.
mod evaluate;
mod explain;
mod inspect;
mod train;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "churn",
    version,
    about = "Predict which customers are about to leave, with the reasons"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model from a table of per-customer features (CSV or Parquet).
    Train(Box<train::TrainArgs>),
    /// Measure a model on labelled data: AUC, PR-AUC, log loss, Brier, lift, calibration.
    Evaluate(evaluate::EvaluateArgs),
    /// Show a model: schema, weights ranked by importance, tiers, training facts, metrics.
    Inspect(inspect::InspectArgs),
    /// Score one customer and show the reasons.
    Explain(explain::ExplainArgs),
}

pub fn run(cli: Cli) -> crate::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Explain(a) => explain::run(a),
    }
}

/// Prints a value as pretty JSON with a trailing newline.
fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialisable"));
}

/// Splits "a,b,c" lists (flags may also repeat).
fn split_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn fmt_metric(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.4}")
    }
}
