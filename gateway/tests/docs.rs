//! The binary's `docs api` prints exactly the checked-in `docs/API.md` (CI fails while the
//! reference is stale; `CARBONX_WRITE_DOCS=1 cargo test --workspace --test docs` rewrites it
//! with the test build, so no second RocksDB build). Being an integration test of this package, it also makes `cargo
//! test` build the `carbonx` binary itself, which the Python client suite runs.

#[test]
fn docs_api_prints_the_checked_in_reference() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["docs", "api"])
        .output()
        .unwrap_or_else(|e| panic!("carbonx docs api: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/API.md");
    if std::env::var_os("CARBONX_WRITE_DOCS").is_some() {
        std::fs::write(&path, &out.stdout).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk.as_bytes() == out.stdout.as_slice(),
        "docs/API.md is not current: run `CARBONX_WRITE_DOCS=1 cargo test --workspace --test docs`"
    );
}
