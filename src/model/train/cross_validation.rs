//! Choosing the L2 strength: stratified k-fold cross-validation on the training part.
use super::options::TrainOptions;
use super::predict;
use super::solver::{self, FitOptions};
use super::splits::stratified_folds;
use crate::error::Result;
use crate::model::file::CvMetrics;
use crate::model::metrics;
use ndarray::Array2;

/// Chooses α on `grid` by stratified k-fold cross-validation (mean validation log loss; ties go to
/// the larger α), and reports the folds' metrics at that α.
pub(super) fn cross_validate(
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
    let (best, l2_path) = best_on_path(&grid_desc, &per_fold);
    let (auc_mean, auc_std) = mean_std(per_fold.iter().map(|f| f[best].1));
    let (log_loss_mean, log_loss_std) = mean_std(per_fold.iter().map(|f| f[best].0));
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

/// The penalty with the lowest mean validation log loss over the folds (ties go to the first, the
/// stronger penalty), and the path of (penalty, mean loss) from the weakest up. `grid_desc` holds
/// the penalties strongest first; `per_fold[f][g]` is fold f's (log loss, AUC) at grid_desc[g].
pub(super) fn best_on_path(
    grid_desc: &[f64],
    per_fold: &[Vec<(f64, f64)>],
) -> (usize, Vec<(f64, f64)>) {
    let mean_loss = |g: usize| per_fold.iter().map(|f| f[g].0).sum::<f64>() / per_fold.len() as f64;
    let best = (0..grid_desc.len())
        .min_by(|&a, &b| mean_loss(a).total_cmp(&mean_loss(b)).then(a.cmp(&b)))
        .unwrap();
    let path = (0..grid_desc.len())
        .rev()
        .map(|g| (grid_desc[g], mean_loss(g)))
        .collect();
    (best, path)
}

pub(super) fn mean_std(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = v.collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}
