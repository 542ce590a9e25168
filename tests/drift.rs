//! `churn drift` end to end: references stored at training, the training data itself stable, a
//! held-out part stable, one numeric feature scaled by 1.3 major and nothing else, a new dominant
//! level major with its unseen share, a broken pipeline's missing values, `--fail-on` exit codes,
//! the PSI recomputed by hand from the model file, and an old model file without references.
mod common;
use common::{TELCO, churn, json, root, train_telco, write};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The Telco table with `edit` applied to every data row (row index, cells by column).
fn edited(dir: &Path, name: &str, edit: impl Fn(usize, &mut HashMap<String, String>)) -> String {
    let mut rdr = csv::Reader::from_path(root().join(TELCO)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let mut out = csv::Writer::from_path(dir.join(name)).unwrap();
    out.write_record(&header).unwrap();
    for (i, r) in rdr.records().enumerate() {
        let r = r.unwrap();
        let mut row: HashMap<String, String> = header
            .iter()
            .cloned()
            .zip(r.iter().map(str::to_string))
            .collect();
        edit(i, &mut row);
        out.write_record(header.iter().map(|h| row[h].as_str()))
            .unwrap();
    }
    out.flush().unwrap();
    dir.join(name).to_str().unwrap().to_string()
}

/// The Telco table with MonthlyCharges scaled by 1.3.
fn monthly_charges_scaled(dir: &Path) -> String {
    edited(dir, "shifted.csv", |_, r| {
        let x: f64 = r["MonthlyCharges"].parse().unwrap();
        r.insert("MonthlyCharges".into(), format!("{}", x * 1.3));
    })
}

/// `churn score --json` of `data` with `model`.
fn score_json(model: &str, data: &str, out: &Path) -> common::Run {
    churn(&[
        "score",
        "--model",
        model,
        "--input",
        data,
        "--output",
        out.to_str().unwrap(),
        "--id",
        "customerID",
        "--json",
    ])
}

fn drift(model: &Path, data: &str) -> Value {
    let r = churn(&[
        "drift",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data,
        "--json",
    ]);
    assert!(r.ok, "drift: {}", r.stderr);
    json(&r.stdout)
}

fn by_feature(d: &Value) -> HashMap<String, Value> {
    d["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["feature"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn psi_of(f: &Value) -> f64 {
    f["psi"].as_f64().unwrap()
}

#[test]
fn the_training_data_is_stable_and_a_held_out_part_too() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_telco(TELCO, &dir.path().join("m"), &[]);
    let file = json(&std::fs::read_to_string(&model).unwrap());
    let refs = &file["drift"];
    assert_eq!(refs["rows"], 7043);
    assert_eq!(refs["features"].as_array().unwrap().len(), 19);
    assert_eq!(
        refs["score"]["shares"].as_array().unwrap().len(),
        refs["score"]["edges"].as_array().unwrap().len() + 1
    );

    let same = drift(&model, TELCO);
    assert_eq!(same["rows"], 7043);
    for f in same["features"].as_array().unwrap() {
        assert!(psi_of(f).abs() < 1e-12, "{f}");
        assert_eq!(f["band"], "stable");
    }
    assert!(same["score"]["psi"].as_f64().unwrap().abs() < 1e-12);

    // Trained on two thirds, measured on the other third: sampling noise only.
    let train = edited(dir.path(), "all.csv", |_, _| {});
    let text = std::fs::read_to_string(&train).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut a, mut b) = (vec![header], vec![header]);
    for (i, l) in lines.enumerate() {
        if i % 3 == 2 { b.push(l) } else { a.push(l) }
    }
    let a = write(dir.path(), "a.csv", &(a.join("\n") + "\n"));
    let b = write(dir.path(), "b.csv", &(b.join("\n") + "\n"));
    let m2 = train_telco(&a, &dir.path().join("m2"), &[]);
    let held = drift(&m2, &b);
    for f in held["features"].as_array().unwrap() {
        assert!(psi_of(f) < 0.1, "{f}");
    }
    assert_eq!(held["score"]["band"], "stable");
}

#[test]
fn a_scaled_feature_is_major_and_the_others_stay_stable_with_the_psi_we_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_telco(TELCO, &dir.path().join("m"), &[]);
    let shifted = monthly_charges_scaled(dir.path());
    let d = drift(&model, &shifted);
    let f = by_feature(&d);
    assert_eq!(f["MonthlyCharges"]["band"], "major");
    assert_eq!(
        d["features"][0]["feature"], "MonthlyCharges",
        "sorted by PSI"
    );
    for (name, v) in &f {
        if name != "MonthlyCharges" {
            assert!(psi_of(v) < 1e-12, "{name}: {v}");
        }
    }

    // By hand: bins closed below at the stored edges, shares floored at 1e-4, plus the missing bin.
    let file = json(&std::fs::read_to_string(&model).unwrap());
    let r = file["drift"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["feature"] == "MonthlyCharges")
        .unwrap()
        .clone();
    let edges: Vec<f64> = r["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect();
    let mut e: Vec<f64> = r["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    e.push(r["missing_share"].as_f64().unwrap());
    let mut counts = vec![0usize; e.len()];
    for row in common::read_csv(Path::new(&shifted)) {
        let x: f64 = row["MonthlyCharges"].parse().unwrap();
        counts[edges.iter().filter(|&&edge| edge <= x).count()] += 1;
    }
    let n = counts.iter().sum::<usize>() as f64;
    let ours: f64 = e
        .iter()
        .zip(&counts)
        .map(|(&e, &c)| {
            let (a, e) = ((c as f64 / n).max(1e-4), e.max(1e-4));
            (a - e) * (a / e).ln()
        })
        .sum();
    assert!(
        (ours - psi_of(&f["MonthlyCharges"])).abs() < 1e-12,
        "ours {ours}, churn {}",
        f["MonthlyCharges"]["psi"]
    );

    // --fail-on: 3 on major drift, naming the feature; 0 without the flag.
    let m = model.to_str().unwrap();
    let r = churn(&[
        "drift",
        "--model",
        m,
        "--data",
        &shifted,
        "--fail-on",
        "major",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("drift is major: MonthlyCharges (PSI"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("MonthlyCharges") && r.stdout.contains("major"),
        "the table still prints"
    );
    assert_eq!(
        churn(&[
            "drift",
            "--model",
            m,
            "--data",
            &shifted,
            "--fail-on",
            "moderate"
        ])
        .code,
        Some(3)
    );
    assert_eq!(
        churn(&["drift", "--model", m, "--data", &shifted]).code,
        Some(0)
    );
    assert_eq!(
        churn(&[
            "drift",
            "--model",
            m,
            "--data",
            TELCO,
            "--fail-on",
            "moderate"
        ])
        .code,
        Some(0)
    );
    let r = churn(&["drift", "--model", m, "--data", TELCO, "--fail-on", "minor"]);
    assert_eq!(
        r.code,
        Some(2),
        "clap refuses an unknown band: {}",
        r.stderr
    );
}

#[test]
fn a_new_dominant_level_and_missing_values_are_major_with_their_shares() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_telco(TELCO, &dir.path().join("m"), &[]);
    let new_level = edited(dir.path(), "level.csv", |i, r| {
        if i % 10 < 7 {
            r.insert("PaymentMethod".into(), "Crypto wallet".into());
        }
    });
    let f = by_feature(&drift(&model, &new_level));
    assert_eq!(f["PaymentMethod"]["band"], "major");
    let changed = (0..7043).filter(|i| i % 10 < 7).count() as f64;
    assert!(
        (f["PaymentMethod"]["unseen_share"].as_f64().unwrap() - changed / 7043.0).abs() < 1e-12
    );
    assert_eq!(f["Contract"]["unseen_share"], 0.0);
    assert!(
        f["tenure"].get("unseen_share").is_none(),
        "numeric features have no levels"
    );

    // A broken pipeline: half of tenure blank.
    let blanks = edited(dir.path(), "blank.csv", |i, r| {
        if i % 2 == 0 {
            r.insert("tenure".into(), String::new());
        }
    });
    let f = by_feature(&drift(&model, &blanks));
    let t = &f["tenure"];
    assert_eq!(t["band"], "major");
    let half = (0..7043).filter(|i| i % 2 == 0).count() as f64 / 7043.0;
    assert!((t["missing_share"].as_f64().unwrap() - half).abs() < 1e-12);
    assert_eq!(t["reference_missing_share"], 0.0);
    assert!((t["missing_change"].as_f64().unwrap() - half).abs() < 1e-12);
}

#[test]
fn a_model_without_references_and_bad_data_get_clear_errors() {
    // The bundled model was trained before references were kept.
    let r = churn(&["drift", "--model", "models/telco", "--data", TELCO]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("telco@1 has no drift references") && r.stderr.contains("retrain"),
        "{}",
        r.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let model = train_telco(TELCO, &dir.path().join("m"), &[]);
    let m = model.to_str().unwrap();
    let no_col = write(dir.path(), "no_col.csv", "customerID,tenure\na,1\n");
    let r = churn(&["drift", "--model", m, "--data", &no_col]);
    assert!(
        !r.ok
            && r.stderr.contains("gender")
            && r.stderr.contains("the model needs this feature column"),
        "{}",
        r.stderr
    );
    let text = edited(dir.path(), "text.csv", |i, r| {
        if i == 4 {
            r.insert("tenure".into(), "twelve".into());
        }
    });
    let d = churn(&["drift", "--model", m, "--data", &text, "--json"]);
    assert!(d.ok, "{}", d.stderr);
    let d = json(&d.stdout);
    assert_eq!(
        d["rows"], 7042,
        "the refused row is left out of the figures"
    );
    assert_eq!(d["rejected_rows"], 1);
    assert_eq!(d["rejected"][0]["line"], 6);
    assert_eq!(d["rejected"][0]["column"], "tenure");
}

#[test]
fn churn_score_reports_the_same_drift_and_warns_on_a_major_feature() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_telco(TELCO, &dir.path().join("m"), &[]);
    let m = model.to_str().unwrap();
    let shifted = monthly_charges_scaled(dir.path());
    let out = dir.path().join("scores.csv");
    let r = score_json(m, &shifted, &out);
    assert!(r.ok, "{}", r.stderr);
    let summary = json(&r.stdout);
    let d = drift(&model, &shifted);
    // The same rows through the batch pipeline and through `churn drift`: the same figures.
    assert_eq!(summary["drift"]["features"], d["features"]);
    assert_eq!(summary["drift"]["score"], d["score"]);
    assert!(
        r.stderr.contains("drift: MonthlyCharges is major"),
        "{}",
        r.stderr
    );
    // Unshifted data: no warning.
    let r = score_json(m, TELCO, &out);
    assert!(r.ok && !r.stderr.contains("drift:"), "{}", r.stderr);
    assert_eq!(json(&r.stdout)["drift"]["score"]["band"], "stable");
}

#[test]
fn the_model_report_shows_the_drift_of_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_telco(TELCO, &dir.path().join("m"), &[]);
    let m = model.to_str().unwrap();
    let shifted = monthly_charges_scaled(dir.path());
    let page = dir.path().join("model.html");
    let r = churn(&[
        "report",
        "--model",
        m,
        "--data",
        &shifted,
        "--out",
        page.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let report = json(&r.stdout);
    let d = drift(&model, &shifted);
    assert_eq!(report["drift"]["features"], d["features"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Drift against the training customers") && html.contains("major"));
    // The bundled model keeps no references: the page says so instead of a table.
    let r = churn(&[
        "report",
        "--model",
        "models/telco",
        "--data",
        TELCO,
        "--out",
        page.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok && json(&r.stdout)["drift"].is_null());
    assert!(
        std::fs::read_to_string(&page)
            .unwrap()
            .contains("keeps no drift references")
    );
}
