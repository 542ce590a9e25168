//! `churn export-sql` inside a real PostgreSQL (DATABASE_URL): the view's scores, tiers and reasons
//! equal churn's on every Telco row.
mod common;
use churn::ChurnModel;
use churn::schema::{FeatureKind, Value};
use common::*;

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn export_sql_scores_every_telco_row_like_churn_inside_postgresql() {
    let url = database_url();
    let mut schema = PgSchema::new(&url);
    let name = schema.name.clone();
    let header = schema.load_telco("telco");
    let model = ChurnModel::load(&root().join("models/telco")).unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();

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

    // The cell rule in SQL: NULL cells are imputed and never reasons; categorical text is trimmed
    // and missing tokens are missing, as in churn.
    schema
        .client
        .batch_execute(&format!(
            "INSERT INTO {name}.telco (\"customerID\", tenure, \"Contract\", \"MonthlyCharges\")
               VALUES ('sparse', 2, 'Month-to-month', 95.5);
             INSERT INTO {name}.telco SELECT * FROM {name}.telco WHERE \"customerID\" = '{first}';
             UPDATE {name}.telco SET \"customerID\" = 'padded', \"Contract\" = '  Two year ',
               \"PaymentMethod\" = 'NA', \"TotalCharges\" = NULL
               WHERE ctid = (SELECT max(ctid) FROM {name}.telco WHERE \"customerID\" = '{first}');",
            first = &rows[0][0]
        ))
        .unwrap();
    let first = &rows[0];
    let cell = |c: &str| first[header.iter().position(|h| h == c).unwrap()].to_string();
    let mut padded: Vec<(String, Value)> = Vec::new();
    let owned: Vec<(String, String)> = features
        .iter()
        .map(|f| (f.name.clone(), cell(&f.name)))
        .collect();
    for (name_, v) in &owned {
        let value = match name_.as_str() {
            "Contract" => Value::Text("  Two year "),
            "PaymentMethod" => Value::Text("NA"),
            "TotalCharges" => Value::Missing,
            _ => match model.schema().features()[model.schema().index_of(name_).unwrap()].kind {
                FeatureKind::Numeric(_) => Value::Number(v.parse().unwrap()),
                FeatureKind::Categorical(_) => Value::Text(v),
            },
        };
        padded.push((name_.clone(), value));
    }
    let sparse = [
        ("tenure", Value::Number(2.0)),
        ("Contract", Value::Text("Month-to-month")),
        ("MonthlyCharges", Value::Number(95.5)),
    ];
    let cases: Vec<(&str, churn::Explanation)> = vec![
        ("sparse", model.explain_named(sparse, false).unwrap()),
        (
            "padded",
            model
                .explain_named(padded.iter().map(|(n, v)| (n.as_str(), *v)), false)
                .unwrap(),
        ),
    ];
    for (id, e) in cases {
        let row = schema
            .client
            .query_one(
                &format!("SELECT * FROM {name}.scores WHERE \"customerID\" = $1"),
                &[&id],
            )
            .unwrap();
        let p: f64 = row.get("churn_probability");
        assert!(
            (p - e.probability).abs() <= 1e-12,
            "{id}: {p} vs {}",
            e.probability
        );
        let reasons = e.reasons(3);
        for k in 0..3 {
            let got: Option<String> = row.get(format!("reason_{}", k + 1).as_str());
            assert_eq!(
                got.as_deref(),
                reasons.get(k).map(|r| r.feature.as_str()),
                "{id}: reason {}",
                k + 1
            );
        }
    }
}
