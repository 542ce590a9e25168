//! FeatureSchema: the model's input columns and how a row becomes a design vector. Numeric features
//! are transformed, imputed and standardised; categorical ones are one-hot encoded and centred by
//! each level's training share, so every design column has training mean zero. The same encoding is
//! used to train and to score, so a score is the same number everywhere.
use crate::io::is_missing_token;
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

/// One customer's features as a JSON object gives them (name -> number, text or null), in the
/// object's order: the JSON side of the cell rule, shared by `churn explain`, `churn client` and
/// the HTTP door. A value of any other JSON type is kept as what it was, so that the door names
/// that field instead of refusing the whole body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamedCells(pub Vec<(String, JsonCell)>);

#[derive(Debug, Clone, PartialEq)]
pub enum JsonCell {
    Null,
    Number(f64),
    Text(String),
    /// A boolean, array or object: what it was, for the message.
    Invalid(&'static str),
}

impl JsonCell {
    /// The value a JSON cell gives: null is missing, a string is text (a numeric feature then reads
    /// it by the text rule), a number is a number; anything else is refused with why.
    pub fn value(&self) -> Result<Value<'_>, String> {
        match self {
            JsonCell::Null => Ok(Value::Missing),
            JsonCell::Number(x) => Ok(Value::Number(*x)),
            JsonCell::Text(s) => Ok(Value::Text(s)),
            JsonCell::Invalid(what) => Err(format!("expected a number, text or null, got {what}")),
        }
    }
}

impl NamedCells {
    /// The named values, and a violation (field: the feature's name) for each refused cell.
    pub fn values(&self) -> (Vec<(&str, Value<'_>)>, Vec<crate::error::FieldViolation>) {
        let mut named = Vec::with_capacity(self.0.len());
        let mut bad = Vec::new();
        for (k, c) in &self.0 {
            match c.value() {
                Ok(v) => named.push((k.as_str(), v)),
                Err(description) => bad.push(crate::error::FieldViolation {
                    field: k.clone(),
                    description,
                }),
            }
        }
        (named, bad)
    }
}

impl<'de> Deserialize<'de> for JsonCell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Cell;
        impl<'de> serde::de::Visitor<'de> for Cell {
            type Value = JsonCell;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, text or null")
            }
            fn visit_unit<E>(self) -> Result<JsonCell, E> {
                Ok(JsonCell::Null)
            }
            fn visit_none<E>(self) -> Result<JsonCell, E> {
                Ok(JsonCell::Null)
            }
            fn visit_f64<E>(self, x: f64) -> Result<JsonCell, E> {
                Ok(JsonCell::Number(x))
            }
            fn visit_i64<E>(self, x: i64) -> Result<JsonCell, E> {
                Ok(JsonCell::Number(x as f64))
            }
            fn visit_u64<E>(self, x: u64) -> Result<JsonCell, E> {
                Ok(JsonCell::Number(x as f64))
            }
            fn visit_str<E>(self, s: &str) -> Result<JsonCell, E> {
                Ok(JsonCell::Text(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<JsonCell, E> {
                Ok(JsonCell::Text(s))
            }
            fn visit_bool<E>(self, b: bool) -> Result<JsonCell, E> {
                Ok(JsonCell::Invalid(if b { "true" } else { "false" }))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<JsonCell, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonCell::Invalid("an array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<JsonCell, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(JsonCell::Invalid("an object"))
            }
        }
        d.deserialize_any(Cell)
    }
}

impl<'de> Deserialize<'de> for NamedCells {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Cells;
        impl<'de> serde::de::Visitor<'de> for Cells {
            type Value = NamedCells;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of feature name -> number, text or null")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<NamedCells, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(16));
                while let Some(entry) = a.next_entry::<String, JsonCell>()? {
                    out.push(entry);
                }
                Ok(NamedCells(out))
            }
        }
        d.deserialize_map(Cells)
    }
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

/// A cell the rule refused: the feature (its index in schema order) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub feature: usize,
    pub description: String,
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

    /// THE cell -> value rule, the same for every door (CLI, batch, churn.v1, V2, evaluate):
    /// checks one feature's cell and resolves it to the number or level used, with a note when it
    /// was imputed or unseen. `Err` holds the violation's description.
    ///
    /// - Text is trimmed. For a numeric feature, text that parses as a number is that number;
    ///   blank and missing tokens (`NA`, `null`, `?`, ...) are missing; other text is refused.
    /// - A number must be finite and inside the feature's transform's domain.
    /// - For a categorical feature, a number is matched as its text (as training read it), blank
    ///   and missing tokens are missing, and a level the model never saw is unseen.
    /// - Missing is imputed (the training median, or the most frequent level), or refused when
    ///   `strict`.
    #[inline]
    pub fn resolve(
        &self,
        feature: usize,
        value: Value<'_>,
        strict: bool,
    ) -> Result<(Resolved, Note), String> {
        let def = &self.features[feature];
        match (&def.kind, value) {
            (_, Value::Missing) => missing(&def.kind, strict),
            (FeatureKind::Numeric(n), Value::Number(x)) => number(n, x),
            (FeatureKind::Numeric(n), Value::Text(t)) => {
                let t = trim(t);
                match t.parse::<f64>() {
                    // "NaN" and "inf" parse, and are refused as non-finite: a value, not a blank.
                    Ok(x) => number(n, x),
                    Err(_) if is_missing_token(t) => missing(&def.kind, strict),
                    Err(_) => Err(format!("expected a number, got text \"{}\"", clip(t))),
                }
            }
            (FeatureKind::Categorical(c), Value::Text(t)) => {
                let t = trim(t);
                // A level first (the common case): training never keeps a missing token as a level.
                match c.level(t) {
                    Some(l) => Ok((Resolved::Level(l), Note::None)),
                    None if is_missing_token(t) => missing(&def.kind, strict),
                    None => Ok((Resolved::Level(c.unseen), Note::Unseen)),
                }
            }
            (FeatureKind::Categorical(c), Value::Number(x)) => {
                if !x.is_finite() {
                    return Err(format!("expected a level, got the number {x}"));
                }
                Ok(level(c, &x.to_string()))
            }
        }
    }

    /// Maps named values onto schema order; absent features are `Value::Missing`. Unknown names
    /// are returned beside the row, so that the values can still be checked and every offending
    /// field reported at once.
    pub fn row_from_named<'a, I>(&self, named: I) -> (Vec<Value<'a>>, Vec<&'a str>)
    where
        I: IntoIterator<Item = (&'a str, Value<'a>)>,
    {
        let mut row = vec![Value::Missing; self.features.len()];
        let mut unknown = Vec::new();
        for (name, v) in named {
            match self.index_of(name) {
                Some(i) => row[i] = v,
                None => unknown.push(name),
            }
        }
        (row, unknown)
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

fn missing(kind: &FeatureKind, strict: bool) -> Result<(Resolved, Note), String> {
    match kind {
        _ if strict => Err("missing: strict scoring (--strict) requires every feature".into()),
        FeatureKind::Numeric(n) => Ok((Resolved::Number(n.impute), Note::Imputed)),
        FeatureKind::Categorical(c) => Ok((Resolved::Level(c.unseen), Note::Imputed)),
    }
}

#[inline]
fn number(n: &NumericEncoding, x: f64) -> Result<(Resolved, Note), String> {
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

#[inline]
fn level(c: &CategoricalEncoding, t: &str) -> (Resolved, Note) {
    match c.level(t) {
        Some(l) => (Resolved::Level(l), Note::None),
        None => (Resolved::Level(c.unseen), Note::Unseen),
    }
}

/// `t` without surrounding whitespace; the common case, no whitespace at either end, is checked
/// on two bytes.
#[inline]
fn trim(t: &str) -> &str {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_whitespace() || *b >= 0x80);
    if edge(t.as_bytes().first()) || edge(t.as_bytes().last()) {
        t.trim()
    } else {
        t
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}
