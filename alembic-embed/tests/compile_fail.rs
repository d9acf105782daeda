//! `embed_migrations!` on broken chains: each is a compile error on the
//! macro's argument naming the file and line, or the revisions; never a
//! panic. The expected messages are in `tests/ui/*.stderr`.

#[test]
fn broken_chains_are_compile_errors() {
    // trybuild compiles the cases in a package of its own; the macro reads
    // chains relative to this package instead (trybuild#202).
    std::env::set_var("ALEMBIC_EMBED_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"));
    // trybuild's own package has no profile of ours: without these its
    // build of every dependency, twice, took 1.5 GB of disk.
    std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    std::env::set_var("CARGO_INCREMENTAL", "0");
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
