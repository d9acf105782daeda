//! `alembic-embed`: the library a service depends on to carry its revision
//! chain and migrate its database at startup.
//!
//! The runtime and the `embed_migrations!` macro are the next milestone; the
//! chain model they will use is re-exported here so that applications and
//! the CLI share one parser, one checksum and one graph.
#![warn(missing_docs)]

pub use alembic_core::{
    load_versions, Checksum, Resolver, Revision, RevisionMap, Statement, Target,
};
