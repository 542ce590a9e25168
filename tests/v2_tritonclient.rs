//! Interop: the stock Python Triton client (`tritonclient.grpc`) against `churn serve`. The client
//! builds its tensors from ModelMetadata alone; its probabilities, tiers and contributions must be
//! churn.v1's for the same rows, exactly. The venv of `.ci/python-env` is made on first use.
mod common;
mod grpc;
use common::*;
use grpc::*;
use std::process::Command;

#[cfg_attr(
    churn_skip_python,
    ignore = "CHURN_SKIP_PYTHON was set when the tests were built"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_gets_churn_v1_scores_metadata_and_error_codes() {
    let python = test_python();
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let out = tempfile::NamedTempFile::new().unwrap();
    let n = 1000;
    let run = Command::new(&python)
        .arg(root().join("tests/interop/v2_tritonclient.py"))
        .args([
            srv.addr.trim_start_matches("http://"),
            "telco",
            root().join(TELCO).to_str().unwrap(),
            &n.to_string(),
            out.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the tritonclient script failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&run.stderr),
        srv.log()
    );
    let rec = json(&std::fs::read_to_string(out.path()).unwrap());

    assert_eq!(rec["live"], true);
    assert_eq!(rec["ready"], true);
    assert_eq!(rec["model_ready"], true);
    assert_eq!(rec["unknown_model_ready"], false);
    assert_eq!(rec["server"]["name"], "churn");
    let meta = &rec["metadata"];
    assert_eq!(meta["versions"], serde_json::json!(["1"]));
    let inputs = meta["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 19);
    assert!(inputs.contains(&serde_json::json!(["Contract", "BYTES", [-1]])));
    assert!(inputs.contains(&serde_json::json!(["tenure", "FP64", [-1]])));
    assert_eq!(
        meta["outputs"],
        serde_json::json!([
            ["churn_probability", "FP64", [-1]],
            ["risk_tier", "BYTES", [-1]],
            ["contributions", "FP64", [-1, 19]]
        ])
    );

    // churn.v1 for the same rows (blank cells left out, so imputed), every reason.
    let mut v1 = srv.client().await;
    let mut want = Vec::new();
    for (mut r, _) in telco_requests(n) {
        r.top_k = 19;
        want.push(v1.score(r).await.unwrap().into_inner());
    }
    let names: Vec<&str> = inputs.iter().map(|t| t[0].as_str().unwrap()).collect();
    let all = &rec["all_rows"];
    assert_eq!(all["id"], "interop-1");
    assert_eq!(all["model_version"], "1");
    assert_eq!(all["churn_probability.shape"], serde_json::json!([n]));
    assert_eq!(all["contributions.shape"], serde_json::json!([n, 19]));
    let p = all["churn_probability"].as_array().unwrap();
    let tiers = all["risk_tier"].as_array().unwrap();
    let contributions = all["contributions"].as_array().unwrap();
    for (i, w) in want.iter().enumerate() {
        assert_eq!(p[i].as_f64().unwrap(), w.churn_probability, "row {i}");
        let tier = churn::proto::RiskTier::try_from(w.risk_tier).unwrap();
        assert_eq!(
            tiers[i].as_str().unwrap(),
            tier.as_str_name().trim_start_matches("RISK_TIER_"),
            "row {i}"
        );
        for r in &w.reasons {
            let col = names.iter().position(|n| *n == r.feature).unwrap();
            assert_eq!(
                contributions[i * 19 + col].as_f64().unwrap(),
                r.contribution,
                "row {i} {}",
                r.feature
            );
        }
    }
    let one = &rec["one_row"];
    assert_eq!(one["churn_probability"], serde_json::json!([p[0]]));
    assert_eq!(
        rec["only_probability"]["outputs"],
        serde_json::json!(["churn_probability"])
    );
    assert_eq!(
        rec["only_probability"]["churn_probability"],
        serde_json::json!(p[..5])
    );

    let errors = &rec["errors"];
    for (case, code, names_it) in [
        (
            "wrong_dtype",
            "StatusCode.INVALID_ARGUMENT",
            "SeniorCitizen",
        ),
        ("unknown_model", "StatusCode.NOT_FOUND", "no-such-model"),
        ("missing_input", "StatusCode.INVALID_ARGUMENT", "gender"),
        ("unknown_output", "StatusCode.INVALID_ARGUMENT", "reasons"),
    ] {
        let e = &errors[case];
        assert_eq!(e["status"], code, "{case}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(names_it),
            "{case}: {e}"
        );
    }
}
