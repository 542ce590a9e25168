//! The model file, `model.json`: everything needed to reproduce training-time transforms and to
//! score, plus how the model was made and how good it is. Serialised with serde; numbers are
//! written in shortest round-trip form, so equal weights give byte-equal files.
//!
//! Format 2 (written now) adds `kind` (linear | additive), the additive shapes (`shape` on a
//! numeric feature, per-level values on a categorical one, `pairs`) and, in `training`, the kinds
//! tried with their cross-validated scores. Format 3 adds `health` (usage measures, their
//! percentiles and directions, the bands); a model without health is still written as format 2,
//! so older churn versions keep reading it. Format 1 files are format 2 files of kind linear
//! without those fields, and load and score as they always did. Field by field: `docs/model-file.md`.
use crate::model::metrics::Metrics;
use crate::schema::Transform;
use serde::{Deserialize, Serialize};

/// The format this churn writes; it reads [`OLDEST_FORMAT`] to this.
pub const FORMAT: u32 = 3;
/// The format a file without health is written in (format 3 only adds `health`).
pub const FORMAT_WITHOUT_HEALTH: u32 = 2;
pub const OLDEST_FORMAT: u32 = 1;

/// The model kind: how features become the logit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// logit = intercept + Σ weight·z, z the standardised value (one-hot centred by level share).
    #[default]
    Linear,
    /// logit = intercept + Σ shape_j(x_j) + Σ pair_ab(x_a, x_b): binned shapes and 2-D tables.
    Additive,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Linear => "linear",
            ModelKind::Additive => "additive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: u32,
    /// Absent in format 1, which is linear only.
    #[serde(default)]
    pub kind: ModelKind,
    pub name: String,
    pub version: u64,
    pub created_at: String,
    /// Version of churn that trained the model.
    pub churn_version: String,
    pub training: TrainingInfo,
    /// Input features in input order.
    pub features: Vec<FeatureEntry>,
    /// Additive: interaction terms, each a 2-D table over coarse bins of two features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<PairEntry>,
    pub intercept: f64,
    /// Logit of the training-mean customer: the reference point of every explanation. Linear:
    /// design columns are centred, so it equals the intercept. Additive: the intercept plus each
    /// term's training mean (each term is stored centred, so the two agree to rounding).
    pub baseline_logit: f64,
    pub tiers: TierCuts,
    /// Usage health: the measures, their training percentiles and directions, and the bands.
    /// Absent before format 3, and in models trained without usage measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthEntry>,
    pub metrics: ModelMetrics,
    /// What the training customers looked like, for drift: each feature's and the score's
    /// distribution. Absent in files trained before churn kept them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftEntry>,
}

/// The training distributions drift is measured against ([`crate::model::drift`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftEntry {
    /// Rows the references were counted on.
    pub rows: u64,
    /// One per feature, in schema order.
    pub features: Vec<FeatureReference>,
    /// The training scores' decile edges and the share of rows in each bin.
    pub score: ScoreReference,
}

/// One feature's training distribution, as shares of all training rows (with `missing_share`
/// they sum to 1). Numeric: bins closed below at the training decile edges (repeated edges
/// dropped), `shares` one per bin (edges.len() + 1). Categorical: no edges, `shares` one per
/// model level in level order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReference {
    pub feature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<f64>>,
    pub shares: Vec<f64>,
    pub missing_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReference {
    pub edges: Vec<f64>,
    pub shares: Vec<f64>,
}

/// How healthy a customer's usage is: the weighted mean of their percentiles on the usage
/// measures (each oriented so that higher is healthier), 0-100, in bands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthEntry {
    pub measures: Vec<UsageMeasure>,
    /// RED below `bands[0]`, YELLOW below `bands[1]`, GREEN from it.
    pub bands: [f64; 2],
    /// How the measures were chosen: `--usage` or the activity metrics of `churn features`.
    pub chosen_by: String,
}

/// One usage measure: a numeric feature, its direction and weight, and the 1st to 99th
/// percentiles of its training values (missing cells imputed as scoring imputes them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageMeasure {
    pub feature: String,
    /// +1: more of it goes with staying; -1: less of it does. Learned from the training labels.
    pub direction: i8,
    pub weight: f64,
    /// The measure's AUC for staying on the training rows (above 0.5 with `direction` applied):
    /// how strongly the direction was learned.
    pub staying_auc: f64,
    /// 99 ascending values (ties repeat): the k-th is the k-th percentile of the training values.
    pub percentiles: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The data file as given on the command line, and the SHA-256 of its bytes.
    pub data_file: String,
    pub data_sha256: String,
    pub rows: u64,
    pub label: String,
    /// The label value that means "churned".
    pub positive: String,
    pub id_column: Option<String>,
    pub dropped: Vec<String>,
    /// L2 penalty α in Σ log-loss + α/2·‖w‖² (scikit-learn's C = 1/α), and how it was chosen.
    pub l2: f64,
    pub l2_chosen_by: String,
    pub seed: u64,
    pub holdout_fraction: f64,
    /// With `--split-by`: the holdout is the latest rows by this column, not a random share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_split: Option<TimeSplit>,
    pub folds: u32,
    /// Share of positive (churned) rows.
    pub positive_share: f64,
    /// Missing (imputed) cells per feature, where any.
    pub imputed_cells: Vec<FeatureCount>,
    pub solver: SolverInfo,
    /// How the kind was chosen: "--kind linear", "--kind additive", or by cross-validated log
    /// loss under `--kind auto`. Absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_chosen_by: Option<String>,
    /// Each kind fitted, with its cross-validated scores on the training part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds_tried: Vec<KindScore>,
    /// The additive fit's settings, when the additive kind was fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additive: Option<AdditiveInfo>,
}

/// A kind fitted during training and its cross-validated scores (mean over folds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindScore {
    pub kind: ModelKind,
    pub cv_log_loss: f64,
    pub cv_auc: f64,
}

/// How the additive kind was fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdditiveInfo {
    /// Most bins per numeric shape (fewer where the data has fewer distinct values or rows).
    pub max_bins: u32,
    /// Smoothing λ: penalty on squared second differences of neighbouring bins (and first
    /// differences within pair tables), on the summed log loss; and how it was chosen.
    pub smoothing: f64,
    pub smoothing_chosen_by: String,
    /// Ridge penalty on every bin, level and cell value.
    pub ridge: f64,
    /// Pairs asked for (`--interactions`) and how many were found worth keeping.
    pub interactions_requested: u32,
    pub interactions_kept: u32,
    pub iterations: u64,
    pub converged: bool,
    /// Plain-language notes: features with fewer bins than asked, constant features, and so on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A holdout of the latest period: rows whose `column` is `holdout_from` or later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSplit {
    pub column: String,
    pub holdout_from: String,
    /// With `--purge`: training rows dated within this many days before `holdout_from` were left
    /// out, so no training label looks into the held-out period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_days: Option<u32>,
    #[serde(default)]
    pub purged_rows: u64,
}

/// A count of cells for one feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureCount {
    pub feature: String,
    pub cells: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverInfo {
    pub name: String,
    /// L-BFGS iterations of the final fit, where the solver reports them.
    pub iterations: Option<u64>,
    pub converged: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureEntry {
    Numeric(NumericEntry),
    Categorical(CategoricalEntry),
}

impl FeatureEntry {
    pub fn name(&self) -> &str {
        match self {
            FeatureEntry::Numeric(n) => &n.name,
            FeatureEntry::Categorical(c) => &c.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericEntry {
    pub name: String,
    pub transform: Transform,
    /// Raw value used when missing (training median).
    pub impute: f64,
    /// Mean and standard deviation after transform and imputation.
    pub mean: f64,
    pub std: f64,
    /// Linear: weight per standard deviation of the transformed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Additive: the feature's shape over bins of the raw value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<ShapeEntry>,
}

/// An additive model's shape for one numeric feature: a value (log-odds) per bin of the raw value,
/// bins closed below: bin 0 is x < edges[0], bin b is edges[b-1] <= x < edges[b], the last bin is
/// x >= edges[last]. A value outside the training range falls in an edge bin. Missing values have
/// their own value. Values are centred: Σ shares·values + missing_share·missing_value = 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeEntry {
    pub edges: Vec<f64>,
    /// One per bin: edges.len() + 1.
    pub values: Vec<f64>,
    /// Share of training rows in each bin.
    pub shares: Vec<f64>,
    pub missing_value: f64,
    pub missing_share: f64,
}

/// An interaction term: a 2-D table (log-odds) over coarse bins of two features, row-major (rows
/// the first feature's bins). A missing number takes its feature's impute value here. Centred:
/// Σ shares·values = 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairEntry {
    pub features: [String; 2],
    pub axes: [PairAxis; 2],
    pub values: Vec<f64>,
    pub shares: Vec<f64>,
}

/// One side of a pair table: numeric features by coarse edges (closed below, as in shapes),
/// categorical ones by a coarse bin for each of the feature's levels, in level order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairAxis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_bins: Option<Vec<u32>>,
}

impl PairAxis {
    /// Number of bins on this side.
    pub fn bins(&self) -> usize {
        match (&self.edges, &self.level_bins) {
            (Some(e), _) => e.len() + 1,
            (None, Some(l)) => l.iter().max().map_or(0, |m| *m as usize + 1),
            (None, None) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalEntry {
    pub name: String,
    pub levels: Vec<LevelEntry>,
    /// The level used for missing and unseen values (the most frequent in training).
    pub unseen_level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelEntry {
    pub value: String,
    /// Share of training rows with this level.
    pub share: f64,
    /// Linear: the one-hot weight. Additive: the level's value (log-odds; centred over shares).
    pub weight: f64,
}

/// Probability cut points: p >= high is HIGH, p >= medium is MEDIUM, else LOW.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TierCuts {
    pub medium: f64,
    pub high: f64,
    /// How they were chosen: the share of holdout customers put in HIGH and in MEDIUM.
    pub high_share: f64,
    pub medium_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ModelMetrics {
    /// Model fitted on the training part, measured on the stratified holdout.
    pub holdout: Option<Metrics>,
    /// Mean and standard deviation over the cross-validation folds at the chosen L2.
    pub cross_validation: Option<CvMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvMetrics {
    pub folds: u32,
    pub auc_mean: f64,
    pub auc_std: f64,
    pub log_loss_mean: f64,
    pub log_loss_std: f64,
    /// Mean validation log loss for each L2 value tried (when chosen by cross-validation).
    pub l2_path: Vec<(f64, f64)>,
}
