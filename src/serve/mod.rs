//! `churn serve`: the scoring service. On the gRPC port churn.v1.ChurnService and the Open
//! Inference Protocol's inference.GRPCInferenceService, grpc.health.v1 (overall and per service)
//! and server reflection; on the HTTP port the same APIs as JSON and REST (`http`); Prometheus
//! metrics on their own port; a model registry that reloads on file changes and SIGHUP, and a
//! graceful stop on SIGTERM or Ctrl-C.
mod conn;
mod convert;
pub mod guard;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod registry;
mod service;
pub mod status;
pub mod tls;
pub mod v2;

use crate::error::{Error, Result};
use crate::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use crate::proto::churn_service_server::ChurnServiceServer;
use registry::{ModelRegistry, ReloadReport};
use service::ChurnApi;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Repository folder: `<name>/<version>/model.json`.
    pub models: PathBuf,
    pub addr: SocketAddr,
    /// The HTTP/JSON door; None: off.
    pub http_addr: Option<SocketAddr>,
    /// Origins whose browser pages may call the HTTP door (CORS); empty: none.
    pub cors_origins: Vec<::http::HeaderValue>,
    pub metrics_addr: Option<SocketAddr>,
    /// Refuse requests with missing features instead of imputing them.
    pub strict: bool,
    pub max_batch: usize,
    /// How often the repository folder is checked for new or changed model files.
    pub poll: Duration,
    /// The model for requests that name none (default: the only model; with several, such
    /// requests are refused).
    pub default_model: Option<String>,
    /// How long in-flight calls may take to finish after a stop signal.
    pub drain: Duration,
    pub security: Security,
    pub limits: Limits,
}

/// Who may connect and call.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// PEM certificate chain and private key: serve TLS only.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// PEM CA bundle: every client must present a certificate it signed (mTLS).
    pub client_ca: Option<PathBuf>,
    /// API key file: every call but health checks needs `authorization: Bearer <key>`.
    pub api_keys: Option<PathBuf>,
}

/// Bounds that keep one client, or many, from taking the server down.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request message, in bytes.
    pub max_message_bytes: usize,
    /// Calls in flight at once; past it, RESOURCE_EXHAUSTED at once.
    pub max_in_flight: usize,
    /// Longest a call may run.
    pub deadline: Duration,
    /// Open connections at once; past it, new ones are closed.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams_per_connection: u32,
    /// HTTP/2 PING interval, and how long an unanswered PING may wait before the connection closes.
    pub keepalive: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 << 20,
            max_in_flight: 1024,
            deadline: Duration::from_secs(10),
            max_connections: 1024,
            max_streams_per_connection: 256,
            keepalive: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// The TLS files of `sec`, checked: client certificates need TLS.
fn tls_files(sec: &Security) -> Result<Option<tls::TlsFiles>> {
    match (&sec.tls, &sec.client_ca) {
        (Some((cert, key)), client_ca) => Ok(Some(tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: client_ca.clone(),
        })),
        (None, Some(_)) => Err(Error::Usage(
            "--tls-client-ca needs --tls-cert and --tls-key (client certificates are checked over TLS)".into(),
        )),
        (None, None) => Ok(None),
    }
}

fn log_tls_reload(tls: &tls::TlsReloader, r: &tls::TlsReload) {
    match r {
        tls::TlsReload::Unchanged => {}
        tls::TlsReload::Loaded => {
            tracing::info!(cert = %tls.files().cert.display(), "TLS certificate loaded; new connections use it")
        }
        tls::TlsReload::Failed(why) => {
            tracing::error!(error = %why, "TLS files unusable; the previous certificate stays in force")
        }
    }
}

/// The names health is reported under: overall ("") and each service.
const CHURN_SERVICE: &str = "churn.v1.ChurnService";

async fn set_health(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter.set_service_status(CHURN_SERVICE, status).await;
    reporter.set_service_status(v2::SERVICE_NAME, status).await;
}

fn log_keys_reload(keys: &keys::ApiKeys, r: &keys::KeysReload) {
    match r {
        keys::KeysReload::Unchanged => {}
        keys::KeysReload::Loaded(n) => {
            tracing::info!(path = %keys.path().display(), keys = n, "API keys loaded");
            if *n == 0 {
                tracing::warn!("the API key file holds no key: every call but health is refused");
            }
        }
        keys::KeysReload::Failed(why) => {
            tracing::error!(error = %why, "API key file unreadable; the previous keys stay in force")
        }
    }
}

fn log_reload(r: &ReloadReport) {
    for id in &r.loaded {
        tracing::info!(model = %id, "model loaded");
        metrics::model_loaded(id, true);
    }
    for id in &r.removed {
        tracing::info!(model = %id, "model removed");
        metrics::model_loaded(id, false);
    }
    for (path, why) in &r.failed {
        tracing::error!(path = %path.display(), error = %why, "model failed to load; the previous version keeps serving");
    }
    if let Some(why) = &r.folder_unreadable {
        tracing::error!(error = %why, "model repository unreadable; the loaded models keep serving");
    }
    if r.folder_restored {
        tracing::info!("model repository readable again");
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then drains in-flight calls and returns.
pub async fn run(cfg: ServeConfig) -> Result<()> {
    let prometheus = metrics::install();
    // Histograms keep raw samples until drained; drain them on a timer so that memory stays flat
    // whether or not anyone scrapes the metrics port.
    let upkeep = {
        let handle = prometheus.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        })
    };
    let tls = match tls_files(&cfg.security)? {
        Some(files) => Some(Arc::new(tls::TlsReloader::open(files)?)),
        None => None,
    };
    let api_keys = match &cfg.security.api_keys {
        Some(p) => {
            let k = Arc::new(keys::ApiKeys::open(p)?);
            log_keys_reload(&k, &keys::KeysReload::Loaded(k.current().len()));
            Some(k)
        }
        None => None,
    };
    let (registry, first) = ModelRegistry::open(&cfg.models, cfg.default_model.clone())?;
    log_reload(&first);
    let registry = Arc::new(registry);
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, !registry.catalog().is_empty()).await;
    if registry.catalog().is_empty() {
        tracing::warn!(dir = %cfg.models.display(), "no model loaded: health is NOT_SERVING until one appears");
    }

    let address = |flag, addr: SocketAddr| {
        move |e: std::io::Error| Error::Address {
            flag,
            addr: addr.to_string(),
            message: e.to_string(),
        }
    };
    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(address("--addr", cfg.addr))?;
    let local = listener.local_addr().map_err(address("--addr", cfg.addr))?;
    let http_listener = match cfg.http_addr {
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(address("--http-addr", a))?;
            let bound = l.local_addr().map_err(address("--http-addr", a))?;
            Some((l, bound))
        }
        None => None,
    };
    let metrics_local = match cfg.metrics_addr {
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(address("--metrics-addr", a))?;
            let bound = l.local_addr().map_err(address("--metrics-addr", a))?;
            tokio::spawn(metrics::serve_http(l, prometheus));
            Some(bound)
        }
        None => None,
    };
    // The SIGHUP handler is in place before the ports are announced, so a SIGHUP sent as soon
    // as they are reloads instead of killing the process.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // Tests and scripts read this line to learn the ports (e.g. with --addr 127.0.0.1:0).
    println!(
        "churn serve: gRPC on {local} ({}){}{}; models: {}",
        match (&tls, &cfg.security.client_ca, &api_keys) {
            (None, _, None) => "plaintext, no API keys",
            (None, _, Some(_)) => "plaintext, API keys",
            (Some(_), None, None) => "TLS, no API keys",
            (Some(_), None, Some(_)) => "TLS, API keys",
            (Some(_), Some(_), None) => "TLS with client certificates, no API keys",
            (Some(_), Some(_), Some(_)) => "TLS with client certificates, API keys",
        },
        http_listener
            .as_ref()
            .map(|(_, h)| format!(
                ", HTTP on {}://{h}",
                if tls.is_some() { "https" } else { "http" }
            ))
            .unwrap_or_default(),
        metrics_local
            .map(|m| format!(", metrics on http://{m}/metrics"))
            .unwrap_or_default(),
        registry
            .catalog()
            .serving()
            .map(|m| m.id())
            .collect::<Vec<_>>()
            .join(", ")
    );
    tracing::info!(%local, "listening");

    // Reload models, API keys and TLS files on a timer and on SIGHUP.
    let reloader = {
        let registry = registry.clone();
        let api_keys = api_keys.clone();
        let tls = tls.clone();
        let reporter = reporter.clone();
        let poll = cfg.poll;
        let mut hup = hup;
        tokio::spawn(async move {
            // The models were loaded just above: the first timed reload is one interval away,
            // not immediate (an immediate tick could pick up a file written after start-up).
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                        tracing::info!("SIGHUP: reloading models, keys and TLS files");
                    }
                }
                if let Some(k) = &api_keys {
                    log_keys_reload(k, &k.reload());
                }
                if let Some(t) = &tls {
                    log_tls_reload(t, &t.reload());
                }
                let r = registry.clone();
                let Ok(report) = tokio::task::spawn_blocking(move || r.reload()).await else {
                    continue;
                };
                metrics::reloads(
                    report.loaded.len(),
                    report.failed.len() + usize::from(report.folder_unreadable.is_some()),
                );
                log_reload(&report);
                if report.changed() {
                    set_health(&reporter, !registry.catalog().is_empty()).await;
                }
            }
        })
    };

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| Error::Transport(format!("reflection: {e}")))?;
    // v1alpha too: grpcurl and older tools still ask for it.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| Error::Transport(format!("reflection: {e}")))?;
    let limits = &cfg.limits;
    let api = ChurnServiceServer::new(ChurnApi::new(registry.clone(), cfg.strict, cfg.max_batch))
        .max_decoding_message_size(limits.max_message_bytes);
    let v2_api = GrpcInferenceServiceServer::new(v2::InferenceApi::new(
        registry.clone(),
        cfg.strict,
        cfg.max_batch,
    ))
    .max_decoding_message_size(limits.max_message_bytes);
    // One gate for both doors: the same keys, and one pool of in-flight permits.
    let gate = guard::Gate::new(guard::GuardConfig {
        keys: api_keys,
        max_in_flight: limits.max_in_flight,
        deadline: limits.deadline,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http_state = Arc::new(http::HttpState {
        registry: registry.clone(),
        strict: cfg.strict,
        max_batch: cfg.max_batch,
        max_body: limits.max_message_bytes,
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    let shutdown = {
        let reporter = reporter.clone();
        let http_state = http_state.clone();
        async move {
            wait_for_stop_signal().await;
            tracing::info!("stop signal: NOT_SERVING, finishing in-flight calls");
            set_health(&reporter, false).await;
            http_state
                .stopping
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = stop_tx.send(true);
        }
    };
    let http_server = {
        let serving = http_listener.map(|(l, _)| {
            let incoming = conn::incoming(l, limits.max_connections, tls.clone(), conn::Port::Http);
            http::serve(
                incoming,
                http::router(http_state.clone(), &gate, &cfg.cors_origins),
                http::H2Limits {
                    max_streams: limits.max_streams_per_connection,
                    keepalive: limits.keepalive,
                    keepalive_timeout: limits.keepalive_timeout,
                },
                stop_rx.clone(),
            )
        });
        async move {
            if let Some(s) = serving {
                s.await
            }
        }
    };
    // TLS is ours (conn.rs), not tonic's, so that a rotated certificate is served without a restart.
    let incoming = conn::incoming(listener, limits.max_connections, tls, conn::Port::Grpc);
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(limits.keepalive))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_concurrent_streams(limits.max_streams_per_connection)
        .layer(gate.layer::<guard::GrpcDoor>())
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .add_service(v2_api)
        .serve_with_incoming_shutdown(incoming, shutdown);
    let drain = cfg.drain;
    let servers = async {
        let (grpc, ()) = tokio::join!(server, http_server);
        grpc
    };
    let mut stopped = stop_rx;
    let result = tokio::select! {
        r = servers => r.map_err(|e| Error::Transport(e.to_string())),
        _ = async { let _ = stopped.wait_for(|s| *s).await; tokio::time::sleep(drain).await } => {
            tracing::warn!(seconds = drain.as_secs(), "calls still in flight after the drain period; stopping anyway");
            Ok(())
        }
    };
    reloader.abort();
    upkeep.abort();
    tracing::info!("stopped");
    result
}

async fn wait_for_stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(_) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}
