//! Compiles `saleboard/v1/*.proto` with the pure-Rust `protox` compiler (no `protoc` needed) and
//! hands the descriptors to tonic's generator. Also writes the descriptor set that reflection
//! serves.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "saleboard/v1/ingest.proto",
    "saleboard/v1/admin.proto",
    "saleboard/v1/leaderboard.proto",
    "saleboard/v1/aggregator.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("saleboard_descriptor.bin"), fds.encode_to_vec())?;
    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` on every message: the JSON mapping (src/json.rs) finds its descriptor by it.
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Counts repeated fields before decoding and answers INVALID_ARGUMENT for bad bytes.
        .codec_path("crate::codec::SaleboardCodec")
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
