use crate::error::{Error, Result};
use crate::serve::{Limits, Security, ServeConfig, run};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model repository: <name>/<version>/model.json; the highest version of each name serves.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// gRPC listen address (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// HTTP/JSON listen address: churn.v1 as JSON, V2 REST and /openapi.json ("off" to disable).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// An origin (https://crm.example.com) whose browser pages may call the HTTP door (CORS);
    /// repeat for several. None by default.
    #[arg(long = "http-cors-origin")]
    pub http_cors_origins: Vec<String>,
    /// Prometheus metrics listen address ("off" to disable).
    #[arg(long, default_value = "127.0.0.1:9095")]
    pub metrics_addr: String,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Refuse requests with missing features instead of imputing them.
    #[arg(long)]
    pub strict: bool,
    /// Most rows one ScoreBatch or ModelInfer call may carry.
    #[arg(long, default_value_t = 1000)]
    pub max_batch: usize,
    /// Seconds between checks of the model folder for new or changed files.
    #[arg(long, default_value_t = 2.0)]
    pub poll_seconds: f64,
    /// Model for requests that name none (default: the only model served; with several, a
    /// request that names none is refused with the list of models).
    #[arg(long)]
    pub default_model: Option<String>,
    /// Seconds in-flight calls get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 20)]
    pub drain_seconds: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// PEM certificate chain: serve TLS only (with --tls-key). The TLS files are re-read when
    /// they change.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates signed by it (mutual TLS).
    #[arg(long)]
    pub tls_client_ca: Option<PathBuf>,
    /// API key file, one key a line (plain, or sha256:<hex>); calls then need
    /// `authorization: Bearer <key>`. Health stays open. Re-read when it changes.
    #[arg(long)]
    pub api_keys: Option<PathBuf>,
    /// Largest request message in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_message_bytes: usize,
    /// Calls in flight at once; past it calls get RESOURCE_EXHAUSTED at once instead of queueing.
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Longest a call may run, in seconds (a shorter grpc-timeout from the caller wins).
    #[arg(long, default_value_t = 10.0)]
    pub deadline_seconds: f64,
    /// Open connections at once; past it new connections are closed.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection.
    #[arg(long, default_value_t = 256)]
    pub max_streams_per_connection: u32,
    /// Seconds between HTTP/2 keepalive PINGs; a PING unanswered for --keepalive-timeout-seconds
    /// closes the connection.
    #[arg(long, default_value_t = 30)]
    pub keepalive_seconds: u64,
    #[arg(long, default_value_t = 10)]
    pub keepalive_timeout_seconds: u64,
}

/// `n`, or a usage error naming `flag` if it is 0: a limit of zero would refuse everything.
fn positive<T: Copy + PartialEq + From<u8>>(flag: &str, n: T) -> Result<T> {
    if n == T::from(0) {
        Err(Error::Usage(format!("{flag} must be at least 1")))
    } else {
        Ok(n)
    }
}

/// An origin as a browser sends it: scheme://host[:port], nothing after.
fn cors_origin(o: &str) -> Result<http::HeaderValue> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "--http-cors-origin {o}: {why} (expected an origin such as https://crm.example.com)"
        ))
    };
    let uri: http::Uri = o.parse().map_err(|_| bad("not a URL"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !o.ends_with('/');
    if !scheme_ok || uri.host().is_none() || !bare {
        return Err(bad("an origin is scheme://host[:port], with no path"));
    }
    http::HeaderValue::from_str(o).map_err(|_| bad("not a header value"))
}

pub fn run_serve(a: ServeArgs) -> Result<()> {
    let parse = |flag: &str, s: &str| {
        s.parse()
            .map_err(|e| Error::Usage(format!("{flag} {s}: {e} (expected HOST:PORT)")))
    };
    if a.poll_seconds.is_nan() || a.poll_seconds <= 0.0 {
        return Err(Error::Usage("--poll-seconds must be positive".into()));
    }
    if !(a.deadline_seconds > 0.0 && a.deadline_seconds <= 86_400.0) {
        return Err(Error::Usage(
            "--deadline-seconds must be above 0 and at most 86400".into(),
        ));
    }
    let cfg = ServeConfig {
        models: a.models.clone(),
        addr: parse("--addr", &a.addr)?,
        http_addr: if a.http_addr == "off" {
            None
        } else {
            Some(parse("--http-addr", &a.http_addr)?)
        },
        cors_origins: a
            .http_cors_origins
            .iter()
            .map(|o| cors_origin(o))
            .collect::<Result<_>>()?,
        metrics_addr: if a.metrics_addr == "off" {
            None
        } else {
            Some(parse("--metrics-addr", &a.metrics_addr)?)
        },
        strict: a.strict,
        max_batch: a.max_batch,
        poll: Duration::from_secs_f64(a.poll_seconds),
        default_model: a.default_model.clone(),
        drain: Duration::from_secs(a.drain_seconds),
        security: Security {
            tls: a.tls_cert.clone().zip(a.tls_key.clone()),
            client_ca: a.tls_client_ca.clone(),
            api_keys: a.api_keys.clone(),
        },
        limits: Limits {
            max_message_bytes: positive("--max-message-bytes", a.max_message_bytes)?,
            max_in_flight: positive("--max-in-flight", a.max_in_flight)?,
            deadline: Duration::from_secs_f64(a.deadline_seconds),
            max_connections: positive("--max-connections", a.max_connections)?,
            max_streams_per_connection: positive(
                "--max-streams-per-connection",
                a.max_streams_per_connection,
            )?,
            keepalive: Duration::from_secs(positive("--keepalive-seconds", a.keepalive_seconds)?),
            keepalive_timeout: Duration::from_secs(positive(
                "--keepalive-timeout-seconds",
                a.keepalive_timeout_seconds,
            )?),
        },
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = a.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt
        .build()
        .map_err(|e| Error::Usage(format!("tokio runtime: {e}")))?;
    rt.block_on(run(cfg))
}
