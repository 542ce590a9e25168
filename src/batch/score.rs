//! `churn score` on files: CSV or Parquet in, CSV or Parquet out. Rows stream in chunks; each chunk
//! is scored across all cores and written in input order, so memory depends on the chunk size, not
//! the file. Every row read ends scored or in the rejects file with its line and reason; the job
//! checks that the counts add up. Output is written to a temporary file and renamed at the end, so
//! a failed run leaves no partial output.
use super::input::{self, CellRef, Chunk, Rows};
use crate::error::{Error, Result};
use crate::io::{TableFormat, is_missing_token};
use crate::model::{ChurnModel, RiskTier, RowScratch, sigmoid, top_k};
use crate::schema::{FeatureKind, Value};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use rayon::prelude::*;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
}

#[derive(Debug, Clone)]
pub struct ScoreJob {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Rejected rows go here (default: OUTPUT.rejects.csv, written only if a row is rejected).
    pub rejects: Option<PathBuf>,
    /// Customer id column (default: the model's training id column, if the input has it).
    pub id: Option<String>,
    pub top_k: usize,
    pub shard: Option<Shard>,
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

struct Scored {
    id: String,
    p: f64,
    tier: RiskTier,
    reasons: Vec<(usize, f64)>,
}

enum Outcome {
    Scored(Scored),
    Rejected {
        line: u64,
        id: String,
        columns: String,
        reason: String,
    },
    OtherShard,
}

pub fn score_file(model: &ChurnModel, job: &ScoreJob) -> Result<ScoreSummary> {
    let start = Instant::now();
    let features = model.schema().features();
    if job.top_k > features.len() {
        return Err(Error::Usage(format!(
            "--top-k {} is more than the model's {} features",
            job.top_k,
            features.len()
        )));
    }
    let header = crate::io::read_header(&job.input)?;
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
    let mut reader = input::open(&job.input, &columns)?;
    let id_name = id.clone().unwrap_or_else(|| "line".into());
    let mut writer = Writer::create(&job.output, &id_name, job.top_k, model)?;
    let rejects_path = job.rejects.clone().unwrap_or_else(|| {
        let mut p = job.output.clone().into_os_string();
        p.push(".rejects.csv");
        PathBuf::from(p)
    });
    let mut rejects: Option<csv::Writer<std::fs::File>> = None;
    let mut sum = ScoreSummary::default();
    let mut progress = Progress::new();

    // The next chunk is read on its own thread while the current one is scored and written.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Chunk, Option<f64>)>>(1);
    let chunk_rows = job.chunk_rows;
    let read_thread = std::thread::spawn(move || {
        loop {
            let next = reader
                .next_chunk(chunk_rows)
                .map(|c| c.map(|c| (c, reader.fraction())));
            let stop = !matches!(next, Ok(Some(_)));
            let msg = match next {
                Ok(Some(c)) => Ok(c),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if tx.send(msg).is_err() || stop {
                break;
            }
        }
    });
    for msg in rx {
        let (chunk, fraction) = msg?;
        let Chunk { lines, rows, bad } = chunk;
        sum.rows_read += (lines.len() + bad.len()) as u64;
        let outcomes: Vec<Outcome> = lines
            .par_iter()
            .enumerate()
            .with_min_len(512)
            .map_init(RowScratch::default, |s, (i, line)| {
                score_row(model, job, id.is_some(), *line, &rows, i, s)
            })
            .collect();
        for b in bad {
            let w = rejects_writer(&mut rejects, &rejects_path)?;
            write_reject(w, &rejects_path, b.line, "", "", &b.reason)?;
            sum.rejected += 1;
        }
        let mut scored = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            match o {
                Outcome::Scored(s) => {
                    match s.tier {
                        RiskTier::High => sum.high += 1,
                        RiskTier::Medium => sum.medium += 1,
                        RiskTier::Low => sum.low += 1,
                    }
                    scored.push(s);
                }
                Outcome::Rejected {
                    line,
                    id,
                    columns,
                    reason,
                } => {
                    let w = rejects_writer(&mut rejects, &rejects_path)?;
                    write_reject(w, &rejects_path, line, &id, &columns, &reason)?;
                    sum.rejected += 1;
                }
                Outcome::OtherShard => sum.other_shards += 1,
            }
        }
        sum.scored += scored.len() as u64;
        writer.write(&scored, model)?;
        progress.update(sum.rows_read, fraction);
    }
    read_thread.join().expect("reader thread");
    progress.finish();
    if let Some(mut w) = rejects {
        w.flush().map_err(|e| Error::io(&rejects_path, e))?;
        sum.rejects_file = Some(rejects_path);
    }
    writer.finish()?;
    if sum.scored + sum.rejected + sum.other_shards != sum.rows_read {
        return Err(Error::Data {
            path: job.input.clone(),
            line: None,
            column: None,
            message: format!(
                "internal check failed: {} rows read but {} scored + {} rejected + {} in other shards",
                sum.rows_read, sum.scored, sum.rejected, sum.other_shards
            ),
        });
    }
    sum.seconds = start.elapsed().as_secs_f64();
    sum.rows_per_second = sum.rows_read as f64 / sum.seconds.max(1e-9);
    Ok(sum)
}

fn score_row(
    model: &ChurnModel,
    job: &ScoreJob,
    has_id: bool,
    line: u64,
    rows: &Rows,
    i: usize,
    s: &mut RowScratch,
) -> Outcome {
    let features = model.schema().features();
    let id = if has_id {
        match rows.get(i, features.len()) {
            CellRef::Null => String::new(),
            CellRef::Number(x) => x.to_string(),
            CellRef::Text(t) => t.to_string(),
        }
    } else {
        line.to_string()
    };
    if let Some(shard) = job.shard
        && Shard::of(&id, shard.count) != shard.index
    {
        return Outcome::OtherShard;
    }
    // Numbers in a categorical column are matched as their text, kept alive for the row.
    let formatted: Vec<String> = (0..features.len())
        .filter_map(|k| match (rows.get(i, k), &features[k].kind) {
            (CellRef::Number(x), FeatureKind::Categorical(_)) => Some(x.to_string()),
            _ => None,
        })
        .collect();
    let mut next_formatted = formatted.iter();
    let values: Vec<Value<'_>> = features
        .iter()
        .enumerate()
        .map(|(k, f)| match (rows.get(i, k), &f.kind) {
            (CellRef::Null, _) => Value::Missing,
            (CellRef::Number(x), FeatureKind::Numeric(_)) => Value::Number(x),
            (CellRef::Number(_), FeatureKind::Categorical(_)) => {
                Value::Text(next_formatted.next().unwrap())
            }
            // A number first: "NaN" or "inf" parse, and are then refused as non-finite (a
            // value, not a missing cell); blanks and NA-style tokens are missing.
            (CellRef::Text(t), FeatureKind::Numeric(_)) => {
                let t = t.trim();
                match t.parse::<f64>() {
                    Ok(x) => Value::Number(x),
                    Err(_) if is_missing_token(t) => Value::Missing,
                    Err(_) => Value::Text(t),
                }
            }
            (CellRef::Text(t), FeatureKind::Categorical(_)) => {
                let t = t.trim();
                if is_missing_token(t) {
                    Value::Missing
                } else {
                    Value::Text(t)
                }
            }
        })
        .collect();
    match model.score_into(&values, false, s) {
        Some(logit) => {
            let p = sigmoid(logit);
            let mut idx = Vec::with_capacity(job.top_k + 1);
            top_k(&s.contributions, job.top_k, &mut idx);
            Outcome::Scored(Scored {
                id,
                p,
                tier: model.tier(p),
                reasons: idx.into_iter().map(|i| (i, s.contributions[i])).collect(),
            })
        }
        None => Outcome::Rejected {
            line,
            id,
            columns: s
                .violations
                .iter()
                .map(|v| v.field.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            reason: s
                .violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

fn rejects_writer<'a>(
    w: &'a mut Option<csv::Writer<std::fs::File>>,
    path: &Path,
) -> Result<&'a mut csv::Writer<std::fs::File>> {
    if w.is_none() {
        let mut n = csv::Writer::from_path(path).map_err(|e| Error::data(path, e.to_string()))?;
        n.write_record(["line", "id", "columns", "reason"])
            .map_err(|e| Error::data(path, e.to_string()))?;
        *w = Some(n);
    }
    Ok(w.as_mut().unwrap())
}

fn write_reject(
    w: &mut csv::Writer<std::fs::File>,
    path: &Path,
    line: u64,
    id: &str,
    columns: &str,
    reason: &str,
) -> Result<()> {
    w.write_record([line.to_string().as_str(), id, columns, reason])
        .map_err(|e| Error::data(path, e.to_string()))
}

/// Output in CSV or Parquet, into a temporary file renamed into place by `finish`.
struct Writer {
    path: PathBuf,
    tmp: PathBuf,
    kind: WriterKind,
    top_k: usize,
}

enum WriterKind {
    Csv(std::io::BufWriter<std::fs::File>),
    Parquet(
        Box<parquet::arrow::ArrowWriter<std::fs::File>>,
        Arc<arrow_schema::Schema>,
    ),
}

impl Writer {
    fn create(path: &Path, id_name: &str, top_k: usize, model: &ChurnModel) -> Result<Writer> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("scores"),
            std::process::id()
        ));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut names = vec![
            id_name.to_string(),
            "churn_probability".into(),
            "risk_tier".into(),
        ];
        for k in 1..=top_k {
            names.push(format!("reason_{k}"));
            names.push(format!("contribution_{k}"));
        }
        let kind = match TableFormat::of(path) {
            TableFormat::Csv => {
                names.push("model".into());
                let mut header = csv::Writer::from_writer(Vec::new());
                header
                    .write_record(&names)
                    .map_err(|e| Error::data(path, e.to_string()))?;
                let header = header
                    .into_inner()
                    .map_err(|e| Error::data(path, e.to_string()))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
                w.write_all(&header).map_err(|e| Error::io(&tmp, e))?;
                WriterKind::Csv(w)
            }
            TableFormat::Parquet => {
                use arrow_schema::{DataType, Field};
                let fields: Vec<Field> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let numeric = i == 1 || (i >= 3 && (i - 3) % 2 == 1);
                        Field::new(
                            n,
                            if numeric {
                                DataType::Float64
                            } else {
                                DataType::Utf8
                            },
                            i >= 3,
                        )
                    })
                    .collect();
                let mut meta = std::collections::HashMap::new();
                meta.insert("churn.model".to_string(), model.id().to_string());
                let schema = Arc::new(arrow_schema::Schema::new_with_metadata(fields, meta));
                let w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None)
                    .map_err(|e| Error::data(path, e.to_string()))?;
                WriterKind::Parquet(Box::new(w), schema)
            }
        };
        Ok(Writer {
            path: path.to_path_buf(),
            tmp,
            kind,
            top_k,
        })
    }

    fn write(&mut self, rows: &[Scored], model: &ChurnModel) -> Result<()> {
        let names = model.schema().features();
        let err = |e: String| Error::data(&self.path, e);
        match &mut self.kind {
            WriterKind::Csv(w) => {
                // Rows are formatted in parallel; the file only receives finished bytes, in order.
                let top_k = self.top_k;
                let blocks: Vec<std::result::Result<Vec<u8>, String>> = rows
                    .par_chunks(1024)
                    .map(|part| format_csv(part, top_k, model))
                    .collect();
                for b in blocks {
                    w.write_all(&b.map_err(err)?)
                        .map_err(|e| err(e.to_string()))?;
                }
            }
            WriterKind::Parquet(w, schema) => {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut cols: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from_iter_values(
                        rows.iter().map(|r| r.id.as_str()),
                    )),
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.p))),
                    Arc::new(StringArray::from_iter_values(
                        rows.iter().map(|r| r.tier.as_str()),
                    )),
                ];
                for k in 0..self.top_k {
                    cols.push(Arc::new(StringArray::from_iter(
                        rows.iter()
                            .map(|r| r.reasons.get(k).map(|(i, _)| names[*i].name.as_str())),
                    )));
                    cols.push(Arc::new(Float64Array::from_iter(
                        rows.iter().map(|r| r.reasons.get(k).map(|(_, c)| *c)),
                    )));
                }
                let batch =
                    RecordBatch::try_new(schema.clone(), cols).map_err(|e| err(e.to_string()))?;
                w.write(&batch).map_err(|e| err(e.to_string()))?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self.kind {
            WriterKind::Csv(mut w) => {
                w.flush().map_err(|e| Error::io(&self.tmp, e))?;
                w.get_ref()
                    .sync_all()
                    .map_err(|e| Error::io(&self.tmp, e))?;
            }
            WriterKind::Parquet(w, _) => {
                w.close()
                    .map_err(|e| Error::data(&self.path, e.to_string()))?;
            }
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

/// CSV lines of scored rows (floats in shortest round-trip form).
fn format_csv(
    rows: &[Scored],
    top_k: usize,
    model: &ChurnModel,
) -> std::result::Result<Vec<u8>, String> {
    let names = model.schema().features();
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 128));
    let mut num = String::new();
    let mut f = |w: &mut csv::Writer<Vec<u8>>, x: f64| {
        use std::fmt::Write as _;
        num.clear();
        let _ = write!(num, "{x}");
        w.write_field(&num)
    };
    for r in rows {
        let res: csv::Result<()> = (|| {
            w.write_field(&r.id)?;
            f(&mut w, r.p)?;
            w.write_field(r.tier.as_str())?;
            for k in 0..top_k {
                match r.reasons.get(k) {
                    Some((i, c)) => {
                        w.write_field(&names[*i].name)?;
                        f(&mut w, *c)?;
                    }
                    None => {
                        w.write_field("")?;
                        w.write_field("")?;
                    }
                }
            }
            w.write_field(model.id())?;
            w.write_record(None::<&[u8]>)
        })();
        res.map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A progress line on a terminal (rows, rows/s, ETA), plain log lines every 10 s otherwise.
struct Progress {
    start: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Progress {
            start: now,
            last: now,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, rows: u64, fraction: Option<f64>) {
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
            eprint!("\r{rows} rows, {rate:.0} rows/s{eta}    ");
        } else {
            tracing::info!("{rows} rows, {rate:.0} rows/s{eta}");
        }
    }

    fn finish(&self) {
        if self.tty && self.start.elapsed().as_secs_f64() >= 0.2 {
            eprintln!();
        }
    }
}
