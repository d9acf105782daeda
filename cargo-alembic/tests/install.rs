//! What `cargo install cargo-alembic` compiles: crates the command line
//! does not use stay out of every install (issue 15; `cargo xtask bench
//! install` measures the time).

use std::process::Command;

/// Every package an install of the default features builds, for the
/// target and for the compiler (proc-macros, build scripts), with its
/// version.
fn installed_packages() -> Vec<(String, String)> {
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
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_owned();
            let version = words.next()?.trim_start_matches('v').to_owned();
            Some((name, version))
        })
        .collect()
}

#[test]
fn an_install_builds_nothing_the_command_line_does_not_use() {
    let packages: Vec<String> = installed_packages().into_iter().map(|(n, _)| n).collect();
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

/// ICU4X's Unicode tables and their derive macros (25 crates, 17 CPU
/// seconds of a `--timings` build) come in through two crates that have
/// versions doing the same with smaller tables, and the lock file keeps
/// those. A plain `cargo update` moves them on; this says how to undo it.
#[test]
fn an_install_builds_no_icu4x_tables() {
    let packages = installed_packages();
    for (name, version, why) in [
        (
            "textwrap",
            "0.16.2",
            "miette's line breaking: 0.16.3 and later break lines with icu_segmenter",
        ),
        (
            "idna_adapter",
            "1.1.0",
            "the Docker client's URLs: 1.2 maps host names with ICU4X, 1.1 with unicode-rs",
        ),
    ] {
        for (_, locked) in packages.iter().filter(|(n, _)| n == name) {
            assert_eq!(
                locked, version,
                "the lock file moved `{name}` off {version} ({why}): run \
                 `cargo update -p {name} --precise {version}`"
            );
        }
    }
    let icu4x: Vec<_> = packages
        .iter()
        .filter(|(n, _)| n.starts_with("icu_") || n.starts_with("zerovec") || n == "yoke")
        .collect();
    assert!(icu4x.is_empty(), "an install builds ICU4X: {icu4x:?}");
}
