use super::print_json;
use crate::batch::score::{ScoreJob, Shard, score_file};
use crate::error::{Error, Result};
use crate::model::ChurnModel;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// Customers to score: CSV or Parquet (.parquet) with the model's feature columns.
    #[arg(long)]
    input: PathBuf,
    /// Scores: CSV or Parquet. Columns: id, churn_probability, risk_tier, reason_k, contribution_k
    /// (and the model id: a column in CSV, file metadata `churn.model` in Parquet).
    #[arg(long)]
    output: PathBuf,
    /// Customer id column (default: the model's training id column, when the input has it;
    /// otherwise the output's first column is the input line number).
    #[arg(long)]
    id: Option<String>,
    /// Reasons per customer.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Rows that cannot be scored, with line, id, columns and reason (default: OUTPUT.rejects.csv,
    /// written only when a row is rejected).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Score only the customers whose id hashes to shard i of N (e.g. 0/4), stable across runs and
    /// machines.
    #[arg(long, value_name = "i/N")]
    shard: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Rows per chunk: memory is bounded by this, not by the input size.
    #[arg(long, default_value_t = 65_536)]
    chunk_rows: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ScoreArgs) -> Result<()> {
    for p in [&a.input, &a.output] {
        if p.to_str()
            .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
        {
            return Err(Error::Usage(format!(
                "{}: this version of churn score reads and writes CSV and Parquet files; to score a PostgreSQL table in place use churn export-sql",
                p.display()
            )));
        }
    }
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .map_err(|e| Error::Usage(format!("--threads: {e}")))?;
    }
    let model = ChurnModel::load(&a.model)?;
    let job = ScoreJob {
        input: a.input.clone(),
        output: a.output.clone(),
        rejects: a.rejects.clone(),
        id: a.id.clone(),
        top_k: a.top_k,
        shard: a.shard.as_deref().map(Shard::parse).transpose()?,
        chunk_rows: a.chunk_rows.max(1),
    };
    let s = score_file(&model, &job)?;
    if a.json {
        print_json(&s);
        return Ok(());
    }
    println!(
        "{}: {} rows read, {} scored, {} rejected{} in {:.2} s ({:.0} rows/s)",
        model.id(),
        s.rows_read,
        s.scored,
        s.rejected,
        if s.other_shards > 0 {
            format!(", {} in other shards", s.other_shards)
        } else {
            String::new()
        },
        s.seconds,
        s.rows_per_second
    );
    println!("tiers: HIGH {}, MEDIUM {}, LOW {}", s.high, s.medium, s.low);
    println!("wrote {}", a.output.display());
    if let Some(r) = &s.rejects_file {
        println!("rejected rows: {}", r.display());
    }
    Ok(())
}
