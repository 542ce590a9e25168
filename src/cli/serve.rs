use crate::error::{Error, Result};
use crate::serve::{ServeConfig, run};
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
    /// Model for requests that name none (default: the first name in alphabetical order).
    #[arg(long)]
    pub default_model: Option<String>,
    /// Seconds in-flight calls get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 20)]
    pub drain_seconds: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run_serve(a: ServeArgs) -> Result<()> {
    let parse = |flag: &str, s: &str| {
        s.parse()
            .map_err(|e| Error::Usage(format!("{flag} {s}: {e} (expected HOST:PORT)")))
    };
    if a.poll_seconds.is_nan() || a.poll_seconds <= 0.0 {
        return Err(Error::Usage("--poll-seconds must be positive".into()));
    }
    let cfg = ServeConfig {
        models: a.models.clone(),
        addr: parse("--addr", &a.addr)?,
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
