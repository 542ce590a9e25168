//! ChurnModel: a loaded, validated model file compiled for scoring. Scores and reasons follow
//! DESIGN.md: p = sigmoid(baseline_logit + Σ contributions), where a feature's contribution is its
//! term minus the term's training mean (log-odds), plus half of each centred pair term it is in.
//! So contributions + baseline_logit = logit exactly, for both kinds. The linear kind's terms live
//! here beside the per-level values both kinds share; the additive kind's shapes and pair tables
//! in `additive.rs`.
pub mod additive;
pub mod drift;
pub mod evaluate;
pub mod file;
pub mod health;
pub mod metrics;
pub mod repo;
pub mod train;

use crate::error::{Error, FieldViolation, Result};
use crate::schema::{
    CategoricalEncoding, FeatureDef, FeatureKind, FeatureSchema, Note, NumericEncoding, Resolved,
    Value, Violation,
};
use additive::PairTerm;
use file::{FeatureEntry, ModelFile, ModelKind, TierCuts};
pub use repo::{latest_version, resolve_model_path, save_new_version, to_json, versions};
use std::path::{Path, PathBuf};

/// Violations listed in one error; the rest are counted in one more entry.
pub const MAX_LISTED: usize = 20;

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

    /// The tier named by its text (as written in scores and history).
    pub fn parse(s: &str) -> Option<RiskTier> {
        match s {
            "LOW" => Some(RiskTier::Low),
            "MEDIUM" => Some(RiskTier::Medium),
            "HIGH" => Some(RiskTier::High),
            _ => None,
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
    /// Additive: contribution[bin of x] (each value less the shape's training mean); `missing`
    /// when the cell was missing.
    Binned {
        edges: Vec<f64>,
        contribution: Vec<f64>,
        missing: f64,
    },
}

#[derive(Debug, Clone)]
pub struct ChurnModel {
    file: ModelFile,
    schema: FeatureSchema,
    terms: Vec<Term>,
    pairs: Vec<PairTerm>,
    /// Usage health, when the model has usage measures.
    health: Option<health::Health>,
    /// The logit every row starts from: linear, the intercept (as format 1 always scored);
    /// additive, baseline_logit (the intercept plus the terms' means, which are taken out of
    /// each contribution).
    baseline: f64,
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
    /// contribution = contributions[bin of x] (bins closed below, `additive::bin_of`), or
    /// `missing` when the cell is missing.
    Binned {
        enc: &'a NumericEncoding,
        edges: &'a [f64],
        contributions: &'a [f64],
        missing: f64,
    },
}

/// Reusable per-row buffers for scoring many rows without allocating; [`ChurnModel::score_row`]
/// fills them.
#[derive(Debug, Clone, Default)]
pub struct RowScratch {
    /// Each feature's contribution (log-odds), in schema order.
    pub contributions: Vec<f64>,
    /// The number or level each feature was scored with (after imputation).
    pub resolved: Vec<Resolved>,
    /// Whether each feature was given, imputed or an unseen level.
    pub notes: Vec<Note>,
    /// The cells the rule refused, by feature index; empty when the row scored.
    pub violations: Vec<Violation>,
    /// Additive with pairs: each feature's main term (its shape value, centred) before the pair
    /// halves were added, and each pair term's centred value.
    pub mains: Vec<f64>,
    pub pair_values: Vec<f64>,
    /// With pairs: each binned feature's shape bin at its resolved number (0 for the others).
    pub bins: Vec<usize>,
}

impl RowScratch {
    /// The `k` reasons of the row just scored: the largest |contributions| among the features the
    /// caller gave (imputed ones keep their contribution but are never reasons), largest first.
    pub fn reasons_into(&self, k: usize, out: &mut Vec<usize>) {
        top_k_given(&self.contributions, &self.notes, k, out);
    }
}

/// One row's score, as every door returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowScore {
    pub logit: f64,
    pub probability: f64,
    pub tier: RiskTier,
    /// Usage health and the action, when the model has usage measures.
    pub health: Option<health::HealthScore>,
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
    /// Additive: every term (main effects, then pairs), centred; empty for a linear model, whose
    /// terms are its contributions.
    pub terms: Vec<TermValue>,
    /// Usage health and the action, when the model has usage measures.
    pub health: Option<health::HealthScore>,
    /// With health: every usage measure, lowest percentile first (the first few are the health
    /// reasons).
    pub health_reasons: Vec<HealthReasonNamed>,
}

/// A usage measure where the customer stands: its name, the value used and the oriented
/// percentile (higher is healthier).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReasonNamed {
    pub measure: String,
    pub value: f64,
    pub percentile: f64,
}

/// One additive term's centred value for a row: a main effect (one feature) or a pair (two).
#[derive(Debug, Clone, PartialEq)]
pub struct TermValue {
    pub features: Vec<String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: String,
    /// The value used: a number (after imputation) or a categorical level.
    pub value: FeatureValue,
    pub contribution: f64,
    /// The caller did not give this feature; its contribution is from the imputed value.
    pub imputed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    Number(f64),
    Level(String),
}

impl Explanation {
    /// The `k` largest contributions by absolute value among the features the caller gave, largest
    /// first (ties keep schema order).
    pub fn reasons(&self, k: usize) -> Vec<&Contribution> {
        let c: Vec<f64> = self.contributions.iter().map(|c| c.contribution).collect();
        let notes: Vec<Note> = self
            .contributions
            .iter()
            .map(|c| if c.imputed { Note::Imputed } else { Note::None })
            .collect();
        let mut idx = Vec::with_capacity(k);
        top_k_given(&c, &notes, k, &mut idx);
        idx.into_iter().map(|i| &self.contributions[i]).collect()
    }
}

/// Indices of the `k` largest |contributions| among the features whose note is not
/// [`Note::Imputed`], largest first, ties in index order, into `out` (cleared first).
/// Allocation-free once `out` has room for k + 1.
pub fn top_k_given(contributions: &[f64], notes: &[Note], k: usize, out: &mut Vec<usize>) {
    out.clear();
    if k == 0 {
        return;
    }
    // `floor` is the magnitude of the k-th best so far: most features fail this one comparison.
    let mut floor = f64::NEG_INFINITY;
    for (i, (c, n)) in contributions.iter().zip(notes).enumerate() {
        let c = c.abs();
        if *n == Note::Imputed || (out.len() == k && c <= floor) {
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
                    terms.push(match (&n.shape, n.weight) {
                        (Some(shape), _) => {
                            let mean = additive::shape_mean(shape);
                            Term::Binned {
                                edges: shape.edges.clone(),
                                contribution: shape.values.iter().map(|v| v - mean).collect(),
                                missing: shape.missing_value - mean,
                            }
                        }
                        (None, Some(w)) => Term::Numeric { scale: w / n.std },
                        (None, None) => unreachable!("validated: a weight or a shape"),
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
        let schema = FeatureSchema::new(defs);
        let mut pairs = Vec::with_capacity(file.pairs.len());
        for p in &file.pairs {
            let mut pair = additive::compile_pair(p, &schema)?;
            pair.link_shapes(pair.features.map(|i| match &terms[i] {
                Term::Binned { edges, .. } => Some(edges.as_slice()),
                _ => None,
            }));
            pairs.push(pair);
        }
        let health = match &file.health {
            Some(h) => Some(health::Health::compile(h, &schema)?),
            None => None,
        };
        if file.kind == ModelKind::Additive {
            let expected = file.intercept + additive::means_sum(&file.features, &file.pairs);
            if (expected - file.baseline_logit).abs() > 1e-9 * expected.abs().max(1.0) {
                return Err(format!(
                    "baseline_logit {} differs from the intercept plus the terms' training means ({expected})",
                    file.baseline_logit
                ));
            }
        }
        Ok(ChurnModel {
            schema,
            terms,
            pairs,
            health,
            baseline: match file.kind {
                ModelKind::Linear => file.intercept,
                ModelKind::Additive => file.baseline_logit,
            },
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
            (
                Term::Binned {
                    edges,
                    contribution,
                    missing,
                },
                FeatureKind::Numeric(enc),
            ) => TermView::Binned {
                enc,
                edges,
                contributions: contribution,
                missing: *missing,
            },
            _ => unreachable!("schema and terms are built together"),
        }
    }

    /// The pair terms (additive only), in file order: a feature's contribution is its main term
    /// plus half of each pair term it is in, added in this order.
    pub fn pairs(&self) -> &[PairTerm] {
        &self.pairs
    }

    pub fn kind(&self) -> ModelKind {
        self.file.kind
    }

    /// Where the logit starts: each contribution is added to it in schema order.
    pub fn intercept(&self) -> f64 {
        self.baseline
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

    /// THE front door: scores one row of cells given in schema order (absent features as
    /// [`Value::Missing`]). Every cell goes through [`FeatureSchema::resolve`], the one cell rule.
    /// Fills `s` (contributions, resolved values, notes; one per feature) and returns the score; on
    /// bad cells returns `None` with `s.violations` naming every bad feature by index.
    pub fn score_row(
        &self,
        row: &[Value<'_>],
        strict: bool,
        s: &mut RowScratch,
    ) -> Option<RowScore> {
        let n = self.terms.len();
        debug_assert_eq!(row.len(), n);
        s.contributions.clear();
        s.resolved.clear();
        s.notes.clear();
        s.violations.clear();
        let mut logit = self.baseline;
        let has_pairs = !self.pairs.is_empty();
        if has_pairs {
            s.bins.clear();
            s.bins.resize(n, 0);
        }
        for (i, (term, v)) in self.terms.iter().zip(row).enumerate() {
            let (r, note) = match self.schema.resolve(i, *v, strict) {
                Ok(x) => x,
                Err(description) => {
                    s.violations.push(Violation {
                        feature: i,
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
                (
                    Term::Binned {
                        edges,
                        contribution,
                        missing,
                    },
                    Resolved::Number(x),
                    _,
                ) => {
                    // An imputed number's bin still places it in pair tables, as in training.
                    let bin = additive::bin_of(edges, x);
                    if has_pairs {
                        s.bins[i] = bin;
                    }
                    if note == Note::Imputed {
                        *missing
                    } else {
                        contribution[bin]
                    }
                }
                _ => unreachable!("schema and terms are built together"),
            };
            logit += c;
            s.contributions.push(c);
            s.resolved.push(r);
            s.notes.push(note);
        }
        if !s.violations.is_empty() {
            return None;
        }
        if !self.pairs.is_empty() {
            logit = self.add_pairs(s);
        }
        let probability = sigmoid(logit);
        let tier = self.tier(probability);
        Some(RowScore {
            logit,
            probability,
            tier,
            health: self.health.as_ref().map(|h| h.score(&s.resolved, tier)),
        })
    }

    /// Adds half of each pair term to both its features' contributions, in pair order, and returns
    /// the logit summed anew (baseline + Σ contributions in schema order).
    fn add_pairs(&self, s: &mut RowScratch) -> f64 {
        s.mains.clear();
        s.mains.extend_from_slice(&s.contributions);
        s.pair_values.clear();
        for p in &self.pairs {
            let [a, b] = p.features;
            let v = p.value(s.resolved[a], s.resolved[b], [s.bins[a], s.bins[b]]);
            s.contributions[a] += 0.5 * v;
            s.contributions[b] += 0.5 * v;
            s.pair_values.push(v);
        }
        let mut logit = self.baseline;
        for c in &s.contributions {
            logit += c;
        }
        logit
    }

    /// Field violations for a door: each bad cell under its feature's name.
    pub fn named_violations(&self, v: &[Violation]) -> Vec<FieldViolation> {
        let features = self.schema.features();
        v.iter()
            .map(|v| FieldViolation {
                field: features[v.feature].name.clone(),
                description: v.description.clone(),
            })
            .collect()
    }

    /// Field violations for names the model does not have: each named once, the first
    /// [`MAX_LISTED`], the first also listing the model's features; one more counts the rest.
    /// Every field is a feature name, so a door can put its own path in front.
    pub fn unknown_features(&self, names: &[&str]) -> Vec<FieldViolation> {
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<&str> = names.iter().copied().filter(|n| seen.insert(*n)).collect();
        let mut out: Vec<FieldViolation> = distinct
            .iter()
            .take(MAX_LISTED)
            .enumerate()
            .map(|(k, n)| FieldViolation {
                field: n.to_string(),
                description: if k == 0 {
                    format!(
                        "unknown feature: model {} has no feature of this name (its features: {})",
                        self.id,
                        self.schema.feature_list()
                    )
                } else {
                    format!(
                        "unknown feature: model {} has no feature of this name",
                        self.id
                    )
                },
            })
            .collect();
        if distinct.len() > MAX_LISTED {
            out.push(FieldViolation {
                field: distinct[MAX_LISTED].to_string(),
                description: format!(
                    "unknown feature, and {} more unknown features not listed",
                    distinct.len() - MAX_LISTED - 1
                ),
            });
        }
        out
    }

    /// Scores and explains one row given in schema order.
    pub fn explain(
        &self,
        row: &[Value<'_>],
        strict: bool,
    ) -> std::result::Result<Explanation, Vec<FieldViolation>> {
        let mut s = RowScratch::default();
        match self.score_row(row, strict, &mut s) {
            Some(score) => Ok(self.explanation(score, &s)),
            None => Err(self.named_violations(&s.violations)),
        }
    }

    /// Builds the explanation for a row just scored with [`ChurnModel::score_row`].
    pub fn explanation(&self, score: RowScore, s: &RowScratch) -> Explanation {
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
                    imputed: s.notes[i] == Note::Imputed,
                }
            })
            .collect();
        Explanation {
            logit: score.logit,
            probability: score.probability,
            tier: score.tier,
            baseline_logit: self.file.baseline_logit,
            contributions,
            imputed,
            unseen,
            terms: self.terms_of(s),
            health: score.health,
            health_reasons: self.health_reasons(s, usize::MAX),
        }
    }

    /// The usage health of the model, when it has usage measures.
    pub fn health(&self) -> Option<&health::Health> {
        self.health.as_ref()
    }

    /// The `k` usage measures where the row just scored stands lowest (empty without health).
    pub fn health_reasons(&self, s: &RowScratch, k: usize) -> Vec<HealthReasonNamed> {
        let Some(h) = &self.health else {
            return Vec::new();
        };
        let features = self.schema.features();
        h.reasons(&s.resolved, k)
            .into_iter()
            .map(|r| HealthReasonNamed {
                measure: features[r.feature].name.clone(),
                value: r.value,
                percentile: r.percentile,
            })
            .collect()
    }

    /// The additive terms of the row just scored: main effects in schema order, then pairs.
    fn terms_of(&self, s: &RowScratch) -> Vec<TermValue> {
        if self.file.kind != ModelKind::Additive {
            return Vec::new();
        }
        let features = self.schema.features();
        let mains = if self.pairs.is_empty() {
            &s.contributions
        } else {
            &s.mains
        };
        let mut out: Vec<TermValue> = features
            .iter()
            .zip(mains)
            .map(|(d, v)| TermValue {
                features: vec![d.name.clone()],
                value: *v,
            })
            .collect();
        for (p, v) in self.pairs.iter().zip(&s.pair_values) {
            out.push(TermValue {
                features: p
                    .features
                    .iter()
                    .map(|&i| features[i].name.clone())
                    .collect(),
                value: *v,
            });
        }
        out
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
        let (row, unknown) = self.schema.row_from_named(named);
        let unknown = self.unknown_features(&unknown);
        match self.explain(&row, strict) {
            Ok(e) if unknown.is_empty() => Ok(e),
            Ok(_) => Err(unknown),
            Err(mut bad_values) => {
                bad_values.extend(unknown);
                Err(bad_values)
            }
        }
    }
}

fn validate(f: &ModelFile) -> std::result::Result<(), String> {
    if !(file::OLDEST_FORMAT..=file::FORMAT).contains(&f.format) {
        return Err(format!(
            "format {} is not supported (this churn reads formats {} to {})",
            f.format,
            file::OLDEST_FORMAT,
            file::FORMAT
        ));
    }
    if f.format == 1 && (f.kind != ModelKind::Linear || !f.pairs.is_empty()) {
        return Err("format 1 files are linear: kind and pairs came with format 2".into());
    }
    if f.format < 3 && f.health.is_some() {
        return Err(format!(
            "health came with format 3; this file says format {}",
            f.format
        ));
    }
    let additive = f.kind == ModelKind::Additive;
    if !additive && !f.pairs.is_empty() {
        return Err("pairs belong to the additive kind; this model is linear".into());
    }
    if additive {
        additive::check_file(f)?;
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
                match (additive, n.weight, &n.shape) {
                    (false, Some(_), None) => {}
                    (true, None, Some(shape)) => additive::check_shape(shape)
                        .map_err(|e| format!("feature '{name}': {e}"))?,
                    (false, _, _) => {
                        return Err(format!(
                            "feature '{name}': a linear model's numeric feature needs a weight and no shape"
                        ));
                    }
                    (true, _, _) => {
                        return Err(format!(
                            "feature '{name}': an additive model's numeric feature needs a shape and no weight"
                        ));
                    }
                }
                if ![n.impute, n.mean, n.std, n.weight.unwrap_or(0.0)]
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
    if !additive && (f.intercept - f.baseline_logit).abs() > 1e-9 * f.intercept.abs().max(1.0) {
        return Err(format!(
            "baseline_logit {} differs from the intercept {}: a linear model centres every design column",
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
    use super::{Note, top_k_given};

    #[test]
    fn top_k_orders_by_magnitude_with_ties_in_index_order_and_skips_imputed() {
        let c = [0.1, -0.9, 0.5, 0.9, -0.05, 0.5];
        let given = [Note::None; 6];
        let mut out = Vec::new();
        top_k_given(&c, &given, 3, &mut out);
        assert_eq!(out, vec![1, 3, 2]);
        top_k_given(&c, &given, 10, &mut out);
        assert_eq!(out, vec![1, 3, 2, 5, 0, 4]);
        top_k_given(&c, &given, 0, &mut out);
        assert!(out.is_empty());
        let mut notes = given;
        notes[1] = Note::Imputed;
        notes[4] = Note::Unseen;
        top_k_given(&c, &notes, 10, &mut out);
        assert_eq!(out, vec![3, 2, 5, 0, 4]);
    }
}
