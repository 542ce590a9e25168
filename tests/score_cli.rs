//! `churn score` on files: every row scored or rejected with its line, scores equal explain's,
//! CSV and Parquet both ways, shards that partition, chunking that changes nothing.
mod common;
use churn::ChurnModel;
use churn::schema::{FeatureKind, Value};
use common::*;
use std::collections::{HashMap, HashSet};

/// churn's own probability for each Telco customer, through the library.
fn expected() -> HashMap<String, (f64, String, Vec<String>)> {
    let model = ChurnModel::load(&root().join("models/telco")).unwrap();
    let mut rdr = csv::Reader::from_path(root().join(TELCO)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let features = model.schema().features();
    let cols: Vec<usize> = features
        .iter()
        .map(|f| header.iter().position(|h| *h == f.name).unwrap())
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            let values: Vec<Value> = cols
                .iter()
                .zip(features)
                .map(|(&c, f)| match (&f.kind, r[c].trim()) {
                    (FeatureKind::Numeric(_), "") => Value::Missing,
                    (FeatureKind::Numeric(_), t) => Value::Number(t.parse().unwrap()),
                    (_, t) => Value::Text(t),
                })
                .collect();
            let e = model.explain(&values, false).unwrap();
            let reasons = e.reasons(3).iter().map(|c| c.feature.clone()).collect();
            (
                r[0].to_string(),
                (e.probability, e.tier.as_str().to_string(), reasons),
            )
        })
        .collect()
}

#[test]
fn every_telco_row_is_scored_like_explain_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.csv");
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let s = json(&r.stdout);
    assert_eq!(
        (
            s["rows_read"].as_u64(),
            s["scored"].as_u64(),
            s["rejected"].as_u64()
        ),
        (Some(7043), Some(7043), Some(0))
    );
    assert!(s["rejects_file"].is_null());
    assert!(
        !dir.path().join("scores.csv.rejects.csv").exists(),
        "no rejects file without rejects"
    );
    let rows = read_csv(&out);
    let want = expected();
    let input: Vec<String> = read_csv(&root().join(TELCO))
        .into_iter()
        .map(|r| r["customerID"].clone())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| r["customerID"].clone())
            .collect::<Vec<_>>(),
        input,
        "input order kept"
    );
    for row in &rows {
        let (p, tier, reasons) = &want[&row["customerID"]];
        assert_eq!(row["churn_probability"].parse::<f64>().unwrap(), *p);
        assert_eq!(&row["risk_tier"], tier);
        assert_eq!(
            [&row["reason_1"], &row["reason_2"], &row["reason_3"]],
            [&reasons[0], &reasons[1], &reasons[2]]
        );
        assert_eq!(row["model"], "telco@1");
    }
    let tiers: u64 = ["high", "medium", "low"]
        .iter()
        .map(|t| s[*t].as_u64().unwrap())
        .sum();
    assert_eq!(tiers, 7043);

    // Small chunks and one thread give the same file.
    let small = dir.path().join("small.csv");
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        small.to_str().unwrap(),
        "--chunk-rows",
        "97",
        "--threads",
        "1",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&small).unwrap());
}

#[test]
fn parquet_out_and_back_in() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("scores.parquet");
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        pq.to_str().unwrap(),
        "--top-k",
        "2",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&pq).unwrap()).unwrap();
    assert_eq!(b.schema().metadata()["churn.model"], "telco@1");
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "customerID",
            "churn_probability",
            "risk_tier",
            "reason_1",
            "contribution_1",
            "reason_2",
            "contribution_2"
        ]
    );
    let want = expected();
    let mut n = 0;
    for batch in b.build().unwrap() {
        use arrow_array::cast::AsArray;
        let batch = batch.unwrap();
        let ids = batch.column(0).as_string::<i32>();
        let p = batch
            .column(1)
            .as_primitive::<arrow_array::types::Float64Type>();
        for i in 0..batch.num_rows() {
            assert_eq!(p.value(i), want[ids.value(i)].0);
            n += 1;
        }
    }
    assert_eq!(n, 7043);
    // Parquet scores as input: its columns are not features, so the error names the first missing one.
    let r = score(&[
        "--input",
        pq.to_str().unwrap(),
        "--output",
        dir.path().join("x.csv").to_str().unwrap(),
    ]);
    assert!(
        !r.ok && r.stderr.contains("column 'gender'") && r.stderr.contains("no such column"),
        "{}",
        r.stderr
    );
    assert!(
        !dir.path().join("x.csv").exists(),
        "no output is left by a failed run"
    );
}

#[test]
fn bad_rows_land_in_rejects_with_their_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let mut lines: Vec<String> = text.lines().take(21).map(str::to_string).collect();
    // line 3: text in a numeric column; line 5: ragged; line 7: outside log1p's domain;
    // line 9: an unseen level (scored, not rejected); line 11: two bad fields.
    lines[2] = lines[2].replacen(",34,", ",thirty-four,", 1);
    lines[4].push_str(",extra");
    let cells: Vec<&str> = lines[6].split(',').collect();
    lines[6] = format!("{},-5,{}", cells[..19].join(","), cells[20]);
    lines[8] = lines[8]
        .replacen("Electronic check", "Bitcoin", 1)
        .replacen("Mailed check", "Bitcoin", 1);
    let cells: Vec<String> = lines[10].split(',').map(str::to_string).collect();
    let mut c = cells.clone();
    c[5] = "x".into();
    c[18] = "NaN".into();
    lines[10] = c.join(",");
    let mut bytes = (lines.join("\n") + "\n").into_bytes();
    // line 22: invalid UTF-8 in a feature column.
    let row: Vec<&str> = text.lines().nth(30).unwrap().split(',').collect();
    bytes.extend_from_slice(format!("{},", row[0]).as_bytes());
    bytes.extend_from_slice(b"\xff\xfe");
    bytes.extend_from_slice(format!(",{}\n", row[2..].join(",")).as_bytes());
    let input = dir.path().join("in.csv");
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out.csv");
    let rejects = dir.path().join("rej.csv");
    let r = score(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let s = json(&r.stdout);
    assert_eq!(s["rows_read"], 21);
    assert_eq!(s["rejected"], 5);
    assert_eq!(s["scored"], 16);
    let rej = read_csv(&rejects);
    let by_line: HashMap<&str, &HashMap<String, String>> =
        rej.iter().map(|r| (r["line"].as_str(), r)).collect();
    assert!(
        by_line["3"]["reason"].contains("tenure: expected a number, got text \"thirty-four\""),
        "{rej:?}"
    );
    assert_eq!(by_line["3"]["columns"], "tenure");
    assert!(
        by_line["5"]["reason"].contains("ragged row: 22 fields, expected 21"),
        "{rej:?}"
    );
    assert!(
        by_line["7"]["reason"].contains("TotalCharges: -5 is outside the domain"),
        "{rej:?}"
    );
    assert_eq!(by_line["11"]["columns"], "tenure;MonthlyCharges");
    assert!(
        by_line["11"]["reason"].contains("MonthlyCharges: expected a finite number, got NaN"),
        "{rej:?}"
    );
    assert_eq!(by_line["22"]["reason"], "gender: invalid UTF-8", "{rej:?}");
    assert_eq!(by_line["22"]["columns"], "gender", "{rej:?}");
    assert_eq!(by_line["22"]["id"], row[0], "{rej:?}");
    let scored: HashSet<String> = read_csv(&out)
        .into_iter()
        .map(|r| r["customerID"].clone())
        .collect();
    assert!(
        scored.contains(lines[8].split(',').next().unwrap()),
        "the unseen level row is scored"
    );
    for l in [3, 5, 7, 11] {
        assert!(
            !scored.contains(lines[l - 1].split(',').next().unwrap()),
            "line {l} is not in the output"
        );
    }
}

#[test]
fn shards_partition_the_customers() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 0..3 {
        let out = dir.path().join(format!("s{i}.csv"));
        let shard = format!("{i}/3");
        let r = score(&[
            "--input",
            TELCO,
            "--output",
            out.to_str().unwrap(),
            "--shard",
            &shard,
            "--json",
        ]);
        assert!(r.ok, "{}", r.stderr);
        let s = json(&r.stdout);
        assert_eq!(
            s["scored"].as_u64().unwrap() + s["other_shards"].as_u64().unwrap(),
            7043
        );
        for row in read_csv(&out) {
            *seen.entry(row["customerID"].clone()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 7043);
    assert!(
        seen.values().all(|&n| n == 1),
        "every customer in exactly one shard"
    );
    // The same shard twice is the same set.
    let a = dir.path().join("again.csv");
    assert!(
        score(&[
            "--input",
            TELCO,
            "--output",
            a.to_str().unwrap(),
            "--shard",
            "0/3"
        ])
        .ok
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(dir.path().join("s0.csv")).unwrap()
    );
    for bad in ["3/3", "1", "a/b", "0/0"] {
        let r = score(&[
            "--input",
            TELCO,
            "--output",
            a.to_str().unwrap(),
            "--shard",
            bad,
        ]);
        assert!(!r.ok && r.stderr.contains("--shard"), "{bad}: {}", r.stderr);
    }
}

#[test]
fn crlf_files_report_the_right_line_numbers() {
    // The csv crate counts a CRLF record's line from the '\n' left by the previous line.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let mut lines: Vec<String> = text.lines().take(11).map(str::to_string).collect();
    lines[6] = lines[6].split(',').take(5).collect::<Vec<_>>().join(",");
    let input = dir.path().join("crlf.csv");
    std::fs::write(&input, lines.join("\r\n") + "\r\n").unwrap();
    let out = dir.path().join("out.csv");
    let rej = dir.path().join("rej.csv");
    let r = score(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--rejects",
        rej.to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    let rows = read_csv(&rej);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["line"], "7", "{rows:?}");
    assert_eq!(read_csv(&out).len(), 9);
}

#[test]
fn without_an_id_rows_are_named_by_line_and_ranked_in_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    // Drop the id column (the first).
    let no_id: String = text
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_string() + "\n")
        .collect();
    let input = write(dir.path(), "no_id.csv", &no_id);
    let csv_out = dir.path().join("r.csv");
    let pq_out = dir.path().join("r.parquet");
    for out in [&csv_out, &pq_out] {
        let r = score(&[
            "--input",
            &input,
            "--output",
            out.to_str().unwrap(),
            "--rank",
            "--chunk-rows",
            "500",
        ]);
        assert!(r.ok, "{}", r.stderr);
    }
    let rows = read_csv(&csv_out);
    assert_eq!(rows.len(), 7043);
    let mut probs: Vec<f64> = rows
        .iter()
        .map(|r| r["churn_probability"].parse().unwrap())
        .collect();
    probs.sort_by(|a, b| b.total_cmp(a));
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["line"], (i + 2).to_string());
        let p: f64 = r["churn_probability"].parse().unwrap();
        let rank = 1 + probs.iter().filter(|&&q| q > p).count();
        assert_eq!(r["rank"], rank.to_string());
    }
    use arrow_array::cast::AsArray;
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&pq_out).unwrap(),
    )
    .unwrap();
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names[..4],
        ["line", "churn_probability", "risk_tier", "rank"]
    );
    let mut i = 0;
    for batch in b.build().unwrap() {
        let batch = batch.unwrap();
        let line = batch.column(0).as_string::<i32>();
        let rank = batch
            .column(3)
            .as_primitive::<arrow_array::types::Int64Type>();
        for k in 0..batch.num_rows() {
            assert_eq!(line.value(k), rows[i]["line"]);
            assert_eq!(rank.value(k).to_string(), rows[i]["rank"]);
            i += 1;
        }
    }
    assert_eq!(i, 7043);
}

#[test]
fn parquet_input_scores_like_csv_and_names_bad_rows_by_row() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let model = churn::ChurnModel::load(&root().join("models/telco")).unwrap();
    let mut rdr = csv::Reader::from_path(root().join(TELCO)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let recs: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (c, h) in header.iter().enumerate() {
        let numeric = model.schema().index_of(h).is_some_and(|i| {
            matches!(
                model.schema().features()[i].kind,
                churn::schema::FeatureKind::Numeric(_)
            )
        });
        if numeric {
            // Row 7 gets a value outside log1p's domain.
            cols.push(std::sync::Arc::new(Float64Array::from_iter(
                recs.iter().enumerate().map(|(i, r)| {
                    if i == 6 && h == "TotalCharges" {
                        Some(-5.0)
                    } else {
                        r[c].trim().parse::<f64>().ok()
                    }
                }),
            )));
            fields.push(arrow_schema::Field::new(
                h,
                arrow_schema::DataType::Float64,
                true,
            ));
        } else {
            cols.push(std::sync::Arc::new(StringArray::from_iter_values(
                recs.iter().map(|r| r[c].to_string()),
            )));
            fields.push(arrow_schema::Field::new(
                h,
                arrow_schema::DataType::Utf8,
                false,
            ));
        }
    }
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
    let pq = dir.path().join("telco.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq).unwrap(),
        schema.clone(),
        None,
    )
    .unwrap();
    w.write(&RecordBatch::try_new(schema, cols).unwrap())
        .unwrap();
    w.close().unwrap();

    let out = dir.path().join("out.csv");
    let rejects = dir.path().join("rej.csv");
    let r = score(&[
        "--input",
        pq.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        "--chunk-rows",
        "1000",
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let s = json(&r.stdout);
    assert_eq!(
        (s["scored"].as_u64(), s["rejected"].as_u64()),
        (Some(7042), Some(1))
    );
    let rej = read_csv(&rejects);
    assert_eq!(rej[0]["row"], "7");
    assert_eq!(rej[0]["id"], &recs[6][0]);
    assert_eq!(rej[0]["columns"], "TotalCharges");
    let want = expected();
    let got = read_csv(&out);
    assert_eq!(got.len(), 7042);
    for row in &got {
        let (p, tier, reasons) = &want[&row["customerID"]];
        assert_eq!(row["churn_probability"].parse::<f64>().unwrap(), *p);
        assert_eq!(&row["risk_tier"], tier);
        assert_eq!(&row["reason_1"], &reasons[0]);
    }
}
