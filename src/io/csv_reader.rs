use super::table::{Column, ReadOptions, Table};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// The delimiter of a CSV file, from its first line (at most 1 MiB of it).
fn sniff(path: &Path) -> Result<u8> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut first = Vec::new();
    f.take(1 << 20)
        .read_to_end(&mut first)
        .map_err(|e| Error::io(path, e))?;
    Ok(super::csv_records::sniff_delimiter(&first))
}

fn open(
    path: &Path,
    delimiter: Option<u8>,
) -> Result<(csv::Reader<std::io::BufReader<std::fs::File>>, Vec<String>)> {
    let delimiter = match delimiter {
        Some(d) => d,
        None => sniff(path)?,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(Error::data(path, "empty file: expected a header line"));
    }
    check_header(path, &header)?;
    Ok((rdr, header))
}

pub(super) fn header(path: &Path, delimiter: Option<u8>) -> Result<Vec<String>> {
    Ok(open(path, delimiter)?.1)
}

pub(super) fn read(path: &Path, opts: &ReadOptions) -> Result<Table> {
    let (mut rdr, header) = open(path, opts.delimiter)?;
    let keep: Vec<Option<usize>> = {
        let mut k = 0;
        header
            .iter()
            .map(|h| {
                if opts.skip.contains(h) {
                    None
                } else {
                    k += 1;
                    Some(k - 1)
                }
            })
            .collect()
    };
    let mut columns: Vec<Column> = header
        .iter()
        .filter(|h| !opts.skip.contains(*h))
        .map(|h| {
            let mut c = Column::new(h.clone());
            c.nan_is_value = opts.nan_is_value;
            c
        })
        .collect();
    let mut lines = Vec::new();
    let offset = super::csv_line_offset(path);
    let mut record = csv::StringRecord::new();
    // A progress line on long files (train, evaluate, report): rows read and the share of bytes.
    let size = std::fs::metadata(path).map_or(0, |m| m.len()) as f64;
    let mut progress = super::progress::Progress::new("rows");
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e)),
        }
        if lines.len() % 65_536 == 65_535 {
            let at = record.position().map_or(0, |p| p.byte()) as f64;
            progress.update(lines.len() as u64 + 1, (size > 0.0).then(|| at / size));
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0) + offset;
        if record.len() == 1 && record[0].trim().is_empty() && header.len() > 1 {
            // A blank line (e.g. a trailing one) holds no row.
            continue;
        }
        for (cell, k) in record.iter().zip(&keep) {
            if let Some(k) = k {
                columns[*k].push_text(cell, opts.max_levels);
            }
        }
        lines.push(line);
    }
    progress.finish();
    for c in &mut columns {
        c.finish();
    }
    Ok(Table {
        path: path.to_path_buf(),
        columns,
        lines,
        header,
    })
}

pub(super) fn check_header(path: &Path, header: &[String]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(Error::data(
                path,
                format!("header: column {} has no name", i + 1),
            ));
        }
        if !seen.insert(h.as_str()) {
            return Err(Error::column(path, h, "header: duplicate column name"));
        }
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e
        .position()
        .map(|p| p.line() + super::csv_line_offset(path));
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Error::Data {
            path: path.to_path_buf(),
            line,
            column: None,
            message: format!(
                "ragged row: {len} fields, expected {expected_len} (as many as the header)"
            ),
        },
        csv::ErrorKind::Io(_) => Error::data(path, e.to_string()),
        csv::ErrorKind::Utf8 { .. } => Error::Data {
            path: path.to_path_buf(),
            line,
            column: None,
            message: "invalid UTF-8".into(),
        },
        _ => Error::Data {
            path: path.to_path_buf(),
            line,
            column: None,
            message: e.to_string(),
        },
    }
}
