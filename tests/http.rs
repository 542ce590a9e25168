//! The HTTP door over loopback with real clients: curl, Python `requests` and
//! `tritonclient.http` (binary and JSON tensors) must give the gRPC door's answers for the same
//! rows, and `churn explain --json`'s; every error is JSON with its status and headers; the
//! OpenAPI document is valid and a bounded Schemathesis run finds no server error and no response
//! outside its schema.
mod common;
mod grpc;
use churn::proto::{ScoreBatchRequest, ScoreRequest};
use common::*;
use grpc::*;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

/// An HTTP answer as curl saw it.
struct Reply {
    status: u16,
    /// The response headers, lower-cased.
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    }
}

/// Runs curl with `args`, returning the last response's status, headers and body.
fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is needed by the HTTP tests (Debian package curl)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn post(url: &str, body: &str) -> Reply {
    curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        body,
        url,
    ])
}

/// A Telco row as churn.v1 JSON, blank cells left out.
fn row_json(id: &str, features: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"customer_id": id, "features": features, "model": "telco"})
}

fn reasons(v: &serde_json::Value) -> Vec<(String, f64)> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["feature"].as_str().unwrap().to_string(),
                r["contribution"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn tier_name(t: i32) -> &'static str {
    churn::proto::RiskTier::try_from(t)
        .unwrap()
        .as_str_name()
        .trim_start_matches("RISK_TIER_")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_the_answers_of_grpc_and_of_churn_explain() {
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let mut v1 = srv.client().await;
    let rows = telco_rows(40);
    for (id, features) in &rows {
        let mut body = row_json(id, features);
        body["top_k"] = serde_json::json!(5);
        let r = post(&format!("{}/v1/score", srv.http), &body.to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        let got = r.json();
        let req = ScoreRequest {
            customer_id: id.clone(),
            features: features
                .iter()
                .map(|(k, v)| {
                    let fv = match v {
                        serde_json::Value::Number(n) => num(n.as_f64().unwrap()),
                        serde_json::Value::String(s) => text(s),
                        other => panic!("{other}"),
                    };
                    (k.clone(), fv)
                })
                .collect(),
            top_k: 5,
            model: "telco".into(),
        };
        let want = v1.score(req).await.unwrap().into_inner();
        assert_eq!(got["customer_id"], *id);
        assert_eq!(
            got["churn_probability"].as_f64().unwrap(),
            want.churn_probability,
            "{id}"
        );
        assert_eq!(got["risk_tier"], tier_name(want.risk_tier), "{id}");
        assert_eq!(got["model"], want.model);
        assert_eq!(
            got["baseline_probability"].as_f64().unwrap(),
            want.baseline_probability
        );
        let want_reasons: Vec<(String, f64)> = want
            .reasons
            .iter()
            .map(|r| (r.feature.clone(), r.contribution))
            .collect();
        assert_eq!(reasons(&got), want_reasons, "{id}");
        assert_eq!(
            got["imputed_features"],
            serde_json::json!(want.imputed_features)
        );

        // `churn explain --json` prints the same object, less the customer id.
        let e = churn(&[
            "explain",
            "--model",
            "models/telco",
            "--features",
            &serde_json::Value::Object(features.clone()).to_string(),
            "--top-k",
            "5",
            "--json",
        ]);
        assert!(e.ok, "{}", e.stderr);
        let mut explained = json(&e.stdout);
        explained["customer_id"] = serde_json::json!(id);
        assert_eq!(got, explained, "{id}");
    }
    // The contributions sum with the baseline to the logit, as explain promises.
    let got = post(
        &format!("{}/v1/score", srv.http),
        &row_json(&rows[0].0, &rows[0].1).to_string(),
    )
    .json();
    let sum: f64 = got["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum();
    let logit = got["logit"].as_f64().unwrap();
    assert!((sum + got["baseline_logit"].as_f64().unwrap() - logit).abs() < 1e-12);

    // Models: the list and one model, as GetModel describes it.
    let list = curl(&[&format!("{}/v1/models", srv.http)]).json();
    assert_eq!(list["models"][0]["id"], "telco@1");
    let one = curl(&[&format!("{}/v1/models/telco@1", srv.http)]).json();
    let want = v1
        .get_model(churn::proto::GetModelRequest {
            model: "telco".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one["sha256"], want.sha256);
    assert_eq!(
        one["features"].as_array().unwrap().len(),
        want.features.len()
    );
    assert_eq!(
        one["tiers"]["high"].as_f64().unwrap(),
        want.tiers.unwrap().high
    );
    assert_eq!(one, list["models"][0]);

    // HTTP/2 without TLS (prior knowledge), as h2load and gateways use it.
    let h2 = curl(&[
        "--http2-prior-knowledge",
        &format!("{}/v2/health/ready", srv.http),
    ]);
    assert_eq!(h2.status, 200);
    assert!(h2.headers.starts_with("http/2"), "{}", h2.headers);

    // Every door is counted under its own label.
    let m = curl(&[&srv.metrics]).body;
    assert!(
        m.contains(r#"churn_requests_total{door="http",method="Score",code="200"} 41"#),
        "{m}"
    );
    assert!(m.contains(r#"churn_requests_total{door="grpc",method="Score",code="OK"} 40"#));
}

#[cfg_attr(
    churn_skip_python,
    ignore = "CHURN_SKIP_PYTHON was set when the tests were built"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_tritonclient_http_get_the_grpc_answers_binary_and_json() {
    let python = test_python();
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let out = tempfile::NamedTempFile::new().unwrap();
    let n = 300;
    let run = Command::new(&python)
        .arg(root().join("tests/interop/http_clients.py"))
        .args([
            srv.http.as_str(),
            "telco",
            root().join(TELCO).to_str().unwrap(),
            &n.to_string(),
            out.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the HTTP clients script failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&run.stderr),
        srv.log()
    );
    let rec = json(&std::fs::read_to_string(out.path()).unwrap());
    assert_eq!(rec["live"], true);
    assert_eq!(rec["ready"], true);
    assert_eq!(rec["model_ready"], true);
    assert_eq!(rec["server"]["name"], "churn");
    assert_eq!(
        rec["server"]["extensions"],
        serde_json::json!(["binary_tensor_data"])
    );
    let inputs = rec["metadata"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 19);
    let names: Vec<&str> = inputs.iter().map(|t| t["name"].as_str().unwrap()).collect();

    // The gRPC door's answers for the same rows: every reason (top_k = 19), one batch.
    let mut v1 = srv.client().await;
    let rows: Vec<ScoreRequest> = telco_requests(n)
        .into_iter()
        .map(|(mut r, _)| {
            r.top_k = 19;
            r
        })
        .collect();
    let want = v1
        .score_batch(ScoreBatchRequest {
            rows,
            model: "telco".into(),
            top_k: 19,
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let single = rec["score"].as_array().unwrap();
    let batch = rec["batch"].as_array().unwrap();
    assert_eq!((single.len(), batch.len()), (n, n));
    for (i, w) in want.iter().enumerate() {
        let want_reasons: Vec<(String, f64)> = w
            .reasons
            .iter()
            .map(|r| (r.feature.clone(), r.contribution))
            .collect();
        for got in [&single[i], &batch[i]] {
            assert_eq!(got["customer_id"], w.customer_id);
            assert_eq!(
                got["churn_probability"].as_f64().unwrap(),
                w.churn_probability,
                "row {i}"
            );
            assert_eq!(got["risk_tier"], tier_name(w.risk_tier), "row {i}");
            assert_eq!(reasons(got), want_reasons, "row {i}");
        }
        // V2 over REST, binary and JSON: the same probability, tier and every contribution.
        let contributions: Vec<f64> = single[i]["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .collect();
        for label in ["v2_binary", "v2_json"] {
            let v2 = &rec[label];
            assert_eq!(
                v2["churn_probability"][i].as_f64().unwrap(),
                w.churn_probability,
                "{label} row {i}"
            );
            assert_eq!(
                v2["risk_tier"][i],
                tier_name(w.risk_tier),
                "{label} row {i}"
            );
            let row: Vec<f64> = (0..19)
                .map(|f| v2["contributions"][i * 19 + f].as_f64().unwrap())
                .collect();
            assert_eq!(row, contributions, "{label} row {i}");
        }
        assert_eq!(
            rec["v2_nested"]["outputs"][0]["data"][i].as_f64().unwrap(),
            w.churn_probability,
            "nested row {i}"
        );
    }
    for label in ["v2_binary", "v2_json"] {
        assert_eq!(rec[label]["id"], label);
        assert_eq!(rec[label]["model_version"], "1");
        assert_eq!(
            rec[label]["contributions.shape"],
            serde_json::json!([n, 19])
        );
    }
    assert_eq!(names[4], "tenure");
}

/// Sends a request's head and half its body, and keeps the connection: the call holds its
/// in-flight permit while the server waits for the rest.
fn stalled_post(http: &str) -> std::net::TcpStream {
    let addr = http.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"features\":",
    )
    .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_its_status_and_headers() {
    let repo = repo();
    let srv = Server::start(
        repo.path(),
        &[
            "--max-in-flight",
            "1",
            "--deadline-seconds",
            "1",
            "--max-message-bytes",
            "2000",
            "--max-batch",
            "3",
        ],
    );
    let url = |p: &str| format!("{}{p}", srv.http);
    let details = |r: &Reply| -> Vec<String> {
        r.json()["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap().to_string())
            .collect()
    };

    // 400: broken JSON, an unknown field (named by its path), bad and unknown features.
    let r = post(&url("/v1/score"), "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(details(&r), ["body"]);
    let r = post(
        &url("/v1/score:batch"),
        r#"{"rows":[{"features":{}},{"featurs":{}}]}"#,
    );
    assert_eq!(
        (r.status, details(&r)),
        (400, vec!["rows[1].featurs".to_string()]),
        "{}",
        r.body
    );
    let r = post(
        &url("/v1/score:batch"),
        r#"{"rows":[{"features":{"tenure":1}},{"features":{}},{"features":{},"model":"telco"},{"features":{"tenure":"ten"}}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("limit of 3"),
        "{}",
        r.body
    );
    let r = post(
        &url("/v1/score:batch"),
        r#"{"rows":[{"features":{"tenure":1}},{"features":{"tenure":"ten","Contract":true}},{"features":{"no_such":1}}]}"#,
    );
    assert_eq!(r.status, 400);
    let mut named = details(&r);
    named.sort();
    assert_eq!(
        named,
        [
            "rows[1].features.Contract",
            "rows[1].features.tenure",
            "rows[2].features.no_such"
        ]
    );
    let r = post(&url("/v1/score"), "");
    assert_eq!(r.status, 400);
    let r = post(
        &url("/v2/models/telco/infer"),
        r#"{"inputs":[{"name":"tenure","shape":[1],"datatype":"FP64","data":["x"]}]}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        details(&r).contains(&"inputs[0].data[0]".to_string()),
        "{}",
        r.body
    );

    // 404: an unknown model (listing what is served) and an unknown path.
    let r = post(&url("/v1/score"), r#"{"features":{},"model":"nope"}"#);
    assert_eq!(r.status, 404);
    assert!(r.body.contains("telco@1"), "{}", r.body);
    assert_eq!(curl(&[&url("/v2/models/nope")]).status, 404);
    assert_eq!(
        curl(&[&url("/v2/models/telco/versions/9/ready")]).status,
        404
    );
    let r = curl(&[&url("/v3/nothing")]);
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("/v3/nothing"));

    // 405 with Allow; 413 past --max-message-bytes; 415 for a body that is not JSON.
    let r = curl(&[&url("/v1/score")]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("post"));
    assert!(r.json()["error"].as_str().unwrap().contains("GET"));
    let r = curl(&["-X", "DELETE", &url("/v1/models")]);
    assert_eq!(
        (r.status, r.header("allow").as_deref()),
        (405, Some("get, head"))
    );
    let big = format!(r#"{{"features":{{"gender":"{}"}}}}"#, "x".repeat(3000));
    let r = post(&url("/v1/score"), &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("2000 bytes"));
    let r = curl(&[
        "-H",
        "content-type: text/plain",
        "--data-binary",
        "{}",
        &url("/v1/score"),
    ]);
    assert_eq!(r.status, 415);
    assert!(r.json()["error"].as_str().unwrap().contains("text/plain"));

    // 429 with Retry-After while the one permit is held; 504 for the call holding it.
    let mut stalled = stalled_post(&srv.http);
    std::thread::sleep(Duration::from_millis(200));
    let r = post(&url("/v1/score"), r#"{"features":{}}"#);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    // Health is never shed.
    assert_eq!(curl(&[&url("/v2/health/ready")]).status, 200);
    let t0 = Instant::now();
    let mut answer = String::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let k = stalled.read(&mut buf).unwrap();
    answer.push_str(&String::from_utf8_lossy(&buf[..k]));
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    assert!(answer.contains("deadline"), "{answer}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The permit is free again.
    assert_eq!(post(&url("/v1/score"), r#"{"features":{}}"#).status, 200);

    // Each refusal is counted under the HTTP door, and none was a 5xx from a handler.
    let m = curl(&[&srv.metrics]).body;
    for line in [
        r#"churn_refused_total{door="http",reason="overloaded"} 1"#,
        r#"churn_refused_total{door="http",reason="deadline"} 1"#,
        r#"churn_requests_total{door="http",method="Score",code="415"} 1"#,
        r#"churn_requests_total{door="http",method="Score",code="413"} 1"#,
    ] {
        assert!(m.contains(line), "{line} not in:\n{m}");
    }
    assert!(!m.contains(r#"code="500""#), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_guard_the_http_door_as_bearer_tokens() {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    let keys = write(dir.path(), "keys.txt", "first-key-0123456789\n");
    let srv = Server::start(repo.path(), &["--api-keys", &keys]);
    let score = format!("{}/v1/score", srv.http);
    let body = r#"{"features":{"tenure":3}}"#;
    let r = post(&score, body);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(r#"bearer realm="churn""#)
    );
    let r = curl(&[
        "-H",
        "authorization: Bearer wrong-key",
        "-H",
        "content-type: application/json",
        "--data-binary",
        body,
        &score,
    ]);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let with_key = |key: &str| {
        curl(&[
            "-H",
            &format!("authorization: Bearer {key}"),
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            &score,
        ])
    };
    assert_eq!(with_key("first-key-0123456789").status, 200);
    // Health and the OpenAPI document stay open; the rest needs the key.
    assert_eq!(
        curl(&[&format!("{}/v2/health/ready", srv.http)]).status,
        200
    );
    assert_eq!(curl(&[&format!("{}/v2/health/live", srv.http)]).status, 200);
    assert_eq!(curl(&[&format!("{}/openapi.json", srv.http)]).status, 200);
    assert_eq!(curl(&[&format!("{}/v1/models", srv.http)]).status, 401);
    assert_eq!(
        curl(&[&format!("{}/v2/models/telco", srv.http)]).status,
        401
    );
    // A rotated key file is read without a restart, as on the gRPC port.
    std::fs::write(&keys, "second-key-0123456789\n").unwrap();
    srv.signal("-HUP");
    let t0 = Instant::now();
    while with_key("second-key-0123456789").status != 200 {
        assert!(t0.elapsed() < Duration::from_secs(10), "new key not taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(with_key("first-key-0123456789").status, 401);
    assert!(!srv.log().contains("first-key-0123456789"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_client_speaks_http_too() {
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let features = r#"{"tenure": 2, "Contract": "Month-to-month", "MonthlyCharges": 90}"#;
    let r = churn(&[
        "client",
        "score",
        "--http",
        &srv.http,
        "--features",
        features,
        "--customer-id",
        "c-1",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let got = json(&r.stdout);
    let body = format!(r#"{{"customer_id":"c-1","features":{features},"top_k":3}}"#);
    let want = post(&format!("{}/v1/score", srv.http), &body).json();
    assert_eq!(got, want);
    let g = churn(&[
        "client",
        "score",
        "--addr",
        &srv.addr,
        "--features",
        features,
    ]);
    assert_eq!(
        json(&g.stdout)["churn_probability"],
        got["churn_probability"]
    );
    let r = churn(&["client", "models", "--http", &srv.http]);
    assert_eq!(json(&r.stdout)["models"][0]["id"], "telco@1");
    let r = churn(&["client", "health", "--http", &srv.http]);
    assert_eq!(
        json(&r.stdout),
        serde_json::json!({"live": true, "ready": true})
    );
    let r = churn(&[
        "client",
        "score",
        "--http",
        &srv.http,
        "--features",
        r#"{"tenure": "ten"}"#,
    ]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("HTTP 400") && r.stderr.contains("features.tenure"),
        "{}",
        r.stderr
    );
    // --http-addr off: no HTTP door, and the announcement says none.
    let off = Server::start(repo.path(), &["--http-addr", "off"]);
    assert!(off.http.is_empty());
}

#[cfg_attr(
    churn_skip_python,
    ignore = "CHURN_SKIP_PYTHON was set when the tests were built"
)]
#[test]
fn the_openapi_document_is_valid_and_schemathesis_finds_no_server_error() {
    let python = test_python();
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let doc = curl(&[&format!("{}/openapi.json", srv.http)]);
    assert_eq!(doc.status, 200);
    let d = doc.json();
    assert!(d["openapi"].as_str().unwrap().starts_with("3."));
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "openapi.json", &doc.body);
    let v = Command::new(&python)
        .args([
            "-c",
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
            &spec,
        ])
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "openapi-spec-validator: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    let st = python.parent().unwrap().join("schemathesis");
    let run = Command::new(&st)
        .args([
            "run",
            &format!("{}/openapi.json", srv.http),
            "--max-examples",
            "30",
            "--seed",
            "1",
            "-c",
            "not_a_server_error",
            "-c",
            "response_schema_conformance",
            "-c",
            "content_type_conformance",
            "--request-timeout",
            "5",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis failed:\n{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // It ran every operation, not none.
    assert!(out.contains("13 "), "{out}");
}

#[test]
fn browsers_on_listed_origins_may_call_with_cors() {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    let keys = write(dir.path(), "keys.txt", "browser-key-0123456789\n");
    let srv = Server::start(
        repo.path(),
        &[
            "--api-keys",
            &keys,
            "--http-cors-origin",
            "https://crm.example.com",
        ],
    );
    let score = format!("{}/v1/score", srv.http);
    // The preflight carries no key and is answered before the gate.
    let pre = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "origin: https://crm.example.com",
        "-H",
        "access-control-request-method: POST",
        "-H",
        "access-control-request-headers: authorization, content-type",
        &score,
    ]);
    assert_eq!(pre.status, 200, "{}", pre.headers);
    assert_eq!(
        pre.header("access-control-allow-origin").as_deref(),
        Some("https://crm.example.com")
    );
    let allowed = pre.header("access-control-allow-headers").unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    // The call itself needs the key, and its answer is readable by the page.
    let call = |origin: &str| {
        curl(&[
            "-H",
            &format!("origin: {origin}"),
            "-H",
            "authorization: Bearer browser-key-0123456789",
            "-H",
            "content-type: application/json",
            "--data-binary",
            r#"{"features":{"tenure":3}}"#,
            &score,
        ])
    };
    let r = call("https://crm.example.com");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://crm.example.com")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("x-request-id")
    );
    // Another origin gets its answer without the header, so its page cannot read it.
    let r = call("https://evil.example.net");
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "{}",
        r.headers
    );
    // Without the flag there is no CORS at all; a flag that is not an origin stops the server.
    let plain = Server::start(repo.path(), &[]);
    let r = curl(&[
        "-H",
        "origin: https://crm.example.com",
        &format!("{}/v2/health/ready", plain.http),
    ]);
    assert!(r.header("access-control-allow-origin").is_none());
    let bad = churn(&[
        "serve",
        "--models",
        repo.path().to_str().unwrap(),
        "--http-cors-origin",
        "https://crm.example.com/app",
    ]);
    assert!(
        !bad.ok
            && bad
                .stderr
                .contains("--http-cors-origin https://crm.example.com/app"),
        "{}",
        bad.stderr
    );
}
