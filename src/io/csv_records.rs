//! CSV records straight from bytes, so a block of a file can be cut into parts that are parsed on
//! every core at once. One rule decides where a record ends, both when a block is cut and when a
//! part is parsed: at a newline outside double quotes (RFC 4180; `""` inside quotes is a quote).
//! Fields borrow from the block; only a quoted field holding `""` is copied. Fields are separated
//! by a comma, or by the delimiter [`sniff_delimiter`] finds in the header line.
use std::borrow::Cow;

/// Where the next record boundary is at or after `from`: the index just past a newline that is
/// outside quotes, given that `from` itself is outside quotes. `None` when the bytes end first.
pub fn next_boundary(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    let mut quoted = false;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let hit = if quoted {
            memchr::memchr(b'"', rest)
        } else {
            memchr::memchr2(b'"', b'\n', rest)
        }?;
        i += hit;
        match bytes[i] {
            b'"' => quoted = !quoted,
            _ => return Some(i + 1),
        }
        i += 1;
    }
    None
}

/// Splits `bytes` (whole records) into about `parts` pieces at record boundaries: the (start, end)
/// of each piece, covering all of `bytes` in order.
pub fn split_ranges(bytes: &[u8], parts: usize) -> Vec<(usize, usize)> {
    let step = (bytes.len() / parts.max(1)).max(1);
    let mut points = vec![0];
    let quoted = memchr::memchr(b'"', bytes).is_some();
    let mut at = 0;
    while at + step < bytes.len() {
        let next = if quoted {
            // Walk boundary to boundary so the quote state is always known.
            let mut b = at;
            loop {
                match next_boundary(bytes, b) {
                    Some(n) if n < at + step => b = n,
                    Some(n) => break Some(n),
                    None => break None,
                }
            }
        } else {
            memchr::memchr(b'\n', &bytes[at + step..]).map(|i| at + step + i + 1)
        };
        match next {
            Some(n) if n < bytes.len() => {
                points.push(n);
                at = n;
            }
            _ => break,
        }
    }
    let ends = points.iter().skip(1).copied().chain([bytes.len()]);
    points.iter().copied().zip(ends).collect()
}

/// One record: its fields, or why it is not a record.
pub struct RecordParser<'a> {
    bytes: &'a [u8],
    at: usize,
    delimiter: u8,
    /// Newlines consumed so far, so the caller knows each record's first line.
    pub lines: u64,
}

/// A record read by [`RecordParser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Fields are in the parser's `fields` vector.
    Fields,
    /// A malformed record, with the reason.
    Malformed(&'static str),
    /// A blank line, which holds no row.
    Blank,
}

impl<'a> RecordParser<'a> {
    /// A parser of comma-separated records.
    pub fn new(bytes: &'a [u8]) -> Self {
        RecordParser::with_delimiter(bytes, b',')
    }

    /// A parser of records whose fields are separated by `delimiter` (one ASCII byte, not a quote
    /// or a line break).
    pub fn with_delimiter(bytes: &'a [u8], delimiter: u8) -> Self {
        debug_assert!(delimiter.is_ascii() && !matches!(delimiter, b'"' | b'\n' | b'\r'));
        RecordParser {
            bytes,
            at: 0,
            lines: 0,
            delimiter,
        }
    }

    /// The next record into `fields`, with the number of lines before it (relative to the start),
    /// or None at the end.
    pub fn next_record(&mut self, fields: &mut Vec<Cow<'a, [u8]>>) -> Option<(u64, Record)> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let start = self.at;
        let line = self.lines;
        fields.clear();
        // Fast path: a record without quotes ends at the first newline.
        let first = memchr::memchr2(b'"', b'\n', &self.bytes[start..]).map(|i| start + i);
        if let Some(nl) = first.filter(|&i| self.bytes[i] == b'\n') {
            self.at = nl + 1;
            self.lines += 1;
            let mut rec = &self.bytes[start..nl];
            if rec.last() == Some(&b'\r') {
                rec = &rec[..rec.len() - 1];
            }
            if rec.is_empty() {
                return Some((line, Record::Blank));
            }
            let mut from = 0;
            for comma in memchr::memchr_iter(self.delimiter, rec) {
                fields.push(Cow::Borrowed(&rec[from..comma]));
                from = comma + 1;
            }
            fields.push(Cow::Borrowed(&rec[from..]));
            return Some((line, Record::Fields));
        }
        let end = next_boundary(self.bytes, start).unwrap_or(self.bytes.len());
        self.at = end;
        let mut rec = &self.bytes[start..end];
        self.lines += memchr::memchr_iter(b'\n', rec).count() as u64;
        // Drop the line ending: "\n" or "\r\n".
        if rec.last() == Some(&b'\n') {
            rec = &rec[..rec.len() - 1];
            if rec.last() == Some(&b'\r') {
                rec = &rec[..rec.len() - 1];
            }
        }
        if rec.is_empty() {
            return Some((line, Record::Blank));
        }
        Some((line, split_fields(rec, self.delimiter, fields)))
    }
}

/// The field delimiter of a CSV file from its header line: comma, semicolon, tab or pipe, whichever
/// occurs most often outside quotes (a comma when none does). A header is a list of names, so the
/// delimiter is the character that separates most of them.
pub fn sniff_delimiter(header_line: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in header_line {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(k) = CANDIDATES.iter().position(|&c| c == b) {
                    counts[k] += 1;
                }
            }
            _ => {}
        }
    }
    // Ties keep the earlier candidate, so a header with no separator at all reads as comma.
    let mut best = 0;
    for k in 1..4 {
        if counts[k] > counts[best] {
            best = k;
        }
    }
    CANDIDATES[best]
}

/// The delimiter named on the command line: `,` `;` `|`, `tab` or `\t`, or any one ASCII
/// character that is not a quote or a line break.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    let d = match s {
        "tab" | "\\t" | "\t" => b'\t',
        _ if s.len() == 1 && s.is_ascii() => s.as_bytes()[0],
        _ => {
            return Err(format!(
                "--delimiter {s:?}: expected one character (or `tab`)"
            ));
        }
    };
    if matches!(d, b'"' | b'\n' | b'\r') {
        return Err(format!(
            "--delimiter {s:?}: a quote or line break cannot separate fields"
        ));
    }
    Ok(d)
}

/// (lines, records) in `bytes`, blank lines not counted as records.
pub fn count_records(bytes: &[u8]) -> (u64, u64) {
    let mut p = RecordParser::new(bytes);
    let mut fields = Vec::new();
    let mut rows = 0;
    while let Some((_, r)) = p.next_record(&mut fields) {
        if !matches!(r, Record::Blank) {
            rows += 1;
        }
    }
    (p.lines, rows)
}

fn split_fields<'a>(rec: &'a [u8], delimiter: u8, fields: &mut Vec<Cow<'a, [u8]>>) -> Record {
    let mut i = 0;
    loop {
        if rec.get(i) == Some(&b'"') {
            // Quoted: up to the closing quote, "" standing for one quote.
            let mut j = i + 1;
            let mut owned: Option<Vec<u8>> = None;
            loop {
                let Some(q) = memchr::memchr(b'"', &rec[j..]) else {
                    return Record::Malformed("unterminated quoted field");
                };
                let q = j + q;
                if rec.get(q + 1) == Some(&b'"') {
                    owned
                        .get_or_insert_with(Vec::new)
                        .extend_from_slice(&rec[j..=q]);
                    j = q + 2;
                    continue;
                }
                let field = match owned {
                    Some(mut o) => {
                        o.extend_from_slice(&rec[j..q]);
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(&rec[i + 1..q]),
                };
                fields.push(field);
                i = q + 1;
                break;
            }
            match rec.get(i) {
                None => return Record::Fields,
                Some(&b) if b == delimiter => i += 1,
                Some(_) => return Record::Malformed("text after a closing quote"),
            }
        } else {
            let end = memchr::memchr(delimiter, &rec[i..]).map_or(rec.len(), |e| i + e);
            let field = &rec[i..end];
            if memchr::memchr(b'"', field).is_some() {
                return Record::Malformed("a quote inside an unquoted field");
            }
            fields.push(Cow::Borrowed(field));
            if end == rec.len() {
                return Record::Fields;
            }
            i = end + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(u64, Result<Vec<String>, &'static str>)> {
        let mut p = RecordParser::new(text.as_bytes());
        let mut fields = Vec::new();
        let mut out = Vec::new();
        while let Some((line, r)) = p.next_record(&mut fields) {
            match r {
                Record::Fields => out.push((
                    line,
                    Ok(fields
                        .iter()
                        .map(|f| String::from_utf8(f.to_vec()).unwrap())
                        .collect()),
                )),
                Record::Malformed(why) => out.push((line, Err(why))),
                Record::Blank => {}
            }
        }
        out
    }

    #[test]
    fn fields_quotes_and_line_endings() {
        let got = parse("a,b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\n\"two\nlines\",,z\n\nlast,row,end");
        assert_eq!(got[0], (0, Ok(vec!["a".into(), "b".into(), "c".into()])));
        assert_eq!(
            got[1],
            (1, Ok(vec!["x,1".into(), "say \"hi\"".into(), "".into()]))
        );
        assert_eq!(
            got[2],
            (2, Ok(vec!["two\nlines".into(), "".into(), "z".into()]))
        );
        // The blank line 5 holds no row; the last row has no newline.
        assert_eq!(
            got[3],
            (5, Ok(vec!["last".into(), "row".into(), "end".into()]))
        );
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn malformed_records_are_named_and_parsing_goes_on() {
        // Balanced stray quotes spoil only their own record.
        let got = parse("a\"b\",c\n\"x\"y,z\nok,row\n");
        assert_eq!(got[0], (0, Err("a quote inside an unquoted field")));
        assert_eq!(got[1], (1, Err("text after a closing quote")));
        assert_eq!(got[2], (2, Ok(vec!["ok".into(), "row".into()])));
        // An unbalanced quote runs on to the next quote, as in any CSV reader: the lines it
        // swallows make one malformed record, and reading goes on after it.
        let got = parse("a,b\"x\nc,d\ne\",f\nnext,row\n");
        assert_eq!(got[0], (0, Err("a quote inside an unquoted field")));
        assert_eq!(got[1], (3, Ok(vec!["next".into(), "row".into()])));
        let got = parse("x,y\n\"never closed,z\n");
        assert_eq!(got[1], (1, Err("unterminated quoted field")));
    }

    #[test]
    fn split_ranges_fall_on_record_boundaries() {
        let text = "id,v\n".to_string()
            + &(0..500)
                .map(|i| {
                    if i % 7 == 0 {
                        format!("\"{i}\nx\",{i}\n")
                    } else {
                        format!("{i},{i}\n")
                    }
                })
                .collect::<String>();
        let b = text.as_bytes();
        for parts in [1, 2, 3, 16, 1000] {
            let ranges = split_ranges(b, parts);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().unwrap().1, b.len());
            let mut rows = 0;
            for (k, &(s, e)) in ranges.iter().enumerate() {
                assert!(s < e);
                if k > 0 {
                    assert_eq!(ranges[k - 1].1, s);
                }
                for (_, r) in parse(std::str::from_utf8(&b[s..e]).unwrap()) {
                    assert!(r.is_ok(), "part {k} of {parts} starts inside a record");
                    rows += 1;
                }
            }
            assert_eq!(rows, 501, "{parts} parts");
        }
    }
}
