//! Measuring a model on a labelled table: the metrics of `churn evaluate`.
use crate::error::{Error, Result};
use crate::io::{Column, ReadOptions, Table, read_table};
use crate::model::file::FeatureCount;
use crate::model::metrics::{self, Confusion, Metrics};
use crate::model::train::parse_labels;
use crate::model::{ChurnModel, RiskTier, RowScratch, sigmoid};
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
) -> Result<Evaluation> {
    let label = label.unwrap_or(&model.file().training.label).to_string();
    let positive = positive
        .unwrap_or(&model.file().training.positive)
        .to_string();
    // Keep only the model's features and the label.
    let header = crate::io::read_header(data)?;
    let wanted: std::collections::HashSet<&str> = model
        .schema()
        .features()
        .iter()
        .map(|f| f.name.as_str())
        .chain(std::iter::once(label.as_str()))
        .collect();
    let opts = ReadOptions {
        skip: header
            .iter()
            .filter(|h| !wanted.contains(h.as_str()))
            .cloned()
            .collect(),
        max_levels: 100_000,
    };
    let table = read_table(data, &opts)?;
    evaluate_table(model, &table, &label, &positive)
}

pub fn evaluate_table(
    model: &ChurnModel,
    table: &Table,
    label: &str,
    positive: &str,
) -> Result<Evaluation> {
    let path = &table.path;
    let label_col = table
        .column(label)
        .ok_or_else(|| Error::column(path, label, "no such label column in the data"))?;
    let (y, _) = parse_labels(table, label_col, Some(positive), false)?;
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

    struct Chunk {
        p: Vec<f64>,
        imputed: Vec<u64>,
        unseen: Vec<u64>,
    }
    let n = table.rows();
    let nf = cols.len();
    let chunks: Vec<Chunk> = (0..n)
        .collect::<Vec<_>>()
        .par_chunks(4096)
        .map(|rows| {
            let mut s = RowScratch::default();
            let mut row = vec![Value::Missing; nf];
            let mut c = Chunk {
                p: Vec::with_capacity(rows.len()),
                imputed: vec![0; nf],
                unseen: vec![0; nf],
            };
            for &i in rows {
                for (k, (col, f)) in cols.iter().zip(schema.features()).enumerate() {
                    row[k] = match f.kind {
                        FeatureKind::Numeric(_) => {
                            let x = col.numbers[i];
                            if x.is_nan() {
                                Value::Missing
                            } else {
                                Value::Number(x)
                            }
                        }
                        FeatureKind::Categorical(_) => {
                            col.text(i).map_or(Value::Missing, Value::Text)
                        }
                    };
                }
                match model.score_into(&row, false, &mut s) {
                    Some(logit) => c.p.push(sigmoid(logit)),
                    None => {
                        let v = &s.violations[0];
                        return Err(Error::cell(
                            path,
                            table.lines[i],
                            &v.field,
                            v.description.clone(),
                        ));
                    }
                }
                for (k, note) in s.notes.iter().enumerate() {
                    match note {
                        Note::Imputed => c.imputed[k] += 1,
                        Note::Unseen => c.unseen[k] += 1,
                        Note::None => {}
                    }
                }
            }
            Ok(c)
        })
        .collect::<Result<_>>()?;
    let mut p = Vec::with_capacity(n);
    let mut imputed = vec![0u64; nf];
    let mut unseen = vec![0u64; nf];
    for c in chunks {
        p.extend(c.p);
        for k in 0..nf {
            imputed[k] += c.imputed[k];
            unseen[k] += c.unseen[k];
        }
    }
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
    Ok(Evaluation {
        model: model.id().to_string(),
        data_file: path.display().to_string(),
        label: label.to_string(),
        positive: positive.to_string(),
        metrics: metrics::evaluate(&p, &y),
        at_medium_cut: metrics::confusion(&p, &y, cuts.medium),
        at_high_cut: metrics::confusion(&p, &y, cuts.high),
        tiers,
        imputed_cells: per_feature(&imputed),
        unseen_cells: per_feature(&unseen),
    })
}
