//! The churn report: the business view of an event log (and subscriptions), with every
//! definition stated on the page. Customer (logo) churn and its annual equivalent per month,
//! gross and net MRR churn where subscriptions carry MRR, a cohort retention triangle by start
//! month, churn by plan, churn by decile of each activity metric (behavioural cohorts) and the
//! early-life signal.
//!
//! Everything is computed from the feature table `churn features` would build at the first day
//! of each month ([`crate::features::frame`]): who is active on a day is the table's population
//! rule (a subscription covering the day, or with events only a recent event), and the activity
//! metrics are the ones a model trains on.
use super::charts::{self, Axes, HeatMap, Series};
use super::page::{count, definition, figure, fixed, kpi, note, page, pct, table, value};
use crate::error::Result;
use crate::features::FeatureFrame;
use crate::features::metrics::Metric;
use crate::model::metrics::auc;
use crate::time::{add_months, format_day, format_month, month_start};
use maud::html;
use serde::Serialize;

/// Behavioural metrics drawn as charts (all are in the tables and the JSON).
const METRICS_DRAWN: usize = 6;
/// Equal-count groups of a metric's values.
const GROUPS: usize = 10;

/// How the frame was built, for the definitions on the page.
pub struct ChurnInputs<'a> {
    pub frame: &'a FeatureFrame,
    pub events_name: &'a str,
    /// With events only: a customer is active on a day when their latest event is at most this
    /// many days before it.
    pub active_within: Option<u32>,
    pub subscriptions: bool,
    /// Days of early life (0: none).
    pub early_life: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    pub events_file: String,
    pub from: String,
    pub to: String,
    pub events: u64,
    pub customers: u64,
    pub definitions: Definitions,
    pub months: Vec<MonthRow>,
    pub overall: Overall,
    pub cohorts: Vec<CohortRow>,
    pub segments: Vec<SegmentRow>,
    /// Churn by group of each activity metric, the metrics that sort churners best first.
    pub behaviour: Vec<MetricCohorts>,
    pub early_life: Option<EarlyLife>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Definitions {
    pub active: String,
    pub logo_churn: String,
    pub annual: String,
    pub mrr_churn: String,
    pub cohorts: String,
    pub behaviour: String,
    pub early_life: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthRow {
    pub month: String,
    pub start: String,
    pub end: String,
    pub active_at_start: u64,
    pub churned: u64,
    /// Active at the end, not at the start.
    pub new: u64,
    pub active_at_end: u64,
    /// churned / active_at_start (null when no one was active).
    pub churn_rate: Option<f64>,
    /// 1 - (1 - churn_rate)^12.
    pub annual_churn_rate: Option<f64>,
    /// Present where the subscriptions carry MRR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrr: Option<MrrMonth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MrrMonth {
    pub start: f64,
    /// MRR at the start of the customers who churned.
    pub churned: f64,
    /// Decreases of the customers who stayed.
    pub contraction: f64,
    /// Increases of the customers who stayed.
    pub expansion: f64,
    /// MRR at the end of the new customers.
    pub new: f64,
    pub end: f64,
    /// (churned + contraction) / start.
    pub gross_churn: Option<f64>,
    /// (churned + contraction - expansion) / start.
    pub net_churn: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overall {
    /// Customer-months at risk (active at a month's start) and the churned among them.
    pub customer_months: u64,
    pub churned: u64,
    /// churned / customer_months: the average monthly churn rate.
    pub monthly_churn_rate: Option<f64>,
    pub annual_churn_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gross_mrr_churn: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_mrr_churn: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CohortRow {
    /// The month its customers were first seen.
    pub month: String,
    pub customers: u64,
    /// Share still active on the first day of each following month (null outside the period).
    pub retained: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentRow {
    pub plan: String,
    pub customer_months: u64,
    pub churned: u64,
    pub churn_rate: f64,
    /// Active at the period's end.
    pub customers_at_end: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricCohorts {
    pub metric: String,
    /// AUC of the metric as a churn score (0.5: no signal; below 0.5: more means less churn).
    pub auc: f64,
    pub observations: u64,
    pub groups: Vec<Group>,
    /// Observations where the metric is missing, and their churn rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Group>,
}

/// A group of observations by the value of a metric.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub from: f64,
    pub to: f64,
    pub mean: f64,
    pub observations: u64,
    pub churned: u64,
    pub churn_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EarlyLife {
    pub days: u32,
    pub metric: String,
    /// Customers whose early life ended within the period and who were active then.
    pub customers: u64,
    /// Customers whose early life ended within the period but who were no longer active then.
    pub gone_before: u64,
    pub auc: f64,
    pub groups: Vec<Group>,
}

/// Which customers (by position) are active at each month start, as row numbers.
struct Presence {
    /// Per snapshot, per customer: the row, or NONE.
    rows: Vec<Vec<u32>>,
}

const NONE: u32 = u32::MAX;

impl Presence {
    fn of(frame: &FeatureFrame) -> Presence {
        let n = frame.customers.len();
        let rows = frame
            .snapshots
            .iter()
            .map(|s| {
                let mut v = vec![NONE; n];
                for (r, &c) in s.customers.iter().enumerate() {
                    v[c as usize] = r as u32;
                }
                v
            })
            .collect();
        Presence { rows }
    }

    fn row(&self, k: usize, c: u32) -> Option<usize> {
        let r = self.rows[k][c as usize];
        (r != NONE).then_some(r as usize)
    }
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn annual(monthly: f64) -> f64 {
    1.0 - (1.0 - monthly).powi(12)
}

impl ChurnReport {
    /// A report with nothing in it but the reason, for inputs that hold no customers.
    pub fn empty(events_file: &str, subscriptions: bool, reason: String) -> ChurnReport {
        ChurnReport {
            events_file: events_file.to_string(),
            from: String::new(),
            to: String::new(),
            events: 0,
            customers: 0,
            definitions: definitions(subscriptions, None, 0),
            months: Vec::new(),
            overall: Overall {
                customer_months: 0,
                churned: 0,
                monthly_churn_rate: None,
                annual_churn_rate: None,
                gross_mrr_churn: None,
                net_mrr_churn: None,
            },
            cohorts: Vec::new(),
            segments: Vec::new(),
            behaviour: Vec::new(),
            early_life: None,
            notes: vec![reason],
        }
    }
}

/// Builds the report from a frame whose snapshots are consecutive month starts (at least two).
pub fn build(i: &ChurnInputs<'_>) -> ChurnReport {
    let f = i.frame;
    let k_last = f.snapshots.len() - 1;
    let nc = f.columns.len();
    let presence = Presence::of(f);
    let mrr_col = f
        .columns
        .iter()
        .position(|c| matches!(c.metric, Metric::Mrr));
    let plan_col = f
        .columns
        .iter()
        .position(|c| matches!(c.metric, Metric::Plan));
    let mut notes = Vec::new();
    let mrr_of = |k: usize, r: usize| -> f64 {
        mrr_col.map_or(0.0, |m| {
            let x = f.snapshots[k].values[r * nc + m];
            if x.is_nan() { 0.0 } else { x }
        })
    };

    // Months.
    let mut months = Vec::with_capacity(k_last);
    for k in 0..k_last {
        let (a, b) = (&f.snapshots[k], &f.snapshots[k + 1]);
        let mut churned = 0u64;
        let mut m = MrrMonth {
            start: 0.0,
            churned: 0.0,
            contraction: 0.0,
            expansion: 0.0,
            new: 0.0,
            end: 0.0,
            gross_churn: None,
            net_churn: None,
        };
        for (r, &c) in a.customers.iter().enumerate() {
            let start = mrr_of(k, r);
            m.start += start;
            match presence.row(k + 1, c) {
                None => {
                    churned += 1;
                    m.churned += start;
                }
                Some(r2) => {
                    let end = mrr_of(k + 1, r2);
                    if end < start {
                        m.contraction += start - end;
                    } else {
                        m.expansion += end - start;
                    }
                }
            }
        }
        let mut new = 0u64;
        for (r, &c) in b.customers.iter().enumerate() {
            let end = mrr_of(k + 1, r);
            m.end += end;
            if presence.row(k, c).is_none() {
                new += 1;
                m.new += end;
            }
        }
        if m.start > 0.0 {
            m.gross_churn = Some((m.churned + m.contraction) / m.start);
            m.net_churn = Some((m.churned + m.contraction - m.expansion) / m.start);
        }
        let active = a.customers.len() as u64;
        let churn_rate = rate(churned, active);
        months.push(MonthRow {
            month: format_month(a.day),
            start: format_day(a.day),
            end: format_day(b.day),
            active_at_start: active,
            churned,
            new,
            active_at_end: b.customers.len() as u64,
            churn_rate,
            annual_churn_rate: churn_rate.map(annual),
            mrr: mrr_col.map(|_| m),
        });
    }
    let customer_months: u64 = months.iter().map(|m| m.active_at_start).sum();
    let churned: u64 = months.iter().map(|m| m.churned).sum();
    let monthly = rate(churned, customer_months);
    let pooled = |part: &dyn Fn(&MrrMonth) -> f64| -> Option<f64> {
        mrr_col?;
        let start: f64 = months
            .iter()
            .filter_map(|m| m.mrr.as_ref())
            .map(|m| m.start)
            .sum();
        let x: f64 = months.iter().filter_map(|m| m.mrr.as_ref()).map(part).sum();
        (start > 0.0).then(|| x / start)
    };
    let overall = Overall {
        customer_months,
        churned,
        monthly_churn_rate: monthly,
        annual_churn_rate: monthly.map(annual),
        gross_mrr_churn: pooled(&|m| m.churned + m.contraction),
        net_mrr_churn: pooled(&|m| m.churned + m.contraction - m.expansion),
    };
    if customer_months == 0 {
        notes.push(format!(
            "No customer was active on the first day of any month from {} to {}: there is no churn to measure.",
            format_day(f.snapshots[0].day),
            format_day(f.snapshots[k_last].day)
        ));
    }
    if mrr_col.is_none() {
        notes.push(if i.subscriptions {
            "The subscriptions carry no MRR column: no MRR churn.".into()
        } else {
            "MRR churn needs subscriptions with MRR (--subscriptions).".into()
        });
    }

    // Cohorts: customers by the month first seen, from the month before the period to the one
    // before its end; each column a following month start within the period.
    let first = f.snapshots[0].day;
    let index_of = |day: i64| f.snapshots.iter().position(|s| s.day == day);
    let mut cohorts = Vec::new();
    let cohort_months: Vec<i64> = (0..=k_last as i64)
        .map(|j| add_months(first, j - 1))
        .filter(|&m| m < f.snapshots[k_last].day)
        .collect();
    let mut sizes = vec![0u64; cohort_months.len()];
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); cohort_months.len()];
    for (c, (_, day)) in f.customers.iter().enumerate() {
        let m = month_start(*day);
        if let Some(j) = cohort_months.iter().position(|&x| x == m) {
            sizes[j] += 1;
            members[j].push(c as u32);
        }
    }
    for (j, &m) in cohort_months.iter().enumerate() {
        if sizes[j] == 0 {
            continue;
        }
        let retained = (1..=k_last as i64 + 1)
            .map(|step| {
                let k = index_of(add_months(m, step))?;
                let kept = members[j]
                    .iter()
                    .filter(|&&c| presence.row(k, c).is_some())
                    .count() as u64;
                rate(kept, sizes[j])
            })
            .collect::<Vec<_>>();
        let used = retained
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |p| p + 1);
        cohorts.push(CohortRow {
            month: format_month(m),
            customers: sizes[j],
            retained: retained[..used].to_vec(),
        });
    }

    // Segments by plan.
    let mut segments: Vec<SegmentRow> = Vec::new();
    if plan_col.is_some() {
        let mut by: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
        for k in 0..=k_last {
            let s = &f.snapshots[k];
            for (r, &c) in s.customers.iter().enumerate() {
                let plan = s.plans[r].clone().unwrap_or_else(|| "(none)".into());
                let e = by.entry(plan).or_default();
                if k == k_last {
                    e.2 += 1;
                } else {
                    e.0 += 1;
                    e.1 += u64::from(presence.row(k + 1, c).is_none());
                }
            }
        }
        segments = by
            .into_iter()
            .map(|(plan, (n, churned, end))| SegmentRow {
                plan,
                customer_months: n,
                churned,
                churn_rate: rate(churned, n).unwrap_or(f64::NAN),
                customers_at_end: end,
            })
            .collect();
        segments.sort_by_key(|s| std::cmp::Reverse(s.customer_months));
    } else {
        notes.push("No plan column: no churn by segment.".into());
    }

    // Behavioural cohorts: every numeric metric over the customer-months at risk.
    let mut behaviour: Vec<MetricCohorts> = f
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !matches!(c.metric, Metric::Plan))
        .map(|(j, c)| {
            let mut obs = Vec::with_capacity(customer_months as usize);
            for k in 0..k_last {
                let s = &f.snapshots[k];
                for (r, &cust) in s.customers.iter().enumerate() {
                    obs.push((s.values[r * nc + j], presence.row(k + 1, cust).is_none()));
                }
            }
            metric_cohorts(&c.name, obs)
        })
        .collect();
    behaviour.sort_by(|a, b| {
        let d = |m: &MetricCohorts| {
            if m.auc.is_nan() {
                -1.0
            } else {
                (m.auc - 0.5).abs()
            }
        };
        d(b).total_cmp(&d(a))
    });

    // Early life: each customer at the first month start after their early life.
    let early_col = f
        .columns
        .iter()
        .position(|c| matches!(c.metric, Metric::EarlyEvents));
    let early_life = match early_col {
        Some(j) if i.early_life > 0 => {
            let mut obs = Vec::new();
            let mut gone_before = 0u64;
            for (c, (_, day)) in f.customers.iter().enumerate() {
                let done = day + i64::from(i.early_life);
                let Some(k) = f.snapshots[..k_last].iter().position(|s| s.day >= done) else {
                    continue;
                };
                // Only customers whose early life ended within the month before that start.
                if k == 0 && add_months(f.snapshots[0].day, -1) >= done {
                    continue;
                }
                match presence.row(k, c as u32) {
                    Some(r) => obs.push((
                        f.snapshots[k].values[r * nc + j],
                        presence.row(k + 1, c as u32).is_none(),
                    )),
                    None => gone_before += 1,
                }
            }
            let m = metric_cohorts(&f.columns[j].name, obs);
            Some(EarlyLife {
                days: i.early_life,
                metric: m.metric,
                customers: m.observations,
                gone_before,
                auc: m.auc,
                groups: m.groups,
            })
        }
        _ => {
            notes.push("The feature spec turns early life off: no early-life view.".into());
            None
        }
    };

    ChurnReport {
        events_file: i.events_name.to_string(),
        from: format_day(f.snapshots[0].day),
        to: format_day(f.snapshots[k_last].day),
        events: f.summary.events,
        customers: f.summary.customers,
        definitions: definitions(i.subscriptions, i.active_within, i.early_life),
        months,
        overall,
        cohorts,
        segments,
        behaviour,
        early_life,
        notes,
    }
}

/// An observation: a metric's value and whether the customer churned.
type Observation = (f64, bool);

/// The definitions stated on the page.
fn definitions(subscriptions: bool, active_within: Option<u32>, early_life: u32) -> Definitions {
    let active = match (subscriptions, active_within) {
        (true, _) => "A customer is active on a day when one of their subscriptions covers it (start <= day < end).".to_string(),
        (false, Some(d)) => format!("A customer is active on a day when their latest event is at most {d} days before it (the spec's [population] active_within)."),
        (false, None) => "A customer is active on every day after their first event.".to_string(),
    };
    Definitions {
        active,
        logo_churn: "Customer (logo) churn rate of a month: customers active on its first day and not on the first day of the next month, over the customers active on its first day.".into(),
        annual: "Annual equivalent: 1 - (1 - monthly rate)^12. The period's average monthly rate pools every month: churned customer-months over customer-months at risk.".into(),
        mrr_churn: "Gross MRR churn of a month: the MRR of the customers who churned plus the decreases of those who stayed, over the MRR at its start. Net MRR churn also subtracts the increases of those who stayed (expansion); it is negative when expansion outweighs the losses. New customers count in neither.".into(),
        cohorts: "A cohort is the customers first seen (first event or subscription start) in a month; each cell is the share of them active on the first day of a later month.".into(),
        behaviour: format!("Each customer active on a month's first day is one observation, with the activity metrics of `churn features` on that day (only what happened before it) and whether they churned that month. Observations are cut into {GROUPS} equal-count groups by the metric's value (ties kept together); AUC ranks the metrics by how well they sort churners on their own."),
        early_life: format!("Each customer is taken at the first month start at least {} days after they were first seen: their events in those first {} days against whether they churned in the month that follows.", early_life, early_life),
    }
}

/// Churn by equal-count groups of a metric's values (ties kept in one group; missing apart).
fn metric_cohorts(name: &str, obs: Vec<Observation>) -> MetricCohorts {
    let (mut known, missing): (Vec<Observation>, Vec<Observation>) =
        obs.into_iter().partition(|o| !o.0.is_nan());
    known.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = known.len();
    let mut groups = Vec::new();
    let mut at = 0;
    for g in 1..=GROUPS {
        let mut end = (n * g / GROUPS).max(at);
        if end == at {
            continue;
        }
        while end < n && known[end].0 == known[end - 1].0 {
            end += 1;
        }
        groups.push(group(&known[at..end]));
        at = end;
    }
    let x: Vec<f64> = known.iter().map(|o| o.0).collect();
    let y: Vec<bool> = known.iter().map(|o| o.1).collect();
    MetricCohorts {
        metric: name.to_string(),
        auc: if n == 0 { f64::NAN } else { auc(&x, &y) },
        observations: (n + missing.len()) as u64,
        groups,
        missing: (!missing.is_empty()).then(|| group(&missing)),
    }
}

fn group(obs: &[Observation]) -> Group {
    let churned = obs.iter().filter(|o| o.1).count() as u64;
    let n = obs.len() as u64;
    let known = obs.iter().filter(|o| !o.0.is_nan());
    Group {
        from: known.clone().map(|o| o.0).fold(f64::INFINITY, f64::min),
        to: known.clone().map(|o| o.0).fold(f64::NEG_INFINITY, f64::max),
        mean: {
            let (s, k) = known.fold((0.0, 0u64), |(s, k), o| (s + o.0, k + 1));
            if k == 0 { f64::NAN } else { s / k as f64 }
        },
        observations: n,
        churned,
        churn_rate: churned as f64 / n as f64,
    }
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or("-".into(), pct)
}

fn group_label(g: &Group) -> String {
    if g.from == g.to {
        value(g.from)
    } else {
        format!("{}-{}", value(g.from), value(g.to))
    }
}

/// The page.
pub fn render(r: &ChurnReport) -> Result<String> {
    let d = &r.definitions;
    let o = &r.overall;
    let month_names: Vec<String> = r.months.iter().map(|m| m.month.clone()).collect();
    let rates: Vec<f64> = r
        .months
        .iter()
        .map(|m| m.churn_rate.unwrap_or(f64::NAN))
        .collect();
    let churn_chart = charts::bars(
        "Customer churn rate per month",
        "churn rate",
        &month_names,
        &rates,
        o.monthly_churn_rate,
    )?;
    let has_mrr = r.months.iter().any(|m| m.mrr.is_some());
    let mrr_chart = if has_mrr {
        let series = |name: &str, f: &dyn Fn(&MrrMonth) -> Option<f64>| {
            Series::line(
                name,
                r.months
                    .iter()
                    .enumerate()
                    .filter_map(|(k, m)| Some((k as f64, f(m.mrr.as_ref()?)?)))
                    .collect(),
            )
        };
        let gross = series("gross MRR churn", &|m| m.gross_churn);
        let net = series("net MRR churn", &|m| m.net_churn);
        let values = gross.points.iter().chain(&net.points).map(|p| p.1);
        let (lo, hi) = values.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let zero = Series::reference(
            "zero",
            vec![(0.0, 0.0), ((r.months.len().max(2) - 1) as f64, 0.0)],
        );
        Some(charts::lines(
            &Axes {
                title: "MRR churn per month",
                x_label: &format!(
                    "month (0 = {})",
                    r.months.first().map_or("", |m| m.month.as_str())
                ),
                y_label: "share of starting MRR",
                x: 0.0..(r.months.len().max(2) - 1) as f64,
                y: lo * 1.1 - 0.01..hi * 1.1 + 0.01,
                x_names: Some(&month_names),
            },
            &[gross, net, zero],
        )?)
    } else {
        None
    };
    let month_rows: Vec<Vec<String>> = r
        .months
        .iter()
        .map(|m| {
            let mut row = vec![
                m.month.clone(),
                count(m.active_at_start),
                count(m.churned),
                count(m.new),
                count(m.active_at_end),
                opt_pct(m.churn_rate),
                opt_pct(m.annual_churn_rate),
            ];
            if let Some(x) = &m.mrr {
                row.extend([
                    fixed(x.start, 2),
                    fixed(x.churned, 2),
                    fixed(x.contraction, 2),
                    fixed(x.expansion, 2),
                    fixed(x.new, 2),
                    opt_pct(x.gross_churn),
                    opt_pct(x.net_churn),
                ]);
            }
            row
        })
        .collect();
    let mut month_headers = vec![
        "month",
        "active at start",
        "churned",
        "new",
        "active at end",
        "churn rate",
        "annual equivalent",
    ];
    if has_mrr {
        month_headers.extend([
            "MRR at start",
            "churned MRR",
            "contraction",
            "expansion",
            "new MRR",
            "gross MRR churn",
            "net MRR churn",
        ]);
    }
    let width = r
        .cohorts
        .iter()
        .map(|c| c.retained.len())
        .max()
        .unwrap_or(0);
    let cohort_chart = if width > 0 {
        let rows: Vec<String> = r
            .cohorts
            .iter()
            .map(|c| format!("{} ({})", c.month, c.customers))
            .collect();
        let cols: Vec<String> = (1..=width).map(|k| format!("+{k}")).collect();
        let values: Vec<f64> = r
            .cohorts
            .iter()
            .flat_map(|c| {
                (0..width).map(|k| c.retained.get(k).copied().flatten().unwrap_or(f64::NAN))
            })
            .collect();
        Some(charts::heat_map(&HeatMap {
            title: "Cohort retention",
            x_label: "months after the start month",
            y_label: "start month (customers)",
            columns: &cols,
            rows: &rows,
            values: &values,
            diverging: false,
            annotate: Some(|v| format!("{:.0}%", 100.0 * v)),
        })?)
    } else {
        None
    };
    let cohort_rows: Vec<Vec<String>> = r
        .cohorts
        .iter()
        .map(|c| {
            let mut row = vec![c.month.clone(), count(c.customers)];
            row.extend((0..width).map(|k| opt_pct(c.retained.get(k).copied().flatten())));
            row
        })
        .collect();
    let cohort_headers: Vec<String> = ["start month".to_string(), "customers".to_string()]
        .into_iter()
        .chain((1..=width).map(|k| format!("+{k} months")))
        .collect();
    let cohort_headers: Vec<&str> = cohort_headers.iter().map(String::as_str).collect();
    let segment_chart = if r.segments.is_empty() {
        None
    } else {
        let names: Vec<String> = r.segments.iter().map(|s| s.plan.clone()).collect();
        let rates: Vec<f64> = r.segments.iter().map(|s| s.churn_rate).collect();
        Some(charts::bars(
            "Monthly churn rate by plan",
            "churn rate",
            &names,
            &rates,
            o.monthly_churn_rate,
        )?)
    };
    let mut behaviour_charts = Vec::new();
    for m in r
        .behaviour
        .iter()
        .filter(|m| !m.groups.is_empty())
        .take(METRICS_DRAWN)
    {
        let names: Vec<String> = m.groups.iter().map(group_label).collect();
        let rates: Vec<f64> = m.groups.iter().map(|g| g.churn_rate).collect();
        let svg = charts::bars(
            &m.metric,
            "churn rate",
            &names,
            &rates,
            o.monthly_churn_rate,
        )?;
        behaviour_charts.push(figure(
            &svg,
            &format!(
                "Churn rate by group of {} (AUC {}). The dashed line is the average.",
                m.metric,
                fixed(m.auc, 3)
            ),
        ));
    }
    let (varied, constant): (Vec<&MetricCohorts>, Vec<&MetricCohorts>) =
        r.behaviour.iter().partition(|m| m.groups.len() > 1);
    let constant_names: Vec<&str> = constant.iter().map(|m| m.metric.as_str()).collect();
    let behaviour_rows: Vec<Vec<String>> = varied
        .iter()
        .map(|m| {
            let lowest = m.groups.first().map_or(f64::NAN, |g| g.churn_rate);
            let highest = m.groups.last().map_or(f64::NAN, |g| g.churn_rate);
            vec![
                m.metric.clone(),
                fixed(m.auc, 3),
                count(m.observations),
                m.groups.len().to_string(),
                pct(lowest),
                pct(highest),
            ]
        })
        .collect();
    let early = match &r.early_life {
        Some(e) if !e.groups.is_empty() => {
            let names: Vec<String> = e.groups.iter().map(group_label).collect();
            let rates: Vec<f64> = e.groups.iter().map(|g| g.churn_rate).collect();
            let svg = charts::bars(
                &format!("Churn after early life by {}", e.metric),
                "churn rate the month after",
                &names,
                &rates,
                o.monthly_churn_rate,
            )?;
            let rows: Vec<Vec<String>> = e
                .groups
                .iter()
                .map(|g| {
                    vec![
                        group_label(g),
                        count(g.observations),
                        count(g.churned),
                        pct(g.churn_rate),
                    ]
                })
                .collect();
            html! {
                div.grid {
                    (figure(&svg, &format!("{} customers (AUC {}); {} more were gone before their first month start after early life.", count(e.customers), fixed(e.auc, 3), count(e.gone_before))))
                    (table(&[e.metric.as_str(), "customers", "churned", "churn rate"], &rows))
                }
            }
        }
        Some(_) => note("No customer's early life ended within the period."),
        None => note("No early-life view (the spec's early_life is 0d)."),
    };
    let body = html! {
        @for n in &r.notes { (note(n)) }
        section {
            h2 { "Customer churn" }
            (definition(&d.active))
            (definition(&d.logo_churn))
            (definition(&d.annual))
            div.kpis {
                (kpi(&opt_pct(o.monthly_churn_rate), "average monthly churn rate"))
                (kpi(&opt_pct(o.annual_churn_rate), "annual equivalent"))
                (kpi(&count(o.churned), "customers churned"))
                (kpi(&count(o.customer_months), "customer-months at risk"))
                @if let Some(g) = o.gross_mrr_churn { (kpi(&pct(g), "gross MRR churn (monthly)")) }
                @if let Some(n) = o.net_mrr_churn { (kpi(&pct(n), "net MRR churn (monthly)")) }
            }
            div.grid {
                (figure(&churn_chart, "The dashed line is the period's average monthly rate."))
                @if let Some(c) = &mrr_chart { (figure(c, &d.mrr_churn)) }
            }
            (table(&month_headers, &month_rows))
        }
        section {
            h2 { "Cohort retention" }
            (definition(&d.cohorts))
            @if let Some(c) = &cohort_chart { (figure(c, "Darker is more retained; blank cells fall outside the period.")) }
            @else { (note("No cohort started within the period.")) }
            (table(&cohort_headers, &cohort_rows))
        }
        section {
            h2 { "Churn by segment (plan)" }
            @if let Some(c) = &segment_chart {
                div.grid {
                    (figure(c, "Churned customer-months over customer-months at risk, per plan on the month's first day."))
                    (table(&["plan", "customer-months", "churned", "churn rate", "active at end"], &r.segments.iter().map(|s| vec![
                        s.plan.clone(), count(s.customer_months), count(s.churned), pct(s.churn_rate), count(s.customers_at_end),
                    ]).collect::<Vec<_>>()))
                }
            } @else { (note("No plan column: no churn by segment.")) }
        }
        section {
            h2 { "Behavioural cohorts" }
            (definition(&d.behaviour))
            div.grid { @for c in &behaviour_charts { (c) } }
            (table(&["metric", "AUC", "observations", "groups", "churn rate, lowest group", "churn rate, highest group"], &behaviour_rows))
            @if !constant_names.is_empty() {
                (definition(&format!("Constant over the period (one value, no groups): {}.", constant_names.join(", "))))
            }
        }
        section {
            h2 { "Early life" }
            (definition(&d.early_life))
            (early)
        }
    };
    Ok(page(
        &format!("Churn report: {} to {}", r.from, r.to),
        &format!(
            "{} events of {} customers from {}",
            count(r.events),
            count(r.customers),
            r.events_file
        ),
        body,
    ))
}
