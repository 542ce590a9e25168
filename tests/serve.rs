//! `churn serve` over loopback with a real tonic client: every RPC, every error path, hot reload
//! under load, a broken model file, SIGHUP, health, reflection, metrics and graceful shutdown.
mod common;
mod grpc;
use churn::proto::{self, ScoreRequest};
use common::*;
use grpc::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_equals_explain_and_every_rpc_answers() {
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.client().await;
    let model = churn::ChurnModel::load(&root().join("models/telco")).unwrap();
    let requests = telco_requests(30);
    for (req, json) in &requests {
        let r = c.score(req.clone()).await.unwrap().into_inner();
        // The CLI's explain on the same input gives the same number, to the bit.
        let out = churn(&[
            "explain",
            "--model",
            "models/telco",
            "--features",
            &json.to_string(),
            "--json",
        ]);
        let e = common::json(&out.stdout);
        assert_eq!(
            r.churn_probability,
            e["churn_probability"].as_f64().unwrap()
        );
        assert_eq!(r.customer_id, req.customer_id);
        assert_eq!(r.model, "telco@1");
        assert_eq!(r.reasons.len(), 3);
        let reasons: Vec<&str> = e["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["feature"].as_str().unwrap())
            .collect();
        assert_eq!(
            r.reasons
                .iter()
                .map(|x| x.feature.as_str())
                .collect::<Vec<_>>(),
            reasons
        );
        let tier = proto::RiskTier::try_from(r.risk_tier)
            .unwrap()
            .as_str_name();
        assert_eq!(
            tier,
            format!("RISK_TIER_{}", e["risk_tier"].as_str().unwrap())
        );
        assert!(
            (r.baseline_probability - churn::model::sigmoid(model.baseline_logit())).abs() < 1e-15
        );
    }

    // ScoreBatch keeps order and equals Score.
    let rows: Vec<ScoreRequest> = requests.iter().map(|(r, _)| r.clone()).collect();
    let batch = c
        .score_batch(proto::ScoreBatchRequest {
            rows: rows.clone(),
            model: "telco".into(),
            top_k: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.rows.len(), rows.len());
    for (b, r) in batch.rows.iter().zip(&rows) {
        assert_eq!(b.customer_id, r.customer_id);
        assert_eq!(
            b.reasons.len(),
            3,
            "the row's own top_k (3) wins over the batch's"
        );
        let one = c.score(r.clone()).await.unwrap().into_inner();
        assert_eq!(b.churn_probability, one.churn_probability);
    }

    // ScoreStream keeps order; a bad row carries its error and the stream goes on.
    let mut stream_in = rows.clone();
    stream_in[3].features.insert("no_such".into(), num(1.0));
    stream_in[7].model = "nope".into();
    let out: Vec<proto::ScoreResponse> = {
        use tokio_stream::StreamExt;
        let resp = c
            .score_stream(tokio_stream::iter(stream_in.clone()))
            .await
            .unwrap()
            .into_inner();
        resp.map(|r| r.unwrap()).collect().await
    };
    assert_eq!(out.len(), rows.len());
    for (i, (o, r)) in out.iter().zip(&stream_in).enumerate() {
        assert_eq!(o.customer_id, r.customer_id, "row {i} out of order");
        match i {
            3 => {
                let e = o.error.as_ref().expect("row 3 is bad");
                assert_eq!(e.code, Code::InvalidArgument as i32);
                assert_eq!(e.violations[0].field, "features.no_such");
            }
            7 => assert_eq!(
                o.error.as_ref().expect("row 7 is bad").code,
                Code::NotFound as i32
            ),
            _ => {
                assert!(o.error.is_none());
                assert_eq!(o.churn_probability, batch.rows[i].churn_probability);
            }
        }
    }

    // GetModel and ListModels.
    for spec in ["", "telco", "telco@1"] {
        let m = c
            .get_model(proto::GetModelRequest { model: spec.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.id, "telco@1");
        assert_eq!(m.features.len(), 19);
        assert!(m.holdout_metrics["auc"] > 0.8);
        assert_eq!(m.sha256, model.sha256());
    }
    let list = c
        .list_models(proto::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.models
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        ["telco@1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_codes_naming_every_field() {
    let repo = repo();
    let srv = Server::start(repo.path(), &["--max-batch", "4"]);
    let mut c = srv.client().await;
    let (good, _) = telco_requests(1).remove(0);

    let mut bad = good.clone();
    bad.features.insert("favourite_colour".into(), text("blue"));
    bad.features.insert("tenure".into(), num(f64::NAN));
    bad.features.insert("TotalCharges".into(), num(-3.0));
    bad.features.insert("MonthlyCharges".into(), text("lots"));
    let err = c.score(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = violations(&err);
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    for f in [
        "features.favourite_colour",
        "features.tenure",
        "features.TotalCharges",
        "features.MonthlyCharges",
    ] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    assert!(
        v.iter()
            .any(|(f, d)| f == "features.tenure" && d.contains("finite")),
        "{v:?}"
    );

    for model in ["nope", "telco@9", "telco@x"] {
        let mut r = good.clone();
        r.model = model.into();
        let err = c.score(r).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{model}");
        assert!(
            err.message().contains("telco@1"),
            "the message lists what is served: {}",
            err.message()
        );
    }
    let err = c
        .get_model(proto::GetModelRequest {
            model: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Batches: too many rows; and a bad row named by its index.
    let err = c
        .score_batch(proto::ScoreBatchRequest {
            rows: vec![good.clone(); 5],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("limit of 4"), "{}", err.message());
    let mut rows = vec![good.clone(); 3];
    rows[2].features.insert("tenure".into(), text("ten"));
    let err = c
        .score_batch(proto::ScoreBatchRequest {
            rows,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "rows[2].features.tenure");

    // A missing feature is imputed and listed.
    let mut partial = good.clone();
    partial.features.remove("tenure");
    let r = c.score(partial.clone()).await.unwrap().into_inner();
    assert_eq!(r.imputed_features, ["tenure"]);
    // Unseen levels are scored as the model's unseen level and listed.
    let mut unseen = good.clone();
    unseen
        .features
        .insert("PaymentMethod".into(), text("Bitcoin"));
    let r = c.score(unseen).await.unwrap().into_inner();
    assert_eq!(r.unseen_levels, ["PaymentMethod"]);

    // The server is still fine.
    assert!(c.score(good).await.is_ok());
    drop(srv);

    // --strict refuses missing features.
    let srv = Server::start(repo.path(), &["--strict"]);
    let mut c = srv.client().await;
    let err = c.score(partial).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err)[0].0, "features.tenure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_with_zero_failures_and_broken_files_ignored() {
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let (req, _) = telco_requests(1).remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, fails) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut hammers = Vec::new();
    for _ in 0..4 {
        let mut c = srv.client().await;
        let (req, stop, calls, fails) = (req.clone(), stop.clone(), calls.clone(), fails.clone());
        hammers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match c.score(req.clone()).await {
                    Ok(r) => {
                        let m = r.into_inner().model;
                        if seen.last() != Some(&m) {
                            seen.push(m);
                        }
                    }
                    Err(e) => {
                        eprintln!("failed call: {e}");
                        fails.fetch_add(1, Ordering::Relaxed);
                    }
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    let mut c = srv.client().await;
    let probe = c.clone();
    let wait_for = |want: &'static str| {
        let mut c = probe.clone();
        let req = req.clone();
        async move {
            let t = Instant::now();
            loop {
                let m = c.score(req.clone()).await.unwrap().into_inner().model;
                if m == want {
                    return t.elapsed();
                }
                assert!(
                    t.elapsed() < Duration::from_secs(15),
                    "still {m}, waiting for {want}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A retrained model appears as version 2.
    let dir = tempfile::tempdir().unwrap();
    let v2 = train_telco(
        TELCO,
        &dir.path().join("telco"),
        &["--seed", "9", "--l2", "3", "--folds", "0"],
    );
    install(repo.path(), "telco", 2, &v2);
    let took = wait_for("telco@2").await;
    assert!(took < Duration::from_secs(5), "reload took {took:?}");
    // A broken file as version 3: logged and counted, version 2 keeps serving.
    let broken = repo.path().join("telco/3");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("model.json"),
        "{\"format\": 1, \"name\": \"telco\", ",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        c.score(req.clone()).await.unwrap().into_inner().model,
        "telco@2"
    );
    // A changed file in place: the version 2 file is replaced by the bundled model.
    stop.store(true, Ordering::Relaxed);
    let mut seen_by_hammers = Vec::new();
    for h in hammers {
        seen_by_hammers.push(h.await.unwrap());
    }
    assert_eq!(
        fails.load(Ordering::Relaxed),
        0,
        "of {} calls",
        calls.load(Ordering::Relaxed)
    );
    assert!(calls.load(Ordering::Relaxed) > 100);
    for seen in seen_by_hammers {
        assert_eq!(
            seen,
            ["telco@1", "telco@2"],
            "each client saw v1 then v2 and never went back"
        );
    }
    let metrics = reqwest_like_get(&srv.metrics).await;
    assert!(
        metrics.contains("churn_model_reload_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("churn_model_loaded{model=\"telco\",version=\"2\"} 1"),
        "{metrics}"
    );
    assert!(srv.log().contains("model failed to load"), "{}", srv.log());

    // A file changed in place (same version, new weights) is reloaded too.
    let before = c
        .score(req.clone())
        .await
        .unwrap()
        .into_inner()
        .churn_probability;
    let v2b = train_telco(
        TELCO,
        &dir.path().join("telco"),
        &["--seed", "10", "--l2", "300", "--folds", "0"],
    );
    install(repo.path(), "telco", 2, &v2b);
    let t = Instant::now();
    loop {
        let r = c.score(req.clone()).await.unwrap().into_inner();
        assert_eq!(r.model, "telco@2");
        if r.churn_probability != before {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the changed file was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Old version still addressable; a fixed version 3 is picked up on the next poll.
    let mut old = req.clone();
    old.model = "telco@1".into();
    assert_eq!(c.score(old).await.unwrap().into_inner().model, "telco@1");
    install(
        repo.path(),
        "telco",
        3,
        &root().join("models/telco/1/model.json"),
    );
    wait_for("telco@3").await;
    c = srv.client().await;
    assert_eq!(
        c.get_model(proto::GetModelRequest::default())
            .await
            .unwrap()
            .into_inner()
            .id,
        "telco@3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_an_empty_repository_is_not_serving_until_a_model_arrives() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let repo = tempfile::tempdir().unwrap();
    // Polling effectively off: only SIGHUP can load the model.
    let srv = Server::start(repo.path(), &["--poll-seconds", "3600"]);
    let mut health = HealthClient::new(channel(&srv.addr).await);
    let status = |h: &mut HealthClient<Channel>, s: &'static str| {
        let mut h = h.clone();
        async move {
            h.check(HealthCheckRequest { service: s.into() })
                .await
                .unwrap()
                .into_inner()
                .status
        }
    };
    assert_eq!(
        status(&mut health, "").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status(&mut health, "churn.v1.ChurnService").await,
        ServingStatus::NotServing as i32
    );
    let mut c = srv.client().await;
    let (req, _) = telco_requests(1).remove(0);
    assert_eq!(
        c.score(req.clone()).await.unwrap_err().code(),
        Code::NotFound
    );

    install(
        repo.path(),
        "telco",
        1,
        &root().join("models/telco/1/model.json"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.score(req.clone()).await.unwrap_err().code(),
        Code::NotFound,
        "no poll yet"
    );
    srv.signal("-HUP");
    let t = Instant::now();
    while c.score(req.clone()).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&mut health, "").await, ServingStatus::Serving as i32);
    assert_eq!(
        status(&mut health, "churn.v1.ChurnService").await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        status(&mut health, "inference.GRPCInferenceService").await,
        ServingStatus::Serving as i32,
        "health lists the V2 service too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flips_health_finishes_in_flight_calls_and_exits_zero() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let repo = repo();
    let mut srv = Server::start(repo.path(), &[]);
    let mut health = HealthClient::new(channel(&srv.addr).await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    // A stream that is mid-way when the signal arrives.
    let requests = telco_requests(50);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut c = srv.client().await;
    let responses = tokio::spawn(async move {
        use tokio_stream::StreamExt;
        let out = c
            .score_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        out.collect::<Vec<_>>().await
    });
    for (r, _) in &requests[..25] {
        tx.send(r.clone()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.signal("-TERM");
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    // A health watcher, like any open stream, would hold the drain until --drain-seconds.
    drop((watch, health));
    for (r, _) in &requests[25..] {
        tx.send(r.clone()).await.unwrap();
    }
    drop(tx);
    let out = responses.await.unwrap();
    assert_eq!(
        out.len(),
        50,
        "every row sent before the stream closed is answered"
    );
    assert!(
        out.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.error.is_none()))
    );
    let t = Instant::now();
    let code = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_metrics_count_requests() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let repo = repo();
    let srv = Server::start(repo.path(), &[]);
    let mut r = ServerReflectionClient::new(channel(&srv.addr).await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut out = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = out.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("{msg:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["churn.v1.ChurnService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }

    let mut c = srv.client().await;
    let (good, _) = telco_requests(1).remove(0);
    for _ in 0..3 {
        c.score(good.clone()).await.unwrap();
    }
    let mut bad = good.clone();
    bad.features.insert("x".into(), num(1.0));
    c.score(bad).await.unwrap_err();
    let m = reqwest_like_get(&srv.metrics).await;
    assert!(m.contains("# TYPE churn_requests_total counter"), "{m}");
    assert!(
        m.contains("churn_requests_total{door=\"grpc\",method=\"Score\",code=\"OK\"} 3"),
        "{m}"
    );
    assert!(
        m.contains(
            "churn_requests_total{door=\"grpc\",method=\"Score\",code=\"INVALID_ARGUMENT\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("churn_request_duration_seconds_bucket{door=\"grpc\",method=\"Score\""),
        "{m}"
    );
    assert!(m.contains("churn_scores_total{tier="), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let repo = repo();
    let srv = Server::start(repo.path(), &["--log-format", "json"]);
    let mut c = srv.client().await;
    let (req, _) = telco_requests(1).remove(0);
    c.score(req).await.unwrap();
    let log = srv.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 2, "{log}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
    assert!(log.contains("\"model\":\"telco@1\""), "{log}");
}

/// The bundled model with its intercept moved: every probability differs from version 1's.
fn shifted_model(dir: &std::path::Path, by: f64) -> std::path::PathBuf {
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/telco/1/model.json")).unwrap(),
    )
    .unwrap();
    for k in ["intercept", "baseline_logit"] {
        v[k] = serde_json::json!(v[k].as_f64().unwrap() + by);
    }
    let p = dir.join(format!("shifted_{by}.json"));
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_models_and_no_default_refuse_an_unnamed_request_naming_the_models_and_flag() {
    let repo = repo();
    install(
        repo.path(),
        "another",
        1,
        &root().join("models/telco/1/model.json"),
    );
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.client().await;
    let (req, _) = telco_requests(1).remove(0);
    let err = c.score(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    for part in ["another@1", "telco@1", "--default-model"] {
        assert!(err.message().contains(part), "{part}: {}", err.message());
    }
    // Named, it is served; and with --default-model the unnamed request is too.
    let mut named = req.clone();
    named.model = "another".into();
    assert_eq!(
        c.score(named).await.unwrap().into_inner().model,
        "another@1"
    );
    let srv = Server::start(repo.path(), &["--default-model", "telco"]);
    let mut c = srv.client().await;
    assert_eq!(c.score(req).await.unwrap().into_inner().model, "telco@1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_batch_is_scored_by_one_model_version_across_reloads() {
    let repo = repo();
    let shifted = tempfile::tempdir().unwrap();
    let srv = Server::start(repo.path(), &["--poll-seconds", "0.02"]);
    let mut c = srv.client().await;
    let rows: Vec<proto::ScoreRequest> = telco_requests(1000).into_iter().map(|r| r.0).collect();
    // New versions keep arriving while batches are scored.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let installer = {
        let (stop, dir, repo) = (
            stop.clone(),
            shifted.path().to_path_buf(),
            repo.path().to_path_buf(),
        );
        std::thread::spawn(move || {
            let mut v = 2;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                install(&repo, "telco", v, &shifted_model(&dir, v as f64 / 10.0));
                v += 1;
                std::thread::sleep(Duration::from_millis(15));
            }
            v - 2
        })
    };
    let mut versions_seen = std::collections::BTreeSet::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        let resp = c
            .score_batch(proto::ScoreBatchRequest {
                rows: rows.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let first = resp.rows[0].model.clone();
        assert!(
            resp.rows.iter().all(|r| r.model == first),
            "one batch, several versions: {:?}",
            resp.rows
                .iter()
                .map(|r| r.model.as_str())
                .collect::<std::collections::BTreeSet<_>>()
        );
        versions_seen.insert(first);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let installed = installer.join().unwrap();
    assert!(installed > 20, "only {installed} versions were installed");
    assert!(
        versions_seen.len() > 3,
        "reloads happened while batches ran: {versions_seen:?}"
    );
}
