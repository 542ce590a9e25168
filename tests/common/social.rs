//! The socialnet subscription log through `churn features` (event types from the log) and
//! `churn train`: a model with usage health and feature tables of later snapshots to score.
use super::*;
use std::collections::BTreeMap;

/// The socialnet spec with no event types named: they come from the log.
pub const SPEC: &str = r#"
[events]
customer_id = "account_id"
timestamp = "event_time"
event_type = "event_type_id"
value = "event_value"
[subscriptions]
customer_id = "account_id"
plan = "product"
[metrics]
windows = ["7d", "28d"]
trend = ["14d"]
monetary = false
"#;

pub struct Social {
    pub _dir: tempfile::TempDir,
    pub dir: PathBuf,
    /// The trained model (version 1's model.json).
    pub model: PathBuf,
    /// Each snapshot's customers (features without a label), by date.
    pub now: BTreeMap<String, PathBuf>,
}

/// Trains on weekly snapshots from 2020-02-01 to 2020-03-28 (28-day horizon) with `extra_train`,
/// and makes the feature table of each day in `snapshots`.
pub fn social(extra_train: &[&str], snapshots: &[&str]) -> Social {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let spec = write(&d, "spec.toml", SPEC);
    let feats = |out: &Path, snaps: &[&str]| {
        let mut a = vec![
            "features",
            "--events",
            "data/socialnet/event.csv.gz",
            "--subscriptions",
            "data/socialnet/subscription.csv",
            "--spec",
            &spec,
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(snaps);
        let r = churn(&a);
        assert!(r.ok, "features: {}", r.stderr);
    };
    let train = d.join("train.csv");
    feats(
        &train,
        &[
            "--from",
            "2020-02-01",
            "--to",
            "2020-03-28",
            "--every",
            "7d",
            "--horizon",
            "28d",
        ],
    );
    let mut now = BTreeMap::new();
    for day in snapshots {
        let p = d.join(format!("now_{day}.csv"));
        feats(&p, &["--snapshot", day, "--label", "none"]);
        now.insert(day.to_string(), p);
    }
    let model = d.join("social");
    let mut a = vec![
        "train",
        "--data",
        train.to_str().unwrap(),
        "--label",
        "churned",
        "--positive",
        "1",
        "--id",
        "customer_id",
        "--split-by",
        "snapshot",
        "--seed",
        "1",
        "--out",
        model.to_str().unwrap(),
    ];
    a.extend_from_slice(extra_train);
    let r = churn(&a);
    assert!(r.ok, "train: {}", r.stderr);
    Social {
        dir: d,
        _dir: dir,
        model: model.join("1/model.json"),
        now,
    }
}
