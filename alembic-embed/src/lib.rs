//! `alembic-embed`: the library a service depends on to carry its revision
//! chain and migrate its database at startup, and the engine the
//! `cargo alembic` CLI runs.
//!
//! The chain model (parsing, checksums, the graph, identifiers) comes from
//! `alembic-core`, so that applications and the CLI share one parser, one
//! checksum and one graph. The `embed_migrations!` macro and the
//! builder-style runtime API are the next milestone.
#![warn(missing_docs)]

mod connection;
mod engine;
mod errors;
pub mod tls;

pub use alembic_core::{
    load_versions, Checksum, Resolver, Revision, RevisionMap, Statement, Target,
};
pub use connection::Connection;
pub use engine::{
    quote_ident, quote_literal, Current, Direction, Engine, LedgerRow, Report, Session, Settings,
    Step,
};
pub use errors::{EngineError, SqlFailure};
