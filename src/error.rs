//! The library's one error type. Every variant names what was wrong and where (file, row, column,
//! field), so a CLI prints it as is and the server maps it to a gRPC status in one place.
use std::path::PathBuf;

/// One offending input field, as reported to API callers (google.rpc.BadRequest field violations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A problem with a data file: `line` is the 1-based line of a CSV file (the header is line 1),
    /// or the 1-based row of a Parquet file, when one row is at fault.
    #[error("{}", data_message(path, *line, column.as_deref(), message))]
    Data {
        path: PathBuf,
        line: Option<u64>,
        column: Option<String>,
        message: String,
    },

    /// A model file that cannot be read, parsed or trusted.
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },

    /// A request's features are invalid; one violation per offending field.
    #[error("invalid features: {}", violations_message(.0))]
    InvalidFeatures(Vec<FieldViolation>),

    /// An Open Inference Protocol request's tensors are invalid; one violation per offending tensor
    /// (or tensor and row).
    #[error("invalid input tensors: {}", violations_message(.0))]
    InvalidTensors(Vec<FieldViolation>),

    /// A request body that is not what the endpoint takes (broken JSON, a field of the wrong
    /// type, an unknown field); one violation per offending field, named by its path.
    #[error("invalid request: {}", violations_message(.0))]
    InvalidRequest(Vec<FieldViolation>),

    #[error("model not found: {0}")]
    ModelNotFound(String),

    /// An HTTP path that names no endpoint.
    #[error("no endpoint at {0}: see /openapi.json for the endpoints")]
    NoSuchPath(String),

    /// An endpoint called with a method it does not take.
    #[error("{method} is not allowed on {path}; it takes {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },

    /// A request body larger than the server takes (--max-message-bytes).
    #[error(
        "the request body is larger than this server's limit of {limit} bytes (--max-message-bytes)"
    )]
    TooLarge { limit: usize },

    /// A request body in a media type the endpoint does not read.
    #[error("content-type {0} is not read here: send JSON with `content-type: application/json`")]
    UnsupportedMediaType(String),

    /// The server is at its limit; the caller should retry later.
    #[error("overloaded: {0}")]
    Overloaded(String),

    /// A call without a valid API key.
    #[error("{0}")]
    Unauthenticated(String),

    /// A call that ran past its deadline.
    #[error("the call took longer than its deadline of {0:?}")]
    DeadlineExceeded(std::time::Duration),

    /// More rows in one call than the server takes; a retry cannot fix it, so it is bad input.
    #[error("{field}: {rows} rows is more than this server's limit of {limit}{hint}")]
    TooManyRows {
        field: String,
        rows: usize,
        limit: usize,
        hint: &'static str,
    },

    /// A network address that cannot be listened on or reached; `flag` names the option.
    #[error("{flag} {addr}: {message}")]
    Address {
        flag: &'static str,
        addr: String,
        message: String,
    },

    /// The gRPC server or a client connection failed while running.
    #[error("gRPC transport: {0}")]
    Transport(String),

    /// A batch run's own count check failed: rows read must equal scored + rejected + other
    /// shards, and rows scored must equal rows written. Nothing was written.
    #[error("{0}; nothing was written")]
    CountMismatch(String),

    /// Training could not produce a model (e.g. the solver failed to converge to finite weights).
    #[error("training failed: {0}")]
    Training(String),

    /// Bad arguments or options.
    #[error("{0}")]
    Usage(String),

    /// `churn drift --fail-on`: the data drifted at least as far as the band asked for.
    #[error("drift is {band}: {}", features.join(", "))]
    DriftFound { band: String, features: Vec<String> },

    /// A report's chart could not be drawn.
    #[error("report chart '{chart}': {message}")]
    Chart { chart: String, message: String },

    /// A database refused a statement or dropped the connection; `target` is the database (no
    /// password) and what was being done.
    #[error("{target}: {message}")]
    Database { target: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit status a command ends with on this error: 3 for drift found by
    /// `--fail-on` (so a pipeline can tell it from a failure), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::DriftFound { .. } => 3,
            _ => 1,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn cell(
        path: impl Into<PathBuf>,
        line: u64,
        column: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Data {
            path: path.into(),
            line: Some(line),
            column: Some(column.into()),
            message: message.into(),
        }
    }

    pub fn column(
        path: impl Into<PathBuf>,
        column: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Data {
            path: path.into(),
            line: None,
            column: Some(column.into()),
            message: message.into(),
        }
    }

    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }
}

fn data_message(
    path: &std::path::Path,
    line: Option<u64>,
    column: Option<&str>,
    message: &str,
) -> String {
    let mut s = path.display().to_string();
    if let Some(l) = line {
        s.push_str(&format!(": line {l}"));
    }
    if let Some(c) = column {
        s.push_str(&format!(": column '{c}'"));
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

fn violations_message(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|f| format!("{}: {}", f.field, f.description))
        .collect::<Vec<_>>()
        .join("; ")
}
