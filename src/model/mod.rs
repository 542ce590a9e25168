//! ChurnModel: a loaded, validated model file compiled for scoring. Scores and reasons follow
//! DESIGN.md: p = sigmoid(intercept + Σ contributions), where a feature's contribution is its term
//! minus its training-mean term (log-odds). Design columns are centred, so the mean terms are zero,
//! the intercept is the baseline logit, and contributions + baseline_logit = logit exactly.
pub mod evaluate;
pub mod file;
pub mod metrics;
pub mod solver;
pub mod train;

use crate::error::{Error, FieldViolation, Result};
use crate::schema::{
    CategoricalEncoding, FeatureDef, FeatureKind, FeatureSchema, Note, NumericEncoding, Resolved,
    Value,
};
use file::{FeatureEntry, ModelFile, TierCuts};
use std::path::{Path, PathBuf};

/// Risk tier from the model's probability cut points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskTier {
    Low,
    Medium,
    High,
}

impl RiskTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "LOW",
            RiskTier::Medium => "MEDIUM",
            RiskTier::High => "HIGH",
        }
    }

    pub fn of(p: f64, cuts: &TierCuts) -> RiskTier {
        if p >= cuts.high {
            RiskTier::High
        } else if p >= cuts.medium {
            RiskTier::Medium
        } else {
            RiskTier::Low
        }
    }
}

/// Per-feature scoring term, precomputed at load.
#[derive(Debug, Clone)]
enum Term {
    /// contribution = (transform(x) - mean) * scale, scale = weight / std.
    Numeric { scale: f64 },
    /// contribution of each level: w_level - Σ_l w_l·share_l.
    Categorical { contribution: Vec<f64> },
}

#[derive(Debug, Clone)]
pub struct ChurnModel {
    file: ModelFile,
    schema: FeatureSchema,
    terms: Vec<Term>,
    sha256: String,
    path: Option<PathBuf>,
    /// "name@version", kept so that every response does not format it anew.
    id: String,
}

/// A feature's scoring term as precomputed at load: what SQL export and other engines need to
/// reproduce a score with the same arithmetic.
#[derive(Debug, Clone, Copy)]
pub enum TermView<'a> {
    /// contribution = (transform(x) - enc.mean) * scale, x imputed with enc.impute when missing.
    Numeric {
        enc: &'a NumericEncoding,
        scale: f64,
    },
    /// contribution = contributions[level]; missing and unseen values take enc.unseen's.
    Categorical {
        enc: &'a CategoricalEncoding,
        contributions: &'a [f64],
    },
}

/// Reusable per-row buffers for scoring many rows without allocating.
#[derive(Debug, Clone, Default)]
pub struct RowScratch {
    pub contributions: Vec<f64>,
    pub resolved: Vec<Resolved>,
    pub notes: Vec<Note>,
    pub violations: Vec<FieldViolation>,
}

/// One customer's score and its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub logit: f64,
    pub probability: f64,
    pub tier: RiskTier,
    pub baseline_logit: f64,
    /// One per feature, in schema order.
    pub contributions: Vec<Contribution>,
    pub imputed: Vec<String>,
    pub unseen: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: String,
    /// The value used: a number (after imputation) or a categorical level.
    pub value: FeatureValue,
    pub contribution: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    Number(f64),
    Level(String),
}

impl Explanation {
    /// The `k` largest contributions by absolute value, largest first (ties keep schema order).
    pub fn reasons(&self, k: usize) -> Vec<&Contribution> {
        let c: Vec<f64> = self.contributions.iter().map(|c| c.contribution).collect();
        let mut idx = Vec::with_capacity(k);
        top_k(&c, k, &mut idx);
        idx.into_iter().map(|i| &self.contributions[i]).collect()
    }
}

/// Indices of the `k` largest |contributions|, largest first, ties in index order, into `out`
/// (cleared first). Allocation-free once `out` has room for k + 1.
pub fn top_k(contributions: &[f64], k: usize, out: &mut Vec<usize>) {
    out.clear();
    if k == 0 {
        return;
    }
    // `floor` is the magnitude of the k-th best so far: most features fail this one comparison.
    let mut floor = f64::NEG_INFINITY;
    for (i, c) in contributions.iter().enumerate() {
        let c = c.abs();
        if out.len() == k && c <= floor {
            continue;
        }
        let mut pos = out.len();
        while pos > 0 && contributions[out[pos - 1]].abs() < c {
            pos -= 1;
        }
        out.insert(pos, i);
        out.truncate(k);
        if out.len() == k {
            floor = contributions[out[k - 1]].abs();
        }
    }
}

#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl ChurnModel {
    /// Loads `model.json`, or a model folder: its `model.json`, else its highest numeric version.
    pub fn load(path: &Path) -> Result<ChurnModel> {
        let file_path = resolve_model_path(path)?;
        let bytes = std::fs::read(&file_path).map_err(|e| Error::io(&file_path, e))?;
        let file: ModelFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::model(&file_path, format!("not a valid model file: {e}")))?;
        let sha256 = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(&bytes))
        };
        let mut m = ChurnModel::from_file(file).map_err(|msg| Error::model(&file_path, msg))?;
        m.sha256 = sha256;
        m.path = Some(file_path);
        Ok(m)
    }

    /// Validates a model file and compiles it for scoring. `Err` says what is wrong.
    pub fn from_file(file: ModelFile) -> std::result::Result<ChurnModel, String> {
        validate(&file)?;
        let mut defs = Vec::with_capacity(file.features.len());
        let mut terms = Vec::with_capacity(file.features.len());
        for f in &file.features {
            match f {
                FeatureEntry::Numeric(n) => {
                    defs.push(FeatureDef {
                        name: n.name.clone(),
                        kind: FeatureKind::Numeric(NumericEncoding {
                            transform: n.transform,
                            impute: n.impute,
                            mean: n.mean,
                            std: n.std,
                        }),
                    });
                    terms.push(Term::Numeric {
                        scale: n.weight / n.std,
                    });
                }
                FeatureEntry::Categorical(c) => {
                    let levels: Vec<String> = c.levels.iter().map(|l| l.value.clone()).collect();
                    let shares: Vec<f64> = c.levels.iter().map(|l| l.share).collect();
                    let unseen = levels.iter().position(|l| *l == c.unseen_level).unwrap();
                    let mean_term: f64 = c.levels.iter().map(|l| l.weight * l.share).sum();
                    terms.push(Term::Categorical {
                        contribution: c.levels.iter().map(|l| l.weight - mean_term).collect(),
                    });
                    defs.push(FeatureDef {
                        name: c.name.clone(),
                        kind: FeatureKind::Categorical(CategoricalEncoding::new(
                            levels, shares, unseen,
                        )),
                    });
                }
            }
        }
        Ok(ChurnModel {
            schema: FeatureSchema::new(defs),
            terms,
            id: format!("{}@{}", file.name, file.version),
            file,
            sha256: String::new(),
            path: None,
        })
    }

    /// Feature `i`'s scoring term.
    pub fn term(&self, i: usize) -> TermView<'_> {
        match (&self.terms[i], &self.schema.features()[i].kind) {
            (Term::Numeric { scale }, FeatureKind::Numeric(enc)) => {
                TermView::Numeric { enc, scale: *scale }
            }
            (Term::Categorical { contribution }, FeatureKind::Categorical(enc)) => {
                TermView::Categorical {
                    enc,
                    contributions: contribution,
                }
            }
            _ => unreachable!("schema and terms are built together"),
        }
    }

    /// The intercept: the logit starts here and each contribution is added in schema order.
    pub fn intercept(&self) -> f64 {
        self.file.intercept
    }

    /// Sets the name and version, e.g. from the repository folders the file was found in.
    pub fn with_identity(mut self, name: &str, version: u64) -> Self {
        self.file.name = name.to_string();
        self.file.version = version;
        self.id = format!("{name}@{version}");
        self
    }

    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// SHA-256 of the file the model was loaded from ("" when built in memory).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// "name@version".
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn baseline_logit(&self) -> f64 {
        self.file.baseline_logit
    }

    pub fn tier(&self, p: f64) -> RiskTier {
        RiskTier::of(p, &self.file.tiers)
    }

    /// Scores one row given in schema order. Fills `s.contributions`, `s.resolved` and `s.notes`
    /// (one per feature) and returns the logit; on bad input, `s.violations` names every bad field.
    pub fn score_into(&self, row: &[Value<'_>], strict: bool, s: &mut RowScratch) -> Option<f64> {
        self.score_impl::<true>(row, strict, s)
    }

    /// As [`ChurnModel::score_into`], but fills only `s.contributions` (and `s.violations`): for
    /// batch scoring, where no explanation is built.
    pub fn contributions_into(
        &self,
        row: &[Value<'_>],
        strict: bool,
        s: &mut RowScratch,
    ) -> Option<f64> {
        self.score_impl::<false>(row, strict, s)
    }

    #[inline]
    fn score_impl<const NOTES: bool>(
        &self,
        row: &[Value<'_>],
        strict: bool,
        s: &mut RowScratch,
    ) -> Option<f64> {
        let n = self.terms.len();
        debug_assert_eq!(row.len(), n);
        s.contributions.clear();
        s.resolved.clear();
        s.notes.clear();
        s.violations.clear();
        let mut logit = self.file.intercept;
        for (i, (term, v)) in self.terms.iter().zip(row).enumerate() {
            let (r, note) = match self.schema.resolve(i, *v, strict) {
                Ok(x) => x,
                Err(description) => {
                    s.violations.push(FieldViolation {
                        field: self.schema.features()[i].name.clone(),
                        description,
                    });
                    continue;
                }
            };
            let c = match (term, r, &self.schema.features()[i].kind) {
                (Term::Numeric { scale }, Resolved::Number(x), FeatureKind::Numeric(enc)) => {
                    (enc.transform.apply(x).unwrap() - enc.mean) * scale
                }
                (Term::Categorical { contribution }, Resolved::Level(l), _) => contribution[l],
                _ => unreachable!("schema and terms are built together"),
            };
            logit += c;
            s.contributions.push(c);
            if NOTES {
                s.resolved.push(r);
                s.notes.push(note);
            }
        }
        if s.violations.is_empty() && s.contributions.len() == n {
            Some(logit)
        } else {
            None
        }
    }

    /// Scores and explains one row given in schema order.
    pub fn explain(
        &self,
        row: &[Value<'_>],
        strict: bool,
    ) -> std::result::Result<Explanation, Vec<FieldViolation>> {
        let mut s = RowScratch::default();
        let Some(logit) = self.score_into(row, strict, &mut s) else {
            return Err(s.violations);
        };
        Ok(self.explanation(logit, &s))
    }

    /// Builds the explanation for a row just scored with [`ChurnModel::score_into`].
    pub fn explanation(&self, logit: f64, s: &RowScratch) -> Explanation {
        let p = sigmoid(logit);
        let mut imputed = Vec::new();
        let mut unseen = Vec::new();
        let contributions = self
            .schema
            .features()
            .iter()
            .enumerate()
            .map(|(i, def)| {
                match s.notes[i] {
                    Note::Imputed => imputed.push(def.name.clone()),
                    Note::Unseen => unseen.push(def.name.clone()),
                    Note::None => {}
                }
                Contribution {
                    feature: def.name.clone(),
                    value: self.feature_value(i, s.resolved[i]),
                    contribution: s.contributions[i],
                }
            })
            .collect();
        Explanation {
            logit,
            probability: p,
            tier: self.tier(p),
            baseline_logit: self.file.baseline_logit,
            contributions,
            imputed,
            unseen,
        }
    }

    pub fn feature_value(&self, feature: usize, r: Resolved) -> FeatureValue {
        match (r, &self.schema.features()[feature].kind) {
            (Resolved::Number(x), _) => FeatureValue::Number(x),
            (Resolved::Level(l), FeatureKind::Categorical(c)) => {
                FeatureValue::Level(c.levels[l].clone())
            }
            (Resolved::Level(_), FeatureKind::Numeric(_)) => unreachable!(),
        }
    }

    /// Named features (unknown names are violations) -> explanation.
    pub fn explain_named<'a, I>(
        &self,
        named: I,
        strict: bool,
    ) -> std::result::Result<Explanation, Vec<FieldViolation>>
    where
        I: IntoIterator<Item = (&'a str, Value<'a>)>,
    {
        let (row, mut unknown) = self.schema.row_from_named(named);
        match self.explain(&row, strict) {
            Ok(e) if unknown.is_empty() => Ok(e),
            Ok(_) => Err(unknown),
            Err(bad_values) => {
                unknown.splice(0..0, bad_values);
                Err(unknown)
            }
        }
    }
}

/// `model.json` itself, a folder holding `model.json`, or a model folder whose highest numeric
/// subfolder holds it.
pub fn resolve_model_path(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        return Err(Error::model(path, "no such file or folder"));
    }
    let direct = path.join("model.json");
    if direct.is_file() {
        return Ok(direct);
    }
    match latest_version(path)? {
        Some(v) => Ok(path.join(v.to_string()).join("model.json")),
        None => Err(Error::model(
            path,
            "no model.json here nor in any numeric version folder",
        )),
    }
}

/// The highest numeric subfolder of `dir` that holds a model.json.
pub fn latest_version(dir: &Path) -> Result<Option<u64>> {
    Ok(versions(dir)?
        .into_iter()
        .filter(|v| dir.join(v.to_string()).join("model.json").is_file())
        .max())
}

/// Every numeric subfolder name of `dir`.
pub fn versions(dir: &Path) -> Result<Vec<u64>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.path().is_dir()
            && let Some(v) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(v);
        }
    }
    Ok(out)
}

/// Writes `file` as `dir/<next version>/model.json`, atomically (temporary file, fsync, rename),
/// and returns its path. The version in the file is set to the folder's number.
pub fn save_new_version(dir: &Path, file: &mut ModelFile) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut v = versions(dir)?.into_iter().max().unwrap_or(0) + 1;
    let vdir = loop {
        let candidate = dir.join(v.to_string());
        match std::fs::create_dir(&candidate) {
            Ok(()) => break candidate,
            // Another trainer took this number first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => v += 1,
            Err(e) => return Err(Error::io(&candidate, e)),
        }
    };
    file.version = v;
    let path = vdir.join("model.json");
    write_atomic(&path, &to_json(file))?;
    Ok(path)
}

pub fn to_json(file: &ModelFile) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(file).expect("model file serialises");
    out.push(b'\n');
    out
}

/// Writes bytes to `path` through a temporary file in the same folder and a rename, so readers
/// see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("model"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn validate(f: &ModelFile) -> std::result::Result<(), String> {
    if f.format != file::FORMAT {
        return Err(format!(
            "format {} is not supported (this churn reads format {})",
            f.format,
            file::FORMAT
        ));
    }
    if f.features.is_empty() {
        return Err("no features".into());
    }
    let mut names = std::collections::HashSet::new();
    for feat in &f.features {
        let name = feat.name();
        if !names.insert(name) {
            return Err(format!("feature '{name}' appears twice"));
        }
        match feat {
            FeatureEntry::Numeric(n) => {
                if ![n.impute, n.mean, n.std, n.weight]
                    .iter()
                    .all(|v| v.is_finite())
                {
                    return Err(format!(
                        "feature '{name}': impute, mean, std and weight must be finite"
                    ));
                }
                if n.std <= 0.0 {
                    return Err(format!("feature '{name}': std must be positive"));
                }
                if n.transform.apply(n.impute).is_none() {
                    return Err(format!(
                        "feature '{name}': impute value is outside the transform's domain"
                    ));
                }
            }
            FeatureEntry::Categorical(c) => {
                if c.levels.is_empty() {
                    return Err(format!("feature '{name}': no levels"));
                }
                let mut seen = std::collections::HashSet::new();
                for l in &c.levels {
                    if !seen.insert(l.value.as_str()) {
                        return Err(format!(
                            "feature '{name}': level '{}' appears twice",
                            l.value
                        ));
                    }
                    if !l.weight.is_finite() || !(0.0..=1.0).contains(&l.share) {
                        return Err(format!(
                            "feature '{name}', level '{}': weight must be finite and share in [0, 1]",
                            l.value
                        ));
                    }
                }
                let total: f64 = c.levels.iter().map(|l| l.share).sum();
                if (total - 1.0).abs() > 1e-6 {
                    return Err(format!(
                        "feature '{name}': level shares sum to {total}, not 1"
                    ));
                }
                if !seen.contains(c.unseen_level.as_str()) {
                    return Err(format!(
                        "feature '{name}': unseen_level '{}' is not one of its levels",
                        c.unseen_level
                    ));
                }
            }
        }
    }
    if !f.intercept.is_finite() || !f.baseline_logit.is_finite() {
        return Err("intercept and baseline_logit must be finite".into());
    }
    if (f.intercept - f.baseline_logit).abs() > 1e-9 * f.intercept.abs().max(1.0) {
        return Err(format!(
            "baseline_logit {} differs from the intercept {}: format 1 centres every design column",
            f.baseline_logit, f.intercept
        ));
    }
    let t = &f.tiers;
    if !(t.medium > 0.0 && t.medium <= t.high && t.high < 1.0) {
        return Err(format!(
            "tiers must satisfy 0 < medium <= high < 1 (medium {}, high {})",
            t.medium, t.high
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_orders_by_magnitude_with_ties_in_index_order() {
        let c = [0.1, -0.9, 0.5, 0.9, -0.05, 0.5];
        let mut out = Vec::new();
        top_k(&c, 3, &mut out);
        assert_eq!(out, vec![1, 3, 2]);
        top_k(&c, 10, &mut out);
        assert_eq!(out, vec![1, 3, 2, 5, 0, 4]);
        top_k(&c, 0, &mut out);
        assert!(out.is_empty());
    }
}
