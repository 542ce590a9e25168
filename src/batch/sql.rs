//! `churn export-sql`: a model as one SQL view over a table. The SQL repeats the library's
//! arithmetic in the library's order (each contribution is its main term plus half of each pair
//! term it is in, in pair order; the logit is the baseline plus each contribution in schema order,
//! additive bins as CASE WHEN over the same edges, with the same float64 constants, printed in shortest round-trip form), so PostgreSQL's
//! probabilities equal churn's to within a few units in the last place.
use crate::error::{Error, Result};
use crate::io::MISSING_TOKENS;
use crate::model::additive::Axis;
use crate::model::{ChurnModel, TermView};
use crate::schema::{FeatureKind, Transform};
use std::fmt::Write;

#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// The table (or view, or `schema.table`) holding one row per customer with the model's
    /// feature columns: numeric features as numbers, categorical ones as text.
    pub table: String,
    /// The view to create.
    pub view: String,
    /// Column identifying the customer, copied to the output.
    pub id: Option<String>,
    pub top_k: usize,
}

pub use crate::io::postgres::ident;

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A float64 constant; shortest round-trip digits, so PostgreSQL parses the exact same double.
fn float(x: f64) -> String {
    format!("{x:?}::float8")
}

/// PostgreSQL SQL that creates (or replaces) `opts.view`: id, churn_probability, risk_tier, then
/// reason_i / contribution_i for the top-k contributions, and with usage health health_score,
/// health_band and action. Rows whose numeric value is outside a
/// transform's domain get NULL scores (churn rejects them).
///
/// The SQL repeats the model's one cell rule (`FeatureSchema::resolve`) in SQL: NULL is missing
/// and imputed; categorical text is trimmed, a missing token (`NA`, `?`, ...) is missing, and a
/// level the model never saw takes the unseen level's value. Reasons are chosen, as churn's are,
/// among the features the row gives: an imputed feature keeps its contribution but is never a
/// reason.
pub fn postgres(model: &ChurnModel, opts: &SqlOptions) -> Result<String> {
    let features = model.schema().features();
    if opts.top_k > features.len() {
        return Err(Error::Usage(format!(
            "--top-k {} is more than the model's {} features",
            opts.top_k,
            features.len()
        )));
    }
    let f = model.file();
    let mut sql = String::new();
    let _ = writeln!(
        sql,
        "-- churn model {} ({} features), exported by churn {}.",
        model.id(),
        features.len(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        sql,
        "-- Scores every row of {} in place: SELECT * FROM {} ORDER BY churn_probability DESC;",
        opts.table, opts.view
    );
    let _ = writeln!(
        sql,
        "-- Numeric features must be numeric columns; NULL means missing (imputed as in training)."
    );
    let _ = writeln!(sql, "CREATE OR REPLACE VIEW {} AS", ident(&opts.view));
    let _ = writeln!(sql, "WITH terms AS (\n  SELECT");
    let mut cols = Vec::new();
    if let Some(id) = &opts.id {
        cols.push(format!("    {} AS {}", ident(id), ident(id)));
    }
    let missing_tokens = MISSING_TOKENS
        .iter()
        .map(|t| literal(t))
        .collect::<Vec<_>>()
        .join(", ");
    for (i, def) in features.iter().enumerate() {
        let col = ident(&def.name);
        // The cell trimmed as churn trims it (ASCII whitespace).
        let text = format!("btrim({col}::text, E' \\t\\n\\r\\f\\x0B')");
        let given = match model.term(i) {
            TermView::Numeric { .. } | TermView::Binned { .. } => format!("{col} IS NOT NULL"),
            TermView::Categorical { .. } => {
                format!("COALESCE({text} NOT IN ({missing_tokens}), false)")
            }
        };
        cols.push(format!("    {given} AS {}", ident(&format!("churn_g{i}"))));
        let expr = match model.term(i) {
            TermView::Numeric { enc, scale } => {
                let x = format!("COALESCE({col}::float8, {})", float(enc.impute));
                let t = match enc.transform {
                    Transform::None => x,
                    Transform::Log1p => format!("CASE WHEN {x} > -1 THEN ln(1 + {x}) END"),
                    Transform::Asinh => format!("asinh({x})"),
                };
                format!("(({t}) - {}) * {}", float(enc.mean), float(scale))
            }
            TermView::Categorical { enc, contributions } => {
                let mut e = format!("CASE {text}");
                for (level, c) in enc.levels.iter().zip(contributions) {
                    let _ = write!(e, " WHEN {} THEN {}", literal(level), float(*c));
                }
                let _ = write!(e, " ELSE {} END", float(contributions[enc.unseen]));
                e
            }
            TermView::Binned {
                enc,
                edges,
                contributions,
                missing,
            } => {
                // Bins closed below, as churn's: the first edge above x names the bin.
                let x = format!("{col}::float8");
                let mut e = format!("CASE WHEN {col} IS NULL THEN {}", float(missing));
                if enc.transform == Transform::Log1p {
                    let _ = write!(e, " WHEN {x} <= -1 THEN NULL");
                }
                for (edge, c) in edges.iter().zip(contributions) {
                    let _ = write!(e, " WHEN {x} < {} THEN {}", float(*edge), float(*c));
                }
                let _ = write!(e, " ELSE {} END", float(*contributions.last().unwrap()));
                e
            }
        };
        cols.push(format!("    {expr} AS {}", ident(&format!("churn_m{i}"))));
    }
    for (k, p) in model.pairs().iter().enumerate() {
        let side = |s: usize| -> String {
            let def = &features[p.features[s]];
            let col = ident(&def.name);
            match (&p.axes[s], &def.kind) {
                (Axis::Edges(edges), FeatureKind::Numeric(enc)) => {
                    // A missing number takes the impute value in pair tables.
                    let x = format!("COALESCE({col}::float8, {})", float(enc.impute));
                    let mut e = "CASE".to_string();
                    for (b, edge) in edges.iter().enumerate() {
                        let _ = write!(e, " WHEN {x} < {} THEN {b}", float(*edge));
                    }
                    let _ = write!(e, " ELSE {} END", edges.len());
                    e
                }
                (Axis::Levels(bins), FeatureKind::Categorical(enc)) => {
                    let text = format!("btrim({col}::text, E' \\t\\n\\r\\f\\x0B')");
                    let mut e = format!("CASE {text}");
                    for (level, b) in enc.levels.iter().zip(bins) {
                        let _ = write!(e, " WHEN {} THEN {b}", literal(level));
                    }
                    let _ = write!(e, " ELSE {} END", bins[enc.unseen]);
                    e
                }
                _ => unreachable!("pair axes follow the feature kinds"),
            }
        };
        let table: Vec<String> = p.table.iter().map(|v| float(*v)).collect();
        cols.push(format!(
            "    (ARRAY[{}])[({}) * {} + ({}) + 1] AS {}",
            table.join(", "),
            side(0),
            p.cols(),
            side(1),
            ident(&format!("churn_p{k}"))
        ));
    }
    // Usage health: each measure's oriented mid-rank percentile among its stored percentiles,
    // as `health::percentile` counts it, then the weighted mean in measure order.
    let health = f.health.as_ref();
    if let Some(h) = health {
        for (j, m) in h.measures.iter().enumerate() {
            let i = model.schema().index_of(&m.feature).expect("validated");
            let FeatureKind::Numeric(enc) = &features[i].kind else {
                unreachable!("usage measures are numeric")
            };
            let x = format!(
                "COALESCE({}::float8, {})",
                ident(&m.feature),
                float(enc.impute)
            );
            let edges: Vec<String> = m.percentiles.iter().map(|e| float(*e)).collect();
            let p = format!(
                "100::float8 * (SELECT count(*) FILTER (WHERE e < {x}) + count(*) FILTER (WHERE e <= {x}) FROM unnest(ARRAY[{}]::float8[]) AS e)::float8 / {}::float8",
                edges.join(", "),
                2 * m.percentiles.len()
            );
            let oriented = if m.direction < 0 {
                format!("100::float8 - {p}")
            } else {
                p
            };
            cols.push(format!(
                "    {oriented} AS {}",
                ident(&format!("churn_h{j}"))
            ));
        }
    }
    let _ = writeln!(sql, "{}", cols.join(",\n"));
    let _ = writeln!(sql, "  FROM {}\n),", ident(&opts.table));
    // Each contribution: its main term plus half of each pair term it is in, in pair order.
    let mut parts: Vec<String> = (0..features.len())
        .map(|i| ident(&format!("churn_m{i}")))
        .collect();
    for (k, p) in model.pairs().iter().enumerate() {
        for &i in &p.features {
            parts[i] = format!(
                "{} + 0.5::float8 * {}",
                parts[i],
                ident(&format!("churn_p{k}"))
            );
        }
    }
    let contributions: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS {}", ident(&format!("churn_c{i}"))))
        .collect();
    let _ = writeln!(
        sql,
        "contributions AS (\n  SELECT *, {} FROM terms\n),",
        contributions.join(", ")
    );
    let sum: Vec<String> = (0..features.len())
        .map(|i| ident(&format!("churn_c{i}")))
        .collect();
    let _ = writeln!(
        sql,
        "logits AS (\n  SELECT *, {} + {} AS logit FROM contributions\n),",
        float(model.intercept()),
        sum.join(" + ")
    );
    // Health, once per row: the weighted mean of the measures' percentiles in measure order.
    let health_column = health.map(|h| {
        let total: f64 = h.measures.iter().map(|m| m.weight).sum();
        let sum: Vec<String> = h
            .measures
            .iter()
            .enumerate()
            .map(|(j, m)| format!("{} * {}", float(m.weight), ident(&format!("churn_h{j}"))))
            .collect();
        format!(", ({}) / {} AS churn_health", sum.join(" + "), float(total))
    });
    let _ = writeln!(
        sql,
        "probabilities AS (\n  SELECT *, CASE WHEN logit >= 0 THEN 1 / (1 + exp(-LEAST(logit, 700)))\n    ELSE exp(GREATEST(logit, -700)) / (1 + exp(GREATEST(logit, -700))) END AS churn_probability{}\n  FROM logits\n)",
        health_column.unwrap_or_default()
    );
    let mut out = Vec::new();
    if let Some(id) = &opts.id {
        out.push(format!("  p.{}", ident(id)));
    }
    out.push("  p.churn_probability".into());
    out.push(format!(
        "  CASE WHEN p.churn_probability >= {} THEN 'HIGH' WHEN p.churn_probability >= {} THEN 'MEDIUM' WHEN p.churn_probability IS NOT NULL THEN 'LOW' END AS risk_tier",
        float(f.tiers.high),
        float(f.tiers.medium)
    ));
    for k in 1..=opts.top_k {
        out.push(format!("  r.reason_{k}, r.contribution_{k}"));
    }
    if let Some(h) = health {
        let score = "p.churn_health";
        out.push(format!("  {score} AS health_score"));
        let [red, green] = h.bands;
        let red_when = format!("{score} < {}", float(red));
        out.push(format!(
            "  CASE WHEN {red_when} THEN 'RED' WHEN {score} < {} THEN 'YELLOW' ELSE 'GREEN' END AS health_band",
            float(green)
        ));
        out.push(format!(
            "  CASE WHEN p.churn_probability IS NULL THEN NULL WHEN p.churn_probability >= {m} AND {red_when} THEN 'RESCUE' WHEN p.churn_probability >= {m} THEN 'RENEW' WHEN {red_when} THEN 'ONBOARD' ELSE 'GROW' END AS action",
            m = float(f.tiers.medium)
        ));
    }
    let _ = writeln!(sql, "SELECT\n{}\nFROM probabilities p", out.join(",\n"));
    if opts.top_k > 0 {
        // Largest |contribution| first, ties in feature order: the same rule as churn's reasons.
        let values: Vec<String> = features
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "({}, p.{}, {i}, p.{})",
                    literal(&d.name),
                    ident(&format!("churn_c{i}")),
                    ident(&format!("churn_g{i}"))
                )
            })
            .collect();
        let picks: Vec<String> = (1..=opts.top_k)
            .map(|k| {
                format!(
                    "    (array_agg(v.feature ORDER BY abs(v.c) DESC, v.o) FILTER (WHERE v.g))[{k}] AS reason_{k},\n    (array_agg(v.c ORDER BY abs(v.c) DESC, v.o) FILTER (WHERE v.g))[{k}] AS contribution_{k}"
                )
            })
            .collect();
        let _ = writeln!(
            sql,
            "CROSS JOIN LATERAL (\n  SELECT\n{}\n  FROM (VALUES {}) AS v(feature, c, o, g)\n) r",
            picks.join(",\n"),
            values.join(", ")
        );
    }
    sql.push_str(";\n");
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("s.t"), "\"s\".\"t\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(float(0.1), "0.1::float8");
        assert_eq!(float(-1e-300), "-1e-300::float8");
    }
}
