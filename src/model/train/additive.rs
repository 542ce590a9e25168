//! Fitting the additive kind: penalised bins (P-spline style) solved with L-BFGS.
//!
//! - Each numeric feature is cut into bins on training quantiles (as many as the data supports,
//!   up to `max_bins`, at least [`MIN_BIN_ROWS`] rows each, edges halfway between distinct values),
//!   plus a bin for missing values. Each categorical level is a bin.
//! - logit = b + Σ_j θ_j[bin_j(x)] + Σ_pairs θ_ab[cell(x_a, x_b)], fitted by minimising
//!   Σ log-loss + λ·Σ (second differences of neighbouring numeric bins)² + λ·Σ (first differences
//!   along the numeric sides of pair tables)² + ρ·Σ θ², all divided by n. The smoothing λ stops
//!   neighbouring bins jumping on noise; λ is chosen by cross-validated log loss.
//! - Pairs: after a fit of the main effects, every candidate pair is scored on coarse bins
//!   (≤ [`PAIR_BINS`] per side) by the log-loss gain a free 2-D table would bring beyond its two
//!   margins (Σ G²/(H+1) over cells less the same over rows and over columns, G and H the gradient
//!   and hessian sums of the rows in a cell); the best `interactions` with a positive gain are kept.
//! - Conditioning: L-BFGS runs on u = Lᵀθ, L the Cholesky factors of a banded per-term
//!   approximation of the Hessian (the term's rows per value at the base-rate weight plus its
//!   penalty), and each pair table's row and column sums are held near zero (they duplicate its
//!   features' main effects). Without these, a strong λ or a pair ran L-BFGS to its iteration cap.
//! - Rows are summed in fixed chunks in a fixed order: same data and seed, same bits, whatever the
//!   thread count.
use super::banded::Banded;
use super::solver::{FusedObjective, base_rate_logit, minimise};
use super::splits::stratified_folds;
use crate::error::{Error, Result};
use crate::io::Column;
use crate::model::additive::bin_of;
use crate::model::file::{PairAxis, PairEntry, ShapeEntry};
use crate::model::metrics;
use crate::model::sigmoid;
use crate::schema::{FeatureDef, FeatureKind};
use ndarray::Array1;
use rayon::prelude::*;

use super::encoding::Input;

/// The smoothing values cross-validation chooses from (λ on the summed loss).
pub const SMOOTHING_GRID: [f64; 4] = [10.0, 100.0, 1000.0, 10000.0];
/// Ridge on every value: keeps bins and levels with few rows near zero.
pub const RIDGE: f64 = 1.0;
/// Fewest training rows a numeric bin is cut with.
pub const MIN_BIN_ROWS: usize = 10;
/// Most coarse bins per side of a pair table.
pub const PAIR_BINS: usize = 8;
/// Cross-validation of λ runs on at most this many training rows (a stratified sample).
pub const CV_MAX_ROWS: usize = 50_000;
/// Pair scoring runs on at most this many rows (evenly spaced).
const PAIR_SCORE_ROWS: usize = 200_000;
/// Candidate pairs are drawn from at most this many features (the strongest main effects).
const PAIR_CANDIDATE_FEATURES: usize = 40;
const CHUNK_ROWS: usize = 2048;
/// L-BFGS stops at this norm of the gradient in the preconditioned coordinates u (about the
/// Newton decrement, √(2·excess mean loss)), or after this many iterations.
const GRADIENT_TOLERANCE: f64 = 1e-4;
const MAX_ITERATIONS: u64 = 500;

/// How one feature is binned.
#[derive(Debug, Clone)]
pub(super) enum MainLayout {
    /// Bins 0..=edges.len() by value, then one for missing.
    Numeric { edges: Vec<f64>, impute_bin: usize },
    /// One bin per level of the feature's encoding.
    Categorical { levels: usize },
}

impl MainLayout {
    fn width(&self) -> usize {
        match self {
            MainLayout::Numeric { edges, .. } => edges.len() + 2,
            MainLayout::Categorical { levels } => *levels,
        }
    }
}

/// A pair's table: coarse bins of each side, reached from the features' fine bins.
#[derive(Debug, Clone)]
pub(super) struct PairLayout {
    pub(super) features: [usize; 2],
    /// Fine bin -> coarse bin, per side (a numeric side's missing bin maps as its impute value).
    maps: [Vec<u16>; 2],
    axes: [PairAxis; 2],
    rows: usize,
    cols: usize,
    /// Which sides are ordered (numeric): first differences are penalised along them.
    ordered: [bool; 2],
}

impl PairLayout {
    /// The table cell of a row of fine bins.
    #[inline]
    fn cell(&self, row: &[u16]) -> usize {
        self.maps[0][row[self.features[0]] as usize] as usize * self.cols
            + self.maps[1][row[self.features[1]] as usize] as usize
    }
}

/// Every term's place in the parameter vector (the intercept is last).
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) mains: Vec<MainLayout>,
    pub(super) pairs: Vec<PairLayout>,
    offsets: Vec<usize>,
    params: usize,
}

impl Layout {
    fn new(mains: Vec<MainLayout>, pairs: Vec<PairLayout>) -> Layout {
        let mut offsets = Vec::with_capacity(mains.len() + pairs.len());
        let mut k = 0;
        for m in &mains {
            offsets.push(k);
            k += m.width();
        }
        for p in &pairs {
            offsets.push(k);
            k += p.rows * p.cols;
        }
        Layout {
            mains,
            pairs,
            offsets,
            params: k,
        }
    }
}

/// Fine bins of some rows, row-major (one u16 per main term).
pub(super) struct Binned {
    bins: Vec<u16>,
    width: usize,
}

impl Binned {
    fn rows(&self) -> usize {
        self.bins.len() / self.width.max(1)
    }

    fn row(&self, i: usize) -> &[u16] {
        &self.bins[i * self.width..(i + 1) * self.width]
    }

    /// The rows `idx` of this matrix.
    fn select(&self, idx: &[usize]) -> Binned {
        let mut bins = Vec::with_capacity(idx.len() * self.width);
        for &i in idx {
            bins.extend_from_slice(self.row(i));
        }
        Binned {
            bins,
            width: self.width,
        }
    }
}

/// Numeric bin edges from the present values of the rows `idx`: quantile cuts, at most
/// `max_bins` bins of at least [`MIN_BIN_ROWS`] rows, each edge halfway between two distinct
/// values (so the lower value falls below it and the upper one at or above it).
pub(super) fn quantile_edges(col: &Column, idx: &[usize], max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = idx
        .iter()
        .map(|&i| col.numbers[i])
        .filter(|x| !x.is_nan())
        .collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let bins = max_bins.min(n / MIN_BIN_ROWS).max(1);
    // Distinct values with their counts.
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for x in v {
        match distinct.last_mut() {
            Some((d, c)) if *d == x => *c += 1,
            _ => distinct.push((x, 1)),
        }
    }
    let mut edges = Vec::new();
    let target = n as f64 / bins as f64;
    let (mut cum, mut since_cut) = (0usize, 0usize);
    for w in distinct.windows(2) {
        cum += w[0].1;
        since_cut += w[0].1;
        let next_cut = (edges.len() + 1) as f64 * target;
        // Cut once the bin holds its share (and enough rows), leaving enough rows above.
        if cum as f64 >= next_cut - 1e-9
            && since_cut >= MIN_BIN_ROWS
            && n - cum >= MIN_BIN_ROWS
            && edges.len() + 1 < bins
        {
            let (a, b) = (w[0].0, w[1].0);
            let mid = a + (b - a) / 2.0;
            edges.push(if mid > a { mid } else { b });
            since_cut = 0;
        }
    }
    edges
}

/// The layout of the main effects: numeric edges from the rows `idx`, categorical levels from
/// `defs` (the model's encodings).
pub(super) fn main_layout(
    inputs: &[Input<'_>],
    defs: &[FeatureDef],
    idx: &[usize],
    max_bins: usize,
) -> Vec<MainLayout> {
    inputs
        .par_iter()
        .zip(defs)
        .map(|(inp, def)| match &def.kind {
            FeatureKind::Numeric(enc) => {
                let edges = quantile_edges(inp.col, idx, max_bins);
                let impute_bin = bin_of(&edges, enc.impute);
                MainLayout::Numeric { edges, impute_bin }
            }
            FeatureKind::Categorical(enc) => MainLayout::Categorical {
                levels: enc.levels.len(),
            },
        })
        .collect()
}

/// Fine bins of the rows `idx` under `mains`.
pub(super) fn bin_rows(
    inputs: &[Input<'_>],
    defs: &[FeatureDef],
    mains: &[MainLayout],
    idx: &[usize],
) -> Binned {
    let width = mains.len();
    // Column code -> level index of the encoding, per categorical feature.
    let code_maps: Vec<Option<(Vec<u16>, u16)>> = inputs
        .iter()
        .zip(defs)
        .map(|(inp, def)| match &def.kind {
            FeatureKind::Categorical(enc) => {
                let levels = inp.col.levels.as_deref().unwrap_or(&[]);
                let map = levels
                    .iter()
                    .map(|t| enc.level(t).unwrap_or(enc.unseen) as u16)
                    .collect();
                Some((map, enc.unseen as u16))
            }
            FeatureKind::Numeric(_) => None,
        })
        .collect();
    let mut bins = vec![0u16; idx.len() * width];
    bins.par_chunks_mut(width * CHUNK_ROWS)
        .zip(idx.par_chunks(CHUNK_ROWS))
        .for_each(|(out, rows)| {
            for (r, &i) in out.chunks_exact_mut(width).zip(rows) {
                for (j, ((inp, m), cm)) in inputs.iter().zip(mains).zip(&code_maps).enumerate() {
                    r[j] = match (m, cm) {
                        (MainLayout::Numeric { edges, .. }, _) => {
                            let x = inp.col.numbers[i];
                            if x.is_nan() {
                                (edges.len() + 1) as u16
                            } else {
                                bin_of(edges, x) as u16
                            }
                        }
                        (MainLayout::Categorical { .. }, Some((map, unseen))) => {
                            match inp.col.codes[i] {
                                Column::MISSING_CODE => *unseen,
                                c => map[c as usize],
                            }
                        }
                        (MainLayout::Categorical { .. }, None) => unreachable!(),
                    };
                }
            }
        });
    Binned { bins, width }
}

/// Rows per fine bin of each main term.
fn bin_counts(data: &Binned, mains: &[MainLayout]) -> Vec<Vec<u64>> {
    let mut counts: Vec<Vec<u64>> = mains.iter().map(|m| vec![0; m.width()]).collect();
    for i in 0..data.rows() {
        for (j, &b) in data.row(i).iter().enumerate() {
            counts[j][b as usize] += 1;
        }
    }
    counts
}

/// Coarse bins of one side: fine -> coarse map and the side's axis for the file.
fn coarse_side(m: &MainLayout, counts: &[u64]) -> (Vec<u16>, PairAxis, usize) {
    match m {
        MainLayout::Numeric { edges, impute_bin } => {
            let value_bins = edges.len() + 1;
            let total: u64 = counts[..value_bins].iter().sum();
            let target = total as f64 / PAIR_BINS as f64;
            let mut map = vec![0u16; value_bins + 1];
            let mut coarse_edges = Vec::new();
            let mut cum = 0u64;
            for b in 0..value_bins {
                map[b] = coarse_edges.len() as u16;
                cum += counts[b];
                if b + 1 < value_bins
                    && cum as f64 >= (coarse_edges.len() + 1) as f64 * target - 1e-9
                    && coarse_edges.len() + 1 < PAIR_BINS
                {
                    coarse_edges.push(edges[b]);
                }
            }
            map[value_bins] = map[*impute_bin];
            let bins = coarse_edges.len() + 1;
            (
                map,
                PairAxis {
                    edges: Some(coarse_edges),
                    level_bins: None,
                },
                bins,
            )
        }
        MainLayout::Categorical { levels } => {
            // The most frequent levels get their own bins (by count, then level order); the rest
            // share the last one.
            let mut order: Vec<usize> = (0..*levels).collect();
            order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
            let mut map = vec![0u16; *levels];
            let own = if *levels <= PAIR_BINS {
                *levels
            } else {
                PAIR_BINS - 1
            };
            for (rank, &l) in order.iter().enumerate() {
                map[l] = rank.min(own) as u16;
            }
            let bins = (*levels).min(PAIR_BINS);
            (
                map.clone(),
                PairAxis {
                    edges: None,
                    level_bins: Some(map.iter().map(|&b| b as u32).collect()),
                },
                bins,
            )
        }
    }
}

/// Builds the pair layout of features `a` and `b`.
fn pair_layout(mains: &[MainLayout], counts: &[Vec<u64>], a: usize, b: usize) -> PairLayout {
    let (ma, xa, ra) = coarse_side(&mains[a], &counts[a]);
    let (mb, xb, rb) = coarse_side(&mains[b], &counts[b]);
    PairLayout {
        features: [a, b],
        maps: [ma, mb],
        axes: [xa, xb],
        rows: ra,
        cols: rb,
        ordered: [
            matches!(mains[a], MainLayout::Numeric { .. }),
            matches!(mains[b], MainLayout::Numeric { .. }),
        ],
    }
}

/// A fit: every term's values (in layout order) and the intercept.
#[derive(Debug, Clone)]
pub(super) struct AdditiveFit {
    pub(super) theta: Vec<f64>,
    pub(super) intercept: f64,
    pub(super) iterations: u64,
    pub(super) converged: bool,
}

impl AdditiveFit {
    fn logit(&self, layout: &Layout, row: &[u16]) -> f64 {
        logit_of(layout, &self.theta, self.intercept, row)
    }

    pub(super) fn predict(&self, layout: &Layout, data: &Binned) -> Vec<f64> {
        (0..data.rows())
            .into_par_iter()
            .with_min_len(CHUNK_ROWS)
            .map(|i| sigmoid(self.logit(layout, data.row(i))))
            .collect()
    }
}

#[inline]
fn logit_of(layout: &Layout, theta: &[f64], b: f64, row: &[u16]) -> f64 {
    let mut z = b;
    for (j, &bin) in row.iter().enumerate() {
        z += theta[layout.offsets[j] + bin as usize];
    }
    let m = layout.mains.len();
    for (k, p) in layout.pairs.iter().enumerate() {
        let cell = p.cell(row);
        z += theta[layout.offsets[m + k] + cell];
    }
    z
}

struct Problem<'a> {
    layout: &'a Layout,
    data: &'a Binned,
    y: Vec<f64>,
    smoothing: f64,
    centring: f64,
    precondition: Preconditioner,
}

/// A block-diagonal approximation of the objective's Hessian, one banded block per term: the
/// term's rows per value times the base-rate weight r(1 - r), plus the term's penalty, all over n.
/// L-BFGS runs on u = Lᵀθ (L the blocks' Cholesky factors, the intercept scaled by √(r(1 - r))),
/// where a strong smoothing no longer makes the problem ill-conditioned: without it, λ = 10⁴ ran
/// to the iteration cap.
struct Preconditioner {
    /// Each term's offset in θ and its factor.
    blocks: Vec<(usize, Banded)>,
    intercept_scale: f64,
}

impl Preconditioner {
    fn new(layout: &Layout, data: &Binned, y: &[bool], smoothing: f64) -> Preconditioner {
        let n = y.len().max(1) as f64;
        let weight = base_weight(y);
        // Rows per value of every term.
        let mut rows = vec![0.0; layout.params];
        let m = layout.mains.len();
        for i in 0..data.rows() {
            let row = data.row(i);
            for (j, &bin) in row.iter().enumerate() {
                rows[layout.offsets[j] + bin as usize] += 1.0;
            }
            for (k, p) in layout.pairs.iter().enumerate() {
                rows[layout.offsets[m + k] + p.cell(row)] += 1.0;
            }
        }
        let mut blocks = Vec::with_capacity(layout.offsets.len());
        let mut unit = vec![0.0; layout.params];
        let mut column = vec![0.0; layout.params + 1];
        for t in 0..layout.offsets.len() {
            let at = layout.offsets[t];
            let (size, bw) = if t < m {
                match &layout.mains[t] {
                    MainLayout::Numeric { .. } => (layout.mains[t].width(), 2),
                    MainLayout::Categorical { levels } => (*levels, 0),
                }
            } else {
                let p = &layout.pairs[t - m];
                // Row and column sums couple every cell of a table.
                (p.rows * p.cols, p.rows * p.cols - 1)
            };
            let mut a = Banded::zeros(size, bw);
            for i in 0..size {
                a.add(i, i, weight * rows[at + i] / n);
            }
            if bw == 0 {
                for i in 0..size {
                    a.add(i, i, 2.0 * RIDGE / n);
                }
            } else {
                // The penalty is quadratic: its Hessian's column i is its gradient at the unit vector.
                for i in 0..size {
                    unit[at + i] = 1.0;
                    column.iter_mut().for_each(|v| *v = 0.0);
                    penalty(layout, &unit, smoothing, weight * n, &mut column);
                    unit[at + i] = 0.0;
                    for r in i..(i + bw + 1).min(size) {
                        a.add(r, i, column[at + r] / n);
                    }
                }
            }
            // The ridge alone keeps every block positive definite; the fallback is never expected.
            let factor = a.cholesky().unwrap_or_else(|| {
                let mut d = Banded::zeros(size, 0);
                for i in 0..size {
                    d.add(i, i, 1.0);
                }
                d
            });
            blocks.push((at, factor));
        }
        Preconditioner {
            blocks,
            intercept_scale: weight.sqrt(),
        }
    }

    /// θ and b from u.
    fn to_point(&self, u: &[f64]) -> Vec<f64> {
        let mut w = u.to_vec();
        for (at, l) in &self.blocks {
            l.solve_upper(&mut w[*at..*at + l.size()]);
        }
        let last = w.len() - 1;
        w[last] /= self.intercept_scale;
        w
    }

    /// u from θ and b.
    fn to_u(&self, point: &[f64]) -> Vec<f64> {
        let mut u = point.to_vec();
        for (at, l) in &self.blocks {
            l.mul_upper(&mut u[*at..*at + l.size()]);
        }
        let last = u.len() - 1;
        u[last] *= self.intercept_scale;
        u
    }

    /// The gradient in θ and b, carried to u in place: ∂/∂u = L⁻¹ ∂/∂θ.
    fn gradient_to_u(&self, g: &mut [f64]) {
        for (at, l) in &self.blocks {
            l.solve_lower(&mut g[*at..*at + l.size()]);
        }
        let last = g.len() - 1;
        g[last] /= self.intercept_scale;
    }
}

impl FusedObjective for Problem<'_> {
    /// L-BFGS moves u = Lᵀθ; the loss is taken at θ and its gradient carried back to u.
    fn cost_and_gradient(&self, u: &Array1<f64>) -> (f64, Array1<f64>) {
        let point = self.precondition.to_point(u.as_slice().unwrap());
        let (cost, mut grad) = self.evaluate(&point);
        self.precondition.gradient_to_u(&mut grad);
        (cost, Array1::from(grad))
    }
}

impl Problem<'_> {
    /// Mean penalised log loss at `w` (every term's values, then the intercept) and its gradient.
    fn evaluate(&self, w: &[f64]) -> (f64, Vec<f64>) {
        let layout = self.layout;
        let np = layout.params;
        let theta = &w[..np];
        let b = w[np];
        let width = self.data.width;
        let m = layout.mains.len();
        let partials: Vec<(f64, Vec<f64>)> = self
            .data
            .bins
            .par_chunks(CHUNK_ROWS * width.max(1))
            .zip(self.y.par_chunks(CHUNK_ROWS))
            .map(|(rows, yc)| {
                let mut g = vec![0.0; np + 1];
                let mut loss = 0.0;
                for (row, &yi) in rows.chunks_exact(width).zip(yc) {
                    let z = logit_of(layout, theta, b, row);
                    let e = (-z.abs()).exp();
                    loss += z.max(0.0) + e.ln_1p() - yi * z;
                    let s = if z >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                    let r = s - yi;
                    for (j, &bin) in row.iter().enumerate() {
                        g[layout.offsets[j] + bin as usize] += r;
                    }
                    for (k, p) in layout.pairs.iter().enumerate() {
                        let cell = p.cell(row);
                        g[layout.offsets[m + k] + cell] += r;
                    }
                    g[np] += r;
                }
                (loss, g)
            })
            .collect();
        let mut loss = 0.0;
        let mut grad = vec![0.0; np + 1];
        for (l, g) in &partials {
            loss += l;
            for (a, b) in grad.iter_mut().zip(g) {
                *a += b;
            }
        }
        let penalty = penalty(layout, theta, self.smoothing, self.centring, &mut grad);
        let inv_n = 1.0 / self.y.len() as f64;
        let cost = (loss + penalty) * inv_n;
        grad.iter_mut().for_each(|v| *v *= inv_n);
        (cost, grad)
    }
}

/// The penalty's value, its gradient added into `grad`. `centring` (the base-rate weight times the
/// rows) scales the hold on pair tables' row and column sums.
fn penalty(layout: &Layout, theta: &[f64], lambda: f64, centring: f64, grad: &mut [f64]) -> f64 {
    let mut pen = 0.0;
    for (t, v) in theta.iter().enumerate() {
        pen += RIDGE * v * v;
        grad[t] += 2.0 * RIDGE * v;
    }
    // λ (θ[i] - 2θ[i+s] + θ[i+2s])² over a run of `len` values `s` apart from `at`.
    let mut second = |at: usize, len: usize, grad: &mut [f64]| {
        for i in 0..len.saturating_sub(2) {
            let (a, b, c) = (at + i, at + i + 1, at + i + 2);
            let d = theta[a] - 2.0 * theta[b] + theta[c];
            pen += lambda * d * d;
            grad[a] += 2.0 * lambda * d;
            grad[b] -= 4.0 * lambda * d;
            grad[c] += 2.0 * lambda * d;
        }
    };
    for (j, m) in layout.mains.iter().enumerate() {
        if let MainLayout::Numeric { edges, .. } = m {
            second(layout.offsets[j], edges.len() + 1, grad);
        }
    }
    let m = layout.mains.len();
    for (k, p) in layout.pairs.iter().enumerate() {
        let at = layout.offsets[m + k];
        let mut first = |a: usize, c: usize, grad: &mut [f64]| {
            let d = theta[c] - theta[a];
            pen += lambda * d * d;
            grad[c] += 2.0 * lambda * d;
            grad[a] -= 2.0 * lambda * d;
        };
        for r in 0..p.rows {
            for c in 0..p.cols {
                let here = at + r * p.cols + c;
                if p.ordered[0] && r + 1 < p.rows {
                    first(here, here + p.cols, grad);
                }
                if p.ordered[1] && c + 1 < p.cols {
                    first(here, here + 1, grad);
                }
            }
        }
        // A table's row sums and column sums say what its two features' main effects can say
        // already: held near zero here, so that the split between a pair and its mains is not
        // left to the ridge alone (L-BFGS crawled along that nearly flat direction). Predictions
        // can reach the same functions either way.
        let (rows, cols) = (p.rows as f64, p.cols as f64);
        let by_row = centring / (2.0 * rows * cols * cols);
        let by_col = centring / (2.0 * cols * rows * rows);
        for r in 0..p.rows {
            let cells = at + r * p.cols..at + (r + 1) * p.cols;
            let sum: f64 = theta[cells.clone()].iter().sum();
            pen += by_row * sum * sum;
            grad[cells]
                .iter_mut()
                .for_each(|g| *g += 2.0 * by_row * sum);
        }
        for c in 0..p.cols {
            let sum: f64 = (0..p.rows).map(|r| theta[at + r * p.cols + c]).sum();
            pen += by_col * sum * sum;
            for r in 0..p.rows {
                grad[at + r * p.cols + c] += 2.0 * by_col * sum;
            }
        }
    }
    pen
}

/// The logistic loss's curvature at the base rate, r(1 - r) (floored for very rare labels).
fn base_weight(y: &[bool]) -> f64 {
    let rate = y.iter().filter(|&&v| v).count() as f64 / y.len().max(1) as f64;
    (rate * (1.0 - rate)).max(1e-3)
}

/// Fits the layout's terms at smoothing λ, from `init` (values of the same layout, or of its main
/// effects only) or from the base rate.
pub(super) fn fit(
    layout: &Layout,
    data: &Binned,
    y: &[bool],
    smoothing: f64,
    init: Option<&AdditiveFit>,
) -> Result<AdditiveFit> {
    let np = layout.params;
    let mut w = Array1::zeros(np + 1);
    match init {
        Some(f) => {
            let k = f.theta.len().min(np);
            w.as_slice_mut().unwrap()[..k].copy_from_slice(&f.theta[..k]);
            w[np] = f.intercept;
        }
        None => w[np] = base_rate_logit(y),
    }
    let problem = Problem {
        layout,
        data,
        y: y.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect(),
        smoothing,
        centring: base_weight(y) * y.len() as f64,
        precondition: Preconditioner::new(layout, data, y, smoothing),
    };
    let started = std::time::Instant::now();
    let u = Array1::from(problem.precondition.to_u(w.as_slice().unwrap()));
    let m = minimise(&problem, u, GRADIENT_TOLERANCE, MAX_ITERATIONS)?;
    let point = problem.precondition.to_point(m.point.as_slice().unwrap());
    tracing::debug!(
        rows = y.len(),
        params = np,
        pairs = layout.pairs.len(),
        smoothing,
        warm = init.is_some(),
        iterations = m.iterations,
        converged = m.converged,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "additive fit"
    );
    let fit = AdditiveFit {
        theta: point[..np].to_vec(),
        intercept: point[np],
        iterations: m.iterations,
        converged: m.converged,
    };
    if !fit.intercept.is_finite() || fit.theta.iter().any(|v| !v.is_finite()) {
        return Err(Error::Training(
            "the additive fit produced non-finite values; try a larger --smoothing".into(),
        ));
    }
    Ok(fit)
}

/// Chooses up to `n` pairs by their gain over the main-effects fit `mains_fit`.
fn choose_pairs(
    mains: &[MainLayout],
    data: &Binned,
    y: &[bool],
    mains_fit: &AdditiveFit,
    n: usize,
) -> Vec<PairLayout> {
    if n == 0 || mains.len() < 2 {
        return Vec::new();
    }
    let layout = Layout::new(mains.to_vec(), Vec::new());
    let counts = bin_counts(data, mains);
    // Candidates: features with at least two coarse bins, the strongest main effects first.
    let spread: Vec<f64> = mains
        .iter()
        .enumerate()
        .map(|(j, m)| {
            let at = layout.offsets[j];
            let total: u64 = counts[j].iter().sum();
            let mean: f64 = (0..m.width())
                .map(|b| mains_fit.theta[at + b] * counts[j][b] as f64)
                .sum::<f64>()
                / total.max(1) as f64;
            (0..m.width())
                .map(|b| counts[j][b] as f64 * (mains_fit.theta[at + b] - mean).powi(2))
                .sum::<f64>()
        })
        .collect();
    let mut feats: Vec<usize> = (0..mains.len())
        .filter(|&j| {
            let (_, _, bins) = coarse_side(&mains[j], &counts[j]);
            bins >= 2
        })
        .collect();
    feats.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]).then(a.cmp(&b)));
    feats.truncate(PAIR_CANDIDATE_FEATURES);
    feats.sort_unstable();
    let mut candidates = Vec::new();
    for (x, &a) in feats.iter().enumerate() {
        for &b in &feats[x + 1..] {
            candidates.push(pair_layout(mains, &counts, a, b));
        }
    }
    // Gradient and hessian of the main-effects fit, on evenly spaced rows.
    let step = data.rows().div_ceil(PAIR_SCORE_ROWS).max(1);
    let rows: Vec<usize> = (0..data.rows()).step_by(step).collect();
    let gh: Vec<(f64, f64)> = rows
        .iter()
        .map(|&i| {
            let p = sigmoid(mains_fit.logit(&layout, data.row(i)));
            (p - if y[i] { 1.0 } else { 0.0 }, p * (1.0 - p))
        })
        .collect();
    let gain = |p: &PairLayout| -> f64 {
        let (r, c) = (p.rows, p.cols);
        let mut g = vec![0.0; r * c];
        let mut h = vec![0.0; r * c];
        for (&i, &(gi, hi)) in rows.iter().zip(&gh) {
            let row = data.row(i);
            let cell = p.cell(row);
            g[cell] += gi;
            h[cell] += hi;
        }
        let score = |g: f64, h: f64| g * g / (h + 1.0);
        let cells: f64 = g.iter().zip(&h).map(|(g, h)| score(*g, *h)).sum();
        let by_row: f64 = (0..r)
            .map(|a| {
                let gs: f64 = g[a * c..(a + 1) * c].iter().sum();
                let hs: f64 = h[a * c..(a + 1) * c].iter().sum();
                score(gs, hs)
            })
            .sum();
        let by_col: f64 = (0..c)
            .map(|b| {
                let gs: f64 = (0..r).map(|a| g[a * c + b]).sum();
                let hs: f64 = (0..r).map(|a| h[a * c + b]).sum();
                score(gs, hs)
            })
            .sum();
        cells - by_row - by_col
    };
    let gains: Vec<f64> = candidates.par_iter().map(gain).collect();
    let mut order: Vec<usize> = (0..candidates.len()).filter(|&k| gains[k] > 0.0).collect();
    order.sort_by(|&a, &b| gains[b].total_cmp(&gains[a]).then(a.cmp(&b)));
    order.truncate(n);
    order.sort_unstable();
    order.into_iter().map(|k| candidates[k].clone()).collect()
}

/// Main effects at `smoothing`, then the pairs chosen on that fit, then every term together.
pub(super) fn fit_with_pairs(
    mains: &[MainLayout],
    data: &Binned,
    y: &[bool],
    smoothing: f64,
    interactions: usize,
) -> Result<(Layout, AdditiveFit)> {
    let main_layout = Layout::new(mains.to_vec(), Vec::new());
    let main_fit = fit(&main_layout, data, y, smoothing, None)?;
    let pairs = choose_pairs(mains, data, y, &main_fit, interactions);
    if pairs.is_empty() {
        return Ok((main_layout, main_fit));
    }
    let layout = Layout::new(mains.to_vec(), pairs);
    let fit = fit(&layout, data, y, smoothing, Some(&main_fit))?;
    Ok((layout, fit))
}

/// Cross-validated choice of λ: per fold, pairs chosen on the fold's own main-effects fit at the
/// grid's middle value, then the grid outwards from there, each fit warm-started from its
/// neighbour. Returns λ,
/// and per grid value the mean validation log loss, with the folds' (log loss, AUC) at the best.
pub(super) struct SmoothingCv {
    pub(super) smoothing: f64,
    pub(super) path: Vec<(f64, f64)>,
    pub(super) folds: Vec<(f64, f64)>,
}

pub(super) fn cross_validate(
    mains: &[MainLayout],
    data: &Binned,
    y: &[bool],
    grid: &[f64],
    folds: usize,
    interactions: usize,
    seed: u64,
) -> Result<SmoothingCv> {
    let fold = stratified_folds(y, folds, seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut grid_desc = grid.to_vec();
    grid_desc.sort_by(|a, b| b.total_cmp(a));
    let select = grid_desc.len() / 2;
    // Folds run side by side: each is fitted alone, so the results do not depend on the threads.
    let per_fold: Vec<Vec<(f64, f64)>> = (0..folds)
        .into_par_iter()
        .map(|f| {
            let tr: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
            let va: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
            let (dt, dv) = (data.select(&tr), data.select(&va));
            let yt: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
            let yv: Vec<bool> = va.iter().map(|&i| y[i]).collect();
            let (layout, at_select) =
                fit_with_pairs(mains, &dt, &yt, grid_desc[select], interactions)?;
            let score = |f: &AdditiveFit| {
                let p = f.predict(&layout, &dv);
                (metrics::log_loss(&p, &yv), metrics::auc(&p, &yv))
            };
            let mut out = vec![(0.0, 0.0); grid_desc.len()];
            out[select] = score(&at_select);
            // Outwards from the middle value, each fit warm-started from its neighbour's.
            for side in [
                (0..select).rev().collect::<Vec<_>>(),
                (select + 1..grid_desc.len()).collect(),
            ] {
                let mut init = at_select.clone();
                for g in side {
                    init = fit(&layout, &dt, &yt, grid_desc[g], Some(&init))?;
                    out[g] = score(&init);
                }
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let (best, path) = super::cross_validation::best_on_path(&grid_desc, &per_fold);
    Ok(SmoothingCv {
        smoothing: grid_desc[best],
        path,
        folds: per_fold.iter().map(|f| f[best]).collect(),
    })
}

/// The fitted terms as file entries: shapes centred over the rows `data` holds (the model's
/// training rows), level values centred over the encodings' shares, pair tables centred over
/// their cells' shares. Returns (shapes by feature index, level values by feature index, pairs,
/// intercept moved by the means taken out).
pub(super) struct Terms {
    pub(super) shapes: Vec<Option<ShapeEntry>>,
    pub(super) levels: Vec<Option<Vec<f64>>>,
    pub(super) pairs: Vec<PairEntry>,
    pub(super) intercept: f64,
}

pub(super) fn terms(
    layout: &Layout,
    fit: &AdditiveFit,
    data: &Binned,
    defs: &[FeatureDef],
) -> Terms {
    let n = data.rows().max(1) as f64;
    let counts = bin_counts(data, &layout.mains);
    let mut intercept = fit.intercept;
    let mut shapes = Vec::new();
    let mut levels = Vec::new();
    for (j, m) in layout.mains.iter().enumerate() {
        let at = layout.offsets[j];
        let theta = &fit.theta[at..at + m.width()];
        match (m, &defs[j].kind) {
            (MainLayout::Numeric { edges, impute_bin }, _) => {
                let k = edges.len() + 1;
                let shares: Vec<f64> = counts[j][..k].iter().map(|&c| c as f64 / n).collect();
                let missing_share = counts[j][k] as f64 / n;
                // Missing never seen in training: score it as the impute value's bin.
                let missing_raw = if counts[j][k] == 0 {
                    theta[*impute_bin]
                } else {
                    theta[k]
                };
                let mean = theta[..k]
                    .iter()
                    .zip(&shares)
                    .map(|(v, s)| v * s)
                    .sum::<f64>()
                    + missing_raw * missing_share;
                intercept += mean;
                shapes.push(Some(ShapeEntry {
                    edges: edges.clone(),
                    values: theta[..k].iter().map(|v| v - mean).collect(),
                    shares,
                    missing_value: missing_raw - mean,
                    missing_share,
                }));
                levels.push(None);
            }
            (MainLayout::Categorical { .. }, FeatureKind::Categorical(enc)) => {
                let mean: f64 = theta.iter().zip(&enc.shares).map(|(v, s)| v * s).sum();
                intercept += mean;
                levels.push(Some(theta.iter().map(|v| v - mean).collect()));
                shapes.push(None);
            }
            _ => unreachable!("layouts follow the encodings"),
        }
    }
    let m = layout.mains.len();
    let mut pairs = Vec::new();
    for (k, p) in layout.pairs.iter().enumerate() {
        let at = layout.offsets[m + k];
        let cells = p.rows * p.cols;
        let mut cell_counts = vec![0u64; cells];
        for i in 0..data.rows() {
            let row = data.row(i);
            let cell = p.cell(row);
            cell_counts[cell] += 1;
        }
        let shares: Vec<f64> = cell_counts.iter().map(|&c| c as f64 / n).collect();
        let theta = &fit.theta[at..at + cells];
        let mean: f64 = theta.iter().zip(&shares).map(|(v, s)| v * s).sum();
        intercept += mean;
        pairs.push(PairEntry {
            features: [
                defs[p.features[0]].name.clone(),
                defs[p.features[1]].name.clone(),
            ],
            axes: p.axes.clone(),
            values: theta.iter().map(|v| v - mean).collect(),
            shares,
        });
    }
    Terms {
        shapes,
        levels,
        pairs,
        intercept,
    }
}

/// What the additive kind's training run gives back to the pipeline.
pub(super) struct AdditiveOutcome {
    pub(super) terms: Terms,
    pub(super) holdout: Option<metrics::Metrics>,
    /// Holdout probabilities (or, without a holdout, every row's): where tiers are cut.
    pub(super) tier_p: Vec<f64>,
    pub(super) cv: Option<crate::model::file::CvMetrics>,
    pub(super) info: crate::model::file::AdditiveInfo,
    pub(super) report: super::options::AdditiveReport,
}

/// The additive kind end to end: bins from the training part, λ by cross-validation there, a fit
/// on the training part measured on the holdout, then the same bins and pairs refitted on every
/// row (warm-started), which is the model written.
pub(super) fn train_additive(
    inputs: &[Input<'_>],
    defs: &[FeatureDef],
    train_idx: &[usize],
    holdout_idx: &[usize],
    y: &[bool],
    opts: &super::TrainOptions,
) -> Result<AdditiveOutcome> {
    let max_bins = (opts.max_bins as usize).clamp(2, u16::MAX as usize - 2);
    let interactions = opts.interactions as usize;
    let mains = main_layout(inputs, defs, train_idx, max_bins);
    let data_train = bin_rows(inputs, defs, &mains, train_idx);
    let y_train: Vec<bool> = train_idx.iter().map(|&i| y[i]).collect();
    let mut notes = Vec::new();

    let (smoothing, chosen_by, cv) = if opts.folds >= 2 {
        let grid: Vec<f64> = match opts.smoothing {
            Some(s) => vec![s],
            None => SMOOTHING_GRID.to_vec(),
        };
        // Large tables: λ is chosen on a stratified sample of the training part.
        let sample: Vec<usize> = if y_train.len() > CV_MAX_ROWS {
            let keep = CV_MAX_ROWS as f64 / y_train.len() as f64;
            let (_, s) = super::stratified_split(&y_train, keep, opts.seed ^ 0x5eed);
            notes.push(format!(
                "smoothing cross-validated on a stratified sample of {} of the {} training rows",
                s.len(),
                y_train.len()
            ));
            s
        } else {
            (0..y_train.len()).collect()
        };
        let (d, ys) = if sample.len() == y_train.len() {
            (None, y_train.clone())
        } else {
            (
                Some(data_train.select(&sample)),
                sample.iter().map(|&i| y_train[i]).collect(),
            )
        };
        let cv = cross_validate(
            &mains,
            d.as_ref().unwrap_or(&data_train),
            &ys,
            &grid,
            opts.folds as usize,
            interactions,
            opts.seed,
        )?;
        let (auc_mean, auc_std) = super::cross_validation::mean_std(cv.folds.iter().map(|f| f.1));
        let (ll_mean, ll_std) = super::cross_validation::mean_std(cv.folds.iter().map(|f| f.0));
        let by = if opts.smoothing.is_some() {
            "--smoothing"
        } else {
            "cross-validation (mean log loss)"
        };
        (
            cv.smoothing,
            by.to_string(),
            Some(crate::model::file::CvMetrics {
                folds: opts.folds,
                auc_mean,
                auc_std,
                log_loss_mean: ll_mean,
                log_loss_std: ll_std,
                l2_path: cv.path,
            }),
        )
    } else {
        match opts.smoothing {
            Some(s) => (s, "--smoothing".to_string(), None),
            None => (10.0, "default (no cross-validation)".to_string(), None),
        }
    };

    let (layout, fit_train) =
        fit_with_pairs(&mains, &data_train, &y_train, smoothing, interactions)?;
    let (holdout, tier_p, final_fit, data_all) = if holdout_idx.is_empty() {
        let p = fit_train.predict(&layout, &data_train);
        (None, p, fit_train, data_train)
    } else {
        let data_ho = bin_rows(inputs, defs, &mains, holdout_idx);
        let p = fit_train.predict(&layout, &data_ho);
        let y_ho: Vec<bool> = holdout_idx.iter().map(|&i| y[i]).collect();
        let m = metrics::evaluate(&p, &y_ho);
        drop(data_ho);
        let all: Vec<usize> = (0..y.len()).collect();
        let data_all = bin_rows(inputs, defs, &mains, &all);
        let f = fit(&layout, &data_all, y, smoothing, Some(&fit_train))?;
        (Some(m), p, f, data_all)
    };
    let terms = terms(&layout, &final_fit, &data_all, defs);

    let mut bins = Vec::new();
    for (m, d) in mains.iter().zip(defs) {
        if let MainLayout::Numeric { edges, .. } = m {
            bins.push((d.name.clone(), edges.len() + 1));
            if edges.is_empty() {
                notes.push(format!(
                    "{}: too few rows or distinct values for more than one bin: no shape (missing values keep their own value)",
                    d.name
                ));
            }
        }
    }
    let pairs: Vec<[String; 2]> = terms.pairs.iter().map(|p| p.features.clone()).collect();
    if interactions > 0 && pairs.len() < interactions {
        notes.push(format!(
            "{} of the {interactions} pairs asked for showed a gain over the main effects",
            pairs.len()
        ));
    }
    let info = crate::model::file::AdditiveInfo {
        max_bins: max_bins as u32,
        smoothing,
        smoothing_chosen_by: chosen_by.clone(),
        ridge: RIDGE,
        interactions_requested: interactions as u32,
        interactions_kept: pairs.len() as u32,
        iterations: final_fit.iterations,
        converged: final_fit.converged,
        notes: notes.clone(),
    };
    let report = super::options::AdditiveReport {
        smoothing,
        smoothing_chosen_by: chosen_by,
        bins,
        pairs,
        notes,
    };
    Ok(AdditiveOutcome {
        terms,
        holdout,
        tier_p,
        cv,
        info,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: &[f64]) -> Column {
        let mut c = Column::new("x".into());
        c.numbers = values.to_vec();
        c
    }

    #[test]
    fn edges_sit_between_distinct_values_and_respect_the_minimum_bin() {
        let v: Vec<f64> = (0..1000).map(|i| (i % 50) as f64).collect();
        let idx: Vec<usize> = (0..v.len()).collect();
        let e = quantile_edges(&column(&v), &idx, 64);
        assert_eq!(
            e.len(),
            49,
            "50 distinct values, 20 rows each: one bin per value"
        );
        assert_eq!(e[0], 0.5);
        let e = quantile_edges(&column(&v), &idx, 8);
        assert!(e.len() <= 7);
        let e = quantile_edges(&column(&v[..15]), &idx[..15], 64);
        assert!(e.is_empty(), "15 rows make one bin of at least 10 rows");
        let e = quantile_edges(&column(&[3.0; 100]), &idx[..100], 64);
        assert!(e.is_empty(), "a constant column has one bin");
    }
}
