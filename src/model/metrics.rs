//! Classification metrics for churn models: ranking (AUC, PR-AUC, top-decile lift), probability
//! quality (log loss, Brier, calibration by decile) and confusion counts at a cut.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: u64,
    pub positives: u64,
    pub auc: f64,
    /// Average precision (area under the precision-recall curve, step-wise).
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    /// Churn rate among the 10% highest scores over the overall churn rate.
    pub top_decile_lift: f64,
    /// Ten equal-count bins by predicted probability, lowest first.
    pub calibration: Vec<CalibrationBin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub rows: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Predicted positive when p >= threshold.
    pub threshold: f64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
    pub precision: f64,
    pub recall: f64,
}

/// All metrics of predicted probabilities `p` against outcomes `y` (true = churned).
pub fn evaluate(p: &[f64], y: &[bool]) -> Metrics {
    assert_eq!(p.len(), y.len());
    let order = descending_order(p);
    Metrics {
        rows: p.len() as u64,
        positives: y.iter().filter(|&&b| b).count() as u64,
        auc: auc_sorted(p, y, &order),
        pr_auc: average_precision_sorted(p, y, &order),
        log_loss: log_loss(p, y),
        brier: brier(p, y),
        top_decile_lift: top_lift_sorted(y, &order, 0.1),
        calibration: calibration_sorted(p, y, &order, 10),
    }
}

/// Indices of `p` by decreasing score (ties keep input order, so results are deterministic).
fn descending_order(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    order
}

/// Area under the ROC curve; tied scores count one half (Mann-Whitney U).
pub fn auc(p: &[f64], y: &[bool]) -> f64 {
    auc_sorted(p, y, &descending_order(p))
}

fn auc_sorted(p: &[f64], y: &[bool], order: &[usize]) -> f64 {
    let pos = y.iter().filter(|&&b| b).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    // Walk groups of tied scores from the top; each negative beats nothing above it, and every
    // positive above it (strictly) counts 1, ties count 1/2.
    let mut pos_above = 0.0;
    let mut u = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut gp, mut gn) = (0.0, 0.0);
        while j < order.len() && p[order[j]] == p[order[i]] {
            if y[order[j]] {
                gp += 1.0
            } else {
                gn += 1.0
            }
            j += 1;
        }
        u += gn * (pos_above + 0.5 * gp);
        pos_above += gp;
        i = j;
    }
    u / (pos * neg)
}

fn average_precision_sorted(p: &[f64], y: &[bool], order: &[usize]) -> f64 {
    let pos = y.iter().filter(|&&b| b).count() as f64;
    if pos == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap, mut prev_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && p[order[j]] == p[order[i]] {
            if y[order[j]] {
                tp += 1.0;
            }
            seen += 1.0;
            j += 1;
        }
        let recall = tp / pos;
        ap += (recall - prev_recall) * (tp / seen);
        prev_recall = recall;
        i = j;
    }
    ap
}

/// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
pub fn log_loss(p: &[f64], y: &[bool]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    s / p.len() as f64
}

pub fn brier(p: &[f64], y: &[bool]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| (p - if y { 1.0 } else { 0.0 }).powi(2))
        .sum();
    s / p.len() as f64
}

fn top_lift_sorted(y: &[bool], order: &[usize], share: f64) -> f64 {
    let n = y.len();
    let base = y.iter().filter(|&&b| b).count() as f64 / n as f64;
    let k = ((n as f64 * share).ceil() as usize).clamp(1, n);
    let top = order[..k].iter().filter(|&&i| y[i]).count() as f64 / k as f64;
    if base == 0.0 { f64::NAN } else { top / base }
}

fn calibration_sorted(p: &[f64], y: &[bool], order: &[usize], bins: usize) -> Vec<CalibrationBin> {
    let n = order.len();
    let bins = bins.min(n);
    (0..bins)
        .rev()
        .map(|b| {
            // Bin b of the descending order; reversed so the lowest scores come first.
            let (lo, hi) = (b * n / bins, (b + 1) * n / bins);
            let idx = &order[lo..hi];
            let m = idx.len() as f64;
            CalibrationBin {
                rows: idx.len() as u64,
                mean_predicted: idx.iter().map(|&i| p[i]).sum::<f64>() / m,
                observed_rate: idx.iter().filter(|&&i| y[i]).count() as f64 / m,
            }
        })
        .collect()
}

/// What a model report draws: the ROC and precision-recall curves (at most `max_points` each,
/// always with their end points) and the table by decile of score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curves {
    /// (false positive rate, true positive rate) from (0, 0) to (1, 1), one per score threshold.
    pub roc: Vec<[f64; 2]>,
    /// (recall, precision) at each threshold, highest score first.
    pub precision_recall: Vec<[f64; 2]>,
    /// Ten equal-count groups by decreasing score: decile 1 is the riskiest tenth.
    pub deciles: Vec<DecileRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecileRow {
    pub decile: u32,
    pub rows: u64,
    pub churned: u64,
    pub churn_rate: f64,
    pub min_probability: f64,
    pub max_probability: f64,
    pub mean_probability: f64,
    /// The decile's churn rate over the overall rate.
    pub lift: f64,
    /// Share of all churners in this decile and the ones above it (the cumulative gain).
    pub cumulative_gain: f64,
    /// Churn rate of this decile and the ones above it over the overall rate.
    pub cumulative_lift: f64,
}

/// The curves of `p` against `y`; empty curves when a class is absent.
pub fn curves(p: &[f64], y: &[bool], max_points: usize) -> Curves {
    let order = descending_order(p);
    let pos = y.iter().filter(|&&b| b).count() as f64;
    let neg = y.len() as f64 - pos;
    let (mut roc, mut pr) = (vec![[0.0, 0.0]], Vec::new());
    if pos > 0.0 && neg > 0.0 {
        let (mut tp, mut fp) = (0.0, 0.0);
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j < order.len() && p[order[j]] == p[order[i]] {
                if y[order[j]] {
                    tp += 1.0
                } else {
                    fp += 1.0
                }
                j += 1;
            }
            roc.push([fp / neg, tp / pos]);
            pr.push([tp / pos, tp / (tp + fp)]);
            i = j;
        }
    } else {
        roc.clear();
    }
    let overall = if y.is_empty() {
        f64::NAN
    } else {
        pos / y.len() as f64
    };
    let n = order.len();
    let bins = 10.min(n);
    let (mut cum_rows, mut cum_churned) = (0u64, 0u64);
    let deciles = (0..bins)
        .map(|b| {
            let idx = &order[b * n / bins..(b + 1) * n / bins];
            let churned = idx.iter().filter(|&&i| y[i]).count() as u64;
            let rows = idx.len() as u64;
            cum_rows += rows;
            cum_churned += churned;
            let rate = churned as f64 / rows as f64;
            let ps = idx.iter().map(|&i| p[i]);
            DecileRow {
                decile: b as u32 + 1,
                rows,
                churned,
                churn_rate: rate,
                min_probability: ps.clone().fold(f64::INFINITY, f64::min),
                max_probability: ps.clone().fold(f64::NEG_INFINITY, f64::max),
                mean_probability: ps.sum::<f64>() / rows as f64,
                lift: rate / overall,
                cumulative_gain: cum_churned as f64 / pos,
                cumulative_lift: (cum_churned as f64 / cum_rows as f64) / overall,
            }
        })
        .collect();
    Curves {
        roc: thin(roc, max_points),
        precision_recall: thin(pr, max_points),
        deciles,
    }
}

/// At most `max` points of a curve, evenly spread over its points, keeping both ends.
fn thin(points: Vec<[f64; 2]>, max: usize) -> Vec<[f64; 2]> {
    let n = points.len();
    if n <= max || max < 2 {
        return points;
    }
    (0..max).map(|k| points[k * (n - 1) / (max - 1)]).collect()
}

/// Confusion counts when p >= threshold is predicted to churn.
pub fn confusion(p: &[f64], y: &[bool], threshold: f64) -> Confusion {
    let (mut tp, mut fp, mut tn, mut fneg) = (0, 0, 0, 0);
    for (&p, &y) in p.iter().zip(y) {
        match (p >= threshold, y) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
    }
    let ratio = |a: u64, b: u64| {
        if a + b == 0 {
            0.0
        } else {
            a as f64 / (a + b) as f64
        }
    };
    Confusion {
        threshold,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fneg,
        precision: ratio(tp, fp),
        recall: ratio(tp, fneg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half_and_matches_pairwise_definition() {
        let p = [0.9, 0.8, 0.8, 0.3, 0.2, 0.8];
        let y = [true, false, true, false, true, false];
        // Pairwise: positives {0.9, 0.8, 0.2}, negatives {0.8, 0.3, 0.8}.
        let mut wins = 0.0;
        for i in 0..6 {
            for j in 0..6 {
                if y[i] && !y[j] {
                    wins += if p[i] > p[j] {
                        1.0
                    } else if p[i] == p[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        assert!((auc(&p, &y) - wins / 9.0).abs() < 1e-15);
    }

    #[test]
    fn perfect_ranking_scores_one_everywhere() {
        let p = [0.9, 0.7, 0.2, 0.1];
        let y = [true, true, false, false];
        let m = evaluate(&p, &y);
        assert_eq!(m.auc, 1.0);
        assert_eq!(m.pr_auc, 1.0);
        assert_eq!(m.top_decile_lift, 2.0);
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // Ranked: +, -, +, -  -> precision at the positives 1/1 and 2/3, recall steps 1/2 each.
        let p = [0.9, 0.8, 0.7, 0.6];
        let y = [true, false, true, false];
        let m = evaluate(&p, &y);
        assert!((m.pr_auc - (0.5 * 1.0 + 0.5 * 2.0 / 3.0)).abs() < 1e-15);
    }

    #[test]
    fn log_loss_and_brier_on_known_values() {
        let p = [0.8, 0.4];
        let y = [true, false];
        assert!((log_loss(&p, &y) - (-(0.8f64.ln()) - 0.6f64.ln()) / 2.0).abs() < 1e-15);
        assert!((brier(&p, &y) - (0.04 + 0.16) / 2.0).abs() < 1e-15);
    }

    #[test]
    fn calibration_bins_cover_every_row_lowest_first() {
        let p: Vec<f64> = (0..95).map(|i| i as f64 / 100.0).collect();
        let y: Vec<bool> = (0..95).map(|i| i % 3 == 0).collect();
        let bins = evaluate(&p, &y).calibration;
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.rows).sum::<u64>(), 95);
        assert!(
            bins.windows(2)
                .all(|w| w[0].mean_predicted < w[1].mean_predicted)
        );
    }

    #[test]
    fn confusion_counts_add_up() {
        let p = [0.9, 0.6, 0.4, 0.1];
        let y = [true, false, true, false];
        let c = confusion(&p, &y, 0.5);
        assert_eq!(
            (
                c.true_positives,
                c.false_positives,
                c.true_negatives,
                c.false_negatives
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(c.precision, 0.5);
    }

    #[test]
    fn curves_end_at_the_corners_and_deciles_add_up() {
        let p: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let y: Vec<bool> = p
            .iter()
            .enumerate()
            .map(|(i, &x)| x > 0.6 || i % 9 == 0)
            .collect();
        let c = curves(&p, &y, 50);
        assert_eq!(c.roc.len(), 50);
        assert_eq!(c.roc[0], [0.0, 0.0]);
        assert_eq!(*c.roc.last().unwrap(), [1.0, 1.0]);
        assert!(
            c.roc
                .windows(2)
                .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1])
        );
        assert_eq!(c.precision_recall.last().unwrap()[0], 1.0);
        assert_eq!(c.deciles.iter().map(|d| d.rows).sum::<u64>(), 1000);
        let churned: u64 = c.deciles.iter().map(|d| d.churned).sum();
        assert_eq!(churned, y.iter().filter(|&&b| b).count() as u64);
        assert!((c.deciles[9].cumulative_gain - 1.0).abs() < 1e-12);
        assert!((c.deciles[9].cumulative_lift - 1.0).abs() < 1e-12);
        // Decile 1 holds the 100 highest scores.
        assert_eq!(c.deciles[0].min_probability, 0.9);
        // The trapezoids under the full ROC curve are the AUC.
        let full = curves(&p, &y, usize::MAX);
        let area: f64 = full
            .roc
            .windows(2)
            .map(|w| (w[1][0] - w[0][0]) * (w[0][1] + w[1][1]) / 2.0)
            .sum();
        assert!((area - auc(&p, &y)).abs() < 1e-12);
    }

    #[test]
    fn one_class_has_no_curves_but_keeps_its_deciles() {
        let c = curves(&[0.2, 0.4, 0.9], &[false, false, false], 100);
        assert!(c.roc.is_empty() && c.precision_recall.is_empty());
        assert_eq!(c.deciles.len(), 3);
        assert_eq!(c.deciles[0].churn_rate, 0.0);
    }
}
