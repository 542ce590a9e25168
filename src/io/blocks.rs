//! Batch input: rows arrive in blocks, so memory depends on the block size and not on the input
//! size. A CSV block is raw bytes cut at a record boundary, parsed later on every core at once; a
//! Parquet block is Arrow arrays, read without copying a cell. CSV comes from a file, a pipe, or a
//! PostgreSQL `COPY ... TO STDOUT (FORMAT csv)` stream.
use super::csv_records::{Record, RecordParser, next_boundary};
use super::postgres::{PgSource, Query};
use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, PrimitiveArray, cast::AsArray, types::*};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How rejected rows are located in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// The physical line of a CSV file where the record starts (the header is line 1).
    Line,
    /// The row's position in the input, from 1 (Parquet, a query result).
    Row,
}

impl Numbering {
    pub fn header(self) -> &'static str {
        match self {
            Numbering::Line => "line",
            Numbering::Row => "row",
        }
    }
}

/// One cell as the scorer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Number(f64),
    Text(&'a str),
}

/// Where the requested columns sit in each CSV record.
#[derive(Debug)]
pub struct CsvLayout {
    /// The field separator (comma, or what the header line or `--delimiter` says).
    pub delimiter: u8,
    /// Fields per record.
    pub width: usize,
    /// `idx[k]` is the field of requested column k.
    pub idx: Vec<usize>,
    pub names: Vec<String>,
}

/// A block of rows.
pub enum Block {
    /// Whole CSV records.
    Csv {
        bytes: Vec<u8>,
        layout: Arc<CsvLayout>,
    },
    /// The requested columns, in request order.
    Arrow { columns: Vec<ArrayRef>, rows: usize },
}

/// A source of blocks.
pub trait BlockSource: Send {
    /// The next block of about `rows` rows, or None at the end.
    fn next_block(&mut self, rows: usize) -> Result<Option<Block>>;
    /// Share of the input consumed so far, when the size is known (for progress and ETA).
    fn fraction(&self) -> Option<f64>;
    /// The input's column names.
    fn header(&self) -> &[String];
    fn numbering(&self) -> Numbering;
    /// The number given to the first row: line 2 for CSV (after the header), row 1 otherwise.
    fn first_number(&self) -> u64;
    /// Selects the columns every block carries, in this order; each must exist.
    fn select(&mut self, columns: &[String]) -> Result<()>;
    /// Lets typed date and timestamp columns through (Parquet); their cells are read with
    /// the caller's own date reader.
    fn allow_dates(&mut self) {}
    /// Where the scorer can send back the bytes of finished blocks for reuse (CSV).
    fn recycler(&mut self) -> Option<std::sync::mpsc::Sender<Vec<u8>>> {
        None
    }
}

/// A block and the share of the input read so far.
pub type BlockMsg = Result<(Block, Option<f64>)>;

/// Reads blocks of about `rows` rows on their own thread, one block ahead of the consumer, so
/// reading overlaps the work on the previous block. The thread ends at the end of the input, at
/// the first error (sent on), or when the receiver is dropped.
pub fn read_ahead(
    mut source: Box<dyn BlockSource>,
    rows: usize,
) -> (
    std::sync::mpsc::Receiver<BlockMsg>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<BlockMsg>(1);
    let thread = std::thread::spawn(move || {
        loop {
            let msg = match source.next_block(rows) {
                Ok(Some(b)) => Ok((b, source.fraction())),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            let stop = msg.is_err();
            if tx.send(msg).is_err() || stop {
                break;
            }
        }
    });
    (rx, thread)
}

/// Row ranges splitting an Arrow block of `rows` rows into about `parts` parts (at least 1024
/// rows each).
pub fn arrow_ranges(rows: usize, parts: usize) -> Vec<(usize, usize)> {
    let step = rows.div_ceil(parts.max(1)).max(1024);
    (0..rows)
        .step_by(step)
        .map(|a| (a, (a + step).min(rows)))
        .collect()
}

/// Opens a CSV (also gzip-compressed, `.gz`) or Parquet file (by extension). A CSV file's field
/// delimiter is `delimiter`, or else found from its header line.
pub fn open_file(path: &Path, delimiter: Option<u8>) -> Result<Box<dyn BlockSource>> {
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::data(path, "no such file")
        } else {
            Error::io(path, e)
        }
    })?;
    match crate::io::TableFormat::of(path) {
        crate::io::TableFormat::Csv if path.extension().is_some_and(|e| e == "gz") => {
            // Gzip-compressed CSV (event logs often are): decompressed as it streams.
            let rdr =
                flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
            Ok(Box::new(CsvSource::new(
                path.to_path_buf(),
                rdr,
                None,
                Numbering::Line,
                delimiter,
            )?))
        }
        crate::io::TableFormat::Csv => {
            let total = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            Ok(Box::new(CsvSource::new(
                path.to_path_buf(),
                file,
                total,
                Numbering::Line,
                delimiter,
            )?))
        }
        crate::io::TableFormat::Parquet => Ok(Box::new(ParquetSource::open(path, file)?)),
    }
}

fn positions(name: &Path, header: &[String], columns: &[String]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|c| {
            header.iter().position(|h| h == c).ok_or_else(|| {
                Error::column(
                    name,
                    c,
                    format!("no such column; the columns are: {}", header.join(", ")),
                )
            })
        })
        .collect()
}

/// CSV from any byte stream: cut into blocks of whole records on the reading thread; parsing is
/// left to the scorer's threads.
pub struct CsvSource {
    name: PathBuf,
    rdr: Box<dyn Read + Send>,
    /// Bytes read but not yet handed out (always starting at a record boundary).
    buf: Vec<u8>,
    eof: bool,
    header: Vec<String>,
    layout: Arc<CsvLayout>,
    total: Option<u64>,
    consumed: u64,
    numbering: Numbering,
    delimiter: u8,
    /// Buffers of blocks already scored, reused for the next blocks.
    spare: Vec<Vec<u8>>,
    returned: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
}

impl CsvSource {
    /// Reads the header. Fields are separated by `delimiter`, or else by the delimiter found in
    /// the header line (comma, semicolon, tab or pipe).
    pub fn new(
        name: PathBuf,
        rdr: impl Read + Send + 'static,
        total: Option<u64>,
        numbering: Numbering,
        delimiter: Option<u8>,
    ) -> Result<Self> {
        let mut s = CsvSource {
            name,
            rdr: Box::new(rdr),
            buf: Vec::new(),
            eof: false,
            header: Vec::new(),
            layout: Arc::new(CsvLayout {
                delimiter: b',',
                width: 0,
                idx: Vec::new(),
                names: Vec::new(),
            }),
            total,
            consumed: 0,
            numbering,
            delimiter: b',',
            spare: Vec::new(),
            returned: None,
        };
        // The header: the first record.
        let end = loop {
            if let Some(end) = next_boundary(&s.buf, 0) {
                break end;
            }
            if s.eof {
                break s.buf.len();
            }
            s.fill(s.buf.len() + (64 << 10))?;
        };
        s.delimiter =
            delimiter.unwrap_or_else(|| super::csv_records::sniff_delimiter(&s.buf[..end]));
        let mut parser = RecordParser::with_delimiter(&s.buf[..end], s.delimiter);
        let mut fields = Vec::new();
        let header = match parser.next_record(&mut fields) {
            Some((_, Record::Fields)) => fields
                .iter()
                .map(|f| {
                    String::from_utf8_lossy(f)
                        .trim_start_matches('\u{feff}')
                        .trim()
                        .to_string()
                })
                .collect::<Vec<_>>(),
            Some((_, Record::Malformed(why))) => {
                return Err(Error::cell(&s.name, 1, "header", why));
            }
            _ => Vec::new(),
        };
        if header.iter().all(String::is_empty) {
            return Err(Error::data(&s.name, "empty input: expected a header line"));
        }
        s.header = header;
        s.buf.drain(..end);
        s.consumed = end as u64;
        Ok(s)
    }

    /// Reads until the buffer holds `want` bytes or the stream ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.buf.len() >= want || self.eof {
            return Ok(());
        }
        let need = (want - self.buf.len()) as u64;
        // `read_to_end` fills spare capacity without zeroing it first.
        self.buf.reserve(need as usize);
        let got = (&mut self.rdr)
            .take(need)
            .read_to_end(&mut self.buf)
            .map_err(|e| Error::io(&self.name, e))?;
        if (got as u64) < need {
            self.eof = true;
        }
        Ok(())
    }

    /// Offset just past the `rows`-th record boundary, if the buffer holds that many.
    fn cut_after(&self, rows: usize) -> Option<usize> {
        let b = &self.buf;
        if memchr::memchr(b'"', b).is_none() {
            return memchr::memchr_iter(b'\n', b).nth(rows - 1).map(|i| i + 1);
        }
        let mut at = 0;
        for _ in 0..rows {
            at = next_boundary(b, at)?;
        }
        Some(at)
    }
}

impl BlockSource for CsvSource {
    fn next_block(&mut self, rows: usize) -> Result<Option<Block>> {
        let rows = rows.max(1);
        if let Some(r) = &self.returned {
            self.spare.extend(r.try_iter().take(4));
        }
        let mut guess = (rows * 256).max(1 << 16);
        let cut = loop {
            self.fill(guess)?;
            if let Some(cut) = self.cut_after(rows) {
                break cut;
            }
            if self.eof {
                break self.buf.len();
            }
            guess = self.buf.len() * 2;
        };
        if cut == 0 {
            return Ok(None);
        }
        let mut rest = self.spare.pop().unwrap_or_default();
        rest.clear();
        rest.extend_from_slice(&self.buf[cut..]);
        self.buf.truncate(cut);
        let bytes = std::mem::replace(&mut self.buf, rest);
        self.consumed += bytes.len() as u64;
        Ok(Some(Block::Csv {
            bytes,
            layout: self.layout.clone(),
        }))
    }

    fn fraction(&self) -> Option<f64> {
        self.total
            .filter(|t| *t > 0)
            .map(|t| (self.consumed as f64 / t as f64).min(1.0))
    }

    fn header(&self) -> &[String] {
        &self.header
    }

    fn numbering(&self) -> Numbering {
        self.numbering
    }

    fn first_number(&self) -> u64 {
        match self.numbering {
            Numbering::Line => 2,
            Numbering::Row => 1,
        }
    }

    fn recycler(&mut self) -> Option<std::sync::mpsc::Sender<Vec<u8>>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.returned = Some(rx);
        Some(tx)
    }

    fn select(&mut self, columns: &[String]) -> Result<()> {
        self.layout = Arc::new(CsvLayout {
            delimiter: self.delimiter,
            width: self.header.len(),
            idx: positions(&self.name, &self.header, columns)?,
            names: columns.to_vec(),
        });
        Ok(())
    }
}

struct ParquetSource {
    name: PathBuf,
    builder: Option<ParquetRecordBatchReaderBuilder<std::fs::File>>,
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    header: Vec<String>,
    /// For each requested column, its position in the projected batches.
    order: Vec<usize>,
    names: Vec<String>,
    rows_done: u64,
    total_rows: u64,
    dates: bool,
}

impl ParquetSource {
    fn open(path: &Path, file: std::fs::File) -> Result<Self> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::data(path, format!("not a readable Parquet file: {e}")))?;
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        Ok(ParquetSource {
            name: path.to_path_buf(),
            builder: Some(builder),
            reader: None,
            header,
            order: Vec::new(),
            names: Vec::new(),
            rows_done: 0,
            total_rows,
            dates: false,
        })
    }
}

impl BlockSource for ParquetSource {
    fn next_block(&mut self, rows: usize) -> Result<Option<Block>> {
        if let Some(builder) = self.builder.take() {
            let mut wanted: Vec<usize> = positions(&self.name, &self.header, &self.names)?;
            for (&c, name) in wanted.iter().zip(&self.names) {
                let dt = builder.schema().field(c).data_type();
                let temporal = self.dates && is_temporal(dt);
                if !(crate::io::parquet_reader::supported(dt) || temporal) {
                    return Err(Error::column(
                        &self.name,
                        name,
                        format!("unsupported Parquet type {dt}"),
                    ));
                }
            }
            // The projection yields columns in file order; remember where each request went.
            let requested = wanted.clone();
            wanted.sort_unstable();
            wanted.dedup();
            self.order = requested
                .iter()
                .map(|c| wanted.binary_search(c).unwrap())
                .collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
            self.reader = Some(
                builder
                    .with_projection(mask)
                    .with_batch_size(rows.max(1))
                    .build()
                    .map_err(|e| Error::data(&self.name, e.to_string()))?,
            );
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        match reader.next() {
            None => Ok(None),
            Some(b) => {
                let batch = b.map_err(|e| Error::data(&self.name, e.to_string()))?;
                self.rows_done += batch.num_rows() as u64;
                Ok(Some(Block::Arrow {
                    columns: self
                        .order
                        .iter()
                        .map(|&i| batch.column(i).clone())
                        .collect(),
                    rows: batch.num_rows(),
                }))
            }
        }
    }

    fn fraction(&self) -> Option<f64> {
        (self.total_rows > 0).then(|| self.rows_done as f64 / self.total_rows as f64)
    }

    fn header(&self) -> &[String] {
        &self.header
    }

    fn numbering(&self) -> Numbering {
        Numbering::Row
    }

    fn first_number(&self) -> u64 {
        1
    }

    fn allow_dates(&mut self) {
        self.dates = true;
    }

    fn select(&mut self, columns: &[String]) -> Result<()> {
        positions(&self.name, &self.header, columns)?;
        self.names = columns.to_vec();
        Ok(())
    }
}

/// An Arrow column downcast once, so reading a cell is a match on a known variant instead of a
/// type dispatch and downcast per cell. Types are those
/// [`crate::io::parquet_reader::supported`] accepts.
pub enum ColumnView<'a> {
    F64(&'a PrimitiveArray<Float64Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    I8(&'a PrimitiveArray<Int8Type>),
    I16(&'a PrimitiveArray<Int16Type>),
    I32(&'a PrimitiveArray<Int32Type>),
    I64(&'a PrimitiveArray<Int64Type>),
    U8(&'a PrimitiveArray<UInt8Type>),
    U16(&'a PrimitiveArray<UInt16Type>),
    U32(&'a PrimitiveArray<UInt32Type>),
    U64(&'a PrimitiveArray<UInt64Type>),
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Bool(&'a arrow_array::BooleanArray),
    Other,
}

impl<'a> ColumnView<'a> {
    pub fn new(a: &'a ArrayRef) -> Self {
        match a.data_type() {
            DataType::Float64 => ColumnView::F64(a.as_primitive()),
            DataType::Float32 => ColumnView::F32(a.as_primitive()),
            DataType::Int8 => ColumnView::I8(a.as_primitive()),
            DataType::Int16 => ColumnView::I16(a.as_primitive()),
            DataType::Int32 => ColumnView::I32(a.as_primitive()),
            DataType::Int64 => ColumnView::I64(a.as_primitive()),
            DataType::UInt8 => ColumnView::U8(a.as_primitive()),
            DataType::UInt16 => ColumnView::U16(a.as_primitive()),
            DataType::UInt32 => ColumnView::U32(a.as_primitive()),
            DataType::UInt64 => ColumnView::U64(a.as_primitive()),
            DataType::Utf8 => ColumnView::Utf8(a.as_string()),
            DataType::LargeUtf8 => ColumnView::LargeUtf8(a.as_string()),
            DataType::Utf8View => ColumnView::Utf8View(a.as_string_view()),
            DataType::Boolean => ColumnView::Bool(a.as_boolean()),
            _ => ColumnView::Other,
        }
    }

    /// Cell `i`.
    #[inline]
    pub fn get(&self, i: usize) -> CellRef<'a> {
        macro_rules! num {
            ($a:expr) => {
                if $a.is_null(i) {
                    CellRef::Null
                } else {
                    CellRef::Number($a.value(i) as f64)
                }
            };
        }
        macro_rules! text {
            ($a:expr) => {
                if $a.is_null(i) {
                    CellRef::Null
                } else {
                    CellRef::Text($a.value(i))
                }
            };
        }
        match self {
            ColumnView::F64(a) => num!(a),
            ColumnView::F32(a) => num!(a),
            ColumnView::I8(a) => num!(a),
            ColumnView::I16(a) => num!(a),
            ColumnView::I32(a) => num!(a),
            ColumnView::I64(a) => num!(a),
            ColumnView::U8(a) => num!(a),
            ColumnView::U16(a) => num!(a),
            ColumnView::U32(a) => num!(a),
            ColumnView::U64(a) => num!(a),
            ColumnView::Utf8(a) => text!(a),
            ColumnView::LargeUtf8(a) => text!(a),
            ColumnView::Utf8View(a) => text!(a),
            ColumnView::Bool(a) => {
                if a.is_null(i) {
                    CellRef::Null
                } else if a.value(i) {
                    CellRef::Text("true")
                } else {
                    CellRef::Text("false")
                }
            }
            ColumnView::Other => CellRef::Null,
        }
    }
}

/// Whether an Arrow type is a date or timestamp (let through by [`BlockSource::allow_dates`]).
pub fn is_temporal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    )
}

/// Where rows come from: a file (CSV, gzip CSV, Parquet) or a PostgreSQL query.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Postgres { url: String, query: Query },
}

impl Source {
    /// The block source, and the name it goes by in messages (a URL without its password). A CSV
    /// file's delimiter is `delimiter`, or else found from its header line.
    pub fn open(&self, delimiter: Option<u8>) -> Result<(Box<dyn BlockSource>, PathBuf)> {
        match self {
            Source::File(p) => Ok((open_file(p, delimiter)?, p.clone())),
            Source::Postgres { url, query } => Ok((
                Box::new(PgSource::open(url, query)?),
                PathBuf::from(super::postgres::redact(url)),
            )),
        }
    }

    /// The name it goes by in messages (a URL without its password).
    pub fn name(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Postgres { url, .. } => PathBuf::from(super::postgres::redact(url)),
        }
    }
}
