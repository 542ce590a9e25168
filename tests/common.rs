#![allow(dead_code)]
//! Helpers shared by the integration tests: run the real `churn` binary on real files.
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TELCO: &str = "data/telco_customer_churn.csv";

pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn churn(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_churn"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run churn");
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Trains on `data` into `out` with the telco settings plus `extra`; panics with stderr on failure.
pub fn train_telco(data: &str, out: &Path, extra: &[&str]) -> PathBuf {
    let out_s = out.to_str().unwrap();
    let mut args = vec![
        "train",
        "--data",
        data,
        "--label",
        "Churn",
        "--id",
        "customerID",
        "--out",
        out_s,
    ];
    if !extra.contains(&"--seed") {
        args.extend_from_slice(&["--seed", "3"]);
    }
    args.extend_from_slice(extra);
    let r = churn(&args);
    assert!(r.ok, "train failed: {}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("wrote "))
        .expect("wrote line");
    PathBuf::from(line)
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The fields of a model file that the weights determine.
pub fn weights_of(model: &Path) -> serde_json::Value {
    let v = json(&std::fs::read_to_string(model).unwrap());
    serde_json::json!({
        "features": v["features"],
        "intercept": v["intercept"],
        "baseline_logit": v["baseline_logit"],
        "tiers": v["tiers"],
    })
}

/// The first `n` Telco rows as (customer id, feature map) the way a CRM would send them: blank cells
/// left out, cells that parse as numbers as JSON numbers, the rest as text.
pub fn telco_rows(n: usize) -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
    let mut rdr = csv::Reader::from_path(root().join(TELCO)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    rdr.records()
        .take(n)
        .map(|r| {
            let r = r.unwrap();
            let features = header
                .iter()
                .zip(r.iter())
                .filter(|(h, v)| *h != "customerID" && *h != "Churn" && !v.trim().is_empty())
                .map(|(h, v)| {
                    let v = match v.parse::<f64>() {
                        Ok(x) => serde_json::json!(x),
                        Err(_) => serde_json::json!(v),
                    };
                    (h.clone(), v)
                })
                .collect();
            (r[0].to_string(), features)
        })
        .collect()
}
