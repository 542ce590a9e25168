//! The churn.v1.ChurnService handlers: resolve the model, convert, score, observe. Thin by design.
use super::convert::{self, DEFAULT_TOP_K};
use super::metrics::observe;
use super::registry::{Catalog, ModelRegistry};
use crate::error::Error;
use crate::proto::churn_service_server::ChurnService;
use crate::proto::{
    GetModelRequest, ListModelsRequest, ListModelsResponse, ModelInfo, ScoreBatchRequest,
    ScoreBatchResponse, ScoreRequest, ScoreResponse,
};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone)]
pub struct ChurnApi {
    registry: Arc<ModelRegistry>,
    strict: bool,
    max_batch: usize,
}

impl ChurnApi {
    pub fn new(registry: Arc<ModelRegistry>, strict: bool, max_batch: usize) -> Self {
        ChurnApi {
            registry,
            strict,
            max_batch,
        }
    }
}

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// The caller's `x-request-id`, or a fresh one.
fn request_id<T>(req: &Request<T>) -> String {
    match req
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(id) => id.chars().take(64).collect(),
        None => format!("r{}", NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)),
    }
}

/// Scores one request with a model of `catalog`: a whole batch holds one catalog, so every row
/// is scored by the same model version even if a reload swaps in a new one meanwhile.
fn score_one(
    api: &ChurnApi,
    catalog: &Catalog,
    req: &ScoreRequest,
    model_default: &str,
    top_k: usize,
    batch_row: Option<usize>,
) -> Result<ScoreResponse, Error> {
    let spec = if req.model.is_empty() {
        model_default
    } else {
        &req.model
    };
    let model = catalog.resolve(spec)?;
    let (r, tier) = convert::score(model, req, top_k, api.strict, batch_row)?;
    super::metrics::scored(tier);
    Ok(r)
}

type ScoreStreamOut = Pin<Box<dyn Stream<Item = Result<ScoreResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ChurnService for ChurnApi {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let start = Instant::now();
        let id = request_id(&request);
        let span = tracing::debug_span!("rpc", method = "Score", request_id = %id);
        let _entered = span.enter();
        let catalog = self.registry.catalog();
        let res = score_one(self, &catalog, request.get_ref(), "", DEFAULT_TOP_K, None)
            .map(Response::new)
            .map_err(Status::from);
        observe("Score", start, &res);
        res
    }

    async fn score_batch(
        &self,
        request: Request<ScoreBatchRequest>,
    ) -> Result<Response<ScoreBatchResponse>, Status> {
        let start = Instant::now();
        let id = request_id(&request);
        let span = tracing::debug_span!("rpc", method = "ScoreBatch", request_id = %id);
        let _entered = span.enter();
        let b = request.get_ref();
        let res = if b.rows.len() > self.max_batch {
            Err(Status::from(Error::TooManyRows {
                field: "rows".into(),
                rows: b.rows.len(),
                limit: self.max_batch,
                hint: " per ScoreBatch (use ScoreStream for more)",
            }))
        } else {
            let top_k = if b.top_k == 0 {
                DEFAULT_TOP_K
            } else {
                b.top_k as usize
            };
            // All or nothing: every bad field of every row is reported.
            let catalog = self.registry.catalog();
            let mut rows = Vec::with_capacity(b.rows.len());
            let mut bad = Vec::new();
            let mut other: Option<Error> = None;
            for (i, r) in b.rows.iter().enumerate() {
                match score_one(self, &catalog, r, &b.model, top_k, Some(i)) {
                    Ok(s) => rows.push(s),
                    Err(Error::InvalidFeatures(mut v)) => bad.append(&mut v),
                    Err(e) => {
                        other.get_or_insert(e);
                    }
                }
            }
            match (other, bad.is_empty()) {
                (Some(e), _) => Err(e.into()),
                (None, false) => Err(Error::InvalidFeatures(bad).into()),
                (None, true) => Ok(Response::new(ScoreBatchResponse { rows })),
            }
        };
        observe("ScoreBatch", start, &res);
        res
    }

    type ScoreStreamStream = ScoreStreamOut;

    async fn score_stream(
        &self,
        request: Request<Streaming<ScoreRequest>>,
    ) -> Result<Response<ScoreStreamOut>, Status> {
        let id = request_id(&request);
        let api = self.clone();
        let mut input = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let span = tracing::debug_span!("rpc", method = "ScoreStream", request_id = %id);
            let _entered = span.enter();
            let mut n = 0u64;
            while let Some(msg) = input.next().await {
                let out = match msg {
                    Ok(req) => {
                        let start = Instant::now();
                        let catalog = api.registry.catalog();
                        let r = score_one(&api, &catalog, &req, "", DEFAULT_TOP_K, None)
                            .unwrap_or_else(|e| convert::row_error(&req.customer_id, &e));
                        let ok: Result<(), Status> = match &r.error {
                            None => Ok(()),
                            Some(e) => Err(Status::new(e.code.into(), "")),
                        };
                        observe("ScoreStream.row", start, &ok);
                        Ok(r)
                    }
                    Err(status) => Err(status),
                };
                let stop = out.is_err();
                if tx.send(out).await.is_err() || stop {
                    break;
                }
                n += 1;
            }
            tracing::debug!(rows = n, "stream done");
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_model(
        &self,
        request: Request<GetModelRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        let start = Instant::now();
        let catalog = self.registry.catalog();
        let res = catalog
            .resolve(&request.get_ref().model)
            .map(|m| Response::new(convert::model_info(m)))
            .map_err(Status::from);
        observe("GetModel", start, &res);
        res
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let start = Instant::now();
        let catalog = self.registry.catalog();
        let res = Ok(Response::new(ListModelsResponse {
            models: catalog.serving().map(|m| convert::model_info(m)).collect(),
        }));
        observe("ListModels", start, &res);
        res
    }
}
