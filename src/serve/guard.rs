//! The gate every call passes before a handler: API keys, load shedding and the per-call deadline,
//! as one tower layer over all services of a door (the gRPC port and the HTTP port). Both doors
//! share one gate: the same keys and one pool of in-flight permits, so `--max-in-flight` bounds
//! the server, not each port. Health checks pass without a key and are never shed, so that probes
//! tell the truth under load. A refused call is answered at once in its door's form (a gRPC status,
//! or a JSON error with its HTTP status) and counted; nothing of the presented key is logged.
use super::keys::{ApiKeys, bearer};
use crate::error::Error;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::Status;

/// How a door differs at the gate: which paths are open, the caller's own deadline, and how a
/// refusal is written.
pub trait Door: Send + Sync + 'static {
    /// The door's metric label.
    const NAME: &'static str;
    /// Paths that need no key and are never shed (health).
    fn is_open(path: &str) -> bool;
    /// The caller's deadline, when the protocol carries one.
    fn caller_deadline(headers: &http::HeaderMap) -> Option<Duration>;
}

/// A door's answer to a refused call, in its body type.
pub trait Refuse<B>: Door {
    fn refusal(e: Error) -> http::Response<B>;
}

/// The gRPC port: health is open; `grpc-timeout` shortens the deadline; refusals are statuses.
pub struct GrpcDoor;

impl Door for GrpcDoor {
    const NAME: &'static str = "grpc";

    fn is_open(path: &str) -> bool {
        path.starts_with(OPEN_PREFIX)
    }

    fn caller_deadline(headers: &http::HeaderMap) -> Option<Duration> {
        grpc_timeout(headers)
    }
}

impl<B: Default> Refuse<B> for GrpcDoor {
    fn refusal(e: Error) -> http::Response<B> {
        Status::from(e).into_http()
    }
}

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

/// The server's one gate: keys, permits and the deadline, shared by every door.
pub struct Gate {
    keys: Option<Arc<ApiKeys>>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    deadline: Duration,
}

impl Gate {
    pub fn new(cfg: GuardConfig) -> Arc<Self> {
        Arc::new(Gate {
            keys: cfg.keys,
            permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
            max_in_flight: cfg.max_in_flight,
            deadline: cfg.deadline,
        })
    }

    /// The gate as a tower layer for door `D`.
    pub fn layer<D: Door>(self: &Arc<Self>) -> GuardLayer<D> {
        GuardLayer {
            gate: self.clone(),
            door: PhantomData,
        }
    }

    /// Why `headers` may not call, if they may not: a missing or unknown API key.
    fn unauthenticated(&self, headers: &http::HeaderMap) -> Option<Error> {
        let keys = self.keys.as_ref()?;
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()));
        match token {
            None => Some(Error::Unauthenticated(
                "missing API key: send `authorization: Bearer <key>`".into(),
            )),
            Some(t) if !keys.current().accepts(t) => {
                Some(Error::Unauthenticated("invalid API key".into()))
            }
            Some(_) => None,
        }
    }
}

pub struct GuardLayer<D> {
    gate: Arc<Gate>,
    door: PhantomData<fn() -> D>,
}

impl<D> Clone for GuardLayer<D> {
    fn clone(&self) -> Self {
        GuardLayer {
            gate: self.gate.clone(),
            door: PhantomData,
        }
    }
}

impl<S, D> tower_layer::Layer<S> for GuardLayer<D> {
    type Service = Guard<S, D>;

    fn layer(&self, inner: S) -> Guard<S, D> {
        Guard {
            inner,
            gate: self.gate.clone(),
            door: PhantomData,
        }
    }
}

pub struct Guard<S, D> {
    inner: S,
    gate: Arc<Gate>,
    door: PhantomData<fn() -> D>,
}

impl<S: Clone, D> Clone for Guard<S, D> {
    fn clone(&self) -> Self {
        Guard {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
            door: PhantomData,
        }
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The gate's answer to a refused call, in door `D`'s form (mapped in `status.rs`, like every
/// handler's), counted by door and reason.
fn refuse<D: Refuse<B>, B>(e: Error, reason: &'static str) -> http::Response<B> {
    metrics::counter!("churn_refused_total", "door" => D::NAME, "reason" => reason).increment(1);
    D::refusal(e)
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

impl<S, D, B, R> tower_service::Service<http::Request<B>> for Guard<S, D>
where
    D: Refuse<R>,
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Send + 'static,
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
        if D::is_open(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        if let Some(e) = self.gate.unauthenticated(req.headers()) {
            return Box::pin(std::future::ready(Ok(refuse::<D, R>(e, "unauthenticated"))));
        }
        let Ok(permit) = self.gate.permits.clone().try_acquire_owned() else {
            let s = Error::Overloaded(format!(
                "{} calls in flight, the server's limit (--max-in-flight); retry with backoff",
                self.gate.max_in_flight
            ));
            return Box::pin(std::future::ready(Ok(refuse::<D, R>(s, "overloaded"))));
        };
        let deadline = D::caller_deadline(req.headers())
            .map_or(self.gate.deadline, |t| t.min(self.gate.deadline));
        Box::pin(async move {
            let _permit = permit;
            match tokio::time::timeout(deadline, inner.call(req)).await {
                Ok(r) => r,
                Err(_) => Ok(refuse::<D, R>(
                    Error::DeadlineExceeded(deadline),
                    "deadline",
                )),
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
