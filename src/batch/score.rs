//! `churn score`: rows from a file or PostgreSQL, scores to a file or a PostgreSQL table.
//!
//! A reading thread cuts the input into blocks; each block is split into parts that are parsed,
//! scored and formatted on every core at once; the results are written in input order. Memory
//! depends on the block size, not on the input. Every row read ends scored, in the rejects file
//! (with its line or row, id, columns and reason), or in another shard, and the job checks that the
//! counts add up. Files are written to a temporary name and renamed at the end; a table is staged
//! and swapped in one transaction; so a failed run never leaves partial output.
use super::input::{self, Block, BlockSource, CellRef, CsvLayout, Numbering};
use super::output::{Output, OutputSpec, ScoredCols};
use super::postgres::{self, PgSource, Query};
use crate::error::{Error, Result};
use crate::io::is_missing_token;
use crate::model::{ChurnModel, RiskTier, RowScratch, sigmoid, top_k};
use crate::schema::{FeatureKind, Value};
use arrow_array::ArrayRef;
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `--shard i/N`: score only the customers whose id hashes to shard i of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::Usage(format!("--shard {s}: expected i/N with 0 <= i < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard of an id: FNV-1a (64-bit) of its UTF-8 bytes, modulo N. Fixed forever, so every
    /// run on every machine splits the same way.
    pub fn of(id: &str, count: u64) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h % count
    }

    /// Whether a row belongs here. A row whose id cannot be read belongs to shard 0, so it is
    /// reported once across all shards.
    fn owns(self, id: Option<&str>) -> bool {
        match id {
            Some(id) => Shard::of(id, self.count) == self.index,
            None => self.index == 0,
        }
    }
}

/// Where rows come from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Postgres { url: String, query: Query },
}

/// Where scores go.
#[derive(Debug, Clone)]
pub enum Sink {
    File(PathBuf),
    Postgres { url: String, table: String },
}

impl Sink {
    pub fn describe(&self) -> String {
        match self {
            Sink::File(p) => p.display().to_string(),
            Sink::Postgres { url, table } => format!("{} table {table}", postgres::redact(url)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScoreJob {
    pub input: Source,
    pub output: Sink,
    /// Rejected rows go here (default: OUTPUT.rejects.csv, or TABLE.rejects.csv for a table;
    /// written only if a row is rejected).
    pub rejects: Option<PathBuf>,
    /// Customer id column (default: the model's training id column, if the input has it).
    pub id: Option<String>,
    pub top_k: usize,
    pub shard: Option<Shard>,
    /// Adds `rank`: 1 = highest probability; equal probabilities share a rank.
    pub rank: bool,
    pub chunk_rows: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScoreSummary {
    pub rows_read: u64,
    pub scored: u64,
    pub rejected: u64,
    /// Rows that belong to other shards (with --shard).
    pub other_shards: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub rejects_file: Option<PathBuf>,
}

/// A rejected row, located within its part.
struct LocalReject {
    line: u64,
    row: u64,
    id: String,
    columns: String,
    reason: String,
}

/// What one part of a block produced.
#[derive(Default)]
pub(crate) struct Part {
    /// Rows seen (records, bad ones included; blank lines are not rows).
    rows: u64,
    /// Lines consumed (CSV).
    lines: u64,
    other_shards: u64,
    tiers: [u64; 3],
    rejects: Vec<LocalReject>,
    /// Scored rows as CSV lines (CSV file or table output).
    pub(crate) csv: Vec<u8>,
    /// Scored rows as columns (Parquet output).
    pub(crate) cols: ScoredCols,
    /// Probabilities of the scored rows (with --rank).
    probs: Vec<f64>,
}

impl Part {
    /// Rows scored in this part.
    pub(crate) fn scored(&self) -> u64 {
        self.tiers.iter().sum()
    }
}

/// Output buffers handed back by the writer for the next parts, so each block does not fault in
/// fresh memory.
#[derive(Default)]
pub(crate) struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    fn take(&self, capacity: usize) -> Vec<u8> {
        let mut v = self.0.lock().unwrap().pop().unwrap_or_default();
        v.clear();
        v.reserve(capacity);
        v
    }

    pub(crate) fn give(&self, v: Vec<u8>) {
        let mut pool = self.0.lock().unwrap();
        if pool.len() < 256 {
            pool.push(v);
        }
    }
}

/// Per-thread buffers reused from row to row.
#[derive(Default)]
struct Scratch {
    row: RowScratch,
    values: Vec<Value<'static>>,
    top: Vec<usize>,
}

/// What does not change while a job runs: the model, the options and the output encoding.
struct Scorer<'m> {
    model: &'m ChurnModel,
    top_k: usize,
    shard: Option<Shard>,
    has_id: bool,
    csv_out: bool,
    keep_probs: bool,
    numbering: Numbering,
    /// Feature names and the model id, ready to paste into CSV.
    csv_names: Vec<Vec<u8>>,
    csv_model: Vec<u8>,
    pool: std::sync::Arc<BufferPool>,
}

pub fn score(model: &ChurnModel, job: &ScoreJob) -> Result<ScoreSummary> {
    let start = Instant::now();
    let features = model.schema().features();
    if job.top_k > features.len() {
        return Err(Error::Usage(format!(
            "--top-k {} is more than the model's {} features",
            job.top_k,
            features.len()
        )));
    }
    let mut source: Box<dyn BlockSource> = match &job.input {
        Source::File(p) => input::open_file(p)?,
        Source::Postgres { url, query } => Box::new(PgSource::open(url, query)?),
    };
    let header = source.header().to_vec();
    let id = match &job.id {
        Some(id) => Some(id.clone()),
        None => model
            .file()
            .training
            .id_column
            .clone()
            .filter(|c| header.contains(c)),
    };
    if job.shard.is_some() && id.is_none() {
        return Err(Error::Usage(
            "--shard needs a customer id column: pass --id COL".into(),
        ));
    }
    let mut columns: Vec<String> = features.iter().map(|f| f.name.clone()).collect();
    if let Some(id) = &id {
        columns.push(id.clone());
    }
    source.select(&columns)?;
    let recycler = source.recycler();
    let numbering = source.numbering();
    let id_name = id.clone().unwrap_or_else(|| numbering.header().into());
    let spec = OutputSpec {
        id_name,
        top_k: job.top_k,
        rank: job.rank,
        model_id: model.id().to_string(),
        feature_names: features.iter().map(|f| f.name.clone()).collect(),
    };
    let output = Output::create(&job.output, &spec)?;
    let csv_out = output.wants_csv();
    // Scored blocks are written on their own thread while the next block is scored.
    let (written, to_write) = std::sync::mpsc::sync_channel::<Vec<Part>>(1);
    let pool = std::sync::Arc::new(BufferPool::default());
    let give_back = pool.clone();
    let write_thread = std::thread::spawn(move || -> Result<Output> {
        let mut output = output;
        for parts in to_write {
            output.write(parts, &give_back)?;
        }
        Ok(output)
    });
    let rejects_path = job.rejects.clone().unwrap_or_else(|| match &job.output {
        Sink::File(p) => {
            let mut p = p.clone().into_os_string();
            p.push(".rejects.csv");
            PathBuf::from(p)
        }
        Sink::Postgres { table, .. } => PathBuf::from(format!("{table}.rejects.csv")),
    });
    let scorer = Scorer::new(model, job, id.is_some(), csv_out, numbering, pool);
    let mut rejects: Option<csv::Writer<std::fs::File>> = None;
    let mut sum = ScoreSummary::default();
    let mut progress = Progress::new("rows");
    let mut probs: Vec<f64> = Vec::new();
    let mut next_line = source.first_number();
    let mut next_row = 1u64;
    let parts = rayon::current_num_threads() * 4;

    // The next block is read on its own thread while the current one is scored and written.
    let (rx, read_thread) = input::read_ahead(source, job.chunk_rows);
    for msg in rx {
        let (block, fraction) = msg?;
        let results: Vec<Part> = match &block {
            Block::Csv { bytes, layout } => {
                let ranges = super::csv_records::split_ranges(bytes, parts);
                // Without an id column a row is named by its line (or row) number, so each part
                // must know where it starts: count first.
                let bases: Vec<Option<(u64, u64)>> = if id.is_some() {
                    vec![None; ranges.len()]
                } else {
                    let counts: Vec<(u64, u64)> = ranges
                        .par_iter()
                        .map(|&(a, b)| super::csv_records::count_records(&bytes[a..b]))
                        .collect();
                    let (mut line, mut row) = (next_line, next_row);
                    counts
                        .iter()
                        .map(|&(lines, rows)| {
                            let base = Some((line, row));
                            line += lines;
                            row += rows;
                            base
                        })
                        .collect()
                };
                ranges
                    .into_par_iter()
                    .zip(bases)
                    .map_init(Scratch::default, |s, ((a, b), base)| {
                        scorer.csv_part(&bytes[a..b], layout, base, s)
                    })
                    .collect()
            }
            Block::Arrow { columns, rows } => input::arrow_ranges(*rows, parts)
                .into_par_iter()
                .map_init(Scratch::default, |s, (a, b)| {
                    scorer.arrow_part(columns, a, b, next_row + a as u64, s)
                })
                .collect(),
        };
        if let (Block::Csv { bytes, .. }, Some(r)) = (block, &recycler) {
            let _ = r.send(bytes);
        }
        for part in &results {
            for r in &part.rejects {
                let w = rejects_writer(&mut rejects, &rejects_path, numbering)?;
                let at = match numbering {
                    Numbering::Line => next_line + r.line,
                    Numbering::Row => next_row + r.row,
                };
                w.write_record([at.to_string().as_str(), &r.id, &r.columns, &r.reason])
                    .map_err(|e| Error::data(&rejects_path, e.to_string()))?;
            }
            next_line += part.lines;
            next_row += part.rows;
            sum.rows_read += part.rows;
            sum.rejected += part.rejects.len() as u64;
            sum.other_shards += part.other_shards;
            sum.high += part.tiers[0];
            sum.medium += part.tiers[1];
            sum.low += part.tiers[2];
            sum.scored += part.scored();
            if job.rank {
                probs.extend_from_slice(&part.probs);
            }
        }
        if written.send(results).is_err() {
            break; // the writer failed: its error is returned below
        }
        progress.update(sum.rows_read, fraction);
    }
    drop(written);
    let output = write_thread.join().expect("writer thread")?;
    read_thread.join().expect("reader thread");
    progress.finish();
    if sum.scored + sum.rejected + sum.other_shards != sum.rows_read {
        return Err(Error::Usage(format!(
            "internal check failed: {} rows read but {} scored + {} rejected + {} in other shards; nothing was written",
            sum.rows_read, sum.scored, sum.rejected, sum.other_shards
        )));
    }
    if let Some(mut w) = rejects {
        w.flush().map_err(|e| Error::io(&rejects_path, e))?;
        sum.rejects_file = Some(rejects_path);
    }
    probs.sort_unstable_by(|a, b| b.total_cmp(a));
    let written = output.finish(&probs)?;
    if written != sum.scored {
        return Err(Error::Usage(format!(
            "internal check failed: {} rows scored but {written} written",
            sum.scored
        )));
    }
    sum.seconds = start.elapsed().as_secs_f64();
    sum.rows_per_second = sum.rows_read as f64 / sum.seconds.max(1e-9);
    Ok(sum)
}

impl<'m> Scorer<'m> {
    fn new(
        model: &'m ChurnModel,
        job: &ScoreJob,
        has_id: bool,
        csv_out: bool,
        numbering: Numbering,
        pool: std::sync::Arc<BufferPool>,
    ) -> Self {
        Scorer {
            pool,
            model,
            numbering,
            top_k: job.top_k,
            shard: job.shard,
            has_id,
            csv_out,
            keep_probs: job.rank,
            csv_names: model
                .schema()
                .features()
                .iter()
                .map(|f| csv_field(f.name.as_bytes()))
                .collect(),
            csv_model: csv_field(model.id().as_bytes()),
        }
    }

    /// Parses and scores one part of a CSV block. `base` is the global (line, row) of the part's
    /// first row, needed only when rows are named by number.
    fn csv_part<'b>(
        &self,
        bytes: &'b [u8],
        layout: &CsvLayout,
        base: Option<(u64, u64)>,
        s: &mut Scratch,
    ) -> Part {
        use super::csv_records::{Record, RecordParser};
        let mut part = Part::default();
        if self.csv_out {
            // Scores take about as many bytes as the features they came from.
            part.csv = self.pool.take(bytes.len() + bytes.len() / 4);
        }
        let mut parser = RecordParser::new(bytes);
        let mut fields: Vec<Cow<'b, [u8]>> = Vec::with_capacity(layout.width);
        let mut spare_cells: Vec<CellRef<'static>> = Vec::with_capacity(layout.idx.len());
        let id_at = layout.idx.last().copied().filter(|_| self.has_id);
        // Validated once for the whole part, so a field is checked only when the part is not.
        let text = std::str::from_utf8(bytes).ok();
        while let Some((line, rec)) = parser.next_record(&mut fields) {
            let number = self.number(base, line, part.rows);
            let mut cells = recycle_cells(std::mem::take(&mut spare_cells));
            let why = match rec {
                Record::Blank => continue,
                Record::Malformed(why) => Some((String::new(), why.to_string())),
                Record::Fields if fields.len() != layout.width => Some((
                    String::new(),
                    format!(
                        "ragged row: {} fields, expected {}",
                        fields.len(),
                        layout.width
                    ),
                )),
                Record::Fields => {
                    let mut bad = None;
                    for (k, &f) in layout.idx.iter().enumerate() {
                        match as_str(text, bytes, &fields[f]) {
                            Ok(t) => cells.push(CellRef::Text(t)),
                            Err(_) => {
                                let name = layout.names[k].clone();
                                bad = Some((name.clone(), format!("{name}: invalid UTF-8")));
                                break;
                            }
                        }
                    }
                    bad
                }
            };
            match why {
                None => {
                    self.score_cells(&cells, line, number, &mut part, s);
                    spare_cells = recycle_cells(cells);
                }
                Some((columns, reason)) => {
                    // The id, when it can be read, names the row and decides its shard.
                    let id = id_at
                        .and_then(|i| fields.get(i))
                        .and_then(|f| std::str::from_utf8(f).ok())
                        .map(|t| t.trim().to_string());
                    let row = part.rows;
                    part.rows += 1;
                    if self.shard.is_some_and(|sh| !sh.owns(id.as_deref())) {
                        part.other_shards += 1;
                        continue;
                    }
                    part.rejects.push(LocalReject {
                        line,
                        row,
                        id: id.unwrap_or_default(),
                        columns,
                        reason,
                    });
                }
            }
        }
        part.lines = parser.lines;
        part
    }

    fn arrow_part(
        &self,
        columns: &[ArrayRef],
        a: usize,
        b: usize,
        base_row: u64,
        s: &mut Scratch,
    ) -> Part {
        let mut part = Part::default();
        let views: Vec<input::ColumnView<'_>> =
            columns.iter().map(input::ColumnView::new).collect();
        let mut cells = Vec::with_capacity(columns.len());
        for i in a..b {
            cells.clear();
            cells.extend(views.iter().map(|c| c.get(i)));
            let row = part.rows;
            self.score_cells(&cells, 0, base_row + row, &mut part, s);
        }
        part
    }

    /// The number naming a row: its line or row, globally.
    fn number(&self, base: Option<(u64, u64)>, line: u64, row: u64) -> u64 {
        match (base, self.numbering) {
            (Some((l, _)), Numbering::Line) => l + line,
            (Some((_, r)), Numbering::Row) => r + row,
            (None, _) => 0,
        }
    }

    /// Scores one row into `part`: `cells` hold the features in schema order, then the id when
    /// there is an id column; `number` names the row when there is not.
    fn score_cells(
        &self,
        cells: &[CellRef<'_>],
        line: u64,
        number: u64,
        part: &mut Part,
        s: &mut Scratch,
    ) {
        let features = self.model.schema().features();
        let row = part.rows;
        part.rows += 1;
        let id: Cow<'_, str> = if self.has_id {
            match cells[features.len()] {
                CellRef::Null => Cow::Borrowed(""),
                CellRef::Number(x) => Cow::Owned(x.to_string()),
                CellRef::Text(t) => Cow::Borrowed(t.trim()),
            }
        } else {
            Cow::Owned(number.to_string())
        };
        if let Some(shard) = self.shard
            && !shard.owns(Some(&id))
        {
            part.other_shards += 1;
            return;
        }
        // Numbers in a categorical column (typed input) are matched as their text.
        let formatted: Vec<String> = cells[..features.len()]
            .iter()
            .zip(features)
            .filter_map(|(c, f)| match (c, &f.kind) {
                (CellRef::Number(x), FeatureKind::Categorical(_)) => Some(x.to_string()),
                _ => None,
            })
            .collect();
        let mut formatted = formatted.iter();
        let mut values = recycle(std::mem::take(&mut s.values));
        values.extend(
            cells
                .iter()
                .zip(features)
                .map(|(c, f)| match (*c, &f.kind) {
                    (CellRef::Null, _) => Value::Missing,
                    (CellRef::Number(x), FeatureKind::Numeric(_)) => Value::Number(x),
                    (CellRef::Number(_), FeatureKind::Categorical(_)) => {
                        Value::Text(formatted.next().expect("formatted above"))
                    }
                    // A number first: "NaN" or "inf" parse, and are then refused as non-finite (a value,
                    // not a missing cell); blanks and NA-style tokens are missing.
                    (CellRef::Text(t), FeatureKind::Numeric(_)) => {
                        let t = trim(t);
                        match t.parse::<f64>() {
                            Ok(x) => Value::Number(x),
                            Err(_) if is_missing_token(t) => Value::Missing,
                            Err(_) => Value::Text(t),
                        }
                    }
                    (CellRef::Text(t), FeatureKind::Categorical(_)) => {
                        let t = trim(t);
                        // Every missing token is short: longer text skips the comparisons.
                        if t.len() <= 4 && is_missing_token(t) {
                            Value::Missing
                        } else {
                            Value::Text(t)
                        }
                    }
                }),
        );
        let scored = self.model.contributions_into(&values, false, &mut s.row);
        s.values = recycle(values);
        let Some(logit) = scored else {
            part.rejects.push(LocalReject {
                line,
                row,
                id: if self.has_id {
                    id.into_owned()
                } else {
                    String::new()
                },
                columns: s
                    .row
                    .violations
                    .iter()
                    .map(|v| v.field.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                reason: s
                    .row
                    .violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
            return;
        };
        let p = sigmoid(logit);
        let tier = self.model.tier(p);
        part.tiers[match tier {
            RiskTier::High => 0,
            RiskTier::Medium => 1,
            RiskTier::Low => 2,
        }] += 1;
        if self.keep_probs {
            part.probs.push(p);
        }
        top_k(&s.row.contributions, self.top_k, &mut s.top);
        let reasons = &s.top;
        if self.csv_out {
            let out = &mut part.csv;
            push_csv_field(out, id.as_bytes());
            out.push(b',');
            push_f64(out, p);
            out.push(b',');
            out.extend_from_slice(tier.as_str().as_bytes());
            for k in 0..self.top_k {
                out.push(b',');
                if let Some(&i) = reasons.get(k) {
                    out.extend_from_slice(&self.csv_names[i]);
                    out.push(b',');
                    push_f64(out, s.row.contributions[i]);
                } else {
                    out.push(b',');
                }
            }
            out.push(b',');
            out.extend_from_slice(&self.csv_model);
            out.push(b'\n');
        } else {
            let c = &mut part.cols;
            c.ids.push_str(&id);
            c.id_ends.push(c.ids.len());
            c.p.push(p);
            c.tier.push(tier);
            for k in 0..self.top_k {
                c.reasons
                    .push(reasons.get(k).map(|&i| (i as u32, s.row.contributions[i])));
            }
        }
    }
}

/// `t` without surrounding whitespace; the common case, no whitespace at either end, is checked
/// on two bytes.
#[inline]
fn trim(t: &str) -> &str {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_whitespace() || *b >= 0x80);
    if edge(t.as_bytes().first()) || edge(t.as_bytes().last()) {
        t.trim()
    } else {
        t
    }
}

/// An empty vector of values reusing `v`'s allocation, free of the borrows `v` held.
fn recycle<'a>(mut v: Vec<Value<'_>>) -> Vec<Value<'a>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// A field as text: a slice of the part's text when the part is valid UTF-8 (fields are cut at
/// ASCII bytes, so each is too), otherwise checked on its own.
#[inline]
fn as_str<'t>(
    text: Option<&'t str>,
    bytes: &'t [u8],
    field: &'t Cow<'t, [u8]>,
) -> std::result::Result<&'t str, std::str::Utf8Error> {
    match (text, field) {
        (Some(text), Cow::Borrowed(f)) => {
            let at = f.as_ptr() as usize - bytes.as_ptr() as usize;
            Ok(&text[at..at + f.len()])
        }
        _ => std::str::from_utf8(field),
    }
}

/// An empty vector of cells reusing `v`'s allocation, free of the borrows `v` held.
fn recycle_cells<'a>(mut v: Vec<CellRef<'_>>) -> Vec<CellRef<'a>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// Shortest round-trip digits of a float.
fn push_f64(out: &mut Vec<u8>, x: f64) {
    let mut b = ryu::Buffer::new();
    out.extend_from_slice(b.format(x).as_bytes());
}

/// Appends a CSV field, quoted when it holds a comma, quote, line break or edge space.
pub(crate) fn push_csv_field(out: &mut Vec<u8>, s: &[u8]) {
    let needs = s
        .iter()
        .any(|&c| c == b',' || c == b'"' || c == b'\n' || c == b'\r')
        || s.first().is_some_and(|c| c.is_ascii_whitespace())
        || s.last().is_some_and(|c| c.is_ascii_whitespace());
    if !needs {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    for &c in s {
        if c == b'"' {
            out.push(b'"');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// A CSV field: quoted when it holds a comma, quote, line break or edge space.
pub(crate) fn csv_field(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    push_csv_field(&mut v, s);
    v
}

fn rejects_writer<'a>(
    w: &'a mut Option<csv::Writer<std::fs::File>>,
    path: &Path,
    numbering: Numbering,
) -> Result<&'a mut csv::Writer<std::fs::File>> {
    if w.is_none() {
        let mut n = csv::Writer::from_path(path).map_err(|e| Error::data(path, e.to_string()))?;
        n.write_record([numbering.header(), "id", "columns", "reason"])
            .map_err(|e| Error::data(path, e.to_string()))?;
        *w = Some(n);
    }
    Ok(w.as_mut().unwrap())
}

/// A progress line on a terminal (rows, rows/s, ETA), plain log lines every 10 s otherwise.
pub(crate) struct Progress {
    /// What is counted ("rows", "events").
    what: &'static str,
    start: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    pub(crate) fn new(what: &'static str) -> Self {
        let now = Instant::now();
        Progress {
            what,
            start: now,
            last: now,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub(crate) fn update(&mut self, rows: u64, fraction: Option<f64>) {
        let every = if self.tty { 0.2 } else { 10.0 };
        if self.last.elapsed().as_secs_f64() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64();
        let rate = rows as f64 / secs.max(1e-9);
        let eta = fraction
            .filter(|f| *f > 0.0)
            .map(|f| {
                format!(
                    ", {:.0}% done, ETA {:.0} s",
                    100.0 * f,
                    secs * (1.0 - f) / f
                )
            })
            .unwrap_or_default();
        if self.tty {
            let what = self.what;
            eprint!("\r{rows} {what}, {rate:.0} {what}/s{eta}    ");
            let _ = std::io::stderr().flush();
        } else {
            let what = self.what;
            tracing::info!("{rows} {what}, {rate:.0} {what}/s{eta}");
        }
    }

    pub(crate) fn finish(&self) {
        if self.tty && self.start.elapsed().as_secs_f64() >= 0.2 {
            eprintln!();
        }
    }
}
