//! The feature table: CSV or Parquet (by extension), written under a temporary name, synced and
//! renamed into place, so a failed run never leaves a half-written table where a good one was.
use super::metrics::{Metric, MetricColumn};
use crate::error::{Error, Result};
use crate::io::TableFormat;
use crate::io::atomic::TempFile;
use crate::io::csv_write::push_csv_field;
use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows made on one thread: as CSV bytes, or as values for Parquet.
#[derive(Default)]
pub struct RowChunk {
    pub rows: u64,
    pub churned: u64,
    pub csv: Vec<u8>,
    pub ids: Vec<String>,
    /// Row-major metric values (NaN = missing).
    pub values: Vec<f64>,
    pub plans: Vec<Option<String>>,
    pub labels: Vec<bool>,
    /// Each row's customer, by position in the customer order (kept in memory only).
    pub ordinals: Vec<u32>,
}

impl RowChunk {
    /// Adds one row.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        csv: bool,
        id: &str,
        snapshot: &str,
        cols: &[MetricColumn],
        values: &[f64],
        plan: Option<&str>,
        label: Option<bool>,
    ) {
        self.rows += 1;
        self.churned += u64::from(label == Some(true));
        if !csv {
            self.ids.push(id.to_string());
            self.values.extend_from_slice(values);
            self.plans.push(plan.map(str::to_string));
            if let Some(l) = label {
                self.labels.push(l);
            }
            return;
        }
        let out = &mut self.csv;
        push_csv_field(out, id.as_bytes());
        out.push(b',');
        out.extend_from_slice(snapshot.as_bytes());
        let mut ryu = ryu::Buffer::new();
        for (c, &x) in cols.iter().zip(values) {
            out.push(b',');
            if matches!(c.metric, Metric::Plan) {
                if let Some(p) = plan {
                    push_csv_field(out, p.as_bytes());
                }
            } else if x.fract() == 0.0 && x.abs() < 1e15 {
                let _ = write!(out, "{}", x as i64);
            } else if !x.is_nan() {
                out.extend_from_slice(ryu.format(x).as_bytes());
            }
            // NaN (missing) stays an empty field.
        }
        if let Some(l) = label {
            out.extend_from_slice(if l { b",1" } else { b",0" });
        }
        out.push(b'\n');
    }
}

pub(crate) enum FeatureWriter {
    Csv {
        file: std::io::BufWriter<std::fs::File>,
        tmp: TempFile,
        path: PathBuf,
    },
    Parquet {
        writer: Box<parquet::arrow::ArrowWriter<std::fs::File>>,
        schema: Arc<Schema>,
        cols: Vec<MetricColumn>,
        labelled: bool,
        tmp: TempFile,
        path: PathBuf,
    },
}

impl FeatureWriter {
    pub fn create(path: &Path, cols: &[MetricColumn], labelled: bool) -> Result<FeatureWriter> {
        let tmp = TempFile::beside(path, "features");
        let f = tmp.create()?;
        match TableFormat::of(path) {
            TableFormat::Csv => {
                let mut file = std::io::BufWriter::with_capacity(1 << 20, f);
                let mut head = b"customer_id,snapshot".to_vec();
                for c in cols {
                    head.push(b',');
                    push_csv_field(&mut head, c.name.as_bytes());
                }
                if labelled {
                    head.extend_from_slice(b",churned");
                }
                head.push(b'\n');
                file.write_all(&head).map_err(|e| Error::io(path, e))?;
                Ok(FeatureWriter::Csv {
                    file,
                    tmp,
                    path: path.to_path_buf(),
                })
            }
            TableFormat::Parquet => {
                let mut fields = vec![
                    Field::new("customer_id", DataType::Utf8, false),
                    Field::new("snapshot", DataType::Utf8, false),
                ];
                for c in cols {
                    fields.push(match c.metric {
                        Metric::Plan => Field::new(&c.name, DataType::Utf8, true),
                        _ => Field::new(&c.name, DataType::Float64, true),
                    });
                }
                if labelled {
                    fields.push(Field::new("churned", DataType::Int64, false));
                }
                let schema = Arc::new(Schema::new(fields));
                let writer = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None)
                    .map_err(|e| Error::data(path, e.to_string()))?;
                Ok(FeatureWriter::Parquet {
                    writer: Box::new(writer),
                    schema,
                    cols: cols.to_vec(),
                    labelled,
                    tmp,
                    path: path.to_path_buf(),
                })
            }
        }
    }

    pub fn wants_csv(&self) -> bool {
        matches!(self, FeatureWriter::Csv { .. })
    }

    pub fn write(&mut self, chunk: &RowChunk, snapshot: &str) -> Result<()> {
        match self {
            FeatureWriter::Csv { file, path, .. } => {
                file.write_all(&chunk.csv).map_err(|e| Error::io(&*path, e))
            }
            FeatureWriter::Parquet {
                writer,
                schema,
                cols,
                labelled,
                path,
                ..
            } => {
                if chunk.rows == 0 {
                    return Ok(());
                }
                let n = chunk.ids.len();
                let width = cols.len();
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(width + 3);
                let mut ids = StringBuilder::new();
                let mut snaps = StringBuilder::new();
                for id in &chunk.ids {
                    ids.append_value(id);
                    snaps.append_value(snapshot);
                }
                arrays.push(Arc::new(ids.finish()));
                arrays.push(Arc::new(snaps.finish()));
                for (j, c) in cols.iter().enumerate() {
                    if matches!(c.metric, Metric::Plan) {
                        let mut b = StringBuilder::new();
                        for p in &chunk.plans {
                            b.append_option(p.as_deref());
                        }
                        arrays.push(Arc::new(b.finish()));
                    } else {
                        let mut b = Float64Builder::with_capacity(n);
                        for i in 0..n {
                            let x = chunk.values[i * width + j];
                            b.append_option((!x.is_nan()).then_some(x));
                        }
                        arrays.push(Arc::new(b.finish()));
                    }
                }
                if *labelled {
                    let mut b = Int64Builder::with_capacity(n);
                    for &l in &chunk.labels {
                        b.append_value(i64::from(l));
                    }
                    arrays.push(Arc::new(b.finish()));
                }
                let batch = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| Error::data(&*path, e.to_string()))?;
                writer
                    .write(&batch)
                    .map_err(|e| Error::data(&*path, e.to_string()))
            }
        }
    }

    /// Syncs the file and renames it into place.
    pub fn finish(self) -> Result<()> {
        match self {
            FeatureWriter::Csv { file, tmp, path } => {
                let f = file
                    .into_inner()
                    .map_err(|e| Error::io(&path, e.into_error()))?;
                f.sync_all().map_err(|e| Error::io(&path, e))?;
                tmp.persist(&path)
            }
            FeatureWriter::Parquet {
                writer, tmp, path, ..
            } => {
                let f = writer
                    .into_inner()
                    .map_err(|e| Error::data(&path, e.to_string()))?;
                f.sync_all().map_err(|e| Error::io(&path, e))?;
                tmp.persist(&path)
            }
        }
    }
}
