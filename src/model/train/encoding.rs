//! Columns to features: each column's kind (numeric when every present cell parses), the
//! encodings fitted on training rows (medians, means, standard deviations, level shares), and the
//! design matrix they give.
use super::options::TrainOptions;
use crate::error::{Error, Result};
use crate::io::{Column, Table};
use crate::schema::{CategoricalEncoding, FeatureDef, FeatureKind, NumericEncoding, Transform};
use ndarray::Array2;
use rayon::prelude::*;

/// A feature column with its kind decided.
pub(super) struct Input<'a> {
    pub(super) col: &'a Column,
    pub(super) numeric: bool,
    pub(super) transform: Transform,
}

pub(super) fn decide_kinds<'a>(table: &'a Table, opts: &TrainOptions) -> Result<Vec<Input<'a>>> {
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

pub(super) fn is_constant(col: &Column) -> bool {
    let mut it = col.numbers.iter().filter(|x| !x.is_nan());
    let first = it.next();
    first.is_none_or(|f| it.all(|x| x == f))
}

/// Encodings fitted on the rows `idx`: medians, means and standard deviations; level shares.
pub(super) fn fit_encoding(inputs: &[Input<'_>], idx: &[usize]) -> Vec<FeatureDef> {
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

pub(super) fn median(v: &mut [f64]) -> f64 {
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
pub(super) fn design(inputs: &[Input<'_>], defs: &[FeatureDef], idx: &[usize]) -> Array2<f64> {
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

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
