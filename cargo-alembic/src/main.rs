//! `cargo-alembic`: the binary is glue; the work is in the library.

fn main() -> std::process::ExitCode {
    cargo_alembic::main()
}
