//! The model report: the model card (data fingerprint, rows, label, kind, features, training
//! facts, cross-validation spread) and, on labelled data (else the holdout figures the model file
//! keeps): ROC and precision-recall curves, calibration, cumulative gains and lift by decile, the
//! decile table, tiers with their churn rates and the confusion at each cut, feature importance,
//! and each feature's effect (linear: contribution against value; additive: the shape over the
//! data's density; pairs as heat maps).
//!
//! Every figure from data comes from the evaluation `churn evaluate` makes
//! ([`crate::model::evaluate`]): the same rows scored by the same `score_row`.
use super::charts::{self, Axes, HeatMap, Series, Shape};
use super::page::{count, definition, facts, figure, fixed, kpi, note, page, pct, table, value};
use crate::error::Result;
use crate::io::Table;
use crate::model::additive::{Axis, bin_of};
use crate::model::drift::{DriftReport, drift_of_table};
use crate::model::evaluate::{Evaluation, evaluation, score_labelled};
use crate::model::file::{FeatureEntry, ModelMetrics, TierCuts, TrainingInfo};
use crate::model::metrics::{CalibrationBin, Curves, DecileRow, Metrics, curves};
use crate::model::{ChurnModel, TermView};
use crate::schema::{FeatureKind, Transform};
use maud::{Markup, html};
use serde::Serialize;

/// Points kept of each curve: enough for a smooth line, few enough for a light page.
const CURVE_POINTS: usize = 400;
/// Levels of a categorical feature drawn in its effect chart (the most frequent).
const MAX_LEVELS_DRAWN: usize = 20;
/// Points of a linear feature's effect line.
const EFFECT_POINTS: usize = 60;

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub model: String,
    pub kind: &'static str,
    pub created_at: String,
    pub churn_version: String,
    pub model_sha256: String,
    pub training: TrainingInfo,
    pub features: Vec<FeatureCard>,
    pub tiers: TierCuts,
    /// The holdout and cross-validation figures stored in the model file at training.
    pub stored_metrics: ModelMetrics,
    /// Where the figures come from: "data" (the file given) or "holdout" (the stored figures).
    pub figures_from: &'static str,
    /// On data: the evaluation, exactly as `churn evaluate --json` prints it.
    pub evaluation: Option<Evaluation>,
    /// On data: the ROC and precision-recall curves and the decile table.
    pub curves: Option<Curves>,
    /// The decile table (from the data, or from the stored holdout's calibration bins).
    pub deciles: Vec<DecileRow>,
    pub importance: Vec<Importance>,
    pub effects: Vec<Effect>,
    pub pairs: Vec<PairEffect>,
    /// On data, for a model with drift references: the data against the training customers.
    pub drift: Option<DriftReport>,
    /// What the page could not show, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureCard {
    pub name: String,
    pub kind: &'static str,
    /// Numeric: the transform and the value imputed when missing. Categorical: the number of
    /// levels and the level used for missing and unseen values.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Importance {
    pub feature: String,
    /// Mean |contribution| in log-odds over the data's rows; without data, the expected
    /// |contribution| under the training shares (a linear numeric feature: |weight|, the
    /// contribution of one standard deviation).
    pub importance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    pub feature: String,
    /// "line" (linear numeric: contribution at each value), "bins" (additive numeric: one
    /// contribution per bin), "levels" (categorical: one per level).
    pub shape: &'static str,
    pub points: Vec<EffectPoint>,
    /// The contribution of a missing value (numeric features), and the share of rows missing.
    pub missing_contribution: Option<f64>,
    pub missing_share: Option<f64>,
}

/// One point (line), bin (`from`..`to`) or level of an effect, with the share of rows there (the
/// data's, or the training's where the model file keeps it).
#[derive(Debug, Clone, Serialize)]
pub struct EffectPoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    pub contribution: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairEffect {
    pub features: [String; 2],
    /// Bin labels of each side (rows: the first feature).
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// The term's centred values, row-major (log-odds; each feature gets half).
    pub values: Vec<f64>,
}

/// Labelled data for the report: the table, its label column and the value meaning churned.
pub struct LabelledData<'a> {
    pub table: &'a Table,
    pub label: &'a str,
    pub positive: &'a str,
}

/// Builds the report of `model`, on `data` when given.
pub fn build(model: &ChurnModel, data: Option<LabelledData<'_>>) -> Result<ModelReport> {
    let file = model.file();
    let mut notes = Vec::new();
    let data = data.filter(|d| {
        let empty = d.table.rows() == 0;
        if empty {
            notes.push(format!(
                "{} has no data rows: the figures are the stored holdout's.",
                d.table.path.display()
            ));
        }
        !empty
    });
    let (evaluation, curves, scores) = match &data {
        Some(d) => {
            let s = score_labelled(model, d.table, d.label, d.positive)?;
            let e = evaluation(model, d.table, d.label, d.positive, &s);
            let c = curves(&s.p, &s.y, CURVE_POINTS);
            if c.roc.is_empty() {
                let only = if e.metrics.positives == 0 {
                    "no churned customers"
                } else {
                    "only churned customers"
                };
                notes.push(format!(
                    "The data holds {only} ({} rows): ROC and precision-recall curves, AUC and lift need both classes.",
                    e.metrics.rows
                ));
            }
            (Some(e), Some(c), Some(s))
        }
        None => (None, None, None),
    };
    let deciles = match (&curves, &file.metrics.holdout) {
        (Some(c), _) => c.deciles.clone(),
        (None, Some(h)) => deciles_from_calibration(h),
        (None, None) => {
            notes.push("The model file keeps no holdout figures and no data was given: pass --data FILE for the curves.".into());
            Vec::new()
        }
    };
    if data.is_none() && file.metrics.holdout.is_some() {
        notes.push("ROC and precision-recall curves need --data FILE: the model file keeps the holdout's AUCs and calibration, not its curves.".into());
    }
    let schema = model.schema();
    let importance = {
        let mut v: Vec<Importance> = schema
            .features()
            .iter()
            .enumerate()
            .map(|(i, f)| Importance {
                feature: f.name.clone(),
                importance: match &scores {
                    Some(s) => s.mean_abs_contribution[i],
                    None => expected_abs_contribution(model, i),
                },
            })
            .collect();
        v.sort_by(|a, b| b.importance.total_cmp(&a.importance));
        v
    };
    let table = data.as_ref().map(|d| d.table);
    let rows = scores.as_ref().map(|s| s.rows.as_slice());
    let effects = (0..schema.len())
        .map(|i| effect(model, i, table.zip(rows)))
        .collect();
    let drift = match (&data, &file.drift) {
        (Some(d), Some(refs)) => Some(drift_of_table(model, refs, d.table)?),
        (Some(_), None) => {
            notes.push("The model file keeps no drift references (trained before churn kept them): no drift table.".into());
            None
        }
        (None, _) => None,
    };
    Ok(ModelReport {
        drift,
        model: model.id().to_string(),
        kind: file.kind.name(),
        created_at: file.created_at.clone(),
        churn_version: file.churn_version.clone(),
        model_sha256: model.sha256().to_string(),
        training: file.training.clone(),
        features: file.features.iter().map(feature_card).collect(),
        tiers: file.tiers,
        stored_metrics: file.metrics.clone(),
        figures_from: if evaluation.is_some() {
            "data"
        } else {
            "holdout"
        },
        evaluation,
        curves,
        deciles,
        importance,
        effects,
        pairs: pair_effects(model),
        notes,
    })
}

fn feature_card(f: &FeatureEntry) -> FeatureCard {
    match f {
        FeatureEntry::Numeric(n) => FeatureCard {
            name: n.name.clone(),
            kind: "numeric",
            detail: format!(
                "transform {}, missing imputed with {}",
                n.transform.name(),
                value(n.impute)
            ),
        },
        FeatureEntry::Categorical(c) => FeatureCard {
            name: c.name.clone(),
            kind: "categorical",
            detail: format!(
                "{} levels, missing and unseen as \"{}\"",
                c.levels.len(),
                c.unseen_level
            ),
        },
    }
}

/// The decile table of the stored holdout, from its ten equal-count calibration bins: the rows
/// and churn rate of each tenth by score (extreme probabilities are not stored).
fn deciles_from_calibration(h: &Metrics) -> Vec<DecileRow> {
    let bins: Vec<&CalibrationBin> = h.calibration.iter().rev().collect();
    let rows: u64 = bins.iter().map(|b| b.rows).sum();
    let churned_of = |b: &CalibrationBin| (b.observed_rate * b.rows as f64).round() as u64;
    let total: u64 = bins.iter().map(|b| churned_of(b)).sum();
    let overall = total as f64 / rows as f64;
    let (mut cum_rows, mut cum_churned) = (0u64, 0u64);
    bins.iter()
        .enumerate()
        .map(|(k, b)| {
            let churned = churned_of(b);
            cum_rows += b.rows;
            cum_churned += churned;
            DecileRow {
                decile: k as u32 + 1,
                rows: b.rows,
                churned,
                churn_rate: b.observed_rate,
                min_probability: f64::NAN,
                max_probability: f64::NAN,
                mean_probability: b.mean_predicted,
                lift: b.observed_rate / overall,
                cumulative_gain: cum_churned as f64 / total as f64,
                cumulative_lift: (cum_churned as f64 / cum_rows as f64) / overall,
            }
        })
        .collect()
}

/// Feature `i`'s expected |contribution| under the training shares (linear numeric: |weight|).
fn expected_abs_contribution(model: &ChurnModel, i: usize) -> f64 {
    match model.term(i) {
        TermView::Numeric { enc, scale } => (scale * enc.std).abs(),
        TermView::Categorical { enc, contributions } => enc
            .shares
            .iter()
            .zip(contributions)
            .map(|(s, c)| s * c.abs())
            .sum(),
        TermView::Binned {
            contributions,
            missing,
            ..
        } => match &model.file().features[i] {
            FeatureEntry::Numeric(n) => n.shape.as_ref().map_or(f64::NAN, |sh| {
                sh.shares
                    .iter()
                    .zip(contributions)
                    .map(|(s, c)| s * c.abs())
                    .sum::<f64>()
                    + sh.missing_share * missing.abs()
            }),
            FeatureEntry::Categorical(_) => f64::NAN,
        },
    }
}

fn inverse(t: Transform, x: f64) -> f64 {
    match t {
        Transform::None => x,
        Transform::Log1p => x.exp_m1(),
        Transform::Asinh => x.sinh(),
    }
}

/// The non-missing numbers of column `name` at the scored rows, sorted.
fn sorted_numbers(table: &Table, rows: &[usize], name: &str) -> (Vec<f64>, usize) {
    let Some(col) = table.column(name) else {
        return (Vec::new(), 0);
    };
    let mut v: Vec<f64> = rows
        .iter()
        .map(|&r| col.numbers[r])
        .filter(|x| !x.is_nan())
        .collect();
    v.sort_by(f64::total_cmp);
    let missing = rows.len() - v.len();
    (v, missing)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Feature `i`'s effect: its contribution over its values, with the data's (or training's) share
/// of rows at each.
fn effect(model: &ChurnModel, i: usize, data: Option<(&Table, &[usize])>) -> Effect {
    let f = &model.schema().features()[i];
    let numbers = data.map(|(t, rows)| sorted_numbers(t, rows, &f.name));
    match model.term(i) {
        TermView::Numeric { enc, scale } => {
            // The middle 98% of the data's values, else mean ± 2.5 SD of the transformed value.
            let (lo, hi) = match &numbers {
                Some((v, _)) if !v.is_empty() => {
                    let (a, b) = (quantile(v, 0.01), quantile(v, 0.99));
                    if a < b {
                        (a, b)
                    } else {
                        (v[0], v[v.len() - 1])
                    }
                }
                _ => (
                    inverse(enc.transform, enc.mean - 2.5 * enc.std),
                    inverse(enc.transform, enc.mean + 2.5 * enc.std),
                ),
            };
            let lo = if enc.transform == Transform::Log1p {
                lo.max(-1.0 + 1e-9)
            } else {
                lo
            };
            let contribution = |x: f64| {
                enc.transform
                    .apply(x)
                    .map_or(f64::NAN, |t| (t - enc.mean) * scale)
            };
            let mut points: Vec<EffectPoint> = (0..EFFECT_POINTS)
                .map(|k| {
                    let x = lo + (hi - lo) * k as f64 / (EFFECT_POINTS - 1) as f64;
                    EffectPoint {
                        value: Some(x),
                        from: None,
                        to: None,
                        level: None,
                        contribution: contribution(x),
                        share: None,
                    }
                })
                .collect();
            points.dedup_by(|a, b| a.value == b.value);
            // The data's density beneath: the share of rows nearest each point.
            if let Some((v, _)) = &numbers
                && !v.is_empty()
                && hi > lo
            {
                let step = (hi - lo) / (points.len().max(2) - 1) as f64;
                let mut counts = vec![0u64; points.len()];
                for &x in v {
                    let k = ((x - lo) / step)
                        .round()
                        .clamp(0.0, (points.len() - 1) as f64);
                    counts[k as usize] += 1;
                }
                let n = (v.len() + numbers.as_ref().map_or(0, |n| n.1)) as f64;
                for (p, c) in points.iter_mut().zip(counts) {
                    p.share = Some(c as f64 / n);
                }
            }
            Effect {
                feature: f.name.clone(),
                shape: "line",
                points,
                missing_contribution: Some(contribution(enc.impute)),
                missing_share: numbers.as_ref().map(|(v, m)| share(*m, v.len() + m)),
            }
        }
        TermView::Binned {
            edges,
            contributions,
            missing,
            ..
        } => {
            let width = if edges.len() > 1 {
                (edges[edges.len() - 1] - edges[0]) / (edges.len() - 1) as f64
            } else {
                1.0
            };
            let (first, last) = (
                edges.first().copied().unwrap_or(0.0),
                edges.last().copied().unwrap_or(0.0),
            );
            let (mut lo, mut hi) = (first - width, last + width);
            let mut shares: Vec<Option<f64>> = vec![None; contributions.len()];
            let mut missing_share = None;
            match &numbers {
                Some((v, m)) => {
                    if let (Some(a), Some(b)) = (v.first(), v.last()) {
                        // The edge bins reach the data's extremes, or one bin width past
                        // the outer edges when the data stays inside them.
                        lo = a.min(first - width);
                        hi = b.max(last + width);
                    }
                    let mut counts = vec![0u64; contributions.len()];
                    for &x in v {
                        counts[bin_of(edges, x)] += 1;
                    }
                    let n = v.len() + m;
                    shares = counts.iter().map(|&c| Some(share(c as usize, n))).collect();
                    missing_share = Some(share(*m, n));
                }
                None => {
                    if let FeatureEntry::Numeric(e) = &model.file().features[i]
                        && let Some(sh) = &e.shape
                    {
                        shares = sh.shares.iter().map(|&s| Some(s)).collect();
                        missing_share = Some(sh.missing_share);
                    }
                }
            }
            let points = contributions
                .iter()
                .enumerate()
                .map(|(b, &c)| EffectPoint {
                    value: None,
                    from: Some(if b == 0 { lo } else { edges[b - 1] }),
                    to: Some(if b == edges.len() { hi } else { edges[b] }),
                    level: None,
                    contribution: c,
                    share: shares.get(b).copied().flatten(),
                })
                .collect();
            Effect {
                feature: f.name.clone(),
                shape: "bins",
                points,
                missing_contribution: Some(missing),
                missing_share,
            }
        }
        TermView::Categorical { enc, contributions } => {
            let data_shares: Option<Vec<f64>> = data.and_then(|(t, rows)| {
                let col = t.column(&f.name)?;
                let mut counts = vec![0u64; enc.levels.len()];
                for &r in rows {
                    if let Some(k) = col.text(r).and_then(|x| enc.level(x)) {
                        counts[k] += 1;
                    }
                }
                Some(
                    counts
                        .iter()
                        .map(|&c| share(c as usize, rows.len()))
                        .collect(),
                )
            });
            let points = enc
                .levels
                .iter()
                .enumerate()
                .map(|(k, level)| EffectPoint {
                    value: None,
                    from: None,
                    to: None,
                    level: Some(level.clone()),
                    contribution: contributions[k],
                    share: Some(data_shares.as_ref().map_or(enc.shares[k], |s| s[k])),
                })
                .collect();
            Effect {
                feature: f.name.clone(),
                shape: "levels",
                points,
                missing_contribution: None,
                missing_share: None,
            }
        }
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Bin labels of one side of a pair: numeric by coarse edges, categorical by the levels in
/// each coarse bin.
fn axis_labels(model: &ChurnModel, feature: usize, axis: &Axis) -> Vec<String> {
    match axis {
        Axis::Edges(e) => (0..=e.len())
            .map(|b| match (b, e.len()) {
                (0, _) => format!("< {}", value(e[0])),
                (b, n) if b == n => format!(">= {}", value(e[n - 1])),
                (b, _) => format!("{}-{}", value(e[b - 1]), value(e[b])),
            })
            .collect(),
        Axis::Levels(map) => {
            let levels = match &model.schema().features()[feature].kind {
                FeatureKind::Categorical(c) => c.levels.clone(),
                FeatureKind::Numeric(_) => Vec::new(),
            };
            let bins = map.iter().max().map_or(0, |m| *m as usize + 1);
            (0..bins)
                .map(|b| {
                    let names: Vec<&str> = map
                        .iter()
                        .zip(&levels)
                        .filter(|(m, _)| **m as usize == b)
                        .map(|(_, l)| l.as_str())
                        .collect();
                    let joined = names.join("/");
                    if joined.chars().count() > 18 {
                        let cut: String = joined.chars().take(16).collect();
                        format!("{cut}..")
                    } else {
                        joined
                    }
                })
                .collect()
        }
    }
}

fn pair_effects(model: &ChurnModel) -> Vec<PairEffect> {
    let names = |i: usize| model.schema().features()[i].name.clone();
    model
        .pairs()
        .iter()
        .map(|p| PairEffect {
            features: [names(p.features[0]), names(p.features[1])],
            rows: axis_labels(model, p.features[0], &p.axes[0]),
            columns: axis_labels(model, p.features[1], &p.axes[1]),
            values: p.table.clone(),
        })
        .collect()
}

/// The page.
pub fn render(r: &ModelReport) -> Result<String> {
    let m: Option<&Metrics> = r
        .evaluation
        .as_ref()
        .map(|e| &e.metrics)
        .or(r.stored_metrics.holdout.as_ref());
    let source = match &r.evaluation {
        Some(e) => format!("on {} ({} rows)", e.data_file, count(e.metrics.rows)),
        None => "on the holdout kept at training".to_string(),
    };
    let body = html! {
        @for n in &r.notes { (note(n)) }
        (card(r))
        section {
            h2 { "Quality " (source) }
            @if let Some(m) = m {
                div.kpis {
                    (kpi(&fixed(m.auc, 4), "AUC (ROC)"))
                    (kpi(&fixed(m.pr_auc, 4), "PR-AUC (average precision)"))
                    (kpi(&fixed(m.log_loss, 4), "log loss"))
                    (kpi(&fixed(m.brier, 4), "Brier score"))
                    (kpi(&fixed(m.top_decile_lift, 2), "top-decile lift"))
                    (kpi(&pct(m.positives as f64 / m.rows as f64), "churn rate"))
                }
                div.grid { (quality_charts(r, m)?) }
            } @else {
                (note("No quality figures: the model file keeps no holdout and no data was given."))
            }
            @if !r.deciles.is_empty() {
                h3 { "Deciles by score (1 = riskiest tenth)" }
                (decile_table(&r.deciles))
            }
        }
        @if let Some(e) = &r.evaluation { (tiers(r, e)?) }
        (importance(r)?)
        @if let Some(d) = &r.drift { (drift_table(d)) }
        (effects(r)?)
    };
    Ok(page(
        &format!("Model report: {}", r.model),
        &format!(
            "{} model, trained {} on {} rows of {}",
            r.kind,
            r.created_at,
            count(r.training.rows),
            r.training.data_file
        ),
        body,
    ))
}

fn card(r: &ModelReport) -> Markup {
    let t = &r.training;
    let split = match &t.time_split {
        Some(s) => format!(
            "by time: {} from {} held out{}",
            s.column,
            s.holdout_from,
            s.purge_days
                .map(|d| format!(", {d} days purged ({} rows)", s.purged_rows))
                .unwrap_or_default()
        ),
        None => format!("stratified, {} held out", pct(t.holdout_fraction)),
    };
    let mut rows = vec![
        ("model", r.model.clone()),
        ("kind", r.kind.to_string()),
        ("created", r.created_at.clone()),
        ("churn version", r.churn_version.clone()),
        ("model file SHA-256", r.model_sha256.clone()),
        ("training data", t.data_file.clone()),
        ("data SHA-256", t.data_sha256.clone()),
        ("rows", count(t.rows)),
        (
            "label",
            format!(
                "{} = \"{}\" ({} churned)",
                t.label,
                t.positive,
                pct(t.positive_share)
            ),
        ),
        (
            "id column",
            t.id_column.clone().unwrap_or_else(|| "-".into()),
        ),
        ("split", split),
        ("folds", t.folds.to_string()),
        ("L2", format!("{} ({})", value(t.l2), t.l2_chosen_by)),
        ("seed", t.seed.to_string()),
        ("solver", t.solver.name.clone()),
    ];
    if !t.dropped.is_empty() {
        rows.push(("dropped columns", t.dropped.join(", ")));
    }
    if let Some(k) = &t.kind_chosen_by {
        rows.push(("kind chosen by", k.clone()));
    }
    rows.push((
        "tier cuts",
        format!(
            "HIGH p >= {} ({} of the holdout), MEDIUM p >= {} ({})",
            fixed(r.tiers.high, 4),
            pct(r.tiers.high_share),
            fixed(r.tiers.medium, 4),
            pct(r.tiers.medium_share)
        ),
    ));
    let features: Vec<Vec<String>> = r
        .features
        .iter()
        .map(|f| vec![f.name.clone(), f.kind.to_string(), f.detail.clone()])
        .collect();
    let cv = r.stored_metrics.cross_validation.as_ref();
    html! {
        section {
            h2 { "Model card" }
            (facts(&rows))
            @if let Some(cv) = cv {
                h3 { "Cross-validation (" (cv.folds) " folds)" }
                (table(&["metric", "mean", "spread (SD)"], &[
                    vec!["AUC".into(), fixed(cv.auc_mean, 4), fixed(cv.auc_std, 4)],
                    vec!["log loss".into(), fixed(cv.log_loss_mean, 4), fixed(cv.log_loss_std, 4)],
                ]))
            }
            @if !t.kinds_tried.is_empty() {
                h3 { "Kinds tried" }
                (table(&["kind", "CV log loss", "CV AUC"], &t.kinds_tried.iter().map(|k| vec![
                    k.kind.name().to_string(), fixed(k.cv_log_loss, 4), fixed(k.cv_auc, 4),
                ]).collect::<Vec<_>>()))
            }
            h3 { "Features (" (r.features.len()) ")" }
            (table(&["feature", "kind", "encoding"], &features))
        }
    }
}

fn quality_charts(r: &ModelReport, m: &Metrics) -> Result<Markup> {
    let unit = 0.0..1.0;
    let diagonal = || vec![(0.0, 0.0), (1.0, 1.0)];
    let mut out = Vec::new();
    if let Some(c) = r.curves.as_ref().filter(|c| !c.roc.is_empty()) {
        let roc = charts::lines(
            &Axes {
                title: "ROC curve",
                x_label: "false positive rate",
                y_label: "true positive rate",
                x: unit.clone(),
                y: unit.clone(),
                x_names: None,
            },
            &[
                Series::line(
                    format!("model (AUC {})", fixed(m.auc, 3)),
                    c.roc.iter().map(|p| (p[0], p[1])).collect(),
                ),
                Series::reference("chance", diagonal()),
            ],
        )?;
        out.push(figure(
            &roc,
            "Share of churners caught against share of stayers flagged, over every cut.",
        ));
        let base = m.positives as f64 / m.rows as f64;
        let pr = charts::lines(
            &Axes {
                title: "Precision-recall curve",
                x_label: "recall",
                y_label: "precision",
                x: unit.clone(),
                y: unit.clone(),
                x_names: None,
            },
            &[
                Series::line(
                    format!("model (AP {})", fixed(m.pr_auc, 3)),
                    c.precision_recall.iter().map(|p| (p[0], p[1])).collect(),
                ),
                Series::reference("churn rate", vec![(0.0, base), (1.0, base)]),
            ],
        )?;
        out.push(figure(
            &pr,
            "Of the customers flagged, the share who churned, against the share of churners caught.",
        ));
    }
    if !m.calibration.is_empty() {
        let top = m
            .calibration
            .iter()
            .map(|b| b.mean_predicted.max(b.observed_rate))
            .fold(0.0f64, f64::max)
            .min(1.0);
        let cal = charts::lines(
            &Axes {
                title: "Calibration (reliability)",
                x_label: "mean predicted probability",
                y_label: "observed churn rate",
                x: 0.0..top.max(0.05),
                y: 0.0..top.max(0.05),
                x_names: None,
            },
            &[
                Series::line(
                    "model (10 equal-count bins)",
                    m.calibration
                        .iter()
                        .map(|b| (b.mean_predicted, b.observed_rate))
                        .collect(),
                ),
                Series::reference("perfect", diagonal()),
            ],
        )?;
        out.push(figure(
            &cal,
            "Each point is a tenth of the customers by score: on the diagonal, the probabilities mean what they say.",
        ));
    }
    if !r.deciles.is_empty() && r.deciles.iter().all(|d| d.cumulative_gain.is_finite()) {
        let n = r.deciles.len() as f64;
        let mut gains = vec![(0.0, 0.0)];
        gains.extend(
            r.deciles
                .iter()
                .map(|d| (f64::from(d.decile) / n, d.cumulative_gain)),
        );
        let g = charts::lines(
            &Axes {
                title: "Cumulative gains",
                x_label: "share of customers contacted (riskiest first)",
                y_label: "share of churners reached",
                x: unit.clone(),
                y: unit.clone(),
                x_names: None,
            },
            &[
                Series::line("model", gains),
                Series::reference("random", diagonal()),
            ],
        )?;
        out.push(figure(
            &g,
            "Contact the riskiest customers first: the share of all churners reached.",
        ));
        let names: Vec<String> = r.deciles.iter().map(|d| d.decile.to_string()).collect();
        let lifts: Vec<f64> = r.deciles.iter().map(|d| d.lift).collect();
        let l = charts::bars(
            "Lift by decile",
            "churn rate / overall rate",
            &names,
            &lifts,
            Some(1.0),
        )?;
        out.push(figure(
            &l,
            "Decile 1 is the riskiest tenth; the dashed line is the overall churn rate (lift 1).",
        ));
    }
    Ok(html! { @for f in &out { (f) } })
}

fn decile_table(deciles: &[DecileRow]) -> Markup {
    let rows: Vec<Vec<String>> = deciles
        .iter()
        .map(|d| {
            vec![
                d.decile.to_string(),
                count(d.rows),
                count(d.churned),
                pct(d.churn_rate),
                if d.min_probability.is_finite() {
                    format!(
                        "{}-{}",
                        fixed(d.min_probability, 3),
                        fixed(d.max_probability, 3)
                    )
                } else {
                    "-".into()
                },
                fixed(d.mean_probability, 3),
                fixed(d.lift, 2),
                pct(d.cumulative_gain),
                fixed(d.cumulative_lift, 2),
            ]
        })
        .collect();
    table(
        &[
            "decile",
            "customers",
            "churned",
            "churn rate",
            "probability range",
            "mean probability",
            "lift",
            "cumulative gain",
            "cumulative lift",
        ],
        &rows,
    )
}

fn tiers(r: &ModelReport, e: &Evaluation) -> Result<Markup> {
    let total: u64 = e.tiers.iter().map(|t| t.rows).sum();
    let rows: Vec<Vec<String>> = e
        .tiers
        .iter()
        .map(|t| {
            vec![
                t.tier.to_string(),
                count(t.rows),
                pct(t.rows as f64 / total as f64),
                pct(t.churn_rate),
            ]
        })
        .collect();
    let names: Vec<String> = e.tiers.iter().map(|t| t.tier.to_string()).collect();
    let rates: Vec<f64> = e.tiers.iter().map(|t| t.churn_rate).collect();
    let overall = e.metrics.positives as f64 / e.metrics.rows as f64;
    let chart = charts::bars(
        "Churn rate by risk tier",
        "churn rate",
        &names,
        &rates,
        Some(overall),
    )?;
    let confusion: Vec<Vec<String>> = [
        ("MEDIUM or higher", &e.at_medium_cut),
        ("HIGH", &e.at_high_cut),
    ]
    .iter()
    .map(|(name, c)| {
        vec![
            format!("{name} (p >= {})", fixed(c.threshold, 4)),
            count(c.true_positives),
            count(c.false_positives),
            count(c.true_negatives),
            count(c.false_negatives),
            pct(c.precision),
            pct(c.recall),
        ]
    })
    .collect();
    Ok(html! {
        section {
            h2 { "Risk tiers" }
            (definition(&format!(
                "HIGH: p >= {}; MEDIUM: p >= {}; LOW below. Cuts chosen on the training holdout.",
                fixed(r.tiers.high, 4),
                fixed(r.tiers.medium, 4)
            )))
            div.grid {
                (figure(&chart, "The dashed line is the overall churn rate."))
                div {
                    (table(&["tier", "customers", "share", "churn rate"], &rows))
                    h3 { "Confusion at each cut (flagged = predicted to churn)" }
                    (table(&["flagged when", "TP", "FP", "TN", "FN", "precision", "recall"], &confusion))
                }
            }
        }
    })
}

fn importance(r: &ModelReport) -> Result<Markup> {
    let shown: Vec<&Importance> = r.importance.iter().take(20).collect();
    let names: Vec<String> = shown.iter().map(|i| i.feature.clone()).collect();
    let values: Vec<f64> = shown.iter().map(|i| i.importance).collect();
    let chart = charts::bars_horizontal(
        "Feature importance",
        "mean |contribution| (log-odds)",
        &names,
        &values,
    )?;
    let how = if r.evaluation.is_some() {
        "Mean absolute contribution over the data's rows, in log-odds: how far each feature moves a typical score."
    } else {
        "Expected absolute contribution under the training shares, in log-odds (a linear numeric feature: |weight|, the contribution of one standard deviation)."
    };
    let rows: Vec<Vec<String>> = r
        .importance
        .iter()
        .map(|i| vec![i.feature.clone(), fixed(i.importance, 4)])
        .collect();
    Ok(html! {
        section {
            h2 { "Feature importance" }
            (definition(how))
            div.grid {
                (figure(&chart, "The 20 most important features."))
                (table(&["feature", "importance"], &rows))
            }
        }
    })
}

fn effects(r: &ModelReport) -> Result<Markup> {
    let density = if r.evaluation.is_some() {
        "share of the data's rows"
    } else {
        "share of training rows"
    };
    let mut charts_out = Vec::new();
    for e in &r.effects {
        let missing = match (e.missing_contribution, e.missing_share) {
            (Some(c), Some(s)) => format!(" Missing: {} ({} of rows).", fixed(c, 3), pct(s)),
            (Some(c), None) => format!(" Missing: {}.", fixed(c, 3)),
            _ => String::new(),
        };
        let svg = match e.shape {
            "levels" => {
                let mut pts: Vec<&EffectPoint> = e.points.iter().collect();
                pts.sort_by(|a, b| b.share.unwrap_or(0.0).total_cmp(&a.share.unwrap_or(0.0)));
                pts.truncate(MAX_LEVELS_DRAWN);
                let names: Vec<String> = pts
                    .iter()
                    .map(|p| p.level.clone().unwrap_or_default())
                    .collect();
                let values: Vec<f64> = pts.iter().map(|p| p.contribution).collect();
                charts::bars(&e.feature, "contribution (log-odds)", &names, &values, None)?
            }
            "bins" => {
                let steps: Vec<(f64, f64, f64)> = e
                    .points
                    .iter()
                    .map(|p| (p.from.unwrap_or(0.0), p.to.unwrap_or(0.0), p.contribution))
                    .collect();
                let dens: Vec<(f64, f64, f64)> = e
                    .points
                    .iter()
                    .filter_map(|p| Some((p.from?, p.to?, p.share?)))
                    .collect();
                charts::shape(&Shape {
                    title: &e.feature,
                    x_label: &e.feature,
                    steps: &steps,
                    line: &[],
                    density: &dens,
                    density_label: density,
                })?
            }
            _ => {
                let line: Vec<(f64, f64)> = e
                    .points
                    .iter()
                    .filter(|p| p.contribution.is_finite())
                    .filter_map(|p| Some((p.value?, p.contribution)))
                    .collect();
                let dens: Vec<(f64, f64, f64)> = e
                    .points
                    .windows(2)
                    .filter_map(|w| {
                        let (a, b) = (w[0].value?, w[1].value?);
                        Some((a, b, w[0].share?))
                    })
                    .collect();
                charts::shape(&Shape {
                    title: &e.feature,
                    x_label: &e.feature,
                    steps: &[],
                    line: &line,
                    density: &dens,
                    density_label: density,
                })?
            }
        };
        let caption = match e.shape {
            "levels" => {
                format!("Contribution of each level (the {MAX_LEVELS_DRAWN} most frequent).")
            }
            "bins" => format!(
                "The shape: contribution on each bin of the value, over the {density}.{missing}"
            ),
            _ => format!(
                "Contribution against the value (linear in the transformed value).{missing}"
            ),
        };
        charts_out.push(figure(&svg, &caption));
    }
    let mut pairs_out = Vec::new();
    for p in &r.pairs {
        let title = format!("{} x {}", p.features[0], p.features[1]);
        let svg = charts::heat_map(&HeatMap {
            title: &title,
            x_label: &p.features[1],
            y_label: &p.features[0],
            columns: &p.columns,
            rows: &p.rows,
            values: &p.values,
            diverging: true,
            annotate: (p.values.len() <= 64).then_some(|v: f64| format!("{v:.2}")),
        })?;
        pairs_out.push(figure(&svg, "The pair term (log-odds, centred): red raises the risk, blue lowers it; each feature takes half."));
    }
    Ok(html! {
        section {
            h2 { "Effects" }
            (definition("A feature's contribution is its term minus the term's training mean, in log-odds: the contributions of a customer plus the baseline give the score's logit exactly."))
            div.grid { @for c in &charts_out { (c) } }
            @if !pairs_out.is_empty() {
                h3 { "Pairs" }
                div.grid { @for c in &pairs_out { (c) } }
            }
        }
    })
}

fn drift_table(d: &DriftReport) -> Markup {
    let rows: Vec<Vec<String>> = d
        .features
        .iter()
        .map(|f| {
            vec![
                f.feature.clone(),
                fixed(f.psi, 4),
                f.band.as_str().to_string(),
                pct(f.missing_share),
                pct(f.reference_missing_share),
                f.unseen_share.map_or("-".into(), pct),
            ]
        })
        .chain(std::iter::once(vec![
            "(the score)".to_string(),
            fixed(d.score.psi, 4),
            d.score.band.as_str().to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]))
        .collect();
    html! {
        section {
            h2 { "Drift against the training customers" }
            (definition(&d.definition))
            (table(&["feature", "PSI", "band", "missing", "missing at training", "unseen levels"], &rows))
        }
    }
}
