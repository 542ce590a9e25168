//! The one place where library errors become gRPC status codes (and, for the HTTP door, status
//! numbers). Handlers return `Result<_, Error>` and let `?` or `Status::from` do the mapping.
use crate::error::{Error, FieldViolation};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub fn code_of(e: &Error) -> Code {
    match e {
        Error::InvalidFeatures(_)
        | Error::InvalidTensors(_)
        | Error::TooManyRows { .. }
        | Error::Usage(_)
        | Error::Data { .. } => Code::InvalidArgument,
        Error::ModelNotFound(_) => Code::NotFound,
        Error::Overloaded(_) => Code::ResourceExhausted,
        Error::Unauthenticated(_) => Code::Unauthenticated,
        Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
        Error::Io { .. }
        | Error::Model { .. }
        | Error::Training(_)
        | Error::CountMismatch(_)
        | Error::Address { .. } => Code::Internal,
        Error::Database { .. } | Error::Transport(_) => Code::Unavailable,
    }
}

/// INVALID_ARGUMENT carries a google.rpc.BadRequest naming every offending field.
impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = code_of(&e);
        match &e {
            Error::InvalidFeatures(v) | Error::InvalidTensors(v) => {
                Status::with_error_details(code, e.to_string(), bad_request(v))
            }
            Error::TooManyRows { field, .. } => {
                let v = [FieldViolation {
                    field: field.clone(),
                    description: e.to_string(),
                }];
                Status::with_error_details(code, e.to_string(), bad_request(&v))
            }
            _ => Status::new(code, e.to_string()),
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
