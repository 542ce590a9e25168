use super::print_json;
use crate::batch::history::{HistoryDest, HistoryJob, parse_as_of};
use crate::batch::score::{ScoreJob, score};
use crate::batch::{Shard, Sink, Source};
use crate::error::{Error, Result};
use crate::io::postgres::{self, Query};
use crate::model::ChurnModel;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// Customers to score: a CSV or Parquet (.parquet) file with the model's feature columns, or
    /// a PostgreSQL URL (postgres://user@host/db) with --table or --query.
    #[arg(long)]
    input: String,
    /// With a PostgreSQL input: the table to score (schema.name; names are case-sensitive).
    #[arg(long, conflicts_with = "query")]
    table: Option<String>,
    /// With a PostgreSQL input: a query whose rows are scored.
    #[arg(long)]
    query: Option<String>,
    /// Scores: a CSV or Parquet file, or a PostgreSQL URL with --output-table. Columns: id,
    /// churn_probability, risk_tier, [rank], reason_k, contribution_k, and the model id (a
    /// `model` column; file metadata `churn.model` in Parquet).
    #[arg(long)]
    output: String,
    /// With a PostgreSQL output: the scores table, created or replaced in one transaction (a
    /// failed run leaves the previous table as it was).
    #[arg(long)]
    output_table: Option<String>,
    /// Customer id column (default: the model's training id column, when the input has it;
    /// otherwise the output's first column is the input line or row number).
    #[arg(long)]
    id: Option<String>,
    /// Reasons per customer.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Rows that cannot be scored, with line (or row), id, columns and reason (default:
    /// OUTPUT.rejects.csv, or TABLE.rejects.csv for a table; written only when a row is
    /// rejected).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Score only the customers whose id hashes to shard i of N (e.g. 0/4), stable across runs and
    /// machines.
    #[arg(long, value_name = "i/N")]
    shard: Option<String>,
    /// Add a rank column: 1 = highest churn probability; equal probabilities share a rank. Keeps
    /// 8 bytes per scored row in memory.
    #[arg(long)]
    rank: bool,
    /// What the rank orders by: probability (1 = highest churn probability) or health (1 = lowest
    /// health score, for models with usage health). Implies --rank.
    #[arg(long, value_parser = ["probability", "health"])]
    rank_by: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Rows per block: memory is bounded by this, not by the input size.
    #[arg(long, default_value_t = 65_536)]
    chunk_rows: usize,
    /// Refuse rows with a missing feature (and an input lacking a feature column) instead of
    /// imputing them.
    #[arg(long)]
    strict: bool,
    /// CSV field delimiter (default: found from the header line: comma, semicolon, tab or pipe).
    #[arg(long, value_parser = super::delimiter)]
    delimiter: Option<u8>,
    /// Keep this run: a PostgreSQL URL with --history-table, or a folder of Parquet files (one
    /// per run, AS_OF.parquet). The output gains previous_probability, probability_change,
    /// previous_tier and previous_as_of from each customer's latest earlier run. Needs an id
    /// column.
    #[arg(long, value_name = "DEST")]
    history: Option<String>,
    /// With a PostgreSQL --history: the history table (schema.name), created on the first run.
    #[arg(long, value_name = "TABLE")]
    history_table: Option<String>,
    /// The run's date, YYYY-MM-DD (default: today, UTC). A rerun with the same date replaces
    /// that run's rows.
    #[arg(long, value_name = "DATE", requires = "history")]
    as_of: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// A file path, or a PostgreSQL URL read through `table` or `query`; `flags` names the three
/// flags in messages (input, table, query).
pub(super) fn input_source(
    input: &str,
    table: Option<&String>,
    query: Option<&String>,
    flags: [&str; 3],
) -> Result<Source> {
    let [input_flag, table_flag, query_flag] = flags;
    if postgres::is_url(input) {
        let query = match (table, query) {
            (Some(t), None) => Query::Table(t.clone()),
            (None, Some(q)) => Query::Sql(q.clone()),
            _ => {
                return Err(Error::Usage(format!(
                    "a PostgreSQL {input_flag} needs {table_flag} NAME or {query_flag} SQL"
                )));
            }
        };
        return Ok(Source::Postgres {
            url: input.to_string(),
            query,
        });
    }
    if table.is_some() || query.is_some() {
        return Err(Error::Usage(format!(
            "{table_flag} and {query_flag} go with a PostgreSQL {input_flag} (postgres://...)"
        )));
    }
    Ok(Source::File(PathBuf::from(input)))
}

fn history(a: &ScoreArgs) -> Result<Option<HistoryJob>> {
    let Some(dest) = &a.history else {
        if a.history_table.is_some() {
            return Err(Error::Usage(
                "--history-table goes with a PostgreSQL --history (postgres://...)".into(),
            ));
        }
        return Ok(None);
    };
    let dest = if postgres::is_url(dest) {
        let table = a.history_table.clone().ok_or_else(|| {
            Error::Usage("a PostgreSQL --history needs --history-table NAME".into())
        })?;
        HistoryDest::Postgres {
            url: dest.clone(),
            table,
        }
    } else {
        if a.history_table.is_some() {
            return Err(Error::Usage(
                "--history-table goes with a PostgreSQL --history (postgres://...); a folder keeps one Parquet file per run".into(),
            ));
        }
        HistoryDest::Parquet(PathBuf::from(dest))
    };
    let as_of = match &a.as_of {
        Some(d) => parse_as_of(d)?,
        None => chrono::Utc::now().date_naive(),
    };
    Ok(Some(HistoryJob { dest, as_of }))
}

fn sink(a: &ScoreArgs) -> Result<Sink> {
    if postgres::is_url(&a.output) {
        let table = a.output_table.clone().ok_or_else(|| {
            Error::Usage("a PostgreSQL --output needs --output-table NAME".into())
        })?;
        return Ok(Sink::Postgres {
            url: a.output.clone(),
            table,
        });
    }
    if a.output_table.is_some() {
        return Err(Error::Usage(
            "--output-table goes with a PostgreSQL --output (postgres://...)".into(),
        ));
    }
    Ok(Sink::File(PathBuf::from(&a.output)))
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let input = input_source(
        &a.input,
        a.table.as_ref(),
        a.query.as_ref(),
        ["--input", "--table", "--query"],
    )?;
    let output = sink(&a)?;
    let history = history(&a)?;
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .map_err(|e| Error::Usage(format!("--threads: {e}")))?;
    }
    let model = ChurnModel::load(&a.model)?;
    let job = ScoreJob {
        input,
        output: output.clone(),
        rejects: a.rejects.clone(),
        id: a.id.clone(),
        top_k: a.top_k,
        shard: a.shard.as_deref().map(Shard::parse).transpose()?,
        rank: a.rank || a.rank_by.is_some(),
        rank_by: match a.rank_by.as_deref() {
            Some("health") => crate::batch::output::RankBy::Health,
            _ => crate::batch::output::RankBy::Probability,
        },
        chunk_rows: a.chunk_rows.max(1),
        strict: a.strict,
        delimiter: a.delimiter,
        history,
    };
    let s = score(&model, &job)?;
    if !s.imputed_columns.is_empty() {
        eprintln!(
            "note: the input has no column for {} of the model's features, imputed for every row: {}",
            s.imputed_columns.len(),
            s.imputed_columns.join(", ")
        );
    }
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
    if !s.actions.is_empty() {
        let a: Vec<String> = s.actions.iter().map(|(a, n)| format!("{a} {n}")).collect();
        println!("actions: {}", a.join(", "));
    }
    if let Some(d) = &s.drift {
        let top: Vec<String> = d
            .features
            .iter()
            .take(3)
            .map(|f| format!("{} {:.3} ({})", f.feature, f.psi, f.band.as_str()))
            .collect();
        println!(
            "drift against training ({}): score PSI {:.3} ({}); largest: {}",
            d.worst().as_str(),
            d.score.psi,
            d.score.band.as_str(),
            top.join(", ")
        );
    }
    if let Some(h) = &s.history {
        println!(
            "history {} ({}): {} rows appended{}; {} customers with an earlier run, {} new",
            h.destination,
            h.as_of,
            h.appended,
            if h.replaced > 0 {
                format!(
                    ", replacing {} of an earlier run of the same date",
                    h.replaced
                )
            } else {
                String::new()
            },
            h.with_previous,
            h.new_customers
        );
        if !s.largest_risers.is_empty() {
            println!("largest risers since their previous run:");
            for r in &s.largest_risers {
                println!(
                    "  {:<16} {:.3} -> {:.3} (+{:.3}) {} -> {} since {}",
                    r.id,
                    r.previous_probability,
                    r.churn_probability,
                    r.probability_change,
                    r.previous_tier,
                    r.risk_tier,
                    r.previous_as_of
                );
            }
        }
    }
    println!("wrote {}", output.describe());
    if let Some(r) = &s.rejects_file {
        println!("rejected rows: {}", r.display());
    }
    Ok(())
}
