//! The HTTP door, beside the gRPC port: churn.v1 as JSON (`/v1`), the Open Inference Protocol's
//! REST binding (`/v2`) and the OpenAPI document (`/openapi.json`), on axum over hyper (HTTP/1.1
//! and HTTP/2, TLS by ALPN). The same registry, the same gate (keys, permits, deadline), the same
//! connection limits and TLS files as the gRPC port; handlers only translate, and every error is
//! written by `status::http_response`.
mod openapi;
pub mod v1;
pub mod v2;

use super::conn::Incoming;
use super::guard::{Door, Gate, Refuse};
use super::registry::ModelRegistry;
use super::status::http_response;
use crate::error::{Error, FieldViolation};
use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prost::bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

pub type Reply = Response;

/// What the handlers share.
pub struct HttpState {
    pub registry: Arc<ModelRegistry>,
    pub strict: bool,
    pub max_batch: usize,
    /// Largest request body, in bytes (--max-message-bytes).
    pub max_body: usize,
    /// Set on the stop signal: readiness turns false while in-flight calls finish.
    pub stopping: AtomicBool,
}

/// The CORS policy for browser callers on other origins: only the listed origins, the door's
/// methods and headers (the key included), answers' ids and binary lengths readable. Preflights
/// are answered before the gate, since a browser sends them without the key.
fn cors(origins: &[HeaderValue]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let names = |v: &[&'static str]| -> Vec<http::HeaderName> {
        v.iter().map(|n| http::HeaderName::from_static(n)).collect()
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([http::Method::GET, http::Method::POST, http::Method::HEAD])
        .allow_headers(names(&[
            "authorization",
            "content-type",
            "x-request-id",
            v2::HEADER_LENGTH,
        ]))
        .expose_headers(names(&["x-request-id", v2::HEADER_LENGTH, "retry-after"]))
        .max_age(Duration::from_secs(600))
}

/// The HTTP port at the gate: health and the OpenAPI document are open; refusals are JSON.
pub struct HttpDoor;

impl Door for HttpDoor {
    const NAME: &'static str = "http";

    fn is_open(path: &str) -> bool {
        matches!(
            path,
            "/v2/health/live" | "/v2/health/ready" | "/openapi.json"
        )
    }

    fn caller_deadline(_headers: &HeaderMap) -> Option<Duration> {
        None
    }
}

impl Refuse<Body> for HttpDoor {
    fn refusal(e: Error) -> http::Response<Body> {
        http_response(&e)
    }
}

/// A JSON 200 response.
pub fn json_reply<T: Serialize>(v: &T) -> Reply {
    json_reply_status(StatusCode::OK, v)
}

pub fn json_reply_status<T: Serialize>(status: StatusCode, v: &T) -> Reply {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        status,
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Counts a finished call and writes an error as its JSON response.
pub fn finish(method: &'static str, start: Instant, res: Result<Reply, Error>) -> Reply {
    let reply = match res {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(method, error = %e, "request failed");
            http_response(&e)
        }
    };
    super::metrics::observe_http(method, start, reply.status());
    reply
}

/// A path parameter, or a bad request naming it.
pub fn path<T>(
    p: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, Error> {
    p.map(|p| p.0).map_err(|e| {
        Error::InvalidRequest(vec![FieldViolation {
            field: "path".into(),
            description: e.body_text(),
        }])
    })
}

/// Whether a content type is JSON: `application/json`, `application/*+json`, with any
/// parameters. No content type at all is read as JSON too (as `curl -d` users expect).
fn is_json(headers: &HeaderMap) -> Result<(), Error> {
    let Some(v) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let t = v.to_str().unwrap_or("");
    let essence = t
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType(if t.is_empty() {
            "(unreadable)".into()
        } else {
            t.chars().take(80).collect()
        }))
    }
}

/// Reads a request body of at most `limit` bytes; `any_type` skips the JSON content-type check
/// (the binary tensor extension).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    any_type: bool,
) -> Result<Bytes, Error> {
    if !any_type {
        is_json(headers)?;
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::TooLarge { limit });
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::TooLarge { limit }),
        Err(e) => Err(Error::InvalidRequest(vec![FieldViolation {
            field: "body".into(),
            description: format!("the body could not be read: {e}"),
        }])),
    }
}

/// Parses a JSON body; a failure names the field by its path (`rows[3].features`) when it can.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let bad = |field: String, e: serde_json::Error| {
        Error::InvalidRequest(vec![FieldViolation {
            field,
            description: e.to_string(),
        }])
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" || path.is_empty() {
            "body".to_string()
        } else {
            path
        };
        bad(field, e.into_inner())
    })?;
    de.end().map_err(|e| bad("body".into(), e))?;
    Ok(v)
}

/// Reads and parses a JSON body.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, Error> {
    let bytes = read_body(headers, body, limit, false).await?;
    if bytes.is_empty() {
        return Err(Error::InvalidRequest(vec![FieldViolation {
            field: "body".into(),
            description: "empty: expected a JSON object".into(),
        }]));
    }
    parse_json(&bytes)
}

async fn no_such_path(uri: http::Uri) -> Reply {
    let start = Instant::now();
    let path: String = uri.path().chars().take(200).collect();
    finish("(no endpoint)", start, Err(Error::NoSuchPath(path)))
}

async fn openapi_json() -> Reply {
    (
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi::document(),
    )
        .into_response()
}

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// Every response carries the request's `x-request-id` (the caller's, or a fresh one), and a
/// method an endpoint does not take is answered with the JSON error like every other.
async fn request_id(req: http::Request<Body>, next: axum::middleware::Next) -> Reply {
    let id = match req.headers().get("x-request-id") {
        Some(v) if v.len() <= 64 => v.clone(),
        _ => HeaderValue::from_str(&format!(
            "h{}",
            NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)
        ))
        .expect("ascii"),
    };
    let method = req.method().to_string();
    let path: String = req.uri().path().chars().take(200).collect();
    let span = tracing::debug_span!("http", %method, %path, request_id = ?id);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && resp.headers().get(http::header::CONTENT_TYPE).is_none()
    {
        // axum's own 405, written as our JSON error with the methods the endpoint takes.
        let allowed = allowed_methods(&path).to_string();
        super::metrics::observe_http("(method not allowed)", Instant::now(), resp.status());
        resp = http_response(&Error::MethodNotAllowed {
            method,
            path,
            allowed,
        });
    }
    resp.headers_mut().insert("x-request-id", id);
    resp
}

/// The methods an endpoint takes: scoring and inference are POST, the rest GET (and HEAD).
fn allowed_methods(path: &str) -> &'static str {
    if path.starts_with("/v1/score") || path.ends_with("/infer") {
        "POST"
    } else {
        "GET, HEAD"
    }
}

/// Every endpoint, behind the gate; with `cors_origins`, browsers on those origins may call.
pub fn router(state: Arc<HttpState>, gate: &Arc<Gate>, cors_origins: &[HeaderValue]) -> Router {
    let app = Router::new()
        .route("/v1/score", post(v1::score))
        .route("/v1/score:batch", post(v1::score_batch))
        .route("/v1/models", get(v1::list_models))
        .route("/v1/models/{name}", get(v1::get_model))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{model}", get(v2::model_metadata_serving))
        .route("/v2/models/{model}/ready", get(v2::model_ready))
        .route("/v2/models/{model}/infer", post(v2::infer))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(v2::model_metadata_version),
        )
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(v2::model_version_ready),
        )
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(v2::infer_version),
        )
        .route("/openapi.json", get(openapi_json))
        .fallback(no_such_path)
        .with_state(state)
        .layer(gate.layer::<HttpDoor>());
    let app = if cors_origins.is_empty() {
        app
    } else {
        app.layer(cors(cors_origins))
    };
    app.layer(axum::middleware::from_fn(request_id))
}

/// HTTP/2 settings, shared with the gRPC port.
pub struct H2Limits {
    pub max_streams: u32,
    pub keepalive: Duration,
    pub keepalive_timeout: Duration,
}

/// Serves `app` on `incoming` until `stop` turns true, then lets open calls finish (the caller
/// bounds how long).
pub async fn serve(
    mut incoming: Incoming,
    app: Router,
    h2: H2Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_streams)
        .keep_alive_interval(h2.keepalive)
        .keep_alive_timeout(h2.keepalive_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let conn = tokio::select! {
            c = incoming.next() => c,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(Ok(conn)) = conn else { break };
        let svc = TowerToHyperService::new(app.clone());
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), svc)
            .into_owned();
        let watched = graceful.watch(served);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "HTTP connection");
            }
        });
    }
    // Stop accepting, then let every connection finish its calls and close.
    drop(incoming);
    graceful.shutdown().await;
}
