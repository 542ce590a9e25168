//! The gate every call passes before a handler: API keys, load shedding and the per-call deadline,
//! as one tower layer over all services. Health checks pass without a key and are never shed, so
//! that probes tell the truth under load. A refused call is answered at once with its gRPC status
//! (UNAUTHENTICATED, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED) and counted; nothing of the
//! presented key is logged.
use super::keys::{ApiKeys, bearer};
use crate::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::Status;

/// gRPC paths that need no key and are never shed.
const OPEN_PREFIX: &str = "/grpc.health.v1.Health/";

pub struct GuardConfig {
    /// None: no API keys are required.
    pub keys: Option<Arc<ApiKeys>>,
    /// Calls in flight at once across all connections; more are refused.
    pub max_in_flight: usize,
    /// Longest a call may take; a shorter `grpc-timeout` from the caller wins.
    pub deadline: Duration,
}

#[derive(Clone)]
pub struct GuardLayer {
    keys: Option<Arc<ApiKeys>>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    deadline: Duration,
}

impl GuardLayer {
    pub fn new(cfg: GuardConfig) -> Self {
        GuardLayer {
            keys: cfg.keys,
            permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
            max_in_flight: cfg.max_in_flight,
            deadline: cfg.deadline,
        }
    }
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            gate: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    gate: GuardLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The gate's answer to a refused call: the error's status (mapped in `status.rs`, like every
/// handler's), counted by reason.
fn refuse<B: Default>(e: Error, reason: &'static str) -> http::Response<B> {
    metrics::counter!("churn_refused_total", "reason" => reason).increment(1);
    Status::from(e).into_http()
}

/// The caller's `grpc-timeout` (e.g. "250m"), if it is valid.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at_checked(v.len().checked_sub(1)?)?;
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Guard<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if req.uri().path().starts_with(OPEN_PREFIX) {
            return Box::pin(inner.call(req));
        }
        if let Some(keys) = &self.gate.keys {
            let token = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| bearer(v.as_bytes()));
            let status = match token {
                None => Some(Error::Unauthenticated(
                    "missing API key: send `authorization: Bearer <key>`".into(),
                )),
                Some(t) if !keys.current().accepts(t) => {
                    Some(Error::Unauthenticated("invalid API key".into()))
                }
                Some(_) => None,
            };
            if let Some(s) = status {
                return Box::pin(std::future::ready(Ok(refuse(s, "unauthenticated"))));
            }
        }
        let Ok(permit) = self.gate.permits.clone().try_acquire_owned() else {
            let s = Error::Overloaded(format!(
                "{} calls in flight, the server's limit (--max-in-flight); retry with backoff",
                self.gate.max_in_flight
            ));
            return Box::pin(std::future::ready(Ok(refuse(s, "overloaded"))));
        };
        let deadline =
            grpc_timeout(req.headers()).map_or(self.gate.deadline, |t| t.min(self.gate.deadline));
        Box::pin(async move {
            let _permit = permit;
            match tokio::time::timeout(deadline, inner.call(req)).await {
                Ok(r) => r,
                Err(_) => Ok(refuse(Error::DeadlineExceeded(deadline), "deadline")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert("grpc-timeout", v.parse().unwrap());
            grpc_timeout(&m)
        };
        assert_eq!(h("250m"), Some(Duration::from_millis(250)));
        assert_eq!(h("3S"), Some(Duration::from_secs(3)));
        assert_eq!(h("2M"), Some(Duration::from_secs(120)));
        assert_eq!(h("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(h("10u"), Some(Duration::from_micros(10)));
        assert_eq!(h("99n"), Some(Duration::from_nanos(99)));
        assert_eq!(h("5x"), None);
        assert_eq!(h("m"), None);
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
