//! The model file, `model.json`, format 1: everything needed to reproduce training-time transforms
//! and to score, plus how the model was made and how good it is. Serialised with serde; numbers are
//! written in shortest round-trip form, so equal weights give byte-equal files.
use crate::model::metrics::Metrics;
use crate::schema::Transform;
use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: u32,
    pub name: String,
    pub version: u64,
    pub created_at: String,
    /// Version of churn that trained the model.
    pub churn_version: String,
    pub training: TrainingInfo,
    /// Input features in input order.
    pub features: Vec<FeatureEntry>,
    pub intercept: f64,
    /// Logit of the training-mean customer: the reference point of every explanation. Design
    /// columns are centred, so it equals the intercept.
    pub baseline_logit: f64,
    pub tiers: TierCuts,
    pub metrics: ModelMetrics,
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
    /// Weight per standard deviation of the transformed value.
    pub weight: f64,
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
