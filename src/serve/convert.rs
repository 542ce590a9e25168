//! Translation between churn.v1 protobuf messages and library types; nothing else.
use crate::error::{Error, FieldViolation};
use crate::model::file::FeatureEntry;
use crate::model::{ChurnModel, RiskTier, RowScratch, sigmoid};
use crate::proto;
use crate::schema::{Note, Resolved, Value};
use std::cell::RefCell;

/// Reasons returned when a request asks for none (top_k = 0).
pub const DEFAULT_TOP_K: usize = 3;

thread_local! {
    static SCRATCH: RefCell<(RowScratch, Vec<usize>)> = RefCell::new(Default::default());
}

fn value(v: &proto::FeatureValue) -> Value<'_> {
    match &v.kind {
        Some(proto::feature_value::Kind::Number(x)) => Value::Number(*x),
        Some(proto::feature_value::Kind::Text(s)) => Value::Text(s),
        None => Value::Missing,
    }
}

pub fn tier(t: RiskTier) -> proto::RiskTier {
    match t {
        RiskTier::Low => proto::RiskTier::Low,
        RiskTier::Medium => proto::RiskTier::Medium,
        RiskTier::High => proto::RiskTier::High,
    }
}

/// Scores one request, with the tier for the metrics. Violations name the field as
/// `features.<name>`, prefixed in a batch by `rows[i].` (built only when there is a violation).
pub fn score(
    model: &ChurnModel,
    req: &proto::ScoreRequest,
    top_k_default: usize,
    strict: bool,
    batch_row: Option<usize>,
) -> Result<(proto::ScoreResponse, RiskTier), Error> {
    let (row, unknown) = model
        .schema()
        .row_from_named(req.features.iter().map(|(k, v)| (k.as_str(), value(v))));
    SCRATCH.with(|cell| {
        let (s, top) = &mut *cell.borrow_mut();
        let scored = model.score_row(&row, strict, s);
        let score = match scored {
            Some(score) if unknown.is_empty() => score,
            _ => {
                let mut all: Vec<FieldViolation> = model.named_violations(&s.violations);
                all.extend(model.unknown_features(&unknown));
                let prefix = batch_row.map(|i| format!("rows[{i}].")).unwrap_or_default();
                for v in &mut all {
                    v.field = format!("{prefix}features.{}", v.field);
                }
                return Err(Error::InvalidFeatures(all));
            }
        };
        let k = if req.top_k == 0 {
            top_k_default
        } else {
            req.top_k as usize
        };
        s.reasons_into(k, top);
        let features = model.schema().features();
        let reasons = top
            .iter()
            .map(|&i| proto::Reason {
                feature: features[i].name.clone(),
                value: Some(proto_value(model, i, s.resolved[i])),
                contribution: s.contributions[i],
            })
            .collect();
        let p = score.probability;
        let named = |want: Note| -> Vec<String> {
            s.notes
                .iter()
                .enumerate()
                .filter(|(_, n)| **n == want)
                .map(|(i, _)| features[i].name.clone())
                .collect()
        };
        let response = proto::ScoreResponse {
            customer_id: req.customer_id.clone(),
            churn_probability: p,
            risk_tier: tier(score.tier) as i32,
            reasons,
            model: model.id().to_string(),
            baseline_probability: sigmoid(model.baseline_logit()),
            imputed_features: named(Note::Imputed),
            unseen_levels: named(Note::Unseen),
            error: None,
            health_score: score.health.map(|h| h.score),
            health_band: score
                .health
                .map_or(proto::HealthBand::Unspecified, |h| health_band(h.band))
                as i32,
            action: score
                .health
                .map_or(proto::Action::Unspecified, |h| action(h.action))
                as i32,
            health_reasons: model
                .health_reasons(s, k)
                .into_iter()
                .map(|r| proto::HealthReason {
                    measure: r.measure,
                    value: r.value,
                    percentile: r.percentile,
                })
                .collect(),
        };
        Ok((response, score.tier))
    })
}

pub fn health_band(b: crate::model::health::HealthBand) -> proto::HealthBand {
    use crate::model::health::HealthBand as B;
    match b {
        B::Red => proto::HealthBand::Red,
        B::Yellow => proto::HealthBand::Yellow,
        B::Green => proto::HealthBand::Green,
    }
}

pub fn action(a: crate::model::health::Action) -> proto::Action {
    use crate::model::health::Action as A;
    match a {
        A::Rescue => proto::Action::Rescue,
        A::Renew => proto::Action::Renew,
        A::Onboard => proto::Action::Onboard,
        A::Grow => proto::Action::Grow,
    }
}

fn proto_value(model: &ChurnModel, feature: usize, r: Resolved) -> proto::FeatureValue {
    use proto::feature_value::Kind;
    let kind = match model.feature_value(feature, r) {
        crate::model::FeatureValue::Number(x) => Kind::Number(x),
        crate::model::FeatureValue::Level(s) => Kind::Text(s),
    };
    proto::FeatureValue { kind: Some(kind) }
}

/// A streamed row that could not be scored.
pub fn row_error(customer_id: &str, e: &Error) -> proto::ScoreResponse {
    let violations = match e {
        Error::InvalidFeatures(v) => v
            .iter()
            .map(|f| proto::FieldViolation {
                field: f.field.clone(),
                description: f.description.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    proto::ScoreResponse {
        customer_id: customer_id.to_string(),
        error: Some(proto::RowError {
            code: super::status::code_of(e) as i32,
            message: e.to_string(),
            violations,
        }),
        ..Default::default()
    }
}

pub fn model_info(model: &ChurnModel) -> proto::ModelInfo {
    let f = model.file();
    let features = f
        .features
        .iter()
        .map(|e| match e {
            FeatureEntry::Numeric(n) => proto::FeatureInfo {
                name: n.name.clone(),
                kind: "numeric".into(),
                transform: n.transform.name().into(),
                impute: n.impute,
                weight: n.weight.unwrap_or(0.0),
                bins: n.shape.as_ref().map_or(0, |s| s.values.len() as u32),
                ..Default::default()
            },
            FeatureEntry::Categorical(c) => proto::FeatureInfo {
                name: c.name.clone(),
                kind: "categorical".into(),
                levels: c.levels.iter().map(|l| l.value.clone()).collect(),
                unseen_level: c.unseen_level.clone(),
                bins: if f.kind == crate::model::file::ModelKind::Additive {
                    c.levels.len() as u32
                } else {
                    0
                },
                ..Default::default()
            },
        })
        .collect();
    let holdout_metrics = f
        .metrics
        .holdout
        .as_ref()
        .map(|h| {
            [
                ("auc", h.auc),
                ("pr_auc", h.pr_auc),
                ("log_loss", h.log_loss),
                ("brier", h.brier),
                ("top_decile_lift", h.top_decile_lift),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .unwrap_or_default();
    proto::ModelInfo {
        id: model.id().to_string(),
        name: f.name.clone(),
        version: f.version,
        created_at: f.created_at.clone(),
        features,
        tiers: Some(proto::Tiers {
            medium: f.tiers.medium,
            high: f.tiers.high,
        }),
        baseline_probability: sigmoid(f.baseline_logit),
        holdout_metrics,
        sha256: model.sha256().to_string(),
        kind: f.kind.name().to_string(),
        pairs: f
            .pairs
            .iter()
            .map(|p| format!("{} x {}", p.features[0], p.features[1]))
            .collect(),
        usage_measures: f
            .health
            .iter()
            .flat_map(|h| &h.measures)
            .map(|m| format!("{} ({:+})", m.feature, m.direction))
            .collect(),
        health_bands: f.health.iter().flat_map(|h| h.bands).collect(),
    }
}
