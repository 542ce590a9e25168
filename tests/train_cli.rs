//! `churn train`, `evaluate`, `inspect`: the contract on the real Telco data.
mod common;
use common::*;

#[test]
fn bundled_model_is_reproduced_by_its_documented_command() {
    // models/telco/1/README.md holds the command; run it into a fresh folder.
    let readme = std::fs::read_to_string(root().join("models/telco/1/README.md")).unwrap();
    let cmd = readme
        .lines()
        .find(|l| l.trim_start().starts_with("churn train"))
        .expect("a 'churn train' line in models/telco/1/README.md");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("telco");
    let mut args: Vec<String> = cmd.split_whitespace().skip(1).map(str::to_string).collect();
    let i = args.iter().position(|a| a == "--out").unwrap();
    args[i + 1] = out.to_str().unwrap().to_string();
    let r = churn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.ok, "{}", r.stderr);
    let bundled = weights_of(&root().join("models/telco/1/model.json"));
    let again = weights_of(&out.join("1/model.json"));
    assert_eq!(
        bundled, again,
        "retraining with the documented command changed the weights"
    );
}

#[test]
fn same_data_and_seed_give_byte_identical_weights_and_versions_increment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let a = train_telco(TELCO, &out, &[]);
    let b = train_telco(TELCO, &out, &[]);
    assert!(
        a.ends_with("m/1/model.json") && b.ends_with("m/2/model.json"),
        "{a:?} {b:?}"
    );
    let text = |p: &std::path::Path| serde_json::to_string(&weights_of(p)).unwrap();
    assert_eq!(text(&a), text(&b));
    // A different seed moves the holdout and so the tier cuts.
    let c = train_telco(TELCO, &out, &["--seed", "4"]);
    assert_ne!(weights_of(&a)["tiers"], weights_of(&c)["tiers"]);
    // A model folder resolves to its highest version.
    let r = churn(&["inspect", "--model", out.to_str().unwrap(), "--json"]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(json(&r.stdout)["model"]["version"], 3);
}

#[test]
fn model_file_records_training_facts_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = train_telco(TELCO, &dir.path().join("telco"), &["--kind", "linear"]);
    let m = json(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(m["format"], 2);
    assert_eq!(m["kind"], "linear");
    assert_eq!(m["training"]["kind_chosen_by"], "--kind linear");
    assert_eq!(m["name"], "telco");
    let t = &m["training"];
    assert_eq!(t["rows"], 7043);
    assert_eq!(t["positive"], "Yes");
    assert_eq!(t["id_column"], "customerID");
    assert_eq!(t["data_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(t["imputed_cells"][0]["feature"], "TotalCharges");
    assert_eq!(t["imputed_cells"][0]["cells"], 11);
    assert!((t["positive_share"].as_f64().unwrap() - 1869.0 / 7043.0).abs() < 1e-12);
    // 19 features: customerID is the id, Churn the label.
    assert_eq!(m["features"].as_array().unwrap().len(), 19);
    let h = &m["metrics"]["holdout"];
    assert_eq!(h["rows"], 1409);
    let auc = h["auc"].as_f64().unwrap();
    assert!(auc > 0.80 && auc < 0.90, "holdout AUC {auc}");
    assert_eq!(h["calibration"].as_array().unwrap().len(), 10);
    let cv = &m["metrics"]["cross_validation"];
    assert_eq!(cv["folds"], 5);
    assert_eq!(cv["l2_path"].as_array().unwrap().len(), 7);
    let tiers = &m["tiers"];
    assert!(tiers["medium"].as_f64().unwrap() < tiers["high"].as_f64().unwrap());
    // Categorical levels carry shares summing to one and the unseen level is the most frequent.
    let contract = m["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Contract")
        .unwrap();
    assert_eq!(contract["kind"], "categorical");
    assert_eq!(contract["unseen_level"], "Month-to-month");
    let total: f64 = contract["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["share"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-12);
}

#[test]
fn evaluate_reports_metrics_tiers_and_confusion() {
    let r = churn(&[
        "evaluate",
        "--model",
        "models/telco",
        "--data",
        TELCO,
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let e = json(&r.stdout);
    assert_eq!(e["model"], "telco@1");
    assert_eq!(e["rows"], 7043);
    assert_eq!(e["positives"], 1869);
    for k in ["auc", "pr_auc", "log_loss", "brier", "top_decile_lift"] {
        assert!(e[k].as_f64().unwrap().is_finite(), "{k}");
    }
    let tiers = e["tiers"].as_array().unwrap();
    let rows: u64 = tiers.iter().map(|t| t["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 7043);
    // Risk is ranked: HIGH churns more than MEDIUM, MEDIUM more than LOW.
    let rate = |i: usize| tiers[i]["churn_rate"].as_f64().unwrap();
    assert!(rate(0) > rate(1) && rate(1) > rate(2));
    let c = &e["at_high_cut"];
    let sum: u64 = [
        "true_positives",
        "false_positives",
        "true_negatives",
        "false_negatives",
    ]
    .iter()
    .map(|k| c[k].as_u64().unwrap())
    .sum();
    assert_eq!(sum, 7043);
    assert_eq!(
        c["true_positives"].as_u64().unwrap() + c["false_negatives"].as_u64().unwrap(),
        1869
    );
    assert_eq!(e["imputed_cells"][0]["cells"], 11);
    // The human report names the same figures.
    let r = churn(&[
        "evaluate",
        "--model",
        "models/telco/1/model.json",
        "--data",
        TELCO,
    ]);
    assert!(
        r.ok && r.stdout.contains("AUC") && r.stdout.contains("HIGH"),
        "{}",
        r.stdout
    );
}

#[test]
fn inspect_ranks_features_by_importance() {
    let r = churn(&["inspect", "--model", "models/telco", "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let v = json(&r.stdout);
    let ranking = v["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 19);
    let imp: Vec<f64> = ranking
        .iter()
        .map(|r| r["importance"].as_f64().unwrap())
        .collect();
    assert!(imp.windows(2).all(|w| w[0] >= w[1]));
    // The contract type is among the strongest signals of churn in this data set.
    let top3: Vec<&str> = ranking[..3]
        .iter()
        .map(|r| r["feature"].as_str().unwrap())
        .collect();
    assert!(top3.contains(&"Contract"), "{top3:?}");
    let r = churn(&["inspect", "--model", "models/telco"]);
    assert!(
        r.ok && r.stdout.contains("telco@1") && r.stdout.contains("tiers"),
        "{}",
        r.stdout
    );
}

#[test]
fn fast_solver_matches_the_linfa_reference_on_telco() {
    let dir = tempfile::tempdir().unwrap();
    let fast = train_telco(
        TELCO,
        &dir.path().join("fast"),
        &["--l2", "1", "--folds", "0"],
    );
    let reference = train_telco(
        TELCO,
        &dir.path().join("linfa"),
        &["--l2", "1", "--folds", "0", "--solver", "linfa"],
    );
    let f = json(&std::fs::read_to_string(&fast).unwrap());
    let l = json(&std::fs::read_to_string(&reference).unwrap());
    assert_eq!(l["training"]["solver"]["name"], "linfa-logistic");
    let auc = |m: &serde_json::Value| m["metrics"]["holdout"]["auc"].as_f64().unwrap();
    assert!(
        (auc(&f) - auc(&l)).abs() < 1e-4,
        "fast {} vs linfa {}",
        auc(&f),
        auc(&l)
    );
    let weights = |m: &serde_json::Value| -> Vec<f64> {
        m["features"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| match f["kind"].as_str().unwrap() {
                "numeric" => vec![f["weight"].as_f64().unwrap()],
                _ => f["levels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["weight"].as_f64().unwrap())
                    .collect(),
            })
            .collect()
    };
    let (wf, wl) = (weights(&f), weights(&l));
    assert_eq!(wf.len(), wl.len());
    let worst = wf
        .iter()
        .zip(&wl)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 2e-3, "largest weight difference {worst}");
}

#[test]
fn parquet_input_trains_the_same_model_as_csv() {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    // Write the Telco CSV as Parquet with typed columns: integers, floats and text.
    let mut rdr = csv::Reader::from_path(root().join(TELCO)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let arrays: Vec<(String, ArrayRef)> = header
        .iter()
        .map(|h| {
            let i = col(h);
            let a: ArrayRef = match h.as_str() {
                "SeniorCitizen" | "tenure" => Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r[i].parse::<i64>().unwrap()),
                )),
                "MonthlyCharges" => Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r[i].parse::<f64>().unwrap()),
                )),
                // TotalCharges has blanks: nulls in Parquet.
                "TotalCharges" => Arc::new(Float64Array::from_iter(
                    rows.iter().map(|r| r[i].trim().parse::<f64>().ok()),
                )),
                _ => Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r[i].to_string()),
                )),
            };
            (h.clone(), a)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("telco.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let from_csv = train_telco(TELCO, &dir.path().join("csv"), &["--kind", "linear"]);
    let from_pq = train_telco(
        pq.to_str().unwrap(),
        &dir.path().join("pq"),
        &["--kind", "linear"],
    );
    let (a, b) = (weights_of(&from_csv), weights_of(&from_pq));
    let (fa, fb) = (
        a["features"].as_array().unwrap(),
        b["features"].as_array().unwrap(),
    );
    for (x, y) in fa.iter().zip(fb) {
        assert_eq!(x["name"], y["name"]);
        assert_eq!(x["kind"], y["kind"]);
        if x["kind"] == "numeric" {
            let d = (x["weight"].as_f64().unwrap() - y["weight"].as_f64().unwrap()).abs();
            assert!(d < 1e-12, "{}: {d}", x["name"]);
        } else {
            assert_eq!(x["levels"], y["levels"]);
        }
    }
    // Evaluate reads Parquet too.
    let r = churn(&[
        "evaluate",
        "--model",
        from_pq.to_str().unwrap(),
        "--data",
        pq.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(json(&r.stdout)["rows"], 7043);
}

#[test]
fn split_by_holds_out_the_latest_period_and_is_not_a_feature() {
    // Four periods of 100 rows each, labels alternating within each period.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("customer_id,snapshot,x,churned\n");
    for (p, day) in ["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"]
        .iter()
        .enumerate()
    {
        for i in 0..100 {
            let y = (i + p) % 2;
            csv += &format!("c{i},{day},{},{y}\n", i as f64 / 10.0 + y as f64);
        }
    }
    let data = write(dir.path(), "periods.csv", &csv);
    let out = dir.path().join("m");
    let train = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "--data",
            &data,
            "--label",
            "churned",
            "--id",
            "customer_id",
            "--out",
        ];
        a.push(out.to_str().unwrap());
        a.extend_from_slice(extra);
        a.push("--json");
        churn(&a)
    };
    // 30% asks for 120 rows: two whole periods (200 rows) are the fewest that reach it.
    let r = train(&["--split-by", "snapshot", "--holdout", "0.3"]);
    assert!(r.ok, "{}", r.stderr);
    let j = json(&r.stdout);
    assert_eq!(j["report"]["train_rows"], 200);
    assert_eq!(j["report"]["holdout_rows"], 200);
    assert_eq!(j["report"]["time_split"]["holdout_from"], "2020-03-01");
    let model = json(&std::fs::read_to_string(j["model_path"].as_str().unwrap()).unwrap());
    assert_eq!(model["training"]["time_split"]["column"], "snapshot");
    let names: Vec<&str> = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x"], "the split column is not a feature");
    // A share below one period still holds out the latest whole period.
    let j = json(&train(&["--split-by", "snapshot", "--holdout", "0.1"]).stdout);
    assert_eq!(j["report"]["holdout_rows"], 100);
    // Purging 31 days drops 2020-02-01 (its label would reach past 03-01), keeps 01-01.
    let j = json(
        &train(&[
            "--split-by",
            "snapshot",
            "--holdout",
            "0.3",
            "--purge",
            "31d",
        ])
        .stdout,
    );
    assert_eq!(j["report"]["train_rows"], 100);
    assert_eq!(j["report"]["holdout_rows"], 200);
    assert_eq!(j["report"]["time_split"]["purged_rows"], 100);
    assert_eq!(j["report"]["time_split"]["purge_days"], 31);
    let r = train(&[
        "--split-by",
        "snapshot",
        "--holdout",
        "0.3",
        "--purge",
        "90d",
    ]);
    assert!(
        !r.ok && r.stderr.contains("no training rows left"),
        "{}",
        r.stderr
    );

    let r = train(&["--split-by", "nope"]);
    assert!(!r.ok && r.stderr.contains("'nope'"), "{}", r.stderr);
    let r = train(&["--split-by", "snapshot", "--holdout", "0"]);
    assert!(
        !r.ok && r.stderr.contains("--holdout above 0"),
        "{}",
        r.stderr
    );
    let one = write(
        dir.path(),
        "one.csv",
        "customer_id,snapshot,x,churned\na,2020-01-01,1,1\nb,2020-01-01,2,0\n",
    );
    let r = churn(&[
        "train",
        "--data",
        &one,
        "--label",
        "churned",
        "--split-by",
        "snapshot",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !r.ok && r.stderr.contains("at least two distinct values"),
        "{}",
        r.stderr
    );
}
