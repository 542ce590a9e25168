//! Compiles proto/ with protox (pure Rust, no system protoc) and generates tonic services. The
//! encoded descriptor set is written next to the generated code for server reflection.
//!
//! Also the tests' documented opt-outs: `CHURN_SKIP_POSTGRES=1`, `CHURN_SKIP_PYTHON=1` or
//! `CHURN_SKIP_BROWSER=1` at build time marks the tests that need PostgreSQL, the Python clients or
//! headless Chromium as ignored, so that cargo reports them as ignored, never as passed. Without
//! them such a test runs, and fails with the fix when what it needs is not there.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/churn/v1/churn.proto",
        "proto/inference/v2/grpc_predict_v2.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    for (var, cfg) in [
        ("CHURN_SKIP_POSTGRES", "churn_skip_postgres"),
        ("CHURN_SKIP_PYTHON", "churn_skip_python"),
        ("CHURN_SKIP_BROWSER", "churn_skip_browser"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0") {
            println!("cargo::rustc-cfg={cfg}");
        }
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
