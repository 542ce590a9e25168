//! ModelInfer and ModelMetadata for one churn model: decode the input tensors, score every row
//! with the same library call as churn.v1 and `churn score`, and encode the requested outputs.
use super::tensor::{self, OutputData};
use crate::error::{Error, FieldViolation};
use crate::inference::model_metadata_response::TensorMetadata;
use crate::inference::{ModelInferRequest, ModelInferResponse, ModelMetadataResponse};
use crate::model::{ChurnModel, MAX_LISTED, RiskTier, RowScratch};
use crate::schema::FeatureKind;

/// The model's outputs, in the order they are listed and returned when a request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// FP64 [N]: P(churn).
    Probability,
    /// BYTES [N]: LOW, MEDIUM or HIGH.
    Tier,
    /// FP64 [N, F]: each feature's signed contribution in log-odds, in schema order.
    Contributions,
    /// FP64 [N]: usage health 0-100 (models with usage measures only).
    HealthScore,
    /// BYTES [N]: RED, YELLOW or GREEN.
    HealthBand,
    /// BYTES [N]: RESCUE, RENEW, ONBOARD or GROW.
    Action,
}

const OUTPUTS: [(&str, Output); 6] = [
    ("churn_probability", Output::Probability),
    ("risk_tier", Output::Tier),
    ("contributions", Output::Contributions),
    ("health_score", Output::HealthScore),
    ("health_band", Output::HealthBand),
    ("action", Output::Action),
];

/// The outputs `model` has: the health ones only when it has usage measures.
fn outputs_of(model: &ChurnModel) -> impl Iterator<Item = &'static (&'static str, Output)> {
    let health = model.health().is_some();
    OUTPUTS.iter().filter(move |(_, o)| {
        health || !matches!(o, Output::HealthScore | Output::HealthBand | Output::Action)
    })
}

/// Where a request's bad values are listed.
fn invalid(v: Vec<FieldViolation>) -> Error {
    Error::InvalidTensors(v)
}

fn output_names(model: &ChurnModel) -> String {
    outputs_of(model)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn requested_outputs(model: &ChurnModel, req: &ModelInferRequest) -> Result<Vec<Output>, Error> {
    if req.outputs.is_empty() {
        return Ok(outputs_of(model).map(|(_, o)| *o).collect());
    }
    let mut out = Vec::with_capacity(req.outputs.len());
    let mut bad = Vec::new();
    for o in &req.outputs {
        match outputs_of(model).find(|(n, _)| *n == o.name) {
            Some((_, which)) if out.contains(which) => bad.push(FieldViolation {
                field: o.name.clone(),
                description: "output requested more than once".into(),
            }),
            Some((_, which)) => out.push(*which),
            None => bad.push(FieldViolation {
                field: o.name.clone(),
                description: format!(
                    "unknown output: the model's outputs are {}",
                    output_names(model)
                ),
            }),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(invalid(bad))
    }
}

/// Scores a ModelInferRequest with `model`. All or nothing: a bad value in any row fails the call,
/// naming the tensor and row of each (the first [`MAX_LISTED`], then a count).
pub fn model_infer(
    model: &ChurnModel,
    req: &ModelInferRequest,
    strict: bool,
    max_rows: usize,
) -> Result<ModelInferResponse, Error> {
    let outputs = requested_outputs(model, req)?;
    let schema = model.schema();
    let batch = tensor::decode(req, schema).map_err(invalid)?;
    let n = batch.rows();
    if n > max_rows {
        return Err(Error::TooManyRows {
            field: req.inputs[0].name.clone(),
            rows: n,
            limit: max_rows,
            hint: " per call (--max-batch)",
        });
    }
    let f = schema.len();
    let with_contributions = outputs.contains(&Output::Contributions);
    let mut probabilities = Vec::with_capacity(n);
    let mut tiers: Vec<RiskTier> = Vec::with_capacity(n);
    let mut health = Vec::with_capacity(if model.health().is_some() { n } else { 0 });
    let mut contributions = Vec::with_capacity(if with_contributions { n * f } else { 0 });
    let mut row = Vec::with_capacity(f);
    let mut s = RowScratch::default();
    let (mut bad, mut unlisted) = (Vec::new(), 0usize);
    for i in 0..n {
        batch.fill_row(i, &mut row);
        match model.score_row(&row, strict, &mut s) {
            Some(score) if bad.is_empty() => {
                probabilities.push(score.probability);
                tiers.push(score.tier);
                if let Some(h) = score.health {
                    health.push(h);
                }
                if with_contributions {
                    contributions.extend_from_slice(&s.contributions);
                }
            }
            Some(_) => {}
            None => {
                for v in s.violations.drain(..) {
                    if bad.len() == MAX_LISTED {
                        unlisted += 1;
                        continue;
                    }
                    let (tensor, at) = batch.locate(schema, v.feature, i);
                    bad.push(FieldViolation {
                        field: tensor,
                        description: format!("{at}: {}", v.description),
                    });
                }
            }
        }
    }
    if !bad.is_empty() {
        if unlisted > 0 {
            bad.push(FieldViolation {
                field: "inputs".into(),
                description: format!("{unlisted} more bad values not listed"),
            });
        }
        return Err(invalid(bad));
    }
    super::super::metrics::scored_tiers(&tiers);

    let mut resp = ModelInferResponse {
        model_name: model.file().name.clone(),
        model_version: model.file().version.to_string(),
        id: req.id.clone(),
        ..Default::default()
    };
    let rows = n as i64;
    for o in outputs {
        let (name, shape, data) = match o {
            Output::Probability => (
                "churn_probability",
                vec![rows],
                OutputData::Fp64(std::mem::take(&mut probabilities)),
            ),
            Output::Tier => (
                "risk_tier",
                vec![rows],
                OutputData::Bytes(tiers.iter().map(|t| t.as_str()).collect()),
            ),
            Output::Contributions => (
                "contributions",
                vec![rows, f as i64],
                OutputData::Fp64(std::mem::take(&mut contributions)),
            ),
            Output::HealthScore => (
                "health_score",
                vec![rows],
                OutputData::Fp64(health.iter().map(|h| h.score).collect()),
            ),
            Output::HealthBand => (
                "health_band",
                vec![rows],
                OutputData::Bytes(health.iter().map(|h| h.band.as_str()).collect()),
            ),
            Output::Action => (
                "action",
                vec![rows],
                OutputData::Bytes(health.iter().map(|h| h.action.as_str()).collect()),
            ),
        };
        let (tensor, raw) = tensor::encode(name, shape, data, batch.raw);
        resp.outputs.push(tensor);
        resp.raw_output_contents.extend(raw);
    }
    Ok(resp)
}

/// The model's inputs (one per feature) and outputs, as ModelMetadata lists them.
pub fn model_metadata(model: &ChurnModel, versions: Vec<String>) -> ModelMetadataResponse {
    let tensor = |name: &str, datatype: &str, shape: Vec<i64>| TensorMetadata {
        name: name.to_string(),
        datatype: datatype.to_string(),
        shape,
        parameters: Default::default(),
    };
    let inputs = model
        .schema()
        .features()
        .iter()
        .map(|f| {
            let dt = match f.kind {
                FeatureKind::Numeric(_) => "FP64",
                FeatureKind::Categorical(_) => "BYTES",
            };
            tensor(&f.name, dt, vec![-1])
        })
        .collect();
    let f = model.schema().len() as i64;
    let outputs = outputs_of(model)
        .map(|(name, o)| match o {
            Output::Probability | Output::HealthScore => tensor(name, "FP64", vec![-1]),
            Output::Tier | Output::HealthBand | Output::Action => tensor(name, "BYTES", vec![-1]),
            Output::Contributions => tensor(name, "FP64", vec![-1, f]),
        })
        .collect();
    ModelMetadataResponse {
        name: model.file().name.clone(),
        versions,
        platform: "churn".into(),
        inputs,
        outputs,
        parameters: Default::default(),
    }
}
