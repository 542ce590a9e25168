//! Usage health and the next action. Health is how a customer's usage compares with the
//! training customers': the weighted mean of their percentiles on the usage measures, each
//! oriented so that higher is healthier (the direction learned from the training labels), 0-100,
//! in bands RED / YELLOW / GREEN. The action comes from risk and health together:
//!
//! | risk tier       | health RED | health YELLOW or GREEN |
//! |-----------------|------------|------------------------|
//! | MEDIUM or HIGH  | RESCUE     | RENEW                  |
//! | LOW             | ONBOARD    | GROW                   |
//!
//! At risk and not using it: rescue. At risk while using it: the commercial side needs work
//! (renew). Not at risk but not using it: teach them (onboard). Otherwise grow the account.
//!
//! A percentile is the mid-rank of the value among the 99 stored training percentiles:
//! `100 * (#{p < x} + #{p <= x}) / (2 * 99)`, so a value tied with many training values (a zero
//! usage shared by a third of the base) sits in the middle of its tie, not at its top. SQL
//! export reproduces it with the same comparisons.
use super::RiskTier;
use super::file::{HealthEntry, UsageMeasure};
use crate::schema::{FeatureKind, FeatureSchema, Resolved};

/// Percentiles stored per measure: the 1st to the 99th.
pub const PERCENTILES: usize = 99;
/// `--health-bands` default: RED below 40, YELLOW below 70, GREEN from 70.
pub const DEFAULT_BANDS: [f64; 2] = [40.0, 70.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthBand {
    Red,
    Yellow,
    Green,
}

impl HealthBand {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthBand::Red => "RED",
            HealthBand::Yellow => "YELLOW",
            HealthBand::Green => "GREEN",
        }
    }

    pub fn of(score: f64, bands: [f64; 2]) -> HealthBand {
        if score < bands[0] {
            HealthBand::Red
        } else if score < bands[1] {
            HealthBand::Yellow
        } else {
            HealthBand::Green
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Rescue,
    Renew,
    Onboard,
    Grow,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Rescue, Action::Renew, Action::Onboard, Action::Grow];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rescue => "RESCUE",
            Action::Renew => "RENEW",
            Action::Onboard => "ONBOARD",
            Action::Grow => "GROW",
        }
    }

    /// The table in the module documentation.
    pub fn of(tier: RiskTier, band: HealthBand) -> Action {
        let at_risk = tier != RiskTier::Low;
        match (at_risk, band == HealthBand::Red) {
            (true, true) => Action::Rescue,
            (true, false) => Action::Renew,
            (false, true) => Action::Onboard,
            (false, false) => Action::Grow,
        }
    }
}

/// One row's health and action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthScore {
    pub score: f64,
    pub band: HealthBand,
    pub action: Action,
}

/// A measure where the customer stands low: the feature (schema index), the value used and the
/// customer's oriented percentile on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthReason {
    pub feature: usize,
    pub value: f64,
    pub percentile: f64,
}

/// A measure compiled for scoring: the distinct stored percentiles and, for each, the oriented
/// percentile of a value equal to it and of a value just below it (and past the last), so a
/// score is one search over the distinct values: the same numbers [`percentile`] gives.
#[derive(Debug, Clone)]
struct Measure {
    feature: usize,
    weight: f64,
    distinct: Vec<f64>,
    /// `at[j]`: the oriented percentile of `x == distinct[j]`.
    at: Vec<f64>,
    /// `below[j]`: of `distinct[j-1] < x < distinct[j]` (`below[0]`: x under them all; the last:
    /// x above them all).
    below: Vec<f64>,
    /// A guide to where x falls: `GRID` equal cells from the first distinct value to the last,
    /// each holding the number of distinct values below the cell's start. It only narrows the
    /// search; the walk after it makes the answer exact whatever the rounding.
    grid: Vec<u32>,
    grid_lo: f64,
    grid_scale: f64,
    /// The oriented percentile of each integer step from the first stored value on (at most
    /// `INTS` of them), so a count, the usual usage measure, is one load. Filled from the search
    /// itself, so it gives the same numbers; other values take the search.
    ints: Vec<f64>,
    ints_lo: f64,
}

/// Cells of a measure's guide: about one distinct value each at most.
const GRID: usize = 128;
/// Integer steps a measure's direct table covers (2 KB, so a model's tables stay in cache).
const INTS: usize = 256;

impl Measure {
    fn new(feature: usize, m: &UsageMeasure) -> Measure {
        let e = &m.percentiles;
        let mut distinct: Vec<f64> = e.clone();
        distinct.dedup();
        let at = distinct
            .iter()
            .map(|&x| oriented(m.direction, percentile(e, x)))
            .collect();
        let gap = |lt: usize| oriented(m.direction, mid_rank(lt, lt, e.len()));
        let mut below: Vec<f64> = distinct
            .iter()
            .map(|&x| gap(e.partition_point(|v| *v < x)))
            .collect();
        below.push(gap(e.len()));
        let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
        let grid_scale = if hi > lo {
            GRID as f64 / (hi - lo)
        } else {
            0.0
        };
        let grid = (0..GRID)
            .map(|c| {
                let start = lo + c as f64 / grid_scale.max(f64::MIN_POSITIVE);
                distinct.partition_point(|v| *v < start) as u32
            })
            .collect();
        let mut m = Measure {
            feature,
            weight: m.weight,
            distinct,
            at,
            below,
            grid,
            grid_lo: lo,
            grid_scale,
            ints: Vec::new(),
            ints_lo: lo,
        };
        // Integer steps lo, lo + 1, ... up to hi, at most INTS of them.
        let steps = (hi - lo).min((INTS - 1) as f64) as usize + 1;
        m.ints = (0..steps).map(|k| m.searched(lo + k as f64)).collect();
        m
    }

    /// The number of distinct values below x: a guess from the guide, walked to the exact count.
    #[inline]
    fn count_below(&self, x: f64) -> usize {
        let d = &self.distinct;
        let cell = ((x - self.grid_lo) * self.grid_scale).clamp(0.0, (GRID - 1) as f64) as usize;
        let mut j = self.grid[cell] as usize;
        while j > 0 && d[j - 1] >= x {
            j -= 1;
        }
        while j < d.len() && d[j] < x {
            j += 1;
        }
        j
    }

    #[inline]
    fn oriented_percentile(&self, x: f64) -> f64 {
        let k = x - self.ints_lo;
        if k >= 0.0 && k < self.ints.len() as f64 && k == k.trunc() {
            return self.ints[k as usize];
        }
        self.searched(x)
    }

    #[inline]
    fn searched(&self, x: f64) -> f64 {
        let j = self.count_below(x);
        if j < self.distinct.len() && self.distinct[j] == x {
            self.at[j]
        } else {
            self.below[j]
        }
    }
}

/// A model's health as compiled for scoring.
#[derive(Debug, Clone)]
pub struct Health {
    measures: Vec<Measure>,
    total_weight: f64,
    bands: [f64; 2],
}

/// The mid-rank percentile of `x` among `edges` (ascending), 0-100: the rule every door and
/// `export-sql` follow.
pub fn percentile(edges: &[f64], x: f64) -> f64 {
    mid_rank(
        edges.partition_point(|e| *e < x),
        edges.partition_point(|e| *e <= x),
        edges.len(),
    )
}

/// `100 · (below + at_or_below) / (2n)`, in that order of operations.
#[inline]
fn mid_rank(below: usize, at_or_below: usize, n: usize) -> f64 {
    100.0 * (below + at_or_below) as f64 / (2 * n) as f64
}

/// `percentile` turned so that higher is healthier.
#[inline]
pub fn oriented(direction: i8, p: f64) -> f64 {
    if direction < 0 { 100.0 - p } else { p }
}

impl Health {
    /// Checks the file's health against the schema; `Err` names the measure and what is wrong.
    pub fn compile(h: &HealthEntry, schema: &FeatureSchema) -> Result<Health, String> {
        let [red, green] = h.bands;
        if !(0.0..=100.0).contains(&red) || !(red..=100.0).contains(&green) {
            return Err(format!(
                "health bands {red}, {green}: expected 0 <= RED cut-off <= GREEN cut-off <= 100"
            ));
        }
        if h.measures.is_empty() {
            return Err("health has no usage measures".into());
        }
        let mut measures = Vec::with_capacity(h.measures.len());
        for m in &h.measures {
            let what = |e: &str| format!("usage measure '{}': {e}", m.feature);
            let i = schema
                .index_of(&m.feature)
                .ok_or_else(|| what("not a feature of the model"))?;
            if !matches!(schema.features()[i].kind, FeatureKind::Numeric(_)) {
                return Err(what("a usage measure must be a numeric feature"));
            }
            if m.direction != 1 && m.direction != -1 {
                return Err(what("direction must be 1 or -1"));
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return Err(what("weight must be a positive number"));
            }
            if m.percentiles.len() != PERCENTILES
                || m.percentiles.iter().any(|p| !p.is_finite())
                || m.percentiles.windows(2).any(|w| w[0] > w[1])
            {
                return Err(what(&format!(
                    "percentiles must be {PERCENTILES} finite ascending numbers"
                )));
            }
            measures.push(Measure::new(i, m));
        }
        let total_weight = measures.iter().map(|m| m.weight).sum();
        Ok(Health {
            measures,
            total_weight,
            bands: h.bands,
        })
    }

    /// Health and action of a row whose features resolved to `resolved` (schema order).
    #[inline]
    pub fn score(&self, resolved: &[Resolved], tier: RiskTier) -> HealthScore {
        let mut sum = 0.0;
        for m in &self.measures {
            sum += m.weight * self.oriented_at(m, resolved);
        }
        let score = sum / self.total_weight;
        let band = HealthBand::of(score, self.bands);
        HealthScore {
            score,
            band,
            action: Action::of(tier, band),
        }
    }

    #[inline]
    fn oriented_at(&self, m: &Measure, resolved: &[Resolved]) -> f64 {
        match resolved[m.feature] {
            Resolved::Number(x) => m.oriented_percentile(x),
            Resolved::Level(_) => unreachable!("usage measures are numeric"),
        }
    }

    /// The `k` measures where the row stands lowest (oriented percentile, lowest first; ties in
    /// file order).
    pub fn reasons(&self, resolved: &[Resolved], k: usize) -> Vec<HealthReason> {
        let mut all: Vec<HealthReason> = self
            .measures
            .iter()
            .map(|m| HealthReason {
                feature: m.feature,
                value: match resolved[m.feature] {
                    Resolved::Number(x) => x,
                    Resolved::Level(_) => unreachable!("usage measures are numeric"),
                },
                percentile: self.oriented_at(m, resolved),
            })
            .collect();
        all.sort_by(|a, b| a.percentile.total_cmp(&b.percentile));
        all.truncate(k);
        all
    }
}

/// Fits one usage measure from its training values (imputed as scoring imputes) and whether each
/// row stayed: the 99 percentiles (linear between order statistics) and the direction, from the
/// measure's AUC for staying.
pub fn fit_measure(feature: &str, values: &[f64], stayed: &[bool], weight: f64) -> UsageMeasure {
    debug_assert_eq!(values.len(), stayed.len());
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let percentiles = (1..=PERCENTILES)
        .map(|k| {
            if n == 0 {
                return 0.0;
            }
            let at = k as f64 / 100.0 * (n - 1) as f64;
            let lo = at.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let v = sorted[lo] + (at - lo as f64) * (sorted[hi] - sorted[lo]);
            // Equal neighbours give exactly their value, so ties stay ties.
            if sorted[lo] == sorted[hi] {
                sorted[lo]
            } else {
                v
            }
        })
        .collect::<Vec<f64>>();
    let auc = super::metrics::auc(values, stayed);
    let auc = if auc.is_nan() { 0.5 } else { auc };
    let direction = if auc >= 0.5 { 1 } else { -1 };
    UsageMeasure {
        feature: feature.to_string(),
        direction,
        weight,
        staying_auc: auc.max(1.0 - auc),
        percentiles,
    }
}

/// The default usage measures of a table made by `churn features`: its activity metrics (event
/// counts, active days, and each event type's counts and values, in every window and in total),
/// but not recency, tenure, trends, early life, subscription facts or derived columns.
pub fn is_activity_metric(name: &str) -> bool {
    let fixed_not_usage = [
        "days_since_last_event",
        "tenure_days",
        "avg_value",
        "mrr",
        "discount",
        "months_subscribed",
    ];
    if fixed_not_usage.contains(&name)
        || ["trend_", "early_", "log_"]
            .iter()
            .any(|p| name.starts_with(p))
    {
        return false;
    }
    // <stem>_total or <stem>_<days>d
    if name.ends_with("_total") && name.len() > "_total".len() {
        return true;
    }
    match name.rsplit_once('_') {
        Some((stem, w)) => {
            !stem.is_empty()
                && w.len() >= 2
                && w.ends_with('d')
                && w[..w.len() - 1].bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_mid_ranks_and_ties_sit_in_the_middle() {
        let edges: Vec<f64> = (1..=99).map(f64::from).collect();
        assert_eq!(percentile(&edges, 0.0), 0.0);
        assert_eq!(percentile(&edges, 1000.0), 100.0);
        assert!((percentile(&edges, 50.0) - 50.0).abs() < 1e-12);
        // A third of the edges at zero: a zero sits at the middle of its tie.
        let mut tied = vec![0.0; 33];
        tied.extend((1..=66).map(f64::from));
        assert!((percentile(&tied, 0.0) - 100.0 * 33.0 / 198.0).abs() < 1e-12);
        assert_eq!(oriented(-1, 20.0), 80.0);
    }

    #[test]
    fn the_compiled_lookup_gives_the_percentile_exactly() {
        let mut edges = vec![0.0; 33];
        edges.extend((0..66).map(|i| f64::from(i / 4) * 1.5));
        for direction in [1i8, -1] {
            let m = UsageMeasure {
                feature: "x".into(),
                direction,
                weight: 1.0,
                staying_auc: 0.6,
                percentiles: edges.clone(),
            };
            let c = Measure::new(0, &m);
            for k in -10..300 {
                let x = f64::from(k) * 0.125;
                let want = oriented(direction, percentile(&edges, x));
                assert_eq!(c.oriented_percentile(x).to_bits(), want.to_bits(), "{x}");
            }
        }
        // Continuous, skewed values, one value for all, and values far outside the range.
        let skewed: Vec<f64> = (1..=99).map(|k| (f64::from(k) / 7.0).exp()).collect();
        for edges in [skewed, vec![3.0; 99]] {
            let m = UsageMeasure {
                feature: "x".into(),
                direction: 1,
                weight: 1.0,
                staying_auc: 0.6,
                percentiles: edges.clone(),
            };
            let c = Measure::new(0, &m);
            let mut probes: Vec<f64> = edges.clone();
            probes.extend(edges.iter().map(|e| e * (1.0 + 1e-15)));
            probes.extend(edges.iter().map(|e| e * (1.0 - 1e-15)));
            probes.extend([-1e300, -1.0, 0.0, 1e300, f64::MAX, f64::MIN]);
            for x in probes {
                let want = percentile(&edges, x);
                assert_eq!(c.oriented_percentile(x).to_bits(), want.to_bits(), "{x}");
            }
        }
    }

    #[test]
    fn a_count_takes_its_direct_table_and_gets_the_same_numbers() {
        // Counts with a tie at zero, spanning more integers than the table holds.
        let mut edges = vec![0.0; 20];
        edges.extend((1..=79).map(|k| f64::from(k * k)));
        for direction in [1i8, -1] {
            let m = UsageMeasure {
                feature: "x".into(),
                direction,
                weight: 1.0,
                staying_auc: 0.6,
                percentiles: edges.clone(),
            };
            let c = Measure::new(0, &m);
            assert_eq!(c.ints.len(), INTS);
            for k in -5..7000 {
                for x in [f64::from(k), f64::from(k) + 0.5] {
                    let want = oriented(direction, percentile(&edges, x));
                    assert_eq!(c.oriented_percentile(x).to_bits(), want.to_bits(), "{x}");
                }
            }
        }
    }

    #[test]
    fn the_action_table() {
        use Action::*;
        use HealthBand::*;
        let cases = [
            (RiskTier::High, Red, Rescue),
            (RiskTier::Medium, Red, Rescue),
            (RiskTier::High, Yellow, Renew),
            (RiskTier::Medium, Green, Renew),
            (RiskTier::Low, Red, Onboard),
            (RiskTier::Low, Yellow, Grow),
            (RiskTier::Low, Green, Grow),
        ];
        for (tier, band, action) in cases {
            assert_eq!(Action::of(tier, band), action, "{tier:?} {band:?}");
        }
        assert_eq!(HealthBand::of(39.99, DEFAULT_BANDS), Red);
        assert_eq!(HealthBand::of(40.0, DEFAULT_BANDS), Yellow);
        assert_eq!(HealthBand::of(70.0, DEFAULT_BANDS), Green);
    }

    #[test]
    fn the_direction_is_learned_from_who_stayed() {
        // More logins go with staying; more support tickets with leaving.
        let logins: Vec<f64> = (0..200).map(|i| f64::from(i % 20)).collect();
        let stayed: Vec<bool> = logins.iter().map(|&x| x >= 8.0).collect();
        let m = fit_measure("logins", &logins, &stayed, 1.0);
        assert_eq!(m.direction, 1);
        assert!(m.staying_auc > 0.9);
        assert_eq!(m.percentiles.len(), PERCENTILES);
        assert!(m.percentiles.windows(2).all(|w| w[0] <= w[1]));
        let tickets: Vec<f64> = logins.iter().map(|x| 20.0 - x).collect();
        let m = fit_measure("tickets", &tickets, &stayed, 1.0);
        assert_eq!(m.direction, -1);
        assert!(m.staying_auc > 0.9);
    }

    #[test]
    fn activity_metrics_are_the_default_usage() {
        for yes in [
            "events_7d",
            "events_total",
            "active_days_28d",
            "like_28d",
            "type_2_7d",
            "value_90d",
            "buy_value_total",
        ] {
            assert!(is_activity_metric(yes), "{yes}");
        }
        for no in [
            "days_since_last_event",
            "tenure_days",
            "trend_28d",
            "early_events_30d",
            "log_events_28d",
            "mrr",
            "plan",
            "dislikes_per_like_28",
            "_total",
        ] {
            assert!(!is_activity_metric(no), "{no}");
        }
    }
}
