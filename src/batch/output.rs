//! Where scores go: a CSV or Parquet file (written under a temporary name and renamed into place
//! at the end) or a PostgreSQL table (staged and swapped in one transaction).
//!
//! Columns: id, churn_probability, risk_tier, [rank], reason_1, contribution_1, ...; the model id
//! is a `model` column in CSV and tables, and the file metadata `churn.model` in Parquet. With
//! `--rank` the rank (1 = highest probability, ties share the best rank, as SQL's `rank()`) needs
//! every probability first, so a file is written once without it and then rewritten with it.
use super::csv_records::{RecordParser, split_ranges};
use super::input::{Block, BlockSource, CsvSource, Numbering};
use super::postgres::{OutColumn, PgTableWriter, TableSpec};
use super::score::{BufferPool, Part, Sink, push_csv_field};
use crate::error::{Error, Result};
use crate::io::TableFormat;
use crate::model::RiskTier;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the output holds.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// The first column: the input's id column, or `line`/`row` when there is none.
    pub id_name: String,
    pub top_k: usize,
    pub rank: bool,
    pub model_id: String,
    pub feature_names: Vec<String>,
}

impl OutputSpec {
    /// Column names and whether each is numeric; `rank` is left out (it is added last).
    fn columns(&self, with_model: bool) -> Vec<(String, bool)> {
        let mut c = vec![
            (self.id_name.clone(), false),
            ("churn_probability".into(), true),
            ("risk_tier".into(), false),
        ];
        for k in 1..=self.top_k {
            c.push((format!("reason_{k}"), false));
            c.push((format!("contribution_{k}"), true));
        }
        if with_model {
            c.push(("model".into(), false));
        }
        c
    }
}

/// Scored rows of one part, column by column (for Parquet).
#[derive(Debug, Default)]
pub struct ScoredCols {
    /// Ids end to end; `id_ends[i]` is where row i's id ends.
    pub ids: String,
    pub id_ends: Vec<usize>,
    pub p: Vec<f64>,
    pub tier: Vec<RiskTier>,
    /// `top_k` entries a row: (feature, contribution), None past the model's features.
    pub reasons: Vec<Option<(u32, f64)>>,
}

/// A file written under a temporary name in the same folder; removed unless kept.
pub(crate) struct TempFile {
    tmp: PathBuf,
    keep: bool,
}

impl TempFile {
    pub(crate) fn beside(path: &Path, tag: &str) -> TempFile {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("scores");
        TempFile {
            tmp: dir.join(format!(".{name}.{tag}-{}", std::process::id())),
            keep: false,
        }
    }

    pub(crate) fn create(&self) -> Result<std::fs::File> {
        std::fs::File::create(&self.tmp).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Renames the file to `path`.
    pub(crate) fn persist(mut self, path: &Path) -> Result<()> {
        std::fs::rename(&self.tmp, path).map_err(|e| Error::io(path, e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

pub(crate) enum Output {
    Csv {
        path: PathBuf,
        file: TempFile,
        w: std::io::BufWriter<std::fs::File>,
        rows: u64,
        spec: OutputSpec,
    },
    Parquet {
        path: PathBuf,
        file: TempFile,
        w: Box<parquet::arrow::ArrowWriter<std::fs::File>>,
        schema: Arc<Schema>,
        rows: u64,
        spec: OutputSpec,
    },
    Table(PgTableWriter),
}

fn parquet_schema(spec: &OutputSpec, rank: bool) -> Arc<Schema> {
    let mut fields: Vec<Field> = spec
        .columns(false)
        .into_iter()
        .enumerate()
        .map(|(i, (name, numeric))| {
            let ty = if numeric {
                DataType::Float64
            } else {
                DataType::Utf8
            };
            Field::new(name, ty, i >= 3)
        })
        .collect();
    if rank {
        fields.insert(3, Field::new("rank", DataType::Int64, false));
    }
    let meta: std::collections::HashMap<String, String> =
        [("churn.model".to_string(), spec.model_id.clone())].into();
    Arc::new(Schema::new_with_metadata(fields, meta))
}

fn csv_header(spec: &OutputSpec, rank: bool) -> Vec<u8> {
    let mut names: Vec<String> = spec.columns(true).into_iter().map(|c| c.0).collect();
    if rank {
        names.insert(3, "rank".into());
    }
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_csv_field(&mut out, n.as_bytes());
    }
    out.push(b'\n');
    out
}

impl Output {
    pub fn create(sink: &Sink, spec: &OutputSpec) -> Result<Output> {
        match sink {
            Sink::Postgres { url, table } => {
                let columns = spec
                    .columns(true)
                    .into_iter()
                    .map(|(name, numeric)| OutColumn { name, numeric })
                    .collect();
                let w = PgTableWriter::create(
                    url,
                    TableSpec {
                        table: table.clone(),
                        columns,
                        rank: spec.rank,
                        comment: format!(
                            "churn scores from model {}, written {}",
                            spec.model_id,
                            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                        ),
                    },
                )?;
                Ok(Output::Table(w))
            }
            Sink::File(path) => {
                let file = TempFile::beside(path, "tmp");
                let f = file.create()?;
                match TableFormat::of(path) {
                    TableFormat::Csv => {
                        // Parts arrive as large buffers, which a small buffer passes straight
                        // through to the file instead of copying.
                        let mut w = std::io::BufWriter::with_capacity(64 << 10, f);
                        w.write_all(&csv_header(spec, false))
                            .map_err(|e| Error::io(&file.tmp, e))?;
                        Ok(Output::Csv {
                            path: path.clone(),
                            file,
                            w,
                            rows: 0,
                            spec: spec.clone(),
                        })
                    }
                    TableFormat::Parquet => {
                        let schema = parquet_schema(spec, false);
                        let w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None)
                            .map_err(|e| Error::data(path, e.to_string()))?;
                        Ok(Output::Parquet {
                            path: path.clone(),
                            file,
                            w: Box::new(w),
                            schema,
                            rows: 0,
                            spec: spec.clone(),
                        })
                    }
                }
            }
        }
    }

    /// Whether parts should carry CSV lines (else columns).
    pub fn wants_csv(&self) -> bool {
        !matches!(self, Output::Parquet { .. })
    }

    /// Writes the scored rows of a block's parts, in order.
    pub fn write(&mut self, parts: Vec<Part>, pool: &BufferPool) -> Result<()> {
        match self {
            Output::Csv { file, w, rows, .. } => {
                for p in parts {
                    w.write_all(&p.csv).map_err(|e| Error::io(&file.tmp, e))?;
                    *rows += p.scored();
                    pool.give(p.csv);
                }
                // Each block goes to disk while the next is scored, so the sync before the final
                // rename has little left to do.
                w.flush().map_err(|e| Error::io(&file.tmp, e))?;
                w.get_ref()
                    .sync_data()
                    .map_err(|e| Error::io(&file.tmp, e))?;
            }
            Output::Table(t) => {
                for p in parts {
                    if !p.csv.is_empty() {
                        t.write(p.csv)?;
                    }
                }
            }
            Output::Parquet {
                path,
                w,
                schema,
                rows,
                spec,
                ..
            } => {
                let n: usize = parts.iter().map(|p| p.cols.p.len()).sum();
                if n == 0 {
                    return Ok(());
                }
                let cols = parts.iter().map(|p| &p.cols);
                let ids = StringArray::from_iter_values(cols.clone().flat_map(|c| {
                    let mut start = 0;
                    c.id_ends.iter().map(move |&e| {
                        let s = &c.ids[start..e];
                        start = e;
                        s
                    })
                }));
                let mut arrays: Vec<ArrayRef> = vec![
                    Arc::new(ids),
                    Arc::new(Float64Array::from_iter_values(
                        cols.clone().flat_map(|c| c.p.iter().copied()),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        cols.clone().flat_map(|c| c.tier.iter().map(|t| t.as_str())),
                    )),
                ];
                let k = spec.top_k;
                let names = &spec.feature_names;
                for j in 0..k {
                    let at = move |c: &'_ ScoredCols| {
                        c.reasons
                            .iter()
                            .skip(j)
                            .step_by(k)
                            .copied()
                            .collect::<Vec<_>>()
                    };
                    let picked: Vec<Option<(u32, f64)>> = cols.clone().flat_map(at).collect();
                    arrays.push(Arc::new(StringArray::from_iter(
                        picked
                            .iter()
                            .map(|r| r.map(|(i, _)| names[i as usize].as_str())),
                    )));
                    arrays.push(Arc::new(Float64Array::from_iter(
                        picked.iter().map(|r| r.map(|(_, c)| c)),
                    )));
                }
                let batch = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| Error::data(&*path, e.to_string()))?;
                w.write(&batch)
                    .map_err(|e| Error::data(&*path, e.to_string()))?;
                *rows += n as u64;
            }
        }
        Ok(())
    }

    /// Completes the output (adding ranks from `sorted_probs`, highest first, when asked) and
    /// puts it in place; returns the rows written.
    pub fn finish(self, sorted_probs: &[f64]) -> Result<u64> {
        match self {
            Output::Table(t) => t.commit(),
            Output::Csv {
                path,
                file,
                mut w,
                rows,
                spec,
            } => {
                w.flush().map_err(|e| Error::io(&file.tmp, e))?;
                drop(w);
                if !spec.rank {
                    sync(&file.tmp)?;
                    file.persist(&path)?;
                    return Ok(rows);
                }
                let ranked = TempFile::beside(&path, "ranked");
                let n = rank_csv(&file.tmp, &ranked, &spec, sorted_probs)?;
                sync(&ranked.tmp)?;
                ranked.persist(&path)?;
                Ok(n)
            }
            Output::Parquet {
                path,
                file,
                w,
                rows,
                spec,
                ..
            } => {
                w.close().map_err(|e| Error::data(&path, e.to_string()))?;
                if !spec.rank {
                    sync(&file.tmp)?;
                    file.persist(&path)?;
                    return Ok(rows);
                }
                let ranked = TempFile::beside(&path, "ranked");
                let n = rank_parquet(&file.tmp, &ranked, &spec, sorted_probs)?;
                sync(&ranked.tmp)?;
                ranked.persist(&path)?;
                Ok(n)
            }
        }
    }
}

fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Ranks from every probability, sorted highest first. A plain binary search over millions of
/// sorted values misses the cache at every step; searching every 64th value first (a small array
/// that stays in cache) leaves one 512-byte stretch to search.
struct Ranks<'a> {
    sorted: &'a [f64],
    coarse: Vec<f64>,
}

impl<'a> Ranks<'a> {
    const STRIDE: usize = 64;

    fn new(sorted: &'a [f64]) -> Self {
        Ranks {
            sorted,
            coarse: sorted.iter().step_by(Self::STRIDE).copied().collect(),
        }
    }

    /// 1 + the number of probabilities strictly above `p`.
    fn of(&self, p: f64) -> u64 {
        let b = self.coarse.partition_point(|&x| x > p);
        let lo = b.saturating_sub(1) * Self::STRIDE;
        let hi = (b * Self::STRIDE).min(self.sorted.len());
        1 + (lo + self.sorted[lo..hi].partition_point(|&x| x > p)) as u64
    }
}

/// Rewrites the unranked CSV with `rank` after `risk_tier`, in parallel blocks.
fn rank_csv(from: &Path, to: &TempFile, spec: &OutputSpec, sorted: &[f64]) -> Result<u64> {
    let ranks = Ranks::new(sorted);
    let f = std::fs::File::open(from).map_err(|e| Error::io(from, e))?;
    let mut src = CsvSource::new(from.to_path_buf(), f, None, Numbering::Line)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, to.create()?);
    w.write_all(&csv_header(spec, true))
        .map_err(|e| Error::io(&to.tmp, e))?;
    let mut rows = 0u64;
    let parts = rayon::current_num_threads() * 4;
    while let Some(Block::Csv { bytes, .. }) = src.next_block(65_536)? {
        let ranges = split_ranges(&bytes, parts);
        let out: Vec<std::result::Result<(Vec<u8>, u64), String>> = ranges
            .into_par_iter()
            .map(|(a, b)| {
                let mut out = Vec::with_capacity(b - a + (b - a) / 8);
                let mut p = RecordParser::new(&bytes[a..b]);
                let mut fields = Vec::new();
                let mut n = 0;
                while let Some((_, rec)) = p.next_record(&mut fields) {
                    if !matches!(rec, super::csv_records::Record::Fields) || fields.len() < 3 {
                        return Err("a row of the first pass is not a record".to_string());
                    }
                    let prob: f64 = std::str::from_utf8(&fields[1])
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or("a probability of the first pass does not parse")?;
                    for (i, f) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        if i == 3 {
                            out.extend_from_slice(ranks.of(prob).to_string().as_bytes());
                            out.push(b',');
                        }
                        push_csv_field(&mut out, f);
                    }
                    out.push(b'\n');
                    n += 1;
                }
                Ok((out, n))
            })
            .collect();
        for o in out {
            let (bytes, n) = o.map_err(|e| Error::data(from, e))?;
            w.write_all(&bytes).map_err(|e| Error::io(&to.tmp, e))?;
            rows += n;
        }
    }
    w.flush().map_err(|e| Error::io(&to.tmp, e))?;
    Ok(rows)
}

/// Rewrites the unranked Parquet file with `rank` after `risk_tier`.
fn rank_parquet(from: &Path, to: &TempFile, spec: &OutputSpec, sorted: &[f64]) -> Result<u64> {
    let ranks = Ranks::new(sorted);
    let f = std::fs::File::open(from).map_err(|e| Error::io(from, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(65_536).build())
        .map_err(|e| Error::data(from, e.to_string()))?;
    let schema = parquet_schema(spec, true);
    let mut w = parquet::arrow::ArrowWriter::try_new(to.create()?, schema.clone(), None)
        .map_err(|e| Error::data(&to.tmp, e.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| Error::data(from, e.to_string()))?;
        let p = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::data(from, "churn_probability is not float64"))?;
        let ranks: Vec<i64> = p.values().par_iter().map(|&x| ranks.of(x) as i64).collect();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.insert(3, Arc::new(Int64Array::from(ranks)));
        let out = RecordBatch::try_new(schema.clone(), cols)
            .map_err(|e| Error::data(&to.tmp, e.to_string()))?;
        w.write(&out)
            .map_err(|e| Error::data(&to.tmp, e.to_string()))?;
        rows += batch.num_rows() as u64;
    }
    w.close().map_err(|e| Error::data(&to.tmp, e.to_string()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_one_plus_the_count_strictly_above() {
        let sorted = [0.9, 0.8, 0.8, 0.5];
        let r = Ranks::new(&sorted);
        assert_eq!(r.of(0.9), 1);
        assert_eq!(r.of(0.8), 2);
        assert_eq!(r.of(0.5), 4);
        // Across the coarse index's strides, with ties on stride edges, against a plain count.
        let mut v: Vec<f64> = (0..1000)
            .map(|i| f64::from((i * 7919) % 301) / 300.0)
            .collect();
        v.sort_by(|a, b| b.total_cmp(a));
        let r = Ranks::new(&v);
        for &p in v.iter().chain(&[1.5, -1.0, 0.5001]) {
            let want = 1 + v.iter().filter(|&&x| x > p).count() as u64;
            assert_eq!(r.of(p), want, "{p}");
        }
    }
}
