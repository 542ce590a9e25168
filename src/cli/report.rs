use super::features::{LogFlags, log_inputs};
use super::print_json;
use crate::error::{Error, Result};
use crate::features::{FeatureJob, LabelKind, events::day_range, frame};
use crate::io::atomic::write_atomic;
use crate::model::ChurnModel;
use crate::model::evaluate::read_labelled;
use crate::report::{churn, model};
use crate::time::{add_months, format_day, month_start, parse_day};
use clap::{ArgGroup, Args};
use std::path::PathBuf;
use std::time::Instant;

/// With events only and no `[population] active_within` in the spec, a customer is active while
/// their latest event is at most this many days old.
const DEFAULT_ACTIVE_WITHIN: u32 = 30;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["model", "events"])))]
pub struct ReportArgs {
    /// The model report: a model.json, or a model folder (its highest version).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Labelled data for the model report (CSV or Parquet); without it the page shows the
    /// holdout figures stored in the model file.
    #[arg(long, requires = "model")]
    data: Option<PathBuf>,
    /// Label column of --data (default: the model's).
    #[arg(long, requires = "data")]
    label: Option<String>,
    /// Label value meaning churned (default: the model's).
    #[arg(long, requires = "data")]
    positive: Option<String>,
    /// The churn report: an event log (CSV, Parquet, or a PostgreSQL URL with --events-table or
    /// --events-query), columns as for `churn features`.
    #[arg(long, conflicts_with = "model")]
    events: Option<String>,
    #[arg(long, requires = "events", conflicts_with = "events_query")]
    events_table: Option<String>,
    #[arg(long, requires = "events")]
    events_query: Option<String>,
    /// Subscriptions (customer_id, start_date, end_date, [plan], [mrr]): with them a customer is
    /// active while subscribed, and MRR churn is measured.
    #[arg(long, requires = "events")]
    subscriptions: Option<String>,
    #[arg(
        long,
        requires = "subscriptions",
        conflicts_with = "subscriptions_query"
    )]
    subscriptions_table: Option<String>,
    #[arg(long, requires = "subscriptions")]
    subscriptions_query: Option<String>,
    /// Feature spec (TOML), as for `churn features`: column names, activity metrics, early life.
    #[arg(long, requires = "events")]
    spec: Option<PathBuf>,
    /// First month of the churn report (the first day of a month; default: the first whole month
    /// of the log).
    #[arg(long, value_name = "DATE", requires = "events")]
    from: Option<String>,
    /// End of the churn report (the first day of the month after the last one; default: the end
    /// of the log's last whole month).
    #[arg(long, value_name = "DATE", requires = "events")]
    to: Option<String>,
    /// The HTML page to write.
    #[arg(long)]
    out: PathBuf,
    /// Also print the report's numbers as JSON.
    #[arg(long)]
    json: bool,
    /// CSV field delimiter (default: found from the header line: comma, semicolon, tab or pipe).
    #[arg(long, value_parser = super::delimiter)]
    delimiter: Option<u8>,
}

pub fn run(a: ReportArgs) -> Result<()> {
    let started = Instant::now();
    let (html, summary) = match &a.model {
        Some(path) => model_report(&a, path)?,
        None => churn_report(&a)?,
    };
    write_atomic(&a.out, html.as_bytes())?;
    let (json, line) = summary;
    if a.json {
        print_json(&json);
    } else {
        println!(
            "wrote {} ({} charts, {:.1} kB) in {:.2} s: {line}",
            a.out.display(),
            html.matches("<svg").count(),
            html.len() as f64 / 1e3,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

type Summary = (serde_json::Value, String);

fn model_report(a: &ReportArgs, path: &std::path::Path) -> Result<(String, Summary)> {
    let m = ChurnModel::load(path)?;
    let data = match &a.data {
        Some(d) => Some(read_labelled(
            &m,
            d,
            a.label.as_deref(),
            a.positive.as_deref(),
            a.delimiter,
        )?),
        None => None,
    };
    let labelled = data
        .as_ref()
        .map(|(table, label, positive)| model::LabelledData {
            table,
            label,
            positive,
        });
    let r = model::build(&m, labelled)?;
    let html = model::render(&r)?;
    let line = match &r.evaluation {
        Some(e) => format!(
            "{} on {} rows, AUC {}",
            r.model,
            e.metrics.rows,
            super::fmt_metric(e.metrics.auc)
        ),
        None => format!("{} (stored holdout figures)", r.model),
    };
    Ok((html, (to_json(&r), line)))
}

fn to_json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("report values serialise")
}

fn month_day(flag: &str, s: &str) -> Result<i64> {
    match parse_day(s) {
        Some(d) if month_start(d) == d => Ok(d),
        Some(_) => Err(Error::Usage(format!(
            "{flag} {s}: expected the first day of a month, e.g. {}",
            format_day(month_start(parse_day(s).expect("parsed above")))
        ))),
        None => Err(Error::Usage(format!(
            "{flag} {s}: expected a date such as 2020-03-01"
        ))),
    }
}

fn churn_report(a: &ReportArgs) -> Result<(String, Summary)> {
    let (mut spec, events, subscriptions) = log_inputs(LogFlags {
        events: a
            .events
            .as_deref()
            .expect("clap requires --model or --events"),
        events_table: a.events_table.as_ref(),
        events_query: a.events_query.as_ref(),
        subscriptions: a.subscriptions.as_ref(),
        subscriptions_table: a.subscriptions_table.as_ref(),
        subscriptions_query: a.subscriptions_query.as_ref(),
        spec: a.spec.as_deref(),
    })?;
    if subscriptions.is_none() && spec.active_within.is_none() {
        spec.active_within = Some(DEFAULT_ACTIVE_WITHIN);
    }
    let from = a
        .from
        .as_deref()
        .map(|s| month_day("--from", s))
        .transpose()?;
    let to = a.to.as_deref().map(|s| month_day("--to", s)).transpose()?;
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (f, t) => {
            // The log's whole months: from the first month start on or after its first day to
            // the last month start on or before the day after its last.
            let (mut src, name) = events.open(a.delimiter)?;
            src.allow_dates();
            let column = &spec.spec.events.timestamp;
            if !src.header().iter().any(|h| h == column) {
                return Err(Error::column(
                    &name,
                    column,
                    format!(
                        "no such column in the events; the columns are: {}",
                        src.header().join(", ")
                    ),
                ));
            }
            let range = day_range(src, column, spec.utc_offset, 8_192)?;
            let Some((first, last)) = range else {
                let r = churn::ChurnReport::empty(
                    &name.display().to_string(),
                    subscriptions.is_some(),
                    "The event log holds no events: there is nothing to report.".into(),
                );
                return churn_page(r);
            };
            let first_month = if month_start(first) == first {
                first
            } else {
                add_months(first, 1)
            };
            (f.unwrap_or(first_month), t.unwrap_or(month_start(last + 1)))
        }
    };
    if to <= from {
        return Err(Error::Usage(format!(
            "the churn report needs at least one whole month: --from {} is not before --to {} (pass --from and --to)",
            format_day(from),
            format_day(to)
        )));
    }
    let mut snapshots = vec![from];
    while let Some(&last) = snapshots.last()
        && last < to
    {
        snapshots.push(add_months(last, 1));
    }
    let (active_within, early_life) = (spec.active_within, spec.early_life);
    let has_subscriptions = subscriptions.is_some();
    let events_name = match &events {
        crate::io::blocks::Source::File(p) => p.display().to_string(),
        crate::io::blocks::Source::Postgres { url, .. } => crate::io::postgres::redact(url),
    };
    let job = FeatureJob {
        events,
        subscriptions,
        spec,
        snapshots,
        horizon: 1,
        label: LabelKind::None,
        out: PathBuf::new(),
        chunk_rows: 8_192,
        delimiter: a.delimiter,
    };
    let mut f = frame(&job)?;
    if f.customers.is_empty() {
        let r = churn::ChurnReport::empty(
            &events_name,
            has_subscriptions,
            format!(
                "The inputs hold no customers from {} to {}: there is nothing to report.",
                format_day(from),
                format_day(to)
            ),
        );
        return churn_page(r);
    }
    // Month starts past what the inputs cover would count every customer as churned.
    let known = f.summary.population_known_until.unwrap_or(i64::MIN);
    let source = if has_subscriptions {
        "subscription start"
    } else {
        "event"
    };
    if a.to.is_some() && to > known {
        return Err(Error::Usage(format!(
            "--to {} is past what the inputs cover: the latest {source} is on {}, so who is active on {} is not known. Use an earlier --to",
            format_day(to),
            format_day(if has_subscriptions { known } else { known - 1 }),
            format_day(to)
        )));
    }
    f.snapshots.retain(|s| s.day <= known);
    if f.snapshots.len() < 2 || f.snapshots[0].day != from {
        return Err(Error::Usage(format!(
            "the inputs cover less than one whole month from {} (the latest {source} is on {}): pass an earlier --from",
            format_day(from),
            if known == i64::MIN {
                "-".to_string()
            } else {
                format_day(if has_subscriptions { known } else { known - 1 })
            }
        )));
    }
    let r = churn::build(&churn::ChurnInputs {
        frame: &f,
        events_name: &events_name,
        active_within: if has_subscriptions {
            None
        } else {
            active_within
        },
        subscriptions: has_subscriptions,
        early_life,
    });
    churn_page(r)
}

fn churn_page(r: churn::ChurnReport) -> Result<(String, Summary)> {
    let html = churn::render(&r)?;
    let line = format!(
        "{} months from {}, average monthly churn {}",
        r.months.len(),
        r.from,
        r.overall
            .monthly_churn_rate
            .map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
    );
    Ok((html, (to_json(&r), line)))
}
