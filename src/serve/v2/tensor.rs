//! Open Inference Protocol tensors in and out: a ModelInferRequest's inputs become rows of
//! [`Value`]s in schema order, and scores become output tensors, raw or typed to mirror the request.
//!
//! Raw contents are little-endian and flattened row-major; a raw BYTES element is a 4-byte
//! little-endian length and then its bytes. Every problem is a [`FieldViolation`] naming the tensor.
use crate::error::FieldViolation;
use crate::inference::model_infer_request::InferInputTensor;
use crate::inference::model_infer_response::InferOutputTensor;
use crate::inference::{InferTensorContents, ModelInferRequest};
use crate::schema::{FeatureKind, FeatureSchema, Value};
use prost::bytes::Bytes;

/// The element types the protocol names; only some are accepted as inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Bf16,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    pub fn parse(s: &str) -> Option<DataType> {
        use DataType::*;
        Some(match s {
            "BOOL" => Bool,
            "UINT8" => Uint8,
            "UINT16" => Uint16,
            "UINT32" => Uint32,
            "UINT64" => Uint64,
            "INT8" => Int8,
            "INT16" => Int16,
            "INT32" => Int32,
            "INT64" => Int64,
            "FP16" => Fp16,
            "BF16" => Bf16,
            "FP32" => Fp32,
            "FP64" => Fp64,
            "BYTES" => Bytes,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use DataType::*;
        match self {
            Bool => "BOOL",
            Uint8 => "UINT8",
            Uint16 => "UINT16",
            Uint32 => "UINT32",
            Uint64 => "UINT64",
            Int8 => "INT8",
            Int16 => "INT16",
            Int32 => "INT32",
            Int64 => "INT64",
            Fp16 => "FP16",
            Bf16 => "BF16",
            Fp32 => "FP32",
            Fp64 => "FP64",
            Bytes => "BYTES",
        }
    }
}

/// What a numeric input tensor may carry.
pub const NUMERIC_TYPES: &str = "FP64, FP32, INT32 or INT64";

/// A numeric tensor's elements, raw (little-endian bytes) or typed, read as f64.
#[derive(Debug, Clone, Copy)]
enum Numbers<'a> {
    RawF64(&'a [u8]),
    RawF32(&'a [u8]),
    RawI32(&'a [u8]),
    RawI64(&'a [u8]),
    F64(&'a [f64]),
    F32(&'a [f32]),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl Numbers<'_> {
    #[inline]
    fn get(&self, i: usize) -> f64 {
        fn le<const N: usize>(b: &[u8], i: usize) -> [u8; N] {
            b[i * N..(i + 1) * N].try_into().unwrap()
        }
        match *self {
            Numbers::RawF64(b) => f64::from_le_bytes(le(b, i)),
            Numbers::RawF32(b) => f32::from_le_bytes(le(b, i)) as f64,
            Numbers::RawI32(b) => i32::from_le_bytes(le(b, i)) as f64,
            Numbers::RawI64(b) => i64::from_le_bytes(le(b, i)) as f64,
            Numbers::F64(v) => v[i],
            Numbers::F32(v) => v[i] as f64,
            Numbers::I32(v) => v[i] as f64,
            Numbers::I64(v) => v[i] as f64,
        }
    }
}

/// One feature's column.
#[derive(Debug)]
enum Column<'a> {
    Numbers(Numbers<'a>),
    Texts(Vec<&'a str>),
}

#[derive(Debug)]
enum Layout<'a> {
    /// One column per feature, in schema order.
    Columns(Vec<Column<'a>>),
    /// One `[N, F]` matrix of every feature in schema order, and the tensor's name.
    Matrix(Numbers<'a>, &'a str),
}

/// A decoded request: `rows` rows, readable one at a time as schema-ordered values.
#[derive(Debug)]
pub struct InputBatch<'a> {
    rows: usize,
    features: usize,
    layout: Layout<'a>,
    /// The request used raw_input_contents; the response then uses raw_output_contents.
    pub raw: bool,
}

impl<'a> InputBatch<'a> {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `i` in schema order. NaN in a numeric tensor and an empty BYTES element are missing
    /// values: a dense tensor has no other way to say so.
    pub fn fill_row(&self, i: usize, row: &mut Vec<Value<'a>>) {
        row.clear();
        let number = |x: f64| {
            if x.is_nan() {
                Value::Missing
            } else {
                Value::Number(x)
            }
        };
        match &self.layout {
            Layout::Columns(cols) => row.extend(cols.iter().map(|c| match c {
                Column::Numbers(n) => number(n.get(i)),
                Column::Texts(t) if t[i].is_empty() => Value::Missing,
                Column::Texts(t) => Value::Text(t[i]),
            })),
            Layout::Matrix(m, _) => {
                row.extend((i * self.features..(i + 1) * self.features).map(|k| number(m.get(k))))
            }
        }
    }

    /// Where a bad value of `feature` in row `row` came from: (tensor, position) for messages.
    pub fn locate(&self, schema: &FeatureSchema, feature: usize, row: usize) -> (String, String) {
        let name = &schema.features()[feature].name;
        match &self.layout {
            Layout::Columns(_) => (name.clone(), format!("row {row}")),
            Layout::Matrix(_, tensor) => (
                tensor.to_string(),
                format!("row {row}, column {feature} ({name})"),
            ),
        }
    }
}

fn violation(field: &str, description: impl Into<String>) -> FieldViolation {
    FieldViolation {
        field: field.to_string(),
        description: description.into(),
    }
}

fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Checks a request's inputs against the model's schema and reads them without copying. Every
/// problem with every tensor is reported at once.
pub fn decode<'a>(
    req: &'a ModelInferRequest,
    schema: &FeatureSchema,
) -> Result<InputBatch<'a>, Vec<FieldViolation>> {
    let raw = !req.raw_input_contents.is_empty();
    let mut bad = Vec::new();
    if raw && req.raw_input_contents.len() != req.inputs.len() {
        bad.push(violation(
            "raw_input_contents",
            format!(
                "{} entries for {} inputs: raw contents need exactly one entry per input, in the order of `inputs`",
                req.raw_input_contents.len(),
                req.inputs.len()
            ),
        ));
        return Err(bad);
    }
    let data = |k: usize| -> Contents<'a> {
        if raw {
            Contents::Raw(&req.raw_input_contents[k])
        } else {
            Contents::Typed(req.inputs[k].contents.as_ref())
        }
    };
    if raw {
        for t in &req.inputs {
            if t.contents.as_ref().is_some_and(has_values) {
                bad.push(violation(
                    &t.name,
                    "has typed `contents` in a request that uses raw_input_contents: use one or the other for all inputs",
                ));
            }
        }
    }

    // One input that is not a feature: the [N, F] matrix of an all-numeric model.
    if let [t] = req.inputs.as_slice()
        && schema.index_of(&t.name).is_none()
    {
        if !bad.is_empty() {
            return Err(bad);
        }
        return decode_matrix(t, data(0), schema, raw).map_err(|v| vec![v]);
    }

    let mut by_feature: Vec<Option<usize>> = vec![None; schema.len()];
    for (k, t) in req.inputs.iter().enumerate() {
        match schema.index_of(&t.name) {
            Some(f) if by_feature[f].is_some() => {
                bad.push(violation(&t.name, "given more than once"));
            }
            Some(f) => by_feature[f] = Some(k),
            None => bad.push(violation(
                &t.name,
                format!(
                    "unknown input: the model's inputs are its features ({}), one tensor each, or one FP64/FP32 [N, F] tensor for an all-numeric model",
                    feature_names(schema)
                ),
            )),
        }
    }
    for (f, k) in by_feature.iter().enumerate() {
        if k.is_none() {
            let def = &schema.features()[f];
            bad.push(violation(
                &def.name,
                format!(
                    "missing input: every feature is one input tensor ({} [N])",
                    expected_type(&def.kind)
                ),
            ));
        }
    }
    let mut rows: Option<(usize, &str)> = None;
    let mut cols = Vec::with_capacity(schema.len());
    for (f, k) in by_feature.iter().enumerate() {
        let Some(k) = *k else { continue };
        let t = &req.inputs[k];
        match decode_column(t, data(k), &schema.features()[f].kind) {
            Ok((n, col)) => {
                match rows {
                    Some((m, first)) if m != n => bad.push(violation(
                        &t.name,
                        format!(
                            "has {n} rows (shape {}) but {first} has {m}: every input needs the same number of rows",
                            shape_text(&t.shape)
                        ),
                    )),
                    Some(_) => {}
                    None => rows = Some((n, &t.name)),
                }
                cols.push(col);
            }
            Err(v) => bad.push(v),
        }
    }
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(InputBatch {
        rows: rows.map_or(0, |r| r.0),
        features: schema.len(),
        layout: Layout::Columns(cols),
        raw,
    })
}

fn feature_names(schema: &FeatureSchema) -> String {
    let names: Vec<&str> = schema.features().iter().map(|f| f.name.as_str()).collect();
    if names.len() > 30 {
        format!("{}, ... ({} in all)", names[..30].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

fn expected_type(kind: &FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Numeric(_) => NUMERIC_TYPES,
        FeatureKind::Categorical(_) => "BYTES",
    }
}

fn has_values(c: &InferTensorContents) -> bool {
    !(c.bool_contents.is_empty()
        && c.int_contents.is_empty()
        && c.int64_contents.is_empty()
        && c.uint_contents.is_empty()
        && c.uint64_contents.is_empty()
        && c.fp32_contents.is_empty()
        && c.fp64_contents.is_empty()
        && c.bytes_contents.is_empty())
}

/// Where a tensor's elements are.
#[derive(Clone, Copy)]
enum Contents<'a> {
    Raw(&'a Bytes),
    Typed(Option<&'a InferTensorContents>),
}

/// The number of elements a shape holds.
fn elements(t: &InferInputTensor) -> Result<usize, FieldViolation> {
    let mut n: usize = 1;
    for &d in &t.shape {
        let d = usize::try_from(d).map_err(|_| {
            violation(
                &t.name,
                format!(
                    "shape {}: dimensions must be zero or more",
                    shape_text(&t.shape)
                ),
            )
        })?;
        n = n.checked_mul(d).ok_or_else(|| {
            violation(
                &t.name,
                format!("shape {} is too large", shape_text(&t.shape)),
            )
        })?;
    }
    Ok(n)
}

fn decode_column<'a>(
    t: &'a InferInputTensor,
    data: Contents<'a>,
    kind: &FeatureKind,
) -> Result<(usize, Column<'a>), FieldViolation> {
    let rows = match t.shape.as_slice() {
        [n] | [n, 1] if *n >= 0 => *n as usize,
        _ => {
            return Err(violation(
                &t.name,
                format!(
                    "shape {}: a feature's tensor is [N] (or [N, 1]), one element per row",
                    shape_text(&t.shape)
                ),
            ));
        }
    };
    let dtype = datatype(t)?;
    let col = match kind {
        FeatureKind::Categorical(_) if dtype == DataType::Bytes => Column::Texts(texts(t, data)?),
        FeatureKind::Categorical(_) => {
            return Err(violation(
                &t.name,
                format!(
                    "datatype {}: a categorical feature takes BYTES (its level as UTF-8 text)",
                    dtype.name()
                ),
            ));
        }
        FeatureKind::Numeric(_) => Column::Numbers(numbers(t, data, dtype, NUMERIC_TYPES)?),
    };
    Ok((rows, col))
}

fn decode_matrix<'a>(
    t: &'a InferInputTensor,
    data: Contents<'a>,
    schema: &FeatureSchema,
    raw: bool,
) -> Result<InputBatch<'a>, FieldViolation> {
    let categorical: Vec<&str> = schema
        .features()
        .iter()
        .filter(|f| matches!(f.kind, FeatureKind::Categorical(_)))
        .map(|f| f.name.as_str())
        .collect();
    if !categorical.is_empty() {
        return Err(violation(
            &t.name,
            format!(
                "not a feature of the model, and a single [N, F] matrix is accepted only for an all-numeric model; this one has categorical features ({}): send one tensor per feature",
                categorical.join(", ")
            ),
        ));
    }
    let f = schema.len();
    let rows = match t.shape.as_slice() {
        [n, w] if *n >= 0 && *w == f as i64 => *n as usize,
        _ => {
            return Err(violation(
                &t.name,
                format!(
                    "shape {}: not a feature of the model, so it is read as the matrix of every feature in schema order, which is [N, {f}]",
                    shape_text(&t.shape)
                ),
            ));
        }
    };
    let dtype = datatype(t)?;
    if !matches!(dtype, DataType::Fp64 | DataType::Fp32) {
        return Err(violation(
            &t.name,
            format!(
                "datatype {}: the [N, F] matrix is FP64 or FP32",
                dtype.name()
            ),
        ));
    }
    let m = numbers(t, data, dtype, "FP64 or FP32")?;
    Ok(InputBatch {
        rows,
        features: f,
        layout: Layout::Matrix(m, &t.name),
        raw,
    })
}

fn datatype(t: &InferInputTensor) -> Result<DataType, FieldViolation> {
    DataType::parse(&t.datatype).ok_or_else(|| {
        violation(
            &t.name,
            format!(
                "unknown datatype \"{}\" (the protocol's are BOOL, UINT8-64, INT8-64, FP16, BF16, FP32, FP64, BYTES)",
                t.datatype
            ),
        )
    })
}

/// A numeric tensor, as many elements as its shape holds.
fn numbers<'a>(
    t: &'a InferInputTensor,
    data: Contents<'a>,
    dtype: DataType,
    accepted: &str,
) -> Result<Numbers<'a>, FieldViolation> {
    let n = elements(t)?;
    let (size, typed_field) = match dtype {
        DataType::Fp64 => (8, "fp64_contents"),
        DataType::Fp32 => (4, "fp32_contents"),
        DataType::Int32 => (4, "int_contents"),
        DataType::Int64 => (8, "int64_contents"),
        other => {
            return Err(violation(
                &t.name,
                format!("datatype {}: a numeric input is {accepted}", other.name()),
            ));
        }
    };
    match data {
        Contents::Raw(b) => {
            if n.checked_mul(size) != Some(b.len()) {
                return Err(violation(
                    &t.name,
                    format!(
                        "raw contents are {} bytes, but shape {} of {} needs {n} x {size}",
                        b.len(),
                        shape_text(&t.shape),
                        dtype.name(),
                    ),
                ));
            }
            Ok(match dtype {
                DataType::Fp64 => Numbers::RawF64(b),
                DataType::Fp32 => Numbers::RawF32(b),
                DataType::Int32 => Numbers::RawI32(b),
                _ => Numbers::RawI64(b),
            })
        }
        Contents::Typed(c) => {
            let (got, numbers) = match (dtype, c) {
                (_, None) => (0, None),
                (DataType::Fp64, Some(c)) => {
                    (c.fp64_contents.len(), Some(Numbers::F64(&c.fp64_contents)))
                }
                (DataType::Fp32, Some(c)) => {
                    (c.fp32_contents.len(), Some(Numbers::F32(&c.fp32_contents)))
                }
                (DataType::Int32, Some(c)) => {
                    (c.int_contents.len(), Some(Numbers::I32(&c.int_contents)))
                }
                (_, Some(c)) => (
                    c.int64_contents.len(),
                    Some(Numbers::I64(&c.int64_contents)),
                ),
            };
            match numbers {
                Some(v) if got == n => Ok(v),
                _ if n == 0 => Ok(Numbers::F64(&[])),
                _ => Err(violation(
                    &t.name,
                    format!(
                        "contents.{typed_field} holds {got} values, but shape {} needs {n}",
                        shape_text(&t.shape)
                    ),
                )),
            }
        }
    }
}

/// A BYTES tensor of UTF-8 elements, as many as its shape holds.
fn texts<'a>(t: &'a InferInputTensor, data: Contents<'a>) -> Result<Vec<&'a str>, FieldViolation> {
    let n = elements(t)?;
    // Sized by what the contents can hold, never by the (caller-given) shape alone.
    let mut out = Vec::with_capacity(match data {
        Contents::Raw(b) => n.min(b.len() / 4),
        Contents::Typed(c) => n.min(c.map_or(0, |c| c.bytes_contents.len())),
    });
    let utf8 = |i: usize, b: &'a [u8]| {
        std::str::from_utf8(b).map_err(|_| {
            violation(
                &t.name,
                format!("element {i} is not UTF-8 text (a categorical level)"),
            )
        })
    };
    match data {
        Contents::Raw(b) => {
            let mut rest: &[u8] = b;
            while !rest.is_empty() {
                let i = out.len();
                let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                    return Err(violation(
                        &t.name,
                        format!(
                            "raw BYTES contents end inside element {i}'s 4-byte length prefix ({} bytes left)",
                            rest.len()
                        ),
                    ));
                };
                let len = u32::from_le_bytes(*len) as usize;
                if len > tail.len() {
                    return Err(violation(
                        &t.name,
                        format!(
                            "raw BYTES element {i} says {len} bytes, but only {} remain",
                            tail.len()
                        ),
                    ));
                }
                out.push(utf8(i, &tail[..len])?);
                rest = &tail[len..];
            }
            if out.len() != n {
                return Err(violation(
                    &t.name,
                    format!(
                        "raw BYTES contents hold {} elements, but shape {} needs {n}",
                        out.len(),
                        shape_text(&t.shape)
                    ),
                ));
            }
        }
        Contents::Typed(c) => {
            let v = c.map_or(&[][..], |c| c.bytes_contents.as_slice());
            if v.len() != n {
                return Err(violation(
                    &t.name,
                    format!(
                        "contents.bytes_contents holds {} values, but shape {} needs {n}",
                        v.len(),
                        shape_text(&t.shape)
                    ),
                ));
            }
            for (i, b) in v.iter().enumerate() {
                out.push(utf8(i, b)?);
            }
        }
    }
    Ok(out)
}

/// An output tensor's values.
pub enum OutputData {
    Fp64(Vec<f64>),
    Bytes(Vec<&'static str>),
}

/// Builds an output tensor; in raw form its contents go to the returned bytes instead.
pub fn encode(
    name: &str,
    shape: Vec<i64>,
    data: OutputData,
    raw: bool,
) -> (InferOutputTensor, Option<Bytes>) {
    let datatype = match data {
        OutputData::Fp64(_) => "FP64",
        OutputData::Bytes(_) => "BYTES",
    };
    let mut t = InferOutputTensor {
        name: name.to_string(),
        datatype: datatype.to_string(),
        shape,
        ..Default::default()
    };
    if raw {
        let bytes = match data {
            OutputData::Fp64(v) => {
                let mut b = Vec::with_capacity(v.len() * 8);
                for x in v {
                    b.extend_from_slice(&x.to_le_bytes());
                }
                b
            }
            OutputData::Bytes(v) => {
                let mut b = Vec::with_capacity(v.iter().map(|s| 4 + s.len()).sum());
                for s in v {
                    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
                b
            }
        };
        (t, Some(Bytes::from(bytes)))
    } else {
        t.contents = Some(match data {
            OutputData::Fp64(v) => InferTensorContents {
                fp64_contents: v,
                ..Default::default()
            },
            OutputData::Bytes(v) => InferTensorContents {
                bytes_contents: v
                    .into_iter()
                    .map(|s| Bytes::from_static(s.as_bytes()))
                    .collect(),
                ..Default::default()
            },
        });
        (t, None)
    }
}
