//! Cells of event and subscription rows from any batch input (CSV, Parquet, PostgreSQL), and
//! their conversion to ids, times and numbers with messages that say what was expected.
use crate::io::blocks::{CellRef, ColumnView, CsvLayout};
use crate::io::csv_records::{Record, RecordParser};
use crate::time::parse_timestamp;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use std::borrow::Cow;

/// One cell.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Null,
    Number(f64),
    Text(&'a str),
    /// A typed date or timestamp: seconds since the epoch, and whether they are UTC (a zoned
    /// timestamp or a date) rather than wall-clock time.
    Time(i64, bool),
}

/// Most columns read from one row (events need 4, subscriptions 6).
pub const MAX_CELLS: usize = 8;

/// What went wrong in a row: the requested column (by position) and why.
pub type CellError = (usize, String);

/// Calls `f` with the requested cells of each record of a CSV part, and the line of the record
/// relative to the part. Stops at the first error, returned with its relative line.
pub fn each_csv_record<'b>(
    bytes: &'b [u8],
    layout: &CsvLayout,
    mut f: impl FnMut(&[Cell<'_>]) -> Result<(), CellError>,
) -> Result<(u64, u64), (u64, Option<usize>, String)> {
    let mut parser = RecordParser::with_delimiter(bytes, layout.delimiter);
    let mut fields: Vec<Cow<'b, [u8]>> = Vec::with_capacity(layout.width);
    let n = layout.idx.len();
    assert!(
        n <= MAX_CELLS,
        "at most {MAX_CELLS} columns are read per row"
    );
    let text = std::str::from_utf8(bytes).ok();
    let mut rows = 0;
    while let Some((line, rec)) = parser.next_record(&mut fields) {
        match rec {
            Record::Blank => continue,
            Record::Malformed(why) => return Err((line, None, why.to_string())),
            Record::Fields if fields.len() != layout.width => {
                return Err((
                    line,
                    None,
                    format!(
                        "ragged row: {} fields, expected {}",
                        fields.len(),
                        layout.width
                    ),
                ));
            }
            Record::Fields => {}
        }
        // A fresh array per record: the cells borrow `fields`, which the next record reuses.
        let mut cells = [Cell::Null; MAX_CELLS];
        for (k, &i) in layout.idx.iter().enumerate() {
            let s = match (text, &fields[i]) {
                (Some(t), Cow::Borrowed(b)) => {
                    let at = b.as_ptr() as usize - bytes.as_ptr() as usize;
                    Ok(&t[at..at + b.len()])
                }
                (_, field) => std::str::from_utf8(field),
            };
            match s {
                Ok(s) => cells[k] = Cell::Text(s),
                Err(_) => return Err((line, Some(k), "invalid UTF-8".into())),
            }
        }
        f(&cells[..n]).map_err(|(k, m)| (line, Some(k), m))?;
        rows += 1;
    }
    Ok((parser.lines, rows))
}

/// An Arrow column with dates and timestamps read as times.
pub enum ArrowColumn<'a> {
    Plain(ColumnView<'a>),
    Days(&'a arrow_array::Date32Array),
    Millis(&'a arrow_array::Date64Array),
    Stamps {
        array: &'a ArrayRef,
        values: &'a [i64],
        per_second: i64,
        utc: bool,
    },
}

pub use crate::io::blocks::is_temporal;

impl<'a> ArrowColumn<'a> {
    pub fn new(a: &'a ArrayRef) -> Self {
        match a.data_type() {
            DataType::Date32 => ArrowColumn::Days(a.as_primitive()),
            DataType::Date64 => ArrowColumn::Millis(a.as_primitive()),
            DataType::Timestamp(unit, tz) => {
                let (values, per_second): (&[i64], i64) = match unit {
                    TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().values(), 1),
                    TimeUnit::Millisecond => {
                        (a.as_primitive::<TimestampMillisecondType>().values(), 1_000)
                    }
                    TimeUnit::Microsecond => (
                        a.as_primitive::<TimestampMicrosecondType>().values(),
                        1_000_000,
                    ),
                    TimeUnit::Nanosecond => (
                        a.as_primitive::<TimestampNanosecondType>().values(),
                        1_000_000_000,
                    ),
                };
                ArrowColumn::Stamps {
                    array: a,
                    values,
                    per_second,
                    utc: tz.is_some(),
                }
            }
            _ => ArrowColumn::Plain(ColumnView::new(a)),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Cell<'a> {
        match self {
            ArrowColumn::Plain(v) => match v.get(i) {
                CellRef::Null => Cell::Null,
                CellRef::Number(x) => Cell::Number(x),
                CellRef::Text(t) => Cell::Text(t),
            },
            ArrowColumn::Days(a) if a.is_null(i) => Cell::Null,
            ArrowColumn::Days(a) => Cell::Time(i64::from(a.value(i)) * 86_400, true),
            ArrowColumn::Millis(a) if a.is_null(i) => Cell::Null,
            ArrowColumn::Millis(a) => Cell::Time(a.value(i).div_euclid(1_000), true),
            ArrowColumn::Stamps { array, .. } if array.is_null(i) => Cell::Null,
            ArrowColumn::Stamps {
                values,
                per_second,
                utc,
                ..
            } => Cell::Time(values[i].div_euclid(*per_second), *utc),
        }
    }
}

/// A number cell as text: integers without a decimal point (ids and event types stored as
/// numbers match their text).
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        let mut b = ryu::Buffer::new();
        b.format(x).to_string()
    }
}

/// A cell as trimmed text; None when missing or empty.
pub fn text<'a>(c: Cell<'a>) -> Option<Cow<'a, str>> {
    match c {
        Cell::Null => None,
        Cell::Text(t) => Some(Cow::Borrowed(t.trim())).filter(|t| !t.is_empty()),
        Cell::Number(x) => Some(Cow::Owned(number_text(x))),
        Cell::Time(s, _) => Some(Cow::Owned(s.to_string())),
    }
}

/// A cell as local seconds; `offset` is the local frame's offset from UTC.
pub fn time(c: Cell<'_>, offset: i64) -> Result<Option<i64>, String> {
    let bad = |t: &str| {
        format!(
            "\"{t}\" is not a date or date-time: expected ISO 8601 such as 2020-03-01, 20200301 or 2020-03-01T10:15:00+02:00"
        )
    };
    match c {
        Cell::Null => Ok(None),
        Cell::Time(s, utc) => Ok(Some(if utc { s + offset } else { s })),
        Cell::Text(t) if t.trim().is_empty() => Ok(None),
        Cell::Text(t) => parse_timestamp(t, offset).map(Some).ok_or_else(|| bad(t)),
        Cell::Number(x) => {
            let t = number_text(x);
            parse_timestamp(&t, offset).map(Some).ok_or_else(|| bad(&t))
        }
    }
}

/// A cell as a number; NaN when missing (blank or a token such as NA).
pub fn number(c: Cell<'_>) -> Result<f64, String> {
    let x = match c {
        Cell::Null => return Ok(f64::NAN),
        Cell::Number(x) => x,
        Cell::Time(..) => return Err("a date or time, expected a number".into()),
        Cell::Text(t) => {
            let t = t.trim();
            match t.parse::<f64>() {
                Ok(x) => x,
                Err(_) if crate::io::is_missing_token(t) => return Ok(f64::NAN),
                Err(_) => return Err(format!("\"{t}\" is not a number")),
            }
        }
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("{x} is not a finite number"))
    }
}
