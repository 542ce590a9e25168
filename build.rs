//! Compiles proto/ with protox (pure Rust, no system protoc) and generates tonic services. The
//! encoded descriptor set is written next to the generated code for server reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/churn/v1/churn.proto",
        "proto/inference/v2/grpc_predict_v2.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("churn_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Tensor bytes as `bytes::Bytes`: decoded as slices of the request buffer, not copies.
        .bytes(".inference")
        .compile_fds(fds)?;
    Ok(())
}
