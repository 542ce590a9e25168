//! The additive kind's terms as compiled for scoring: a binned shape per numeric feature and 2-D
//! pair tables. Categorical features score as in the linear kind (a value per level), so only
//! these two need their own code. Validation of the file's tables lives here too, so that a broken
//! table is refused at load with the feature named.
use super::file::{FeatureEntry, ModelFile, PairAxis, PairEntry, ShapeEntry};
use crate::schema::{FeatureKind, FeatureSchema, Resolved};

/// The bin of `x` under edges closed below: the number of edges at or below `x`.
#[inline]
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e <= x)
}

/// A pair axis compiled: coarse edges on the (imputed) number, or a coarse bin per level.
#[derive(Debug, Clone)]
pub enum Axis {
    Edges(Vec<f64>),
    Levels(Vec<u32>),
}

impl Axis {
    #[inline]
    pub fn bin(&self, r: Resolved) -> usize {
        match (self, r) {
            (Axis::Edges(e), Resolved::Number(x)) => bin_of(e, x),
            (Axis::Levels(l), Resolved::Level(i)) => l[i] as usize,
            _ => unreachable!("pair axes are validated against the feature kinds"),
        }
    }
}

/// A pair term compiled: the two features by index, their axes, and the table less its training
/// mean (so the term's contribution is centred).
#[derive(Debug, Clone)]
pub struct PairTerm {
    pub features: [usize; 2],
    pub axes: [Axis; 2],
    pub table: Vec<f64>,
    cols: usize,
    /// Per side, when its coarse edges are all edges of the feature's shape (as training cuts
    /// them): the coarse bin of each fine bin, so scoring reads it instead of searching again.
    fine: [Option<Vec<u32>>; 2],
}

impl PairTerm {
    /// The term's centred value for the resolved values of its two features, given their fine
    /// shape bins (`bin_of` the shape's edges at the resolved number; unused for other sides).
    #[inline]
    pub fn value(&self, a: Resolved, b: Resolved, fine_bins: [usize; 2]) -> f64 {
        self.table[self.side(0, a, fine_bins[0]) * self.cols + self.side(1, b, fine_bins[1])]
    }

    #[inline]
    fn side(&self, k: usize, r: Resolved, fine_bin: usize) -> usize {
        match &self.fine[k] {
            Some(map) => map[fine_bin] as usize,
            None => self.axes[k].bin(r),
        }
    }

    /// Links the numeric sides to their features' shape edges (None: not a shape).
    pub fn link_shapes(&mut self, shapes: [Option<&[f64]>; 2]) {
        for (k, shape) in shapes.into_iter().enumerate() {
            let (Some(fine), Axis::Edges(coarse)) = (shape, &self.axes[k]) else {
                continue;
            };
            if !coarse.iter().all(|c| fine.contains(c)) {
                continue;
            }
            // Fine bin b holds fine[b-1] <= x < fine[b]; each coarse edge is a fine edge, so the
            // coarse edges at or below x are those at or below fine[b-1].
            let map = (0..=fine.len())
                .map(|b| {
                    if b == 0 {
                        0
                    } else {
                        bin_of(coarse, fine[b - 1]) as u32
                    }
                })
                .collect();
            self.fine[k] = Some(map);
        }
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// Checks a shape table; `Err` says what is wrong (the caller names the feature).
pub fn check_shape(s: &ShapeEntry) -> Result<(), String> {
    if s.edges.iter().any(|e| !e.is_finite()) || s.edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err("shape edges must be finite and strictly ascending".into());
    }
    if s.values.len() != s.edges.len() + 1 || s.shares.len() != s.values.len() {
        return Err(format!(
            "shape has {} edges, so it needs {} values and shares (it has {} and {})",
            s.edges.len(),
            s.edges.len() + 1,
            s.values.len(),
            s.shares.len()
        ));
    }
    if s.values
        .iter()
        .chain([&s.missing_value])
        .any(|v| !v.is_finite())
    {
        return Err("shape values must be finite".into());
    }
    check_shares(s.shares.iter().chain([&s.missing_share]), "shape")
}

fn check_shares<'a>(shares: impl Iterator<Item = &'a f64>, what: &str) -> Result<(), String> {
    let mut total = 0.0;
    for s in shares {
        if !(0.0..=1.0).contains(s) {
            return Err(format!("{what} shares must be in [0, 1]"));
        }
        total += s;
    }
    if (total - 1.0).abs() > 1e-6 {
        return Err(format!("{what} shares sum to {total}, not 1"));
    }
    Ok(())
}

/// The centred mean of a shape over its training shares.
pub fn shape_mean(s: &ShapeEntry) -> f64 {
    s.values
        .iter()
        .zip(&s.shares)
        .map(|(v, w)| v * w)
        .sum::<f64>()
        + s.missing_value * s.missing_share
}

/// The sum of every additive term's training mean, in file order (features, then pairs): the
/// baseline logit is the intercept plus this. Training and loading both use it, so they agree.
pub fn means_sum(features: &[FeatureEntry], pairs: &[PairEntry]) -> f64 {
    let mut sum = 0.0;
    for f in features {
        sum += match f {
            FeatureEntry::Numeric(n) => n.shape.as_ref().map_or(0.0, shape_mean),
            FeatureEntry::Categorical(c) => c.levels.iter().map(|l| l.weight * l.share).sum(),
        };
    }
    for p in pairs {
        sum += p
            .values
            .iter()
            .zip(&p.shares)
            .map(|(v, s)| v * s)
            .sum::<f64>();
    }
    sum
}

/// Compiles a pair against the schema, or says what is wrong with it (naming the pair).
pub fn compile_pair(p: &PairEntry, schema: &FeatureSchema) -> Result<PairTerm, String> {
    let label = format!("pair '{}' x '{}'", p.features[0], p.features[1]);
    if p.features[0] == p.features[1] {
        return Err(format!("{label}: a pair needs two different features"));
    }
    let mut idx = [0usize; 2];
    let mut axes = Vec::with_capacity(2);
    for (k, name) in p.features.iter().enumerate() {
        let i = schema
            .index_of(name)
            .ok_or_else(|| format!("{label}: '{name}' is not a feature of the model"))?;
        idx[k] = i;
        axes.push(
            compile_axis(&p.axes[k], &schema.features()[i].kind)
                .map_err(|e| format!("{label}, axis '{name}': {e}"))?,
        );
    }
    let (rows, cols) = (p.axes[0].bins(), p.axes[1].bins());
    if p.values.len() != rows * cols || p.shares.len() != rows * cols {
        return Err(format!(
            "{label}: a {rows} x {cols} table needs {} values and shares (it has {} and {})",
            rows * cols,
            p.values.len(),
            p.shares.len()
        ));
    }
    if p.values.iter().any(|v| !v.is_finite()) {
        return Err(format!("{label}: table values must be finite"));
    }
    check_shares(p.shares.iter(), "table").map_err(|e| format!("{label}: {e}"))?;
    let mean: f64 = p.values.iter().zip(&p.shares).map(|(v, s)| v * s).sum();
    let b = axes.pop().unwrap();
    let a = axes.pop().unwrap();
    Ok(PairTerm {
        features: idx,
        axes: [a, b],
        table: p.values.iter().map(|v| v - mean).collect(),
        cols,
        fine: [None, None],
    })
}

fn compile_axis(a: &PairAxis, kind: &FeatureKind) -> Result<Axis, String> {
    match (kind, &a.edges, &a.level_bins) {
        (FeatureKind::Numeric(_), Some(e), None) => {
            if e.iter().any(|x| !x.is_finite()) || e.windows(2).any(|w| w[0] >= w[1]) {
                return Err("edges must be finite and strictly ascending".into());
            }
            Ok(Axis::Edges(e.clone()))
        }
        (FeatureKind::Categorical(c), None, Some(l)) => {
            if l.len() != c.levels.len() {
                return Err(format!(
                    "{} level bins for {} levels",
                    l.len(),
                    c.levels.len()
                ));
            }
            let bins = l.iter().max().map_or(0, |m| *m as usize + 1);
            if (0..bins as u32).any(|b| !l.contains(&b)) {
                return Err("level bins must number the bins 0, 1, ... with none empty".into());
            }
            Ok(Axis::Levels(l.clone()))
        }
        (FeatureKind::Numeric(_), _, _) => Err("a numeric feature's axis needs edges only".into()),
        (FeatureKind::Categorical(_), _, _) => {
            Err("a categorical feature's axis needs level_bins only".into())
        }
    }
}

/// The additive file's own check beyond the per-feature and per-pair ones: no pair twice.
pub fn check_file(f: &ModelFile) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in &f.pairs {
        let mut key = [p.features[0].as_str(), p.features[1].as_str()];
        key.sort();
        if !seen.insert(key) {
            return Err(format!(
                "pair '{}' x '{}' appears twice",
                p.features[0], p.features[1]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_closed_below_and_edge_bins_take_the_outside() {
        let e = [1.0, 2.0, 4.0];
        assert_eq!(bin_of(&e, -100.0), 0);
        assert_eq!(bin_of(&e, 0.999), 0);
        assert_eq!(bin_of(&e, 1.0), 1);
        assert_eq!(bin_of(&e, 3.9), 2);
        assert_eq!(bin_of(&e, 4.0), 3);
        assert_eq!(bin_of(&e, 1e300), 3);
        assert_eq!(bin_of(&[], 5.0), 0);
    }

    #[test]
    fn broken_shapes_are_refused_with_the_reason() {
        let good = ShapeEntry {
            edges: vec![1.0, 2.0],
            values: vec![-0.5, 0.0, 0.5],
            shares: vec![0.3, 0.4, 0.3],
            missing_value: 0.0,
            missing_share: 0.0,
        };
        assert!(check_shape(&good).is_ok());
        let mut s = good.clone();
        s.edges = vec![2.0, 1.0];
        assert!(check_shape(&s).unwrap_err().contains("ascending"));
        let mut s = good.clone();
        s.values.pop();
        assert!(check_shape(&s).unwrap_err().contains("needs 3 values"));
        let mut s = good.clone();
        s.values[1] = f64::NAN;
        assert!(check_shape(&s).unwrap_err().contains("finite"));
        let mut s = good;
        s.shares[0] = 0.9;
        assert!(check_shape(&s).unwrap_err().contains("sum to"));
    }
}
