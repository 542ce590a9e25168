use super::csv_reader::check_header;
use super::table::{Column, ReadOptions, Table};
use crate::error::{Error, Result};
use arrow_array::{Array, RecordBatch, cast::AsArray, types::*};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use std::path::Path;

pub(super) fn header(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::data(path, format!("not a readable Parquet file: {e}")))?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

pub(super) fn read(path: &Path, opts: &ReadOptions) -> Result<Table> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::data(path, format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if header.is_empty() {
        return Err(Error::data(path, "Parquet file has no columns"));
    }
    check_header(path, &header)?;
    let kept: Vec<usize> = (0..header.len())
        .filter(|&i| !opts.skip.contains(&header[i]))
        .collect();
    for &i in &kept {
        let dt = schema.field(i).data_type();
        if !supported(dt) {
            return Err(Error::column(
                path,
                &header[i],
                format!("unsupported Parquet type {dt}: expected numbers, text or booleans"),
            ));
        }
    }
    let mut columns: Vec<Column> = kept
        .iter()
        .map(|&i| Column::new(header[i].clone()))
        .collect();
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| Error::data(path, e.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| Error::data(path, e.to_string()))?;
        columns
            .par_iter_mut()
            .zip(&kept)
            .for_each(|(col, &i)| push_array(col, batch.column(i).as_ref(), opts.max_levels));
        rows += batch.num_rows() as u64;
    }
    for c in &mut columns {
        c.finish();
    }
    Ok(Table {
        path: path.to_path_buf(),
        columns,
        lines: (1..=rows).collect(),
        header,
    })
}

/// Arrow types churn reads: numbers, text, booleans and all-null columns.
pub(crate) fn supported(dt: &DataType) -> bool {
    use DataType::*;
    matches!(
        dt,
        Float64
            | Float32
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Utf8
            | LargeUtf8
            | Utf8View
            | Boolean
            | Null
    )
}

fn push_array(col: &mut Column, a: &dyn Array, max_levels: usize) {
    macro_rules! numbers {
        ($t:ty) => {{
            let a = a.as_primitive::<$t>();
            for i in 0..a.len() {
                let v = if a.is_null(i) {
                    None
                } else {
                    Some(a.value(i) as f64)
                };
                col.push_number(v, max_levels);
            }
        }};
    }
    macro_rules! texts {
        ($arr:expr) => {{
            let a = $arr;
            for i in 0..a.len() {
                if a.is_null(i) {
                    col.push_text("", max_levels);
                } else {
                    col.push_text(a.value(i), max_levels);
                }
            }
        }};
    }
    match a.data_type() {
        DataType::Float64 => numbers!(Float64Type),
        DataType::Float32 => numbers!(Float32Type),
        DataType::Int8 => numbers!(Int8Type),
        DataType::Int16 => numbers!(Int16Type),
        DataType::Int32 => numbers!(Int32Type),
        DataType::Int64 => numbers!(Int64Type),
        DataType::UInt8 => numbers!(UInt8Type),
        DataType::UInt16 => numbers!(UInt16Type),
        DataType::UInt32 => numbers!(UInt32Type),
        DataType::UInt64 => numbers!(UInt64Type),
        DataType::Utf8 => texts!(a.as_string::<i32>()),
        DataType::LargeUtf8 => texts!(a.as_string::<i64>()),
        DataType::Utf8View => texts!(a.as_string_view()),
        DataType::Boolean => {
            let a = a.as_boolean();
            for i in 0..a.len() {
                let s = if a.is_null(i) {
                    ""
                } else if a.value(i) {
                    "true"
                } else {
                    "false"
                };
                col.push_text(s, max_levels);
            }
        }
        _ => {
            for _ in 0..a.len() {
                col.push_text("", max_levels);
            }
        }
    }
}
