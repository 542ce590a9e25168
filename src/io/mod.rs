//! Tables in and out, for every command: the lowest layer, importing nothing of churn's but the
//! error type.
//!
//! - Whole tables ([`Table`], for training and evaluation): a column store read from CSV or
//!   Parquet, each column keeping its cells both as numbers (when they parse) and as dictionary
//!   codes (while they have few distinct values), so the trainer decides numeric vs categorical
//!   after one read.
//! - Streaming block sources ([`blocks`]): CSV cut at record boundaries ([`csv_records`]), Parquet
//!   in row ranges, PostgreSQL `COPY` in and staged tables out ([`postgres`]).
//! - Atomic files ([`atomic`]), CSV fields out ([`csv_write`]), the shard hash ([`shard`]),
//!   progress lines ([`progress`]).
pub mod atomic;
pub mod blocks;
mod csv_reader;
pub mod csv_records;
pub mod csv_write;
pub(crate) mod parquet_reader;
pub mod postgres;
pub mod progress;
pub mod shard;
mod table;

pub use blocks::Source;
pub use shard::Shard;

pub use table::{Column, MISSING_TOKENS, ReadOptions, Table, is_missing_token};

use crate::error::{Error, Result};
use std::path::Path;

/// The formats a table can be read from, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Parquet,
}

impl TableFormat {
    /// `.parquet`/`.pq` is Parquet; everything else is read as CSV.
    pub fn of(path: &Path) -> TableFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "parquet" || e == "pq" => TableFormat::Parquet,
            _ => TableFormat::Csv,
        }
    }
}

/// Reads a whole table from a CSV or Parquet file.
pub fn read_table(path: &Path, opts: &ReadOptions) -> Result<Table> {
    if !path.exists() {
        return Err(Error::data(path, "no such file"));
    }
    match TableFormat::of(path) {
        TableFormat::Csv => csv_reader::read(path, opts),
        TableFormat::Parquet => parquet_reader::read(path, opts),
    }
}

/// The column names of a CSV or Parquet file, without reading its rows. A CSV file's delimiter is
/// `delimiter`, or else found from its header line.
pub fn read_header(path: &Path, delimiter: Option<u8>) -> Result<Vec<String>> {
    if !path.exists() {
        return Err(Error::data(path, "no such file"));
    }
    match TableFormat::of(path) {
        TableFormat::Csv => csv_reader::header(path, delimiter),
        TableFormat::Parquet => parquet_reader::header(path),
    }
}

/// How far the csv crate's record line numbers fall short in this file: 1 when lines end in CRLF
/// (a record's recorded start is the `\n` left over from the previous line's `\r\n`), else 0.
pub fn csv_line_offset(path: &Path) -> u64 {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        return 0;
    };
    let mut first = Vec::new();
    for b in std::io::BufReader::new(f).bytes().take(1 << 20) {
        match b {
            Ok(b'\n') => return u64::from(first.last() == Some(&b'\r')),
            Ok(b) => first.push(b),
            Err(_) => return 0,
        }
    }
    0
}

/// SHA-256 of a file's bytes, hex encoded.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
