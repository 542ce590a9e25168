//! The label column: which value means churned, and every row's label as a boolean.
use crate::error::{Error, Result};
use crate::io::{Column, Table};

/// Labels as booleans (true = churned) and the positive value. `infer` allows guessing the
/// positive value from common spellings when none is given.
pub fn parse_labels(
    table: &Table,
    col: &Column,
    positive: Option<&str>,
    need_both: bool,
) -> Result<(Vec<bool>, String)> {
    let path = &table.path;
    let name = &col.name;
    let Some(levels) = col.levels.as_ref() else {
        return Err(Error::column(
            path,
            name,
            "the label has too many distinct values: expected two classes",
        ));
    };
    if let Some(i) = col.codes.iter().position(|&c| c == Column::MISSING_CODE) {
        return Err(Error::cell(
            path,
            table.lines[i],
            name,
            "the label is missing: every row needs one",
        ));
    }
    if levels.len() > 2 {
        let i = col.codes.iter().position(|&c| c >= 2).unwrap();
        return Err(Error::cell(
            path,
            table.lines[i],
            name,
            format!(
                "label value \"{}\" is a third class: expected only \"{}\" and \"{}\"",
                levels[2], levels[0], levels[1]
            ),
        ));
    }
    if need_both && levels.len() < 2 {
        return Err(Error::column(
            path,
            name,
            format!(
                "the label has one class only (\"{}\"): a model needs rows of both classes",
                levels.first().map(String::as_str).unwrap_or("")
            ),
        ));
    }
    let pos = match positive {
        Some(p) => match levels.iter().position(|l| l == p) {
            Some(i) => i,
            None if !need_both => usize::MAX,
            None => {
                return Err(Error::column(
                    path,
                    name,
                    format!(
                        "--positive \"{p}\" is not a label value; the values are \"{}\"",
                        levels.join("\", \"")
                    ),
                ));
            }
        },
        None => guess_positive(levels).ok_or_else(|| {
            Error::column(
                path,
                name,
                format!(
                    "cannot tell which label value means churned: pass --positive (values: \"{}\")",
                    levels.join("\", \"")
                ),
            )
        })?,
    };
    let positive = positive
        .map(str::to_string)
        .unwrap_or_else(|| levels[pos].clone());
    Ok((
        col.codes.iter().map(|&c| c as usize == pos).collect(),
        positive,
    ))
}

pub(super) fn guess_positive(levels: &[String]) -> Option<usize> {
    const YES: [&str; 6] = ["1", "yes", "true", "churned", "churn", "y"];
    let hits: Vec<usize> = (0..levels.len())
        .filter(|&i| YES.contains(&levels[i].to_ascii_lowercase().as_str()))
        .collect();
    (hits.len() == 1).then(|| hits[0])
}
