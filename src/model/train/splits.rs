//! Which rows train and which are held out: a seeded stratified split, a backtest split by time
//! (with a purge), and stratified folds for cross-validation. Seeded with SplitMix64 so that a
//! split depends on the seed alone.
use crate::error::{Error, Result};
use crate::io::Table;

/// A small, fixed pseudo-random generator (SplitMix64), so that splits depend on the seed alone,
/// on every platform and in every version.
pub(super) struct SplitMix64(u64);

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
        Key::Text(t) => crate::time::parse_day(t),
        Key::Number(x) => crate::time::parse_day(&format!("{x}")),
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
pub(super) fn stratified_folds(y: &[bool], k: usize, seed: u64) -> Vec<usize> {
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
    use std::collections::HashSet;

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
}
