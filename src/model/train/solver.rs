//! L2-regularised logistic regression solvers.
//!
//! Both minimise Σᵢ log-loss(yᵢ, b + xᵢ·w) + α/2·‖w‖² (the intercept b is not penalised; this is
//! scikit-learn's objective with C = 1/α):
//!
//! - [`SolverKind::Fast`]: the same problem divided by n, so its gradient tolerance means the same
//!   thing whatever the row count, with cost and gradient fused in one multi-threaded pass over the
//!   rows, minimised by argmin's L-BFGS (More-Thuente line search), the solver linfa-logistic uses.
//!   Rows are summed in fixed chunks in a fixed order, so the result does not depend on the number
//!   of threads: same data, same weights, to the bit.
//! - [`SolverKind::Linfa`]: linfa-logistic's own fit, kept as the reference the fast path is tested
//!   against. Its loss is a sum, so its default gradient tolerance grows stricter with the row count.
use crate::error::{Error, Result};
use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use ndarray::{Array1, ArrayView2};
use rayon::prelude::*;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SolverKind {
    #[default]
    Fast,
    Linfa,
}

impl SolverKind {
    pub fn name(self) -> &'static str {
        match self {
            SolverKind::Fast => "lbfgs-fused",
            SolverKind::Linfa => "linfa-logistic",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FitOptions {
    /// L2 penalty α on the summed loss.
    pub alpha: f64,
    pub max_iterations: u64,
    /// Fast: tolerance on the L2 norm of the mean-loss gradient. Linfa: on the summed-loss gradient.
    pub tolerance: f64,
    /// Warm start: weights and intercept.
    pub init: Option<(Vec<f64>, f64)>,
}

impl FitOptions {
    pub fn new(alpha: f64) -> Self {
        FitOptions {
            alpha,
            max_iterations: 500,
            tolerance: 1e-6,
            init: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    /// Weights oriented so that the model gives P(y = true).
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub iterations: Option<u64>,
    pub converged: Option<bool>,
}

impl LogisticFit {
    pub fn logit(&self, row: &[f64]) -> f64 {
        self.intercept + dot(row, &self.weights)
    }
}

/// Fits P(y = true | x). `x` is rows x features; `y` one outcome per row; both classes must occur.
pub fn fit(
    kind: SolverKind,
    x: ArrayView2<'_, f64>,
    y: &[bool],
    opts: &FitOptions,
) -> Result<LogisticFit> {
    assert_eq!(x.nrows(), y.len());
    let fit = match kind {
        SolverKind::Fast => fit_fast(x, y, opts)?,
        SolverKind::Linfa => fit_linfa(x, y, opts)?,
    };
    if !fit.intercept.is_finite() || fit.weights.iter().any(|w| !w.is_finite()) {
        return Err(Error::Training(
            "the solver produced non-finite weights; try a larger --l2".into(),
        ));
    }
    Ok(fit)
}

/// Rows per chunk of the fused pass; fixed so that sums are reproducible.
const CHUNK_ROWS: usize = 2048;

struct FusedLogistic<'a> {
    x: &'a [f64],
    d: usize,
    y: Vec<f64>,
    alpha: f64,
}

/// A smooth objective whose cost and gradient come out of one pass over the rows.
pub(super) trait FusedObjective {
    fn cost_and_gradient(&self, w: &Array1<f64>) -> (f64, Array1<f64>);
}

/// A point with its cost and gradient.
type Evaluated = (Array1<f64>, f64, Array1<f64>);

/// An objective as argmin sees it, keeping the last point evaluated: the line search asks for the
/// cost and the gradient at the same point, and one pass yields both.
struct Cached<'a, O> {
    objective: &'a O,
    last: Mutex<Option<Evaluated>>,
}

impl<O: FusedObjective> Cached<'_, O> {
    fn evaluate(&self, w: &Array1<f64>) -> (f64, Array1<f64>) {
        if let Some((p, c, g)) = self.last.lock().unwrap().as_ref()
            && p == w
        {
            return (*c, g.clone());
        }
        let (c, g) = self.objective.cost_and_gradient(w);
        *self.last.lock().unwrap() = Some((w.clone(), c, g.clone()));
        (c, g)
    }
}

impl<O: FusedObjective> CostFunction for Cached<'_, O> {
    type Param = Array1<f64>;
    type Output = f64;
    fn cost(&self, w: &Array1<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.evaluate(w).0)
    }
}

impl<O: FusedObjective> Gradient for Cached<'_, O> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;
    fn gradient(&self, w: &Array1<f64>) -> std::result::Result<Array1<f64>, argmin::core::Error> {
        Ok(self.evaluate(w).1)
    }
}

/// Where L-BFGS stopped.
pub(super) struct Minimum {
    pub(super) point: Array1<f64>,
    pub(super) iterations: u64,
    pub(super) converged: bool,
}

/// Minimises `objective` from `init` with argmin's L-BFGS (memory 10, More-Thuente line search),
/// stopping at `tolerance` on the gradient's norm or after `max_iterations`.
pub(super) fn minimise<O: FusedObjective>(
    objective: &O,
    init: Array1<f64>,
    tolerance: f64,
    max_iterations: u64,
) -> Result<Minimum> {
    let problem = Cached {
        objective,
        last: Mutex::new(None),
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(tolerance)
        .and_then(|s| s.with_tolerance_cost(1e-12))
        .map_err(|e| Error::Training(e.to_string()))?;
    let res = Executor::new(problem, solver)
        .configure(|s| s.param(init.clone()).max_iters(max_iterations))
        .run()
        .map_err(|e| Error::Training(format!("L-BFGS: {e}")))?;
    let state = res.state();
    let converged = matches!(
        state.get_termination_status(),
        TerminationStatus::Terminated(
            TerminationReason::SolverConverged | TerminationReason::TargetCostReached
        )
    );
    Ok(Minimum {
        iterations: state.get_iter(),
        converged,
        point: state.get_best_param().cloned().unwrap_or(init),
    })
}

/// The intercept-only optimum: the log-odds of the base rate (clamped away from 0 and 1).
pub(super) fn base_rate_logit(y: &[bool]) -> f64 {
    let pos = y.iter().filter(|&&v| v).count() as f64;
    let rate = (pos / y.len() as f64).clamp(1e-6, 1.0 - 1e-6);
    (rate / (1.0 - rate)).ln()
}

impl FusedObjective for FusedLogistic<'_> {
    fn cost_and_gradient(&self, w: &Array1<f64>) -> (f64, Array1<f64>) {
        let d = self.d;
        let n = self.y.len();
        let coef = &w.as_slice().unwrap()[..d];
        let b = w[d];
        let partials: Vec<(f64, Vec<f64>)> = self
            .x
            .par_chunks(CHUNK_ROWS * d)
            .zip(self.y.par_chunks(CHUNK_ROWS))
            .map(|(xc, yc)| {
                let mut g = vec![0.0; d + 1];
                let mut loss = 0.0;
                for (xi, &yi) in xc.chunks_exact(d).zip(yc) {
                    let z = b + dot(xi, coef);
                    // log(1 + e^z) - y z, and sigmoid(z), from one exponential.
                    let e = (-z.abs()).exp();
                    loss += z.max(0.0) + e.ln_1p() - yi * z;
                    let s = if z >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                    let r = s - yi;
                    for (gj, xj) in g[..d].iter_mut().zip(xi) {
                        *gj += r * xj;
                    }
                    g[d] += r;
                }
                (loss, g)
            })
            .collect();
        let inv_n = 1.0 / n as f64;
        let mut loss = 0.0;
        let mut grad = Array1::zeros(d + 1);
        for (l, g) in &partials {
            loss += l;
            for (a, b) in grad.iter_mut().zip(g) {
                *a += b;
            }
        }
        let penalty = self.alpha * inv_n;
        let cost = loss * inv_n + 0.5 * penalty * dot(coef, coef);
        grad.mapv_inplace(|v| v * inv_n);
        for (gj, wj) in grad.iter_mut().zip(coef) {
            *gj += penalty * wj;
        }
        (cost, grad)
    }
}

fn initial_point(d: usize, y: &[bool], init: &Option<(Vec<f64>, f64)>) -> Array1<f64> {
    let mut w = Array1::zeros(d + 1);
    match init {
        Some((coef, b)) => {
            w.as_slice_mut().unwrap()[..d].copy_from_slice(coef);
            w[d] = *b;
        }
        None => w[d] = base_rate_logit(y),
    }
    w
}

fn fit_fast(x: ArrayView2<'_, f64>, y: &[bool], opts: &FitOptions) -> Result<LogisticFit> {
    let d = x.ncols();
    let owned;
    let xs = match x.as_slice() {
        Some(s) => s,
        None => {
            owned = x.as_standard_layout().to_owned();
            owned.as_slice().unwrap()
        }
    };
    let problem = FusedLogistic {
        x: xs,
        d,
        y: y.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect(),
        alpha: opts.alpha,
    };
    let init = initial_point(d, y, &opts.init);
    let m = minimise(&problem, init, opts.tolerance, opts.max_iterations)?;
    Ok(LogisticFit {
        weights: m.point.as_slice().unwrap()[..d].to_vec(),
        intercept: m.point[d],
        iterations: Some(m.iterations),
        converged: Some(m.converged),
    })
}

fn fit_linfa(x: ArrayView2<'_, f64>, y: &[bool], opts: &FitOptions) -> Result<LogisticFit> {
    use linfa::traits::Fit;
    let d = x.ncols();
    let ds = linfa::Dataset::new(x.to_owned(), Array1::from(y.to_vec()));
    let mut params = linfa_logistic::LogisticRegression::default()
        .alpha(opts.alpha)
        .max_iterations(opts.max_iterations)
        .gradient_tolerance(opts.tolerance);
    if let Some((coef, b)) = &opts.init {
        let mut p = Array1::zeros(d + 1);
        p.as_slice_mut().unwrap()[..d].copy_from_slice(coef);
        p[d] = *b;
        params = params.initial_params(p);
    }
    let m = params
        .fit(&ds)
        .map_err(|e| Error::Training(format!("linfa-logistic: {e}")))?;
    // linfa-logistic models the probability of its more frequent class; orient to P(true).
    let sign = if m.labels().pos.class { 1.0 } else { -1.0 };
    Ok(LogisticFit {
        weights: m.params().iter().map(|w| sign * w).collect(),
        intercept: sign * m.intercept(),
        iterations: None,
        converged: None,
    })
}

#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators let the compiler keep several multiply-adds in flight.
    let mut acc = [0.0; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A small problem with a known structure: y depends on x0 positively and x1 negatively.
    fn toy(n: usize) -> (Array2<f64>, Vec<bool>) {
        let mut state = 42u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let mut x = Array2::zeros((n, 3));
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            for j in 0..3 {
                x[[i, j]] = next() * 2.0 - 1.0;
            }
            let z = 1.5 * x[[i, 0]] - 2.0 * x[[i, 1]] - 0.5;
            y.push(next() < 1.0 / (1.0 + (-z).exp()));
        }
        (x, y)
    }

    #[test]
    fn fast_and_linfa_solve_the_same_problem() {
        let (x, y) = toy(3000);
        let mut o = FitOptions::new(1.0);
        o.tolerance = 1e-9;
        let fast = fit(SolverKind::Fast, x.view(), &y, &o).unwrap();
        o.tolerance = 1e-6;
        let reference = fit(SolverKind::Linfa, x.view(), &y, &o).unwrap();
        for (a, b) in fast.weights.iter().zip(&reference.weights) {
            assert!((a - b).abs() < 1e-4, "fast {a} vs linfa {b}");
        }
        assert!((fast.intercept - reference.intercept).abs() < 1e-4);
        assert!(
            fast.weights[0] > 1.0 && fast.weights[1] < -1.0,
            "{:?}",
            fast.weights
        );
        assert_eq!(fast.converged, Some(true));
    }

    #[test]
    fn linfa_orientation_follows_the_true_class_when_it_is_the_majority() {
        let (x, y) = toy(2000);
        let flipped: Vec<bool> = y.iter().map(|v| !v).collect();
        let o = FitOptions::new(1.0);
        let a = fit(SolverKind::Linfa, x.view(), &y, &o).unwrap();
        let b = fit(SolverKind::Linfa, x.view(), &flipped, &o).unwrap();
        for (wa, wb) in a.weights.iter().zip(&b.weights) {
            assert!((wa + wb).abs() < 1e-6);
        }
    }

    #[test]
    fn fast_fit_does_not_depend_on_thread_count() {
        let (x, y) = toy(10_000);
        let o = FitOptions::new(0.5);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let a = one.install(|| fit(SolverKind::Fast, x.view(), &y, &o).unwrap());
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let b = three.install(|| fit(SolverKind::Fast, x.view(), &y, &o).unwrap());
        assert_eq!(a, b);
    }
}
