//! `churn serve`: the gRPC scoring service. churn.v1.ChurnService and, on the same port, the Open
//! Inference Protocol's inference.GRPCInferenceService; grpc.health.v1 (overall and per service),
//! server reflection, Prometheus metrics over HTTP, a model registry that reloads on file
//! changes and SIGHUP, and a graceful stop on SIGTERM or Ctrl-C.
mod convert;
pub mod metrics;
pub mod registry;
mod service;
pub mod status;
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
use tokio_stream::StreamExt;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Repository folder: `<name>/<version>/model.json`.
    pub models: PathBuf,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    /// Refuse requests with missing features instead of imputing them.
    pub strict: bool,
    pub max_batch: usize,
    /// How often the repository folder is checked for new or changed model files.
    pub poll: Duration,
    /// The model for requests that name none (default: the first name alphabetically).
    pub default_model: Option<String>,
    /// How long in-flight calls may take to finish after a stop signal.
    pub drain: Duration,
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
}

/// Runs the server until SIGTERM or Ctrl-C, then drains in-flight calls and returns.
pub async fn run(cfg: ServeConfig) -> Result<()> {
    let prometheus = metrics::install();
    let (registry, first) = ModelRegistry::open(&cfg.models, cfg.default_model.clone())?;
    log_reload(&first);
    let registry = Arc::new(registry);
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, !registry.catalog().is_empty()).await;
    if registry.catalog().is_empty() {
        tracing::warn!(dir = %cfg.models.display(), "no model loaded: health is NOT_SERVING until one appears");
    }

    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| Error::Usage(format!("--addr {}: {e}", cfg.addr)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let metrics_local = match cfg.metrics_addr {
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(|e| Error::Usage(format!("--metrics-addr {a}: {e}")))?;
            let bound = l.local_addr().map_err(|e| Error::Usage(e.to_string()))?;
            tokio::spawn(metrics::serve_http(l, prometheus));
            Some(bound)
        }
        None => None,
    };
    // Tests and scripts read this line to learn the ports (e.g. with --addr 127.0.0.1:0).
    println!(
        "churn serve: gRPC on {local}{}; models: {}",
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

    // Reload on a timer and on SIGHUP.
    let reloader = {
        let registry = registry.clone();
        let reporter = reporter.clone();
        let poll = cfg.poll;
        tokio::spawn(async move {
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                        tracing::info!("SIGHUP: reloading models");
                    }
                }
                let r = registry.clone();
                let Ok(report) = tokio::task::spawn_blocking(move || r.reload()).await else {
                    continue;
                };
                metrics::reloads(report.loaded.len(), report.failed.len());
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
        .map_err(|e| Error::Usage(e.to_string()))?;
    // v1alpha too: grpcurl and older tools still ask for it.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let api = ChurnApi::new(registry.clone(), cfg.strict, cfg.max_batch);
    let v2_api = v2::InferenceApi::new(registry.clone(), cfg.strict, cfg.max_batch);

    let stopping = Arc::new(tokio::sync::Notify::new());
    let shutdown = {
        let reporter = reporter.clone();
        let stopping = stopping.clone();
        async move {
            wait_for_stop_signal().await;
            tracing::info!("stop signal: NOT_SERVING, finishing in-flight calls");
            set_health(&reporter, false).await;
            stopping.notify_one();
        }
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        s.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ChurnServiceServer::new(api))
        .add_service(GrpcInferenceServiceServer::new(v2_api))
        .serve_with_incoming_shutdown(incoming, shutdown);
    let drain = cfg.drain;
    let result = tokio::select! {
        r = server => r.map_err(|e| Error::Usage(format!("server: {e}"))),
        _ = async { stopping.notified().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(seconds = drain.as_secs(), "calls still in flight after the drain period; stopping anyway");
            Ok(())
        }
    };
    reloader.abort();
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
