#![allow(dead_code)]
//! Helpers shared by the integration tests: run the real `churn` binary on real files.
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod social;

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

/// Where the PostgreSQL tests connect: `DATABASE_URL`, else the documented local server
/// (`postgres://postgres@127.0.0.1:5432/test`). A server that cannot be reached fails the test
/// with the fix; `CHURN_SKIP_POSTGRES=1` at build time marks these tests ignored instead.
pub fn database_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
    if let Err(e) = postgres::Client::connect(&url, postgres::NoTls) {
        panic!(
            "this test needs PostgreSQL at {url} and cannot connect: {e}. Start PostgreSQL \
             (e.g. `pg_ctlcluster 15 main start`) with trust auth and a database `test`, or point \
             DATABASE_URL at one; to skip the PostgreSQL tests, build them with \
             CHURN_SKIP_POSTGRES=1 (they are then reported as ignored)"
        );
    }
    url
}

/// A throwaway PostgreSQL schema, dropped at the end even when the test fails.
pub struct PgSchema {
    pub client: postgres::Client,
    pub name: String,
}

impl PgSchema {
    pub fn new(url: &str) -> PgSchema {
        let mut client =
            postgres::Client::connect(url, postgres::NoTls).expect("connect to DATABASE_URL");
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
        PgSchema { client, name }
    }

    /// Loads the Telco CSV into `<schema>.<table>`: the model's numeric features as float8 (a
    /// blank cell becomes NULL), everything else as text. Returns the header.
    pub fn load_telco(&mut self, table: &str) -> Vec<String> {
        let model = churn::ChurnModel::load(&root().join("models/telco")).unwrap();
        let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
        let cols: Vec<String> = header
            .iter()
            .map(|h| {
                let numeric = model.schema().index_of(h).is_some_and(|i| {
                    matches!(
                        model.schema().features()[i].kind,
                        churn::schema::FeatureKind::Numeric(_)
                    )
                });
                format!("\"{h}\" {}", if numeric { "float8" } else { "text" })
            })
            .collect();
        self.client
            .batch_execute(&format!(
                "CREATE TABLE {}.{table} ({})",
                self.name,
                cols.join(", ")
            ))
            .unwrap();
        use std::io::Write;
        let mut w = self
            .client
            .copy_in(&format!(
                "COPY {}.{table} FROM STDIN (FORMAT csv)",
                self.name
            ))
            .unwrap();
        let mut out = csv::Writer::from_writer(Vec::new());
        for r in rdr.records() {
            out.write_record(r.unwrap().iter().map(|c| c.trim()))
                .unwrap();
        }
        w.write_all(&out.into_inner().unwrap()).unwrap();
        w.finish().unwrap();
        header
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// `churn score --model models/telco ARGS`.
pub fn score(args: &[&str]) -> Run {
    let mut all = vec!["score", "--model", "models/telco"];
    all.extend_from_slice(args);
    churn(&all)
}

/// A CSV file's rows as maps from column name to cell.
pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|x| {
            h.iter()
                .cloned()
                .zip(x.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The Python with the interop clients: `CHURN_TEST_PYTHON`, else the venv `.ci/python-env` makes
/// (built here on first use, from PyPI). Fails the test with the fix when it cannot be had;
/// `CHURN_SKIP_PYTHON=1` at build time marks these tests ignored instead.
pub fn test_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("CHURN_TEST_PYTHON").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(format!("CHURN_TEST_PYTHON={} is not a file", p.display()))
            };
        }
        let out = Command::new("bash")
            .arg(root().join(".ci/python-env"))
            .current_dir(root())
            .output()
            .map_err(|e| format!("could not run .ci/python-env: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                ".ci/python-env failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                ".ci/python-env printed {}, which is not a file",
                p.display()
            ))
        }
    });
    match found {
        Ok(p) => p.clone(),
        Err(why) => panic!(
            "this test drives the server with the stock Python clients and has none: {why}. Run \
             `bash .ci/python-env` (needs python3 with venv and PyPI), or set CHURN_TEST_PYTHON to \
             a Python that has tritonclient; to skip, build the tests with CHURN_SKIP_PYTHON=1 \
             (they are then reported as ignored)"
        ),
    }
}
