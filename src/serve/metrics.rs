//! Prometheus metrics: requests by method and code, latency histograms, scores by tier, loaded
//! model versions, reloads and reload failures. Rendered as Prometheus text on the metrics port.
use crate::model::RiskTier;
use http_body_util::Full;
use hyper::body::Bytes;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Instant;
use tokio::net::TcpListener;
use tonic::Status;

/// Installs the global recorder (once per process).
pub fn install() -> PrometheusHandle {
    let buckets = [
        25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3, 12.8e-3, 25.6e-3,
        0.1, 1.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("churn_request_duration_seconds".into()),
            &buckets,
        )
        .expect("valid buckets")
        .install_recorder()
        .expect("one metrics recorder per process");
    metrics::describe_counter!(
        "churn_requests_total",
        "Requests by door (grpc, http), method and status code"
    );
    metrics::describe_histogram!(
        "churn_request_duration_seconds",
        "Handler time by door and method"
    );
    metrics::describe_counter!("churn_scores_total", "Customers scored, by risk tier");
    metrics::describe_gauge!("churn_model_loaded", "1 for each loaded model version");
    metrics::describe_counter!(
        "churn_model_reloads_total",
        "Model files loaded after start-up"
    );
    metrics::describe_counter!(
        "churn_model_reload_failures_total",
        "Model files that failed to load"
    );
    handle
}

/// Counts one finished gRPC call and its handler time.
pub fn observe<T>(method: &'static str, start: Instant, res: &Result<T, Status>) {
    let code = match res {
        Ok(_) => "OK",
        Err(s) => code_name(s.code()),
    };
    record("grpc", method, code, start);
    if let Err(s) = res {
        tracing::debug!(code, message = s.message(), "request failed");
    }
}

/// Counts one finished HTTP call by its status and its handler time.
pub fn observe_http(method: &'static str, start: Instant, status: http::StatusCode) {
    record("http", method, status_label(status), start);
}

fn record(door: &'static str, method: &'static str, code: &'static str, start: Instant) {
    metrics::counter!("churn_requests_total", "door" => door, "method" => method, "code" => code)
        .increment(1);
    metrics::histogram!("churn_request_duration_seconds", "door" => door, "method" => method)
        .record(start.elapsed().as_secs_f64());
}

/// The statuses the HTTP door answers with, as static labels.
fn status_label(s: http::StatusCode) -> &'static str {
    match s.as_u16() {
        200 => "200",
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        501 => "501",
        503 => "503",
        504 => "504",
        _ => "other",
    }
}

pub fn scored(tier: RiskTier) {
    metrics::counter!("churn_scores_total", "tier" => tier.as_str()).increment(1);
}

/// Counts a call's scored rows by tier, one counter update per tier.
pub fn scored_tiers(tiers: &[RiskTier]) {
    let mut n = [0u64; 3];
    for t in tiers {
        n[*t as usize] += 1;
    }
    for (t, count) in [RiskTier::Low, RiskTier::Medium, RiskTier::High]
        .into_iter()
        .zip(n)
    {
        if count > 0 {
            metrics::counter!("churn_scores_total", "tier" => t.as_str()).increment(count);
        }
    }
}

pub fn model_loaded(id: &str, loaded: bool) {
    let (name, version) = id.split_once('@').unwrap_or((id, ""));
    metrics::gauge!("churn_model_loaded", "model" => name.to_string(), "version" => version.to_string())
        .set(if loaded { 1.0 } else { 0.0 });
}

pub fn reloads(loaded: usize, failed: usize) {
    metrics::counter!("churn_model_reloads_total").increment(loaded as u64);
    metrics::counter!("churn_model_reload_failures_total").increment(failed as u64);
}

fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` (any path) as Prometheus text over HTTP/1.1 until the task is dropped.
pub async fn serve_http(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let body = handle.render();
                async move {
                    hyper::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
            {
                tracing::debug!(error = %e, "metrics connection");
            }
        });
    }
}
