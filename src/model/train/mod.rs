//! Training: a table of per-customer features -> a validated model file with its metrics.
//!
//! 1. Read the label and decide each column's kind (numeric when every present cell parses).
//! 2. Split off a stratified holdout (seeded).
//! 3. Choose the L2 strength by stratified k-fold cross-validation on the training part (mean
//!    validation log loss), unless given.
//! 4. Fit on the training part, measure on the holdout, and pick the tier cut points there.
//! 5. Refit the encoding and the weights on every row: that is the model written.
mod additive;
mod banded;
mod cross_validation;
mod encoding;
mod labels;
mod options;
pub mod solver;
mod splits;

pub use additive::SMOOTHING_GRID;
pub use labels::parse_labels;
pub use options::{
    AdditiveReport, KindChoice, L2_GRID, Timings, TrainOptions, TrainOutcome, TrainReport,
};
pub use solver::SolverKind;
pub use splits::{latest_split, stratified_split};

use crate::error::{Error, Result};
use crate::io::Table;
use crate::model::file::*;
use crate::model::metrics;
use crate::model::sigmoid;
use crate::schema::{FeatureDef, FeatureKind};
use cross_validation::cross_validate;
use encoding::{Input, decide_kinds, design, fit_encoding, is_constant};
use ndarray::Array2;
use solver::{FitOptions, LogisticFit};
use std::collections::HashSet;
use std::time::Instant;

/// Under `--kind auto` the additive kind must beat the linear one's log loss by this share: a tie
/// goes to the simpler model.
pub const AUTO_MARGIN: f64 = 0.001;

pub fn train(table: &Table, data_sha256: &str, opts: &TrainOptions) -> Result<TrainOutcome> {
    let started = Instant::now();
    let path = &table.path;
    check_options(table, opts)?;
    if table.rows() == 0 {
        return Err(Error::data(
            path,
            "no data rows: the file has a header only",
        ));
    }
    let label_col = table.column(&opts.label).ok_or_else(|| {
        Error::column(
            path,
            &opts.label,
            format!(
                "no such label column; the columns are: {}",
                table.header.join(", ")
            ),
        )
    })?;
    let (y, positive) = parse_labels(table, label_col, opts.positive.as_deref(), true)?;
    let inputs = decide_kinds(table, opts)?;

    let n = y.len();
    let positives = y.iter().filter(|&&b| b).count();
    let all: Vec<usize> = (0..n).collect();
    let mut time_split = None;
    let (train_idx, holdout_idx) = match &opts.split_by {
        Some(col) => {
            let (tr, ho, from, purged) = latest_split(table, col, opts.holdout, opts.purge_days)?;
            time_split = Some(crate::model::file::TimeSplit {
                column: col.clone(),
                holdout_from: from,
                purge_days: opts.purge_days,
                purged_rows: purged,
            });
            (tr, ho)
        }
        None if opts.holdout > 0.0 => stratified_split(&y, opts.holdout, opts.seed),
        None => (all.clone(), Vec::new()),
    };
    for (part, idx) in [("training", &train_idx), ("holdout", &holdout_idx)] {
        if idx.is_empty() && part == "holdout" {
            continue;
        }
        let pos = idx.iter().filter(|&&i| y[i]).count();
        if pos == 0 || pos == idx.len() {
            return Err(Error::column(
                path,
                &opts.label,
                format!(
                    "the {part} part ({} rows) holds one class only: too few rows of the rarer class ({} of {n}) for --holdout {}",
                    idx.len(),
                    positives.min(n - positives),
                    opts.holdout
                ),
            ));
        }
    }

    let t = Instant::now();
    let defs = fit_encoding(&inputs, &all);
    let mut encode_seconds = t.elapsed().as_secs_f64();
    let mut timings = Timings::default();

    let linear = if opts.kind != KindChoice::Additive {
        Some(train_linear(
            &inputs,
            &defs,
            &train_idx,
            &holdout_idx,
            &y,
            opts,
            &mut timings,
        )?)
    } else {
        None
    };
    encode_seconds += timings.encoding;
    let t = Instant::now();
    let additive = if opts.kind != KindChoice::Linear {
        Some(additive::train_additive(
            &inputs,
            &defs,
            &train_idx,
            &holdout_idx,
            &y,
            opts,
        )?)
    } else {
        None
    };
    timings.additive = t.elapsed().as_secs_f64();

    // The kind: as asked, or under auto the lower cross-validated (else holdout) log loss.
    let score_of = |cv: &Option<CvMetrics>, ho: &Option<metrics::Metrics>| {
        cv.as_ref()
            .map(|c| (c.log_loss_mean, c.auc_mean))
            .or_else(|| ho.as_ref().map(|h| (h.log_loss, h.auc)))
    };
    let kinds_tried: Vec<KindScore> = [
        (
            ModelKind::Linear,
            linear.as_ref().map(|l| (&l.cv, &l.holdout)),
        ),
        (
            ModelKind::Additive,
            additive.as_ref().map(|a| (&a.cv, &a.holdout)),
        ),
    ]
    .into_iter()
    .filter_map(|(kind, fitted)| {
        let (cv_log_loss, cv_auc) = fitted.and_then(|(cv, ho)| score_of(cv, ho))?;
        Some(KindScore {
            kind,
            cv_log_loss,
            cv_auc,
        })
    })
    .collect();
    let by = if opts.folds >= 2 {
        "cross-validated log loss (--kind auto)"
    } else {
        "holdout log loss (--kind auto, no cross-validation)"
    };
    let (kind, kind_chosen_by) = match opts.kind {
        KindChoice::Linear => (ModelKind::Linear, "--kind linear".to_string()),
        KindChoice::Additive => (ModelKind::Additive, "--kind additive".to_string()),
        KindChoice::Auto => match kinds_tried.as_slice() {
            [l, a] if a.cv_log_loss < l.cv_log_loss * (1.0 - AUTO_MARGIN) => {
                (ModelKind::Additive, by.to_string())
            }
            [_, _] => (ModelKind::Linear, by.to_string()),
            _ => (
                ModelKind::Linear,
                "linear: no cross-validation or holdout to compare kinds on (--kind auto)"
                    .to_string(),
            ),
        },
    };

    let (l2, l2_chosen_by) = match &linear {
        Some(l) => (l.l2, l.l2_chosen_by.clone()),
        None => (additive::RIDGE, "additive ridge (fixed)".to_string()),
    };
    let (features, pairs, intercept, baseline_logit, holdout_metrics, tier_p, cv, solver) =
        match kind {
            ModelKind::Linear => {
                let l = linear.unwrap();
                let solver = SolverInfo {
                    name: opts.solver.name().to_string(),
                    iterations: l.fit.iterations,
                    converged: l.fit.converged,
                };
                let features = entries(&defs, &l.fit);
                let b = l.fit.intercept;
                (
                    features,
                    Vec::new(),
                    b,
                    b,
                    l.holdout,
                    l.tier_p,
                    l.cv,
                    solver,
                )
            }
            ModelKind::Additive => {
                let a = additive.as_ref().unwrap();
                let solver = SolverInfo {
                    name: "lbfgs-binned".to_string(),
                    iterations: Some(a.info.iterations),
                    converged: Some(a.info.converged),
                };
                let features = additive_entries(&defs, &a.terms);
                let pairs = a.terms.pairs.clone();
                let b = a.terms.intercept;
                let baseline = b + crate::model::additive::means_sum(&features, &pairs);
                (
                    features,
                    pairs,
                    b,
                    baseline,
                    a.holdout.clone(),
                    a.tier_p.clone(),
                    a.cv.clone(),
                    solver,
                )
            }
        };
    let tiers = tier_cuts(&tier_p, opts.tier_shares)?;

    let imputed_cells: Vec<FeatureCount> = inputs
        .iter()
        .map(|i| FeatureCount {
            feature: i.col.name.clone(),
            cells: i.col.missing + if i.numeric { i.col.unparsable } else { 0 },
        })
        .filter(|c| c.cells > 0)
        .collect();
    let constant_features = defs
        .iter()
        .zip(&inputs)
        .filter(|(_, i)| i.numeric && is_constant(i.col))
        .map(|(d, _)| d.name.clone())
        .collect();
    let (health, health_report) = fit_health(table, &inputs, &defs, &y, opts)?;
    let model = ModelFile {
        format: if health.is_some() {
            FORMAT
        } else {
            crate::model::file::FORMAT_WITHOUT_HEALTH
        },
        health,
        kind,
        name: opts.name.clone(),
        version: 0,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        churn_version: env!("CARGO_PKG_VERSION").to_string(),
        training: TrainingInfo {
            data_file: opts.data_file.display().to_string(),
            data_sha256: data_sha256.to_string(),
            rows: n as u64,
            label: opts.label.clone(),
            positive,
            id_column: opts.id.clone(),
            dropped: opts.drop.clone(),
            l2,
            l2_chosen_by,
            seed: opts.seed,
            holdout_fraction: opts.holdout,
            time_split: time_split.clone(),
            folds: opts.folds,
            positive_share: positives as f64 / n as f64,
            imputed_cells: imputed_cells.clone(),
            solver,
            kind_chosen_by: Some(kind_chosen_by.clone()),
            kinds_tried: kinds_tried.clone(),
            additive: additive.as_ref().map(|a| a.info.clone()),
        },
        features,
        pairs,
        intercept,
        baseline_logit,
        tiers,
        metrics: ModelMetrics {
            holdout: holdout_metrics,
            cross_validation: cv,
        },
        drift: None,
    };
    // What the training customers look like, scored by the model just made: drift's references.
    let scorer = crate::model::ChurnModel::from_file(model.clone())
        .map_err(|m| Error::Training(format!("the model just trained does not load: {m}")))?;
    // Rows the scoring rule refuses (text in a column trained with --numeric) are left out of
    // them; a table with no row to count keeps no references rather than failing the training.
    let drift = match crate::model::drift::reference(&scorer, table) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("no drift references kept: {e}");
            None
        }
    };
    let model = ModelFile { drift, ..model };
    let report = TrainReport {
        rows: n as u64,
        train_rows: train_idx.len() as u64,
        holdout_rows: holdout_idx.len() as u64,
        time_split,
        numeric_features: inputs.iter().filter(|i| i.numeric).count(),
        categorical_features: inputs.iter().filter(|i| !i.numeric).count(),
        design_columns: defs.iter().map(FeatureDef::width).sum(),
        imputed_cells,
        constant_features,
        kind,
        kind_chosen_by,
        kinds_tried,
        additive: additive.map(|a| a.report),
        health: health_report,
        seconds: Timings {
            encoding: encode_seconds,
            total: started.elapsed().as_secs_f64(),
            ..timings
        },
    };
    Ok(TrainOutcome { model, report })
}

/// Usage health: the measures asked for (or, for a table from `churn features`, its activity
/// metrics), each fitted on every row with missing cells imputed as scoring imputes them.
fn fit_health(
    table: &Table,
    inputs: &[Input<'_>],
    defs: &[FeatureDef],
    y: &[bool],
    opts: &TrainOptions,
) -> Result<(
    Option<crate::model::file::HealthEntry>,
    options::HealthReport,
)> {
    use crate::model::health;
    let path = &table.path;
    let (names, chosen_by): (Vec<String>, String) = match &opts.usage {
        Some(names) => (names.clone(), "--usage".into()),
        None if table.column("snapshot").is_some() => (
            inputs
                .iter()
                .filter(|i| i.numeric && health::is_activity_metric(&i.col.name))
                .map(|i| i.col.name.clone())
                .collect(),
            "the activity metrics of a churn features table".into(),
        ),
        None => (
            Vec::new(),
            "none: not a churn features table and no --usage".into(),
        ),
    };
    let report = |measures| options::HealthReport {
        measures,
        chosen_by: chosen_by.clone(),
    };
    for (w, _) in &opts.usage_weights {
        if !names.contains(w) {
            return Err(Error::Usage(format!(
                "--usage-weights names '{w}', which is not a usage measure; the measures are: {}",
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    if names.is_empty() {
        return Ok((None, report(Vec::new())));
    }
    let stayed: Vec<bool> = y.iter().map(|c| !c).collect();
    let mut measures = Vec::with_capacity(names.len());
    for name in &names {
        let at = inputs.iter().position(|i| i.col.name == *name);
        let Some(at) = at else {
            return Err(Error::column(
                path,
                name,
                "--usage: no such feature column (the id, label, --split-by and dropped columns are not features)",
            ));
        };
        let (inp, def) = (&inputs[at], &defs[at]);
        let FeatureKind::Numeric(enc) = &def.kind else {
            return Err(Error::column(
                path,
                name,
                "--usage: a usage measure must be numeric (a count, a sum, days active)",
            ));
        };
        let values: Vec<f64> = inp
            .col
            .numbers
            .iter()
            .map(|&x| if x.is_nan() { enc.impute } else { x })
            .collect();
        // A default measure with one value for every training customer cannot tell them apart
        // (a log with one user per account: users_total is 1 for all): left out rather than
        // pulling every health toward the middle. A measure named with --usage is kept.
        if opts.usage.is_none() && values.iter().all(|&v| v == values[0]) {
            continue;
        }
        let weight = opts
            .usage_weights
            .iter()
            .find(|(w, _)| w == name)
            .map_or(1.0, |(_, w)| *w);
        measures.push(health::fit_measure(name, &values, &stayed, weight));
    }
    if measures.is_empty() {
        return Ok((None, report(Vec::new())));
    }
    let summary = measures
        .iter()
        .map(|m| (m.feature.clone(), m.direction, m.staying_auc, m.weight))
        .collect();
    Ok((
        Some(crate::model::file::HealthEntry {
            measures,
            bands: opts.health_bands,
            chosen_by: chosen_by.clone(),
        }),
        report(summary),
    ))
}

/// The linear kind's run: L2 by cross-validation on the training part, a fit there measured on
/// the holdout, and the final fit on every row.
struct LinearOutcome {
    fit: LogisticFit,
    l2: f64,
    l2_chosen_by: String,
    cv: Option<CvMetrics>,
    holdout: Option<metrics::Metrics>,
    tier_p: Vec<f64>,
}

fn train_linear(
    inputs: &[encoding::Input<'_>],
    defs: &[FeatureDef],
    train_idx: &[usize],
    holdout_idx: &[usize],
    y: &[bool],
    opts: &TrainOptions,
    timings: &mut Timings,
) -> Result<LinearOutcome> {
    // Design of every row (the final model), and of the training part when a holdout is set
    // aside (else the training part is every row).
    let t = Instant::now();
    let all: Vec<usize> = (0..y.len()).collect();
    let x_all = design(inputs, defs, &all);
    let split = if holdout_idx.is_empty() {
        None
    } else {
        let train_defs = fit_encoding(inputs, train_idx);
        let x_train = design(inputs, &train_defs, train_idx);
        let x_ho = design(inputs, &train_defs, holdout_idx);
        Some((x_train, x_ho))
    };
    timings.encoding = t.elapsed().as_secs_f64();
    let (x_train, y_train): (&Array2<f64>, Vec<bool>) = match &split {
        Some((x, _)) => (x, train_idx.iter().map(|&i| y[i]).collect()),
        None => (&x_all, y.to_vec()),
    };

    // Choose L2 (and measure cross-validated metrics) on the training part.
    let t = Instant::now();
    let (l2, l2_chosen_by, cv) = if opts.folds >= 2 {
        let grid: Vec<f64> = match opts.l2 {
            Some(a) => vec![a],
            None => L2_GRID.to_vec(),
        };
        let cv = cross_validate(x_train, &y_train, &grid, opts)?;
        let chosen = if opts.l2.is_some() {
            "--l2"
        } else {
            "cross-validation (mean log loss)"
        };
        (cv.0, chosen.to_string(), Some(cv.1))
    } else {
        match opts.l2 {
            Some(a) => (a, "--l2".to_string(), None),
            None => (1.0, "default (no cross-validation)".to_string(), None),
        }
    };
    timings.cross_validation = t.elapsed().as_secs_f64();

    // Holdout: fit on the training part, measure on the rest, choose tier cuts there.
    let t = Instant::now();
    let fit_opts = FitOptions::new(l2);
    let (holdout, holdout_p) = match &split {
        None => (None, None),
        Some((x_train, x_ho)) => {
            let fit = solver::fit(opts.solver, x_train.view(), &y_train, &fit_opts)?;
            let p = predict(&fit, x_ho);
            let y_ho: Vec<bool> = holdout_idx.iter().map(|&i| y[i]).collect();
            (Some(metrics::evaluate(&p, &y_ho)), Some(p))
        }
    };
    drop(split);
    timings.holdout = t.elapsed().as_secs_f64();

    // Final model on every row.
    let t = Instant::now();
    let fit = solver::fit(opts.solver, x_all.view(), y, &fit_opts)?;
    timings.final_fit = t.elapsed().as_secs_f64();
    let tier_p = match holdout_p {
        Some(p) => p,
        None => predict(&fit, &x_all),
    };
    Ok(LinearOutcome {
        fit,
        l2,
        l2_chosen_by,
        cv,
        holdout,
        tier_p,
    })
}

/// The additive terms as feature entries: numeric features with their shapes, categorical ones
/// with each level's value as its weight.
fn additive_entries(defs: &[FeatureDef], terms: &additive::Terms) -> Vec<FeatureEntry> {
    defs.iter()
        .enumerate()
        .map(|(j, d)| match &d.kind {
            FeatureKind::Numeric(n) => FeatureEntry::Numeric(NumericEntry {
                name: d.name.clone(),
                transform: n.transform,
                impute: n.impute,
                mean: n.mean,
                std: n.std,
                weight: None,
                shape: terms.shapes[j].clone(),
            }),
            FeatureKind::Categorical(c) => {
                let values = terms.levels[j].as_ref().unwrap();
                FeatureEntry::Categorical(CategoricalEntry {
                    name: d.name.clone(),
                    levels: c
                        .levels
                        .iter()
                        .zip(&c.shares)
                        .zip(values)
                        .map(|((value, &share), &weight)| LevelEntry {
                            value: value.clone(),
                            share,
                            weight,
                        })
                        .collect(),
                    unseen_level: c.levels[c.unseen].clone(),
                })
            }
        })
        .collect()
}

pub(super) fn check_options(table: &Table, opts: &TrainOptions) -> Result<()> {
    let header: HashSet<&str> = table.header.iter().map(String::as_str).collect();
    let named = opts
        .id
        .iter()
        .chain(&opts.drop)
        .chain(&opts.categorical)
        .chain(&opts.numeric)
        .chain(opts.transforms.iter().map(|(c, _)| c))
        .chain(&opts.split_by);
    for name in named.chain(std::iter::once(&opts.label)) {
        if !header.contains(name.as_str()) {
            return Err(Error::column(
                &table.path,
                name,
                format!(
                    "no such column; the columns are: {}",
                    table.header.join(", ")
                ),
            ));
        }
    }
    if opts.id.as_deref() == Some(opts.label.as_str()) || opts.drop.contains(&opts.label) {
        return Err(Error::Usage(format!(
            "the label column '{}' cannot also be the id or dropped",
            opts.label
        )));
    }
    if opts.purge_days.is_some() && opts.split_by.is_none() {
        return Err(Error::Usage("--purge goes with --split-by".into()));
    }
    if let Some(c) = &opts.split_by {
        if c == &opts.label || opts.id.as_ref() == Some(c) || opts.drop.contains(c) {
            return Err(Error::Usage(format!(
                "--split-by {c}: the split column cannot also be the label, the id or dropped"
            )));
        }
        if opts.holdout <= 0.0 {
            return Err(Error::Usage(format!(
                "--split-by {c} needs --holdout above 0: it sets the share of rows held out"
            )));
        }
    }
    for c in &opts.categorical {
        if opts.numeric.contains(c) {
            return Err(Error::Usage(format!(
                "'{c}' is named both --categorical and --numeric"
            )));
        }
    }
    if !(0.0..0.9).contains(&opts.holdout) {
        return Err(Error::Usage(format!(
            "--holdout {} must be in [0, 0.9)",
            opts.holdout
        )));
    }
    if opts.folds == 1 {
        return Err(Error::Usage(
            "--folds must be 0 (no cross-validation) or at least 2".into(),
        ));
    }
    if let Some(a) = opts.l2
        && !(a.is_finite() && a >= 0.0)
    {
        {
            return Err(Error::Usage(format!(
                "--l2 {a} must be a finite number >= 0"
            )));
        }
    }
    let (h, m) = opts.tier_shares;
    if !(h > 0.0 && m >= 0.0 && h + m < 1.0) {
        return Err(Error::Usage(format!(
            "tier shares high {h} and medium {m} must be positive and sum below 1"
        )));
    }
    Ok(())
}

pub(super) fn predict(fit: &LogisticFit, x: &Array2<f64>) -> Vec<f64> {
    x.outer_iter()
        .map(|r| sigmoid(fit.logit(r.as_slice().unwrap())))
        .collect()
}

/// Cut points such that about `high` of the scores are HIGH and `medium` more are MEDIUM.
pub(super) fn tier_cuts(p: &[f64], (high, medium): (f64, f64)) -> Result<TierCuts> {
    let mut s = p.to_vec();
    // The score at descending rank ceil(share * n): a linear-time selection, not a sort.
    let mut at = |share: f64| {
        let k = ((s.len() as f64 * share - 1e-9).ceil() as usize).clamp(1, s.len()) - 1;
        *s.select_nth_unstable_by(k, |a, b| b.total_cmp(a)).1
    };
    let (h, m) = (at(high), at(high + medium));
    if !(m > 0.0 && h < 1.0) {
        return Err(Error::Training(
            "the scores are degenerate (0 or 1): cannot place tier cuts".into(),
        ));
    }
    Ok(TierCuts {
        medium: m,
        high: h,
        high_share: high,
        medium_share: medium,
    })
}

pub(super) fn entries(defs: &[FeatureDef], fit: &LogisticFit) -> Vec<FeatureEntry> {
    let mut k = 0;
    defs.iter()
        .map(|d| match &d.kind {
            FeatureKind::Numeric(n) => {
                let e = FeatureEntry::Numeric(NumericEntry {
                    name: d.name.clone(),
                    transform: n.transform,
                    impute: n.impute,
                    mean: n.mean,
                    std: n.std,
                    weight: Some(fit.weights[k]),
                    shape: None,
                });
                k += 1;
                e
            }
            FeatureKind::Categorical(c) => {
                let levels = c
                    .levels
                    .iter()
                    .zip(&c.shares)
                    .enumerate()
                    .map(|(l, (value, &share))| LevelEntry {
                        value: value.clone(),
                        share,
                        weight: fit.weights[k + l],
                    })
                    .collect();
                k += c.levels.len();
                FeatureEntry::Categorical(CategoricalEntry {
                    name: d.name.clone(),
                    levels,
                    unseen_level: c.levels[c.unseen].clone(),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_cuts_follow_shares() {
        let p: Vec<f64> = (1..=100).map(|i| i as f64 / 101.0).collect();
        let t = tier_cuts(&p, (0.1, 0.2)).unwrap();
        assert_eq!(p.iter().filter(|&&x| x >= t.high).count(), 10);
        assert_eq!(p.iter().filter(|&&x| x >= t.medium).count(), 30);
    }
}
