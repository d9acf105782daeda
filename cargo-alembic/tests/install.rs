//! What `cargo install cargo-alembic` compiles: crates the command line
//! does not use stay out of every install (issue 15; `cargo xtask bench
//! install` measures the time).

use std::process::Command;

/// Every package an install of the default features builds, for the
/// target and for the compiler (proc-macros, build scripts).
fn installed_packages() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "cargo-alembic",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn an_install_builds_nothing_the_command_line_does_not_use() {
    let packages = installed_packages();
    assert!(
        packages.iter().any(|p| p == "alembic-embed"),
        "the engine is built: {packages:?}"
    );
    for unused in [
        // `embed_migrations!`, and the chain's loader built again for it.
        "alembic-embed-macros",
        // `cargo metadata`'s JSON is read as a plain value.
        "cargo_metadata",
        // refinery's patterns and checksum are written here.
        "refinery-core",
        "time",
        // The system allocator.
        "mimalloc",
        "libmimalloc-sys",
        // TOML is only read.
        "toml_writer",
        // Channel binding reads one field of the server's certificate.
        "x509-cert",
        "der",
        "tokio-postgres-rustls",
        // BuildKit's gRPC client, which testcontainers 0.25 and later build.
        "tonic",
        "axum",
    ] {
        assert!(
            !packages.iter().any(|p| p == unused),
            "an install builds `{unused}`: {packages:?}"
        );
    }
}
