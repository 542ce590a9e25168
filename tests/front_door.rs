//! One front door: the same row gets the same answer through every CLI door (explain, evaluate,
//! score, train, features), whatever the file's delimiter, with the same refusals, reasons that name
//! only what the caller gave, and no temporary file left by a killed run.
mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;

/// The first `n` Telco rows (header first), as cells.
fn telco_cells(n: usize) -> Vec<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(root().join(TELCO))
        .unwrap();
    rdr.records()
        .take(n + 1)
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Writes rows with a delimiter, quoting as a spreadsheet export would.
fn write_rows(path: &Path, rows: &[Vec<String>], delimiter: u8) {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_path(path)
        .unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

/// The JSON `churn explain` gets for one row: numbers as numbers, blanks left out.
fn features_json(header: &[String], row: &[String], skip: &[&str]) -> String {
    let mut m = serde_json::Map::new();
    for (h, v) in header.iter().zip(row) {
        if h == "customerID" || h == "Churn" || skip.contains(&h.as_str()) || v.trim().is_empty() {
            continue;
        }
        let value = match v.parse::<f64>() {
            Ok(x) => serde_json::json!(x),
            Err(_) => serde_json::json!(v),
        };
        m.insert(h.clone(), value);
    }
    serde_json::Value::Object(m).to_string()
}

fn scores_by_id(path: &Path) -> HashMap<String, HashMap<String, String>> {
    read_csv(path)
        .into_iter()
        .map(|r| (r["customerID"].clone(), r))
        .collect()
}

#[test]
fn a_missing_feature_column_is_imputed_like_explain_says_so_once_and_strict_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let rows = telco_cells(200);
    let drop = rows[0].iter().position(|h| h == "Dependents").unwrap();
    let without: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, c)| c.clone())
                .collect()
        })
        .collect();
    let input = dir.path().join("no_dependents.csv");
    write_rows(&input, &without, b',');
    let out = dir.path().join("scores.csv");
    let r = score(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--top-k",
        "19",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("Dependents").count(),
        1,
        "said once: {}",
        r.stderr
    );
    assert!(r.stderr.contains("imputed for every row"), "{}", r.stderr);
    let scores = scores_by_id(&out);
    assert_eq!(scores.len(), 200, "every row scored");
    let header = &without[0];
    for row in &without[1..40] {
        let e = churn(&[
            "explain",
            "--model",
            "models/telco",
            "--json",
            "--features",
            &features_json(header, row, &[]),
        ]);
        assert!(e.ok, "{}", e.stderr);
        let e = json(&e.stdout);
        let s = &scores[&row[0]];
        let p: f64 = s["churn_probability"].parse().unwrap();
        assert_eq!(p, e["churn_probability"].as_f64().unwrap(), "{}", row[0]);
        assert_eq!(s["risk_tier"], e["risk_tier"].as_str().unwrap());
        // The imputed column is never a reason, even with a reason for every feature.
        assert!(
            (1..=19).all(|k| s[&format!("reason_{k}")] != "Dependents"),
            "{s:?}"
        );
    }

    let r = score(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(
        json(&r.stdout)["imputed_columns"],
        serde_json::json!(["Dependents"])
    );

    let strict = dir.path().join("strict.csv");
    let r = score(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        strict.to_str().unwrap(),
        "--strict",
    ]);
    assert!(!r.ok, "--strict must refuse a missing column");
    assert!(
        r.stderr.contains("column 'Dependents'") && r.stderr.contains("--strict"),
        "{}",
        r.stderr
    );
    assert!(!strict.exists(), "nothing written");
}

#[test]
fn every_common_delimiter_is_found_from_the_header_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let rows = telco_cells(600);
    let comma = dir.path().join("comma.csv");
    write_rows(&comma, &rows, b',');
    let scored = |input: &Path, name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let r = score(&args);
        assert!(r.ok, "{name}: {}", r.stderr);
        std::fs::read(out).unwrap()
    };
    let want = scored(&comma, "comma_scores.csv", &[]);
    let evaluated = |input: &Path, extra: &[&str]| {
        let mut args = vec![
            "evaluate",
            "--model",
            "models/telco",
            "--data",
            input.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = churn(&args);
        assert!(r.ok, "{}", r.stderr);
        let v = json(&r.stdout);
        (v["rows"].clone(), v["auc"].clone(), v["log_loss"].clone())
    };
    let want_eval = evaluated(&comma, &[]);
    assert_eq!(want_eval.0, 600);
    for (d, name) in [(b';', "semicolon"), (b'\t', "tab"), (b'|', "pipe")] {
        let path = dir.path().join(format!("{name}.csv"));
        write_rows(&path, &rows, d);
        assert_eq!(
            scored(&path, &format!("{name}_scores.csv"), &[]),
            want,
            "{name}: score"
        );
        assert_eq!(evaluated(&path, &[]), want_eval, "{name}: evaluate");
    }
    // --delimiter overrides the guess: a semicolon file with one more column whose name holds
    // more commas than the header has semicolons, so the guess is wrong.
    let odd = dir.path().join("odd.csv");
    let text: String = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let extra = if i == 0 {
                ",".repeat(40)
            } else {
                String::new()
            };
            format!("{};{extra}\n", r.join(";"))
        })
        .collect();
    std::fs::write(&odd, &text).unwrap();
    let r = score(&[
        "--input",
        odd.to_str().unwrap(),
        "--output",
        dir.path().join("guessed.csv").to_str().unwrap(),
    ]);
    assert!(!r.ok, "the guess is wrong for this file");
    assert_eq!(
        scored(&odd, "odd_scores.csv", &["--delimiter", ";"]),
        want,
        "--delimiter ;"
    );
    let r = score(&[
        "--input",
        odd.to_str().unwrap(),
        "--output",
        dir.path().join("x.csv").to_str().unwrap(),
        "--delimiter",
        "ab",
    ]);
    assert!(!r.ok && r.stderr.contains("--delimiter"), "{}", r.stderr);

    // train reads a semicolon file into the same model as the comma file.
    let semi = dir.path().join("semicolon.csv");
    let a = train_telco(comma.to_str().unwrap(), &dir.path().join("m_comma"), &[]);
    let b = train_telco(semi.to_str().unwrap(), &dir.path().join("m_semi"), &[]);
    assert_eq!(
        weights_of(&a),
        weights_of(&b),
        "train on ; equals train on ,"
    );
}

#[test]
fn features_reads_a_tab_separated_event_log_like_the_comma_one() {
    let dir = tempfile::tempdir().unwrap();
    let comma = "customer_id,timestamp,event_type\n\
                 a,2024-01-03,login\n\
                 a,2024-02-10,login\n\
                 b,2024-01-05,login\n\
                 b,2024-03-20,login\n\
                 c,2024-01-09,login\n";
    let tab = comma.replace(',', "\t");
    let run = |name: &str, text: &str| {
        let events = write(dir.path(), name, text);
        let out = dir.path().join(format!("{name}.features.csv"));
        let r = churn(&[
            "features",
            "--events",
            &events,
            "--snapshot",
            "2024-02-01",
            "--horizon",
            "30d",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(r.ok, "{name}: {}", r.stderr);
        std::fs::read_to_string(out).unwrap()
    };
    let a = run("events.csv", comma);
    assert_eq!(a.lines().count(), 4, "three customers and a header: {a}");
    assert_eq!(run("events.tsv", &tab), a);
}

#[test]
fn text_in_a_numeric_column_is_refused_by_score_and_by_evaluate_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = telco_cells(300);
    let tenure = rows[0].iter().position(|h| h == "tenure").unwrap();
    rows[6][tenure] = "abc".into(); // line 7
    rows[9][tenure] = "NA".into(); // a missing token: imputed, not refused
    let monthly = rows[0].iter().position(|h| h == "MonthlyCharges").unwrap();
    rows[12][monthly] = "NaN".into(); // line 13: a non-finite number, refused
    let input = dir.path().join("text.csv");
    write_rows(&input, &rows, b',');
    let out = dir.path().join("s.csv");
    let rejects = dir.path().join("rejects.csv");
    let r = score(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(read_csv(&out).len(), 298);
    let rej = read_csv(&rejects);
    assert_eq!(rej.len(), 2);
    assert_eq!(rej[0]["line"], "7");
    assert_eq!(rej[0]["columns"], "tenure");
    assert_eq!(rej[1]["line"], "13");
    assert_eq!(rej[1]["columns"], "MonthlyCharges");

    let r = churn(&[
        "evaluate",
        "--model",
        "models/telco",
        "--data",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["rows"], 298, "only scored rows count");
    assert_eq!(v["rejected_rows"], 2);
    assert_eq!(v["rejected"][0]["line"], 7);
    assert_eq!(v["rejected"][0]["column"], "tenure");
    assert_eq!(v["rejected"][1]["line"], 13);
    assert_eq!(v["rejected"][1]["column"], "MonthlyCharges");
    assert!(
        v["rejected"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("expected a finite number, got NaN"),
        "{v}"
    );
    assert!(
        v["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("expected a number, got text \"abc\""),
        "{v}"
    );
    // The metrics are those of the other 298 rows.
    let mut kept = rows.clone();
    kept.remove(12);
    kept.remove(6);
    let clean = dir.path().join("clean.csv");
    write_rows(&clean, &kept, b',');
    let r = churn(&[
        "evaluate",
        "--model",
        "models/telco",
        "--data",
        clean.to_str().unwrap(),
        "--json",
    ]);
    let w = json(&r.stdout);
    assert_eq!(v["auc"], w["auc"]);
    assert_eq!(v["log_loss"], w["log_loss"]);
    assert_eq!(w["rejected_rows"], 0);
    // And the text report names the line and column.
    let r = churn(&[
        "evaluate",
        "--model",
        "models/telco",
        "--data",
        input.to_str().unwrap(),
    ]);
    assert!(r.stdout.contains("line 7 column 'tenure'"), "{}", r.stdout);
}

#[test]
fn reasons_name_only_the_features_the_caller_gave() {
    let r = churn(&[
        "explain",
        "--model",
        "models/telco",
        "--json",
        "--top-k",
        "5",
        "--features",
        r#"{"tenure": 2, "Contract": "Month-to-month", "MonthlyCharges": 95.5}"#,
    ]);
    assert!(r.ok, "{}", r.stderr);
    let e = json(&r.stdout);
    let reasons = e["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 3, "three given features, three reasons: {e}");
    for r in reasons {
        assert!(
            ["tenure", "Contract", "MonthlyCharges"].contains(&r["feature"].as_str().unwrap()),
            "{r}"
        );
        assert_eq!(r["imputed"], false);
    }
    // Imputed features keep their contribution, so the sum stays exact.
    let contributions = e["contributions"].as_array().unwrap();
    let sum: f64 = contributions
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum::<f64>()
        + e["baseline_logit"].as_f64().unwrap();
    assert!((sum - e["logit"].as_f64().unwrap()).abs() < 1e-12);
    let imputed = contributions
        .iter()
        .filter(|c| c["imputed"] == true)
        .count();
    assert_eq!(imputed, 16);
    assert!(
        contributions
            .iter()
            .any(|c| c["imputed"] == true && c["contribution"].as_f64().unwrap() != 0.0),
        "an imputed feature still contributes"
    );
}

#[test]
fn unknown_features_name_the_model_once_each_at_most_twenty() {
    let mut m = serde_json::Map::new();
    m.insert("tenure".into(), serde_json::json!(3));
    for i in 0..25 {
        m.insert(format!("extra_{i:02}"), serde_json::json!(1));
    }
    let r = churn(&[
        "explain",
        "--model",
        "models/telco",
        "--features",
        &serde_json::Value::Object(m).to_string(),
    ]);
    assert!(!r.ok);
    for i in 0..20 {
        let field = format!("extra_{i:02}: unknown feature");
        assert_eq!(r.stderr.matches(&field).count(), 1, "{field}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("extra_21:"), "{}", r.stderr);
    assert!(r.stderr.contains("4 more unknown features"), "{}", r.stderr);
    assert!(r.stderr.contains("model telco@1"), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("gender, SeniorCitizen").count(),
        1,
        "the model's features are listed once: {}",
        r.stderr
    );
}

#[test]
fn a_missing_model_path_lists_the_models_that_exist() {
    let r = churn(&["explain", "--model", "models/telcoo", "--features", "{}"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("no such file or folder") && r.stderr.contains("models/telco"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_killed_run_leaves_no_temp_file_after_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    // Big enough to be mid-run when killed.
    let big = dir.path().join("big.csv");
    {
        let rows = telco_cells(7043);
        let mut w = csv::Writer::from_path(&big).unwrap();
        w.write_record(&rows[0]).unwrap();
        for k in 0..60 {
            for r in &rows[1..] {
                let mut r = r.clone();
                r[0] = format!("{}-{k}", r[0]);
                w.write_record(&r).unwrap();
            }
        }
        w.flush().unwrap();
    }
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("s.csv");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_churn"))
        .args(["score", "--model", "models/telco", "--input"])
        .arg(&big)
        .arg("--output")
        .arg(&out)
        .current_dir(root())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has its temporary file, then kill it without warning.
    let t0 = std::time::Instant::now();
    while std::fs::read_dir(&out_dir).unwrap().count() == 0 {
        assert!(t0.elapsed().as_secs() < 30, "no temporary file appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().any(|f| f.starts_with(".s.csv.")),
        "the kill left its temporary file: {left:?}"
    );
    let r = score(&["--input", TELCO, "--output", out.to_str().unwrap()]);
    assert!(r.ok, "{}", r.stderr);
    let left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["s.csv"], "only the output is left");
}
