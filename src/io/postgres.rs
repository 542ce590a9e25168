//! PostgreSQL as a batch source and destination.
//!
//! In: a query or table streams out through `COPY (...) TO STDOUT (FORMAT csv)`, so rows arrive
//! as they are produced and feed the same parallel CSV path as files; only the columns the model
//! needs are selected.
//!
//! Out: one transaction creates a staging table beside the target, copies the scores in with
//! `COPY ... FROM STDIN`, and at the end drops the old table and renames the staging table in its
//! place. Until that commit nobody sees the staging table; a run that fails or is killed at any
//! point rolls back, leaving the previous table exactly as it was.
use super::blocks::{Block, BlockSource, CsvSource, Numbering};
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Whether a `--input`/`--output` names a PostgreSQL database.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

pub fn db_error(url: &str, doing: &str, e: impl std::fmt::Display) -> Error {
    Error::Database {
        target: format!("{} ({doing})", redact(url)),
        message: e.to_string(),
    }
}

/// The text of an I/O error from a COPY stream: the PostgreSQL error inside it when there is one.
fn io_message(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<postgres::Error>())
    {
        Some(pg) => pg_message(pg),
        None => e.to_string(),
    }
}

/// The full error text of a PostgreSQL error: its message, detail and hint.
pub fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m += &format!(" ({d})");
            }
            if let Some(h) = db.hint() {
                m += &format!("; hint: {h}");
            }
            m
        }
        None => {
            // A lost connection says little by itself; its causes say what happened.
            let mut m = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                m += &format!(": {c}");
                cause = c.source();
            }
            if e.is_closed() || m.contains("communicating") {
                m += " (the connection to the database was lost; nothing was committed, so the run can be repeated)";
            }
            m
        }
    }
}

pub fn connect(url: &str) -> Result<postgres::Client> {
    postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| db_error(url, "connecting", pg_message(&e)))
}

/// What to read: a table or the result of a query.
#[derive(Debug, Clone)]
pub enum Query {
    Table(String),
    Sql(String),
}

impl Query {
    fn sql(&self) -> String {
        match self {
            Query::Table(t) => format!("SELECT * FROM {}", ident(t)),
            Query::Sql(q) => q.trim().trim_end_matches(';').to_string(),
        }
    }
}

/// Rows of a query, as a [`BlockSource`]. The query's columns are known from a prepared statement
/// before it runs; the rows stream once the needed columns are selected.
pub struct PgSource {
    name: PathBuf,
    query: String,
    client: Option<postgres::Client>,
    header: Vec<String>,
    rows: Option<CsvSource>,
}

impl PgSource {
    pub fn open(url: &str, query: &Query) -> Result<PgSource> {
        let mut client = connect(url)?;
        let sql = query.sql();
        let stmt = client
            .prepare(&sql)
            .map_err(|e| db_error(url, "preparing the input query", pg_message(&e)))?;
        let header = stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        Ok(PgSource {
            name: PathBuf::from(format!(
                "{} ({})",
                redact(url),
                match query {
                    Query::Table(t) => format!("table {t}"),
                    Query::Sql(_) => "query".into(),
                }
            )),
            query: sql,
            client: Some(client),
            header,
            rows: None,
        })
    }
}

impl BlockSource for PgSource {
    fn next_block(&mut self, rows: usize) -> Result<Option<Block>> {
        match self.rows.as_mut() {
            Some(r) => r.next_block(rows),
            None => Err(Error::Usage(
                "internal: PostgreSQL input read before its columns were selected".into(),
            )),
        }
    }

    fn fraction(&self) -> Option<f64> {
        None
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

    fn recycler(&mut self) -> Option<std::sync::mpsc::Sender<Vec<u8>>> {
        self.rows.as_mut().and_then(|r| r.recycler())
    }

    fn select(&mut self, columns: &[String]) -> Result<()> {
        for c in columns {
            if !self.header.contains(c) {
                return Err(Error::column(
                    &self.name,
                    c,
                    format!(
                        "no such column; the columns are: {}",
                        self.header.join(", ")
                    ),
                ));
            }
        }
        let list = columns
            .iter()
            .map(|c| ident_one(c))
            .collect::<Vec<_>>()
            .join(", ");
        let copy = format!(
            "COPY (SELECT {list} FROM ({}) AS churn_input) TO STDOUT (FORMAT csv, HEADER true)",
            self.query
        );
        let client = self
            .client
            .take()
            .ok_or_else(|| Error::Usage("internal: PostgreSQL input selected twice".into()))?;
        let stream = CopyOutStream::start(client, copy);
        let mut rows = CsvSource::new(self.name.clone(), stream, None, Numbering::Row, Some(b','))?;
        rows.select(columns)?;
        self.rows = Some(rows);
        Ok(())
    }
}

/// A double-quoted SQL identifier; `schema.name` quotes each part. The one quoting rule for every
/// statement churn writes (batch tables, exported SQL).
pub fn ident(name: &str) -> String {
    name.split('.').map(ident_one).collect::<Vec<_>>().join(".")
}

/// One identifier quoted as a whole (a column name may hold dots).
pub fn ident_one(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The bytes of a `COPY ... TO STDOUT`, read on a thread that owns the connection, so the stream
/// can move between threads. Dropping the stream stops the copy.
struct CopyOutStream {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    at: usize,
}

impl CopyOutStream {
    fn start(mut client: postgres::Client, sql: String) -> CopyOutStream {
        let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(4);
        std::thread::spawn(move || {
            let mut reader = match client.copy_out(sql.as_str()) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(format!(
                        "reading the input: {}",
                        pg_message(&e)
                    ))));
                    return;
                }
            };
            let mut eof = false;
            while !eof {
                let mut buf = vec![0u8; 1 << 20];
                let mut n = 0;
                // Fill most of the buffer before handing it over, to keep messages few. The
                // reader must not be read again once it has ended.
                while n < buf.len() - (64 << 10) {
                    match reader.read(&mut buf[n..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(k) => n += k,
                        Err(e) => {
                            let _ = tx.send(Err(std::io::Error::other(format!(
                                "reading the input: {}",
                                io_message(&e)
                            ))));
                            return;
                        }
                    }
                }
                if n == 0 {
                    return;
                }
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
            }
        });
        CopyOutStream {
            rx,
            pending: Vec::new(),
            at: 0,
        }
    }
}

impl Read for CopyOutStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.pending = b;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.pending.len() - self.at);
        out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A column of the scores table.
#[derive(Debug, Clone)]
pub struct OutColumn {
    pub name: String,
    pub numeric: bool,
}

enum Msg {
    Rows(Vec<u8>),
    Commit,
}

/// One step of a writer's transaction: SQL run with the transaction, returning a count (rows
/// deleted, inserted, ...). Its error names what it was doing.
pub type TxStep = Box<dyn FnOnce(&mut postgres::Transaction<'_>) -> Result<u64> + Send>;

/// What a [`PgCopyWriter`] did, once committed.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyDone {
    /// Rows copied in.
    pub rows: u64,
    /// The counts of the setup and finish steps.
    pub setup: u64,
    pub finish: u64,
}

/// Rows streamed into PostgreSQL in one transaction, on a thread that owns the connection: a
/// setup step (a bad table name fails here, before any work is done), `COPY ... FROM STDIN` of
/// every row written, a finish step, and the commit. Dropped without [`PgCopyWriter::commit`],
/// or killed, it rolls back and nothing is seen.
pub struct PgCopyWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<std::thread::JoinHandle<Result<CopyDone>>>,
    url: String,
}

impl PgCopyWriter {
    /// `what` names the rows in messages ("scores", "history rows").
    pub fn start(
        url: &str,
        what: &str,
        setup: TxStep,
        copy: String,
        finish: TxStep,
    ) -> Result<PgCopyWriter> {
        let mut client = connect(url)?;
        let (tx, rx) = sync_channel::<Msg>(4);
        let (u, what) = (url.to_string(), what.to_string());
        let (ready_tx, ready_rx) = sync_channel::<Result<()>>(1);
        let thread = std::thread::spawn(move || {
            copy_in(&mut client, &u, &what, setup, &copy, finish, rx, ready_tx)
        });
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(Error::Database {
                target: redact(url),
                message: "the writer stopped before it started".into(),
            })
        });
        let mut w = PgCopyWriter {
            tx: Some(tx),
            thread: Some(thread),
            url: url.to_string(),
        };
        if let Err(e) = ready {
            w.tx = None;
            let _ = w.thread.take().map(|t| t.join());
            return Err(e);
        }
        Ok(w)
    }

    /// Rows in PostgreSQL's CSV format, without a header.
    pub fn write(&mut self, rows: Vec<u8>) -> Result<()> {
        if let Some(tx) = &self.tx
            && tx.send(Msg::Rows(rows)).is_ok()
        {
            return Ok(());
        }
        // The writer thread stopped: its result says why.
        Err(self.join().err().unwrap_or_else(|| Error::Database {
            target: redact(&self.url),
            message: "the writer stopped early".into(),
        }))
    }

    /// Ends the copy, runs the finish step and commits.
    pub fn commit(mut self) -> Result<CopyDone> {
        if let Some(tx) = self.tx.take() {
            // If the thread already ended, the send fails and join returns its error.
            let _ = tx.send(Msg::Commit);
        }
        self.join()
    }

    fn join(&mut self) -> Result<CopyDone> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(Error::Database {
                    target: redact(&self.url),
                    message: "the writer panicked".into(),
                })
            }),
            None => Err(Error::Database {
                target: redact(&self.url),
                message: "the writer already ended".into(),
            }),
        }
    }
}

impl Drop for PgCopyWriter {
    /// Without a commit the transaction rolls back.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn copy_in(
    client: &mut postgres::Client,
    url: &str,
    what: &str,
    setup: TxStep,
    copy: &str,
    finish: TxStep,
    rx: Receiver<Msg>,
    ready: SyncSender<Result<()>>,
) -> Result<CopyDone> {
    let started = client
        .transaction()
        .map_err(|e| db_error(url, "starting a transaction", pg_message(&e)))
        .and_then(|mut t| setup(&mut t).map(|n| (t, n)));
    let (mut t, setup) = match started {
        Ok(s) => {
            let _ = ready.send(Ok(()));
            s
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(CopyDone::default());
        }
    };
    let fail = |e: postgres::Error| db_error(url, &format!("copying {what}"), pg_message(&e));
    let mut w = t.copy_in(copy).map_err(fail)?;
    let mut committed = false;
    for msg in rx {
        match msg {
            Msg::Rows(b) => w
                .write_all(&b)
                .map_err(|e| db_error(url, &format!("copying {what}"), io_message(&e)))?,
            Msg::Commit => {
                committed = true;
                break;
            }
        }
    }
    if !committed {
        // The scorer stopped without a commit: dropping the transaction rolls it back.
        return Err(Error::Database {
            target: redact(url),
            message: format!("scoring stopped before the end; no {what} were committed"),
        });
    }
    let rows = w.finish().map_err(fail)?;
    let finish = finish(&mut t)?;
    t.commit()
        .map_err(|e| db_error(url, &format!("committing {what}"), pg_message(&e)))?;
    Ok(CopyDone {
        rows,
        setup,
        finish,
    })
}

/// Runs `sql` in the transaction, naming `doing` in its error.
pub fn batch(t: &mut postgres::Transaction<'_>, url: &str, doing: &str, sql: &str) -> Result<()> {
    t.batch_execute(sql)
        .map_err(|e| db_error(url, doing, pg_message(&e)))
}

/// Executes one statement with parameters in the transaction; returns the rows it touched.
pub fn execute(
    t: &mut postgres::Transaction<'_>,
    url: &str,
    doing: &str,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<u64> {
    t.execute(sql, params)
        .map_err(|e| db_error(url, doing, pg_message(&e)))
}

/// How the finished table is built from the staged rows.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub table: String,
    pub columns: Vec<OutColumn>,
    /// `Some((at, by, highest_first))` adds a `rank` column at position `at`: 1 for the highest
    /// (or, when not `highest_first`, the lowest) value of column `by`, ties sharing a rank (SQL's
    /// `rank()`).
    pub rank: Option<(usize, usize, bool)>,
    pub comment: String,
}

/// A table replaced in one transaction: the rows are staged in a new table beside the target,
/// and at the end the old table is dropped and the staged one renamed in its place. `then` runs in
/// the same transaction once the table is in place (the history of a run is appended from it), so
/// both commit together or not at all.
pub fn table_writer(url: &str, spec: TableSpec, then: Option<TxStep>) -> Result<PgCopyWriter> {
    let (schema, name) = split_table(&spec.table);
    let qualify = move |n: &str| match schema {
        Some(s) => format!("{}.{}", ident(s), ident_one(n)),
        None => ident_one(n),
    };
    let stage_name = short(&format!("{name}__churn_stage_{}", std::process::id()));
    let stage = qualify(&stage_name);
    let target = qualify(name);
    let cols = spec
        .columns
        .iter()
        .map(|c| {
            let ty = if c.numeric {
                "double precision"
            } else {
                "text"
            };
            format!("{} {ty}", ident_one(&c.name))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let create = format!("CREATE TABLE {stage} ({cols})");
    let doing = format!("creating the staging table {stage}");
    let u = url.to_string();
    let setup: TxStep = Box::new(move |t| batch(t, &u, &doing, &create).map(|_| 0));

    let mut sql = String::new();
    let mut from = stage.clone();
    if let Some((at, by, highest_first)) = spec.rank {
        let ranked = qualify(&short(&format!(
            "{name}__churn_ranked_{}",
            std::process::id()
        )));
        let mut select: Vec<String> = spec.columns.iter().map(|c| ident_one(&c.name)).collect();
        select.insert(
            at.min(select.len()),
            format!(
                "rank() OVER (ORDER BY {} {}) AS rank",
                ident_one(&spec.columns[by].name),
                if highest_first { "DESC" } else { "ASC" }
            ),
        );
        sql += &format!(
            "CREATE TABLE {ranked} AS SELECT {} FROM {stage} ORDER BY rank; DROP TABLE {stage};",
            select.join(", ")
        );
        from = ranked;
    }
    // The index is built before the swap, so the table is locked only for the renames.
    let stage_index = short(&format!("{stage_name}_idx"));
    let index = short(&format!("{name}_{}_idx", spec.columns[0].name));
    sql += &format!(
        "CREATE INDEX {} ON {from} ({});
         DROP TABLE IF EXISTS {target};
         ALTER TABLE {from} RENAME TO {};
         ALTER INDEX {} RENAME TO {};
         COMMENT ON TABLE {target} IS '{}';",
        ident_one(&stage_index),
        ident_one(&spec.columns[0].name),
        ident_one(name),
        qualify(&stage_index),
        ident_one(&index),
        spec.comment.replace('\'', "''")
    );
    let doing = format!("replacing table {}", spec.table);
    let u = url.to_string();
    let finish: TxStep = Box::new(move |t| {
        batch(t, &u, &doing, &sql)?;
        match then {
            Some(step) => step(t),
            None => Ok(0),
        }
    });
    PgCopyWriter::start(
        url,
        "scores",
        setup,
        format!("COPY {stage} FROM STDIN (FORMAT csv)"),
        finish,
    )
}

/// `schema.name` split into an optional schema and the name.
pub fn split_table(t: &str) -> (Option<&str>, &str) {
    match t.rsplit_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, t),
    }
}

/// A `schema.name` (or `name`) quoted for SQL, each part as written.
pub fn qualified(t: &str) -> String {
    match split_table(t) {
        (Some(s), n) => format!("{}.{}", ident(s), ident_one(n)),
        (None, n) => ident_one(n),
    }
}

/// An identifier of at most 63 bytes (PostgreSQL's limit), cut on a character boundary.
pub fn short(name: &str) -> String {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://churn:s3cret@db:5432/crm?sslmode=disable"),
            "postgres://churn:***@db:5432/crm?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://postgres@127.0.0.1/test"),
            "postgresql://postgres@127.0.0.1/test"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn table_names_split_and_shorten() {
        assert_eq!(split_table("crm.scores"), (Some("crm"), "scores"));
        assert_eq!(split_table("scores"), (None, "scores"));
        assert_eq!(short(&"é".repeat(40)).len(), 62);
    }
}
