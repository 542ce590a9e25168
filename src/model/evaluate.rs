//! Measuring a model on a labelled table: the metrics of `churn evaluate`.
use crate::error::{Error, Result};
use crate::io::{Column, ReadOptions, Table, read_table};
use crate::model::file::FeatureCount;
use crate::model::metrics::{self, Confusion, Metrics};
use crate::model::train::parse_labels;
use crate::model::{ChurnModel, MAX_LISTED, RiskTier, RowScore, RowScratch};
use crate::schema::{FeatureKind, Note, Value};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub model: String,
    pub data_file: String,
    pub label: String,
    pub positive: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Confusion counts when MEDIUM-or-higher, and when HIGH, are predicted to churn.
    pub at_medium_cut: Confusion,
    pub at_high_cut: Confusion,
    /// Customers per tier with their observed churn rate, HIGH first.
    pub tiers: Vec<TierRow>,
    /// Cells imputed per feature (missing, or in a numeric column not a number).
    pub imputed_cells: Vec<FeatureCount>,
    /// Categorical cells with a level the model never saw, per feature.
    pub unseen_cells: Vec<FeatureCount>,
    /// Rows the model refused (text in a numeric column, a value outside a transform's domain):
    /// left out of the metrics, which count only the rows scored.
    pub rejected_rows: u64,
    /// The first rejected rows, with line (or row), column and reason.
    pub rejected: Vec<RejectedRow>,
}

/// A row left out of an evaluation, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedRow {
    /// The CSV line (the header is line 1) or Parquet row (from 1).
    pub line: u64,
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierRow {
    pub tier: &'static str,
    pub rows: u64,
    pub churn_rate: f64,
}

/// Reads `data` and evaluates `model` on it. The label column and positive value default to the
/// model's.
pub fn evaluate_file(
    model: &ChurnModel,
    data: &Path,
    label: Option<&str>,
    positive: Option<&str>,
    delimiter: Option<u8>,
) -> Result<Evaluation> {
    let (table, label, positive) = read_labelled(model, data, label, positive, delimiter)?;
    evaluate_table(model, &table, &label, &positive)
}

/// Reads the model's feature columns and the label column of `data`; returns the table with the
/// label column and positive value used (the model's unless given).
pub fn read_labelled(
    model: &ChurnModel,
    data: &Path,
    label: Option<&str>,
    positive: Option<&str>,
    delimiter: Option<u8>,
) -> Result<(Table, String, String)> {
    let label = label.unwrap_or(&model.file().training.label).to_string();
    let positive = positive
        .unwrap_or(&model.file().training.positive)
        .to_string();
    let table = read_columns(model, data, Some(&label), delimiter)?;
    Ok((table, label, positive))
}

/// Reads the model's feature columns of `data` (and `label`, when given), the cells as every
/// door reads them ("NaN" is text, refused in a numeric column).
pub fn read_columns(
    model: &ChurnModel,
    data: &Path,
    label: Option<&str>,
    delimiter: Option<u8>,
) -> Result<Table> {
    let header = crate::io::read_header(data, delimiter)?;
    let wanted: std::collections::HashSet<&str> = model
        .schema()
        .features()
        .iter()
        .map(|f| f.name.as_str())
        .chain(label)
        .collect();
    let opts = ReadOptions {
        skip: header
            .iter()
            .filter(|h| !wanted.contains(h.as_str()))
            .cloned()
            .collect(),
        max_levels: 100_000,
        delimiter,
        // "NaN" is refused here as by every door, not imputed as training does.
        nan_is_value: true,
    };
    read_table(data, &opts)
}

pub fn evaluate_table(
    model: &ChurnModel,
    table: &Table,
    label: &str,
    positive: &str,
) -> Result<Evaluation> {
    let scores = score_labelled(model, table, label, positive)?;
    Ok(evaluation(model, table, label, positive, &scores))
}

/// A labelled table scored row by row through [`ChurnModel::score_row`]: what an evaluation and
/// a model report are made of.
#[derive(Debug, Clone)]
pub struct LabelledScores {
    /// Probability and outcome of each scored row, in table order.
    pub p: Vec<f64>,
    pub y: Vec<bool>,
    /// The table index of each scored row.
    pub rows: Vec<usize>,
    /// Mean |contribution| (log-odds) of each feature over the scored rows, in schema order.
    pub mean_abs_contribution: Vec<f64>,
    imputed: Vec<u64>,
    unseen: Vec<u64>,
    rejected_rows: u64,
    rejected: Vec<RejectedRow>,
}

/// Scores every row of `table`; rows the model refuses are counted and listed, not scored. Fails
/// when no row could be scored.
pub fn score_labelled(
    model: &ChurnModel,
    table: &Table,
    label: &str,
    positive: &str,
) -> Result<LabelledScores> {
    let path = &table.path;
    let label_col = table
        .column(label)
        .ok_or_else(|| Error::column(path, label, "no such label column in the data"))?;
    let (y, _) = parse_labels(table, label_col, Some(positive), false)?;
    let nf = model.schema().len();
    struct Part {
        p: Vec<f64>,
        /// The rows scored, by table index.
        scored: Vec<usize>,
        abs_contribution: Vec<f64>,
    }
    let scan = scan_table(
        model,
        table,
        || Part {
            p: Vec::new(),
            scored: Vec::new(),
            abs_contribution: vec![0.0; nf],
        },
        |part, i, s, score| {
            part.p.push(score.probability);
            part.scored.push(i);
            for (sum, c) in part.abs_contribution.iter_mut().zip(&s.contributions) {
                *sum += c.abs();
            }
        },
    )?;
    let n = table.rows();
    let (mut p, mut y_scored, mut rows) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut abs_contribution = vec![0.0f64; nf];
    for part in scan.parts {
        p.extend(part.p);
        y_scored.extend(part.scored.iter().map(|&i| y[i]));
        rows.extend(part.scored);
        for (total, x) in abs_contribution.iter_mut().zip(&part.abs_contribution) {
            *total += x;
        }
    }
    let scored = p.len() as f64;
    Ok(LabelledScores {
        p,
        y: y_scored,
        rows,
        mean_abs_contribution: abs_contribution.iter().map(|s| s / scored).collect(),
        imputed: scan.imputed,
        unseen: scan.unseen,
        rejected_rows: scan.rejected_rows,
        rejected: scan.rejected,
    })
}

/// A table scored row by row: one accumulator per part of the rows (in row order), and what the
/// scoring found on the way.
pub struct TableScan<A> {
    pub parts: Vec<A>,
    /// Cells imputed (missing) and categorical cells of an unseen level, per feature.
    pub imputed: Vec<u64>,
    pub unseen: Vec<u64>,
    pub rejected_rows: u64,
    /// The first rejected rows, with line (or row), column and reason.
    pub rejected: Vec<RejectedRow>,
}

/// Scores every row of `table` through [`ChurnModel::score_row`] on every core, and hands each
/// scored row (its index, the filled scratch and the score) to `visit`, on an accumulator per
/// part of the rows. Rows the model refuses are counted and listed, not visited. Fails when the
/// table lacks a feature column or has rows but none could be scored; an empty table is an error
/// too (nothing to measure).
pub fn scan_table<A: Send>(
    model: &ChurnModel,
    table: &Table,
    fresh: impl Fn() -> A + Sync,
    visit: impl Fn(&mut A, usize, &RowScratch, &RowScore) + Sync,
) -> Result<TableScan<A>> {
    let path = &table.path;
    if table.rows() == 0 {
        return Err(Error::data(path, "no data rows"));
    }
    let schema = model.schema();
    let cols: Vec<&Column> = schema
        .features()
        .iter()
        .map(|f| {
            let col = table.column(&f.name).ok_or_else(|| {
                Error::column(
                    path,
                    &f.name,
                    "the model needs this feature column but the data has none",
                )
            })?;
            if matches!(f.kind, FeatureKind::Categorical(_)) && col.levels.is_none() {
                return Err(Error::column(
                    path,
                    &f.name,
                    "too many distinct values for a categorical feature",
                ));
            }
            Ok(col)
        })
        .collect::<Result<_>>()?;

    struct Chunk<A> {
        acc: A,
        imputed: Vec<u64>,
        unseen: Vec<u64>,
        rejected: u64,
        listed: Vec<RejectedRow>,
    }
    let n = table.rows();
    let nf = cols.len();
    let chunks: Vec<Chunk<A>> = (0..n)
        .collect::<Vec<_>>()
        .par_chunks(4096)
        .map(|rows| {
            let mut s = RowScratch::default();
            let mut row = vec![Value::Missing; nf];
            let mut c = Chunk {
                acc: fresh(),
                imputed: vec![0; nf],
                unseen: vec![0; nf],
                rejected: 0,
                listed: Vec::new(),
            };
            for &i in rows {
                // Cells as read; the model's one cell rule decides what each becomes.
                let mut unreadable = None;
                for (k, (col, f)) in cols.iter().zip(schema.features()).enumerate() {
                    row[k] = match f.kind {
                        FeatureKind::Numeric(_) => {
                            let x = col.numbers[i];
                            if !x.is_nan() {
                                Value::Number(x)
                            } else if col.is_unparsable(i) {
                                match col.text(i) {
                                    Some(t) => Value::Text(t),
                                    None => {
                                        // The text was not kept (a column of very many
                                        // distinct values): refused all the same.
                                        unreadable.get_or_insert(k);
                                        Value::Missing
                                    }
                                }
                            } else {
                                Value::Missing
                            }
                        }
                        FeatureKind::Categorical(_) => {
                            col.text(i).map_or(Value::Missing, Value::Text)
                        }
                    };
                }
                let scored = model.score_row(&row, false, &mut s);
                let refused: Option<(String, String)> = match (&scored, unreadable) {
                    (_, Some(k)) => Some((
                        schema.features()[k].name.clone(),
                        "expected a number, got text".to_string(),
                    )),
                    (None, None) => {
                        let v = &s.violations[0];
                        Some((
                            schema.features()[v.feature].name.clone(),
                            v.description.clone(),
                        ))
                    }
                    (Some(_), None) => None,
                };
                if let Some((column, reason)) = refused {
                    c.rejected += 1;
                    if c.listed.len() < MAX_LISTED {
                        c.listed.push(RejectedRow {
                            line: table.lines[i],
                            column,
                            reason,
                        });
                    }
                    continue;
                }
                let score = scored.expect("refused rows are skipped above");
                visit(&mut c.acc, i, &s, &score);
                for (k, note) in s.notes.iter().enumerate() {
                    match note {
                        Note::Imputed => c.imputed[k] += 1,
                        Note::Unseen => c.unseen[k] += 1,
                        Note::None => {}
                    }
                }
            }
            c
        })
        .collect();
    let mut scan = TableScan {
        parts: Vec::with_capacity(chunks.len()),
        imputed: vec![0u64; nf],
        unseen: vec![0u64; nf],
        rejected_rows: 0,
        rejected: Vec::new(),
    };
    for c in chunks {
        scan.parts.push(c.acc);
        for k in 0..nf {
            scan.imputed[k] += c.imputed[k];
            scan.unseen[k] += c.unseen[k];
        }
        scan.rejected_rows += c.rejected;
        let room = MAX_LISTED.saturating_sub(scan.rejected.len());
        scan.rejected.extend(c.listed.into_iter().take(room));
    }
    if scan.rejected_rows == n as u64 {
        return Err(Error::data(
            path,
            format!(
                "no row could be scored: all {n} were refused (first: {})",
                scan.rejected
                    .first()
                    .map(|r| format!("line {} column '{}': {}", r.line, r.column, r.reason))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(scan)
}

/// The evaluation of scored rows: metrics, confusion at the tier cuts, tiers, and what was
/// imputed, unseen or refused.
pub fn evaluation(
    model: &ChurnModel,
    table: &Table,
    label: &str,
    positive: &str,
    scores: &LabelledScores,
) -> Evaluation {
    let schema = model.schema();
    let (p, y) = (&scores.p, &scores.y);
    let n = p.len();
    let per_feature = |counts: &[u64]| -> Vec<FeatureCount> {
        schema
            .features()
            .iter()
            .zip(counts)
            .filter(|(_, c)| **c > 0)
            .map(|(f, c)| FeatureCount {
                feature: f.name.clone(),
                cells: *c,
            })
            .collect()
    };
    let cuts = &model.file().tiers;
    let tiers = [RiskTier::High, RiskTier::Medium, RiskTier::Low]
        .into_iter()
        .map(|t| {
            let idx: Vec<usize> = (0..n).filter(|&i| model.tier(p[i]) == t).collect();
            let churned = idx.iter().filter(|&&i| y[i]).count();
            TierRow {
                tier: t.as_str(),
                rows: idx.len() as u64,
                churn_rate: if idx.is_empty() {
                    f64::NAN
                } else {
                    churned as f64 / idx.len() as f64
                },
            }
        })
        .collect();
    Evaluation {
        model: model.id().to_string(),
        data_file: table.path.display().to_string(),
        label: label.to_string(),
        positive: positive.to_string(),
        metrics: metrics::evaluate(p, y),
        at_medium_cut: metrics::confusion(p, y, cuts.medium),
        at_high_cut: metrics::confusion(p, y, cuts.high),
        tiers,
        imputed_cells: per_feature(&scores.imputed),
        unseen_cells: per_feature(&scores.unseen),
        rejected_rows: scores.rejected_rows,
        rejected: scores.rejected.clone(),
    }
}
