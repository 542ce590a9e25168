//! The `churn` command line: argument definitions and one function per subcommand. Each prints its
//! human report (or JSON with --json) to stdout; errors go back to `main`.
mod client;
mod drift;
mod evaluate;
mod explain;
mod export_sql;
mod features;
mod inspect;
mod report;
mod score;
mod serve;
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
    /// Turn an event log (and subscriptions) into a feature table with labels, per snapshot date.
    Features(Box<features::FeaturesArgs>),
    /// Train a model from a table of per-customer features (CSV or Parquet).
    Train(Box<train::TrainArgs>),
    /// Measure a model on labelled data: AUC, PR-AUC, log loss, Brier, lift, calibration.
    Evaluate(evaluate::EvaluateArgs),
    /// Compare customers with the training customers: PSI per feature and of the score.
    Drift(drift::DriftArgs),
    /// Show a model: schema, weights ranked by importance, tiers, training facts, metrics.
    Inspect(inspect::InspectArgs),
    /// Write an HTML report: the model report (--model, on --data) or the churn report (--events).
    Report(Box<report::ReportArgs>),
    /// Score one customer and show the reasons.
    Explain(explain::ExplainArgs),
    /// Score a CSV or Parquet file of customers on every core: probability, tier, reasons.
    Score(score::ScoreArgs),
    /// Write the model as SQL (a view) that scores a table inside the database.
    ExportSql(export_sql::ExportSqlArgs),
    /// Serve churn.v1 over gRPC, with health, reflection and Prometheus metrics.
    Serve(serve::ServeArgs),
    /// Talk to a running server: score, health, models.
    Client(client::ClientArgs),
}

/// Logs go to stderr: `info` for the server, `warn` for one-shot commands; `CHURN_LOG` overrides
/// (e.g. `CHURN_LOG=debug` for one line per request).
fn init_logging(command: &Command) {
    let (default, json) = match command {
        Command::Serve(a) => ("info", a.log_format == "json"),
        _ => ("warn", false),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHURN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(cli: Cli) -> crate::Result<()> {
    init_logging(&cli.command);
    match cli.command {
        Command::Features(a) => features::run(*a),
        Command::Train(a) => train::run(*a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Drift(a) => drift::run(a),
        Command::Report(a) => report::run(*a),
        Command::Explain(a) => explain::run(a),
        Command::Score(a) => score::run(a),
        Command::ExportSql(a) => export_sql::run(a),
        Command::Serve(a) => serve::run_serve(a),
        Command::Client(a) => client::run(a),
    }
}

/// Prints a value as pretty JSON with a trailing newline. A closed pipe (`| head`) ends quietly.
fn print_json(v: &impl serde::Serialize) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v).expect("serialisable");
    let _ = writeln!(std::io::stdout(), "{text}");
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

/// `--delimiter`: one character, or `tab`.
fn delimiter(s: &str) -> Result<u8, String> {
    crate::io::csv_records::parse_delimiter(s)
}
