//! What a training run is asked to do, and what it reports back.
use super::solver::SolverKind;
use crate::model::file::{FeatureCount, ModelFile};
use crate::schema::Transform;
use std::collections::HashSet;
use std::path::PathBuf;

/// The L2 values cross-validation chooses from (penalty α on the summed loss).
pub const L2_GRID: [f64; 7] = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0];

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data_file: PathBuf,
    pub label: String,
    pub positive: Option<String>,
    pub id: Option<String>,
    pub drop: Vec<String>,
    pub categorical: Vec<String>,
    pub numeric: Vec<String>,
    pub transforms: Vec<(String, Transform)>,
    pub l2: Option<f64>,
    pub holdout: f64,
    /// Hold out the latest rows by this column (e.g. the snapshot date) instead of a random
    /// stratified share; the column is not a feature.
    pub split_by: Option<String>,
    /// With `split_by` holding dates: leave out training rows dated within this many days before
    /// the holdout (the label horizon), so their labels do not look into the held-out period.
    pub purge_days: Option<u32>,
    pub folds: u32,
    pub seed: u64,
    pub name: String,
    pub solver: SolverKind,
    /// Share of holdout customers put in HIGH, and in MEDIUM.
    pub tier_shares: (f64, f64),
    pub kind: KindChoice,
    /// Additive: most pair terms (0 = none).
    pub interactions: u32,
    /// Additive: the smoothing λ, or None to choose it by cross-validation.
    pub smoothing: Option<f64>,
    /// Additive: most bins per numeric shape.
    pub max_bins: u32,
    /// Usage measures for health: `Some(names)` as given (empty: no health), `None` for the
    /// default (a table from `churn features`: its activity metrics; otherwise no health).
    pub usage: Option<Vec<String>>,
    /// Weights of usage measures (the others weigh 1).
    pub usage_weights: Vec<(String, f64)>,
    /// Health bands: RED below the first, GREEN from the second.
    pub health_bands: [f64; 2],
}

/// `--kind`: which model kinds to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KindChoice {
    /// Fit both; keep the one with the lower cross-validated log loss.
    #[default]
    Auto,
    Linear,
    Additive,
}

impl KindChoice {
    pub fn parse(s: &str) -> Option<KindChoice> {
        match s {
            "auto" => Some(KindChoice::Auto),
            "linear" => Some(KindChoice::Linear),
            "additive" => Some(KindChoice::Additive),
            _ => None,
        }
    }
}

impl TrainOptions {
    pub fn new(data_file: impl Into<PathBuf>, label: &str, name: &str) -> Self {
        TrainOptions {
            data_file: data_file.into(),
            label: label.to_string(),
            positive: None,
            id: None,
            drop: Vec::new(),
            categorical: Vec::new(),
            numeric: Vec::new(),
            transforms: Vec::new(),
            l2: None,
            holdout: 0.2,
            split_by: None,
            purge_days: None,
            folds: 5,
            seed: 0,
            name: name.to_string(),
            solver: SolverKind::Fast,
            tier_shares: (0.1, 0.2),
            kind: KindChoice::Auto,
            interactions: 10,
            smoothing: None,
            max_bins: 64,
            usage: None,
            usage_weights: Vec::new(),
            health_bands: crate::model::health::DEFAULT_BANDS,
        }
    }

    /// Columns the reader need not keep.
    pub fn skipped_columns(&self) -> HashSet<String> {
        self.id.iter().chain(&self.drop).cloned().collect()
    }
}

/// What training did, beyond the model file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainReport {
    pub rows: u64,
    pub train_rows: u64,
    pub holdout_rows: u64,
    pub time_split: Option<crate::model::file::TimeSplit>,
    pub numeric_features: usize,
    pub categorical_features: usize,
    pub design_columns: usize,
    /// Cells that were missing (or, in a column declared --numeric, not a number) per feature.
    pub imputed_cells: Vec<FeatureCount>,
    /// Numeric features with one value only (kept, with no effect on scores).
    pub constant_features: Vec<String>,
    /// The kind written, how it was chosen, and each kind's cross-validated scores.
    pub kind: crate::model::file::ModelKind,
    pub kind_chosen_by: String,
    pub kinds_tried: Vec<crate::model::file::KindScore>,
    /// Additive: bins per numeric shape, the pairs kept, and notes on features with fewer bins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additive: Option<AdditiveReport>,
    /// Usage health: the measures with their directions, or why the model has none.
    pub health: HealthReport,
    pub seconds: Timings,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthReport {
    /// (measure, direction, staying AUC, weight)
    pub measures: Vec<(String, i8, f64, f64)>,
    pub chosen_by: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AdditiveReport {
    pub smoothing: f64,
    pub smoothing_chosen_by: String,
    /// Bins per numeric feature (value bins, besides the missing bin).
    pub bins: Vec<(String, usize)>,
    pub pairs: Vec<[String; 2]>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    /// Fitting the encodings and building the design matrices.
    pub encoding: f64,
    pub cross_validation: f64,
    pub holdout: f64,
    /// The additive kind: its cross-validation, holdout and final fits together.
    pub additive: f64,
    /// The final fit on every row (the solver alone).
    pub final_fit: f64,
    /// Everything after reading: encoding, cross-validation, holdout, final fit.
    pub total: f64,
}

pub struct TrainOutcome {
    pub model: ModelFile,
    pub report: TrainReport,
}
