//! What a service links: the runtime core, never the workspace tooling.
//! `alembic-embed` turns off `alembic-chain`'s `tooling` feature, so Cargo
//! metadata, TOML and `.env` parsing stay in the CLI, the macro (which runs
//! at compile time) and build scripts.

use std::process::Command;

/// The crates linked into the example service's binary: its normal
/// dependencies, without proc-macros (which run in the compiler) and
/// build-dependencies.
fn linked_crates() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "example-service",
            "-e",
            "normal,no-proc-macro",
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
fn a_service_links_no_workspace_tooling() {
    let crates = linked_crates();
    assert!(
        crates.iter().any(|c| c == "alembic-chain"),
        "the runtime core is linked: {crates:?}"
    );
    for tooling in ["cargo_metadata", "toml", "dotenvy", "serde_json"] {
        assert!(
            !crates.iter().any(|c| c == tooling),
            "a service links `{tooling}`: {crates:?}"
        );
    }
}
