//! `churn features`: an event log (and optionally subscriptions) in, a feature table out, with one
//! row per customer active on each snapshot day: windowed counts and values per event type,
//! recency, tenure, active days, trend, early life, subscription facts, and the label.
//!
//! Leakage is ruled out by construction: a metric only reads segments that end on or before the
//! snapshot day (see [`store`]), the label only the segments from the snapshot day to the end of
//! the horizon, and subscription facts only subscriptions started by the snapshot day.
pub mod events;
pub mod metrics;
pub mod rows;
pub mod spec;
pub mod store;
pub mod subscriptions;

pub(crate) mod write;

use crate::error::{Error, Result};
use crate::io::blocks::Source;
use crate::time;
use rayon::prelude::*;
use spec::ResolvedSpec;
use std::path::PathBuf;
use std::time::Instant;
use store::{Shard, StoreLayout, Timeline};
use subscriptions::Subscriptions;

/// How a row is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelKind {
    /// Churned: no qualifying event within the horizon after the snapshot.
    NoActivity,
    /// Churned: the subscription run covering the snapshot ends within the horizon.
    SubscriptionEnd,
    /// No label (scoring today's customers).
    None,
}

impl LabelKind {
    pub fn parse(s: &str) -> Option<LabelKind> {
        match s {
            "no-activity" => Some(LabelKind::NoActivity),
            "subscription-end" => Some(LabelKind::SubscriptionEnd),
            "none" => Some(LabelKind::None),
            _ => None,
        }
    }
}

pub struct FeatureJob {
    pub events: Source,
    pub subscriptions: Option<Source>,
    pub spec: ResolvedSpec,
    /// Snapshot days.
    pub snapshots: Vec<i64>,
    pub horizon: u32,
    pub label: LabelKind,
    pub out: PathBuf,
    pub chunk_rows: usize,
    /// The CSV field delimiter of the inputs (default: found from each header line).
    pub delimiter: Option<u8>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotSummary {
    pub snapshot: String,
    pub rows: u64,
    /// Rows labelled churned (0 without a label).
    pub churned: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FeatureSummary {
    pub events: u64,
    pub customers: u64,
    pub rows: u64,
    pub label: LabelKind,
    pub columns: Vec<String>,
    /// With a spec naming no event types: every type of the log, most frequent first, and
    /// whether it got columns (empty when the spec names them or the log has no type column).
    pub event_types: Vec<spec::TypeChoice>,
    pub snapshots: Vec<SnapshotSummary>,
    /// The latest day the inputs reach (an event, or a subscription start).
    pub data_until: Option<String>,
    /// The last day on which who is active is known from the inputs: the latest subscription
    /// start with subscriptions (a renewal after it would be missing), else the day after the
    /// latest event.
    #[serde(skip)]
    pub population_known_until: Option<i64>,
    pub bytes_per_customer: usize,
    pub read_seconds: f64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Builds the feature table into `job.out`.
pub fn build(job: &FeatureJob) -> Result<FeatureSummary> {
    compute(job, &mut Sink::File(None))
}

/// The feature table held in memory, for analyses over it (the churn report): every snapshot's
/// rows, as `churn features` would write them.
pub struct FeatureFrame {
    pub summary: FeatureSummary,
    pub columns: Vec<metrics::MetricColumn>,
    /// Every customer of the inputs in the table's order, with the day first seen (an event or a
    /// subscription start); rows refer to customers by position here.
    pub customers: Vec<(Box<str>, i64)>,
    /// In the job's snapshot order.
    pub snapshots: Vec<SnapshotFrame>,
}

/// One snapshot's rows: the customers in it (positions in [`FeatureFrame::customers`]), their
/// metric values row-major (NaN = missing) and their plans.
pub struct SnapshotFrame {
    pub day: i64,
    pub customers: Vec<u32>,
    pub values: Vec<f64>,
    pub plans: Vec<Option<String>>,
    pub labels: Vec<bool>,
}

/// Builds the feature table in memory (`job.out` is not written).
pub fn frame(job: &FeatureJob) -> Result<FeatureFrame> {
    let mut sink = Sink::Memory(Vec::new(), Vec::new(), Vec::new());
    let summary = compute(job, &mut sink)?;
    let Sink::Memory(columns, customers, snapshots) = sink else {
        unreachable!("the sink stays in memory")
    };
    Ok(FeatureFrame {
        summary,
        columns,
        customers,
        snapshots,
    })
}

/// Where the rows go: the file, or memory (columns, customers, snapshots).
enum Sink {
    File(Option<write::FeatureWriter>),
    Memory(
        Vec<metrics::MetricColumn>,
        Vec<(Box<str>, i64)>,
        Vec<SnapshotFrame>,
    ),
}

fn compute(job: &FeatureJob, sink: &mut Sink) -> Result<FeatureSummary> {
    let started = Instant::now();
    if job.snapshots.is_empty() {
        return Err(Error::Usage(
            "no snapshot: pass --snapshot DATE or --from DATE --to DATE".into(),
        ));
    }
    let r = &job.spec;
    let cols = &r.spec.events;
    let (mut events_src, events_name) = job.events.open(job.delimiter)?;
    events_src.allow_dates();
    let header = events_src.header().to_vec();
    let has = |c: &str| header.iter().any(|h| h == c);
    for c in [&cols.customer_id, &cols.timestamp] {
        if !has(c) {
            return Err(Error::column(
                &events_name,
                c,
                format!(
                    "no such column in the events; the columns are: {} (name the columns in the spec's [events] table)",
                    header.join(", ")
                ),
            ));
        }
    }
    let metrics_spec = &r.spec.metrics;
    let has_type = has(&cols.event_type);
    if !has_type && (!metrics_spec.event_types.is_empty() || r.spec.label.activity.is_some()) {
        return Err(Error::column(
            &events_name,
            &cols.event_type,
            format!(
                "the spec names event types but the events have no such column; the columns are: {}",
                header.join(", ")
            ),
        ));
    }
    // A spec naming no event types takes them from the log: a first pass counts each type.
    let auto_types = has_type && metrics_spec.event_types.is_empty() && metrics_spec.auto_types;
    let (chosen, resolved);
    let r = if auto_types {
        let (src, _) = job.events.open(job.delimiter)?;
        let counts = events::count_types(src, &cols.event_type, job.chunk_rows)?;
        chosen = spec::choose_types(&counts, metrics_spec);
        let mut with_types = r.clone();
        with_types.spec.metrics.event_types = chosen
            .iter()
            .filter(|t| t.left_out.is_none())
            .map(|t| spec::EventTypeSpec::Named {
                value: t.value.clone(),
                name: t.name.clone(),
            })
            .collect();
        // Columns in the order of the types' values, so that tables from logs where the types
        // rank differently still line up.
        with_types
            .spec
            .metrics
            .event_types
            .sort_by(|a, b| natural_cmp(a.value(), b.value()));
        resolved = with_types;
        &resolved
    } else {
        chosen = Vec::new();
        r
    };
    let (cols, metrics_spec) = (&r.spec.events, &r.spec.metrics);
    let has_value = has(&cols.value);
    let mut columns = vec![cols.customer_id.clone(), cols.timestamp.clone()];
    let type_at = has_type.then(|| {
        columns.push(cols.event_type.clone());
        columns.len() - 1
    });
    let value_at = has_value.then(|| {
        columns.push(cols.value.clone());
        columns.len() - 1
    });
    let has_users = has(&cols.user_id) && metrics_spec.per_user;
    let user_at = has_users.then(|| {
        columns.push(cols.user_id.clone());
        columns.len() - 1
    });

    let subs = match &job.subscriptions {
        Some(src) => {
            let (mut s, name) = src.open(job.delimiter)?;
            s.allow_dates();
            Some(Subscriptions::read(
                s,
                name,
                &r.spec.subscriptions,
                r.utc_offset,
                r.renewal_grace,
            )?)
        }
        None => None,
    };
    if job.label == LabelKind::SubscriptionEnd && subs.is_none() {
        return Err(Error::Usage(
            "--label subscription-end needs --subscriptions".into(),
        ));
    }
    let metric_cols = metrics::columns(
        r,
        metrics::Available {
            values: has_value,
            users: has_users,
            subscriptions: subs.as_ref().map(|s| s.fields),
        },
    )
    .map_err(|m| Error::Usage(format!("feature spec: {m}")))?;

    // The windows any metric looks back over, and the label's look-ahead.
    let mut lookback: Vec<u32> = r.windows.clone();
    lookback.extend(r.trend.iter().flat_map(|&t| [t, 2 * t]));
    let labelled = job.label != LabelKind::None;
    let horizon = labelled.then_some(job.horizon);
    if labelled && job.horizon == 0 {
        return Err(Error::Usage("--horizon must be at least 1 day".into()));
    }
    let bitmap: &[u32] = if metrics_spec.active_days {
        &r.windows
    } else {
        &[]
    };
    let tl = Timeline::new(&job.snapshots, &lookback, horizon, bitmap);
    let types: Vec<String> = metrics_spec
        .event_types
        .iter()
        .map(|t| t.value().trim().to_string())
        .collect();
    let activity = match (&r.spec.label.activity, job.label) {
        (Some(a), LabelKind::NoActivity) => Some(a.iter().map(|t| t.trim().to_string()).collect()),
        _ => None,
    };
    let qualifying = activity.as_ref().map(|_| types.len() + 1);
    let layout = StoreLayout {
        segments: tl.segments(),
        channels: 1 + types.len() + usize::from(qualifying.is_some()),
        values: has_value,
        words: tl.bitmap_words(),
        early_days: r.early_life as usize,
        users: has_users,
    };
    let n_shards = (rayon::current_num_threads() * 8).next_power_of_two();
    let mut shards: Vec<Shard> = (0..n_shards)
        .map(|_| Shard::new(layout, qualifying))
        .collect();
    if let Some(subs) = &subs {
        for (id, start) in subs.customers() {
            let shard = &mut shards[crate::io::Shard::of(id, n_shards as u64) as usize];
            let c = shard.customer(id);
            shard.seen_on(c, start);
        }
    }
    let reader = events::EventReader {
        name: events_name,
        columns,
        type_at,
        value_at,
        user_at,
        offset: r.utc_offset,
        types,
        activity,
        chunk_rows: job.chunk_rows,
    };
    let events = reader.read(events_src, &mut shards, &tl)?;
    let read_seconds = started.elapsed().as_secs_f64();

    // A label needs its source to reach past the horizon, or every customer looks churned: the
    // events for no-activity, the subscriptions (their renewals) for subscription-end.
    let last_event = shards
        .iter()
        .map(|s| s.last_event)
        .max()
        .unwrap_or(i64::MIN);
    let last_event = (last_event != i64::MIN).then(|| time::day_of(last_event));
    let latest_start = subs
        .as_ref()
        .map(|s| s.latest_start)
        .filter(|&d| d != i64::MIN);
    let (until, source) = match job.label {
        LabelKind::SubscriptionEnd => (latest_start, "subscription start"),
        _ => (last_event, "event"),
    };
    if labelled {
        let Some(until) = until else {
            return Err(Error::Usage(
                "the inputs hold no events: nothing to label".into(),
            ));
        };
        if let Some(&s) = tl
            .snapshots
            .iter()
            .find(|&&s| s + i64::from(job.horizon) > until + 1)
        {
            return Err(Error::Usage(format!(
                "snapshot {} with --horizon {}d needs data until {}, but the latest {source} is on {}: its labels would be guesses. Use an earlier snapshot, a shorter horizon, or --label none",
                time::format_day(s),
                job.horizon,
                time::format_day(s + i64::from(job.horizon) - 1),
                time::format_day(until)
            )));
        }
    }

    // Customers in a stable order: by id, numbers by value.
    let mut order: Vec<(usize, usize)> = shards
        .iter()
        .enumerate()
        .flat_map(|(k, s)| (0..s.ids.len()).map(move |c| (k, c)))
        .collect();
    order.par_sort_unstable_by(|a, b| natural_cmp(&shards[a.0].ids[a.1], &shards[b.0].ids[b.1]));

    let csv = match sink {
        Sink::File(writer) => {
            let w = writer.insert(write::FeatureWriter::create(
                &job.out,
                &metric_cols,
                labelled,
            )?);
            w.wants_csv()
        }
        Sink::Memory(columns, customers, _) => {
            *columns = metric_cols.clone();
            *customers = order
                .iter()
                .map(|&(k, c)| (shards[k].ids[c].clone(), shards[k].view(c).first_day))
                .collect();
            false
        }
    };
    let rows_of = SnapshotRows {
        shards: &shards,
        subs: subs.as_ref(),
        tl: &tl,
        cols: &metric_cols,
        label: job.label,
        horizon: i64::from(job.horizon),
        qualifying: qualifying.unwrap_or(0),
        active_within: r.active_within.map(i64::from),
        csv,
    };
    let mut snapshots = Vec::new();
    let mut rows = 0;
    for &s in &tl.snapshots {
        let day = time::format_day(s);
        const PART: usize = 4096;
        let chunks: Vec<write::RowChunk> = order
            .par_chunks(PART)
            .enumerate()
            .map(|(p, part)| rows_of.chunk(part, (p * PART) as u32, s, &day))
            .collect();
        let mut summary = SnapshotSummary {
            snapshot: day.clone(),
            rows: 0,
            churned: 0,
        };
        for chunk in &chunks {
            summary.rows += chunk.rows;
            summary.churned += chunk.churned;
        }
        match sink {
            Sink::File(writer) => {
                let w = writer.as_mut().expect("created above");
                for chunk in &chunks {
                    w.write(chunk, &day)?;
                }
            }
            Sink::Memory(_, _, frames) => {
                let mut f = SnapshotFrame {
                    day: s,
                    customers: Vec::with_capacity(summary.rows as usize),
                    values: Vec::with_capacity(summary.rows as usize * metric_cols.len()),
                    plans: Vec::with_capacity(summary.rows as usize),
                    labels: Vec::new(),
                };
                for chunk in chunks {
                    f.customers.extend(chunk.ordinals);
                    f.values.extend(chunk.values);
                    f.plans.extend(chunk.plans);
                    f.labels.extend(chunk.labels);
                }
                frames.push(f);
            }
        }
        rows += summary.rows;
        snapshots.push(summary);
    }
    if let Sink::File(w) = sink
        && let Some(w) = w.take()
    {
        w.finish()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(FeatureSummary {
        events,
        customers: order.len() as u64,
        rows,
        label: job.label,
        columns: metric_cols.iter().map(|c| c.name.clone()).collect(),
        event_types: chosen,
        snapshots,
        data_until: last_event.max(latest_start).map(time::format_day),
        population_known_until: match &subs {
            Some(_) => latest_start,
            None => last_event.map(|d| d + 1),
        },
        bytes_per_customer: shards[0].bytes_per_customer(),
        read_seconds,
        seconds,
        events_per_second: events as f64 / read_seconds.max(1e-9),
    })
}

/// Makes the rows of one snapshot.
struct SnapshotRows<'a> {
    shards: &'a [Shard],
    subs: Option<&'a Subscriptions>,
    tl: &'a Timeline,
    cols: &'a [metrics::MetricColumn],
    label: LabelKind,
    horizon: i64,
    /// Channel of the events that count as activity for the label.
    qualifying: usize,
    active_within: Option<i64>,
    csv: bool,
}

impl SnapshotRows<'_> {
    /// The rows of the customers in `part` (shard, index) who are active on day `s`.
    /// `first` is the position of `part[0]` in the customer order.
    fn chunk(&self, part: &[(usize, usize)], first: u32, s: i64, day: &str) -> write::RowChunk {
        let tl = self.tl;
        let mut chunk = write::RowChunk::default();
        let mut values = Vec::with_capacity(self.cols.len());
        for (&(k, c), ordinal) in part.iter().zip(first..) {
            let shard = &self.shards[k];
            let id = &shard.ids[c];
            let v = shard.view(c);
            // Who is in: subscribers on the day, or else customers seen before it (and, with
            // active_within, recently).
            let sub = match self.subs {
                Some(subs) => match subs.on(id, s) {
                    Some(st) => Some(st),
                    None => continue,
                },
                None => {
                    let recent = |a: i64| {
                        v.latest(tl.before(s))
                            .is_some_and(|t| s - time::day_of(t) <= a)
                    };
                    if v.first_day >= s || self.active_within.is_some_and(|a| !recent(a)) {
                        continue;
                    }
                    None
                }
            };
            let label = match self.label {
                LabelKind::None => None,
                LabelKind::NoActivity => {
                    Some(v.count(self.qualifying, tl.window(s, s + self.horizon)) == 0)
                }
                LabelKind::SubscriptionEnd => {
                    let end = sub.as_ref().and_then(|x| x.run_end);
                    Some(end.is_some_and(|e| e < s + self.horizon))
                }
            };
            metrics::compute(self.cols, &v, sub.as_ref(), s, tl, &mut values);
            let plan = sub.as_ref().and_then(|x| x.plan);
            chunk.push(self.csv, id, day, self.cols, &values, plan, label);
            if !self.csv {
                chunk.ordinals.push(ordinal);
            }
        }
        chunk
    }
}

/// Ids in natural order: all-digit ids by value, others as text.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let (ta, tb) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        ta.len().cmp(&tb.len()).then(ta.cmp(tb)).then(a.cmp(b))
    } else {
        a.cmp(b)
    }
}
