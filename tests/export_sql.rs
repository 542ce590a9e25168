//! `churn export-sql` inside a real PostgreSQL (DATABASE_URL): the view's scores, tiers and reasons
//! equal churn's on every Telco row.
mod common;
use churn::ChurnModel;
use churn::schema::{FeatureKind, Value};
use common::*;

fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!(
                "\n*** SKIPPED: DATABASE_URL is not set, so the PostgreSQL export-sql test did not run ***\n"
            );
            None
        }
    }
}

/// A throwaway schema, dropped at the end even when the test fails.
struct Schema<'a> {
    client: &'a mut postgres::Client,
    name: String,
}

impl Drop for Schema<'_> {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

#[test]
fn export_sql_scores_every_telco_row_like_churn_inside_postgresql() {
    let Some(url) = database_url() else { return };
    let mut client =
        postgres::Client::connect(&url, postgres::NoTls).expect("connect to DATABASE_URL");
    let name = format!(
        "churn_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    client
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .unwrap();
    let schema = Schema {
        client: &mut client,
        name: name.clone(),
    };

    // The Telco table with numeric columns as float8 (blank TotalCharges -> NULL).
    let model = ChurnModel::load(&root().join("models/telco")).unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let numeric: Vec<bool> = header
        .iter()
        .map(|h| {
            model.schema().index_of(h).is_some_and(|i| {
                matches!(model.schema().features()[i].kind, FeatureKind::Numeric(_))
            })
        })
        .collect();
    let cols: Vec<String> = header
        .iter()
        .zip(&numeric)
        .map(|(h, &n)| format!("\"{h}\" {}", if n { "float8" } else { "text" }))
        .collect();
    schema
        .client
        .batch_execute(&format!("CREATE TABLE {name}.telco ({})", cols.join(", ")))
        .unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    {
        use std::io::Write;
        let mut w = schema
            .client
            .copy_in(&format!("COPY {name}.telco FROM STDIN (FORMAT csv)"))
            .unwrap();
        let mut out = csv::Writer::from_writer(Vec::new());
        for r in &rows {
            out.write_record(r.iter().map(|c| c.trim())).unwrap();
        }
        w.write_all(&out.into_inner().unwrap()).unwrap();
        w.finish().unwrap();
    }

    let r = churn(&[
        "export-sql",
        "--model",
        "models/telco",
        "--table",
        &format!("{name}.telco"),
        "--name",
        &format!("{name}.scores"),
        "--top-k",
        "3",
    ]);
    assert!(r.ok, "{}", r.stderr);
    schema
        .client
        .batch_execute(&r.stdout)
        .unwrap_or_else(|e| panic!("the exported SQL failed: {e}\n{}", r.stdout));
    let got = schema
        .client
        .query(
            &format!("SELECT * FROM {name}.scores ORDER BY \"customerID\""),
            &[],
        )
        .unwrap();
    assert_eq!(got.len(), 7043);
    let by_id: std::collections::HashMap<String, &postgres::Row> = got
        .iter()
        .map(|row| (row.get::<_, String>("customerID"), row))
        .collect();

    let features = model.schema().features();
    let cols: Vec<usize> = features
        .iter()
        .map(|f| header.iter().position(|h| *h == f.name).unwrap())
        .collect();
    let mut worst = 0.0f64;
    for r in &rows {
        let values: Vec<Value> = cols
            .iter()
            .zip(features)
            .map(|(&c, f)| {
                let cell = r[c].trim();
                match f.kind {
                    FeatureKind::Numeric(_) if cell.is_empty() => Value::Missing,
                    FeatureKind::Numeric(_) => Value::Number(cell.parse().unwrap()),
                    FeatureKind::Categorical(_) => Value::Text(cell),
                }
            })
            .collect();
        let e = model.explain(&values, false).unwrap();
        let row = by_id[&r[0]];
        let p: f64 = row.get("churn_probability");
        worst = worst.max((p - e.probability).abs());
        assert_eq!(
            row.get::<_, String>("risk_tier"),
            e.tier.as_str(),
            "{}",
            &r[0]
        );
        for (k, reason) in e.reasons(3).iter().enumerate() {
            assert_eq!(
                row.get::<_, String>(format!("reason_{}", k + 1).as_str()),
                reason.feature,
                "{}",
                &r[0]
            );
            let c: f64 = row.get(format!("contribution_{}", k + 1).as_str());
            assert!(
                (c - reason.contribution).abs() <= 1e-12,
                "{}: {c} vs {}",
                &r[0],
                reason.contribution
            );
        }
    }
    assert!(worst <= 1e-9, "largest probability difference {worst:e}");
    eprintln!(
        "export-sql: 7043 Telco rows scored in PostgreSQL; largest probability difference {worst:e}"
    );
}
