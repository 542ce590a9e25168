//! Any bytes as CSV: the record parser ends and moves forward, and cutting the bytes into parts
//! for the cores (`split_ranges`) loses, duplicates or changes no record: the parts parsed one by
//! one give exactly the records of the whole.
#![no_main]
use churn::io::csv_records::{RecordParser, split_ranges};
use libfuzzer_sys::fuzz_target;

/// Every record's fields (or its kind when it has none to compare), in order.
fn records(bytes: &[u8]) -> Vec<String> {
    let mut p = RecordParser::new(bytes);
    let mut fields = Vec::new();
    let mut out = Vec::new();
    let mut last = None;
    while let Some((line, record)) = p.next_record(&mut fields) {
        if let Some(prev) = last {
            assert!(line > prev, "lines go forward");
        }
        last = Some(line);
        out.push(format!("{record:?} {fields:?}"));
        assert!(out.len() <= bytes.len() + 1, "the parser must end");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = records(data);
    for parts in [2, 3, 7] {
        let ranges = split_ranges(data, parts);
        assert_eq!(
            ranges.first().map(|r| r.0),
            Some(0).filter(|_| !ranges.is_empty())
        );
        let mut joined = Vec::new();
        for (a, b) in &ranges {
            joined.extend(records(&data[*a..*b]));
        }
        assert_eq!(joined, whole, "{parts} parts: {ranges:?}");
    }
});
