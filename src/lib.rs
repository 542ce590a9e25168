//! churn: predicts which customers are about to leave, with the reasons, from one model file.
//!
//! The library holds everything; the `churn` binary only parses arguments and calls it.
pub mod batch;
pub mod cli;
pub mod error;
pub mod features;
pub mod io;
pub mod model;
pub mod report;
pub mod schema;
pub mod serve;
pub mod time;

pub use error::{Error, FieldViolation, Result};
pub use model::{ChurnModel, Explanation, RiskTier};
pub use schema::{FeatureSchema, Value};

/// Types generated from `proto/inference/v2/grpc_predict_v2.proto`: the Open Inference Protocol
/// (KServe V2).
pub mod inference {
    tonic::include_proto!("inference");
}

/// Types generated from `proto/churn/v1/churn.proto`.
pub mod proto {
    tonic::include_proto!("churn.v1");

    /// Encoded descriptor set of every proto, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/churn_descriptor.bin"));
}
