//! `churn serve` hardened: TLS and mutual TLS with certificates made here (a CA, a server, clients,
//! an expired one, a stranger's CA), API keys (none, wrong, right, reloaded, never logged; health
//! open), load shedding under a bounded overload and recovery after it, and the connection and
//! message limits. Real tonic clients over loopback against the real binary.
mod common;
mod grpc;
use churn::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn::proto::churn_service_client::ChurnServiceClient;
use churn::proto::{ScoreBatchRequest, ScoreRequest};
use common::*;
use grpc::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    date_time_ymd,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

struct Pki {
    ca: String,
    server: Pem,
    expired_server: Pem,
    client: Pem,
    expired_client: Pem,
    /// A client certificate from another CA.
    stranger: Pem,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let pem = p.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(p, key))
}

fn leaf(issuer: &Issuer<'static, KeyPair>, server: bool, expired: bool) -> Pem {
    let key = KeyPair::generate().unwrap();
    let names = if server {
        vec!["localhost".to_string(), "127.0.0.1".to_string()]
    } else {
        Vec::new()
    };
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(
        DnType::CommonName,
        if server { "localhost" } else { "crm-backend" },
    );
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    if expired {
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2021, 1, 1);
    }
    Pem {
        cert: p.signed_by(&key, issuer).unwrap().pem(),
        key: key.serialize_pem(),
    }
}

fn pki() -> Pki {
    let (ca_pem, issuer) = ca("churn test CA");
    let (_, other) = ca("someone else's CA");
    Pki {
        ca: ca_pem,
        server: leaf(&issuer, true, false),
        expired_server: leaf(&issuer, true, true),
        client: leaf(&issuer, false, false),
        expired_client: leaf(&issuer, false, true),
        stranger: leaf(&other, false, false),
    }
}

fn save(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `pki`'s server certificate and key, and its CA for client certificates, saved in `dir`.
fn save_mtls(dir: &Path, pki: &Pki) -> (PathBuf, PathBuf, PathBuf) {
    (
        save(dir, "server.pem", &pki.server.cert),
        save(dir, "server.key", &pki.server.key),
        save(dir, "clients.pem", &pki.ca),
    )
}

/// A server with mutual TLS from the files `save_mtls` wrote in `dir`.
fn start_mtls(repo: &Path, dir: &Path, extra: &[&str]) -> Server {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (cert, key, ca) = (path("server.pem"), path("server.key"), path("clients.pem"));
    let mut args = vec![
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ];
    args.extend_from_slice(extra);
    Server::start(repo, &args)
}

/// Connects over TLS trusting `ca`, presenting `identity` if given, and makes one Score call.
async fn tls_score(
    addr: &str,
    ca: &str,
    identity: Option<&Pem>,
    key: Option<&str>,
) -> Result<(), String> {
    score_on(tls_channel(addr, ca, identity).await?, key).await
}

/// A TLS connection trusting `ca`, presenting `identity` if given.
async fn tls_channel(addr: &str, ca: &str, identity: Option<&Pem>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(&id.cert, &id.key));
    }
    let url = addr.replace("http://", "https://");
    Endpoint::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))
}

/// A new plain-text connection and one Score call on it, without a key.
async fn connect_and_score(addr: &str) -> Result<(), String> {
    let ch = Endpoint::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    score_on(ch, None).await
}

async fn score_on(ch: Channel, key: Option<&str>) -> Result<(), String> {
    let mut req = tonic::Request::new(telco_requests(1)[0].0.clone());
    req.set_timeout(Duration::from_secs(5));
    if let Some(k) = key {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    ChurnServiceClient::new(ch)
        .score(req)
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_only_tls_clients_that_trust_it() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let cert = save(dir.path(), "server.pem", &pki.server.cert);
    let key = save(dir.path(), "server.key", &pki.server.key);
    let repo = repo();
    let srv = Server::start(
        repo.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // A client that connects and says nothing holds up no one: handshakes run on their own.
    let _silent = std::net::TcpStream::connect(srv.addr.trim_start_matches("http://")).unwrap();
    tls_score(&srv.addr, &pki.ca, None, None)
        .await
        .expect("a TLS client that trusts the CA is served");
    // A plain-text client gets nothing.
    let plain = connect_and_score(&srv.addr).await;
    assert!(plain.is_err(), "plain-text client served by a TLS server");
    // A client that trusts another CA refuses the server.
    let (other_ca, _) = ca("another CA");
    assert!(tls_score(&srv.addr, &other_ca, None, None).await.is_err());
    drop(srv);

    // An expired server certificate: clients refuse it.
    let cert = save(dir.path(), "old.pem", &pki.expired_server.cert);
    let key = save(dir.path(), "old.key", &pki.expired_server.key);
    let srv = Server::start(
        repo.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let err = tls_score(&srv.addr, &pki.ca, None, None)
        .await
        .expect_err("an expired server certificate is refused by the client");
    assert!(
        err.to_lowercase().contains("expired"),
        "the client says why: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_current_client_certificates_of_its_ca() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (_, key, ca) = save_mtls(dir.path(), &pki);
    let repo = repo();
    let srv = start_mtls(repo.path(), dir.path(), &[]);
    tls_score(&srv.addr, &pki.ca, Some(&pki.client), None)
        .await
        .expect("a client certificate of the CA is admitted");
    for (what, id) in [
        ("no client certificate", None),
        ("an expired client certificate", Some(&pki.expired_client)),
        ("a certificate of another CA", Some(&pki.stranger)),
    ] {
        let err = tls_score(&srv.addr, &pki.ca, id, None)
            .await
            .expect_err(what);
        eprintln!("{what}: {err}");
    }

    // Bad TLS settings stop the server at start with a message naming the flag.
    let r = churn(&[
        "serve",
        "--models",
        repo.path().to_str().unwrap(),
        "--tls-client-ca",
        ca.to_str().unwrap(),
    ]);
    assert!(!r.ok && r.stderr.contains("--tls-client-ca needs --tls-cert"));
    let r = churn(&[
        "serve",
        "--models",
        repo.path().to_str().unwrap(),
        "--tls-cert",
        "/nonexistent.pem",
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        !r.ok && r.stderr.contains("--tls-cert /nonexistent.pem"),
        "{}",
        r.stderr
    );
}

/// Replaces a file the way a deployment tool does: a temporary file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificates_are_served_without_a_restart() {
    let (a, b) = (pki(), pki());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = save_mtls(dir.path(), &a);
    let repo = repo();
    let srv = start_mtls(repo.path(), dir.path(), &["--poll-seconds", "0.1"]);
    let open = tls_channel(&srv.addr, &a.ca, Some(&a.client))
        .await
        .unwrap();
    score_on(open.clone(), None).await.unwrap();

    // Rotate everything to PKI b. The certificate and its key are two files written one after the
    // other, so the server may see the new certificate with the old key for a poll or two.
    replace(&cert, &b.server.cert);
    tokio::time::sleep(Duration::from_millis(300)).await;
    replace(&key, &b.server.key);
    replace(&ca, &b.ca);
    let start = Instant::now();
    while let Err(e) = tls_score(&srv.addr, &b.ca, Some(&b.client), None).await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the rotated certificate was never served: {e}\n{}",
            srv.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // New connections get b's certificate and need a client certificate of b's CA.
    assert!(
        tls_score(&srv.addr, &a.ca, Some(&b.client), None)
            .await
            .is_err()
    );
    assert!(
        tls_score(&srv.addr, &b.ca, Some(&a.client), None)
            .await
            .is_err()
    );
    // The connection opened before the rotation goes on as it was.
    score_on(open, None).await.unwrap();

    // A broken certificate file keeps b's serving.
    replace(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    tls_score(&srv.addr, &b.ca, Some(&b.client), None)
        .await
        .unwrap();

    let metrics = reqwest_like_get(&srv.metrics).await;
    assert!(
        metrics.contains("churn_refused_total{door=\"grpc\",reason=\"tls_handshake\"}"),
        "{metrics}"
    );
    let log = srv.log();
    assert!(log.contains("TLS certificate loaded"), "{log}");
    assert_eq!(
        log.matches("TLS files unusable").count(),
        // The half-way state (new certificate, old key) may or may not have been seen; the
        // broken file always is, once.
        1 + usize::from(log.contains("the private key does not match the certificate")),
        "{log}"
    );
}

const KEY: &str = "k-7c1d9e52a0b3f4";
const NEW_KEY: &str = "k-new-0e8f77a1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_required_reloaded_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let hashed = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest("k-hashed-5521"))
    };
    let keys = save(
        dir.path(),
        "keys",
        &format!("# CRM backends\n{KEY}\nsha256:{hashed}\n"),
    );
    let repo = repo();
    let srv = Server::start(
        repo.path(),
        &[
            "--api-keys",
            keys.to_str().unwrap(),
            "--poll-seconds",
            "0.2",
        ],
    );
    let ch = channel(&srv.addr).await;

    let no_key = score_on(ch.clone(), None).await.unwrap_err();
    assert!(no_key.starts_with("Unauthenticated"), "{no_key}");
    let wrong = score_on(ch.clone(), Some("k-wrong")).await.unwrap_err();
    assert!(wrong.starts_with("Unauthenticated"), "{wrong}");
    score_on(ch.clone(), Some(KEY)).await.unwrap();
    score_on(ch.clone(), Some("k-hashed-5521")).await.unwrap();
    // The V2 service is behind the same gate.
    let mut v2 = GrpcInferenceServiceClient::new(ch.clone());
    let err = v2
        .server_metadata(churn::inference::ServerMetadataRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Health stays open.
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let s = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.status, 1);

    // A changed key file is picked up: the new key works and the removed one stops working.
    save(dir.path(), "keys.tmp", &format!("{NEW_KEY}\n"));
    std::fs::rename(dir.path().join("keys.tmp"), &keys).unwrap();
    let start = Instant::now();
    while score_on(ch.clone(), Some(NEW_KEY)).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "new key never accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = score_on(ch.clone(), Some(KEY)).await.unwrap_err();
    assert!(old.starts_with("Unauthenticated"), "{old}");
    // A broken key file keeps the keys in force.
    std::fs::write(&keys, "sha256:not-hex\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    score_on(ch.clone(), Some(NEW_KEY)).await.unwrap();

    let metrics = reqwest_like_get(&srv.metrics).await;
    assert!(
        metrics.contains("churn_refused_total{door=\"grpc\",reason=\"unauthenticated\"}"),
        "{metrics}"
    );
    // Stop the server so that all it wrote is in the log, then look for any key in it.
    srv.signal("-TERM");
    let mut srv = srv;
    srv.child.wait().unwrap();
    let log = srv.log();
    assert!(log.contains("API key file unreadable"), "{log}");
    assert!(log.contains("line 1"), "{log}");
    for k in [KEY, NEW_KEY, "k-wrong", "k-hashed-5521", hashed.as_str()] {
        assert!(!log.contains(k), "a key is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_at_once_with_resource_exhausted_and_the_server_recovers() {
    let repo = repo();
    let srv = Server::start(repo.path(), &["--max-in-flight", "2"]);
    let ch = channel(&srv.addr).await;
    let rows: Vec<ScoreRequest> = telco_requests(1000).into_iter().map(|r| r.0).collect();
    let batch = ScoreBatchRequest {
        rows,
        ..Default::default()
    };
    // 32 callers in a loop of 1,000-row batches for a bounded 3 s.
    let end = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut c = ChurnServiceClient::new(ch.clone());
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut shed, mut other) = (0u32, 0u32, Vec::new());
            while Instant::now() < end {
                match c.score_batch(batch.clone()).await {
                    Ok(r) => {
                        assert_eq!(r.into_inner().rows.len(), 1000);
                        ok += 1;
                    }
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        assert!(s.message().contains("--max-in-flight"), "{}", s.message());
                        shed += 1;
                    }
                    Err(s) => other.push(format!("{:?} {}", s.code(), s.message())),
                }
            }
            (ok, shed, other)
        }));
    }
    // Health answers during the overload: probes are never shed.
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(s.into_inner().status, 1);
    let (mut ok, mut shed) = (0, 0);
    for t in tasks {
        let (o, s, other) = t.await.unwrap();
        assert!(other.is_empty(), "unexpected errors: {other:?}");
        ok += o;
        shed += s;
    }
    assert!(ok > 0, "some calls were served");
    assert!(
        shed > 0,
        "no call was shed with 32 callers and a limit of 2"
    );
    eprintln!("overload: {ok} batches served, {shed} shed");
    // Afterwards every call is served.
    let mut c = ChurnServiceClient::new(ch);
    for _ in 0..20 {
        c.score_batch(batch.clone()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_message_limits_hold() {
    let repo = repo();
    let srv = Server::start(
        repo.path(),
        &["--max-connections", "2", "--max-message-bytes", "20000"],
    );
    let a = channel(&srv.addr).await;
    let b = channel(&srv.addr).await;
    score_on(a.clone(), None).await.unwrap();
    score_on(b.clone(), None).await.unwrap();
    // A third connection is closed at once.
    let third = connect_and_score(&srv.addr).await;
    assert!(third.is_err(), "a third connection was served");
    // Closing one frees its slot.
    drop(b);
    let start = Instant::now();
    loop {
        if connect_and_score(&srv.addr).await.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "slot never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A message over --max-message-bytes is refused, and the connection goes on serving.
    let rows: Vec<ScoreRequest> = telco_requests(100).into_iter().map(|r| r.0).collect();
    let mut c = ChurnServiceClient::new(a.clone());
    let err = c
        .score_batch(ScoreBatchRequest {
            rows,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    score_on(a, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_survives_its_folder_vanishing_and_coming_back() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("models");
    let model = root().join("models/telco/1/model.json");
    install(&dir, "telco", 1, &model);
    let srv = Server::start(&dir, &["--poll-seconds", "0.1"]);
    let mut c = srv.client().await;
    let req = telco_requests(1)[0].0.clone();
    assert_eq!(
        c.score(req.clone()).await.unwrap().into_inner().model,
        "telco@1"
    );

    // The folder goes away (an unmounted volume, a redeploy): the loaded model keeps serving.
    let away = parent.path().join("away");
    std::fs::rename(&dir, &away).unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            c.score(req.clone()).await.unwrap().into_inner().model,
            "telco@1"
        );
    }
    // It comes back with a new version, which is picked up.
    install(&away, "telco", 2, &model);
    std::fs::rename(&away, &dir).unwrap();
    let start = Instant::now();
    while c.score(req.clone()).await.unwrap().into_inner().model != "telco@2" {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "telco@2 never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Logged once while away (not on each of its ~10 polls), and again when it is back.
    let log = srv.log();
    assert_eq!(
        log.matches("model repository unreadable").count(),
        1,
        "the vanished folder is logged once: {log}"
    );
    assert!(
        log.contains("model repository readable again"),
        "its return is logged: {log}"
    );
}

/// Opens a raw HTTP/2 stream for `path`, sends the gRPC headers (with `grpc-timeout` if given)
/// and then never sends the body, like a client stalled mid-request. Returns the gRPC status code
/// and message of the response.
async fn stalled_call(addr: &str, path: &str, grpc_timeout: Option<&str>) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let mut req = http::Request::post(format!("{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = grpc_timeout {
        req = req.header("grpc-timeout", t);
    }
    let (response, _body_never_sent) = client.send_request(req.body(()).unwrap(), false).unwrap();
    // Not a timing assertion: a guard so that a server that never answers fails the test
    // instead of hanging it.
    let response = tokio::time::timeout(Duration::from_secs(60), response)
        .await
        .expect("the server never answered the stalled call")
        .unwrap();
    let mut headers = response.headers().clone();
    if !headers.contains_key("grpc-status") {
        // Not trailers-only: the status comes in the trailers.
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
        headers = body.trailers().await.unwrap().unwrap_or_default();
    }
    let get = |k: &str| {
        headers
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (get("grpc-status"), get("grpc-message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_call_ends_with_deadline_exceeded_and_frees_its_slot() {
    let dir = repo();
    // One call in flight at most: a stalled call that kept its slot would shed every later call.
    let srv = Server::start(
        dir.path(),
        &["--deadline-seconds", "0.5", "--max-in-flight", "1"],
    );
    let (code, message) = stalled_call(&srv.addr, "/churn.v1.ChurnService/Score", None).await;
    assert_eq!(code, "4", "DEADLINE_EXCEEDED, got {code}: {message}");
    assert!(message.contains("deadline"), "{message}");
    // The caller's shorter grpc-timeout wins over the server's limit, on the V2 API too.
    let (code, message) = stalled_call(
        &srv.addr,
        "/inference.GRPCInferenceService/ModelInfer",
        Some("100m"),
    )
    .await;
    assert_eq!(code, "4", "DEADLINE_EXCEEDED, got {code}: {message}");
    assert!(message.contains("100ms"), "{message}");
    // The slot was given back: the next call is served.
    let req = telco_requests(1)[0].0.clone();
    let mut c = srv.client().await;
    c.score(req).await.unwrap();
    let metrics = reqwest_like_get(&srv.metrics).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("churn_refused_total{door=\"grpc\",reason=\"deadline\"} 2")),
        "{metrics}"
    );
}

#[test]
fn a_zero_limit_is_refused_at_start_naming_its_flag() {
    let repo = repo();
    for flag in [
        "--max-message-bytes",
        "--max-in-flight",
        "--max-connections",
        "--max-streams-per-connection",
        "--keepalive-seconds",
        "--keepalive-timeout-seconds",
    ] {
        let r = churn(&[
            "serve",
            "--models",
            repo.path().to_str().unwrap(),
            flag,
            "0",
        ]);
        assert!(
            !r.ok && r.stderr.contains(&format!("{flag} must be at least 1")),
            "{flag}: {}",
            r.stderr
        );
    }
}

/// curl over the HTTP door: status, negotiated protocol and body.
fn curl_tls(args: &[&str]) -> Result<(String, String), String> {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .expect("curl is needed by the HTTP tests (Debian package curl)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    Ok((tail.to_string(), body.to_string()))
}

#[test]
fn the_http_door_speaks_tls_with_the_grpc_certificate_and_client_checks() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    save_mtls(dir.path(), &pki);
    let ca = save(dir.path(), "ca.pem", &pki.ca);
    let client_cert = save(dir.path(), "client.pem", &pki.client.cert);
    let client_key = save(dir.path(), "client.key", &pki.client.key);
    let stranger_cert = save(dir.path(), "stranger.pem", &pki.stranger.cert);
    let stranger_key = save(dir.path(), "stranger.key", &pki.stranger.key);
    let repo = repo();
    let srv = start_mtls(repo.path(), dir.path(), &[]);
    assert!(srv.http.starts_with("https://"), "{}", srv.http);
    let url = format!("{}/v1/score", srv.http.replace("127.0.0.1", "localhost"));
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        client_cert.to_str().unwrap(),
        client_key.to_str().unwrap(),
    );
    let body = r#"{"features":{"tenure":3}}"#;
    for proto in ["--http1.1", "--http2"] {
        let (status, got) = curl_tls(&[
            proto,
            "--cacert",
            ca,
            "--cert",
            cert,
            "--key",
            key,
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            &url,
        ])
        .unwrap_or_else(|e| panic!("{proto}: {e}"));
        let want_version = if proto == "--http2" { "2" } else { "1.1" };
        assert_eq!(status, format!("200 {want_version}"), "{proto}: {got}");
        assert!(got.contains("churn_probability"), "{got}");
    }
    // Plain text to the TLS port, no client certificate, or one from another CA: refused.
    assert!(curl_tls(&[&url.replace("https://", "http://"), "--data-binary", body]).is_err());
    assert!(curl_tls(&["--cacert", ca, "--data-binary", body, &url]).is_err());
    assert!(
        curl_tls(&[
            "--cacert",
            ca,
            "--cert",
            stranger_cert.to_str().unwrap(),
            "--key",
            stranger_key.to_str().unwrap(),
            "--data-binary",
            body,
            &url,
        ])
        .is_err()
    );
}
