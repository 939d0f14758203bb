//! Compiles `carbonx/v1/*.proto` with the pure-Rust `protox` parser, so no system `protoc` is
//! needed, and emits the file descriptor set for gRPC reflection.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dir = root.join("carbonx").join("v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [root.as_path()])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(descriptor_path(&out_dir), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // A request that does not decode is INVALID_ARGUMENT with a reason (src/codec.rs).
        .codec_path("crate::codec::CarbonxCodec")
        .compile_fds(fds)?;
    Ok(())
}

fn descriptor_path(out_dir: &Path) -> PathBuf {
    out_dir.join("carbonx_descriptor.bin")
}
