//! The OpenAPI 3 document of the HTTP door, derived from the handlers' annotations and the wire
//! types (utoipa), so that it cannot drift from what is served.
use super::{v1, v2};
use prost::bytes::Bytes;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "churn",
        description = "Churn probability, risk tier, reasons, usage health and the next action for one customer or many: churn.v1 as JSON (/v1) and the Open Inference Protocol's REST binding with Triton's binary tensor extension (/v2). With --api-keys, every call but health and this document needs `Authorization: Bearer <key>`. Errors are JSON: {\"error\", \"details\": [{\"field\", \"description\"}]}."
    ),
    paths(
        v1::score,
        v1::score_batch,
        v1::list_models,
        v1::get_model,
        v2::server_metadata,
        v2::live,
        v2::ready,
        v2::model_metadata_serving,
        v2::model_metadata_version,
        v2::model_ready,
        v2::model_version_ready,
        v2::infer,
        v2::infer_version,
    ),
    components(schemas(crate::serve::status::ErrorBody, crate::serve::status::ErrorDetail)),
    modifiers(&BearerScheme),
    tags(
        (name = "churn.v1", description = "churn.v1.ChurnService as JSON: the same answers as the gRPC door and `churn explain --json`"),
        (name = "v2", description = "Open Inference Protocol (KServe V2) REST: the same inputs and outputs as the gRPC inference service"),
    )
)]
struct ApiDoc;

use crate::serve::status::ErrorBody;

/// The errors of a call that reads a body and scores: every bad field named in `details`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CallErrors {
    /// Bad input: every bad field or tensor named
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Missing or unknown API key
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "Bearer")))]
    Unauthorized(ErrorBody),
    /// Unknown model or version
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Body larger than --max-message-bytes
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Body not JSON
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// Overloaded: retry after Retry-After seconds
    #[response(status = 429, headers(("Retry-After" = String, description = "seconds")))]
    Overloaded(ErrorBody),
    /// Past the deadline
    #[response(status = 504)]
    Deadline(ErrorBody),
}

/// The errors of a read of one model.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum LookupErrors {
    /// Missing or unknown API key
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "Bearer")))]
    Unauthorized(ErrorBody),
    /// Unknown model or version
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Overloaded: retry after Retry-After seconds
    #[response(status = 429, headers(("Retry-After" = String, description = "seconds")))]
    Overloaded(ErrorBody),
}

/// The errors of a read that names nothing: only the gate's.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum GateErrors {
    /// Missing or unknown API key
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "Bearer")))]
    Unauthorized(ErrorBody),
    /// Overloaded: retry after Retry-After seconds
    #[response(status = 429, headers(("Retry-After" = String, description = "seconds")))]
    Overloaded(ErrorBody),
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The document as JSON, built once.
pub fn document() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| {
        Bytes::from(
            ApiDoc::openapi()
                .to_pretty_json()
                .expect("the OpenAPI document serializes"),
        )
    })
    .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc: serde_json::Value = serde_json::from_slice(&super::document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/v1/score",
            "/v1/score:batch",
            "/v1/models",
            "/v1/models/{name}",
            "/v2",
            "/v2/health/live",
            "/v2/health/ready",
            "/v2/models/{model}",
            "/v2/models/{model}/ready",
            "/v2/models/{model}/infer",
            "/v2/models/{model}/versions/{version}",
            "/v2/models/{model}/versions/{version}/ready",
            "/v2/models/{model}/versions/{version}/infer",
        ] {
            assert!(
                paths.contains_key(p),
                "{p} missing from the OpenAPI document"
            );
        }
        assert!(doc["components"]["schemas"]["ScoreJson"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
