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
}
