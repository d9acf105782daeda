//! Links the `cargo-alembic` executable at a fixed address on Linux with
//! glibc (`-no-pie`, as Go links its programs by default).
//!
//! A position-independent executable is relocated by the dynamic loader
//! every time it starts: tens of thousands of pointers in its vtables,
//! string tables and global offset table, each page of them copied before
//! it is written. For a command that is over in ten milliseconds this was
//! a twentieth of the time (`--version` 0.76×, a no-op `upgrade` of 1,000
//! revisions about 0.93× paired; BENCHMARKS.md). Only this executable is
//! linked so: the libraries, and the services that link `alembic-embed`,
//! are built as their own projects say. `CARGO_ALEMBIC_PIE=1` at build time
//! keeps the default, a position-independent executable.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ALEMBIC_PIE");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    let linux_gnu =
        target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu";
    let keep_pie = std::env::var_os("CARGO_ALEMBIC_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if linux_gnu && !keep_pie {
        println!("cargo:rustc-link-arg-bin=cargo-alembic=-no-pie");
    }
}
