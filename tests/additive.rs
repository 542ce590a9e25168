//! The additive kind on data with a known truth (a threshold, a U shape, one interaction, a linear
//! truth for `--kind auto`), exact explanations, determinism across thread counts, and broken
//! format-2 files refused with the feature named.
mod common;
use common::{TELCO, churn, json, write};
use serde_json::Value;
use std::path::Path;

/// A small deterministic generator (SplitMix64), so the data is the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes `rows` rows of columns `names` (values from `x`) and a label drawn from sigmoid(logit).
fn synthetic(
    dir: &Path,
    rows: usize,
    names: &[&str],
    seed: u64,
    logit: impl Fn(&[f64]) -> f64,
) -> String {
    let mut rng = Rng(seed);
    let mut text = format!("{},churned\n", names.join(","));
    for _ in 0..rows {
        let x: Vec<f64> = names.iter().map(|_| 10.0 * rng.next()).collect();
        let p = 1.0 / (1.0 + (-logit(&x)).exp());
        let y = rng.next() < p;
        let cells: Vec<String> = x.iter().map(|v| format!("{v:.3}")).collect();
        text.push_str(&format!("{},{}\n", cells.join(","), y as u8));
    }
    write(dir, "data.csv", &text)
}

fn train(data: &str, out: &Path, extra: &[&str]) -> (Value, Value) {
    let mut args = vec![
        "train",
        "--data",
        data,
        "--label",
        "churned",
        "--positive",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let r = churn(&args);
    assert!(r.ok, "train failed: {}", r.stderr);
    let summary = json(&r.stdout);
    let path = summary["model_path"].as_str().unwrap().to_string();
    let model = json(&std::fs::read_to_string(path).unwrap());
    (summary, model)
}

fn feature<'a>(model: &'a Value, name: &str) -> &'a Value {
    model["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name}"))
}

/// The shape's mean value over the bins lying wholly within [lo, hi).
fn shape_mean_within(shape: &Value, lo: f64, hi: f64) -> f64 {
    let edges: Vec<f64> = shape["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect();
    let values: Vec<f64> = shape["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut picked = Vec::new();
    for (b, v) in values.iter().enumerate() {
        let from = if b == 0 {
            f64::NEG_INFINITY
        } else {
            edges[b - 1]
        };
        let to = edges.get(b).copied().unwrap_or(f64::INFINITY);
        if from >= lo && to <= hi {
            picked.push(*v);
        }
    }
    assert!(!picked.is_empty(), "no bin within [{lo}, {hi})");
    picked.iter().sum::<f64>() / picked.len() as f64
}

fn spread(shape: &Value) -> f64 {
    let v: Vec<f64> = shape["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - v.iter().cloned().fold(f64::INFINITY, f64::min)
}

#[test]
fn a_threshold_and_a_u_shape_are_recovered_and_noise_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    // Risk jumps at step = 5; risk is lowest at bowl = 5 and rises both ways; noise does nothing.
    let data = synthetic(dir.path(), 8000, &["step", "bowl", "noise"], 7, |x| {
        -1.5 + if x[0] >= 5.0 { 2.5 } else { 0.0 } + 0.16 * (x[1] - 5.0).powi(2) - 2.0
    });
    let (summary, model) = train(
        &data,
        &dir.path().join("m"),
        &["--kind", "additive", "--interactions", "0"],
    );
    assert_eq!(summary["kind"], "additive");
    assert_eq!(model["format"], 2);
    assert_eq!(model["kind"], "additive");
    let step = &feature(&model, "step")["shape"];
    let jump = shape_mean_within(step, 5.5, f64::INFINITY) - shape_mean_within(step, 0.0, 4.5);
    assert!(
        (2.0..3.0).contains(&jump),
        "the step's jump should be near 2.5, got {jump}"
    );
    let bowl = &feature(&model, "bowl")["shape"];
    let middle = shape_mean_within(bowl, 4.0, 6.0);
    let low_end = shape_mean_within(bowl, 0.0, 1.5);
    let high_end = shape_mean_within(bowl, 8.5, f64::INFINITY);
    assert!(
        low_end - middle > 2.0 && high_end - middle > 2.0,
        "a U: ends {low_end:.3} and {high_end:.3} should stand well above the middle {middle:.3}"
    );
    let noise = &feature(&model, "noise")["shape"];
    assert!(
        spread(noise) < 0.5,
        "noise should stay nearly flat, spread {}",
        spread(noise)
    );
    assert!(model["pairs"].is_null(), "--interactions 0 keeps no pairs");
}

#[test]
fn the_one_interaction_is_the_pair_chosen() {
    let dir = tempfile::tempdir().unwrap();
    // No main effects: the risk is high when a and b are on the same side of 5.
    let data = synthetic(dir.path(), 8000, &["a", "b", "c", "d"], 11, |x| {
        if (x[0] >= 5.0) == (x[1] >= 5.0) {
            1.2
        } else {
            -1.2
        }
    });
    let (_, model) = train(
        &data,
        &dir.path().join("m"),
        &["--kind", "additive", "--interactions", "1"],
    );
    let pairs = model["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0]["features"], serde_json::json!(["a", "b"]));
    assert_eq!(model["training"]["additive"]["interactions_kept"], 1);
    // And it pays: the additive kind beats linear, which cannot see the interaction.
    let (summary, _) = train(&data, &dir.path().join("auto"), &["--interactions", "1"]);
    assert_eq!(summary["kind"], "additive", "{summary}");
}

#[test]
fn auto_picks_linear_when_the_truth_is_linear() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(dir.path(), 6000, &["x1", "x2", "x3"], 5, |x| {
        -0.5 + 0.4 * (x[0] - 5.0) - 0.3 * (x[1] - 5.0)
    });
    let (summary, model) = train(&data, &dir.path().join("m"), &[]);
    let tried = summary["kinds_tried"].as_array().unwrap();
    assert_eq!(tried.len(), 2, "auto fits both kinds: {summary}");
    assert_eq!(summary["kind"], "linear", "{summary}");
    assert_eq!(model["kind"], "linear");
    assert!(
        model["training"]["kind_chosen_by"]
            .as_str()
            .unwrap()
            .contains("auto")
    );
    assert!(feature(&model, "x1")["weight"].as_f64().unwrap() > 0.0);
}

fn telco_additive(dir: &Path, threads: &str) -> std::path::PathBuf {
    let out = dir.join(format!("t{threads}"));
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_churn"))
        .args([
            "train",
            "--data",
            TELCO,
            "--label",
            "Churn",
            "--id",
            "customerID",
            "--kind",
            "additive",
            "--seed",
            "4",
            "--name",
            "t",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("RAYON_NUM_THREADS", threads)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out.join("1/model.json")
}

#[test]
fn telco_additive_is_byte_identical_whatever_the_thread_count_and_explains_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let one = telco_additive(dir.path(), "1");
    let two = telco_additive(dir.path(), "2");
    let strip = |p: &Path| -> String {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"created_at\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&one), strip(&two), "same data and seed, same file");
    let model = json(&std::fs::read_to_string(&one).unwrap());
    assert!(!model["pairs"].as_array().unwrap().is_empty());

    // A customer far outside the training range: the edge bins score it.
    let r = churn(&[
        "explain",
        "--model",
        one.to_str().unwrap(),
        "--json",
        "--features",
        r#"{"tenure": 100000, "MonthlyCharges": -5, "Contract": "Month-to-month"}"#,
    ]);
    assert!(r.ok, "{}", r.stderr);
    let e = json(&r.stdout);
    let contributions = e["contributions"].as_array().unwrap();
    let sum: f64 = contributions
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum();
    let logit = e["logit"].as_f64().unwrap();
    assert!((e["baseline_logit"].as_f64().unwrap() + sum - logit).abs() < 1e-9);
    // Each contribution is its main term plus half of each pair it is in.
    let terms = e["terms"].as_array().expect("terms");
    for c in contributions {
        let name = c["feature"].as_str().unwrap();
        let mut expected = 0.0;
        for t in terms {
            let fs = t["features"].as_array().unwrap();
            if fs.iter().any(|f| f == name) {
                expected += t["value"].as_f64().unwrap() / fs.len() as f64;
            }
        }
        assert!(
            (expected - c["contribution"].as_f64().unwrap()).abs() < 1e-12,
            "{name}: terms give {expected}, contribution {}",
            c["contribution"]
        );
    }
    let tenure = feature(&model, "tenure");
    let last = tenure["shape"]["values"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_f64()
        .unwrap();
    let main = terms
        .iter()
        .find(|t| t["features"] == serde_json::json!(["tenure"]))
        .unwrap();
    assert!((main["value"].as_f64().unwrap() - last).abs() < 1e-12);
}

#[test]
fn a_broken_format_2_table_is_refused_with_the_feature_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = telco_additive(dir.path(), "2");
    let mut model = json(&std::fs::read_to_string(&path).unwrap());
    let features = model["features"].as_array_mut().unwrap();
    let tenure = features.iter_mut().find(|f| f["name"] == "tenure").unwrap();
    tenure["shape"]["values"].as_array_mut().unwrap().pop();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, serde_json::to_string(&model).unwrap()).unwrap();
    let r = churn(&["inspect", "--model", broken.to_str().unwrap()]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("tenure") && r.stderr.contains("values"),
        "{}",
        r.stderr
    );

    let mut model = json(&std::fs::read_to_string(&path).unwrap());
    model["pairs"][0]["values"][0] = serde_json::json!("x");
    std::fs::write(&broken, serde_json::to_string(&model).unwrap()).unwrap();
    let r = churn(&["inspect", "--model", broken.to_str().unwrap()]);
    assert!(!r.ok, "a non-number in a pair table is refused");

    let ok = churn(&["inspect", "--model", path.to_str().unwrap()]);
    assert!(ok.ok, "{}", ok.stderr);
    assert!(ok.stdout.contains("kind additive"), "{}", ok.stdout);
    assert!(ok.stdout.contains("numeric shape"), "{}", ok.stdout);
    assert!(ok.stdout.contains("pairs (each a table"), "{}", ok.stdout);
}

/// The contribution `explain` gives feature `name` when the customer has `features`.
fn contribution_of(model: &Path, features: &str, name: &str) -> f64 {
    let r = churn(&[
        "explain",
        "--model",
        model.to_str().unwrap(),
        "--features",
        features,
        "--json",
    ]);
    assert!(r.ok, "explain failed: {}", r.stderr);
    let out = json(&r.stdout);
    out["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == name)
        .unwrap_or_else(|| panic!("no contribution for {name}: {out}"))["contribution"]
        .as_f64()
        .unwrap()
}

#[test]
fn few_rows_and_a_constant_column_give_fewer_bins_or_no_shape_and_out_of_range_values_use_the_edge_bins()
 {
    let dir = tempfile::tempdir().unwrap();
    // 40 rows: x carries the signal, flat is constant, few has three distinct values.
    let mut rng = Rng(3);
    let mut text = String::from("x,flat,few,churned\n");
    for i in 0..40 {
        let x = 10.0 * rng.next();
        let y = (x > 5.0) != (rng.next() < 0.15);
        text.push_str(&format!("{x:.3},5,{},{}\n", i % 3, y as u8));
    }
    let data = write(dir.path(), "small.csv", &text);
    let (summary, model) = train(&data, &dir.path().join("m"), &["--kind", "additive"]);
    assert_eq!(summary["kind"], "additive");

    // At least 10 rows a bin: 40 rows give at most 4 bins; three values give at most 3.
    let bins = |name: &str| {
        let shape = &feature(&model, name)["shape"];
        shape["edges"].as_array().map_or(0, |e| e.len() + 1)
    };
    assert!((2..=4).contains(&bins("x")), "x has {} bins", bins("x"));
    assert!(
        (1..=3).contains(&bins("few")),
        "few has {} bins",
        bins("few")
    );
    // The constant column is named in the summary and has a single bin: no shape to speak of.
    let report = &summary["report"];
    assert!(
        report["constant_features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "flat"),
        "{report}"
    );
    assert!(bins("flat") <= 1, "flat has {} bins", bins("flat"));
    let notes = report["additive"]["notes"].to_string();
    assert!(
        notes.contains("flat"),
        "the summary says flat has no shape: {notes}"
    );

    // Outside the training range: the edge bins' values, whatever the distance.
    let path = Path::new(summary["model_path"].as_str().unwrap());
    let (lo, hi) = (
        contribution_of(path, r#"{"x": 0.0, "flat": 5, "few": 1}"#, "x"),
        contribution_of(path, r#"{"x": 9.999, "flat": 5, "few": 1}"#, "x"),
    );
    assert!(hi > lo, "the x > 5 threshold is learned: {lo} .. {hi}");
    let far_low = contribution_of(path, r#"{"x": -1e9, "flat": 5, "few": 1}"#, "x");
    let far_high = contribution_of(path, r#"{"x": 1e9, "flat": 5, "few": 1}"#, "x");
    assert_eq!(far_low, lo);
    assert_eq!(far_high, hi);
    // A constant column's value, seen or not, moves nothing.
    let flat_seen = contribution_of(path, r#"{"x": 1, "flat": 5, "few": 1}"#, "flat");
    let flat_new = contribution_of(path, r#"{"x": 1, "flat": 500, "few": 1}"#, "flat");
    assert_eq!(flat_seen, flat_new);
}
