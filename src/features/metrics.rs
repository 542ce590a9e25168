//! The output columns: which metrics the spec asks for, their names, and their values for one
//! customer on one snapshot day. Only what happened before the snapshot day is read here.
use super::spec::ResolvedSpec;
use super::store::{CustomerView, Timeline};
use super::subscriptions::{SubscriberState, SubscriptionFields};
use crate::time::day_of;

#[derive(Debug, Clone)]
pub enum Metric {
    /// Days since the last event (or since first seen, before any event).
    Recency,
    /// Days since first seen.
    Tenure,
    /// Events of a channel in the window (None: all before the snapshot).
    Count {
        channel: usize,
        days: Option<u32>,
    },
    Value {
        channel: usize,
        days: Option<u32>,
    },
    /// Value per event before the snapshot.
    AvgValue,
    ActiveDays(u32),
    /// Distinct users with an event in the window (None: all before the snapshot).
    Users(Option<u32>),
    /// Events of a channel in the window per distinct user in it; missing without users.
    PerUser {
        channel: usize,
        days: u32,
    },
    /// (events in the window + 1) / (events in the window before it + 1).
    Trend(u32),
    EarlyEvents,
    EarlyValue,
    Mrr,
    Plan,
    Discount,
    MonthsSubscribed,
    /// ln(1 + x) of an earlier column, keeping the sign for negative values.
    Log(usize),
    /// An earlier column over another; missing when the denominator is 0.
    Ratio(usize, usize),
}

#[derive(Debug, Clone)]
pub struct MetricColumn {
    pub name: String,
    pub metric: Metric,
}

/// What the data offers, which decides which metrics exist.
#[derive(Debug, Clone, Copy)]
pub struct Available {
    pub values: bool,
    /// The log has a user column.
    pub users: bool,
    pub subscriptions: Option<SubscriptionFields>,
}

/// The metric columns in output order.
pub fn columns(r: &ResolvedSpec, has: Available) -> Result<Vec<MetricColumn>, String> {
    let m = &r.spec.metrics;
    let mut cols = Vec::new();
    let mut add = |name: String, metric: Metric| cols.push(MetricColumn { name, metric });
    if m.recency {
        add("days_since_last_event".into(), Metric::Recency);
    }
    if m.tenure {
        add("tenure_days".into(), Metric::Tenure);
    }
    let monetary = m.monetary && has.values;
    for (channel, stem) in std::iter::once((0, "events".to_string())).chain(
        m.event_types
            .iter()
            .enumerate()
            .map(|(i, t)| (i + 1, t.stem())),
    ) {
        if m.frequency || channel > 0 {
            add(
                format!("{stem}_total"),
                Metric::Count {
                    channel,
                    days: None,
                },
            );
            for &w in &r.windows {
                add(
                    format!("{stem}_{w}d"),
                    Metric::Count {
                        channel,
                        days: Some(w),
                    },
                );
            }
        }
        if monetary {
            let vstem = if channel == 0 {
                "value".to_string()
            } else {
                format!("{stem}_value")
            };
            add(
                format!("{vstem}_total"),
                Metric::Value {
                    channel,
                    days: None,
                },
            );
            for &w in &r.windows {
                add(
                    format!("{vstem}_{w}d"),
                    Metric::Value {
                        channel,
                        days: Some(w),
                    },
                );
            }
        }
    }
    if monetary {
        add("avg_value".into(), Metric::AvgValue);
    }
    if m.active_days {
        for &w in &r.windows {
            add(format!("active_days_{w}d"), Metric::ActiveDays(w));
        }
    }
    if has.users && m.per_user {
        add("users_total".into(), Metric::Users(None));
        for &w in &r.windows {
            add(format!("users_{w}d"), Metric::Users(Some(w)));
        }
        for (channel, stem) in std::iter::once((0, "events".to_string())).chain(
            m.event_types
                .iter()
                .enumerate()
                .map(|(i, t)| (i + 1, t.stem())),
        ) {
            for &w in &r.windows {
                add(
                    format!("{stem}_per_user_{w}d"),
                    Metric::PerUser { channel, days: w },
                );
            }
        }
    }
    for &w in &r.trend {
        add(format!("trend_{w}d"), Metric::Trend(w));
    }
    if r.early_life > 0 {
        add(
            format!("early_events_{}d", r.early_life),
            Metric::EarlyEvents,
        );
        if monetary {
            add(format!("early_value_{}d", r.early_life), Metric::EarlyValue);
        }
    }
    if let Some(f) = has.subscriptions {
        if f.mrr {
            add("mrr".into(), Metric::Mrr);
        }
        if f.plan {
            add("plan".into(), Metric::Plan);
        }
        if f.discount {
            add("discount".into(), Metric::Discount);
        }
        add("months_subscribed".into(), Metric::MonthsSubscribed);
    }
    let find = |cols: &[MetricColumn], name: &str, key: &str| {
        cols.iter()
            .position(|c| c.name == name)
            .filter(|&i| !matches!(cols[i].metric, Metric::Plan))
            .ok_or_else(|| {
                let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "{key}: no numeric metric '{name}'; the metrics are: {}",
                    names.join(", ")
                )
            })
    };
    for name in &m.log {
        let i = find(&cols, name, "metrics.log")?;
        cols.push(MetricColumn {
            name: format!("log_{name}"),
            metric: Metric::Log(i),
        });
    }
    for ratio in &m.ratio {
        let n = find(&cols, &ratio.numerator, "metrics.ratio numerator")?;
        let d = find(&cols, &ratio.denominator, "metrics.ratio denominator")?;
        cols.push(MetricColumn {
            name: ratio.name.clone(),
            metric: Metric::Ratio(n, d),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for c in &cols {
        if !seen.insert(c.name.as_str())
            || ["customer_id", "snapshot", "churned"].contains(&c.name.as_str())
        {
            return Err(format!("two columns would be named '{}'", c.name));
        }
    }
    Ok(cols)
}

/// Computes one row's metrics into `out` (NaN = missing; the plan column is NaN here and its
/// text comes from `sub`).
pub fn compute(
    cols: &[MetricColumn],
    v: &CustomerView<'_>,
    sub: Option<&SubscriberState<'_>>,
    snapshot: i64,
    tl: &Timeline,
    out: &mut Vec<f64>,
) {
    out.clear();
    let s = snapshot;
    let before = tl.before(s);
    for c in cols {
        let x = match c.metric {
            Metric::Recency => match v.latest(before.clone()) {
                Some(t) => (s - day_of(t)) as f64,
                None => (s - v.first_day.min(s)) as f64,
            },
            Metric::Tenure => (s - v.first_day.min(s)) as f64,
            Metric::Count { channel, days } => v.count(channel, span(tl, s, days)) as f64,
            Metric::Value { channel, days } => v.value(channel, span(tl, s, days)),
            Metric::AvgValue => {
                let n = v.count(0, before.clone());
                if n == 0 {
                    f64::NAN
                } else {
                    v.value(0, before.clone()) / n as f64
                }
            }
            Metric::ActiveDays(w) => f64::from(v.active_days(tl, s - i64::from(w), s)),
            Metric::Users(days) => v.users(span(tl, s, days)) as f64,
            Metric::PerUser { channel, days } => {
                let segs = span(tl, s, Some(days));
                match v.users(segs.clone()) {
                    0 => f64::NAN,
                    n => v.count(channel, segs) as f64 / n as f64,
                }
            }
            Metric::Trend(w) => {
                let w = i64::from(w);
                let recent = v.count(0, tl.window(s - w, s)) as f64;
                let previous = v.count(0, tl.window(s - 2 * w, s - w)) as f64;
                (recent + 1.0) / (previous + 1.0)
            }
            Metric::EarlyEvents => v.early(s).0 as f64,
            Metric::EarlyValue => v.early(s).1,
            Metric::Mrr => sub.map_or(f64::NAN, |x| x.mrr),
            Metric::Discount => sub.map_or(f64::NAN, |x| x.discount),
            Metric::MonthsSubscribed => sub.map_or(0.0, |x| x.months),
            Metric::Plan => f64::NAN,
            Metric::Log(i) => {
                let x = out[i];
                x.signum() * x.abs().ln_1p()
            }
            Metric::Ratio(n, d) => {
                if out[d] == 0.0 {
                    f64::NAN
                } else {
                    out[n] / out[d]
                }
            }
        };
        out.push(x);
    }
}

fn span(tl: &Timeline, s: i64, days: Option<u32>) -> std::ops::Range<usize> {
    match days {
        Some(w) => tl.window(s - i64::from(w), s),
        None => tl.before(s),
    }
}
