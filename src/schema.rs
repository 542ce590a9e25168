//! FeatureSchema: the model's input columns and how a row becomes a design vector. Numeric features
//! are transformed, imputed and standardised; categorical ones are one-hot encoded and centred by
//! each level's training share, so every design column has training mean zero. The same encoding is
//! used to train and to score, so a score is the same number everywhere.
use crate::error::FieldViolation;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// A monotone transform applied to a numeric feature before standardising.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    #[default]
    None,
    /// ln(1 + x); defined for x > -1.
    Log1p,
    /// asinh(x): log-like for large |x|, defined everywhere, keeps sign.
    Asinh,
}

impl Transform {
    /// The transformed value, or `None` outside the transform's domain.
    #[inline]
    pub fn apply(self, x: f64) -> Option<f64> {
        match self {
            Transform::None => Some(x),
            Transform::Log1p if x > -1.0 => Some(x.ln_1p()),
            Transform::Log1p => None,
            Transform::Asinh => Some(x.asinh()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transform::None => "none",
            Transform::Log1p => "log1p",
            Transform::Asinh => "asinh",
        }
    }

    pub fn parse(s: &str) -> Option<Transform> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Transform::None),
            "log1p" => Some(Transform::Log1p),
            "asinh" => Some(Transform::Asinh),
            _ => None,
        }
    }
}

/// One input value as a caller supplies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Missing,
    Number(f64),
    Text(&'a str),
}

/// How a numeric feature becomes its design value z = (transform(x) - mean) / std.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericEncoding {
    pub transform: Transform,
    /// Raw value used when the input is missing (the training median).
    pub impute: f64,
    /// Mean and standard deviation of the transformed, imputed training values.
    pub mean: f64,
    pub std: f64,
}

impl NumericEncoding {
    /// Design value for a raw (already imputed) input, or `None` outside the transform's domain.
    #[inline]
    pub fn z(&self, x: f64) -> Option<f64> {
        self.transform.apply(x).map(|t| (t - self.mean) / self.std)
    }
}

/// How a categorical feature becomes its design values z_l = [x == l] - share_l.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoricalEncoding {
    pub levels: Vec<String>,
    /// Training share of each level (sums to 1).
    pub shares: Vec<f64>,
    /// Index of the level used for missing and unseen values.
    pub unseen: usize,
    index: FxHashMap<String, usize>,
}

impl CategoricalEncoding {
    pub fn new(levels: Vec<String>, shares: Vec<f64>, unseen: usize) -> Self {
        let index = levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        CategoricalEncoding {
            levels,
            shares,
            unseen,
            index,
        }
    }

    /// The level's index. Few levels (the common case) are compared directly, which beats hashing.
    #[inline]
    pub fn level(&self, text: &str) -> Option<usize> {
        if self.levels.len() <= 16 {
            self.levels.iter().position(|l| l == text)
        } else {
            self.index.get(text).copied()
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    Numeric(NumericEncoding),
    Categorical(CategoricalEncoding),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDef {
    pub name: String,
    pub kind: FeatureKind,
}

impl FeatureDef {
    /// Number of design columns: 1 for numeric, one per level for categorical.
    pub fn width(&self) -> usize {
        match &self.kind {
            FeatureKind::Numeric(_) => 1,
            FeatureKind::Categorical(c) => c.levels.len(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            FeatureKind::Numeric(_) => "numeric",
            FeatureKind::Categorical(_) => "categorical",
        }
    }
}

/// A feature's input after validation: the number actually used, or the level index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    Number(f64),
    Level(usize),
}

/// What happened to a feature on its way in, beyond being used as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    None,
    Imputed,
    Unseen,
}

/// The model's input features, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSchema {
    features: Vec<FeatureDef>,
    by_name: FxHashMap<String, usize>,
}

impl FeatureSchema {
    pub fn new(features: Vec<FeatureDef>) -> Self {
        let by_name = features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        FeatureSchema { features, by_name }
    }

    pub fn features(&self) -> &[FeatureDef] {
        &self.features
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Total design width (numeric features plus categorical levels).
    pub fn width(&self) -> usize {
        self.features.iter().map(FeatureDef::width).sum()
    }

    /// Checks one feature's value and resolves it to the number or level used, with a note when it
    /// was imputed or unseen. `Err` holds the violation's description.
    pub fn resolve(
        &self,
        feature: usize,
        value: Value<'_>,
        strict: bool,
    ) -> Result<(Resolved, Note), String> {
        let def = &self.features[feature];
        match (&def.kind, value) {
            (_, Value::Missing) if strict => {
                Err("missing: the server runs with --strict, so every feature is required".into())
            }
            (FeatureKind::Numeric(n), Value::Missing) => {
                Ok((Resolved::Number(n.impute), Note::Imputed))
            }
            (FeatureKind::Numeric(n), Value::Number(x)) => {
                if !x.is_finite() {
                    Err(format!("expected a finite number, got {x}"))
                } else if n.transform.apply(x).is_none() {
                    Err(format!(
                        "{x} is outside the domain of the {} transform (values must be above -1)",
                        n.transform.name()
                    ))
                } else {
                    Ok((Resolved::Number(x), Note::None))
                }
            }
            (FeatureKind::Numeric(_), Value::Text(t)) => {
                let t = t.trim();
                if matches!(
                    t.to_ascii_lowercase().as_str(),
                    "nan" | "inf" | "-inf" | "infinity" | "-infinity"
                ) {
                    Err(format!("expected a finite number, got {t}"))
                } else {
                    Err(format!("expected a number, got text \"{}\"", clip(t)))
                }
            }
            (FeatureKind::Categorical(c), Value::Missing) => {
                Ok((Resolved::Level(c.unseen), Note::Imputed))
            }
            (FeatureKind::Categorical(c), Value::Text(t)) => match c.level(t) {
                Some(l) => Ok((Resolved::Level(l), Note::None)),
                None => Ok((Resolved::Level(c.unseen), Note::Unseen)),
            },
            (FeatureKind::Categorical(c), Value::Number(x)) => Err(format!(
                "expected text (a level such as \"{}\"), got the number {x}",
                clip(&c.levels[c.unseen])
            )),
        }
    }

    /// Maps named values onto schema order; absent features are `Value::Missing`. Unknown names
    /// are returned as violations beside the row, so that the values can still be checked and
    /// every offending field reported at once.
    pub fn row_from_named<'a, I>(&self, named: I) -> (Vec<Value<'a>>, Vec<FieldViolation>)
    where
        I: IntoIterator<Item = (&'a str, Value<'a>)>,
    {
        let mut row = vec![Value::Missing; self.features.len()];
        let mut violations = Vec::new();
        for (name, v) in named {
            match self.index_of(name) {
                Some(i) => row[i] = v,
                None => violations.push(FieldViolation {
                    field: name.to_string(),
                    description: format!(
                        "unknown feature; the model's features are: {}",
                        self.feature_list()
                    ),
                }),
            }
        }
        (row, violations)
    }

    /// The feature names for messages (the first 30 and a count when there are more).
    pub fn feature_list(&self) -> String {
        let names: Vec<&str> = self.features.iter().map(|f| f.name.as_str()).collect();
        if names.len() > 30 {
            format!("{}, ... ({} in all)", names[..30].join(", "), names.len())
        } else {
            names.join(", ")
        }
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}
