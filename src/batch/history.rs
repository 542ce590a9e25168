//! `churn score --history`: every run kept, and each customer's last earlier run beside today's.
//!
//! A run is the scores of one as-of date. Its rows (customer id, as-of date, model, probability,
//! tier, health, band, action, when scored) go to a PostgreSQL table or to a folder of Parquet
//! files, one file per run. Before scoring, the latest earlier run of each customer (the greatest
//! as-of date below this run's, whichever model scored it) is loaded, and each scored row gains
//! `previous_probability`, `probability_change`, `previous_tier` and `previous_as_of`.
//!
//! A run is all or nothing and can be repeated:
//! - PostgreSQL: the rows of this as-of date are deleted and the new ones copied in within one
//!   transaction, committed after the last row is scored. When the scores go to a table in the
//!   same database, the history rows are appended from that table in its own transaction, so the
//!   scores and the history commit together. A run that fails or is killed commits nothing.
//! - Parquet: the run is written under a temporary name in the folder and renamed to
//!   `AS_OF.parquet` at the end, replacing an earlier file of the same date.
//!
//! With `--shard i/N` a run replaces only the rows of its shard's customers (in PostgreSQL) or
//! its own file `AS_OF.shard-i-of-N.parquet`, so shards run side by side and a failed shard can
//! be rerun alone.
use super::output::{ColumnType, split_ids};
use crate::error::{Error, Result};
use crate::io::Shard;
use crate::io::atomic::TempFile;
use crate::io::postgres::{self, PgCopyWriter, TxStep};
use crate::model::RiskTier;
use crate::model::health::HealthScore;
use arrow_array::{
    Array, ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where runs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryDest {
    /// A table (`schema.name`), created on the first run.
    Postgres { url: String, table: String },
    /// A folder of Parquet files, one per run, created on the first run.
    Parquet(PathBuf),
}

impl HistoryDest {
    pub fn describe(&self) -> String {
        match self {
            HistoryDest::Postgres { url, table } => {
                format!("{} table {table}", postgres::redact(url))
            }
            HistoryDest::Parquet(dir) => dir.display().to_string(),
        }
    }
}

/// `--history DEST --as-of DATE`.
#[derive(Debug, Clone)]
pub struct HistoryJob {
    pub dest: HistoryDest,
    pub as_of: NaiveDate,
}

/// `--as-of`: a date as YYYY-MM-DD.
pub fn parse_as_of(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| Error::Usage(format!("--as-of {s}: expected a date as YYYY-MM-DD")))
}

/// The history's columns: the one definition, for PostgreSQL and Parquet alike.
pub const COLUMNS: [(&str, ColumnType); 8] = [
    ("customer_id", ColumnType::Text),
    ("as_of", ColumnType::Text),
    ("model", ColumnType::Text),
    ("churn_probability", ColumnType::Float),
    ("risk_tier", ColumnType::Text),
    ("health_score", ColumnType::Float),
    ("health_band", ColumnType::Text),
    ("action", ColumnType::Text),
];

/// A customer's latest run before this one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Previous {
    pub probability: f64,
    pub tier: RiskTier,
    pub as_of: NaiveDate,
}

/// The latest earlier run of every customer (of this shard).
#[derive(Debug, Default)]
pub struct PreviousRuns {
    by_id: FxHashMap<Box<str>, Previous>,
}

impl PreviousRuns {
    pub fn get(&self, id: &str) -> Option<&Previous> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Keeps the later of what is known and `p`.
    fn offer(&mut self, id: &str, p: Previous) {
        match self.by_id.get_mut(id) {
            Some(known) if known.as_of >= p.as_of => {}
            Some(known) => *known = p,
            None => {
                self.by_id.insert(id.into(), p);
            }
        }
    }
}

/// The history rows of one part, column by column (for Parquet) or as CSV lines (for COPY).
#[derive(Debug, Default)]
pub(crate) struct HistoryRows {
    pub(crate) csv: Vec<u8>,
    pub(crate) ids: String,
    pub(crate) id_ends: Vec<usize>,
    pub(crate) p: Vec<f64>,
    pub(crate) tier: Vec<RiskTier>,
    pub(crate) health: Vec<Option<HealthScore>>,
}

/// How a run's rows are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HistoryRowKind {
    /// Lines for COPY.
    Csv,
    /// Columns for Parquet.
    Columns,
    /// None: PostgreSQL appends them from the scores table.
    FromOutput,
}

/// A run being written.
pub(crate) enum HistoryWriter {
    Postgres(PgCopyWriter),
    /// The scores table's transaction appends the run (see [`HistoryRun::then_step`]).
    FromOutput,
    Parquet {
        path: PathBuf,
        file: TempFile,
        w: Box<parquet::arrow::ArrowWriter<std::fs::File>>,
        schema: Arc<Schema>,
        as_of: i32,
        model: String,
        scored_at: i64,
        replaced: u64,
        rows: u64,
    },
}

/// A run in progress: what was loaded before scoring and where its rows go.
pub(crate) struct HistoryRun {
    pub(crate) previous: PreviousRuns,
    pub(crate) writer: HistoryWriter,
}

/// What a committed run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HistorySummary {
    pub destination: String,
    pub as_of: String,
    /// Rows appended for this run.
    pub appended: u64,
    /// Rows of an earlier run with the same as-of date (and shard) that this run replaced.
    pub replaced: u64,
    /// Customers scored with an earlier run, and without one.
    pub with_previous: u64,
    pub new_customers: u64,
}

/// A date as its 10 bytes, YYYY-MM-DD, without allocating (years 0-9999, as `--as-of` takes).
pub(crate) fn date_text(d: NaiveDate) -> [u8; 10] {
    use chrono::Datelike;
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let (y, m, day) = (d.year().clamp(0, 9999) as u32, d.month(), d.day());
    [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(day / 10),
        digit(day),
    ]
}

/// A customer whose churn probability rose since their previous run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Riser {
    pub id: String,
    pub previous_probability: f64,
    pub churn_probability: f64,
    pub probability_change: f64,
    pub previous_tier: &'static str,
    pub risk_tier: &'static str,
    pub previous_as_of: String,
}

/// How many risers the summary lists.
pub const RISERS: usize = 10;

/// The `RISERS` largest rises offered. A rise below the smallest one kept at the last trim is
/// turned away before anything is allocated for it, so most rows cost one comparison.
#[derive(Debug, Default)]
pub(crate) struct TopRisers {
    kept: Vec<Riser>,
    /// The smallest rise kept at the last trim (0 before one): smaller rises cannot make the list.
    floor: f64,
}

impl TopRisers {
    /// Offers a customer scored `p` and `tier` after `prev`; only rises count.
    pub(crate) fn offer(&mut self, id: &str, prev: &Previous, p: f64, tier: RiskTier) {
        let change = p - prev.probability;
        if change <= 0.0 || change < self.floor {
            return;
        }
        self.push(Riser {
            id: id.to_string(),
            previous_probability: prev.probability,
            churn_probability: p,
            probability_change: change,
            previous_tier: prev.tier.as_str(),
            risk_tier: tier.as_str(),
            previous_as_of: prev.as_of.to_string(),
        });
    }

    /// Takes in the risers another part kept.
    pub(crate) fn merge(&mut self, other: TopRisers) {
        for r in other.kept {
            if r.probability_change >= self.floor {
                self.push(r);
            }
        }
    }

    fn push(&mut self, r: Riser) {
        self.kept.push(r);
        if self.kept.len() >= 4 * RISERS {
            self.trim();
        }
    }

    /// Largest rise first (ties by id), `RISERS` of them.
    fn trim(&mut self) {
        self.kept.sort_by(|a, b| {
            b.probability_change
                .total_cmp(&a.probability_change)
                .then_with(|| a.id.cmp(&b.id))
        });
        self.kept.truncate(RISERS);
        if self.kept.len() == RISERS {
            self.floor = self.kept[RISERS - 1].probability_change;
        }
    }

    /// The list, largest rise first.
    pub(crate) fn into_list(mut self) -> Vec<Riser> {
        self.trim();
        self.kept
    }
}

/// Days from 1970-01-01, as Parquet's DATE.
fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

impl HistoryRun {
    /// Prepares the run before any row is scored: creates the destination if needed, loads each
    /// customer's latest earlier run, and starts the run's writer. `output_url` is the
    /// PostgreSQL database the scores go to, if they go to a table; the history joins its
    /// transaction when it is the same database.
    pub(crate) fn open(
        job: &HistoryJob,
        shard: Option<Shard>,
        model_id: &str,
        output_url: Option<&str>,
    ) -> Result<HistoryRun> {
        match &job.dest {
            HistoryDest::Postgres { url, table } => {
                ensure_table(url, table)?;
                let previous = load_postgres(url, table, job.as_of, shard)?;
                if output_url == Some(url.as_str()) {
                    return Ok(HistoryRun {
                        previous,
                        writer: HistoryWriter::FromOutput,
                    });
                }
                let (u, t, as_of) = (url.clone(), table.clone(), job.as_of);
                let setup: TxStep = Box::new(move |tx| delete_run(tx, &u, &t, as_of, shard));
                let copy = format!(
                    "COPY {} ({}) FROM STDIN (FORMAT csv)",
                    postgres::qualified(table),
                    column_list()
                );
                let w = PgCopyWriter::start(url, "history rows", setup, copy, Box::new(|_| Ok(0)))?;
                Ok(HistoryRun {
                    previous,
                    writer: HistoryWriter::Postgres(w),
                })
            }
            HistoryDest::Parquet(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                crate::io::atomic::remove_stale_in(dir, |name| run_date(name).is_some());
                let previous = load_parquet(dir, job.as_of, shard)?;
                let path = dir.join(run_file_name(job.as_of, shard));
                let replaced = match std::fs::File::open(&path) {
                    Ok(f) => parquet::file::reader::SerializedFileReader::new(f)
                        .map(|r| {
                            use parquet::file::reader::FileReader;
                            r.metadata().file_metadata().num_rows() as u64
                        })
                        .unwrap_or(0),
                    Err(_) => 0,
                };
                let file = TempFile::beside(&path, "tmp");
                let schema = parquet_schema();
                let w = parquet::arrow::ArrowWriter::try_new(file.create()?, schema.clone(), None)
                    .map_err(|e| Error::data(&path, e.to_string()))?;
                Ok(HistoryRun {
                    previous,
                    writer: HistoryWriter::Parquet {
                        path,
                        file,
                        w: Box::new(w),
                        schema,
                        as_of: epoch_days(job.as_of),
                        model: model_id.to_string(),
                        scored_at: chrono::Utc::now().timestamp_micros(),
                        replaced,
                        rows: 0,
                    },
                })
            }
        }
    }

    /// With the scores in a table of the history's database: the step that replaces this run's
    /// rows from the scores table (`scores`, its id column `id`), inside the table's transaction.
    pub(crate) fn then_step(
        &self,
        job: &HistoryJob,
        shard: Option<Shard>,
        scores: &str,
        id: &str,
        health: bool,
    ) -> Option<TxStep> {
        let (HistoryWriter::FromOutput, HistoryDest::Postgres { url, table }) =
            (&self.writer, &job.dest)
        else {
            return None;
        };
        let (u, t, as_of) = (url.clone(), table.clone(), job.as_of);
        let health_cols = if health {
            "health_score, health_band, action"
        } else {
            "NULL::double precision, NULL::text, NULL::text"
        };
        let insert = format!(
            "INSERT INTO {} ({}) SELECT {}, DATE '{as_of}', model, churn_probability, risk_tier, {health_cols} FROM {}",
            postgres::qualified(table),
            column_list(),
            postgres::ident_one(id),
            postgres::qualified(scores),
        );
        Some(Box::new(move |tx| {
            let replaced = delete_run(tx, &u, &t, as_of, shard)?;
            postgres::execute(tx, &u, &format!("appending the run to {t}"), &insert, &[])?;
            Ok(replaced)
        }))
    }
}

/// The history's columns quoted for SQL, in order.
fn column_list() -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(n, _)| postgres::ident_one(n))
        .collect();
    cols.join(", ")
}

/// The columns empty for a model without usage health.
fn nullable(name: &str) -> bool {
    matches!(name, "health_score" | "health_band" | "action")
}

impl HistoryWriter {
    /// How the scored rows must carry their history rows for this writer.
    pub(crate) fn row_kind(&self) -> HistoryRowKind {
        match self {
            HistoryWriter::Postgres(_) => HistoryRowKind::Csv,
            HistoryWriter::FromOutput => HistoryRowKind::FromOutput,
            HistoryWriter::Parquet { .. } => HistoryRowKind::Columns,
        }
    }

    /// Writes the history rows of a block's parts.
    pub(crate) fn write<'a>(&mut self, parts: impl Iterator<Item = &'a HistoryRows>) -> Result<()> {
        match self {
            HistoryWriter::FromOutput => Ok(()),
            HistoryWriter::Postgres(w) => {
                let mut bytes = Vec::new();
                for p in parts {
                    bytes.extend_from_slice(&p.csv);
                }
                if bytes.is_empty() {
                    return Ok(());
                }
                w.write(bytes)
            }
            HistoryWriter::Parquet {
                path,
                w,
                schema,
                as_of,
                model,
                scored_at,
                rows,
                ..
            } => {
                let parts: Vec<&HistoryRows> = parts.collect();
                let n: usize = parts.iter().map(|p| p.p.len()).sum();
                if n == 0 {
                    return Ok(());
                }
                let ids = StringArray::from_iter_values(
                    parts.iter().flat_map(|c| split_ids(&c.ids, &c.id_ends)),
                );
                let h = || parts.iter().flat_map(|c| c.health.iter());
                let arrays: Vec<ArrayRef> = vec![
                    Arc::new(ids),
                    Arc::new(Date32Array::from(vec![*as_of; n])),
                    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                        model.as_str(),
                        n,
                    ))),
                    Arc::new(Float64Array::from_iter_values(
                        parts.iter().flat_map(|c| c.p.iter().copied()),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        parts.iter().flat_map(|c| c.tier.iter().map(|t| t.as_str())),
                    )),
                    Arc::new(Float64Array::from_iter(h().map(|h| h.map(|h| h.score)))),
                    Arc::new(StringArray::from_iter(
                        h().map(|h| h.map(|h| h.band.as_str())),
                    )),
                    Arc::new(StringArray::from_iter(
                        h().map(|h| h.map(|h| h.action.as_str())),
                    )),
                    Arc::new(
                        TimestampMicrosecondArray::from(vec![*scored_at; n]).with_timezone("UTC"),
                    ),
                ];
                let batch = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| Error::data(&*path, e.to_string()))?;
                w.write(&batch)
                    .map_err(|e| Error::data(&*path, e.to_string()))?;
                *rows += n as u64;
                Ok(())
            }
        }
    }

    /// Commits the run; returns (rows appended, rows replaced). `from_output` is what the
    /// scores table's transaction reported when it appended the run: (rows, replaced).
    pub(crate) fn commit(self, from_output: (u64, u64)) -> Result<(u64, u64)> {
        match self {
            HistoryWriter::FromOutput => Ok(from_output),
            HistoryWriter::Postgres(w) => {
                let done = w.commit()?;
                Ok((done.rows, done.setup))
            }
            HistoryWriter::Parquet {
                path,
                file,
                w,
                replaced,
                rows,
                ..
            } => {
                w.close().map_err(|e| Error::data(&path, e.to_string()))?;
                file.persist(&path)?;
                Ok((rows, replaced))
            }
        }
    }
}

fn parquet_schema() -> Arc<Schema> {
    let mut fields: Vec<Field> = COLUMNS
        .iter()
        .map(|&(name, ty)| {
            let ty = match (name, ty) {
                ("as_of", _) => DataType::Date32,
                (_, ColumnType::Float) => DataType::Float64,
                (_, ColumnType::Integer) => DataType::Int64,
                (_, ColumnType::Text) => DataType::Utf8,
            };
            Field::new(name, ty, nullable(name))
        })
        .collect();
    fields.push(Field::new(
        "scored_at",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    Arc::new(Schema::new(fields))
}

/// `AS_OF.parquet`, or `AS_OF.shard-i-of-N.parquet` for a shard's run.
fn run_file_name(as_of: NaiveDate, shard: Option<Shard>) -> String {
    match shard {
        None => format!("{as_of}.parquet"),
        Some(s) => format!("{as_of}.shard-{}-of-{}.parquet", s.index, s.count),
    }
}

/// The runs in a history folder: (as-of date, file), from the file names. Other files (a running
/// run's temporary file among them) are not runs and are not read.
fn run_files(dir: &Path) -> Result<Vec<(NaiveDate, PathBuf)>> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(d) = entry.file_name().to_str().and_then(run_date) {
            runs.push((d, entry.path()));
        }
    }
    runs.sort();
    Ok(runs)
}

/// The as-of date of a run file's name (`AS_OF.parquet`, `AS_OF.shard-i-of-N.parquet`).
fn run_date(name: &str) -> Option<NaiveDate> {
    let stem = name.strip_suffix(".parquet")?;
    let (date, rest) = stem.split_once('.').unwrap_or((stem, ""));
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    (rest.is_empty() || rest.starts_with("shard-")).then_some(d)
}

fn load_parquet(dir: &Path, as_of: NaiveDate, shard: Option<Shard>) -> Result<PreviousRuns> {
    let mut previous = PreviousRuns::default();
    for (date, path) in run_files(dir)?.into_iter().rev() {
        if date >= as_of {
            continue;
        }
        let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(|e| Error::data(&path, format!("not a readable history file: {e}")))?;
        let names = ["customer_id", "churn_probability", "risk_tier"];
        let schema = b.schema().clone();
        let mut at = Vec::new();
        for n in names {
            at.push(schema.index_of(n).map_err(|_| {
                Error::column(&path, n, "no such column: not a churn history file")
            })?);
        }
        let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), at.iter().copied());
        let reader = b
            .with_projection(mask)
            .build()
            .map_err(|e| Error::data(&path, e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::data(&path, e.to_string()))?;
            let col = |n: &str| batch.column(batch.schema().index_of(n).expect("projected"));
            let (ids, p, tiers) = (col(names[0]), col(names[1]), col(names[2]));
            let bad = |n: &str, want: &str| Error::column(&path, n, format!("expected {want}"));
            let ids = ids
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad(names[0], "text"))?;
            let p = p
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| bad(names[1], "float64"))?;
            let tiers = tiers
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad(names[2], "text"))?;
            for i in 0..batch.num_rows() {
                let id = ids.value(i);
                if shard.is_some_and(|s| !s.owns(Some(id))) || p.is_null(i) {
                    continue;
                }
                let tier = RiskTier::parse(tiers.value(i)).ok_or_else(|| {
                    bad(
                        names[2],
                        &format!("LOW, MEDIUM or HIGH, not {:?}", tiers.value(i)),
                    )
                })?;
                previous.offer(
                    id,
                    Previous {
                        probability: p.value(i),
                        tier,
                        as_of: date,
                    },
                );
            }
        }
    }
    Ok(previous)
}

/// Creates the history table and its index if they do not exist. Concurrent first runs (shards)
/// take turns on an advisory lock, so exactly one creates it.
fn ensure_table(url: &str, table: &str) -> Result<()> {
    let mut client = postgres::connect(url)?;
    let mut t = client
        .transaction()
        .map_err(|e| postgres::db_error(url, "starting a transaction", postgres::pg_message(&e)))?;
    let (_, name) = postgres::split_table(table);
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|&(n, ty)| {
            let ty = match (n, ty) {
                ("as_of", _) => "date",
                (_, ColumnType::Float) => "double precision",
                (_, ColumnType::Integer) => "bigint",
                (_, ColumnType::Text) => "text",
            };
            let null = if nullable(n) { "" } else { " NOT NULL" };
            format!("{} {ty}{null}", postgres::ident_one(n))
        })
        .chain(["scored_at timestamptz NOT NULL DEFAULT now()".to_string()])
        .collect();
    // One index follows a customer through the runs; the other finds a run to replace.
    let index = postgres::short(&format!("{name}_customer_id_as_of_idx"));
    let run_index = postgres::short(&format!("{name}_as_of_idx"));
    let sql = format!(
        "SELECT pg_advisory_xact_lock(hashtext('churn history ' || {lit}));
         CREATE TABLE IF NOT EXISTS {q} ({cols});
         CREATE INDEX IF NOT EXISTS {idx} ON {q} (customer_id, as_of);
         CREATE INDEX IF NOT EXISTS {run_idx} ON {q} (as_of);
         COMMENT ON TABLE {q} IS 'churn score history: one row per customer and run (as_of)';",
        lit = quote_literal(table),
        q = postgres::qualified(table),
        cols = cols.join(", "),
        idx = postgres::ident_one(&index),
        run_idx = postgres::ident_one(&run_index),
    );
    // A table of that name that is not a history is refused before it is touched.
    let doing = format!("checking history table {table}");
    let has: Vec<String> = t
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&postgres::qualified(table)],
        )
        .map_err(|e| postgres::db_error(url, &doing, postgres::pg_message(&e)))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lacks: Vec<&str> = COLUMNS
        .iter()
        .map(|(n, _)| *n)
        .chain(["scored_at"])
        .filter(|n| !has.is_empty() && !has.iter().any(|h| h == n))
        .collect();
    if !lacks.is_empty() {
        return Err(Error::Database {
            target: format!("{} ({doing})", postgres::redact(url)),
            message: format!(
                "table {table} exists but is not a churn history: it lacks {} (its columns: {}); name another --history-table",
                lacks.join(", "),
                has.join(", ")
            ),
        });
    }
    postgres::batch(
        &mut t,
        url,
        &format!("creating history table {table}"),
        &sql,
    )?;
    t.commit()
        .map_err(|e| postgres::db_error(url, "committing", postgres::pg_message(&e)))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Each customer's latest run before `as_of`, read from the table.
fn load_postgres(
    url: &str,
    table: &str,
    as_of: NaiveDate,
    shard: Option<Shard>,
) -> Result<PreviousRuns> {
    let mut client = postgres::connect(url)?;
    let doing = format!("reading the history in {table}");
    let sql = format!(
        "SELECT DISTINCT ON (customer_id) customer_id, as_of::text, churn_probability, risk_tier
         FROM {} WHERE as_of < $1::text::date ORDER BY customer_id, as_of DESC",
        postgres::qualified(table)
    );
    let fail = |e: ::postgres::Error| postgres::db_error(url, &doing, postgres::pg_message(&e));
    let day = as_of.to_string();
    let rows = client
        .query_raw(
            sql.as_str(),
            [&day as &(dyn ::postgres::types::ToSql + Sync)],
        )
        .map_err(fail)?;
    let mut previous = PreviousRuns::default();
    use ::postgres::fallible_iterator::FallibleIterator;
    let mut rows = rows;
    while let Some(row) = rows.next().map_err(fail)? {
        let id: &str = row.try_get(0).map_err(fail)?;
        if shard.is_some_and(|s| !s.owns(Some(id))) {
            continue;
        }
        let day: &str = row.try_get(1).map_err(fail)?;
        let p: f64 = row.try_get(2).map_err(fail)?;
        let tier: &str = row.try_get(3).map_err(fail)?;
        let bad = |what: String| Error::Database {
            target: format!("{} ({doing})", postgres::redact(url)),
            message: format!("customer {id}: {what}"),
        };
        let tier = RiskTier::parse(tier)
            .ok_or_else(|| bad(format!("risk_tier {tier:?} is not LOW, MEDIUM or HIGH")))?;
        let as_of = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| bad(format!("as_of {day:?} is not a date")))?;
        previous.offer(
            id,
            Previous {
                probability: p,
                tier,
                as_of,
            },
        );
    }
    Ok(previous)
}

/// Deletes the rows of the run on `as_of` (of this shard's customers only, with a shard);
/// returns how many.
fn delete_run(
    tx: &mut ::postgres::Transaction<'_>,
    url: &str,
    table: &str,
    as_of: NaiveDate,
    shard: Option<Shard>,
) -> Result<u64> {
    let q = postgres::qualified(table);
    let doing = format!("replacing the run of {as_of} in {table}");
    let day = as_of.to_string();
    match shard {
        None => postgres::execute(
            tx,
            url,
            &doing,
            &format!("DELETE FROM {q} WHERE as_of = $1::text::date"),
            &[&day],
        ),
        Some(s) => {
            let rows = tx
                .query(
                    &format!("SELECT DISTINCT customer_id FROM {q} WHERE as_of = $1::text::date"),
                    &[&day],
                )
                .map_err(|e| postgres::db_error(url, &doing, postgres::pg_message(&e)))?;
            let mine: Vec<String> = rows
                .iter()
                .map(|r| r.get::<_, String>(0))
                .filter(|id| s.owns(Some(id)))
                .collect();
            if mine.is_empty() {
                return Ok(0);
            }
            postgres::execute(
                tx,
                url,
                &doing,
                &format!("DELETE FROM {q} WHERE as_of = $1::text::date AND customer_id = ANY($2)"),
                &[&day, &mine],
            )
        }
    }
}

/// Back to a date from Parquet's DATE (for readers of the folder).
pub fn date_of_epoch_days(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_are_dates_and_shards_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "2020-04-04.parquet",
            "2020-05-02.shard-1-of-4.parquet",
            ".2020-05-09.parquet.tmp-123",
            "notes.parquet",
            "2020-13-01.parquet",
            "2020-05-02.backup.parquet",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let runs: Vec<String> = run_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|(d, p)| format!("{d} {}", p.file_name().unwrap().to_str().unwrap()))
            .collect();
        assert_eq!(
            runs,
            [
                "2020-04-04 2020-04-04.parquet",
                "2020-05-02 2020-05-02.shard-1-of-4.parquet"
            ]
        );
    }

    #[test]
    fn dates_print_without_allocating_as_chrono_prints_them() {
        for d in ["2020-04-04", "1998-12-31", "0999-01-09", "2026-10-10"] {
            assert_eq!(date_text(parse_as_of(d).unwrap()), d.as_bytes());
        }
    }

    #[test]
    fn the_largest_risers_are_kept_whatever_the_order_offered() {
        let prev = |p| Previous {
            probability: p,
            tier: RiskTier::Low,
            as_of: parse_as_of("2020-01-01").unwrap(),
        };
        // 500 customers, rises from -0.2 to 0.3 in a scrambled order, ties among them.
        let rows: Vec<(String, f64)> = (0..500)
            .map(|i| (format!("c{i}"), f64::from((i * 37) % 50) / 100.0 - 0.2))
            .collect();
        let (mut a, mut b) = (TopRisers::default(), TopRisers::default());
        for (i, (id, rise)) in rows.iter().enumerate() {
            let part = if i % 3 == 0 { &mut a } else { &mut b };
            part.offer(id, &prev(0.5), 0.5 + rise, RiskTier::High);
        }
        a.merge(b);
        let got: Vec<(f64, String)> = a
            .into_list()
            .into_iter()
            .map(|r| (r.probability_change, r.id))
            .collect();
        let mut want: Vec<(f64, String)> = rows
            .iter()
            .map(|(id, r)| ((0.5 + r) - 0.5, id.clone()))
            .filter(|(c, _)| *c > 0.0)
            .collect();
        want.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
        want.truncate(RISERS);
        assert_eq!(got, want);
    }

    #[test]
    fn the_latest_earlier_run_wins() {
        let d = |s| parse_as_of(s).unwrap();
        let mut p = PreviousRuns::default();
        let run = |p: f64, day| Previous {
            probability: p,
            tier: RiskTier::Low,
            as_of: d(day),
        };
        p.offer("a", run(0.1, "2020-01-01"));
        p.offer("a", run(0.3, "2020-03-01"));
        p.offer("a", run(0.2, "2020-02-01"));
        assert_eq!(p.get("a").unwrap().probability, 0.3);
        assert_eq!(p.len(), 1);
        assert!(parse_as_of("2020-02-30").is_err());
        assert_eq!(
            date_of_epoch_days(epoch_days(d("2020-04-04"))),
            d("2020-04-04")
        );
    }
}
