//! `alembic-embed`: compile an Alembic-style revision chain into a Rust
//! binary and upgrade its PostgreSQL database at startup; also the engine
//! the `cargo alembic` CLI runs.
//!
//! ```no_run
//! // The path is relative to the package's folder; defines `mod migrations`.
//! alembic_embed::embed_migrations!("../migrations");
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut client = alembic_embed::tls::connect(&std::env::var("DATABASE_URL")?)?;
//!     let report = migrations::runner().upgrade(&mut client)?;
//!     println!("the database is at {}", report.after.join(", "));
//!     Ok(())
//! }
//! ```
//!
//! The chain model (parsing, checksums, the graph, identifiers) comes from
//! `alembic-chain`, so that the macro, applications and the CLI share one
//! parser, one checksum and one graph.
//!
//! Features: `sync` (default) for `postgres::Client`, `async` for
//! `tokio_postgres::Client`, `cli` for a `migrate` subcommand in the
//! service's own command line.
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
mod connection;
mod engine;
mod errors;
mod libpq;
mod runner;
mod rustls_connect;
pub mod tls;

/// The embedded chain's data, as `embed_migrations!` writes it (the
/// macro's plumbing, not for services to use).
#[doc(hidden)]
pub mod embedded {
    pub use alembic_chain::embed::{
        EmbeddedRevision, EmbeddedSection, EmbeddedSettings, PackedChain,
    };
}

/// Compiles the revision chain into the crate as `mod migrations`.
///
/// - `embed_migrations!()`: the script location from
///   `[package.metadata.alembic]` or `[workspace.metadata.alembic]`, as
///   `cargo alembic` resolves it (default `migrations/` at the workspace
///   root).
/// - `embed_migrations!("migrations")`: a path relative to the package's
///   folder (`CARGO_MANIFEST_DIR`); absolute paths are refused.
/// - `allow_multiple_heads = true` accepts a chain with several heads.
///
/// The chain is parsed, validated and checksummed at compile time by the
/// same code as the CLI; a broken chain is a compile error naming the file
/// and line, or the revisions. The module holds `CHAIN` and `runner()`.
///
/// Editing a revision file rebuilds the crate. To rebuild when a file is
/// added or removed, add a `build.rs` calling
/// `alembic_chain::build::rerun_if_changed()` (`alembic-chain` as a
/// build-dependency), or printing `cargo::rerun-if-changed=<versions folder>`.
#[cfg(feature = "macros")]
pub use alembic_embed_macros::embed_migrations;

pub use connection::Connection;
pub use engine::{AheadPolicy, ChecksumPolicy, Direction, Report, Status, Step, Warning};
pub use errors::{Aftermath, EngineError, SqlFailure};
pub use runner::{Chain, Runner};

/// The engine as the `cargo alembic` CLI drives it: one chain, explicit
/// sessions, plans, offline SQL. Not part of the service API (a service
/// uses [`Runner`]); it changes with the CLI.
#[doc(hidden)]
pub mod cli_engine {
    /// The database commands, shared with the embedded `migrate`.
    #[cfg(feature = "cli")]
    pub use crate::cli::commands;
    pub use crate::engine::{
        accepted_text, quote_ident, quote_literal, Accepted, Checked, Current, Drift, Engine,
        LedgerRow, Session, Settings,
    };
    pub use crate::errors::exit_codes;
    pub use alembic_chain::{
        load_versions, Checksum, Resolver, Revision, RevisionMap, Statement, Target,
    };
}
