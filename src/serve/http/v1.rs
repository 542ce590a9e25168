//! churn.v1 as JSON: `POST /v1/score`, `POST /v1/score:batch`, `GET /v1/models[/{name}]`. The
//! answer to a row is `churn explain --json`'s, plus the customer id: the same library call
//! ([`ChurnModel::explain_named`]) builds both, and [`ScoreJson`] writes both.
use super::{HttpState, Reply, json_reply, read_json};
use crate::error::{Error, FieldViolation};
use crate::model::{ChurnModel, Contribution, Explanation, FeatureValue, sigmoid};
use crate::proto;
use crate::schema::NamedCells;
use crate::serve::convert::{self, DEFAULT_TOP_K};
use crate::serve::registry::Catalog;
use axum::extract::{Path, State, rejection::PathRejection};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;

/// One customer to score.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    /// Echoed back; not used to score.
    #[serde(default)]
    pub customer_id: String,
    /// Feature name -> number, text or null. A feature left out (or null) is imputed and listed
    /// in `imputed_features`, unless the server runs with --strict.
    #[schema(schema_with = feature_cells)]
    pub features: NamedCells,
    /// How many reasons to return; absent or 0: 3.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub top_k: Option<u32>,
    /// "name" or "name@version"; empty or absent: the server's default model. In a batch, a
    /// row's model overrides the batch's.
    #[serde(default)]
    pub model: String,
}

/// Many customers in one call, all or nothing: one bad row fails the call, naming every bad
/// field as `rows[i].features.<name>`, and every row is scored by the same model version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBatchBody {
    /// At most the server's --max-batch rows.
    pub rows: Vec<ScoreBody>,
    /// The model for rows that name none.
    #[serde(default)]
    pub model: String,
    /// Reasons per row for rows that ask for none; absent or 0: 3.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub top_k: Option<u32>,
}

/// The OpenAPI schema of a features object: name -> number, text or null.
fn feature_cells() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{
        AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type,
    };
    let cell = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Null));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
            cell.build(),
        )))))
        .description(Some(
            "Feature name -> number, text or null (the model's features: GET /v1/models/{name})",
        ))
        .build()
}

/// A number for a numeric feature, the level for a categorical one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CellJson {
    Number(f64),
    Level(String),
}

/// One feature's part of the score.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContributionJson {
    pub feature: String,
    /// The value used: the caller's, or the imputed one.
    pub value: CellJson,
    /// Signed log-odds relative to the baseline; positive raises the risk.
    pub contribution: f64,
    /// The caller did not give this feature.
    pub imputed: bool,
}

/// An additive model's term: a main effect (one feature) or a pair (two).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TermJson {
    pub features: Vec<String>,
    pub value: f64,
}

/// A usage measure where the customer stands: higher percentiles are healthier.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReasonJson {
    pub measure: String,
    pub value: f64,
    pub percentile: f64,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TierJson {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthBandJson {
    Red,
    Yellow,
    Green,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionJson {
    Rescue,
    Renew,
    Onboard,
    Grow,
}

/// One customer's score and its explanation: the fields of `churn explain --json`, plus the
/// customer id on the HTTP door.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoreJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The model that scored the row, as name@version.
    pub model: String,
    /// linear or additive.
    pub kind: String,
    pub churn_probability: f64,
    pub risk_tier: TierJson,
    pub logit: f64,
    /// The logit of the training-average customer: the reasons' reference point.
    pub baseline_logit: f64,
    pub baseline_probability: f64,
    /// Every feature, in the model's order; they sum with baseline_logit to logit.
    pub contributions: Vec<ContributionJson>,
    /// The largest |contributions| among the features given, largest first.
    pub reasons: Vec<ContributionJson>,
    pub imputed_features: Vec<String>,
    pub unseen_levels: Vec<String>,
    /// Additive models: every term, centred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms: Option<Vec<TermJson>>,
    /// Usage health 0-100 (models with usage measures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_band: Option<HealthBandJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionJson>,
    /// The usage measures where the customer stands lowest, lowest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_reasons: Option<Vec<HealthReasonJson>>,
}

fn contribution(c: &Contribution) -> ContributionJson {
    ContributionJson {
        feature: c.feature.clone(),
        value: match &c.value {
            FeatureValue::Number(x) => CellJson::Number(*x),
            FeatureValue::Level(s) => CellJson::Level(s.clone()),
        },
        contribution: c.contribution,
        imputed: c.imputed,
    }
}

impl ScoreJson {
    /// The JSON of an explanation by `model`, with `top_k` reasons and health reasons.
    pub fn new(
        model: &ChurnModel,
        e: &Explanation,
        top_k: usize,
        customer_id: Option<String>,
    ) -> ScoreJson {
        use crate::model::RiskTier;
        use crate::model::health::{Action, HealthBand};
        let tier = match e.tier {
            RiskTier::Low => TierJson::Low,
            RiskTier::Medium => TierJson::Medium,
            RiskTier::High => TierJson::High,
        };
        ScoreJson {
            customer_id,
            model: model.id().to_string(),
            kind: model.kind().name().to_string(),
            churn_probability: e.probability,
            risk_tier: tier,
            logit: e.logit,
            baseline_logit: e.baseline_logit,
            baseline_probability: sigmoid(e.baseline_logit),
            contributions: e.contributions.iter().map(contribution).collect(),
            reasons: e.reasons(top_k).into_iter().map(contribution).collect(),
            imputed_features: e.imputed.clone(),
            unseen_levels: e.unseen.clone(),
            terms: (!e.terms.is_empty()).then(|| {
                e.terms
                    .iter()
                    .map(|t| TermJson {
                        features: t.features.clone(),
                        value: t.value,
                    })
                    .collect()
            }),
            health_score: e.health.map(|h| h.score),
            health_band: e.health.map(|h| match h.band {
                HealthBand::Red => HealthBandJson::Red,
                HealthBand::Yellow => HealthBandJson::Yellow,
                HealthBand::Green => HealthBandJson::Green,
            }),
            action: e.health.map(|h| match h.action {
                Action::Rescue => ActionJson::Rescue,
                Action::Renew => ActionJson::Renew,
                Action::Onboard => ActionJson::Onboard,
                Action::Grow => ActionJson::Grow,
            }),
            health_reasons: e.health.map(|_| {
                e.health_reasons
                    .iter()
                    .take(top_k)
                    .map(|r| HealthReasonJson {
                        measure: r.measure.clone(),
                        value: r.value,
                        percentile: r.percentile,
                    })
                    .collect()
            }),
        }
    }
}

/// Scores one row with a model of `catalog`. Violations are named by their JSON path:
/// `features.<name>`, after `prefix` (`rows[i].` in a batch).
fn score_row(
    st: &HttpState,
    catalog: &Catalog,
    row: ScoreBody,
    model_default: &str,
    top_k_default: Option<u32>,
    prefix: &str,
) -> Result<ScoreJson, Error> {
    let spec = if row.model.is_empty() {
        model_default
    } else {
        &row.model
    };
    let model = catalog.resolve(spec)?;
    let top_k = match row.top_k.or(top_k_default) {
        None | Some(0) => DEFAULT_TOP_K,
        Some(k) => k as usize,
    };
    let (named, mut bad) = row.features.values();
    let explained = model.explain_named(named, st.strict);
    let e = match explained {
        Ok(e) if bad.is_empty() => e,
        Ok(_) => return Err(Error::InvalidFeatures(named_fields(prefix, bad))),
        Err(mut v) => {
            bad.append(&mut v);
            return Err(Error::InvalidFeatures(named_fields(prefix, bad)));
        }
    };
    crate::serve::metrics::scored(e.tier);
    Ok(ScoreJson::new(model, &e, top_k, Some(row.customer_id)))
}

fn named_fields(prefix: &str, mut v: Vec<FieldViolation>) -> Vec<FieldViolation> {
    for f in &mut v {
        f.field = format!("{prefix}features.{}", f.field);
    }
    v
}

/// Score one customer.
#[utoipa::path(
    post, path = "/v1/score", tag = "churn.v1",
    request_body = ScoreBody,
    responses(
        (status = 200, description = "The score and its explanation", body = ScoreJson),
        super::openapi::CallErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn score(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply {
    let start = Instant::now();
    let res = async {
        let row: ScoreBody = read_json(&headers, body, st.max_body).await?;
        let catalog = st.registry.catalog();
        score_row(&st, &catalog, row, "", None, "").map(|s| json_reply(&s))
    }
    .await;
    super::finish("Score", start, res)
}

/// Score many customers, all or nothing.
#[utoipa::path(
    post, path = "/v1/score:batch", tag = "churn.v1",
    request_body = ScoreBatchBody,
    responses(
        (status = 200, description = "One score per row, in order", body = ScoreBatchJson),
        super::openapi::CallErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn score_batch(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply {
    let start = Instant::now();
    let res = async {
        let b: ScoreBatchBody = read_json(&headers, body, st.max_body).await?;
        if b.rows.len() > st.max_batch {
            return Err(Error::TooManyRows {
                field: "rows".into(),
                rows: b.rows.len(),
                limit: st.max_batch,
                hint: " per call (--max-batch)",
            });
        }
        // One catalog for the whole batch: every row is scored by the same model version.
        let catalog = st.registry.catalog();
        let mut rows = Vec::with_capacity(b.rows.len());
        let mut bad = Vec::new();
        let mut other: Option<Error> = None;
        for (i, r) in b.rows.into_iter().enumerate() {
            match score_row(&st, &catalog, r, &b.model, b.top_k, &format!("rows[{i}].")) {
                Ok(s) => rows.push(s),
                Err(Error::InvalidFeatures(mut v)) => bad.append(&mut v),
                Err(e) => {
                    other.get_or_insert(e);
                }
            }
        }
        match (other, bad.is_empty()) {
            (Some(e), _) => Err(e),
            (None, false) => Err(Error::InvalidFeatures(bad)),
            (None, true) => Ok(json_reply(&ScoreBatchJson { rows })),
        }
    }
    .await;
    super::finish("ScoreBatch", start, res)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreBatchJson {
    pub rows: Vec<ScoreJson>,
}

/// One input feature of a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureInfoJson {
    pub name: String,
    /// numeric or categorical.
    pub kind: String,
    /// Numeric: none, log1p or asinh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Numeric: the value used when the feature is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impute: Option<f64>,
    /// Linear numeric: the weight per standard deviation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Categorical: the levels seen in training.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
    /// Categorical: the level an unseen value is scored as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_level: Option<String>,
    /// Additive: the number of bins of the feature's shape.
    pub bins: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TiersJson {
    /// Probability from which a customer is MEDIUM.
    pub medium: f64,
    /// Probability from which a customer is HIGH.
    pub high: f64,
}

/// A served model: what GetModel returns over gRPC.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelJson {
    /// name@version.
    pub id: String,
    pub name: String,
    pub version: u64,
    pub created_at: String,
    /// linear or additive.
    pub kind: String,
    pub features: Vec<FeatureInfoJson>,
    pub tiers: TiersJson,
    pub baseline_probability: f64,
    /// auc, pr_auc, log_loss, brier, top_decile_lift on the training holdout.
    pub holdout_metrics: BTreeMap<String, f64>,
    pub sha256: String,
    /// Additive pairs, as "a x b".
    pub pairs: Vec<String>,
    /// The usage measures of health, with their direction.
    pub usage_measures: Vec<String>,
    /// Health scores from which a customer is YELLOW, then GREEN.
    pub health_bands: Vec<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelListJson {
    pub models: Vec<ModelJson>,
}

/// The model's description, from the same `model_info` as the gRPC door.
fn model_json(m: &ChurnModel) -> ModelJson {
    let p = convert::model_info(m);
    let tiers = p.tiers.unwrap_or_default();
    ModelJson {
        id: p.id,
        name: p.name,
        version: p.version,
        created_at: p.created_at,
        kind: p.kind,
        features: p.features.into_iter().map(feature_json).collect(),
        tiers: TiersJson {
            medium: tiers.medium,
            high: tiers.high,
        },
        baseline_probability: p.baseline_probability,
        holdout_metrics: p.holdout_metrics.into_iter().collect(),
        sha256: p.sha256,
        pairs: p.pairs,
        usage_measures: p.usage_measures,
        health_bands: p.health_bands,
    }
}

fn feature_json(f: proto::FeatureInfo) -> FeatureInfoJson {
    let numeric = f.kind == "numeric";
    FeatureInfoJson {
        transform: numeric.then_some(f.transform),
        impute: numeric.then_some(f.impute),
        weight: (numeric && f.weight != 0.0).then_some(f.weight),
        levels: (!numeric).then_some(f.levels),
        unseen_level: (!numeric).then_some(f.unseen_level),
        bins: f.bins,
        name: f.name,
        kind: f.kind,
    }
}

/// The models being served.
#[utoipa::path(
    get, path = "/v1/models", tag = "churn.v1",
    responses(
        (status = 200, description = "Every served model (the serving version of each name)", body = ModelListJson),
        super::openapi::GateErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn list_models(State(st): State<Arc<HttpState>>) -> Reply {
    let start = Instant::now();
    let catalog = st.registry.catalog();
    let list = ModelListJson {
        models: catalog.serving().map(|m| model_json(m)).collect(),
    };
    super::finish("ListModels", start, Ok(json_reply(&list)))
}

/// One model: "name" (its serving version) or "name@version".
#[utoipa::path(
    get, path = "/v1/models/{name}", tag = "churn.v1",
    params(("name" = String, Path, description = "name or name@version")),
    responses(
        (status = 200, description = "The model", body = ModelJson),
        super::openapi::LookupErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn get_model(
    State(st): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
) -> Reply {
    let start = Instant::now();
    let res = super::path(name).and_then(|name| {
        let catalog = st.registry.catalog();
        catalog.resolve(&name).map(|m| json_reply(&model_json(m)))
    });
    super::finish("GetModel", start, res)
}
