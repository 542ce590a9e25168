//! The Open Inference Protocol's REST binding (`/v2/...`), with Triton's binary tensor extension.
//! A REST request becomes the gRPC ModelInferRequest it stands for (JSON data as typed contents,
//! binary data as raw contents) and is scored by the same [`model_infer`] as the gRPC door; the
//! response's tensors are written as JSON data or appended as binary, as each output asks.
use super::{HttpState, Reply, finish, json_reply, json_reply_status, parse_json, path, read_body};
use crate::error::{Error, FieldViolation};
use crate::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use crate::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};
use crate::serve::v2::tensor::DataType;
use crate::serve::v2::{model_infer, model_metadata, spec};
use axum::extract::{Path, State, rejection::PathRejection};
use axum::response::IntoResponse;
use http::HeaderMap;
use prost::bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use utoipa::ToSchema;

/// The binary extension's header: the length of the JSON part at the start of the body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// A tensor's `data`, flattened row-major whether it was sent flat or nested.
#[derive(Debug, Default)]
pub struct FlatData(Vec<Element>);

#[derive(Debug, Clone, PartialEq)]
enum Element {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    /// An object where an element was expected.
    Object,
}

struct Flatten<'a>(&'a mut Vec<Element>);

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("tensor data: an array (flat or nested) of numbers, strings, booleans or null")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(Element::Null);
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.push(Element::Null);
        Ok(())
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.0.push(Element::Bool(b));
        Ok(())
    }
    fn visit_i64<E>(self, x: i64) -> Result<(), E> {
        self.0.push(Element::Int(x));
        Ok(())
    }
    fn visit_u64<E>(self, x: u64) -> Result<(), E> {
        self.0.push(Element::UInt(x));
        Ok(())
    }
    fn visit_f64<E>(self, x: f64) -> Result<(), E> {
        self.0.push(Element::Float(x));
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.0.push(Element::Text(s.to_string()));
        Ok(())
    }
    fn visit_string<E>(self, s: String) -> Result<(), E> {
        self.0.push(Element::Text(s));
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        self.0.push(Element::Object);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        d.deserialize_any(Flatten(&mut out))?;
        Ok(FlatData(out))
    }
}

/// Free-form parameters; the ones read here are `binary_data_size` (an input), `binary_data`
/// (an output) and `binary_data_output` (the request).
type Parameters = serde_json::Map<String, serde_json::Value>;

/// One input tensor: `data` as JSON, or `parameters.binary_data_size` bytes of the binary part.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InferInputJson {
    /// A feature's name (one tensor per feature), or one [N, F] tensor for an all-numeric model.
    pub name: String,
    pub shape: Vec<i64>,
    /// FP64, FP32, INT32 or INT64 for numeric features; BYTES for categorical ones.
    pub datatype: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Parameters>,
    /// Row-major elements, flat or nested: numbers (null for missing) or strings ("" for missing).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<FlatData>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InferOutputRequestJson {
    /// churn_probability, risk_tier, contributions, health_score, health_band or action.
    pub name: String,
    /// `binary_data: true` returns this output in the binary part.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InferRequestJson {
    #[serde(default)]
    pub id: Option<String>,
    /// `binary_data_output: true` returns every output in the binary part.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Parameters>,
    pub inputs: Vec<InferInputJson>,
    /// The outputs wanted; absent: all of the model's.
    #[serde(default)]
    pub outputs: Option<Vec<InferOutputRequestJson>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OutputDataJson {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BinarySizeJson {
    pub binary_data_size: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InferOutputJson {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    /// Binary outputs: their size in the binary part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BinarySizeJson>,
    /// JSON outputs: row-major elements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<OutputDataJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InferResponseJson {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub outputs: Vec<InferOutputJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TensorMetadataJson {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMetadataJson {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadataJson>,
    pub outputs: Vec<TensorMetadataJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadataJson {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LiveJson {
    pub live: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyJson {
    pub ready: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelReadyJson {
    pub name: String,
    pub version: String,
    pub ready: bool,
}

fn flag(p: &Option<Parameters>, key: &str) -> bool {
    p.as_ref()
        .and_then(|p| p.get(key))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

fn violation(field: String, description: impl Into<String>) -> FieldViolation {
    FieldViolation {
        field,
        description: description.into(),
    }
}

/// What an element is, for messages.
fn what(e: &Element) -> &'static str {
    match e {
        Element::Null => "null",
        Element::Bool(_) => "a boolean",
        Element::Int(_) | Element::UInt(_) | Element::Float(_) => "a number",
        Element::Text(_) => "a string",
        Element::Object => "an object",
    }
}

/// A JSON element as a number of a float tensor: null is missing (NaN).
fn float(e: &Element) -> Option<f64> {
    match *e {
        Element::Null => Some(f64::NAN),
        Element::Int(x) => Some(x as f64),
        Element::UInt(x) => Some(x as f64),
        Element::Float(x) => Some(x),
        _ => None,
    }
}

/// A JSON element as an integer of an integer tensor (a whole float such as 3.0 counts).
fn integer(e: &Element) -> Option<i128> {
    match *e {
        Element::Int(x) => Some(x as i128),
        Element::UInt(x) => Some(x as i128),
        Element::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Some(x as i128),
        _ => None,
    }
}

/// Converts one input's JSON elements, through `get`, into a vector; each element that does not
/// fit is a violation naming it (`inputs[k].data[j]`).
fn convert<T>(
    k: usize,
    data: &[Element],
    expected: &str,
    get: impl Fn(&Element) -> Option<T>,
    bad: &mut Vec<FieldViolation>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    for (j, e) in data.iter().enumerate() {
        match get(e) {
            Some(x) => out.push(x),
            None if bad.len() < crate::model::MAX_LISTED => bad.push(violation(
                format!("inputs[{k}].data[{j}]"),
                format!("expected {expected}, got {}", what(e)),
            )),
            None => {}
        }
    }
    out
}

fn in_range<T: TryFrom<i128>>(e: &Element) -> Option<T> {
    integer(e).and_then(|x| T::try_from(x).ok())
}

fn text(e: &Element) -> Option<Bytes> {
    match e {
        Element::Null => Some(Bytes::new()),
        Element::Text(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        _ => None,
    }
}

/// One input's JSON data as typed contents. A datatype the protocol does not name is left
/// empty: the tensor decoder refuses it by name.
fn typed(
    k: usize,
    datatype: &str,
    data: &[Element],
    bad: &mut Vec<FieldViolation>,
) -> InferTensorContents {
    let mut c = InferTensorContents::default();
    match DataType::parse(datatype) {
        Some(DataType::Fp64) => c.fp64_contents = convert(k, data, "a number or null", float, bad),
        Some(DataType::Fp32) | Some(DataType::Fp16) | Some(DataType::Bf16) => {
            c.fp32_contents = convert(
                k,
                data,
                "a number or null",
                |e| float(e).map(|x| x as f32),
                bad,
            )
        }
        Some(DataType::Int8) | Some(DataType::Int16) | Some(DataType::Int32) => {
            c.int_contents = convert(k, data, "an integer", in_range::<i32>, bad)
        }
        Some(DataType::Int64) => {
            c.int64_contents = convert(k, data, "an integer", in_range::<i64>, bad)
        }
        Some(DataType::Uint8) | Some(DataType::Uint16) | Some(DataType::Uint32) => {
            c.uint_contents = convert(k, data, "an integer of 0 or more", in_range::<u32>, bad)
        }
        Some(DataType::Uint64) => {
            c.uint64_contents = convert(k, data, "an integer of 0 or more", in_range::<u64>, bad)
        }
        Some(DataType::Bool) => {
            c.bool_contents = convert(
                k,
                data,
                "a boolean",
                |e| match e {
                    Element::Bool(b) => Some(*b),
                    _ => None,
                },
                bad,
            )
        }
        Some(DataType::Bytes) => {
            c.bytes_contents = convert(k, data, "a string (\"\" for missing)", text, bad)
        }
        None => {}
    }
    c
}

/// One input's JSON data in raw form (little-endian; BYTES as 4-byte length and bytes), for a
/// request whose other inputs are binary: the protocol's raw contents are all or none.
fn raw(k: usize, datatype: &str, data: &[Element], bad: &mut Vec<FieldViolation>) -> Bytes {
    let c = typed(k, datatype, data, bad);
    let mut b = Vec::new();
    match DataType::parse(datatype) {
        Some(DataType::Fp64) => c
            .fp64_contents
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
        Some(DataType::Fp32) => c
            .fp32_contents
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
        Some(DataType::Int32) => c
            .int_contents
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
        Some(DataType::Int64) => c
            .int64_contents
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
        Some(DataType::Bytes) => c.bytes_contents.iter().for_each(|s| {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s);
        }),
        // Other types are not model inputs; the decoder names the tensor and the types it takes.
        _ => {}
    }
    Bytes::from(b)
}

/// The gRPC request a REST request stands for, and which outputs go in the binary part.
fn to_grpc(
    name: &str,
    version: &str,
    r: InferRequestJson,
    binary: Bytes,
) -> Result<(ModelInferRequest, BinaryOutputs), Error> {
    let mut bad = Vec::new();
    let sizes: Vec<Option<usize>> = r
        .inputs
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let size = t
                .parameters
                .as_ref()
                .and_then(|p| p.get("binary_data_size"))?;
            match size.as_u64() {
                Some(n) => Some(n as usize),
                None => {
                    bad.push(violation(
                        format!("inputs[{k}].parameters.binary_data_size"),
                        format!("expected a byte count, got {size}"),
                    ));
                    None
                }
            }
        })
        .collect();
    let any_binary = sizes.iter().any(Option::is_some);
    let total: usize = sizes.iter().flatten().sum();
    if total != binary.len() {
        bad.push(violation(
            "binary_data_size".into(),
            format!(
                "the inputs' binary_data_size add up to {total} bytes, but the binary part after the {HEADER_LENGTH} bytes of JSON has {}",
                binary.len()
            ),
        ));
    }
    let mut inputs = Vec::with_capacity(r.inputs.len());
    let mut raw_contents = Vec::new();
    let mut at = 0usize;
    for (k, (t, size)) in r.inputs.into_iter().zip(sizes).enumerate() {
        let data = t.data.unwrap_or_default().0;
        let mut tensor = InferInputTensor {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            ..Default::default()
        };
        match size {
            Some(n) => {
                if !data.is_empty() {
                    bad.push(violation(
                        format!("inputs[{k}].data"),
                        "given with binary_data_size: send the tensor as JSON data or as binary, not both",
                    ));
                }
                let end = (at + n).min(binary.len());
                raw_contents.push(binary.slice(at.min(end)..end));
                at += n;
            }
            None if any_binary => raw_contents.push(raw(k, &tensor.datatype, &data, &mut bad)),
            None => tensor.contents = Some(typed(k, &tensor.datatype, &data, &mut bad)),
        }
        inputs.push(tensor);
    }
    if !bad.is_empty() {
        return Err(Error::InvalidTensors(bad));
    }
    let all_binary = flag(&r.parameters, "binary_data_output");
    let (outputs, binary_outputs) = match r.outputs {
        None => (Vec::new(), BinaryOutputs::All(all_binary)),
        Some(list) => {
            let which = list
                .iter()
                .map(|o| all_binary || flag(&o.parameters, "binary_data"))
                .collect();
            let outputs = list
                .into_iter()
                .map(|o| InferRequestedOutputTensor {
                    name: o.name,
                    ..Default::default()
                })
                .collect();
            (outputs, BinaryOutputs::Each(which))
        }
    };
    Ok((
        ModelInferRequest {
            model_name: name.to_string(),
            model_version: version.to_string(),
            id: r.id.unwrap_or_default(),
            inputs,
            outputs,
            raw_input_contents: raw_contents,
            ..Default::default()
        },
        binary_outputs,
    ))
}

/// Which outputs go in the binary part: all or none (no outputs named), or each named output's
/// own choice, in the order named (which is the response's order).
enum BinaryOutputs {
    All(bool),
    Each(Vec<bool>),
}

impl BinaryOutputs {
    fn binary(&self, k: usize) -> bool {
        match self {
            BinaryOutputs::All(b) => *b,
            BinaryOutputs::Each(v) => v.get(k).copied().unwrap_or(false),
        }
    }
}

/// An output's elements as bytes for the binary part: FP64 little-endian, BYTES as 4-byte
/// length and bytes (the gRPC raw form).
fn output_bytes(datatype: &str, c: &InferTensorContents) -> Vec<u8> {
    let mut b = Vec::new();
    if datatype == "BYTES" {
        for s in &c.bytes_contents {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s);
        }
    } else {
        for x in &c.fp64_contents {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    b
}

/// An output's elements as JSON data.
fn output_data(datatype: &str, c: InferTensorContents) -> OutputDataJson {
    if datatype == "BYTES" {
        OutputDataJson::Texts(
            c.bytes_contents
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        )
    } else {
        OutputDataJson::Numbers(c.fp64_contents)
    }
}

/// The REST response for a gRPC response: JSON, with the binary outputs after it when any.
fn to_rest(resp: ModelInferResponse, binary: &BinaryOutputs) -> Reply {
    // The scoring call answers typed for a typed request and raw for a raw one; typed is what
    // both JSON and binary outputs are written from here.
    let typed: Vec<InferTensorContents> = if resp.raw_output_contents.is_empty() {
        resp.outputs
            .iter()
            .map(|t| t.contents.clone().unwrap_or_default())
            .collect()
    } else {
        resp.outputs
            .iter()
            .zip(&resp.raw_output_contents)
            .map(|(t, raw)| from_raw(&t.datatype, raw))
            .collect()
    };
    let mut tail = Vec::new();
    let mut outputs = Vec::with_capacity(resp.outputs.len());
    for (k, (t, c)) in resp.outputs.into_iter().zip(typed).enumerate() {
        let (parameters, data) = if binary.binary(k) {
            let b = output_bytes(&t.datatype, &c);
            let size = b.len();
            tail.extend(b);
            (
                Some(BinarySizeJson {
                    binary_data_size: size,
                }),
                None,
            )
        } else {
            (None, Some(output_data(&t.datatype, c)))
        };
        outputs.push(InferOutputJson {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            parameters,
            data,
        });
    }
    let json = InferResponseJson {
        model_name: resp.model_name,
        model_version: resp.model_version,
        id: resp.id,
        outputs,
    };
    if tail.is_empty() {
        return json_reply(&json);
    }
    let mut body = serde_json::to_vec(&json).unwrap_or_default();
    let header = body.len();
    body.extend(tail);
    (
        [
            (
                http::header::CONTENT_TYPE,
                "application/octet-stream".to_string(),
            ),
            (
                http::HeaderName::from_static(HEADER_LENGTH),
                header.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

/// Raw output contents (as the scoring call writes them) back to typed.
fn from_raw(datatype: &str, raw: &[u8]) -> InferTensorContents {
    let mut c = InferTensorContents::default();
    if datatype == "BYTES" {
        let mut rest = raw;
        while rest.len() >= 4 {
            let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            let end = (4 + n).min(rest.len());
            c.bytes_contents.push(Bytes::copy_from_slice(&rest[4..end]));
            rest = &rest[end..];
        }
    } else {
        c.fp64_contents = raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
    }
    c
}

/// Splits a body into its JSON part and binary part by the extension's header, if present.
fn split_binary(headers: &HeaderMap, body: Bytes) -> Result<(Bytes, Bytes, bool), Error> {
    let Some(v) = headers.get(HEADER_LENGTH) else {
        return Ok((body, Bytes::new(), false));
    };
    let n: usize = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            Error::InvalidRequest(vec![violation(
                HEADER_LENGTH.into(),
                "expected the byte length of the JSON part",
            )])
        })?;
    if n > body.len() {
        return Err(Error::InvalidRequest(vec![violation(
            HEADER_LENGTH.into(),
            format!("{n} is longer than the body ({} bytes)", body.len()),
        )]));
    }
    Ok((body.slice(..n), body.slice(n..), true))
}

async fn infer_at(
    st: &HttpState,
    name: &str,
    version: &str,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Reply, Error> {
    let bytes = read_body(
        &headers,
        body,
        st.max_body,
        headers.contains_key(HEADER_LENGTH),
    )
    .await?;
    let (json, binary, _) = split_binary(&headers, bytes)?;
    let r: InferRequestJson = parse_json(&json)?;
    let (req, binary_outputs) = to_grpc(name, version, r, binary)?;
    let catalog = st.registry.catalog();
    let model = catalog.resolve(&spec(name, version))?;
    let resp = model_infer(model, &req, st.strict, st.max_batch)?;
    Ok(to_rest(resp, &binary_outputs))
}

const INFER_DOC: &str = "Scores every row of the input tensors (one per feature, or one [N, F] FP64 tensor for an all-numeric model). JSON data, or Triton's binary tensor extension: the Inference-Header-Content-Length header gives the JSON part's length, and each binary input's parameters.binary_data_size its bytes after it.";

/// Inference on the serving version.
#[utoipa::path(
    post, path = "/v2/models/{model}/infer", tag = "v2",
    description = INFER_DOC,
    params(("model" = String, Path, description = "model name")),
    request_body(content = InferRequestJson, content_type = "application/json"),
    responses(
        (status = 200, description = "The outputs; with binary outputs the body is the JSON part and then their bytes", content(
            (InferResponseJson = "application/json"),
            (Vec<u8> = "application/octet-stream"),
        )),
        super::openapi::CallErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn infer(
    State(st): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply {
    let start = Instant::now();
    let res = match path(name) {
        Ok(name) => infer_at(&st, &name, "", headers, body).await,
        Err(e) => Err(e),
    };
    finish("ModelInfer", start, res)
}

/// Inference on one version.
#[utoipa::path(
    post, path = "/v2/models/{model}/versions/{version}/infer", tag = "v2",
    description = INFER_DOC,
    params(("model" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")),
    request_body(content = InferRequestJson, content_type = "application/json"),
    responses(
        (status = 200, description = "The outputs; with binary outputs the body is the JSON part and then their bytes", content(
            (InferResponseJson = "application/json"),
            (Vec<u8> = "application/octet-stream"),
        )),
        super::openapi::CallErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn infer_version(
    State(st): State<Arc<HttpState>>,
    pair: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply {
    let start = Instant::now();
    let res = match path(pair) {
        Ok((name, version)) => infer_at(&st, &name, &version, headers, body).await,
        Err(e) => Err(e),
    };
    finish("ModelInfer", start, res)
}

fn metadata_at(st: &HttpState, name: &str, version: &str) -> Result<Reply, Error> {
    let catalog = st.registry.catalog();
    let m = catalog.resolve(&spec(name, version))?;
    let versions = if version.is_empty() {
        catalog
            .versions(&m.file().name)
            .map(|v| v.to_string())
            .collect()
    } else {
        vec![m.file().version.to_string()]
    };
    let md = model_metadata(m, versions);
    let tensor =
        |t: crate::inference::model_metadata_response::TensorMetadata| TensorMetadataJson {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
        };
    Ok(json_reply(&ModelMetadataJson {
        name: md.name,
        versions: md.versions,
        platform: md.platform,
        inputs: md.inputs.into_iter().map(tensor).collect(),
        outputs: md.outputs.into_iter().map(tensor).collect(),
    }))
}

/// A model's inputs and outputs.
#[utoipa::path(
    get, path = "/v2/models/{model}", tag = "v2",
    params(("model" = String, Path, description = "model name")),
    responses(
        (status = 200, description = "Inputs (one per feature) and outputs", body = ModelMetadataJson),
        super::openapi::LookupErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn model_metadata_serving(
    State(st): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
) -> Reply {
    let start = Instant::now();
    let res = path(name).and_then(|n| metadata_at(&st, &n, ""));
    finish("ModelMetadata", start, res)
}

/// One version's inputs and outputs.
#[utoipa::path(
    get, path = "/v2/models/{model}/versions/{version}", tag = "v2",
    params(("model" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")),
    responses(
        (status = 200, description = "Inputs (one per feature) and outputs", body = ModelMetadataJson),
        super::openapi::LookupErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn model_metadata_version(
    State(st): State<Arc<HttpState>>,
    pair: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let start = Instant::now();
    let res = path(pair).and_then(|(n, v)| metadata_at(&st, &n, &v));
    finish("ModelMetadata", start, res)
}

fn ready_at(st: &HttpState, name: &str, version: &str) -> Result<Reply, Error> {
    let catalog = st.registry.catalog();
    let m = catalog.resolve(&spec(name, version))?;
    Ok(json_reply(&ModelReadyJson {
        name: m.file().name.clone(),
        version: m.file().version.to_string(),
        ready: true,
    }))
}

/// Whether a model is loaded and serving: 200, or 404 naming what is served.
#[utoipa::path(
    get, path = "/v2/models/{model}/ready", tag = "v2",
    params(("model" = String, Path, description = "model name")),
    responses(
        (status = 200, description = "Ready", body = ModelReadyJson),
        super::openapi::LookupErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn model_ready(
    State(st): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
) -> Reply {
    let start = Instant::now();
    let res = path(name).and_then(|n| ready_at(&st, &n, ""));
    finish("ModelReady", start, res)
}

/// Whether one version is loaded and serving.
#[utoipa::path(
    get, path = "/v2/models/{model}/versions/{version}/ready", tag = "v2",
    params(("model" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")),
    responses(
        (status = 200, description = "Ready", body = ModelReadyJson),
        super::openapi::LookupErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn model_version_ready(
    State(st): State<Arc<HttpState>>,
    pair: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let start = Instant::now();
    let res = path(pair).and_then(|(n, v)| ready_at(&st, &n, &v));
    finish("ModelReady", start, res)
}

/// The server is up (no key needed).
#[utoipa::path(
    get, path = "/v2/health/live", tag = "v2",
    responses((status = 200, description = "Live", body = LiveJson))
)]
pub async fn live() -> Reply {
    json_reply(&LiveJson { live: true })
}

/// The server serves at least one model and is not stopping (no key needed).
#[utoipa::path(
    get, path = "/v2/health/ready", tag = "v2",
    responses(
        (status = 200, description = "Ready", body = ReadyJson),
        (status = 503, description = "No model loaded, or stopping", body = ReadyJson),
    )
)]
pub async fn ready(State(st): State<Arc<HttpState>>) -> Reply {
    let ready = !st.stopping.load(Ordering::Relaxed) && !st.registry.catalog().is_empty();
    let status = if ready {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    json_reply_status(status, &ReadyJson { ready })
}

/// The server's name, version and protocol extensions.
#[utoipa::path(
    get, path = "/v2", tag = "v2",
    responses(
        (status = 200, description = "Server metadata", body = ServerMetadataJson),
        super::openapi::GateErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn server_metadata() -> Reply {
    json_reply(&ServerMetadataJson {
        name: "churn".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: vec!["binary_tensor_data".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Vec<Element> {
        serde_json::from_str::<FlatData>(json).unwrap().0
    }

    #[test]
    fn nested_data_flattens_row_major() {
        assert_eq!(
            data("[[1, 2.5], [null, -4]]"),
            vec![
                Element::UInt(1),
                Element::Float(2.5),
                Element::Null,
                Element::Int(-4)
            ]
        );
        assert_eq!(data(r#"["a", ["b", [""]]]"#).len(), 3);
        assert_eq!(
            data("[{\"x\": 1}, true]"),
            vec![Element::Object, Element::Bool(true)]
        );
    }

    #[test]
    fn json_elements_become_typed_contents_or_name_the_bad_one() {
        let mut bad = Vec::new();
        let c = typed(0, "FP64", &data("[1, null, 2.5]"), &mut bad);
        assert!(bad.is_empty());
        assert_eq!(c.fp64_contents[0], 1.0);
        assert!(c.fp64_contents[1].is_nan());
        let c = typed(2, "BYTES", &data(r#"["Yes", null]"#), &mut bad);
        assert_eq!(c.bytes_contents, vec![Bytes::from("Yes"), Bytes::new()]);
        typed(3, "FP64", &data(r#"[1, "x"]"#), &mut bad);
        typed(4, "INT32", &data("[1.5]"), &mut bad);
        typed(5, "BYTES", &data("[7]"), &mut bad);
        let fields: Vec<&str> = bad.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "inputs[3].data[1]",
                "inputs[4].data[0]",
                "inputs[5].data[0]"
            ]
        );
        assert!(bad[0].description.contains("got a string"), "{bad:?}");
    }

    #[test]
    fn raw_json_inputs_match_the_grpc_raw_form() {
        let mut bad = Vec::new();
        let b = raw(0, "BYTES", &data(r#"["ab", ""]"#), &mut bad);
        assert_eq!(&b[..], &[2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]);
        let b = raw(0, "FP64", &data("[1.5]"), &mut bad);
        assert_eq!(&b[..], &1.5f64.to_le_bytes());
        assert!(bad.is_empty());
        let back = from_raw("BYTES", &[2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]);
        assert_eq!(back.bytes_contents, vec![Bytes::from("ab"), Bytes::new()]);
    }
}
