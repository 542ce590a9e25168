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
                    schema.feature_list()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CategoricalEncoding, FeatureDef, NumericEncoding, Transform};

    fn numeric(name: &str) -> FeatureDef {
        FeatureDef {
            name: name.into(),
            kind: FeatureKind::Numeric(NumericEncoding {
                transform: Transform::None,
                impute: 0.0,
                mean: 0.0,
                std: 1.0,
            }),
        }
    }

    fn categorical(name: &str) -> FeatureDef {
        FeatureDef {
            name: name.into(),
            kind: FeatureKind::Categorical(CategoricalEncoding::new(
                vec!["a".into(), "b".into()],
                vec![0.5, 0.5],
                0,
            )),
        }
    }

    /// tenure (numeric), plan (categorical).
    fn mixed() -> FeatureSchema {
        FeatureSchema::new(vec![numeric("tenure"), categorical("plan")])
    }

    fn all_numeric() -> FeatureSchema {
        FeatureSchema::new(vec![numeric("x"), numeric("y"), numeric("z")])
    }

    fn input(name: &str, datatype: &str, shape: &[i64]) -> InferInputTensor {
        InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
            ..Default::default()
        }
    }

    fn typed(mut t: InferInputTensor, c: InferTensorContents) -> InferInputTensor {
        t.contents = Some(c);
        t
    }

    fn raw_f64(v: &[f64]) -> Bytes {
        v.iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
            .into()
    }

    fn raw_strings(v: &[&str]) -> Bytes {
        let mut b = Vec::new();
        for s in v {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        b.into()
    }

    /// Input tensors with their raw contents.
    type RawInputs = Vec<(InferInputTensor, Bytes)>;

    fn raw_request(inputs: RawInputs) -> ModelInferRequest {
        let (inputs, raw): (Vec<_>, Vec<_>) = inputs.into_iter().unzip();
        ModelInferRequest {
            inputs,
            raw_input_contents: raw,
            ..Default::default()
        }
    }

    fn rows<'a>(b: &InputBatch<'a>) -> Vec<Vec<Value<'a>>> {
        (0..b.rows())
            .map(|i| {
                let mut r = Vec::new();
                b.fill_row(i, &mut r);
                r
            })
            .collect()
    }

    /// The one violation a request gets, as (field, description).
    fn error_of(req: &ModelInferRequest, schema: &FeatureSchema) -> (String, String) {
        let v = decode(req, schema).expect_err("should be refused");
        assert_eq!(v.len(), 1, "{v:?}");
        (v[0].field.clone(), v[0].description.clone())
    }

    #[test]
    fn raw_columns_of_every_numeric_type_and_bytes_decode_to_rows() {
        let schema = mixed();
        let plan = (input("plan", "BYTES", &[3]), raw_strings(&["b", "", "zz"]));
        let cases: Vec<(&str, Bytes)> = vec![
            ("FP64", raw_f64(&[1.5, f64::NAN, -2.0])),
            (
                "FP32",
                [1.5f32, f32::NAN, -2.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
        ];
        for (dt, bytes) in cases {
            let req = raw_request(vec![(input("tenure", dt, &[3, 1]), bytes), plan.clone()]);
            let b = decode(&req, &schema).unwrap();
            assert!(b.raw);
            assert_eq!(
                rows(&b),
                vec![
                    vec![Value::Number(1.5), Value::Text("b")],
                    vec![Value::Missing, Value::Missing],
                    vec![Value::Number(-2.0), Value::Text("zz")],
                ],
                "{dt}"
            );
        }
        let ints: Vec<(&str, Bytes)> = vec![
            (
                "INT32",
                [7i32, -1, 0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            (
                "INT64",
                [7i64, -1, 0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
        ];
        for (dt, bytes) in ints {
            let req = raw_request(vec![plan.clone(), (input("tenure", dt, &[3]), bytes)]);
            let b = decode(&req, &schema).unwrap();
            let got: Vec<Value> = rows(&b).into_iter().map(|r| r[0]).collect();
            assert_eq!(
                got,
                vec![Value::Number(7.0), Value::Number(-1.0), Value::Number(0.0)],
                "{dt}"
            );
        }
    }

    #[test]
    fn typed_columns_decode_like_raw_ones() {
        let schema = mixed();
        let plan = typed(
            input("plan", "BYTES", &[2]),
            InferTensorContents {
                bytes_contents: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
                ..Default::default()
            },
        );
        let numbers = [
            (
                "FP64",
                InferTensorContents {
                    fp64_contents: vec![3.0, 4.0],
                    ..Default::default()
                },
            ),
            (
                "FP32",
                InferTensorContents {
                    fp32_contents: vec![3.0, 4.0],
                    ..Default::default()
                },
            ),
            (
                "INT32",
                InferTensorContents {
                    int_contents: vec![3, 4],
                    ..Default::default()
                },
            ),
            (
                "INT64",
                InferTensorContents {
                    int64_contents: vec![3, 4],
                    ..Default::default()
                },
            ),
        ];
        for (dt, c) in numbers {
            let req = ModelInferRequest {
                inputs: vec![typed(input("tenure", dt, &[2]), c), plan.clone()],
                ..Default::default()
            };
            let b = decode(&req, &schema).unwrap();
            assert!(!b.raw);
            assert_eq!(
                rows(&b),
                vec![
                    vec![Value::Number(3.0), Value::Text("a")],
                    vec![Value::Number(4.0), Value::Text("b")],
                ],
                "{dt}"
            );
        }
    }

    #[test]
    fn one_matrix_feeds_an_all_numeric_model_in_schema_order() {
        let schema = all_numeric();
        let m: Vec<u8> = [1f32, 2.0, 3.0, 4.0, f32::NAN, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let req = raw_request(vec![(input("features", "FP32", &[2, 3]), m.into())]);
        let b = decode(&req, &schema).unwrap();
        assert_eq!(
            rows(&b),
            vec![
                vec![Value::Number(1.0), Value::Number(2.0), Value::Number(3.0)],
                vec![Value::Number(4.0), Value::Missing, Value::Number(6.0)],
            ]
        );
        assert_eq!(
            b.locate(&schema, 2, 1),
            ("features".to_string(), "row 1, column 2 (z)".to_string())
        );
        let typed_req = ModelInferRequest {
            inputs: vec![typed(
                input("m", "FP64", &[1, 3]),
                InferTensorContents {
                    fp64_contents: vec![9.0, 8.0, 7.0],
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        let b = decode(&typed_req, &schema).unwrap();
        assert_eq!(
            rows(&b),
            vec![vec![
                Value::Number(9.0),
                Value::Number(8.0),
                Value::Number(7.0)
            ]]
        );
    }

    #[test]
    fn a_matrix_is_refused_with_the_reason_naming_the_tensor() {
        let m = raw_f64(&[1.0, 2.0]);
        let req = raw_request(vec![(input("features", "FP64", &[1, 2]), m.clone())]);
        let (field, why) = error_of(&req, &mixed());
        assert_eq!(field, "features");
        assert!(why.contains("categorical features (plan)"), "{why}");

        let (field, why) = error_of(&req, &all_numeric());
        assert_eq!(field, "features");
        assert!(
            why.contains("shape [1, 2]") && why.contains("[N, 3]"),
            "{why}"
        );

        let ints = raw_request(vec![(
            input("features", "INT64", &[1, 3]),
            raw_f64(&[0.0; 3]),
        )]);
        let (_, why) = error_of(&ints, &all_numeric());
        assert!(
            why.contains("datatype INT64") && why.contains("FP64 or FP32"),
            "{why}"
        );
    }

    #[test]
    fn wrong_datatypes_are_named() {
        let schema = mixed();
        let plan = (input("plan", "BYTES", &[1]), raw_strings(&["a"]));
        let tenure = (input("tenure", "FP64", &[1]), raw_f64(&[1.0]));
        // A number sent as BYTES (its own text).
        let req = raw_request(vec![
            (input("tenure", "BYTES", &[1]), raw_strings(&["1.0"])),
            plan.clone(),
        ]);
        let (field, why) = error_of(&req, &schema);
        assert_eq!(field, "tenure");
        assert!(
            why.contains("datatype BYTES") && why.contains(NUMERIC_TYPES),
            "{why}"
        );
        // Types the protocol has but a numeric input does not take.
        for dt in ["FP16", "BOOL", "UINT8", "INT8"] {
            let req = raw_request(vec![
                (input("tenure", dt, &[1]), vec![0u8; 2].into()),
                plan.clone(),
            ]);
            let (field, why) = error_of(&req, &schema);
            assert_eq!(field, "tenure");
            assert!(why.contains(&format!("datatype {dt}")), "{why}");
        }
        // A categorical sent as numbers.
        let req = raw_request(vec![
            tenure.clone(),
            (input("plan", "FP64", &[1]), raw_f64(&[1.0])),
        ]);
        let (field, why) = error_of(&req, &schema);
        assert_eq!(field, "plan");
        assert!(
            why.contains("datatype FP64") && why.contains("BYTES"),
            "{why}"
        );
        // Not a protocol type at all.
        let req = raw_request(vec![
            (input("tenure", "FLOAT64", &[1]), raw_f64(&[1.0])),
            plan,
        ]);
        let (_, why) = error_of(&req, &schema);
        assert!(why.contains("unknown datatype \"FLOAT64\""), "{why}");
    }

    #[test]
    fn wrong_shapes_and_lengths_are_named() {
        let schema = mixed();
        let plan = |n: usize| {
            (
                input("plan", "BYTES", &[n as i64]),
                raw_strings(&vec!["a"; n]),
            )
        };
        let cases: Vec<(RawInputs, &str, &str)> = vec![
            (
                vec![
                    (input("tenure", "FP64", &[2, 2]), raw_f64(&[0.0; 4])),
                    plan(2),
                ],
                "tenure",
                "shape [2, 2]",
            ),
            (
                vec![(input("tenure", "FP64", &[-1]), raw_f64(&[])), plan(1)],
                "tenure",
                "shape [-1]",
            ),
            (
                vec![(input("tenure", "FP64", &[2]), raw_f64(&[1.0])), plan(2)],
                "tenure",
                "raw contents are 8 bytes, but shape [2] of FP64 needs 2 x 8",
            ),
            (
                vec![(input("tenure", "FP64", &[3]), raw_f64(&[0.0; 3])), plan(2)],
                "plan",
                "has 2 rows (shape [2]) but tenure has 3",
            ),
            (
                vec![
                    (input("tenure", "FP64", &[2]), raw_f64(&[0.0; 2])),
                    (input("plan", "BYTES", &[2]), raw_strings(&["a"])),
                ],
                "plan",
                "hold 1 elements, but shape [2] needs 2",
            ),
            (
                vec![
                    (input("tenure", "FP64", &[1]), raw_f64(&[0.0])),
                    (input("plan", "BYTES", &[1]), vec![1u8, 0].into()),
                ],
                "plan",
                "end inside element 0's 4-byte length prefix",
            ),
            (
                vec![
                    (input("tenure", "FP64", &[1]), raw_f64(&[0.0])),
                    (
                        input("plan", "BYTES", &[1]),
                        vec![9u8, 0, 0, 0, b'a'].into(),
                    ),
                ],
                "plan",
                "element 0 says 9 bytes, but only 1 remain",
            ),
            (
                vec![
                    (input("tenure", "FP64", &[1]), raw_f64(&[0.0])),
                    (
                        input("plan", "BYTES", &[1]),
                        vec![1u8, 0, 0, 0, 0xff].into(),
                    ),
                ],
                "plan",
                "element 0 is not UTF-8",
            ),
        ];
        for (inputs, field, want) in cases {
            let req = raw_request(inputs);
            let (f, why) = error_of(&req, &schema);
            assert_eq!(f, field, "{why}");
            assert!(why.contains(want), "wanted '{want}' in '{why}'");
        }
    }

    #[test]
    fn typed_contents_in_the_wrong_field_or_count_are_named() {
        let schema = mixed();
        let plan = typed(
            input("plan", "BYTES", &[1]),
            InferTensorContents {
                bytes_contents: vec![Bytes::from_static(b"a")],
                ..Default::default()
            },
        );
        // FP64 declared, values in fp32_contents.
        let req = ModelInferRequest {
            inputs: vec![
                typed(
                    input("tenure", "FP64", &[1]),
                    InferTensorContents {
                        fp32_contents: vec![1.0],
                        ..Default::default()
                    },
                ),
                plan.clone(),
            ],
            ..Default::default()
        };
        let (f, why) = error_of(&req, &schema);
        assert_eq!(f, "tenure");
        assert!(
            why.contains("contents.fp64_contents holds 0 values, but shape [1] needs 1"),
            "{why}"
        );
        // No contents at all for the BYTES input.
        let req = ModelInferRequest {
            inputs: vec![
                typed(
                    input("tenure", "FP64", &[1]),
                    InferTensorContents {
                        fp64_contents: vec![1.0],
                        ..Default::default()
                    },
                ),
                input("plan", "BYTES", &[1]),
            ],
            ..Default::default()
        };
        let (f, why) = error_of(&req, &schema);
        assert_eq!(f, "plan");
        assert!(why.contains("bytes_contents holds 0 values"), "{why}");
    }

    #[test]
    fn missing_unknown_and_repeated_inputs_are_all_named_at_once() {
        let schema = mixed();
        let req = raw_request(vec![
            (input("tenure", "FP64", &[1]), raw_f64(&[1.0])),
            (input("tenure", "FP64", &[1]), raw_f64(&[1.0])),
            (input("tenur", "FP64", &[1]), raw_f64(&[1.0])),
        ]);
        let v = decode(&req, &schema).unwrap_err();
        let fields: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert_eq!(fields[0], ("tenure", "given more than once"));
        assert_eq!(fields[1].0, "tenur");
        assert!(fields[1].1.starts_with("unknown input"), "{fields:?}");
        assert_eq!(fields[2].0, "plan");
        assert!(fields[2].1.contains("missing input") && fields[2].1.contains("BYTES"));
    }

    #[test]
    fn raw_and_typed_contents_cannot_be_mixed_or_miscounted() {
        let schema = mixed();
        let mut req = raw_request(vec![
            (input("tenure", "FP64", &[1]), raw_f64(&[1.0])),
            (input("plan", "BYTES", &[1]), raw_strings(&["a"])),
        ]);
        req.inputs[1].contents = Some(InferTensorContents {
            bytes_contents: vec![Bytes::from_static(b"a")],
            ..Default::default()
        });
        let (f, why) = error_of(&req, &schema);
        assert_eq!(f, "plan");
        assert!(why.contains("raw_input_contents"), "{why}");

        req.inputs[1].contents = None;
        req.raw_input_contents.pop();
        let (f, why) = error_of(&req, &schema);
        assert_eq!(f, "raw_input_contents");
        assert!(why.contains("1 entries for 2 inputs"), "{why}");
    }

    #[test]
    fn a_huge_shape_is_refused_without_allocating_for_it() {
        let schema = mixed();
        let req = raw_request(vec![
            (input("tenure", "FP64", &[1 << 40]), raw_f64(&[1.0])),
            (input("plan", "BYTES", &[1 << 40]), raw_strings(&["a"])),
        ]);
        let v = decode(&req, &schema).unwrap_err();
        assert_eq!(v.len(), 2, "{v:?}");
        let overflow = raw_request(vec![(input("m", "FP64", &[i64::MAX, 3]), raw_f64(&[]))]);
        let (_, why) = error_of(&overflow, &all_numeric());
        assert!(why.contains("too large"), "{why}");
    }

    #[test]
    fn outputs_encode_raw_little_endian_or_typed() {
        let (t, raw) = encode("p", vec![2], OutputData::Fp64(vec![0.25, -1.0]), true);
        assert_eq!((t.name.as_str(), t.datatype.as_str()), ("p", "FP64"));
        assert!(t.contents.is_none());
        let raw = raw.unwrap();
        assert_eq!(&raw[..8], &0.25f64.to_le_bytes());
        assert_eq!(&raw[8..], &(-1.0f64).to_le_bytes());

        let (t, raw) = encode(
            "tier",
            vec![2],
            OutputData::Bytes(vec!["LOW", "HIGH"]),
            true,
        );
        assert_eq!(t.datatype, "BYTES");
        assert_eq!(raw.unwrap(), raw_strings(&["LOW", "HIGH"]));

        let (t, raw) = encode(
            "tier",
            vec![2],
            OutputData::Bytes(vec!["LOW", "HIGH"]),
            false,
        );
        assert!(raw.is_none());
        let c = t.contents.unwrap();
        assert_eq!(c.bytes_contents, vec![&b"LOW"[..], &b"HIGH"[..]]);
        let (t, _) = encode("p", vec![1, 1], OutputData::Fp64(vec![0.5]), false);
        assert_eq!(t.shape, vec![1, 1]);
        assert_eq!(t.contents.unwrap().fp64_contents, vec![0.5]);
    }
}
