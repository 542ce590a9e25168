//! Where scores go, and the row format they go in: a CSV or Parquet file (written under a temporary
//! name and renamed into place at the end) or a PostgreSQL table (staged and swapped in one
//! transaction).
//!
//! The columns are defined once, by [`OutputSpec::columns`]: id, churn_probability, risk_tier,
//! [rank], reason_1, contribution_1, ..., [health_score, health_band, action], [previous_probability,
//! probability_change, previous_tier, previous_as_of], model. CSV, Parquet, PostgreSQL and the rank
//! pass all take them from there. In Parquet the model id is also the file metadata `churn.model`. With
//! `--rank` the rank (1 = highest probability, ties share the best rank, as SQL's `rank()`) needs
//! every probability first, so a file is written once without it and then rewritten with it.
use super::history::{HistoryRowKind, HistoryRows, Previous, TopRisers, date_text};
use crate::error::{Error, Result};
use crate::io::TableFormat;
use crate::io::atomic::TempFile;
use crate::io::blocks::{Block, BlockSource, CsvSource, Numbering};
use crate::io::csv_records::{Record, RecordParser, split_ranges};
use crate::io::csv_write::{csv_field, push_csv_field, push_f64};
use crate::io::postgres::{self, OutColumn, PgCopyWriter, TableSpec, TxStep};
use crate::model::RiskTier;
use crate::model::health::HealthScore;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// What the output holds.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// The first column: the input's id column, or `line`/`row` when there is none.
    pub id_name: String,
    pub top_k: usize,
    pub rank: bool,
    pub rank_by: RankBy,
    pub model_id: String,
    pub feature_names: Vec<String>,
    /// The model has usage health: `health_score`, `health_band` and `action` columns.
    pub health: bool,
    /// With `--history`: the previous run's columns, and the run's date for the history rows.
    pub history: Option<chrono::NaiveDate>,
}

/// The columns from the customer's previous run (with `--history`), empty for a new customer.
pub const PREVIOUS_COLUMNS: [(&str, ColumnType); 4] = [
    ("previous_probability", ColumnType::Float),
    ("probability_change", ColumnType::Float),
    ("previous_tier", ColumnType::Text),
    ("previous_as_of", ColumnType::Text),
];

/// A column's type in every output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Float,
    Integer,
}

/// Where `rank` goes: right after `risk_tier`.
const RANK_AT: usize = 3;

/// What `rank` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankBy {
    /// 1 = the highest churn probability.
    #[default]
    Probability,
    /// 1 = the lowest health score.
    Health,
}

impl RankBy {
    /// The column ranked on (in the unranked columns) and whether its highest value ranks first.
    fn column(self, spec: &OutputSpec) -> (usize, bool) {
        let name = match self {
            RankBy::Probability => "churn_probability",
            RankBy::Health => "health_score",
        };
        let at = spec
            .columns(false, true)
            .iter()
            .position(|(n, _)| n == name)
            .expect("the job checks that the model has health");
        (at, self == RankBy::Probability)
    }

    /// The key ranks count from, highest first: the probability, or the health negated.
    #[inline]
    fn key(self, x: f64) -> f64 {
        match self {
            RankBy::Probability => x,
            RankBy::Health => -x,
        }
    }
}

impl OutputSpec {
    /// The output's columns, in order: the one definition of the row format. `rank` is there when
    /// `with_rank`; `model` when `with_model` (Parquet keeps the model id as file metadata).
    pub fn columns(&self, with_rank: bool, with_model: bool) -> Vec<(String, ColumnType)> {
        let mut c = vec![
            (self.id_name.clone(), ColumnType::Text),
            ("churn_probability".into(), ColumnType::Float),
            ("risk_tier".into(), ColumnType::Text),
        ];
        if with_rank {
            c.push(("rank".into(), ColumnType::Integer));
        }
        for k in 1..=self.top_k {
            c.push((format!("reason_{k}"), ColumnType::Text));
            c.push((format!("contribution_{k}"), ColumnType::Float));
        }
        if self.health {
            c.push(("health_score".into(), ColumnType::Float));
            c.push(("health_band".into(), ColumnType::Text));
            c.push(("action".into(), ColumnType::Text));
        }
        if self.history.is_some() {
            c.extend(PREVIOUS_COLUMNS.iter().map(|&(n, t)| (n.to_string(), t)));
        }
        if with_model {
            c.push(("model".into(), ColumnType::Text));
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
    /// `top_k` entries a row: (feature, contribution), None past the reasons found.
    pub reasons: Vec<Option<(u32, f64)>>,
    /// With health: each row's health and action.
    pub health: Vec<HealthScore>,
    /// With history: each row's previous run.
    pub previous: Vec<Option<Previous>>,
}

/// A rejected row, located within its part.
pub(crate) struct Reject {
    pub(crate) line: u64,
    pub(crate) row: u64,
    pub(crate) id: String,
    pub(crate) columns: String,
    pub(crate) reason: String,
}

/// What one part of a block produced.
#[derive(Default)]
pub(crate) struct Part {
    /// Rows seen (records, bad ones included; blank lines are not rows).
    pub(crate) rows: u64,
    /// Lines consumed (CSV).
    pub(crate) lines: u64,
    pub(crate) other_shards: u64,
    pub(crate) tiers: [u64; 3],
    /// With health: rows per action, in `Action::ALL` order.
    pub(crate) actions: [u64; 4],
    pub(crate) rejects: Vec<Reject>,
    /// Scored rows as CSV lines (CSV file or table output).
    pub(crate) csv: Vec<u8>,
    /// Scored rows as columns (Parquet output).
    pub(crate) cols: ScoredCols,
    /// Probabilities of the scored rows (with --rank).
    pub(crate) probs: Vec<f64>,
    /// With history: the run's rows, and the customers scored with a previous run.
    pub(crate) history: HistoryRows,
    pub(crate) with_previous: u64,
    /// The largest rises since the previous run.
    pub(crate) risers: TopRisers,
    /// The scored rows counted into the model's drift bins (a model with references).
    pub(crate) drift: Option<crate::model::drift::DriftCounts>,
}

impl Part {
    /// Rows scored in this part.
    pub(crate) fn scored(&self) -> u64 {
        self.tiers.iter().sum()
    }
}

/// One scored row, as the output takes it.
#[derive(Clone, Copy)]
pub(crate) struct ScoredRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) p: f64,
    pub(crate) tier: RiskTier,
    /// Feature indices of the reasons, largest first, and every feature's contribution.
    pub(crate) reasons: &'a [usize],
    pub(crate) contributions: &'a [f64],
    pub(crate) health: Option<HealthScore>,
    /// With history: the customer's previous run, if any.
    pub(crate) previous: Option<&'a Previous>,
}

/// How one scored row is laid out, ready for the part's CSV bytes or columns.
pub(crate) struct RowFormat {
    csv: bool,
    top_k: usize,
    keep_probs: bool,
    rank_by: RankBy,
    /// Feature names and the model id, ready to paste into CSV.
    csv_names: Vec<Vec<u8>>,
    csv_model: Vec<u8>,
    /// With history: the previous-run columns, and how the run's rows are carried.
    history: Option<HistoryRowKind>,
    /// `,AS_OF,MODEL,` for a history line.
    history_mid: Vec<u8>,
}

impl RowFormat {
    pub(crate) fn new(spec: &OutputSpec, csv: bool, history: Option<HistoryRowKind>) -> Self {
        let mut history_mid = vec![b','];
        if let Some(d) = spec.history {
            history_mid.extend_from_slice(d.to_string().as_bytes());
        }
        history_mid.push(b',');
        history_mid.extend_from_slice(&csv_field(spec.model_id.as_bytes()));
        history_mid.push(b',');
        RowFormat {
            csv,
            top_k: spec.top_k,
            keep_probs: spec.rank,
            rank_by: spec.rank_by,
            csv_names: spec
                .feature_names
                .iter()
                .map(|f| csv_field(f.as_bytes()))
                .collect(),
            csv_model: csv_field(spec.model_id.as_bytes()),
            history: spec.history.and(history),
            history_mid,
        }
    }

    pub(crate) fn wants_csv(&self) -> bool {
        self.csv
    }

    /// Appends one scored row in the columns of [`OutputSpec::columns`], and its history row.
    pub(crate) fn push(&self, part: &mut Part, row: ScoredRow<'_>) {
        let ScoredRow {
            id,
            p,
            tier,
            reasons,
            contributions,
            health,
            previous,
        } = row;
        part.tiers[match tier {
            RiskTier::High => 0,
            RiskTier::Medium => 1,
            RiskTier::Low => 2,
        }] += 1;
        if let Some(h) = health {
            part.actions[h.action as usize] += 1;
        }
        if self.keep_probs {
            part.probs.push(match (self.rank_by, health) {
                (RankBy::Health, Some(h)) => self.rank_by.key(h.score),
                _ => p,
            });
        }
        if let Some(kind) = self.history {
            self.push_history(part, kind, &row);
        }
        if self.csv {
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
                    push_f64(out, contributions[i]);
                } else {
                    out.push(b',');
                }
            }
            if let Some(h) = health {
                out.push(b',');
                push_f64(out, h.score);
                out.push(b',');
                out.extend_from_slice(h.band.as_str().as_bytes());
                out.push(b',');
                out.extend_from_slice(h.action.as_str().as_bytes());
            }
            if self.history.is_some() {
                match previous {
                    Some(prev) => {
                        out.push(b',');
                        push_f64(out, prev.probability);
                        out.push(b',');
                        push_f64(out, p - prev.probability);
                        out.push(b',');
                        out.extend_from_slice(prev.tier.as_str().as_bytes());
                        out.push(b',');
                        out.extend_from_slice(&date_text(prev.as_of));
                    }
                    None => out.extend_from_slice(b",,,,"),
                }
            }
            out.push(b',');
            out.extend_from_slice(&self.csv_model);
            out.push(b'\n');
        } else {
            let c = &mut part.cols;
            c.ids.push_str(id);
            c.id_ends.push(c.ids.len());
            c.p.push(p);
            c.tier.push(tier);
            for k in 0..self.top_k {
                c.reasons
                    .push(reasons.get(k).map(|&i| (i as u32, contributions[i])));
            }
            if let Some(h) = health {
                c.health.push(h);
            }
            if self.history.is_some() {
                c.previous.push(previous.copied());
            }
        }
    }

    /// The run's row for the history, and the rise since the previous run.
    fn push_history(&self, part: &mut Part, kind: HistoryRowKind, row: &ScoredRow<'_>) {
        if let Some(prev) = row.previous {
            part.with_previous += 1;
            part.risers.offer(row.id, prev, row.p, row.tier);
        }
        let h = &mut part.history;
        match kind {
            HistoryRowKind::FromOutput => {}
            HistoryRowKind::Csv => {
                let out = &mut h.csv;
                push_csv_field(out, row.id.as_bytes());
                out.extend_from_slice(&self.history_mid);
                push_f64(out, row.p);
                out.push(b',');
                out.extend_from_slice(row.tier.as_str().as_bytes());
                match row.health {
                    Some(hs) => {
                        out.push(b',');
                        push_f64(out, hs.score);
                        out.push(b',');
                        out.extend_from_slice(hs.band.as_str().as_bytes());
                        out.push(b',');
                        out.extend_from_slice(hs.action.as_str().as_bytes());
                    }
                    None => out.extend_from_slice(b",,,"),
                }
                out.push(b'\n');
            }
            HistoryRowKind::Columns => {
                h.ids.push_str(row.id);
                h.id_ends.push(h.ids.len());
                h.p.push(row.p);
                h.tier.push(row.tier);
                h.health.push(row.health);
            }
        }
    }
}

/// The ids of a part's rows, stored end to end with where each ends.
pub(crate) fn split_ids<'a>(ids: &'a str, ends: &'a [usize]) -> impl Iterator<Item = &'a str> {
    let mut start = 0;
    ends.iter().map(move |&e| {
        let s = &ids[start..e];
        start = e;
        s
    })
}

/// Output buffers handed back by the writer for the next parts, so each block does not fault in
/// fresh memory.
#[derive(Default)]
pub(crate) struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
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
    Table(PgCopyWriter),
}

fn parquet_schema(spec: &OutputSpec, rank: bool) -> Arc<Schema> {
    let fields: Vec<Field> = spec
        .columns(rank, false)
        .into_iter()
        .map(|(name, ty)| {
            // id, probability, tier (and rank) are never null; reasons past the last are.
            let nullable = name.starts_with("reason_")
                || name.starts_with("contribution_")
                || PREVIOUS_COLUMNS.iter().any(|(n, _)| *n == name);
            let ty = match ty {
                ColumnType::Text => DataType::Utf8,
                ColumnType::Float => DataType::Float64,
                ColumnType::Integer => DataType::Int64,
            };
            Field::new(name, ty, nullable)
        })
        .collect();
    let meta: std::collections::HashMap<String, String> =
        [("churn.model".to_string(), spec.model_id.clone())].into();
    Arc::new(Schema::new_with_metadata(fields, meta))
}

fn csv_header(spec: &OutputSpec, rank: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (n, _)) in spec.columns(rank, true).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_csv_field(&mut out, n.as_bytes());
    }
    out.push(b'\n');
    out
}

impl Output {
    /// `then` runs in a table's transaction once the table is in place.
    pub(crate) fn create(sink: &Sink, spec: &OutputSpec, then: Option<TxStep>) -> Result<Output> {
        match sink {
            Sink::Postgres { url, table } => {
                let columns = spec
                    .columns(false, true)
                    .into_iter()
                    .map(|(name, ty)| OutColumn {
                        name,
                        numeric: ty != ColumnType::Text,
                    })
                    .collect();
                let w = postgres::table_writer(
                    url,
                    TableSpec {
                        table: table.clone(),
                        columns,
                        rank: spec.rank.then(|| {
                            let (by, highest_first) = spec.rank_by.column(spec);
                            (RANK_AT, by, highest_first)
                        }),
                        comment: format!(
                            "churn scores from model {}, written {}",
                            spec.model_id,
                            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                        ),
                    },
                    then,
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
                            .map_err(|e| Error::io(file.path(), e))?;
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
    pub(crate) fn wants_csv(&self) -> bool {
        !matches!(self, Output::Parquet { .. })
    }

    /// Writes the scored rows of a block's parts, in order.
    pub(crate) fn write(&mut self, parts: Vec<Part>, pool: &BufferPool) -> Result<()> {
        match self {
            Output::Csv { file, w, rows, .. } => {
                for p in parts {
                    w.write_all(&p.csv).map_err(|e| Error::io(file.path(), e))?;
                    *rows += p.scored();
                    pool.give(p.csv);
                }
                // Each block goes to disk while the next is scored, so the sync before the final
                // rename has little left to do.
                w.flush().map_err(|e| Error::io(file.path(), e))?;
                w.get_ref()
                    .sync_data()
                    .map_err(|e| Error::io(file.path(), e))?;
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
                let ids = StringArray::from_iter_values(
                    cols.clone().flat_map(|c| split_ids(&c.ids, &c.id_ends)),
                );
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
                if spec.health {
                    let h = || cols.clone().flat_map(|c| c.health.iter());
                    arrays.push(Arc::new(Float64Array::from_iter_values(
                        h().map(|h| h.score),
                    )));
                    arrays.push(Arc::new(StringArray::from_iter_values(
                        h().map(|h| h.band.as_str()),
                    )));
                    arrays.push(Arc::new(StringArray::from_iter_values(
                        h().map(|h| h.action.as_str()),
                    )));
                }
                if spec.history.is_some() {
                    let prev = || cols.clone().flat_map(|c| c.previous.iter().zip(&c.p));
                    arrays.push(Arc::new(Float64Array::from_iter(
                        prev().map(|(v, _)| v.map(|v| v.probability)),
                    )));
                    arrays.push(Arc::new(Float64Array::from_iter(
                        prev().map(|(v, p)| v.map(|v| p - v.probability)),
                    )));
                    arrays.push(Arc::new(StringArray::from_iter(
                        prev().map(|(v, _)| v.map(|v| v.tier.as_str())),
                    )));
                    let dates: Vec<Option<[u8; 10]>> =
                        prev().map(|(v, _)| v.map(|v| date_text(v.as_of))).collect();
                    arrays.push(Arc::new(StringArray::from_iter(dates.iter().map(|d| {
                        d.as_ref()
                            .map(|d| std::str::from_utf8(d).expect("a date is ASCII"))
                    }))));
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
    /// puts it in place; returns the rows written and, for a table, the count of its `then` step.
    pub(crate) fn finish(self, sorted_probs: &[f64]) -> Result<(u64, u64)> {
        match self {
            Output::Table(t) => t.commit().map(|d| (d.rows, d.finish)),
            Output::Csv {
                path,
                file,
                mut w,
                rows,
                spec,
            } => {
                w.flush().map_err(|e| Error::io(file.path(), e))?;
                drop(w);
                if !spec.rank {
                    file.persist(&path)?;
                    return Ok((rows, 0));
                }
                let ranked = TempFile::beside(&path, "ranked");
                let n = rank_csv(file.path(), &ranked, &spec, sorted_probs)?;
                ranked.persist(&path)?;
                Ok((n, 0))
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
                    file.persist(&path)?;
                    return Ok((rows, 0));
                }
                let ranked = TempFile::beside(&path, "ranked");
                let n = rank_parquet(file.path(), &ranked, &spec, sorted_probs)?;
                ranked.persist(&path)?;
                Ok((n, 0))
            }
        }
    }
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
    let (by, _) = spec.rank_by.column(spec);
    let f = std::fs::File::open(from).map_err(|e| Error::io(from, e))?;
    let mut src = CsvSource::new(from.to_path_buf(), f, None, Numbering::Line, Some(b','))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, to.create()?);
    w.write_all(&csv_header(spec, true))
        .map_err(|e| Error::io(to.path(), e))?;
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
                    if !matches!(rec, Record::Fields) || fields.len() <= by {
                        return Err("a row of the first pass is not a record".to_string());
                    }
                    let value: f64 = std::str::from_utf8(&fields[by])
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or("a ranked value of the first pass does not parse")?;
                    let key = spec.rank_by.key(value);
                    for (i, f) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        if i == RANK_AT {
                            out.extend_from_slice(ranks.of(key).to_string().as_bytes());
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
            w.write_all(&bytes).map_err(|e| Error::io(to.path(), e))?;
            rows += n;
        }
    }
    w.flush().map_err(|e| Error::io(to.path(), e))?;
    Ok(rows)
}

/// Rewrites the unranked Parquet file with `rank` after `risk_tier`.
fn rank_parquet(from: &Path, to: &TempFile, spec: &OutputSpec, sorted: &[f64]) -> Result<u64> {
    let ranks = Ranks::new(sorted);
    let (by, _) = spec.rank_by.column(spec);
    let f = std::fs::File::open(from).map_err(|e| Error::io(from, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(65_536).build())
        .map_err(|e| Error::data(from, e.to_string()))?;
    let schema = parquet_schema(spec, true);
    let mut w = parquet::arrow::ArrowWriter::try_new(to.create()?, schema.clone(), None)
        .map_err(|e| Error::data(to.path(), e.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| Error::data(from, e.to_string()))?;
        let p = batch
            .column(by)
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::data(from, "the ranked column is not float64"))?;
        let key = spec.rank_by;
        let ranks: Vec<i64> = p
            .values()
            .par_iter()
            .map(|&x| ranks.of(key.key(x)) as i64)
            .collect();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.insert(RANK_AT, Arc::new(Int64Array::from(ranks)));
        let out = RecordBatch::try_new(schema.clone(), cols)
            .map_err(|e| Error::data(to.path(), e.to_string()))?;
        w.write(&out)
            .map_err(|e| Error::data(to.path(), e.to_string()))?;
        rows += batch.num_rows() as u64;
    }
    w.close()
        .map_err(|e| Error::data(to.path(), e.to_string()))?;
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
