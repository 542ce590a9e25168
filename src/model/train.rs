//! Training: a table of per-customer features -> a validated model file with its metrics.
//!
//! 1. Read the label and decide each column's kind (numeric when every present cell parses).
//! 2. Split off a stratified holdout (seeded).
//! 3. Choose the L2 strength by stratified k-fold cross-validation on the training part (mean
//!    validation log loss), unless given.
//! 4. Fit on the training part, measure on the holdout, and pick the tier cut points there.
//! 5. Refit the encoding and the weights on every row: that is the model written.
use crate::error::{Error, Result};
use crate::io::{Column, Table};
use crate::model::file::*;
use crate::model::metrics;
use crate::model::sigmoid;
use crate::model::solver::{self, FitOptions, LogisticFit, SolverKind};
use crate::schema::{CategoricalEncoding, FeatureDef, FeatureKind, NumericEncoding, Transform};
use ndarray::Array2;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// The L2 values cross-validation chooses from (penalty α on the summed loss).
pub const L2_GRID: [f64; 7] = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0];

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data_file: PathBuf,
    pub label: String,
    pub positive: Option<String>,
    pub id: Option<String>,
    pub drop: Vec<String>,
    pub categorical: Vec<String>,
    pub numeric: Vec<String>,
    pub transforms: Vec<(String, Transform)>,
    pub l2: Option<f64>,
    pub holdout: f64,
    /// Hold out the latest rows by this column (e.g. the snapshot date) instead of a random
    /// stratified share; the column is not a feature.
    pub split_by: Option<String>,
    /// With `split_by` holding dates: leave out training rows dated within this many days before
    /// the holdout (the label horizon), so their labels do not look into the held-out period.
    pub purge_days: Option<u32>,
    pub folds: u32,
    pub seed: u64,
    pub name: String,
    pub solver: SolverKind,
    /// Share of holdout customers put in HIGH, and in MEDIUM.
    pub tier_shares: (f64, f64),
}

impl TrainOptions {
    pub fn new(data_file: impl Into<PathBuf>, label: &str, name: &str) -> Self {
        TrainOptions {
            data_file: data_file.into(),
            label: label.to_string(),
            positive: None,
            id: None,
            drop: Vec::new(),
            categorical: Vec::new(),
            numeric: Vec::new(),
            transforms: Vec::new(),
            l2: None,
            holdout: 0.2,
            split_by: None,
            purge_days: None,
            folds: 5,
            seed: 0,
            name: name.to_string(),
            solver: SolverKind::Fast,
            tier_shares: (0.1, 0.2),
        }
    }

    /// Columns the reader need not keep.
    pub fn skipped_columns(&self) -> HashSet<String> {
        self.id.iter().chain(&self.drop).cloned().collect()
    }
}

/// What training did, beyond the model file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainReport {
    pub rows: u64,
    pub train_rows: u64,
    pub holdout_rows: u64,
    pub time_split: Option<crate::model::file::TimeSplit>,
    pub numeric_features: usize,
    pub categorical_features: usize,
    pub design_columns: usize,
    /// Cells that were missing (or, in a column declared --numeric, not a number) per feature.
    pub imputed_cells: Vec<FeatureCount>,
    /// Numeric features with one value only (kept, with no effect on scores).
    pub constant_features: Vec<String>,
    pub seconds: Timings,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    /// Fitting the encodings and building the design matrices.
    pub encoding: f64,
    pub cross_validation: f64,
    pub holdout: f64,
    /// The final fit on every row (the solver alone).
    pub final_fit: f64,
    /// Everything after reading: encoding, cross-validation, holdout, final fit.
    pub total: f64,
}

pub struct TrainOutcome {
    pub model: ModelFile,
    pub report: TrainReport,
}

/// A feature column with its kind decided.
struct Input<'a> {
    col: &'a Column,
    numeric: bool,
    transform: Transform,
}

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

    // Encodings and design of every row (the final model), and of the training part when a
    // holdout is set aside (else the training part is every row).
    let t = Instant::now();
    let defs = fit_encoding(&inputs, &all);
    let x_all = design(&inputs, &defs, &all);
    let split = if holdout_idx.is_empty() {
        None
    } else {
        let train_defs = fit_encoding(&inputs, &train_idx);
        let x_train = design(&inputs, &train_defs, &train_idx);
        let x_ho = design(&inputs, &train_defs, &holdout_idx);
        Some((x_train, x_ho))
    };
    let encode_seconds = t.elapsed().as_secs_f64();
    let (x_train, y_train): (&Array2<f64>, Vec<bool>) = match &split {
        Some((x, _)) => (x, train_idx.iter().map(|&i| y[i]).collect()),
        None => (&x_all, y.clone()),
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
    let cv_seconds = t.elapsed().as_secs_f64();

    // Holdout: fit on the training part, measure on the rest, choose tier cuts there.
    let t = Instant::now();
    let fit_opts = FitOptions::new(l2);
    let (holdout_metrics, holdout_p) = match &split {
        None => (None, None),
        Some((x_train, x_ho)) => {
            let fit = solver::fit(opts.solver, x_train.view(), &y_train, &fit_opts)?;
            let p = predict(&fit, x_ho);
            let y_ho: Vec<bool> = holdout_idx.iter().map(|&i| y[i]).collect();
            (Some(metrics::evaluate(&p, &y_ho)), Some(p))
        }
    };
    drop(split);
    let holdout_seconds = t.elapsed().as_secs_f64();

    // Final model on every row.
    let t = Instant::now();
    let fit = solver::fit(opts.solver, x_all.view(), &y, &fit_opts)?;
    let final_fit_seconds = t.elapsed().as_secs_f64();
    let tier_p = match holdout_p {
        Some(p) => p,
        None => predict(&fit, &x_all),
    };
    drop(x_all);
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
    let features = entries(&defs, &fit);
    let model = ModelFile {
        format: FORMAT,
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
            solver: SolverInfo {
                name: opts.solver.name().to_string(),
                iterations: fit.iterations,
                converged: fit.converged,
            },
        },
        features,
        intercept: fit.intercept,
        baseline_logit: fit.intercept,
        tiers,
        metrics: ModelMetrics {
            holdout: holdout_metrics,
            cross_validation: cv,
        },
    };
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
        seconds: Timings {
            encoding: encode_seconds,
            cross_validation: cv_seconds,
            holdout: holdout_seconds,
            final_fit: final_fit_seconds,
            total: started.elapsed().as_secs_f64(),
        },
    };
    Ok(TrainOutcome { model, report })
}

fn check_options(table: &Table, opts: &TrainOptions) -> Result<()> {
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

/// Labels as booleans (true = churned) and the positive value. `infer` allows guessing the
/// positive value from common spellings when none is given.
pub fn parse_labels(
    table: &Table,
    col: &Column,
    positive: Option<&str>,
    need_both: bool,
) -> Result<(Vec<bool>, String)> {
    let path = &table.path;
    let name = &col.name;
    let Some(levels) = col.levels.as_ref() else {
        return Err(Error::column(
            path,
            name,
            "the label has too many distinct values: expected two classes",
        ));
    };
    if let Some(i) = col.codes.iter().position(|&c| c == Column::MISSING_CODE) {
        return Err(Error::cell(
            path,
            table.lines[i],
            name,
            "the label is missing: every row needs one",
        ));
    }
    if levels.len() > 2 {
        let i = col.codes.iter().position(|&c| c >= 2).unwrap();
        return Err(Error::cell(
            path,
            table.lines[i],
            name,
            format!(
                "label value \"{}\" is a third class: expected only \"{}\" and \"{}\"",
                levels[2], levels[0], levels[1]
            ),
        ));
    }
    if need_both && levels.len() < 2 {
        return Err(Error::column(
            path,
            name,
            format!(
                "the label has one class only (\"{}\"): a model needs rows of both classes",
                levels.first().map(String::as_str).unwrap_or("")
            ),
        ));
    }
    let pos = match positive {
        Some(p) => match levels.iter().position(|l| l == p) {
            Some(i) => i,
            None if !need_both => usize::MAX,
            None => {
                return Err(Error::column(
                    path,
                    name,
                    format!(
                        "--positive \"{p}\" is not a label value; the values are \"{}\"",
                        levels.join("\", \"")
                    ),
                ));
            }
        },
        None => guess_positive(levels).ok_or_else(|| {
            Error::column(
                path,
                name,
                format!(
                    "cannot tell which label value means churned: pass --positive (values: \"{}\")",
                    levels.join("\", \"")
                ),
            )
        })?,
    };
    let positive = positive
        .map(str::to_string)
        .unwrap_or_else(|| levels[pos].clone());
    Ok((
        col.codes.iter().map(|&c| c as usize == pos).collect(),
        positive,
    ))
}

fn guess_positive(levels: &[String]) -> Option<usize> {
    const YES: [&str; 6] = ["1", "yes", "true", "churned", "churn", "y"];
    let hits: Vec<usize> = (0..levels.len())
        .filter(|&i| YES.contains(&levels[i].to_ascii_lowercase().as_str()))
        .collect();
    (hits.len() == 1).then(|| hits[0])
}

fn decide_kinds<'a>(table: &'a Table, opts: &TrainOptions) -> Result<Vec<Input<'a>>> {
    let path = &table.path;
    let mut inputs = Vec::new();
    let not_features =
        |c: &&Column| c.name == opts.label || opts.split_by.as_ref() == Some(&c.name);
    for col in table.columns.iter().filter(|c| !not_features(c)) {
        let name = &col.name;
        if col.missing as usize == col.len() {
            return Err(Error::column(
                path,
                name,
                format!("every cell is missing: nothing to learn from; drop it with --drop {name}"),
            ));
        }
        let numeric = if opts.categorical.contains(name) {
            false
        } else if opts.numeric.contains(name) {
            if col.unparsable as usize + col.missing as usize == col.len() {
                let (i, text) = col.first_unparsable.clone().unwrap();
                return Err(Error::cell(
                    path,
                    table.lines[i],
                    name,
                    format!("declared --numeric but no cell is a number (e.g. \"{text}\")"),
                ));
            }
            true
        } else {
            col.is_numeric()
        };
        if !numeric && col.levels.is_none() {
            let example = col
                .first_unparsable
                .as_ref()
                .map(|(i, t)| format!(" (line {}: \"{t}\")", table.lines[*i]))
                .unwrap_or_default();
            return Err(Error::column(
                path,
                name,
                format!(
                    "too many distinct text values for a categorical feature{example}: if it identifies customers pass --id {name} or --drop {name}; if it is numeric, pass --numeric {name}"
                ),
            ));
        }
        let transform = opts
            .transforms
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        if transform != Transform::None {
            if !numeric {
                return Err(Error::column(
                    path,
                    name,
                    format!("--transform {} needs a numeric column", transform.name()),
                ));
            }
            if let Some(i) = col
                .numbers
                .iter()
                .position(|&x| !x.is_nan() && transform.apply(x).is_none())
            {
                return Err(Error::cell(
                    path,
                    table.lines[i],
                    name,
                    format!(
                        "{} is outside the domain of {} (values must be above -1)",
                        col.numbers[i],
                        transform.name()
                    ),
                ));
            }
        }
        inputs.push(Input {
            col,
            numeric,
            transform,
        });
    }
    if inputs.is_empty() {
        return Err(Error::data(
            path,
            "no feature columns left besides the label, id and dropped columns",
        ));
    }
    Ok(inputs)
}

fn is_constant(col: &Column) -> bool {
    let mut it = col.numbers.iter().filter(|x| !x.is_nan());
    let first = it.next();
    first.is_none_or(|f| it.all(|x| x == f))
}

/// Encodings fitted on the rows `idx`: medians, means and standard deviations; level shares.
fn fit_encoding(inputs: &[Input<'_>], idx: &[usize]) -> Vec<FeatureDef> {
    inputs
        .par_iter()
        .map(|inp| {
            let name = inp.col.name.clone();
            if inp.numeric {
                let mut present: Vec<f64> = idx
                    .iter()
                    .map(|&i| inp.col.numbers[i])
                    .filter(|x| !x.is_nan())
                    .collect();
                let impute = median(&mut present);
                let t = |i: usize| {
                    let x = inp.col.numbers[i];
                    inp.transform
                        .apply(if x.is_nan() { impute } else { x })
                        .unwrap()
                };
                let n = idx.len() as f64;
                let mean = idx.iter().map(|&i| t(i)).sum::<f64>() / n;
                let var = idx.iter().map(|&i| (t(i) - mean).powi(2)).sum::<f64>() / n;
                let std = if var > 0.0 { var.sqrt() } else { 1.0 };
                FeatureDef {
                    name,
                    kind: FeatureKind::Numeric(NumericEncoding {
                        transform: inp.transform,
                        impute,
                        mean,
                        std,
                    }),
                }
            } else {
                let levels = inp.col.levels.as_ref().unwrap();
                let mut counts = vec![0u64; levels.len()];
                let mut missing = 0u64;
                for &i in idx {
                    match inp.col.codes[i] {
                        Column::MISSING_CODE => missing += 1,
                        c => counts[c as usize] += 1,
                    }
                }
                // Levels seen in these rows, sorted; missing cells count as the most frequent level.
                let mut seen: Vec<usize> = (0..levels.len()).filter(|&l| counts[l] > 0).collect();
                seen.sort_by(|&a, &b| levels[a].cmp(&levels[b]));
                let mode = *seen
                    .iter()
                    .max_by(|&&a, &&b| counts[a].cmp(&counts[b]).then(b.cmp(&a)))
                    .unwrap();
                counts[mode] += missing;
                let n = idx.len() as f64;
                let shares = seen.iter().map(|&l| counts[l] as f64 / n).collect();
                let unseen = seen.iter().position(|&l| l == mode).unwrap();
                FeatureDef {
                    name,
                    kind: FeatureKind::Categorical(CategoricalEncoding::new(
                        seen.iter().map(|&l| levels[l].clone()).collect(),
                        shares,
                        unseen,
                    )),
                }
            }
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let odd = v.len() % 2 == 1;
    let m = v.len() / 2;
    let (lower, mid, _) = v.select_nth_unstable_by(m, f64::total_cmp);
    let mid = *mid;
    if odd {
        mid
    } else {
        // The largest value below the middle one.
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (below + mid)
    }
}

/// Row-major design matrix of the rows `idx` under `defs`.
fn design(inputs: &[Input<'_>], defs: &[FeatureDef], idx: &[usize]) -> Array2<f64> {
    let width: usize = defs.iter().map(FeatureDef::width).sum();
    let mut x = Array2::<f64>::zeros((idx.len(), width));
    let flat = x.as_slice_mut().unwrap();
    flat.par_chunks_mut(width * 1024)
        .zip(idx.par_chunks(1024))
        .for_each(|(out, rows)| {
            for (r, &i) in out.chunks_exact_mut(width).zip(rows) {
                let mut k = 0;
                for (inp, def) in inputs.iter().zip(defs) {
                    match &def.kind {
                        FeatureKind::Numeric(enc) => {
                            let v = inp.col.numbers[i];
                            r[k] = enc.z(if v.is_nan() { enc.impute } else { v }).unwrap();
                            k += 1;
                        }
                        FeatureKind::Categorical(enc) => {
                            let level = match inp.col.text(i) {
                                Some(t) => enc.level(t).unwrap_or(enc.unseen),
                                None => enc.unseen,
                            };
                            for (l, share) in enc.shares.iter().enumerate() {
                                r[k + l] = if l == level { 1.0 } else { 0.0 } - share;
                            }
                            k += enc.levels.len();
                        }
                    }
                }
            }
        });
    x
}

fn predict(fit: &LogisticFit, x: &Array2<f64>) -> Vec<f64> {
    x.outer_iter()
        .map(|r| sigmoid(fit.logit(r.as_slice().unwrap())))
        .collect()
}

/// Chooses α on `grid` by stratified k-fold cross-validation (mean validation log loss; ties go to
/// the larger α), and reports the folds' metrics at that α.
fn cross_validate(
    x: &Array2<f64>,
    y: &[bool],
    grid: &[f64],
    opts: &TrainOptions,
) -> Result<(f64, CvMetrics)> {
    let k = opts.folds as usize;
    let fold = stratified_folds(y, k, opts.seed ^ 0x9e37_79b9_7f4a_7c15);
    // Per fold, from the strongest penalty down, warm-starting each fit from the previous one.
    let mut grid_desc = grid.to_vec();
    grid_desc.sort_by(|a, b| b.total_cmp(a));
    let per_fold: Vec<Vec<(f64, f64)>> = (0..k)
        .map(|f| {
            let tr: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
            let va: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
            let xt = x.select(ndarray::Axis(0), &tr);
            let yt: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
            let xv = x.select(ndarray::Axis(0), &va);
            let yv: Vec<bool> = va.iter().map(|&i| y[i]).collect();
            let mut init = None;
            let mut out = Vec::new();
            for &alpha in &grid_desc {
                let mut o = FitOptions::new(alpha);
                o.init = init.take();
                let fit = solver::fit(opts.solver, xt.view(), &yt, &o)?;
                let p = predict(&fit, &xv);
                out.push((metrics::log_loss(&p, &yv), metrics::auc(&p, &yv)));
                init = Some((fit.weights, fit.intercept));
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let mean_loss = |g: usize| per_fold.iter().map(|f| f[g].0).sum::<f64>() / k as f64;
    let best = (0..grid_desc.len())
        .min_by(|&a, &b| mean_loss(a).total_cmp(&mean_loss(b)).then(a.cmp(&b)))
        .unwrap();
    let (auc_mean, auc_std) = mean_std(per_fold.iter().map(|f| f[best].1));
    let (log_loss_mean, log_loss_std) = mean_std(per_fold.iter().map(|f| f[best].0));
    let mut l2_path: Vec<(f64, f64)> = (0..grid_desc.len())
        .map(|g| (grid_desc[g], mean_loss(g)))
        .collect();
    l2_path.reverse();
    Ok((
        grid_desc[best],
        CvMetrics {
            folds: k as u32,
            auc_mean,
            auc_std,
            log_loss_mean,
            log_loss_std,
            l2_path,
        },
    ))
}

fn mean_std(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = v.collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

/// Cut points such that about `high` of the scores are HIGH and `medium` more are MEDIUM.
fn tier_cuts(p: &[f64], (high, medium): (f64, f64)) -> Result<TierCuts> {
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

fn entries(defs: &[FeatureDef], fit: &LogisticFit) -> Vec<FeatureEntry> {
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
                    weight: fit.weights[k],
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

/// A small, fixed pseudo-random generator (SplitMix64), so that splits depend on the seed alone,
/// on every platform and in every version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Stratified split: round(share x class size) of each class to the holdout. Both parts sorted.
pub fn stratified_split(y: &[bool], share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = SplitMix64(seed);
    let (mut train, mut holdout) = (Vec::new(), Vec::new());
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rng.shuffle(&mut idx);
        let k = (idx.len() as f64 * share).round() as usize;
        holdout.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    holdout.sort_unstable();
    (train, holdout)
}

/// A backtest split: the rows with the latest values of `column` (numbers by value, text in text
/// order, so ISO dates order by time) go to the holdout, taking whole values from the latest
/// back until at least `share` of the rows are held out, and leaving at least one value for
/// training. With `purge` days, the column must hold dates, and training rows dated less than
/// `purge` days before the first held-out date are left out. Returns (training rows, holdout rows,
/// first holdout value, rows purged).
pub fn latest_split(
    table: &Table,
    column: &str,
    share: f64,
    purge: Option<u32>,
) -> Result<(Vec<usize>, Vec<usize>, String, u64)> {
    let col = table
        .column(column)
        .ok_or_else(|| Error::column(&table.path, column, "no such column"))?;
    let n = col.len();
    // A sortable key per row.
    #[derive(Clone, PartialEq, PartialOrd)]
    enum Key<'a> {
        Number(f64),
        Text(&'a str),
    }
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let key = if col.is_numeric() {
            Some(col.numbers[i])
                .filter(|x| !x.is_nan())
                .map(Key::Number)
        } else if col.levels.is_some() {
            col.text(i).map(Key::Text)
        } else {
            return Err(Error::column(
                &table.path,
                column,
                "--split-by: too many distinct text values to order; use a date or number column",
            ));
        };
        match key {
            Some(k) => keys.push(k),
            None => {
                return Err(Error::cell(
                    &table.path,
                    table.lines[i],
                    column,
                    "--split-by: missing value; every row needs one to place it in time",
                ));
            }
        }
    }
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN keys"));
    if sorted.first() == sorted.last() {
        return Err(Error::column(
            &table.path,
            column,
            "--split-by: needs at least two distinct values (one to train on, a later one to hold out)",
        ));
    }
    // Whole values from the latest back, until the share is reached; the earliest value always
    // stays for training.
    let want = (share * n as f64).ceil() as usize;
    let mut cut = n;
    while cut > 0 {
        let start = sorted[..cut].partition_point(|x| x < &sorted[cut - 1]);
        if start == 0 {
            break;
        }
        cut = start;
        if n - cut >= want {
            break;
        }
    }
    let from = sorted[cut].clone();
    let day = |k: &Key<'_>| match k {
        Key::Text(t) => crate::features::time::parse_day(t),
        Key::Number(x) => crate::features::time::parse_day(&format!("{x}")),
    };
    // The first day a training row may not reach: its date plus the purge must stay before it.
    let limit = match purge {
        None => None,
        Some(p) => Some((
            i64::from(p),
            day(&from).ok_or_else(|| {
                Error::column(
                    &table.path,
                    column,
                    "--purge needs dates (YYYY-MM-DD) in the --split-by column",
                )
            })?,
        )),
    };
    let (mut train, mut holdout, mut purged) = (Vec::new(), Vec::new(), 0u64);
    for (i, k) in keys.iter().enumerate() {
        if *k >= from {
            holdout.push(i);
            continue;
        }
        if let Some((p, first)) = limit {
            let d = day(k).ok_or_else(|| {
                Error::cell(
                    &table.path,
                    table.lines[i],
                    column,
                    "--purge needs a date (YYYY-MM-DD) in every row of the --split-by column",
                )
            })?;
            if d + p > first {
                purged += 1;
                continue;
            }
        }
        train.push(i);
    }
    if train.is_empty() {
        return Err(Error::column(
            &table.path,
            column,
            "--split-by: no training rows left before the held-out period (a shorter --purge or a smaller --holdout)",
        ));
    }
    let from = match from {
        Key::Number(x) => x.to_string(),
        Key::Text(t) => t.to_string(),
    };
    Ok((train, holdout, from, purged))
}

/// Stratified fold number for each row.
fn stratified_folds(y: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut fold = vec![0; y.len()];
    let mut next = 0;
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rng.shuffle(&mut idx);
        for i in idx {
            fold[i] = next % k;
            next += 1;
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let y: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let (tr, ho) = stratified_split(&y, 0.2, 7);
        assert_eq!(tr.len() + ho.len(), 1000);
        assert_eq!(ho.iter().filter(|&&i| y[i]).count(), 50);
        assert_eq!(ho.len(), 200);
        let set: HashSet<usize> = tr.iter().chain(&ho).copied().collect();
        assert_eq!(set.len(), 1000);
        assert_eq!(stratified_split(&y, 0.2, 7), (tr.clone(), ho.clone()));
        assert_ne!(stratified_split(&y, 0.2, 8).1, ho);
    }

    #[test]
    fn folds_balance_classes() {
        let y: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let f = stratified_folds(&y, 5, 1);
        for k in 0..5 {
            let rows = (0..1000).filter(|&i| f[i] == k).count();
            let pos = (0..1000).filter(|&i| f[i] == k && y[i]).count();
            assert_eq!(rows, 200);
            assert_eq!(pos, 50);
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn tier_cuts_follow_shares() {
        let p: Vec<f64> = (1..=100).map(|i| i as f64 / 101.0).collect();
        let t = tier_cuts(&p, (0.1, 0.2)).unwrap();
        assert_eq!(p.iter().filter(|&&x| x >= t.high).count(), 10);
        assert_eq!(p.iter().filter(|&&x| x >= t.medium).count(), 30);
    }
}
