use super::print_json;
use super::score::input_source;
use crate::error::{Error, Result};
use crate::features::spec::{FeatureSpec, ResolvedSpec};
use crate::features::{FeatureJob, LabelKind, build};
use crate::io::blocks::Source;
use crate::time::{format_day, parse_day, parse_days};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Event log: CSV or Parquet, or a PostgreSQL URL with --events-table or --events-query.
    /// Columns (renamed in the spec): customer_id, timestamp, [event_type], [value].
    #[arg(long)]
    events: String,
    #[arg(long, conflicts_with = "events_query")]
    events_table: Option<String>,
    #[arg(long)]
    events_query: Option<String>,
    /// Subscriptions: customer_id, start_date, end_date (empty while running), [plan], [mrr],
    /// [discount]. With them, a customer is in a snapshot while subscribed.
    #[arg(long)]
    subscriptions: Option<String>,
    #[arg(long, conflicts_with = "subscriptions_query")]
    subscriptions_table: Option<String>,
    #[arg(long)]
    subscriptions_query: Option<String>,
    /// Feature spec (TOML): column names, windows, event types, ratios, logs. Default: recency,
    /// frequency, monetary, trend, tenure, active days and early life over all events.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Snapshot dates (YYYY-MM-DD; comma-separated or repeated). Only data before a snapshot
    /// feeds its features.
    #[arg(long, value_name = "DATE", conflicts_with_all = ["from", "to"])]
    snapshot: Vec<String>,
    /// First snapshot of a series.
    #[arg(long, value_name = "DATE", requires = "to")]
    from: Option<String>,
    /// Last possible snapshot of the series (included when it falls on a step).
    #[arg(long, value_name = "DATE", requires = "from")]
    to: Option<String>,
    /// Step of the series, e.g. 28d or 4w.
    #[arg(long, default_value = "28d")]
    every: String,
    /// How far after a snapshot the label looks.
    #[arg(long, default_value = "90d")]
    horizon: String,
    /// no-activity (no event within the horizon), subscription-end (the subscription run ends
    /// within the horizon) or none (for scoring). Default: subscription-end with
    /// --subscriptions, else no-activity.
    #[arg(long, value_parser = ["no-activity", "subscription-end", "none"])]
    label: Option<String>,
    /// Feature table: CSV, or Parquet (.parquet).
    #[arg(long)]
    out: PathBuf,
    /// Events per block read (small blocks keep memory low; larger ones are no faster here).
    #[arg(long, default_value_t = 8_192)]
    chunk_rows: usize,
    /// CSV field delimiter (default: found from the header line: comma, semicolon, tab or pipe).
    #[arg(long, value_parser = super::delimiter)]
    delimiter: Option<u8>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn day(flag: &str, s: &str) -> Result<i64> {
    parse_day(s)
        .ok_or_else(|| Error::Usage(format!("{flag} {s}: expected a date such as 2020-03-01")))
}

fn days(flag: &str, s: &str) -> Result<u32> {
    parse_days(s).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} {s}: expected days such as 28d or weeks such as 4w"
        ))
    })
}

/// The snapshot days the flags ask for.
fn snapshots(a: &FeaturesArgs) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for s in super::split_list(&a.snapshot) {
        out.push(day("--snapshot", &s)?);
    }
    if let (Some(from), Some(to)) = (&a.from, &a.to) {
        let (from, to) = (day("--from", from)?, day("--to", to)?);
        let step = i64::from(days("--every", &a.every)?);
        if step == 0 {
            return Err(Error::Usage("--every must be at least 1d".into()));
        }
        if to < from {
            return Err(Error::Usage(format!(
                "--to {} is before --from {}",
                format_day(to),
                format_day(from)
            )));
        }
        out.extend((from..=to).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The flags naming an event log, its subscriptions and the feature spec, as `churn features`
/// and `churn report --events` take them.
pub(super) struct LogFlags<'a> {
    pub events: &'a str,
    pub events_table: Option<&'a String>,
    pub events_query: Option<&'a String>,
    pub subscriptions: Option<&'a String>,
    pub subscriptions_table: Option<&'a String>,
    pub subscriptions_query: Option<&'a String>,
    pub spec: Option<&'a std::path::Path>,
}

/// The spec (the default one without --spec) and the two sources.
pub(super) fn log_inputs(f: LogFlags<'_>) -> Result<(ResolvedSpec, Source, Option<Source>)> {
    let spec = match f.spec {
        Some(p) => FeatureSpec::load(p)?,
        None => FeatureSpec::default()
            .resolve()
            .map_err(|m| Error::Usage(format!("default feature spec: {m}")))?,
    };
    let events = input_source(
        f.events,
        f.events_table,
        f.events_query,
        ["--events", "--events-table", "--events-query"],
    )?;
    let subscriptions = f
        .subscriptions
        .map(|s| {
            input_source(
                s,
                f.subscriptions_table,
                f.subscriptions_query,
                [
                    "--subscriptions",
                    "--subscriptions-table",
                    "--subscriptions-query",
                ],
            )
        })
        .transpose()?;
    Ok((spec, events, subscriptions))
}

pub fn run(a: FeaturesArgs) -> Result<()> {
    let (spec, events, subscriptions) = log_inputs(LogFlags {
        events: &a.events,
        events_table: a.events_table.as_ref(),
        events_query: a.events_query.as_ref(),
        subscriptions: a.subscriptions.as_ref(),
        subscriptions_table: a.subscriptions_table.as_ref(),
        subscriptions_query: a.subscriptions_query.as_ref(),
        spec: a.spec.as_deref(),
    })?;
    let label = match a.label.as_deref() {
        Some(l) => LabelKind::parse(l).expect("clap checked the value"),
        None if subscriptions.is_some() => LabelKind::SubscriptionEnd,
        None => LabelKind::NoActivity,
    };
    let job = FeatureJob {
        events,
        subscriptions,
        spec,
        snapshots: snapshots(&a)?,
        horizon: days("--horizon", &a.horizon)?,
        label,
        out: a.out.clone(),
        chunk_rows: a.chunk_rows.max(1),
        delimiter: a.delimiter,
    };
    let s = build(&job)?;
    if a.json {
        print_json(&s);
        return Ok(());
    }
    println!(
        "{} events of {} customers read in {:.2} s ({:.0} events/s){}",
        s.events,
        s.customers,
        s.read_seconds,
        s.events_per_second,
        s.data_until
            .as_ref()
            .map(|d| format!("; data until {d}"))
            .unwrap_or_default()
    );
    if !s.event_types.is_empty() {
        let kept: Vec<String> = s
            .event_types
            .iter()
            .filter(|t| t.left_out.is_none())
            .map(|t| {
                if t.name == t.value {
                    format!("{} ({})", t.value, t.events)
                } else {
                    format!("{} as {} ({})", t.value, t.name, t.events)
                }
            })
            .collect();
        println!(
            "event types from the log (the spec names none): {} of {} kept: {}",
            kept.len(),
            s.event_types.len(),
            kept.join(", ")
        );
        for t in s.event_types.iter().filter(|t| t.left_out.is_some()) {
            println!(
                "  left out: {} ({} events): {}",
                t.value,
                t.events,
                t.left_out.as_deref().unwrap_or_default()
            );
        }
        println!(
            "  (to keep these columns when the log changes, name the types in the spec's metrics.event_types)"
        );
    }
    for snap in &s.snapshots {
        if label == LabelKind::None {
            println!("snapshot {}: {} customers", snap.snapshot, snap.rows);
        } else {
            println!(
                "snapshot {}: {} customers, {} churned within {} ({:.1}%)",
                snap.snapshot,
                snap.rows,
                snap.churned,
                a.horizon,
                100.0 * snap.churned as f64 / (snap.rows.max(1)) as f64
            );
        }
    }
    println!(
        "{} columns: customer_id, snapshot, {}{}",
        s.columns.len() + 2 + usize::from(label != LabelKind::None),
        s.columns.join(", "),
        if label == LabelKind::None {
            ""
        } else {
            ", churned"
        }
    );
    println!(
        "wrote {} rows to {} in {:.2} s",
        s.rows,
        a.out.display(),
        s.seconds
    );
    Ok(())
}
