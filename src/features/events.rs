//! Reading the event log on every core: a thread reads blocks; each block is cut into parts
//! parsed in parallel, and each part sorts its events by customer shard; then the shards add
//! their events in parallel, each shard owned by one thread. Totals come out the same whatever
//! the number of threads, and the first bad row stops the run with its line (or row), column and
//! what was expected.
use super::rows::{self, ArrowColumn, Cell, CellError};
use super::store::{Event, Shard, Timeline};
use crate::error::{Error, Result};
use crate::io::blocks::{Block, BlockSource, Numbering};
use rayon::prelude::*;
use std::path::PathBuf;

/// How event cells become events.
pub struct EventReader {
    /// Name of the input for messages.
    pub name: PathBuf,
    /// Requested columns: id, timestamp, then type and value when present.
    pub columns: Vec<String>,
    pub type_at: Option<usize>,
    pub value_at: Option<usize>,
    /// The user column, when distinct users are counted.
    pub user_at: Option<usize>,
    pub offset: i64,
    /// Named event types: channel = 1 + position.
    pub types: Vec<String>,
    /// Types that count as activity for the label (None = all).
    pub activity: Option<Vec<String>>,
    pub chunk_rows: usize,
}

/// Events of one part, sorted by shard; ids live in `arena`.
#[derive(Default)]
struct PartEvents {
    lines: u64,
    rows: u64,
    arena: String,
    buckets: Vec<Vec<Placed>>,
}

/// An event with its customer id and user id (empty: none) as ranges of the part's arena.
#[derive(Clone, Copy)]
struct Placed {
    id: (u32, u32),
    user: (u32, u32),
    ev: Event,
}

/// A bad row within a part: (line or row relative to the part, column, message).
type PartError = (u64, Option<usize>, String);

impl EventReader {
    fn event(&self, cells: &[Cell<'_>], part: &mut PartEvents) -> Result<(), CellError> {
        let id = rows::text(cells[0]).ok_or((0, "missing customer id".to_string()))?;
        let time = rows::time(cells[1], self.offset)
            .map_err(|m| (1, m))?
            .ok_or((1, "missing timestamp".to_string()))?;
        let (mut channel, mut qualifies) = (0u16, self.activity.is_none());
        if let Some(k) = self.type_at
            && (!self.types.is_empty() || self.activity.is_some())
        {
            let ty = rows::text(cells[k]).unwrap_or_default();
            if let Some(i) = self.types.iter().position(|t| *t == ty) {
                channel = i as u16 + 1;
            }
            if let Some(a) = &self.activity {
                qualifies = a.iter().any(|t| *t == ty);
            }
        }
        let value = match self.value_at {
            Some(k) => rows::number(cells[k]).map_err(|m| (k, m))?,
            None => f64::NAN,
        };
        let shard = crate::io::Shard::of(&id, part.buckets.len() as u64) as usize;
        let at = part.arena.len() as u32;
        part.arena.push_str(&id);
        // A blank user cell is an event without a user: it counts everywhere but in users.
        let user_at = part.arena.len() as u32;
        if let Some(user) = self.user_at.and_then(|k| rows::text(cells[k])) {
            part.arena.push_str(&user);
        }
        part.buckets[shard].push(Placed {
            id: (at, id.len() as u32),
            user: (user_at, part.arena.len() as u32 - user_at),
            ev: Event {
                time,
                channel,
                qualifies,
                value,
            },
        });
        Ok(())
    }

    fn csv_part(
        &self,
        bytes: &[u8],
        layout: &crate::io::blocks::CsvLayout,
        shards: usize,
    ) -> std::result::Result<PartEvents, PartError> {
        let mut part = PartEvents {
            buckets: vec![Vec::new(); shards],
            ..Default::default()
        };
        let (lines, rows) =
            rows::each_csv_record(bytes, layout, |cells| self.event(cells, &mut part))?;
        part.lines = lines;
        part.rows = rows;
        Ok(part)
    }

    fn arrow_part(
        &self,
        columns: &[arrow_array::ArrayRef],
        a: usize,
        b: usize,
        shards: usize,
    ) -> std::result::Result<PartEvents, PartError> {
        let mut part = PartEvents {
            buckets: vec![Vec::new(); shards],
            ..Default::default()
        };
        let views: Vec<ArrowColumn<'_>> = columns.iter().map(ArrowColumn::new).collect();
        let mut cells = [Cell::Null; rows::MAX_CELLS];
        for i in a..b {
            for (k, v) in views.iter().enumerate() {
                cells[k] = v.get(i);
            }
            self.event(&cells[..views.len()], &mut part)
                .map_err(|(k, m)| ((i - a) as u64, Some(k), m))?;
            part.rows += 1;
        }
        Ok(part)
    }

    /// Reads every event into `shards`; returns the number of events.
    pub fn read(
        &self,
        mut source: Box<dyn BlockSource>,
        shards: &mut [Shard],
        tl: &Timeline,
    ) -> Result<u64> {
        source.select(&self.columns)?;
        let recycler = source.recycler();
        let numbering = source.numbering();
        let mut next = source.first_number();
        let parts = rayon::current_num_threads() * 4;
        let (rx, reader) = crate::io::blocks::read_ahead(source, self.chunk_rows);
        let mut progress = crate::io::progress::Progress::new("events");
        let mut events = 0u64;
        let result = (|| {
            for msg in &rx {
                let (block, fraction) = msg?;
                let results: Vec<std::result::Result<PartEvents, PartError>> = match &block {
                    Block::Csv { bytes, layout } => {
                        crate::io::csv_records::split_ranges(bytes, parts)
                            .into_par_iter()
                            .map(|(a, b)| self.csv_part(&bytes[a..b], layout, shards.len()))
                            .collect()
                    }
                    Block::Arrow { columns, rows } => crate::io::blocks::arrow_ranges(*rows, parts)
                        .into_par_iter()
                        .map(|(a, b)| self.arrow_part(columns, a, b, shards.len()))
                        .collect(),
                };
                let mut done = Vec::with_capacity(results.len());
                for r in results {
                    match r {
                        Ok(p) => done.push(p),
                        Err((at, col, message)) => {
                            let before: u64 = done
                                .iter()
                                .map(|p: &PartEvents| match numbering {
                                    Numbering::Line => p.lines,
                                    Numbering::Row => p.rows,
                                })
                                .sum();
                            let number = next + before + at;
                            return Err(Error::Data {
                                path: self.name.clone(),
                                line: Some(number),
                                column: col.map(|k| self.columns[k].clone()),
                                message,
                            });
                        }
                    }
                }
                if let (Block::Csv { bytes, .. }, Some(r)) = (block, &recycler) {
                    let _ = r.send(bytes);
                }
                shards.par_iter_mut().enumerate().for_each(|(k, shard)| {
                    for p in &done {
                        for e in &p.buckets[k] {
                            let text =
                                |(at, len): (u32, u32)| &p.arena[at as usize..(at + len) as usize];
                            let c = shard.customer(text(e.id));
                            shard.add(c, &e.ev, tl);
                            if e.user.1 > 0 {
                                shard.add_user(c, text(e.user), crate::time::day_of(e.ev.time), tl);
                            }
                        }
                    }
                });
                for p in &done {
                    next += match numbering {
                        Numbering::Line => p.lines,
                        Numbering::Row => p.rows,
                    };
                    events += p.rows;
                }
                progress.update(events, fraction);
            }
            Ok(())
        })();
        drop(rx);
        reader.join().expect("reader thread");
        progress.finish();
        result.map(|()| events)
    }
}

/// The events of each type in the log, most frequent first (ties by type), read in one pass over
/// the type column alone; empty type cells are not counted. A row the main read would refuse
/// ends the count early: that read reports it with its line.
pub fn count_types(
    source: Box<dyn BlockSource>,
    column: &str,
    chunk_rows: usize,
) -> Result<Vec<(String, u64)>> {
    use std::collections::HashMap;
    let counts = fold_column(
        source,
        column,
        chunk_rows,
        HashMap::new,
        |part: &mut HashMap<String, u64>, c| {
            if let Some(t) = rows::text(c) {
                match part.get_mut(t.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        part.insert(t.into_owned(), 1);
                    }
                }
            }
            Ok(())
        },
        |into, part| {
            for (t, n) in part {
                *into.entry(t).or_default() += n;
            }
        },
    )?;
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(counts)
}

/// The first and last day of the log's timestamps (None: no event), read in one pass over the
/// timestamp column alone. A cell that is not a time ends the pass early, as in [`count_types`].
pub fn day_range(
    source: Box<dyn BlockSource>,
    column: &str,
    offset: i64,
    chunk_rows: usize,
) -> Result<Option<(i64, i64)>> {
    let (lo, hi) = fold_column(
        source,
        column,
        chunk_rows,
        || (i64::MAX, i64::MIN),
        |part: &mut (i64, i64), c| {
            if let Some(t) = rows::time(c, offset).map_err(|_| ())? {
                let d = crate::time::day_of(t);
                *part = (part.0.min(d), part.1.max(d));
            }
            Ok(())
        },
        |into: &mut (i64, i64), part| *into = (into.0.min(part.0), into.1.max(part.1)),
    )?;
    Ok((lo <= hi).then_some((lo, hi)))
}

/// Folds one column of the log on every core: each part of a block folds its cells into a
/// `fresh()` accumulator, and the parts are merged in order. A cell `fold` refuses ends the pass
/// after the parts before it (the main read reports that row with its line).
fn fold_column<A: Send>(
    mut source: Box<dyn BlockSource>,
    column: &str,
    chunk_rows: usize,
    fresh: impl Fn() -> A + Sync,
    fold: impl Fn(&mut A, Cell<'_>) -> std::result::Result<(), ()> + Sync,
    merge: impl Fn(&mut A, A),
) -> Result<A> {
    source.select(&[column.to_string()])?;
    let parts = rayon::current_num_threads() * 4;
    let (rx, reader) = crate::io::blocks::read_ahead(source, chunk_rows);
    let mut total = fresh();
    let mut result = Ok(());
    for msg in &rx {
        let block = match msg {
            Ok((block, _)) => block,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let done: Vec<Option<A>> = match &block {
            Block::Csv { bytes, layout } => crate::io::csv_records::split_ranges(bytes, parts)
                .into_par_iter()
                .map(|(a, b)| {
                    let mut part = fresh();
                    rows::each_csv_record(&bytes[a..b], layout, |cells| {
                        fold(&mut part, cells[0]).map_err(|()| (0, String::new()))
                    })
                    .ok()
                    .map(|_| part)
                })
                .collect(),
            Block::Arrow { columns, rows: n } => crate::io::blocks::arrow_ranges(*n, parts)
                .into_par_iter()
                .map(|(a, b)| {
                    let view = ArrowColumn::new(&columns[0]);
                    let mut part = fresh();
                    for i in a..b {
                        fold(&mut part, view.get(i)).ok()?;
                    }
                    Some(part)
                })
                .collect(),
        };
        let complete = done.iter().all(Option::is_some);
        for part in done.into_iter().map_while(|p| p) {
            merge(&mut total, part);
        }
        if !complete {
            break;
        }
    }
    drop(rx);
    reader.join().expect("reader thread");
    result.map(|()| total)
}
