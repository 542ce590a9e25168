//! Drift: whether the customers scored now look like the training customers.
//!
//! At training the model file keeps, per feature, the share of training rows in each bin: the
//! training decile edges of a numeric feature (bins closed below, as shapes are) plus a missing
//! bin; a categorical feature's levels plus an unseen bin and a missing bin. The training scores
//! keep their deciles the same way. A set of rows is binned by the one cell rule, through the
//! scratch `score_row` fills: a cell the rule imputed is missing, an unseen level is unseen.
//!
//! The population stability index of a feature is Σ (a − e) · ln(a / e) over its bins, `a` the
//! share of the rows now and `e` the training share, each share floored at [`SMOOTHING`] so that
//! an empty bin counts as a small share rather than an infinite term (the same floor Evidently
//! uses). Bands: stable below 0.1, moderate below 0.25, major from 0.25.
use super::additive::bin_of;
use super::evaluate::{RejectedRow, scan_table};
use super::file::{DriftEntry, FeatureReference, ScoreReference};
use super::{ChurnModel, RowScratch};
use crate::error::Result;
use crate::io::Table;
use crate::schema::{FeatureKind, Note, Resolved};
use serde::Serialize;

/// The least share a bin counts with in the PSI.
pub const SMOOTHING: f64 = 1e-4;
/// PSI from which drift is moderate, and major.
pub const MODERATE: f64 = 0.1;
pub const MAJOR: f64 = 0.25;
/// Bins of the training decile edges.
const DECILES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftBand {
    Stable,
    Moderate,
    Major,
}

impl DriftBand {
    pub fn of(psi: f64) -> DriftBand {
        if psi >= MAJOR {
            DriftBand::Major
        } else if psi >= MODERATE {
            DriftBand::Moderate
        } else {
            DriftBand::Stable
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DriftBand::Stable => "stable",
            DriftBand::Moderate => "moderate",
            DriftBand::Major => "major",
        }
    }

    pub fn parse(s: &str) -> Option<DriftBand> {
        match s {
            "stable" => Some(DriftBand::Stable),
            "moderate" => Some(DriftBand::Moderate),
            "major" => Some(DriftBand::Major),
            _ => None,
        }
    }
}

/// The PSI of `counts` (rows now per bin) against `reference` (training shares per bin).
pub fn psi(reference: &[f64], counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    reference
        .iter()
        .zip(counts)
        .map(|(&e, &c)| {
            let a = (c as f64 / total as f64).max(SMOOTHING);
            let e = e.max(SMOOTHING);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Training decile edges of sorted values: the 10th to 90th percentiles, repeats dropped.
fn decile_edges(sorted: &[f64]) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..DECILES)
        .map(|k| sorted[(sorted.len() * k / DECILES).min(sorted.len() - 1)])
        .collect();
    edges.dedup();
    // An edge at the minimum leaves its bin below empty: drop it.
    if edges.first() == sorted.first() {
        edges.remove(0);
    }
    edges
}

fn shares(counts: &[u64], total: u64) -> Vec<f64> {
    counts
        .iter()
        .map(|&c| c as f64 / total.max(1) as f64)
        .collect()
}

/// Bins per feature: numeric value bins then missing; categorical levels, unseen, missing.
fn bins_of(r: &FeatureReference) -> usize {
    r.shares.len() + if r.edges.is_some() { 1 } else { 2 }
}

/// The training share of each bin, in the layout of [`bins_of`].
fn reference_shares(r: &FeatureReference) -> Vec<f64> {
    let mut v = r.shares.clone();
    if r.edges.is_none() {
        v.push(0.0);
    }
    v.push(r.missing_share);
    v
}

/// The references of `model` on its training `table`: every row scored through `score_row`.
pub fn reference(model: &ChurnModel, table: &Table) -> Result<DriftEntry> {
    let schema = model.schema();
    let nf = schema.len();
    struct Part {
        numbers: Vec<Vec<f64>>,
        levels: Vec<Vec<u64>>,
        missing: Vec<u64>,
        p: Vec<f64>,
    }
    let scan = scan_table(
        model,
        table,
        || Part {
            numbers: vec![Vec::new(); nf],
            levels: schema
                .features()
                .iter()
                .map(|f| match &f.kind {
                    FeatureKind::Categorical(c) => vec![0; c.levels.len()],
                    FeatureKind::Numeric(_) => Vec::new(),
                })
                .collect(),
            missing: vec![0; nf],
            p: Vec::new(),
        },
        |part, _, s, score| {
            for k in 0..nf {
                if s.notes[k] == Note::Imputed {
                    part.missing[k] += 1;
                    continue;
                }
                match s.resolved[k] {
                    Resolved::Number(x) => part.numbers[k].push(x),
                    Resolved::Level(i) => part.levels[k][i] += 1,
                }
            }
            part.p.push(score.probability);
        },
    )?;
    let mut numbers = vec![Vec::new(); nf];
    let mut levels: Vec<Vec<u64>> = Vec::new();
    let mut missing = vec![0u64; nf];
    let mut p = Vec::new();
    for (j, part) in scan.parts.into_iter().enumerate() {
        for k in 0..nf {
            numbers[k].extend_from_slice(&part.numbers[k]);
            missing[k] += part.missing[k];
        }
        if j == 0 {
            levels = part.levels;
        } else {
            for (total, counts) in levels.iter_mut().zip(&part.levels) {
                for (t, c) in total.iter_mut().zip(counts) {
                    *t += c;
                }
            }
        }
        p.extend(part.p);
    }
    let rows = p.len() as u64;
    let features = schema
        .features()
        .iter()
        .enumerate()
        .map(|(k, f)| match &f.kind {
            FeatureKind::Numeric(_) => {
                let v = &mut numbers[k];
                v.sort_by(f64::total_cmp);
                let edges = if v.is_empty() {
                    Vec::new()
                } else {
                    decile_edges(v)
                };
                let mut counts = vec![0u64; edges.len() + 1];
                for &x in v.iter() {
                    counts[bin_of(&edges, x)] += 1;
                }
                FeatureReference {
                    feature: f.name.clone(),
                    edges: Some(edges),
                    shares: shares(&counts, rows),
                    missing_share: missing[k] as f64 / rows as f64,
                }
            }
            FeatureKind::Categorical(_) => FeatureReference {
                feature: f.name.clone(),
                edges: None,
                shares: shares(&levels[k], rows),
                missing_share: missing[k] as f64 / rows as f64,
            },
        })
        .collect();
    p.sort_by(f64::total_cmp);
    let edges = decile_edges(&p);
    let mut counts = vec![0u64; edges.len() + 1];
    for &x in &p {
        counts[bin_of(&edges, x)] += 1;
    }
    Ok(DriftEntry {
        rows,
        features,
        score: ScoreReference {
            edges,
            shares: shares(&counts, rows),
        },
    })
}

/// Rows counted into the bins of a model's references; counts of parts merge by addition.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCounts {
    pub rows: u64,
    /// Per feature, per bin (the layout of the reference plus unseen and missing bins).
    pub features: Vec<Vec<u64>>,
    /// Per bin of the training score deciles.
    pub score: Vec<u64>,
}

impl DriftCounts {
    pub fn new(d: &DriftEntry) -> DriftCounts {
        DriftCounts {
            rows: 0,
            features: d.features.iter().map(|r| vec![0; bins_of(r)]).collect(),
            score: vec![0; d.score.edges.len() + 1],
        }
    }

    /// Each feature's bin for the row just scored into `s` with probability `p`, then the score's
    /// bin: `out` gets one entry per feature plus one.
    pub fn bins(d: &DriftEntry, s: &RowScratch, p: f64, out: &mut Vec<u16>) {
        out.clear();
        for (k, r) in d.features.iter().enumerate() {
            let n = bins_of(r);
            let b = match (s.notes[k], s.resolved[k], &r.edges) {
                (Note::Imputed, _, _) => n - 1,
                (Note::Unseen, _, None) => n - 2,
                (_, Resolved::Number(x), Some(edges)) => bin_of(edges, x),
                (_, Resolved::Level(i), None) => i,
                // A reference of the other kind (a broken file): count it as missing.
                _ => n - 1,
            };
            out.push(b as u16);
        }
        out.push(bin_of(&d.score.edges, p) as u16);
    }

    /// Adds (or with `remove`, takes away) one row given by its bins.
    pub fn apply(&mut self, bins: &[u16], remove: bool) {
        let step = |c: &mut u64| {
            if remove { *c -= 1 } else { *c += 1 }
        };
        for (counts, &b) in self.features.iter_mut().zip(bins) {
            step(&mut counts[b as usize]);
        }
        step(&mut self.score[bins[bins.len() - 1] as usize]);
        step(&mut self.rows);
    }

    pub fn merge(&mut self, other: &DriftCounts) {
        self.rows += other.rows;
        for (a, b) in self.features.iter_mut().zip(&other.features) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (x, y) in self.score.iter_mut().zip(&other.score) {
            *x += y;
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub psi: f64,
    pub band: DriftBand,
    /// Share of the rows with the feature missing, now and at training.
    pub missing_share: f64,
    pub reference_missing_share: f64,
    pub missing_change: f64,
    /// Categorical: share of the non-missing rows with a level training never saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreDrift {
    pub psi: f64,
    pub band: DriftBand,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub rows: u64,
    pub reference_rows: u64,
    /// How the PSI is computed.
    pub definition: String,
    /// Features by PSI, largest first.
    pub features: Vec<FeatureDrift>,
    pub score: ScoreDrift,
    /// Rows the model refused (left out of every figure), and the first of them.
    pub rejected_rows: u64,
    pub rejected: Vec<RejectedRow>,
}

impl DriftReport {
    /// The worst band of any feature or the score.
    pub fn worst(&self) -> DriftBand {
        self.features
            .iter()
            .map(|f| f.band)
            .chain(std::iter::once(self.score.band))
            .max()
            .unwrap_or(DriftBand::Stable)
    }
}

/// The drift of `counts` against the references `d`.
pub fn report(d: &DriftEntry, counts: &DriftCounts) -> DriftReport {
    let rows = counts.rows.max(1) as f64;
    let mut features: Vec<FeatureDrift> = d
        .features
        .iter()
        .zip(&counts.features)
        .map(|(r, c)| {
            let psi = psi(&reference_shares(r), c);
            let missing = c[c.len() - 1] as f64 / rows;
            let unseen_share = r.edges.is_none().then(|| {
                let present = counts.rows - c[c.len() - 1];
                if present == 0 {
                    0.0
                } else {
                    c[c.len() - 2] as f64 / present as f64
                }
            });
            FeatureDrift {
                feature: r.feature.clone(),
                psi,
                band: DriftBand::of(psi),
                missing_share: missing,
                reference_missing_share: r.missing_share,
                missing_change: missing - r.missing_share,
                unseen_share,
            }
        })
        .collect();
    features.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    let score_psi = psi(&d.score.shares, &counts.score);
    DriftReport {
        rows: counts.rows,
        reference_rows: d.rows,
        definition: format!(
            "PSI = sum over bins of (a - e) * ln(a / e): a the share of these rows in a bin, e the training share, each at least {SMOOTHING}; bins: a numeric feature's training deciles and missing, a categorical feature's levels, unseen and missing, the score's training deciles. Stable < {MODERATE} <= moderate < {MAJOR} <= major."
        ),
        features,
        score: ScoreDrift {
            psi: score_psi,
            band: DriftBand::of(score_psi),
        },
        rejected_rows: 0,
        rejected: Vec::new(),
    }
}

/// The drift of `table`: every row the model scores counted against the references; the rows it
/// refuses are counted and listed in the report.
pub fn drift_of_table(model: &ChurnModel, d: &DriftEntry, table: &Table) -> Result<DriftReport> {
    let scan = scan_table(
        model,
        table,
        || (DriftCounts::new(d), Vec::new()),
        |(counts, bins), _, s, score| {
            DriftCounts::bins(d, s, score.probability, bins);
            counts.apply(bins, false);
        },
    )?;
    let mut total = DriftCounts::new(d);
    for (c, _) in &scan.parts {
        total.merge(c);
    }
    let mut r = report(d, &total);
    r.rejected_rows = scan.rejected_rows;
    r.rejected = scan.rejected;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_on_the_same_shares_and_grows_with_the_shift() {
        let e = [0.25, 0.25, 0.25, 0.25];
        assert!(psi(&e, &[25, 25, 25, 25]).abs() < 1e-15);
        let small = psi(&e, &[30, 25, 25, 20]);
        let large = psi(&e, &[70, 10, 10, 10]);
        assert!(small > 0.0 && small < MODERATE, "{small}");
        assert!(large > MAJOR, "{large}");
        // By hand: 0.7 vs 0.25 and three 0.1 vs 0.25.
        let by_hand =
            (0.7 - 0.25) * (0.7f64 / 0.25).ln() + 3.0 * (0.1 - 0.25) * (0.1f64 / 0.25).ln();
        assert!((large - by_hand).abs() < 1e-12);
        // An empty bin counts as the smoothing share, not as infinity.
        let empty = psi(&e, &[0, 50, 25, 25]);
        let expected = (SMOOTHING - 0.25) * (SMOOTHING / 0.25).ln() + (0.5 - 0.25) * 2f64.ln();
        assert!((empty - expected).abs() < 1e-12 && empty.is_finite());
        assert!(psi(&e, &[0, 0, 0, 0]).is_nan());
    }

    #[test]
    fn bands_follow_the_cut_points() {
        assert_eq!(DriftBand::of(0.0999), DriftBand::Stable);
        assert_eq!(DriftBand::of(0.1), DriftBand::Moderate);
        assert_eq!(DriftBand::of(0.2499), DriftBand::Moderate);
        assert_eq!(DriftBand::of(0.25), DriftBand::Major);
        assert!(DriftBand::Major > DriftBand::Moderate);
    }

    #[test]
    fn decile_edges_drop_repeats_and_the_minimum() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(
            decile_edges(&v),
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        // Mostly zeros: the zero edges go, the bin below the first edge holds every zero.
        let mut z = vec![0.0; 80];
        z.extend((1..=20).map(f64::from));
        assert_eq!(decile_edges(&z), vec![1.0, 11.0]);
    }
}
