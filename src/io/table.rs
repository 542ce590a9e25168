use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// What to keep while reading a table.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Columns not stored at all (an id column, dropped columns).
    pub skip: HashSet<String>,
    /// A column stops collecting distinct text values past this many; such a column can only be
    /// numeric.
    pub max_levels: usize,
    /// The CSV field delimiter (default: found from the header line).
    pub delimiter: Option<u8>,
    /// Read the text `NaN` (`nan`) as a value, not as missing: training imputes such cells like
    /// blanks, but a door that scores (evaluate) refuses a non-finite number, as every door does.
    pub nan_is_value: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            skip: HashSet::new(),
            max_levels: 1000,
            delimiter: None,
            nan_is_value: false,
        }
    }
}

/// Cell texts that mean "no value" in exported tables: blank, `NA`, `N/A`, `NaN`, `NULL`, `None`,
/// `?` and their common spellings. Training reads them as missing, and so does every door
/// (`FeatureSchema::resolve`).
#[inline]
pub fn is_missing_token(s: &str) -> bool {
    // By length first: most cells are longer than any token and need one comparison.
    match s.len() {
        0 => true,
        1 => s == "?",
        2 => matches!(s, "NA" | "na"),
        3 => matches!(s, "N/A" | "n/a" | "NaN" | "nan"),
        4 => matches!(s, "NULL" | "null" | "None" | "none"),
        _ => false,
    }
}

/// The texts [`is_missing_token`] accepts, for engines that must repeat the rule (exported SQL);
/// a unit test holds the two together.
pub const MISSING_TOKENS: [&str; 12] = [
    "", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None", "none", "?",
];

/// One column as read: numbers (NaN where missing or unparsable) and, while the column has at most
/// `max_levels` distinct values, dictionary codes.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Parsed numbers; NaN where the cell was missing or not a finite number.
    pub numbers: Vec<f64>,
    /// Non-missing cells that did not parse as a finite number.
    pub unparsable: u64,
    /// Row index of the first unparsable cell, with its text.
    pub first_unparsable: Option<(usize, String)>,
    /// One bit per row: the cell was present but not a finite number.
    unparsable_bits: Vec<u64>,
    /// The text `NaN` is a (non-finite) value rather than missing.
    pub(crate) nan_is_value: bool,
    /// Missing cells (blank or a missing token such as NA).
    pub missing: u64,
    /// Distinct non-missing texts in first-seen order, while at most `max_levels`.
    pub levels: Option<Vec<String>>,
    /// Per row: index into `levels`, or `MISSING_CODE`; empty once `levels` is `None`.
    pub codes: Vec<u32>,
    index: HashMap<String, u32>,
}

impl Column {
    pub const MISSING_CODE: u32 = u32::MAX;

    pub(crate) fn new(name: String) -> Column {
        Column {
            name,
            numbers: Vec::new(),
            unparsable: 0,
            first_unparsable: None,
            unparsable_bits: Vec::new(),
            nan_is_value: false,
            missing: 0,
            levels: Some(Vec::new()),
            codes: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Every non-missing cell parsed as a finite number (and there was at least one).
    pub fn is_numeric(&self) -> bool {
        self.unparsable == 0 && (self.missing as usize) < self.numbers.len()
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Whether row `i` held something other than a missing token or a finite number.
    pub fn is_unparsable(&self, i: usize) -> bool {
        self.unparsable_bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn mark_unparsable(&mut self, i: usize) {
        if self.unparsable_bits.len() <= i / 64 {
            self.unparsable_bits.resize(i / 64 + 1, 0);
        }
        self.unparsable_bits[i / 64] |= 1 << (i % 64);
    }

    /// The text of row `i` when the column kept its dictionary.
    pub fn text(&self, i: usize) -> Option<&str> {
        let levels = self.levels.as_ref()?;
        match self.codes[i] {
            Column::MISSING_CODE => None,
            c => Some(levels[c as usize].as_str()),
        }
    }

    pub(crate) fn push_text(&mut self, raw: &str, max_levels: usize) {
        let s = raw.trim();
        if is_missing_token(s) && !(self.nan_is_value && matches!(s, "NaN" | "nan")) {
            self.missing += 1;
            self.numbers.push(f64::NAN);
            self.push_code(None, max_levels);
            return;
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => self.numbers.push(v),
            _ => {
                self.unparsable += 1;
                if self.first_unparsable.is_none() {
                    self.first_unparsable = Some((self.numbers.len(), s.to_string()));
                }
                self.mark_unparsable(self.numbers.len());
                self.numbers.push(f64::NAN);
            }
        }
        self.push_code(Some(s), max_levels);
    }

    pub(crate) fn push_number(&mut self, v: Option<f64>, max_levels: usize) {
        match v {
            None => {
                self.missing += 1;
                self.numbers.push(f64::NAN);
                self.push_code(None, max_levels);
            }
            Some(v) => {
                if v.is_finite() {
                    self.numbers.push(v);
                } else {
                    self.unparsable += 1;
                    if self.first_unparsable.is_none() {
                        self.first_unparsable = Some((self.numbers.len(), v.to_string()));
                    }
                    self.mark_unparsable(self.numbers.len());
                    self.numbers.push(f64::NAN);
                }
                // Formatting the number is only needed while the column still collects levels.
                let text = self.levels.is_some().then(|| v.to_string());
                self.push_code(Some(text.as_deref().unwrap_or_default()), max_levels);
            }
        }
    }

    fn push_code(&mut self, s: Option<&str>, max_levels: usize) {
        // A column past max_levels keeps no codes at all.
        let Some(levels) = self.levels.as_mut() else {
            return;
        };
        let code = match s {
            None => Column::MISSING_CODE,
            Some(s) => match self.index.get(s) {
                Some(&c) => c,
                None => {
                    if levels.len() >= max_levels {
                        // Too many distinct values for a categorical column: stop collecting.
                        self.levels = None;
                        self.index = HashMap::new();
                        self.codes = Vec::new();
                        return;
                    }
                    let c = levels.len() as u32;
                    levels.push(s.to_string());
                    self.index.insert(s.to_string(), c);
                    c
                }
            },
        };
        self.codes.push(code);
    }

    pub(crate) fn finish(&mut self) {
        self.index = HashMap::new();
        if self.levels.is_none() {
            self.codes = Vec::new();
        }
    }
}

/// A table read whole: columns in file order, and for each row the line (CSV, header = line 1) or
/// 1-based row number (Parquet) it came from.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub columns: Vec<Column>,
    pub lines: Vec<u64>,
    /// Every column name in the file, including skipped ones.
    pub header: Vec<String>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tokens_are_exactly_the_listed_ones() {
        for t in MISSING_TOKENS {
            assert!(is_missing_token(t), "{t:?}");
        }
        for t in [
            "No", "Yes", "nA", "NULLS", "none ", " ", "0", "n", "??", "Nan",
        ] {
            assert!(!is_missing_token(t), "{t:?}");
        }
    }
}
