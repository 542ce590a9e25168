//! Batch input: a file read in chunks of rows, column by column, so memory depends on the chunk
//! size and not on the file size. CSV cells stay text (parsed per feature when scored); Parquet
//! numbers stay numbers.
use crate::error::{Error, Result};
use crate::io::TableFormat;
use arrow_array::{Array, cast::AsArray, types::*};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

/// One cell as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Number(f64),
    Text(String),
}

impl Cell {
    pub fn as_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Number(x) => x.to_string(),
            Cell::Text(s) => s.clone(),
        }
    }
}

/// A row that could not even be read as a row (ragged, bad encoding).
#[derive(Debug, Clone)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// A borrowed cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Number(f64),
    Text(&'a str),
}

/// The rows of a chunk: CSV records kept whole (one allocation a row), or typed cells.
#[derive(Debug)]
pub enum Rows {
    /// `idx[k]` is the record field of requested column k.
    Records {
        records: Vec<csv::StringRecord>,
        idx: std::sync::Arc<Vec<usize>>,
    },
    Cells(Vec<Vec<Cell>>),
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Cells(Vec::new())
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Records { records, .. } => records.len(),
            Rows::Cells(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requested column `k` of row `i`.
    #[inline]
    pub fn get(&self, i: usize, k: usize) -> CellRef<'_> {
        match self {
            Rows::Records { records, idx } => CellRef::Text(&records[i][idx[k]]),
            Rows::Cells(c) => match &c[i][k] {
                Cell::Null => CellRef::Null,
                Cell::Number(x) => CellRef::Number(*x),
                Cell::Text(t) => CellRef::Text(t),
            },
        }
    }
}

/// A chunk of rows: for each row its line (CSV, header = 1) or row number (Parquet), and its cells
/// for the requested columns, in request order.
#[derive(Debug, Default)]
pub struct Chunk {
    pub lines: Vec<u64>,
    pub rows: Rows,
    pub bad: Vec<BadRow>,
}

pub trait ChunkReader: Send {
    /// The next chunk of at most `max` rows, or None at the end.
    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>>;
    /// Share of the input consumed so far, when known (for progress and ETA).
    fn fraction(&self) -> Option<f64>;
}

/// Opens `path` and prepares to read `columns` (every one must exist).
pub fn open(path: &Path, columns: &[String]) -> Result<Box<dyn ChunkReader>> {
    if !path.exists() {
        return Err(Error::data(path, "no such file"));
    }
    match TableFormat::of(path) {
        TableFormat::Csv => Ok(Box::new(CsvChunks::open(path, columns)?)),
        TableFormat::Parquet => Ok(Box::new(ParquetChunks::open(path, columns)?)),
    }
}

fn missing_columns(path: &Path, header: &[String], columns: &[String]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|c| {
            header.iter().position(|h| h == c).ok_or_else(|| {
                Error::column(
                    path,
                    c,
                    format!("no such column; the columns are: {}", header.join(", ")),
                )
            })
        })
        .collect()
}

struct CsvChunks {
    path: PathBuf,
    rdr: csv::Reader<std::fs::File>,
    idx: std::sync::Arc<Vec<usize>>,
    width: usize,
    total: u64,
    /// Added to the csv crate's line numbers (1 for CRLF files).
    line_offset: u64,
}

impl CsvChunks {
    fn open(path: &Path, columns: &[String]) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(file);
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| Error::data(path, e.to_string()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        if header.is_empty() || header.iter().all(String::is_empty) {
            return Err(Error::data(path, "empty file: expected a header line"));
        }
        let idx = missing_columns(path, &header, columns)?;
        Ok(CsvChunks {
            path: path.to_path_buf(),
            rdr,
            idx: std::sync::Arc::new(idx),
            width: header.len(),
            total,
            line_offset: crate::io::csv_line_offset(path),
        })
    }
}

impl ChunkReader for CsvChunks {
    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        let mut lines = Vec::with_capacity(max);
        let mut records = Vec::with_capacity(max);
        let mut bad = Vec::new();
        let mut record = csv::StringRecord::new();
        while lines.len() + bad.len() < max {
            match self.rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line()) + self.line_offset;
                    if record.len() == 1 && record[0].trim().is_empty() && self.width > 1 {
                        continue; // a blank line holds no row
                    }
                    if record.len() != self.width {
                        bad.push(BadRow {
                            line,
                            reason: format!(
                                "ragged row: {} fields, expected {}",
                                record.len(),
                                self.width
                            ),
                        });
                        continue;
                    }
                    lines.push(line);
                    records.push(std::mem::take(&mut record));
                }
                Err(e) => match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => bad.push(BadRow {
                        line: e.position().map_or(0, |p| p.line()) + self.line_offset,
                        reason: "invalid UTF-8".into(),
                    }),
                    _ => return Err(Error::data(&self.path, e.to_string())),
                },
            }
        }
        if lines.is_empty() && bad.is_empty() {
            return Ok(None);
        }
        Ok(Some(Chunk {
            lines,
            rows: Rows::Records {
                records,
                idx: self.idx.clone(),
            },
            bad,
        }))
    }

    fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| self.rdr.position().byte() as f64 / self.total as f64)
    }
}

struct ParquetChunks {
    path: PathBuf,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    idx: Vec<usize>,
    pending: Option<(arrow_array::RecordBatch, usize)>,
    rows_done: u64,
    total_rows: u64,
}

impl ParquetChunks {
    fn open(path: &Path, columns: &[String]) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::data(path, format!("not a readable Parquet file: {e}")))?;
        let header: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let idx = missing_columns(path, &header, columns)?;
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let reader = builder
            .with_batch_size(16 * 1024)
            .build()
            .map_err(|e| Error::data(path, e.to_string()))?;
        Ok(ParquetChunks {
            path: path.to_path_buf(),
            reader,
            idx,
            pending: None,
            rows_done: 0,
            total_rows,
        })
    }
}

fn cell(a: &dyn Array, i: usize) -> Cell {
    if a.is_null(i) {
        return Cell::Null;
    }
    macro_rules! n {
        ($t:ty) => {
            Cell::Number(a.as_primitive::<$t>().value(i) as f64)
        };
    }
    match a.data_type() {
        DataType::Float64 => n!(Float64Type),
        DataType::Float32 => n!(Float32Type),
        DataType::Int8 => n!(Int8Type),
        DataType::Int16 => n!(Int16Type),
        DataType::Int32 => n!(Int32Type),
        DataType::Int64 => n!(Int64Type),
        DataType::UInt8 => n!(UInt8Type),
        DataType::UInt16 => n!(UInt16Type),
        DataType::UInt32 => n!(UInt32Type),
        DataType::UInt64 => n!(UInt64Type),
        DataType::Utf8 => Cell::Text(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Cell::Text(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Cell::Text(a.as_string_view().value(i).to_string()),
        DataType::Boolean => Cell::Text(a.as_boolean().value(i).to_string()),
        _ => Cell::Null,
    }
}

impl ChunkReader for ParquetChunks {
    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        let mut lines = Vec::new();
        let mut cells = Vec::new();
        while lines.len() < max {
            let (batch, start) = match self.pending.take() {
                Some(p) => p,
                None => match self.reader.next() {
                    None => break,
                    Some(b) => (b.map_err(|e| Error::data(&self.path, e.to_string()))?, 0),
                },
            };
            for &c in &self.idx {
                let dt = batch.column(c).data_type();
                if !crate::io::parquet_reader::supported(dt) {
                    let name = batch.schema().field(c).name().clone();
                    return Err(Error::column(
                        &self.path,
                        name,
                        format!("unsupported Parquet type {dt}"),
                    ));
                }
            }
            let take = (batch.num_rows() - start).min(max - lines.len());
            for i in start..start + take {
                self.rows_done += 1;
                lines.push(self.rows_done);
                cells.push(
                    self.idx
                        .iter()
                        .map(|&c| cell(batch.column(c).as_ref(), i))
                        .collect(),
                );
            }
            if start + take < batch.num_rows() {
                self.pending = Some((batch, start + take));
            }
        }
        Ok((!lines.is_empty()).then(|| Chunk {
            lines,
            rows: Rows::Cells(cells),
            bad: Vec::new(),
        }))
    }

    fn fraction(&self) -> Option<f64> {
        (self.total_rows > 0).then(|| self.rows_done as f64 / self.total_rows as f64)
    }
}
