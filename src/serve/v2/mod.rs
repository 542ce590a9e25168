//! inference.GRPCInferenceService: the Open Inference Protocol (KServe V2), served on the same port
//! as churn.v1 so that Triton, KServe and MLServer clients and gateways work unchanged. Model name
//! is the repository's model name; version "" is the serving (highest) version. Thin handlers:
//! resolve the model, call [`infer`], map errors in the one place.
mod infer;
pub mod tensor;

use super::metrics::observe;
use super::registry::ModelRegistry;
use crate::inference::grpc_inference_service_server::GrpcInferenceService;
use crate::inference::*;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

pub use infer::{model_infer, model_metadata};

/// The gRPC service name, as health reports it.
pub const SERVICE_NAME: &str = "inference.GRPCInferenceService";

#[derive(Clone)]
pub struct InferenceApi {
    registry: Arc<ModelRegistry>,
    strict: bool,
    max_batch: usize,
}

impl InferenceApi {
    pub fn new(registry: Arc<ModelRegistry>, strict: bool, max_batch: usize) -> Self {
        InferenceApi {
            registry,
            strict,
            max_batch,
        }
    }
}

/// The registry's spec for a V2 (name, version) pair: "" = the serving version (both V2 doors).
pub fn spec(name: &str, version: &str) -> String {
    if version.is_empty() {
        name.to_string()
    } else {
        format!("{name}@{version}")
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceApi {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = !self.registry.catalog().is_empty();
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    /// An unknown model or version is not ready (not an error), as readiness probes expect.
    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let r = request.get_ref();
        let ready = self
            .registry
            .catalog()
            .resolve(&spec(&r.name, &r.version))
            .is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "churn".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: Vec::new(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let start = Instant::now();
        let r = request.get_ref();
        let catalog = self.registry.catalog();
        let res = catalog
            .resolve(&spec(&r.name, &r.version))
            .map(|m| {
                let versions = if r.version.is_empty() {
                    catalog
                        .versions(&m.file().name)
                        .map(|v| v.to_string())
                        .collect()
                } else {
                    vec![m.file().version.to_string()]
                };
                Response::new(model_metadata(m, versions))
            })
            .map_err(Status::from);
        observe("ModelMetadata", start, &res);
        res
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let start = Instant::now();
        let r = request.get_ref();
        let catalog = self.registry.catalog();
        let res = catalog
            .resolve(&spec(&r.model_name, &r.model_version))
            .and_then(|m| model_infer(m, r, self.strict, self.max_batch))
            .map(Response::new)
            .map_err(Status::from);
        observe("ModelInfer", start, &res);
        res
    }
}
