//! `churn explain`: exact contributions, reasons, and clear errors for bad feature maps.
mod common;
use common::*;

/// Feature maps of the first `n` Telco rows.
fn telco_maps(n: usize) -> Vec<serde_json::Map<String, serde_json::Value>> {
    telco_rows(n).into_iter().map(|(_, m)| m).collect()
}

fn explain(features: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "explain",
        "--model",
        "models/telco",
        "--features",
        features,
        "--json",
    ];
    args.extend_from_slice(extra);
    churn(&args)
}

#[test]
fn contributions_sum_to_the_logit_and_reasons_are_the_top_k() {
    for row in telco_maps(40) {
        let r = explain(
            &serde_json::Value::Object(row.clone()).to_string(),
            &["--top-k", "4"],
        );
        assert!(r.ok, "{}", r.stderr);
        let o = json(&r.stdout);
        let p = o["churn_probability"].as_f64().unwrap();
        let contributions = o["contributions"].as_array().unwrap();
        assert_eq!(contributions.len(), 19, "one contribution per feature");
        let sum: f64 = contributions
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .sum();
        let logit = (p / (1.0 - p)).ln();
        assert!((o["baseline_logit"].as_f64().unwrap() + sum - logit).abs() < 1e-9);
        let mut by_size: Vec<&serde_json::Value> = contributions.iter().collect();
        by_size.sort_by(|a, b| {
            b["contribution"]
                .as_f64()
                .unwrap()
                .abs()
                .total_cmp(&a["contribution"].as_f64().unwrap().abs())
        });
        let reasons = o["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 4);
        for (r, c) in reasons.iter().zip(&by_size) {
            assert_eq!(r, *c);
        }
        let tier = o["risk_tier"].as_str().unwrap();
        assert!(["LOW", "MEDIUM", "HIGH"].contains(&tier));
        // Only the blank TotalCharges rows are imputed.
        let imputed = o["imputed_features"].as_array().unwrap();
        assert_eq!(imputed.is_empty(), row.contains_key("TotalCharges"));
    }
}

#[test]
fn explain_agrees_with_evaluate_on_the_same_rows() {
    // evaluate's log loss over a file equals the mean of -log p from explain on its rows.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let sample: Vec<&str> = text.lines().take(31).collect();
    let path = write(dir.path(), "sample.csv", &(sample.join("\n") + "\n"));
    let r = churn(&[
        "evaluate",
        "--model",
        "models/telco",
        "--data",
        &path,
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let log_loss = json(&r.stdout)["log_loss"].as_f64().unwrap();
    let labels: Vec<bool> = sample[1..].iter().map(|l| l.ends_with(",Yes")).collect();
    let mut total = 0.0;
    for (row, y) in telco_maps(30).into_iter().zip(labels) {
        let o = json(&explain(&serde_json::Value::Object(row).to_string(), &[]).stdout);
        let p = o["churn_probability"].as_f64().unwrap();
        total += if y { -p.ln() } else { -(1.0 - p).ln() };
    }
    assert!(
        (total / 30.0 - log_loss).abs() < 1e-12,
        "{} vs {log_loss}",
        total / 30.0
    );
}

#[test]
fn missing_features_are_imputed_and_unseen_levels_reported() {
    let r = explain(
        r#"{"tenure": 3, "Contract": "Month-to-month", "PaymentMethod": "Bitcoin"}"#,
        &[],
    );
    assert!(r.ok, "{}", r.stderr);
    let o = json(&r.stdout);
    let imputed = o["imputed_features"].as_array().unwrap();
    assert_eq!(imputed.len(), 16);
    assert!(imputed.contains(&serde_json::json!("TotalCharges")));
    assert_eq!(o["unseen_levels"], serde_json::json!(["PaymentMethod"]));
    // The unseen level is scored as the model's unseen level and reported as such.
    let pm = o["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == "PaymentMethod")
        .unwrap()
        .clone();
    assert_eq!(pm["value"], "Electronic check");
    // --strict refuses to impute and names the missing features.
    let r = explain(r#"{"tenure": 3}"#, &["--strict"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("Contract: missing"), "{}", r.stderr);
}

#[test]
fn file_input_and_human_output() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "c.json",
        r#"{"tenure": 70, "Contract": "Two year", "MonthlyCharges": 20.5}"#,
    );
    let at = format!("@{f}");
    let r = churn(&[
        "explain",
        "--model",
        "models/telco",
        "--features",
        &at,
        "--top-k",
        "2",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("telco@1: churn probability"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("LOW"),
        "a long-tenure two-year customer is low risk: {}",
        r.stdout
    );
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("  ")).count(), 2);
}

#[test]
fn bad_feature_maps_fail_naming_every_offending_field() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{"tenure": 3, "favourite_colour": "blue"}"#,
            &["favourite_colour: unknown feature"],
        ),
        (
            r#"{"tenure": "NaN"}"#,
            &["tenure: expected a finite number, got NaN"],
        ),
        (
            r#"{"tenure": "three"}"#,
            &["tenure: expected a number, got text \"three\""],
        ),
        (
            r#"{"tenure": [1]}"#,
            &["tenure: expected a number, text or null"],
        ),
        (
            r#"{"TotalCharges": -5}"#,
            &["TotalCharges: -5 is outside the domain of the log1p transform"],
        ),
        (
            r#"{"tenure": "x", "TotalCharges": -1, "nope": 1}"#,
            &[
                "tenure: expected a number",
                "TotalCharges: -1 is outside the domain",
                "nope: unknown feature: model telco@1 has no feature of this name",
            ],
        ),
    ];
    for (features, expected) in cases {
        let r = explain(features, &[]);
        assert!(!r.ok, "{features} should fail");
        assert_eq!(r.code, Some(1));
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        for e in *expected {
            assert!(
                r.stderr.contains(e),
                "{features}: expected '{e}' in: {}",
                r.stderr
            );
        }
    }
    // A number for a categorical feature is matched as its text, as training reads a table: not a
    // level of Contract, so it is scored as an unseen level and said so.
    let r = explain(r#"{"Contract": 2, "tenure": 3}"#, &[]);
    assert!(r.ok, "{}", r.stderr);
    let e = json(&r.stdout);
    assert_eq!(e["unseen_levels"], serde_json::json!(["Contract"]));
    // JSON that cannot hold NaN, and JSON that is not an object.
    for bad in [r#"{"tenure": NaN}"#, "[1, 2]", "not json"] {
        let r = explain(bad, &[]);
        assert!(
            !r.ok && r.stderr.contains("--features: not a JSON object"),
            "{bad}: {}",
            r.stderr
        );
    }
}
