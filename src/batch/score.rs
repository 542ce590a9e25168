//! `churn score`: rows from a file or PostgreSQL, scores to a file or a PostgreSQL table.
//!
//! A reading thread cuts the input into blocks; each block is split into parts that are parsed,
//! scored and formatted on every core at once; the results are written in input order. Memory
//! depends on the block size, not on the input. Every row read ends scored, in the rejects file
//! (with its line or row, id, columns and reason), or in another shard, and the job checks that the
//! counts add up. Files are written to a temporary name and renamed at the end; a table is staged
//! and swapped in one transaction; so a failed run never leaves partial output.
use super::history::{HistoryJob, HistoryRun, HistorySummary, PreviousRuns, Riser, TopRisers};
use super::output::{
    BufferPool, Output, OutputSpec, Part, RankBy, Reject, RowFormat, ScoredRow, Sink,
};
use crate::error::{Error, Result};
use crate::io::blocks::{self, Block, CellRef, CsvLayout, Numbering, Source};
use crate::io::csv_records::{self, Record, RecordParser};
use crate::io::progress::Progress;
use crate::io::shard::Shard;
use crate::model::drift::{DriftBand, DriftCounts, DriftReport};
use crate::model::{ChurnModel, RowScratch};
use crate::schema::Value;
use arrow_array::ArrayRef;
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Adds `rank`: 1 = highest probability (or lowest health, by `rank_by`); ties share a rank.
    pub rank: bool,
    pub rank_by: RankBy,
    pub chunk_rows: usize,
    /// Refuse rows with missing features (and inputs lacking a feature column) instead of
    /// imputing them.
    pub strict: bool,
    /// The CSV field delimiter (default: found from the header line).
    pub delimiter: Option<u8>,
    /// Keep this run in a history and add each customer's previous run to the output.
    pub history: Option<HistoryJob>,
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
    /// With health: rows per action (RESCUE, RENEW, ONBOARD, GROW); empty without. In JSON an
    /// object in that order.
    #[serde(serialize_with = "in_order")]
    pub actions: Vec<(String, u64)>,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub rejects_file: Option<PathBuf>,
    /// Feature columns the input lacks: imputed for every row.
    pub imputed_columns: Vec<String>,
    /// With --history: what the run kept.
    pub history: Option<HistorySummary>,
    /// With --history: the customers whose churn probability rose most since their previous
    /// run, largest rise first.
    pub largest_risers: Vec<Riser>,
    /// For a model with drift references: the scored rows against the training customers (as
    /// `churn drift --json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
}

/// Pairs as a JSON object, keeping their order.
fn in_order<S: serde::Serializer>(
    pairs: &[(String, u64)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// Per-thread buffers reused from row to row.
#[derive(Default)]
struct Scratch {
    row: RowScratch,
    values: Vec<Value<'static>>,
    top: Vec<usize>,
    /// A row's drift bins.
    bins: Vec<u16>,
}

/// What does not change while a job runs: the model, the options and the output encoding.
struct Scorer<'m> {
    model: &'m ChurnModel,
    top_k: usize,
    shard: Option<Shard>,
    strict: bool,
    has_id: bool,
    numbering: Numbering,
    /// For each feature, its cell among the selected columns; `None` when the input lacks it.
    slots: Vec<Option<usize>>,
    /// Where the id is among the selected columns.
    id_slot: usize,
    /// With --history: each customer's previous run.
    previous: Option<&'m PreviousRuns>,
    format: RowFormat,
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
    let (mut source, _) = job.input.open(job.delimiter)?;
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
    // A feature column the input lacks is imputed for every row, as a request without that
    // feature is; with --strict it is refused.
    let imputed_columns: Vec<String> = features
        .iter()
        .filter(|f| !header.contains(&f.name))
        .map(|f| f.name.clone())
        .collect();
    if imputed_columns.len() == features.len() {
        // Not a table of these customers at all (scores, another model's table): say so rather
        // than score every row as the average customer.
        return Err(Error::column(
            job.input.name(),
            &features[0].name,
            format!(
                "no such column: the input has none of the model's features ({}); its columns are: {}",
                model.schema().feature_list(),
                header.join(", ")
            ),
        ));
    }
    if job.strict && !imputed_columns.is_empty() {
        return Err(Error::column(
            job.input.name(),
            imputed_columns.join(", "),
            "the model needs this feature column and --strict refuses to impute it",
        ));
    }
    let mut columns: Vec<String> = Vec::with_capacity(features.len() + 1);
    let slots: Vec<Option<usize>> = features
        .iter()
        .map(|f| {
            (!imputed_columns.contains(&f.name)).then(|| {
                columns.push(f.name.clone());
                columns.len() - 1
            })
        })
        .collect();
    let id_slot = columns.len();
    if let Some(id) = &id {
        columns.push(id.clone());
    }
    source.select(&columns)?;
    let recycler = source.recycler();
    let numbering = source.numbering();
    let id_name = id.clone().unwrap_or_else(|| numbering.header().into());
    if job.history.is_some() && id.is_none() {
        return Err(Error::Usage(
            "--history needs a customer id column: pass --id COL".into(),
        ));
    }
    if job.rank_by == RankBy::Health && model.health().is_none() {
        return Err(Error::Usage(format!(
            "--rank-by health: {} has no usage health (train it with --usage COLS, or on a churn features table)",
            model.id()
        )));
    }
    let spec = OutputSpec {
        id_name,
        top_k: job.top_k,
        rank: job.rank,
        rank_by: job.rank_by,
        model_id: model.id().to_string(),
        feature_names: features.iter().map(|f| f.name.clone()).collect(),
        health: model.health().is_some(),
        history: job.history.as_ref().map(|h| h.as_of),
    };
    // The history is opened first: the previous runs must be known before any row is scored.
    let output_url = match &job.output {
        Sink::Postgres { url, .. } => Some(url.as_str()),
        Sink::File(_) => None,
    };
    let run = job
        .history
        .as_ref()
        .map(|h| HistoryRun::open(h, job.shard, model.id(), output_url))
        .transpose()?;
    let then = match (&run, &job.history, &job.output) {
        (Some(run), Some(h), Sink::Postgres { table, .. }) => {
            run.then_step(h, job.shard, table, &spec.id_name, spec.health)
        }
        _ => None,
    };
    let kind = run.as_ref().map(|r| r.writer.row_kind());
    let (previous, mut history_writer) = match run {
        Some(r) => (Some(r.previous), Some(r.writer)),
        None => (None, None),
    };
    let output = Output::create(&job.output, &spec, then)?;
    let format = RowFormat::new(&spec, output.wants_csv(), kind);
    // Scored blocks are written on their own thread while the next block is scored.
    let (written, to_write) = std::sync::mpsc::sync_channel::<Vec<Part>>(1);
    let pool = std::sync::Arc::new(BufferPool::default());
    let give_back = pool.clone();
    let write_thread = std::thread::spawn(move || -> Result<_> {
        let mut output = output;
        for parts in to_write {
            if let Some(h) = &mut history_writer {
                h.write(parts.iter().map(|p| &p.history))?;
            }
            output.write(parts, &give_back)?;
        }
        Ok((output, history_writer))
    });
    let rejects_path = job.rejects.clone().unwrap_or_else(|| match &job.output {
        Sink::File(p) => {
            let mut p = p.clone().into_os_string();
            p.push(".rejects.csv");
            PathBuf::from(p)
        }
        Sink::Postgres { table, .. } => PathBuf::from(format!("{table}.rejects.csv")),
    });
    let scorer = Scorer {
        model,
        top_k: job.top_k,
        shard: job.shard,
        strict: job.strict,
        has_id: id.is_some(),
        numbering,
        slots,
        id_slot,
        previous: previous.as_ref(),
        format,
        pool,
    };
    let mut rejects: Option<csv::Writer<std::fs::File>> = None;
    let mut sum = ScoreSummary {
        imputed_columns,
        ..ScoreSummary::default()
    };
    let mut progress = Progress::new("rows");
    let mut probs: Vec<f64> = Vec::new();
    let mut actions = [0u64; 4];
    let mut with_previous = 0u64;
    let mut risers = TopRisers::default();
    let mut drift = model.file().drift.as_ref().map(DriftCounts::new);
    let mut next_line = source.first_number();
    let mut next_row = 1u64;
    let parts = rayon::current_num_threads() * 4;

    // The next block is read on its own thread while the current one is scored and written.
    let (rx, read_thread) = blocks::read_ahead(source, job.chunk_rows);
    for msg in rx {
        let (block, fraction) = msg?;
        let mut results: Vec<Part> = match &block {
            Block::Csv { bytes, layout } => {
                let ranges = csv_records::split_ranges(bytes, parts);
                // Without an id column a row is named by its line (or row) number, so each part
                // must know where it starts: count first.
                let bases: Vec<Option<(u64, u64)>> = if id.is_some() {
                    vec![None; ranges.len()]
                } else {
                    let counts: Vec<(u64, u64)> = ranges
                        .par_iter()
                        .map(|&(a, b)| csv_records::count_records(&bytes[a..b]))
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
            Block::Arrow { columns, rows } => blocks::arrow_ranges(*rows, parts)
                .into_par_iter()
                .map_init(Scratch::default, |s, (a, b)| {
                    scorer.arrow_part(columns, a, b, next_row + a as u64, s)
                })
                .collect(),
        };
        if let (Block::Csv { bytes, .. }, Some(r)) = (block, &recycler) {
            let _ = r.send(bytes);
        }
        for part in &mut results {
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
            for (k, n) in part.actions.iter().enumerate() {
                actions[k] += n;
            }
            sum.scored += part.scored();
            with_previous += part.with_previous;
            risers.merge(std::mem::take(&mut part.risers));
            if let (Some(total), Some(counts)) = (&mut drift, &part.drift) {
                total.merge(counts);
            }
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
    let (output, history_writer) = write_thread.join().expect("writer thread")?;
    read_thread.join().expect("reader thread");
    progress.finish();
    if sum.scored + sum.rejected + sum.other_shards != sum.rows_read {
        return Err(Error::CountMismatch(format!(
            "{} rows read but {} scored + {} rejected + {} in other shards",
            sum.rows_read, sum.scored, sum.rejected, sum.other_shards
        )));
    }
    if let Some(mut w) = rejects {
        w.flush().map_err(|e| Error::io(&rejects_path, e))?;
        sum.rejects_file = Some(rejects_path);
    }
    if let (Some(d), Some(counts)) = (&model.file().drift, &drift)
        && counts.rows > 0
    {
        let r = crate::model::drift::report(d, counts);
        for f in r.features.iter().filter(|f| f.band == DriftBand::Major) {
            tracing::warn!(
                "drift: {} is major (PSI {:.3}) against the training customers; see `churn drift`",
                f.feature,
                f.psi
            );
        }
        sum.drift = Some(r);
    }
    probs.sort_unstable_by(|a, b| b.total_cmp(a));
    let (written, in_table) = output.finish(&probs)?;
    if let (Some(w), Some(h)) = (history_writer, &job.history) {
        let (appended, replaced) = w.commit((written, in_table))?;
        sum.largest_risers = risers.into_list();
        sum.history = Some(HistorySummary {
            destination: h.dest.describe(),
            as_of: h.as_of.to_string(),
            appended,
            replaced,
            with_previous,
            new_customers: sum.scored - with_previous,
        });
    }
    if written != sum.scored {
        return Err(Error::CountMismatch(format!(
            "{} rows scored but {written} written",
            sum.scored
        )));
    }
    if model.health().is_some() {
        sum.actions = crate::model::health::Action::ALL
            .iter()
            .map(|a| (a.as_str().to_string(), actions[*a as usize]))
            .collect();
    }
    sum.seconds = start.elapsed().as_secs_f64();
    sum.rows_per_second = sum.rows_read as f64 / sum.seconds.max(1e-9);
    Ok(sum)
}

impl<'m> Scorer<'m> {
    /// Parses and scores one part of a CSV block. `base` is the global (line, row) of the part's
    /// first row, needed only when rows are named by number.
    fn csv_part<'b>(
        &self,
        bytes: &'b [u8],
        layout: &CsvLayout,
        base: Option<(u64, u64)>,
        s: &mut Scratch,
    ) -> Part {
        let mut part = Part::default();
        if self.format.wants_csv() {
            // Scores take about as many bytes as the features they came from.
            part.csv = self.pool.take(bytes.len() + bytes.len() / 4);
        }
        let mut parser = RecordParser::with_delimiter(bytes, layout.delimiter);
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
                    part.rejects.push(Reject {
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
        let views: Vec<blocks::ColumnView<'_>> =
            columns.iter().map(blocks::ColumnView::new).collect();
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

    /// Scores one row into `part`: `cells` hold the selected columns (the features the input
    /// has, in schema order, then the id when there is an id column); `number` names the row when
    /// there is no id. Cells become values by translation only: the model's one cell rule decides
    /// what is a number, what is missing and what is refused.
    fn score_cells(
        &self,
        cells: &[CellRef<'_>],
        line: u64,
        number: u64,
        part: &mut Part,
        s: &mut Scratch,
    ) {
        let row = part.rows;
        part.rows += 1;
        let id: Cow<'_, str> = if self.has_id {
            match cells[self.id_slot] {
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
        let mut values = recycle(std::mem::take(&mut s.values));
        values.extend(self.slots.iter().map(|slot| match slot.map(|k| cells[k]) {
            None | Some(CellRef::Null) => Value::Missing,
            Some(CellRef::Number(x)) => Value::Number(x),
            Some(CellRef::Text(t)) => Value::Text(t),
        }));
        let scored = self.model.score_row(&values, self.strict, &mut s.row);
        s.values = recycle(values);
        let Some(score) = scored else {
            let features = self.model.schema().features();
            let violations = &s.row.violations;
            part.rejects.push(Reject {
                line,
                row,
                id: if self.has_id {
                    id.into_owned()
                } else {
                    String::new()
                },
                columns: violations
                    .iter()
                    .map(|v| features[v.feature].name.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                reason: violations
                    .iter()
                    .map(|v| format!("{}: {}", features[v.feature].name, v.description))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
            return;
        };
        if let Some(d) = &self.model.file().drift {
            DriftCounts::bins(d, &s.row, score.probability, &mut s.bins);
            part.drift
                .get_or_insert_with(|| DriftCounts::new(d))
                .apply(&s.bins, false);
        }
        s.row.reasons_into(self.top_k, &mut s.top);
        let previous = self.previous.and_then(|p| p.get(&id));
        self.format.push(
            part,
            ScoredRow {
                id: &id,
                p: score.probability,
                tier: score.tier,
                reasons: &s.top,
                contributions: &s.row.contributions,
                health: score.health,
                previous,
            },
        );
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
