//! A banded symmetric positive-definite matrix and its Cholesky factor: the per-term blocks the
//! additive fit is preconditioned with (a numeric shape's second-difference penalty is
//! pentadiagonal, a pair table's first differences reach one table row away).

/// The lower band of a symmetric matrix: entry (i, j) for i - bw <= j <= i, stored at
/// `i * (bw + 1) + (i - j)`.
#[derive(Debug, Clone)]
pub(super) struct Banded {
    size: usize,
    bw: usize,
    band: Vec<f64>,
}

impl Banded {
    pub(super) fn zeros(size: usize, bw: usize) -> Banded {
        Banded {
            size,
            bw,
            band: vec![0.0; size * (bw + 1)],
        }
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Adds `v` at (i, j) of the lower triangle (j <= i, i - j <= bw).
    pub(super) fn add(&mut self, i: usize, j: usize, v: f64) {
        debug_assert!(j <= i && i - j <= self.bw);
        self.band[i * (self.bw + 1) + (i - j)] += v;
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.band[i * (self.bw + 1) + (i - j)]
    }

    /// The Cholesky factor L (A = L Lᵀ) in the same band, or None when A is not positive definite.
    pub(super) fn cholesky(&self) -> Option<Banded> {
        let (n, bw) = (self.size, self.bw);
        let mut l = Banded::zeros(n, bw);
        for i in 0..n {
            for j in i.saturating_sub(bw)..=i {
                let mut s = self.at(i, j);
                for k in i.saturating_sub(bw)..j {
                    s -= l.at(i, k) * l.at(j, k);
                }
                let v = if i == j {
                    if s <= 0.0 || !s.is_finite() {
                        return None;
                    }
                    s.sqrt()
                } else {
                    s / l.at(j, j)
                };
                l.band[i * (bw + 1) + (i - j)] = v;
            }
        }
        Some(l)
    }

    /// For a factor L: x = L⁻¹ x (forward substitution), in place.
    pub(super) fn solve_lower(&self, x: &mut [f64]) {
        for i in 0..self.size {
            let lo = i.saturating_sub(self.bw);
            let known: f64 = (lo..i).zip(&x[lo..i]).map(|(k, v)| self.at(i, k) * v).sum();
            x[i] = (x[i] - known) / self.at(i, i);
        }
    }

    /// For a factor L: x = L⁻ᵀ x (back substitution), in place.
    pub(super) fn solve_upper(&self, x: &mut [f64]) {
        for i in (0..self.size).rev() {
            let hi = (i + self.bw + 1).min(self.size);
            let known: f64 = (i + 1..hi)
                .zip(&x[i + 1..hi])
                .map(|(k, v)| self.at(k, i) * v)
                .sum();
            x[i] = (x[i] - known) / self.at(i, i);
        }
    }

    /// For a factor L: x = Lᵀ x, in place.
    pub(super) fn mul_upper(&self, x: &mut [f64]) {
        for i in 0..self.size {
            let hi = (i + self.bw + 1).min(self.size);
            x[i] = (i..hi).zip(&x[i..hi]).map(|(k, v)| self.at(k, i) * v).sum();
        }
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // matrix indices read clearer than iterators here
mod tests {
    use super::*;

    /// A pentadiagonal SPD matrix like a second-difference penalty plus a diagonal.
    fn example(n: usize) -> Banded {
        let mut a = Banded::zeros(n, 2);
        for i in 0..n {
            a.add(i, i, 1.0 + i as f64 * 0.1);
        }
        for i in 0..n - 2 {
            let d = [1.0, -2.0, 1.0];
            for (x, &dx) in d.iter().enumerate() {
                for (y, &dy) in d.iter().enumerate().take(x + 1) {
                    a.add(i + x, i + y, 3.0 * dx * dy);
                }
            }
        }
        a
    }

    fn dense(a: &Banded) -> Vec<Vec<f64>> {
        let n = a.size;
        let mut m = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in i.saturating_sub(a.bw)..=i {
                let v = a.at(i, j);
                m[i][j] = v;
                m[j][i] = v;
            }
        }
        m
    }

    #[test]
    fn the_factor_reproduces_the_matrix_and_the_solves_invert_it() {
        let a = example(9);
        let l = a.cholesky().expect("positive definite");
        let m = dense(&a);
        // (L Lᵀ)(i, j) = Σ_k L(i, k) L(j, k)
        for i in 0..9usize {
            for j in 0..=i {
                let s: f64 = (i.saturating_sub(2)..=j)
                    .map(|k| {
                        l.at(i, k)
                            * if j >= k && j - k <= 2 {
                                l.at(j, k)
                            } else {
                                0.0
                            }
                    })
                    .sum();
                assert!(
                    (s - m[i][j]).abs() < 1e-12,
                    "({i}, {j}): {s} vs {}",
                    m[i][j]
                );
            }
        }
        // A x = b solved as L Lᵀ x = b.
        let b: Vec<f64> = (0..9).map(|i| (i as f64).sin()).collect();
        let mut x = b.clone();
        l.solve_lower(&mut x);
        l.solve_upper(&mut x);
        for i in 0..9 {
            let ax: f64 = (0..9).map(|j| m[i][j] * x[j]).sum();
            assert!((ax - b[i]).abs() < 1e-12);
        }
        // Lᵀ then L⁻ᵀ is the identity.
        let mut y = b.clone();
        l.mul_upper(&mut y);
        l.solve_upper(&mut y);
        for i in 0..9 {
            assert!((y[i] - b[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn a_matrix_that_is_not_positive_definite_has_no_factor() {
        let mut a = Banded::zeros(2, 1);
        a.add(0, 0, 1.0);
        a.add(1, 1, 1.0);
        a.add(1, 0, 2.0);
        assert!(a.cholesky().is_none());
    }
}
