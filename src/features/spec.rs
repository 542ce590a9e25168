//! The feature spec: which columns hold what, and which metrics to compute. A TOML file; every
//! key is optional, and an empty spec is the default (recency, frequency, monetary, trend, tenure,
//! active days and early life over all events). README.md documents the format.
use crate::error::{Error, Result};
use crate::time::{parse_days, parse_offset};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureSpec {
    pub events: EventColumns,
    pub subscriptions: SubscriptionColumns,
    pub time: TimeSpec,
    pub population: PopulationSpec,
    pub label: LabelSpec,
    pub metrics: MetricsSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventColumns {
    pub customer_id: String,
    pub timestamp: String,
    /// Optional in the data: without it every event is of one kind.
    pub event_type: String,
    /// Optional in the data: without it there are no value metrics.
    pub value: String,
    /// Optional in the data: the user (seat) of the account who acted; with it, distinct users
    /// and per-user rates per window.
    pub user_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionColumns {
    pub customer_id: String,
    pub plan: String,
    pub start_date: String,
    /// An empty end date is a subscription still running.
    pub end_date: String,
    pub mrr: String,
    /// Optional in the data.
    pub discount: String,
    /// A subscription starting at most this long after the previous one ended renews it.
    pub renewal_grace: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSpec {
    /// The local frame: timestamps without a zone are in it, and snapshot days start at its
    /// midnight.
    pub utc_offset: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationSpec {
    /// Without subscriptions, a customer is in a snapshot when their latest event is at most
    /// this long before it (default: any event before it).
    pub active_within: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelSpec {
    /// Event types that count as activity for the no-activity label (default: every event).
    pub activity: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    /// Windows before the snapshot for counts, values and active days.
    pub windows: Vec<String>,
    /// Windows compared with the window before them: (recent + 1) / (previous + 1).
    pub trend: Vec<String>,
    /// Days after the customer was first seen that count as early life ("0d" for none).
    pub early_life: String,
    pub recency: bool,
    pub tenure: bool,
    pub frequency: bool,
    pub monetary: bool,
    pub active_days: bool,
    /// Where the log has a user column: distinct users before the snapshot and in each window,
    /// and events (and each event type) per user in each window.
    pub per_user: bool,
    /// Event types with their own counts (and values) per window. When none is named and the
    /// log has a type column, every type with enough events is taken (see [`choose_types`]).
    pub event_types: Vec<EventTypeSpec>,
    /// Whether a spec naming no event types takes them from the log.
    pub auto_types: bool,
    /// Taken from the log: types with at least this share of the events...
    pub min_type_share: f64,
    /// ...the most frequent this many at most...
    pub max_types: usize,
    /// ...except these.
    pub skip_types: Vec<String>,
    /// Adds `log_<metric>` = ln(1 + x) for each named metric.
    pub log: Vec<String>,
    pub ratio: Vec<RatioSpec>,
}

/// An event type named by its value in the data, optionally with a column-name stem.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EventTypeSpec {
    Value(String),
    Named { value: String, name: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioSpec {
    pub name: String,
    pub numerator: String,
    pub denominator: String,
}

impl Default for EventColumns {
    fn default() -> Self {
        EventColumns {
            customer_id: "customer_id".into(),
            timestamp: "timestamp".into(),
            event_type: "event_type".into(),
            value: "value".into(),
            user_id: "user_id".into(),
        }
    }
}

impl Default for SubscriptionColumns {
    fn default() -> Self {
        SubscriptionColumns {
            customer_id: "customer_id".into(),
            plan: "plan".into(),
            start_date: "start_date".into(),
            end_date: "end_date".into(),
            mrr: "mrr".into(),
            discount: "discount".into(),
            renewal_grace: "1d".into(),
        }
    }
}

impl Default for TimeSpec {
    fn default() -> Self {
        TimeSpec {
            utc_offset: "+00:00".into(),
        }
    }
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            windows: vec!["7d".into(), "28d".into(), "90d".into()],
            trend: vec!["28d".into()],
            early_life: "30d".into(),
            recency: true,
            tenure: true,
            frequency: true,
            monetary: true,
            active_days: true,
            per_user: true,
            event_types: Vec::new(),
            auto_types: true,
            min_type_share: 0.001,
            max_types: 30,
            skip_types: Vec::new(),
            log: Vec::new(),
            ratio: Vec::new(),
        }
    }
}

impl EventTypeSpec {
    /// The event type's value in the data.
    pub fn value(&self) -> &str {
        match self {
            EventTypeSpec::Value(v) | EventTypeSpec::Named { value: v, .. } => v,
        }
    }

    /// The stem of its column names: the given name, or the value made into an identifier.
    pub fn stem(&self) -> String {
        match self {
            EventTypeSpec::Named { name, .. } => name.clone(),
            EventTypeSpec::Value(v) => {
                let s: String = v
                    .trim()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
                    format!("type_{s}")
                } else {
                    s
                }
            }
        }
    }
}

/// An event type of the log as `churn features` weighed it for its own columns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TypeChoice {
    /// The type's value in the log.
    pub value: String,
    /// The stem of its columns (`<name>_total`, `<name>_<w>d`, ...); empty when left out.
    pub name: String,
    pub events: u64,
    /// Why it has no columns (None: it has them).
    pub left_out: Option<String>,
}

/// Column stems the fixed metrics use (`events_7d`, `value_total`, `trend_28d`, ...): a type
/// whose own stem is one of them is named `type_<stem>` instead.
const RESERVED_STEMS: [&str; 6] = [
    "events",
    "value",
    "trend",
    "active_days",
    "early_events",
    "early_value",
];

/// The event types taken from a log whose spec names none: every type with at least
/// `min_type_share` of the events (counted over `counts`, most frequent first), up to
/// `max_types`, less `skip_types`. Each is named from its value as [`EventTypeSpec::stem`] does,
/// with `type_` before a stem the fixed metrics use and `_2`, `_3`, ... after a stem already
/// taken. Returns every type with what became of it, in `counts` order.
pub fn choose_types(counts: &[(String, u64)], m: &MetricsSpec) -> Vec<TypeChoice> {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let mut taken = std::collections::HashSet::new();
    let mut kept = 0;
    counts
        .iter()
        .map(|(value, events)| {
            let share = *events as f64 / total.max(1) as f64;
            let left_out = if m.skip_types.iter().any(|t| t.trim() == value) {
                Some("in metrics.skip_types".to_string())
            } else if share < m.min_type_share {
                Some(format!(
                    "{:.3}% of the events, under metrics.min_type_share ({}%)",
                    100.0 * share,
                    100.0 * m.min_type_share
                ))
            } else if kept >= m.max_types {
                Some(format!("past metrics.max_types ({})", m.max_types))
            } else {
                None
            };
            let name = if left_out.is_none() {
                kept += 1;
                let mut stem = EventTypeSpec::Value(value.clone()).stem();
                if RESERVED_STEMS.contains(&stem.as_str()) {
                    stem = format!("type_{stem}");
                }
                let mut name = stem.clone();
                let mut k = 2;
                while !taken.insert(name.clone()) {
                    name = format!("{stem}_{k}");
                    k += 1;
                }
                name
            } else {
                String::new()
            };
            TypeChoice {
                value: value.clone(),
                name,
                events: *events,
                left_out,
            }
        })
        .collect()
}

/// The spec with its durations and offset checked and turned into numbers.
#[derive(Debug, Clone)]
pub struct ResolvedSpec {
    pub spec: FeatureSpec,
    pub windows: Vec<u32>,
    pub trend: Vec<u32>,
    pub early_life: u32,
    pub utc_offset: i64,
    pub renewal_grace: u32,
    pub active_within: Option<u32>,
}

impl FeatureSpec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<ResolvedSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let spec: FeatureSpec = toml::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a valid feature spec: {e}")))?;
        spec.resolve()
            .map_err(|m| Error::data(path, format!("feature spec: {m}")))
    }

    /// Checks the spec; the message names the offending key.
    pub fn resolve(self) -> std::result::Result<ResolvedSpec, String> {
        let days = |key: &str, v: &str, allow_zero: bool| -> std::result::Result<u32, String> {
            match parse_days(v) {
                Some(d) if d > 0 || allow_zero => Ok(d),
                _ => Err(format!(
                    "{key} = \"{v}\": expected a number of days such as \"28d\" or weeks such as \"4w\"{}",
                    if allow_zero { "" } else { ", above zero" }
                )),
            }
        };
        let m = &self.metrics;
        let mut windows = m
            .windows
            .iter()
            .map(|w| days("metrics.windows", w, false))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        windows.sort_unstable();
        windows.dedup();
        let mut trend = m
            .trend
            .iter()
            .map(|w| days("metrics.trend", w, false))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        trend.sort_unstable();
        trend.dedup();
        let early_life = days("metrics.early_life", &m.early_life, true)?;
        let renewal_grace = days(
            "subscriptions.renewal_grace",
            &self.subscriptions.renewal_grace,
            true,
        )?;
        let active_within = match &self.population.active_within {
            Some(v) => Some(days("population.active_within", v, false)?),
            None => None,
        };
        let utc_offset = parse_offset(self.time.utc_offset.trim().as_bytes()).ok_or_else(|| {
            format!(
                "time.utc_offset = \"{}\": expected an offset such as \"+02:00\" or \"Z\"",
                self.time.utc_offset
            )
        })?;
        for (key, v) in [
            ("events.customer_id", &self.events.customer_id),
            ("events.timestamp", &self.events.timestamp),
            ("subscriptions.customer_id", &self.subscriptions.customer_id),
            ("subscriptions.start_date", &self.subscriptions.start_date),
            ("subscriptions.end_date", &self.subscriptions.end_date),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{key} must name a column"));
            }
        }
        if !(0.0..=1.0).contains(&m.min_type_share) {
            return Err(format!(
                "metrics.min_type_share = {}: expected a share between 0 and 1",
                m.min_type_share
            ));
        }
        let mut stems = std::collections::HashSet::new();
        for t in &m.event_types {
            let stem = t.stem();
            if !stems.insert(stem.clone()) {
                return Err(format!(
                    "metrics.event_types: two event types share the name '{stem}'"
                ));
            }
        }
        Ok(ResolvedSpec {
            spec: self,
            windows,
            trend,
            early_life,
            utc_offset,
            renewal_grace,
            active_within,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_spec_is_the_default() {
        let s: FeatureSpec = toml::from_str("").unwrap();
        let r = s.resolve().unwrap();
        assert_eq!(r.windows, vec![7, 28, 90]);
        assert_eq!(r.trend, vec![28]);
        assert_eq!(r.early_life, 30);
        assert_eq!(r.spec.events.timestamp, "timestamp");
    }

    #[test]
    fn full_spec_parses() {
        let s: FeatureSpec = toml::from_str(
            r#"
            [events]
            timestamp = "date"
            value = "dollar_value"
            [time]
            utc_offset = "-05:00"
            [label]
            activity = ["purchase"]
            [metrics]
            windows = ["4w", "90d", "28d"]
            event_types = ["0", { value = "2", name = "like" }]
            log = ["events_90d"]
            [[metrics.ratio]]
            name = "likes_per_event"
            numerator = "like_28d"
            denominator = "events_28d"
            "#,
        )
        .unwrap();
        let r = s.resolve().unwrap();
        assert_eq!(r.windows, vec![28, 90]);
        assert_eq!(r.utc_offset, -5 * 3600);
        let stems: Vec<String> = r
            .spec
            .metrics
            .event_types
            .iter()
            .map(|t| t.stem())
            .collect();
        assert_eq!(stems, ["type_0", "like"]);
    }

    fn counts(c: &[(&str, u64)]) -> Vec<(String, u64)> {
        c.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn types_from_the_log_keep_the_frequent_ones_named_apart() {
        let mut m = MetricsSpec {
            min_type_share: 0.01,
            max_types: 4,
            skip_types: vec!["heartbeat".into()],
            ..Default::default()
        };
        let c = counts(&[
            ("heartbeat", 5000),
            ("Log In", 3000),
            ("log-in", 1000),
            ("events", 500),
            ("7", 400),
            ("export", 99),
            ("rare", 1),
        ]);
        let got = choose_types(&c, &m);
        let named: Vec<(&str, &str)> = got
            .iter()
            .filter(|t| t.left_out.is_none())
            .map(|t| (t.value.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("Log In", "log_in"),
                ("log-in", "log_in_2"),
                ("events", "type_events"),
                ("7", "type_7")
            ]
        );
        assert!(got[0].left_out.as_deref().unwrap().contains("skip_types"));
        // 99 of 10,000 events is under 1%; the rare one too.
        assert!(
            got[5]
                .left_out
                .as_deref()
                .unwrap()
                .contains("min_type_share")
        );
        assert!(
            got[6]
                .left_out
                .as_deref()
                .unwrap()
                .contains("min_type_share")
        );
        m.max_types = 2;
        m.min_type_share = 0.0;
        let got = choose_types(&c, &m);
        assert_eq!(got.iter().filter(|t| t.left_out.is_none()).count(), 2);
        assert!(got[3].left_out.as_deref().unwrap().contains("max_types"));
    }

    #[test]
    fn mistakes_name_the_key() {
        let bad = toml::from_str::<FeatureSpec>("[metrics]\nwindow = [\"7d\"]").unwrap_err();
        assert!(bad.to_string().contains("window"), "{bad}");
        let s: FeatureSpec = toml::from_str("[metrics]\nwindows = [\"3m\"]").unwrap();
        let e = s.resolve().unwrap_err();
        assert!(e.contains("metrics.windows = \"3m\""), "{e}");
        let s: FeatureSpec = toml::from_str("[time]\nutc_offset = \"CET\"").unwrap();
        assert!(s.resolve().unwrap_err().contains("time.utc_offset"));
    }
}
