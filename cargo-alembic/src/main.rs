//! `cargo-alembic`: the binary is glue; the work is in the library.

// Loading a large chain makes tens of thousands of small allocations on
// two threads; mimalloc's per-thread heaps make that about 10% faster than
// glibc's arenas (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cargo_alembic::main()
}
