//! The one place where library errors become gRPC status codes and HTTP responses. Handlers
//! return `Result<_, Error>` and let `?`, `Status::from` or [`http_response`] do the mapping; the
//! HTTP status follows the gRPC code, so both doors classify an error the same way.
use crate::error::{Error, FieldViolation};
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub fn code_of(e: &Error) -> Code {
    match e {
        Error::InvalidFeatures(_)
        | Error::InvalidTensors(_)
        | Error::InvalidRequest(_)
        | Error::TooManyRows { .. }
        | Error::UnsupportedMediaType(_)
        | Error::Usage(_)
        | Error::Data { .. } => Code::InvalidArgument,
        Error::ModelNotFound(_) | Error::NoSuchPath(_) => Code::NotFound,
        Error::MethodNotAllowed { .. } => Code::Unimplemented,
        Error::Overloaded(_) | Error::TooLarge { .. } => Code::ResourceExhausted,
        Error::Unauthenticated(_) => Code::Unauthenticated,
        Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
        Error::Io { .. }
        | Error::Model { .. }
        | Error::Training(_)
        | Error::Chart { .. }
        | Error::DriftFound { .. }
        | Error::CountMismatch(_)
        | Error::Address { .. } => Code::Internal,
        Error::Database { .. } | Error::Transport(_) => Code::Unavailable,
    }
}

/// The fields an error names: every bad field of a bad request, none otherwise.
fn violations(e: &Error) -> Vec<FieldViolation> {
    match e {
        Error::InvalidFeatures(v) | Error::InvalidTensors(v) | Error::InvalidRequest(v) => {
            v.clone()
        }
        Error::TooManyRows { field, .. } => vec![FieldViolation {
            field: field.clone(),
            description: e.to_string(),
        }],
        _ => Vec::new(),
    }
}

/// INVALID_ARGUMENT carries a google.rpc.BadRequest naming every offending field.
impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = code_of(&e);
        let v = violations(&e);
        if v.is_empty() {
            Status::new(code, e.to_string())
        } else {
            Status::with_error_details(code, e.to_string(), bad_request(&v))
        }
    }
}

pub fn bad_request(v: &[FieldViolation]) -> ErrorDetails {
    ErrorDetails::with_bad_request(
        v.iter()
            .map(|f| tonic_types::FieldViolation::new(f.field.clone(), f.description.clone()))
            .collect::<Vec<_>>(),
    )
}

/// The HTTP status of an error: the HTTP twin of its gRPC code, except that a body too large is
/// 413, a media type not read is 415 and a method not taken is 405.
pub fn http_status_of(e: &Error) -> http::StatusCode {
    use http::StatusCode as S;
    match e {
        Error::TooLarge { .. } => return S::PAYLOAD_TOO_LARGE,
        Error::UnsupportedMediaType(_) => return S::UNSUPPORTED_MEDIA_TYPE,
        Error::MethodNotAllowed { .. } => return S::METHOD_NOT_ALLOWED,
        _ => {}
    }
    match code_of(e) {
        Code::InvalidArgument => S::BAD_REQUEST,
        Code::NotFound => S::NOT_FOUND,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        _ => S::INTERNAL_SERVER_ERROR,
    }
}

/// Every HTTP error's body: what went wrong, and each offending field of a bad request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    pub error: String,
    /// One entry per offending field (bad requests only).
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Where: a JSON path such as `rows[3].features.tenure`, or a tensor name.
    pub field: String,
    pub description: String,
}

/// Seconds a shed caller is asked to wait before retrying (HTTP `Retry-After`).
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The HTTP response for an error: its status, the JSON [`ErrorBody`], and the headers the
/// status calls for (`WWW-Authenticate` on 401, `Retry-After` on 429, `Allow` on 405).
pub fn http_response(e: &Error) -> http::Response<axum::body::Body> {
    let status = http_status_of(e);
    let body = ErrorBody {
        error: e.to_string(),
        details: violations(e)
            .into_iter()
            .map(|v| ErrorDetail {
                field: v.field,
                description: v.description,
            })
            .collect(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json");
    match e {
        Error::Unauthenticated(_) => {
            let challenge = if e.to_string().starts_with("invalid") {
                r#"Bearer realm="churn", error="invalid_token""#
            } else {
                r#"Bearer realm="churn""#
            };
            r = r.header(http::header::WWW_AUTHENTICATE, challenge);
        }
        Error::Overloaded(_) => r = r.header(http::header::RETRY_AFTER, RETRY_AFTER_SECONDS),
        Error::MethodNotAllowed { allowed, .. } => r = r.header(http::header::ALLOW, allowed),
        _ => {}
    }
    r.body(axum::body::Body::from(json))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_follow_the_grpc_codes() {
        let v = || {
            vec![FieldViolation {
                field: "features.tenure".into(),
                description: "expected a number".into(),
            }]
        };
        let cases = [
            (Error::InvalidFeatures(v()), 400),
            (Error::InvalidTensors(v()), 400),
            (Error::InvalidRequest(v()), 400),
            (Error::ModelNotFound("x".into()), 404),
            (Error::NoSuchPath("/x".into()), 404),
            (Error::Unauthenticated("missing".into()), 401),
            (Error::Overloaded("busy".into()), 429),
            (
                Error::DeadlineExceeded(std::time::Duration::from_secs(1)),
                504,
            ),
            (Error::TooLarge { limit: 10 }, 413),
            (Error::UnsupportedMediaType("text/plain".into()), 415),
            (
                Error::MethodNotAllowed {
                    method: "GET".into(),
                    path: "/v1/score".into(),
                    allowed: "POST".into(),
                },
                405,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(http_status_of(&e).as_u16(), want, "{e}");
            let r = http_response(&e);
            assert_eq!(r.status().as_u16(), want);
            assert_eq!(r.headers()["content-type"], "application/json");
            match want {
                401 => assert!(
                    r.headers()["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .starts_with("Bearer")
                ),
                429 => assert_eq!(r.headers()["retry-after"], "1"),
                405 => assert_eq!(r.headers()["allow"], "POST"),
                _ => {}
            }
        }
    }
}
